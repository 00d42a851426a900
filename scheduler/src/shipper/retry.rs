//! `HttpRetry`: sending a request again when the other side is briefly unable to take
//! it (connection failures, timeouts, 5xx, 429 with or without `Retry-After`), with a
//! backoff (`jobs::backoff::Backoff`, the one policy); anything else fails at once with
//! the status and the start of the body.

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
                    let body = r.text().await.unwrap_or_default();
                    let body: String = body.chars().take(200).collect();
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
