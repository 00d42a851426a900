//! The bot's HTTP API, `/api/v1`, served with the dashboard on `[http] listen` beside
//! `/healthz`, `/readyz` and `/metrics`.
//!
//! Every call names its caller with a token declared in `[[api.token]]` (`auth`) and
//! goes through the same access policy as chat: a read is allowed to whoever may run the
//! built-in that shows the same thing (`jobs`, `job`, `workers`, `schedules`, `audit`,
//! `pending`), and every action is a request through the [`Router`] (`cancel <id>`,
//! `pause schedule <name>`, `approve <id>`…), so quotas and the audit trail apply too.
//!
//! - `auth`: [`Caller`], token comparison, per-caller rate limits.
//! - `views`: the JSON shapes of jobs, workers, schedules, approvals, audit entries.
//! - `jobs`: commands, the job history (filters, cursors), a job, cancel, re-run.
//! - `operations`: workers, schedules, dead letters, the audit trail, approvals.
//! - `inventory`: hosts and groups, read, changed, imported from Ansible.
//! - `session`: [`Sessions`], the dashboard's logins: cookies and CSRF tokens (the API
//!   reads a GET's caller from one too).
//! - `events`: [`EventFeed`], every job event this bot sees, and the Server-Sent Events
//!   streams made from it.
//! - `openapi.json`: the document describing all of the above, served at
//!   `/api/v1/openapi.json`; the tests check every answer against it.

pub mod auth;
pub mod events;
pub mod inventory;
pub mod jobs;
pub mod operations;
pub mod session;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Json;
use tokio::sync::Semaphore;

use crate::request::{Answer, Outcome};
use crate::router::Router;
pub use auth::Caller;
pub use events::EventFeed;
pub use session::Sessions;

/// The largest request body the API reads.
pub const BODY_LIMIT: usize = 64 * 1024;
/// How many live event streams the bot serves at once.
pub const MAX_STREAMS: usize = 256;

/// What every handler shares.
pub struct ApiState {
    pub router: Arc<Router>,
    pub feed: EventFeed,
    pub sessions: Sessions,
    pub limits: auth::RateLimits,
    pub wrong_tokens: auth::WrongTokens,
    /// One permit per open event stream.
    pub streams: Arc<Semaphore>,
}

impl ApiState {
    pub fn new(router: Arc<Router>, feed: EventFeed) -> Arc<Self> {
        Arc::new(ApiState {
            router,
            feed,
            sessions: Sessions::default(),
            limits: auth::RateLimits::default(),
            wrong_tokens: auth::WrongTokens::default(),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        })
    }
}

/// The API's routes, for the bot's listener.
pub fn routes(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/commands", post(jobs::command))
        .route("/api/v1/jobs", get(jobs::list))
        .route("/api/v1/jobs/{id}", get(jobs::one))
        .route("/api/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/v1/jobs/{id}/rerun", post(jobs::rerun))
        .route("/api/v1/jobs/{id}/events", get(events::job_stream))
        .route("/api/v1/events", get(events::stream))
        .route("/api/v1/workers", get(operations::workers))
        .route("/api/v1/schedules", get(operations::schedules))
        .route(
            "/api/v1/schedules/{name}/{action}",
            post(operations::schedule_action),
        )
        .route("/api/v1/dead-letters", get(operations::dead_letters))
        .route("/api/v1/audit", get(operations::audit))
        .route("/api/v1/approvals", get(operations::approvals))
        .route(
            "/api/v1/approvals/{id}/{decision}",
            post(operations::decide),
        )
        .route("/api/v1/inventory", get(inventory::list))
        .route(
            "/api/v1/inventory/hosts/{name}",
            put(inventory::put)
                .get(inventory::host)
                .delete(inventory::delete),
        )
        .route(
            "/api/v1/inventory/import",
            post(inventory::import).layer(DefaultBodyLimit::max(inventory::IMPORT_LIMIT)),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(refuse_declared_oversize))
        .with_state(state)
}

/// Answers 413 at once to a request whose declared length is past [`BODY_LIMIT`], before
/// any of its body is read (the body limit alone would read up to the limit first, and a
/// client still sending could find the connection closed before it read the answer).
pub async fn refuse_declared_oversize(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // An inventory import is the one body that may be larger.
    let limit = match request.uri().path() == "/api/v1/inventory/import" {
        true => inventory::IMPORT_LIMIT,
        false => BODY_LIMIT,
    };
    if declared.is_some_and(|n| n > limit as u64) {
        let body = Json(serde_json::json!({
            "error": format!("the body is larger than {} KiB", limit / 1024)
        }));
        return (StatusCode::PAYLOAD_TOO_LARGE, body).into_response();
    }
    next.run(request).await
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint: see /api/v1/openapi.json".into())
}

/// Why a call failed; each is answered as `{"error": "…"}` with its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid token: no detail, whatever was wrong.
    #[error("unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many calls: at most {limit} a minute")]
    TooMany { limit: u32, wait: Duration },
    #[error("too many wrong tokens from this address: try again in {}s", wait.as_secs().max(1))]
    TooManyWrongTokens { wait: Duration },
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooMany { .. } | ApiError::TooManyWrongTokens { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A store that did not answer.
    pub fn store(what: &str, e: &::jobs::StoreError) -> Self {
        tracing::warn!(error = %e, "API: could not {what}");
        ApiError::Unavailable(format!("could not {what}: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(serde_json::json!({ "error": self.to_string() }));
        let mut response = (status, body).into_response();
        match &self {
            ApiError::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooMany { wait, .. } | ApiError::TooManyWrongTokens { wait } => {
                let secs = wait.as_secs().max(1).to_string();
                if let Ok(v) = HeaderValue::from_str(&secs) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        response
    }
}

/// The caller of a call with a bearer token. A read (GET) may instead carry the
/// dashboard's session cookie: the dashboard's pages and their event streams use the
/// API that way. Every action (POST) needs the token itself, so a page on another site
/// cannot act with a logged-in operator's cookie.
pub struct Authed(pub Caller);

impl FromRequestParts<Arc<ApiState>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let catalog = state.router.catalog();
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let caller = match header {
            Some(value) => {
                let peer = peer(&parts.extensions);
                state
                    .wrong_tokens
                    .check(peer)
                    .map_err(|wait| ApiError::TooManyWrongTokens { wait })?;
                let caller =
                    auth::bearer(value).and_then(|t| auth::token_for(&catalog.api.tokens, t));
                if caller.is_none() {
                    state.wrong_tokens.wrong(peer);
                }
                caller
            }
            None if parts.method == axum::http::Method::GET => state
                .sessions
                .caller(&parts.headers, &catalog.api.tokens)
                .map(|s| s.caller),
            None => None,
        };
        let Some(caller) = caller else {
            return Err(ApiError::Unauthorized);
        };
        let limit = catalog.api.requests_per_minute;
        state
            .limits
            .take(&caller, limit)
            .map_err(|wait| ApiError::TooMany { limit, wait })?;
        Ok(Authed(caller))
    }
}

/// The address a request came from, as the listener saw it (none in tests that call the
/// routes without one).
pub fn peer(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// A query string read into `T`; a clear error for anything it does not know.
pub fn query_params<T: serde::de::DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))
}

/// A body that may be empty (`T::default()`) or JSON like `example`.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    example: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be empty or JSON like {example}: {e}"
        ))
    })
}

/// A router's answer as the API gives it: 200 with the text for an answer, 202 with the
/// job's id for a job, and the error status for a refusal or a mistake.
pub fn answer_response(answer: Answer) -> Response {
    let body = views::AnswerView::from(&answer);
    let status = match answer.outcome {
        Outcome::Done => StatusCode::OK,
        Outcome::Queued => StatusCode::ACCEPTED,
        Outcome::Nothing | Outcome::Unknown | Outcome::BadArgument => StatusCode::BAD_REQUEST,
        Outcome::Refused => StatusCode::FORBIDDEN,
        Outcome::Failed => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(body)).into_response()
}
