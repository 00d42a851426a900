//! `HttpRetry`: sending a request again when the other side is briefly unable to take
//! it (connection failures, timeouts, 5xx, 429 with or without `Retry-After`), with a
//! backoff (`jobs::backoff::Backoff`, the one policy); anything else fails at once with
//! the status and the start of the body. `read_capped`: the one way a response body is
//! read, never past a limit however much the other side sends.

use std::time::Duration;

use jobs::backoff::Backoff;

use reqwest::{RequestBuilder, Response, StatusCode};

#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpRetry {
    pub(crate) attempts: u32,
    pub(crate) first_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl Default for HttpRetry {
    fn default() -> Self {
        HttpRetry {
            attempts: 8,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl HttpRetry {
    /// Sends the request `make` builds until it succeeds, counting retries in `retries`.
    /// `what` names the request in errors ("GET of page 3").
    pub(crate) async fn send(
        &self,
        what: &str,
        make: impl Fn() -> RequestBuilder,
        retries: &mut u64,
    ) -> Result<Response, String> {
        let mut backoff = Backoff::new(self.first_backoff, self.max_backoff);
        let mut attempt = 1;
        loop {
            let (wait, problem) = match make().send().await {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) if retryable(r.status()) => {
                    let after = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    (
                        after
                            .unwrap_or_else(|| backoff.next_pause())
                            .min(self.max_backoff),
                        format!("answered {}", r.status()),
                    )
                }
                Ok(r) => {
                    let status = r.status();
                    let body = read_start(r, ERROR_BODY_MAX).await;
                    let body: String = String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .collect();
                    return Err(format!("{what} was refused with {status}: {body}"));
                }
                Err(e) => (backoff.next_pause(), format!("failed: {}", without_url(&e))),
            };
            if attempt >= self.attempts {
                return Err(format!("{what} {problem}, {attempt} times; giving up"));
            }
            tracing::debug!(what, attempt, problem = %problem, "retrying");
            *retries += 1;
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }
}

/// How much of a refusal's body is read, to quote its start.
const ERROR_BODY_MAX: usize = 4096;

/// The body of `response`, refused past `max` bytes: a declared length over it is refused
/// before any byte is read, and reading stops at the first byte past it.
pub(crate) async fn read_capped(
    mut response: Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, String> {
    let too_large = || format!("{what} is larger than {} MiB; refused", max / (1024 * 1024));
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{what} could not be read: {}", without_url(&e)))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most the first `max` bytes of a body, for quoting; nothing if it cannot be read.
async fn read_start(mut response: Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = max - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == max {
            break;
        }
    }
    body
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// A request error without its URL: presigned and source URLs can carry credentials.
fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url (") {
        e.truncate(i);
    }
    e
}
