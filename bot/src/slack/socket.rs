//! Socket Mode: slack-morphism's clients manager keeps `connections` WebSockets open to
//! the URL `apps.connections.open` gives (so it follows `[slack] api_url`) and reconnects
//! when one drops or Slack asks it to (`disconnect`). Each frame reaches [`Frames`] as
//! Slack sent it, so an event is read from its JSON (slack-morphism's typed `app_mention`
//! has no `bot_id`); an `interactive` envelope (a button pressed) is read as a
//! [`Click`]. An envelope is acknowledged once it is on the adapter's queue,
//! before any work; when the queue is full it is not, and Slack sends it again later.

use std::sync::{Arc, Weak};

use anyhow::{Context, Result};
use async_trait::async_trait;
use config::Secret;
use serde::Deserialize;
use slack_morphism::clients_manager::{
    SlackSocketModeClientsManager, SlackSocketModeClientsManagerFactory,
};
use slack_morphism::prelude::*;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use super::api::SlackHttpClient;
use super::interaction::Click;
use super::Incoming;

type Manager = dyn SlackSocketModeClientsManager + Send + Sync;

/// Starts the connections; they run until `shutdown`.
pub async fn listen(
    client: Arc<SlackHttpClient>,
    app_token: &Secret,
    connections: u32,
    tx: mpsc::Sender<Incoming>,
    shutdown: CancellationToken,
) -> Result<()> {
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(client.clone()).with_error_handler(on_error),
    );
    let manager = client.http_api.connector.new_clients_manager(environment);
    let frames = Arc::new(Frames {
        manager: Arc::downgrade(&manager),
        tx,
    });
    let config = SlackClientSocketModeConfig::new()
        .with_max_connections_count(connections)
        .with_initial_backoff_in_seconds(1)
        .with_reconnect_timeout_in_seconds(1);
    manager
        .register_new_token(
            &config,
            SlackApiToken::new(app_token.expose().into()),
            frames,
        )
        .await
        .context("cannot register the app token for Socket Mode")?;
    manager.start().await;
    tracing::info!(connections, "listening to Slack in Socket Mode");
    tokio::spawn(async move {
        shutdown.cancelled().await;
        manager.shutdown().await;
    });
    Ok(())
}

/// Reads every frame Slack sends on any connection.
struct Frames {
    manager: Weak<Manager>,
    tx: mpsc::Sender<Incoming>,
}

/// A Socket Mode frame: `hello`, `disconnect`, or an envelope.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    envelope_id: Option<String>,
    #[serde(default)]
    payload: serde_json::Value,
}

impl Frames {
    /// Hands `incoming` to the adapter; the acknowledgement of `envelope`, or none when
    /// the queue is full (Slack sends the envelope again).
    fn forward(&self, envelope: &str, incoming: Incoming) -> Option<String> {
        match self.tx.try_send(incoming) {
            Ok(()) => Some(ack(envelope)),
            Err(TrySendError::Full(_)) => {
                tracing::warn!(
                    envelope,
                    limit = super::INCOMING_QUEUE,
                    "too many Slack events waiting; left unacknowledged for Slack to send again"
                );
                None
            }
            Err(TrySendError::Closed(_)) => None,
        }
    }
}

fn ack(envelope: &str) -> String {
    serde_json::json!({ "envelope_id": envelope }).to_string()
}

#[async_trait]
impl SlackSocketModeClientListener for Frames {
    async fn on_message(
        &self,
        client_id: &SlackSocketModeWssClientId,
        message_body: String,
    ) -> Option<String> {
        let frame: Frame = match serde_json::from_str(&message_body) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(
                    bytes = message_body.len(),
                    line = e.line(),
                    column = e.column(),
                    "unreadable Socket Mode frame ignored"
                );
                return None;
            }
        };
        let envelope = frame.envelope_id.as_deref();
        match (frame.kind.as_str(), envelope) {
            ("hello", _) => None,
            ("disconnect", _) => {
                tracing::debug!(
                    connection = client_id.to_string(),
                    "Slack asks this connection to reconnect"
                );
                if let Some(manager) = self.manager.upgrade() {
                    manager.restart_client(client_id).await;
                }
                None
            }
            ("events_api", Some(envelope)) => match Incoming::push(frame.payload) {
                Ok(incoming) => self.forward(envelope, incoming),
                Err(e) => {
                    // It never reads better: acknowledged so Slack does not send it again.
                    tracing::warn!(
                        envelope,
                        line = e.line(),
                        column = e.column(),
                        "an event Slack sent could not be read"
                    );
                    Some(ack(envelope))
                }
            },
            ("slash_commands", Some(envelope)) => {
                match serde_json::from_value::<SlackCommandEvent>(frame.payload) {
                    Ok(command) => self.forward(envelope, Incoming::Command(Box::new(command))),
                    Err(e) => {
                        tracing::warn!(
                            envelope,
                            line = e.line(),
                            column = e.column(),
                            "a slash command Slack sent could not be read"
                        );
                        Some(ack(envelope))
                    }
                }
            }
            ("interactive", Some(envelope)) => match Click::read(frame.payload) {
                Ok(click) => self.forward(envelope, Incoming::Click(Box::new(click))),
                Err(e) => {
                    // Not a click on our buttons, or unreadable: acknowledged, nothing done.
                    tracing::info!(envelope, reason = %e, "an interaction Slack sent was not acted on");
                    Some(ack(envelope))
                }
            },
            (kind, Some(envelope)) => {
                tracing::debug!(
                    kind,
                    envelope,
                    "envelope of a kind the bot does not serve; acknowledged"
                );
                Some(ack(envelope))
            }
            (kind, None) => {
                tracing::debug!(kind, "Socket Mode frame ignored");
                None
            }
        }
    }

    async fn on_error(&self, error: Box<dyn std::error::Error + Send + Sync + 'static>) {
        tracing::warn!(error = %error, "Slack Socket Mode trouble");
    }

    async fn on_disconnect(&self, client_id: &SlackSocketModeWssClientId) {
        if let Some(manager) = self.manager.upgrade() {
            manager.restart_client(client_id).await;
        }
    }
}

fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackHttpClient>,
    _state: SlackClientEventsUserState,
) -> HttpStatusCode {
    tracing::warn!(error = %err, "Slack Socket Mode trouble");
    HttpStatusCode::OK
}
