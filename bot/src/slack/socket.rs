//! Socket Mode: slack-morphism's listener keeps `connections` WebSockets open to the URL
//! `apps.connections.open` gives (so it follows `[slack] api_url`), reconnects when one
//! drops or Slack asks it to (`disconnect`), and acknowledges each envelope when our
//! callback returns. The callbacks only hand the event to the adapter's queue, so the
//! acknowledgement leaves at once, before any work.

use std::sync::Arc;

use anyhow::{Context, Result};
use config::Secret;
use slack_morphism::prelude::*;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::api::SlackHttpClient;
use super::Incoming;

/// The adapter's queue, as the callbacks find it in slack-morphism's user state.
struct Forward(mpsc::UnboundedSender<Incoming>);

/// Starts the listener; it runs until `shutdown`.
pub async fn listen(
    client: Arc<SlackHttpClient>,
    app_token: &Secret,
    connections: u32,
    tx: mpsc::UnboundedSender<Incoming>,
    shutdown: CancellationToken,
) -> Result<()> {
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(client)
            .with_error_handler(on_error)
            .with_user_state(Forward(tx)),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_push_events(on_push)
        .with_command_events(on_command);
    let config = SlackClientSocketModeConfig::new()
        .with_max_connections_count(connections)
        .with_initial_backoff_in_seconds(1)
        .with_reconnect_timeout_in_seconds(1);
    let listener = SlackClientSocketModeListener::new(&config, environment, callbacks);
    listener
        .listen_for(&SlackApiToken::new(app_token.expose().into()))
        .await
        .context("cannot register the app token for Socket Mode")?;
    listener.start().await;
    tracing::info!(connections, "listening to Slack in Socket Mode");
    tokio::spawn(async move {
        shutdown.cancelled().await;
        listener.shutdown().await;
    });
    Ok(())
}

async fn forward(state: &SlackClientEventsUserState, incoming: Incoming) {
    let state = state.read().await;
    if let Some(Forward(tx)) = state.get_user_state::<Forward>() {
        let _ = tx.send(incoming);
    }
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHttpClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    forward(&state, Incoming::Push(Box::new(event))).await;
    Ok(())
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackHttpClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    forward(&state, Incoming::Command(Box::new(event))).await;
    // The answer follows in the channel; the acknowledgement carries nothing.
    Ok(SlackCommandEventResponse::new(SlackMessageContent::new()))
}

fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackHttpClient>,
    _state: SlackClientEventsUserState,
) -> HttpStatusCode {
    tracing::warn!(error = %err, "Slack Socket Mode trouble");
    HttpStatusCode::OK
}
