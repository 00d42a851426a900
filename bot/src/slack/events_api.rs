//! The Events API: Slack posts events (`/slack/events`) and slash commands
//! (`/slack/commands`) to an HTTP endpoint the bot serves.
//!
//! Every request must carry a valid signature made with the app's signing secret over a
//! timestamp less than five minutes old (slack-morphism's `SlackEventSignatureVerifier`);
//! any other request gets 401, is logged, and is never processed. A valid request is
//! answered at once, before any work: the event goes to the adapter's queue.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use config::Secret;
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Incoming;

#[derive(Clone)]
struct Endpoint {
    verifier: Arc<SlackEventSignatureVerifier>,
    tx: mpsc::UnboundedSender<Incoming>,
}

/// Binds `listen` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    listen: SocketAddr,
    signing_secret: &Secret,
    tx: mpsc::UnboundedSender<Incoming>,
    shutdown: CancellationToken,
) -> Result<SocketAddr> {
    let endpoint = Endpoint {
        verifier: Arc::new(SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
            signing_secret.expose().to_string(),
        ))),
        tx,
    };
    let app = axum::Router::new()
        .route("/slack/events", post(events))
        .route("/slack/commands", post(commands))
        .with_state(endpoint);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for Slack events on {listen}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the Slack Events API endpoint stopped");
        }
    });
    tracing::info!(%bound, "serving the Slack Events API");
    Ok(bound)
}

impl Endpoint {
    /// The body, if the request is signed by Slack within the replay window.
    fn verified<'b>(&self, headers: &HeaderMap, body: &'b Bytes) -> Result<&'b str, StatusCode> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let refuse = |why: String| {
            tracing::warn!(reason = %why, "refused a request to the Slack endpoint");
            Err(StatusCode::UNAUTHORIZED)
        };
        let (Some(signature), Some(timestamp)) = (
            header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER),
            header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
        ) else {
            return refuse("no signature or timestamp header".into());
        };
        let Ok(text) = std::str::from_utf8(body) else {
            return refuse("the body is not UTF-8".into());
        };
        match self.verifier.verify(signature, text, timestamp) {
            Ok(()) => Ok(text),
            Err(e) => refuse(e.to_string()),
        }
    }
}

async fn events(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    let text = match endpoint.verified(&headers, &body) {
        Ok(text) => text,
        Err(refused) => return refused.into_response(),
    };
    match serde_json::from_str::<SlackPushEvent>(text) {
        Ok(SlackPushEvent::UrlVerification(v)) => {
            axum::Json(serde_json::json!({ "challenge": v.challenge })).into_response()
        }
        Ok(SlackPushEvent::EventCallback(event)) => {
            let _ = endpoint.tx.send(Incoming::Push(Box::new(event)));
            StatusCode::OK.into_response()
        }
        Ok(SlackPushEvent::AppRateLimited(_)) => {
            tracing::warn!("Slack says the app is rate limited: events are being dropped by Slack");
            StatusCode::OK.into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "an event Slack sent could not be read");
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}

async fn commands(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    let text = match endpoint.verified(&headers, &body) {
        Ok(text) => text,
        Err(refused) => return refused.into_response(),
    };
    match serde_urlencoded::from_str::<SlackCommandEvent>(text) {
        Ok(command) => {
            let _ = endpoint.tx.send(Incoming::Command(Box::new(command)));
            StatusCode::OK.into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "a slash command Slack sent could not be read");
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}
