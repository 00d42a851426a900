//! The Events API: Slack posts events (`/slack/events`), slash commands
//! (`/slack/commands`) and interactions (`/slack/interactivity`: a button pressed, a form
//! field `payload` holding the JSON) to an HTTP endpoint the bot serves.
//!
//! Every request must carry a valid signature made with the app's signing secret over a
//! timestamp less than five minutes old (slack-morphism's `SlackEventSignatureVerifier`);
//! any other request gets 401, is logged, and is never processed. A valid request is
//! answered at once, before any work: the event goes to the adapter's queue, or, when
//! that is full, the request gets 503 and Slack sends it again later.
//!
//! The endpoint faces the internet, so what a client can hold is bounded: at most
//! [`MAX_CONNECTIONS`] connections (more are closed as they come), HTTP/1 only, the
//! request head within [`HEADER_TIMEOUT`] (else the connection is closed), a body of at
//! most [`BODY_LIMIT`] bytes (413, from `Content-Length` before any of it is read, or as
//! soon as more arrives) within [`BODY_TIMEOUT`] (408).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use config::Secret;
use futures::StreamExt;
use octobox_http::bounded::BoundedListener;
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use super::interaction::Click;
use super::Incoming;

/// The most connections served at once; more are closed as they are accepted.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client has to send a request's head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The endpoint's listener, with those bounds.
const LISTENER: BoundedListener = BoundedListener {
    name: "the Slack endpoint",
    max_connections: MAX_CONNECTIONS,
    header_timeout: HEADER_TIMEOUT,
};
/// The largest body read (Slack's events are a few KiB).
pub const BODY_LIMIT: usize = 1 << 20;
/// How long a client has to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Endpoint {
    verifier: Arc<SlackEventSignatureVerifier>,
    tx: mpsc::Sender<Incoming>,
}

/// Binds `listen` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    listen: SocketAddr,
    signing_secret: &Secret,
    tx: mpsc::Sender<Incoming>,
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
        .route("/slack/interactivity", post(interactivity))
        .with_state(endpoint);
    let bound = LISTENER
        .serve(listen, app, shutdown)
        .await
        .with_context(|| format!("cannot listen for Slack events on {listen}"))?;
    tracing::info!(%bound, "serving the Slack Events API");
    Ok(bound)
}

/// The body of a request, read up to [`BODY_LIMIT`] within [`BODY_TIMEOUT`]; a refusal
/// otherwise. A `Content-Length` past the limit is refused before anything is read.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, (StatusCode, &'static str)> {
    let refuse = |status: StatusCode, why: &'static str| {
        tracing::warn!(
            status = status.as_u16(),
            reason = why,
            "refused a request to the Slack endpoint"
        );
        Err((status, why))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than 1 MiB",
        );
    }
    let mut stream = body.into_data_stream();
    let mut read = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT, "the body came too slowly"),
            Ok(None) => return Ok(read.into()),
            Ok(Some(Err(_))) => {
                return refuse(StatusCode::BAD_REQUEST, "the body could not be read")
            }
            Ok(Some(Ok(chunk))) => {
                if read.len() + chunk.len() > BODY_LIMIT {
                    return refuse(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "the body is larger than 1 MiB",
                    );
                }
                read.extend_from_slice(&chunk);
            }
        }
    }
}

/// Hands `incoming` to the adapter: 200, or 503 when its queue is full.
fn forward(endpoint: &Endpoint, incoming: Incoming) -> Response {
    match endpoint.tx.try_send(incoming) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(TrySendError::Full(_)) => {
            tracing::warn!(
                limit = super::INCOMING_QUEUE,
                "too many Slack events waiting; answered 503 for Slack to send again"
            );
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(TrySendError::Closed(_)) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
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

async fn events(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&headers, body).await {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let text = match endpoint.verified(&headers, &body) {
        Ok(text) => text,
        Err(refused) => return refused.into_response(),
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            tracing::warn!(
                line = e.line(),
                column = e.column(),
                "an event Slack sent is not JSON"
            );
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    match value.get("type").and_then(|t| t.as_str()) {
        Some("event_callback") => match Incoming::push(value) {
            Ok(incoming) => forward(&endpoint, incoming),
            Err(e) => {
                // It never reads better: 200, so that Slack does not send it again.
                tracing::warn!(
                    line = e.line(),
                    column = e.column(),
                    "an event Slack sent could not be read"
                );
                StatusCode::OK.into_response()
            }
        },
        _ => match serde_json::from_value::<SlackPushEvent>(value) {
            Ok(SlackPushEvent::UrlVerification(v)) => {
                axum::Json(serde_json::json!({ "challenge": v.challenge })).into_response()
            }
            Ok(SlackPushEvent::AppRateLimited(_)) => {
                tracing::warn!(
                    "Slack says the app is rate limited: events are being dropped by Slack"
                );
                StatusCode::OK.into_response()
            }
            Ok(SlackPushEvent::EventCallback(_)) | Err(_) => {
                tracing::warn!("a request Slack sent is of no known type");
                StatusCode::BAD_REQUEST.into_response()
            }
        },
    }
}

async fn commands(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&headers, body).await {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let text = match endpoint.verified(&headers, &body) {
        Ok(text) => text,
        Err(refused) => return refused.into_response(),
    };
    match serde_urlencoded::from_str::<SlackCommandEvent>(text) {
        Ok(command) => forward(&endpoint, Incoming::Command(Box::new(command))),
        Err(e) => {
            tracing::warn!(error = %e, "a slash command Slack sent could not be read");
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}

/// The interactivity request's form: the interaction's JSON in one field.
#[derive(serde::Deserialize)]
struct InteractionForm {
    payload: String,
}

async fn interactivity(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(&headers, body).await {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let text = match endpoint.verified(&headers, &body) {
        Ok(text) => text,
        Err(refused) => return refused.into_response(),
    };
    let form = match serde_urlencoded::from_str::<InteractionForm>(text) {
        Ok(form) => form,
        Err(e) => {
            tracing::warn!(error = %e, "an interaction Slack sent has no readable payload field");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    let payload: serde_json::Value = match serde_json::from_str(&form.payload) {
        Ok(payload) => payload,
        Err(e) => {
            tracing::warn!(
                line = e.line(),
                column = e.column(),
                "an interaction Slack sent is not JSON"
            );
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    match Click::read(payload) {
        Ok(click) => forward(&endpoint, Incoming::Click(Box::new(click))),
        Err(e) => {
            // Signed by Slack, but nothing the bot acts on: 200, so it is not sent again.
            tracing::info!(reason = %e, "an interaction Slack sent was not acted on");
            StatusCode::OK.into_response()
        }
    }
}
