//! `http check <url>`: fetches an http or https URL the way a person checking a site
//! wants to see it: the status, each redirect (at most `[tasks.http_check]
//! max_redirects`), the time of each step — resolving the name, the TCP connect, the
//! TLS handshake, the first byte of the answer after the request was sent — and, over
//! https, the certificate (subject, issuer, days to expiry, whether it is trusted).
//!
//! The steps are timed here, around each one (hyper only speaks HTTP/1.1 over the
//! connection this module opened), so that no client hides where the time went. The
//! whole check, redirects included, is bounded by `timeout`; the body of the last
//! answer is read to at most [`MAX_BODY`] bytes and then dropped; the URL is at most
//! [`MAX_URL`] bytes and is never sent with credentials.
//!
//! [`fetch`] is the one HTTP client of the day-one tasks: `walk site` fetches each page
//! with it too, keeping an HTML body (to [`MAX_BODY`]) to read its links.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use config::HttpCheckSettings;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use jobs::Output;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use url::Url;

use super::certificate::{Presented, TlsClient};
use super::net::{self, millis, Deadline, Reached};
use super::{clean, fit_chat};
use crate::registry::{NativeTask, TaskContext, TaskError};

/// The longest URL accepted.
pub const MAX_URL: usize = 2048;

/// The most of the last answer's body that is read.
pub const MAX_BODY: u64 = 1024 * 1024;

/// What the checker calls itself in its requests.
const USER_AGENT: &str = concat!("octobox-http-check/", env!("CARGO_PKG_VERSION"));

pub struct HttpCheck {
    settings: HttpCheckSettings,
    tls: TlsClient,
}

impl HttpCheck {
    pub fn new(settings: HttpCheckSettings, tls: TlsClient) -> Self {
        HttpCheck { settings, tls }
    }
}

#[async_trait]
impl NativeTask for HttpCheck {
    fn params(&self) -> &'static [&'static str] {
        &["url"]
    }

    async fn run(&self, ctx: &TaskContext) -> Result<Output, TaskError> {
        let url = url(&ctx.text_arg("url")?).map_err(TaskError::Failed)?;
        let checked = self.check(url).await.map_err(TaskError::Failed)?;
        Ok(fit_chat(checked, "http-check.txt"))
    }
}

/// The URL to check: http or https, a host, no credentials, at most [`MAX_URL`] bytes.
pub fn url(given: &str) -> Result<Url, String> {
    if given.len() > MAX_URL {
        return Err(format!(
            "that URL is {} characters long; at most {MAX_URL} are checked",
            given.chars().count()
        ));
    }
    let url = Url::parse(given).map_err(|e| {
        format!(
            "\"{}\" is not a URL ({e}): write it whole, e.g. https://example.com/",
            clean(given, 80)
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs are checked, not {}:",
            clean(url.scheme(), 20)
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("\"{}\" names no host", clean(given, 80)));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "a URL with a user name or password is not checked: it would be kept in the job history"
                .into(),
        );
    }
    Ok(url)
}

/// One request and its answer.
pub(crate) struct Hop {
    pub(crate) url: Url,
    pub(crate) reached: Reached,
    pub(crate) tls: Option<Duration>,
    pub(crate) first_byte: Duration,
    pub(crate) status: hyper::StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) content_type: Option<String>,
    /// Bytes of the body read, and whether there were more.
    pub(crate) body: Option<(u64, bool)>,
    /// The body itself, when it was asked for ([`Body::KeepHtml`]) and is HTML: at most
    /// [`MAX_BODY`] bytes.
    pub(crate) html: Option<Vec<u8>>,
    pub(crate) presented: Option<Presented>,
}

/// What [`fetch`] does with the body of an answer that is not a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// Counts its bytes (to [`MAX_BODY`]) and drops them.
    Count,
    /// Keeps it (to [`MAX_BODY`]) when its type says HTML; counts it otherwise.
    KeepHtml,
}

/// Whether a `Content-Type` says HTML: `text/html` or `application/xhtml+xml`, whatever
/// its parameters.
pub(crate) fn is_html(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

impl HttpCheck {
    /// Checks `url`, following redirects; the report, or why the check could not finish.
    pub async fn check(&self, url: Url) -> Result<String, String> {
        let started = Instant::now();
        let deadline = Deadline::after(self.settings.timeout);
        let mut hops: Vec<Hop> = Vec::new();
        let mut next = url.clone();
        let stopped = loop {
            let last_allowed = hops.len() as u32 >= self.settings.max_redirects;
            let hop = match fetch(&self.tls, &next, &deadline, Body::Count).await {
                Ok(hop) => hop,
                Err(why) if hops.is_empty() => return Err(why),
                Err(why) => {
                    let so_far = report(&hops, started.elapsed(), None);
                    return Err(format!("{why}\nwhat came before:\n{so_far}"));
                }
            };
            let redirect = hop
                .status
                .is_redirection()
                .then(|| hop.location.clone())
                .flatten();
            hops.push(hop);
            let Some(location) = redirect else {
                break None;
            };
            let target = match next.join(&location) {
                Ok(t) if location.len() <= MAX_URL && matches!(t.scheme(), "http" | "https") => t,
                _ => {
                    break Some(format!(
                    "stopped: the redirect goes to \"{}\", which is not an http(s) URL this checks",
                    clean(&location, 120)
                ))
                }
            };
            if last_allowed {
                break Some(format!(
                    "stopped at the limit of {} redirect{}: the next goes to {target}",
                    self.settings.max_redirects,
                    plural(self.settings.max_redirects as usize)
                ));
            }
            next = target;
        };
        Ok(report(&hops, started.elapsed(), stopped))
    }
}

/// One GET of `url` over a connection of its own, each step timed, every wait bounded
/// by `deadline`; the body as `body` says. Over https the certificate is described and
/// judged, never a reason to stop (see [`TlsClient::handshake`]).
pub(crate) async fn fetch(
    tls: &TlsClient,
    url: &Url,
    deadline: &Deadline,
    body: Body,
) -> Result<Hop, String> {
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let (tcp, _, reached) = net::reach(&host, port, deadline).await?;
    let shown = net::host_port(host.trim_matches(|c| c == '[' || c == ']'), port);
    if url.scheme() == "https" {
        let name = server_name(&host)?;
        tls.prepare().await;
        let started = Instant::now();
        let (stream, presented) = deadline
            .run(tls.handshake(tcp, name, &[b"http/1.1"]), |budget| {
                format!("{shown} did not finish the TLS handshake within {budget}")
            })
            .await??;
        let tls_took = started.elapsed();
        let mut hop = exchange(stream, url, &shown, deadline, body).await?;
        hop.reached = reached;
        hop.tls = Some(tls_took);
        hop.presented = Some(presented);
        Ok(hop)
    } else {
        let mut hop = exchange(tcp, url, &shown, deadline, body).await?;
        hop.reached = reached;
        Ok(hop)
    }
}

/// The name a TLS handshake with `host` asks for.
fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_matches(|c| c == '[' || c == ']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(bare.to_string())
        .map_err(|_| format!("\"{}\" is not a host name TLS can ask for", clean(host, 80)))
}

/// Sends the request over `io` and reads the answer's head (and, unless it redirects,
/// its body up to [`MAX_BODY`], kept as `keep` says).
async fn exchange<S>(
    io: S,
    url: &Url,
    shown: &str,
    deadline: &Deadline,
    keep: Body,
) -> Result<Hop, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let seen = Arc::new(Mutex::new(Seen::default()));
    let io = Watched {
        inner: io,
        seen: seen.clone(),
    };
    let (mut sender, conn) = deadline
        .run(
            hyper::client::conn::http1::handshake(TokioIo::new(io)),
            |budget| format!("{shown} did not take an HTTP connection within {budget}"),
        )
        .await?
        .map_err(|e| format!("{shown}: HTTP could not start: {e}"))?;
    let driver = AbortOnDrop(tokio::spawn(conn));
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let host_header = match url.port() {
        Some(p) => net::host_port(url.host_str().unwrap_or_default(), p),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::USER_AGENT, USER_AGENT)
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| format!("the request for {url} cannot be made: {e}"))?;
    let response = deadline
        .run(sender.send_request(request), |budget| {
            format!("{url}: no answer within {budget}")
        })
        .await?
        .map_err(|e| {
            format!(
                "{url}: the server did not answer in HTTP: {}",
                hyper_words(&e)
            )
        })?;
    let first_byte = seen
        .lock()
        .map(|s| match (s.first_write, s.first_read) {
            (Some(w), Some(r)) => r.saturating_duration_since(w),
            _ => Duration::ZERO,
        })
        .unwrap_or_default();
    let status = response.status();
    let header = |name: hyper::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| clean(v, MAX_URL))
    };
    let location = header(hyper::header::LOCATION);
    let content_type = header(hyper::header::CONTENT_TYPE);
    let mut html =
        (keep == Body::KeepHtml && content_type.as_deref().is_some_and(is_html)).then(Vec::new);
    let body = match status.is_redirection() && location.is_some() {
        true => {
            html = None;
            None
        }
        false => Some(read_body(response.into_body(), url, deadline, html.as_mut()).await?),
    };
    drop(driver);
    Ok(Hop {
        url: url.clone(),
        reached: Reached::default(),
        tls: None,
        first_byte,
        status,
        location,
        content_type,
        body,
        html,
        presented: None,
    })
}

/// Counts the body's bytes, to [`MAX_BODY`] at most, keeping them in `kept` if given:
/// whether there were more.
async fn read_body(
    mut body: Incoming,
    url: &Url,
    deadline: &Deadline,
    mut kept: Option<&mut Vec<u8>>,
) -> Result<(u64, bool), String> {
    let mut read = 0u64;
    loop {
        let frame = deadline
            .run(body.frame(), |budget| {
                format!("{url}: the body did not arrive within {budget} ({read} bytes by then)")
            })
            .await?;
        match frame {
            None => return Ok((read, false)),
            Some(Err(e)) => {
                return Err(format!(
                    "{url}: the body broke off after {read} bytes: {}",
                    hyper_words(&e)
                ))
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if let Some(kept) = kept.as_deref_mut() {
                        let room = (MAX_BODY - read) as usize;
                        kept.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    read += data.len() as u64;
                    if read > MAX_BODY {
                        return Ok((MAX_BODY, true));
                    }
                }
            }
        }
    }
}

fn hyper_words(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        return "it closed the connection before a whole answer".into();
    }
    if e.is_parse() {
        return "its answer is not HTTP".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// The report: a headline, each hop with its timings, the certificate of the last
/// https hop.
fn report(hops: &[Hop], took: Duration, stopped: Option<String>) -> String {
    let mut out = String::new();
    if let Some(last) = hops.last() {
        // Every hop after the first is a redirect that was followed.
        let redirects = hops.len() - 1;
        out.push_str(&format!(
            "{}: {} after {redirects} redirect{}, in {}\n",
            hops[0].url,
            status_words(last.status),
            plural(redirects),
            millis(took)
        ));
    }
    for (i, hop) in hops.iter().enumerate() {
        let mut line = format!("{}. {} {}", i + 1, status_words(hop.status), hop.url);
        if let (true, Some(location)) = (hop.status.is_redirection(), &hop.location) {
            line.push_str(&format!(" → {location}"));
        }
        let mut about = Vec::new();
        if let (Some(ct), Some(_)) = (&hop.content_type, hop.body) {
            about.push(ct.clone());
        }
        if let Some((bytes, more)) = hop.body {
            about.push(match more {
                true => format!("more than {} (stopped reading)", size(bytes)),
                false => size(bytes),
            });
        }
        if !about.is_empty() {
            line.push_str(&format!(" ({})", about.join(", ")));
        }
        out.push_str(&line);
        let mut steps = vec![
            format!("DNS {}", millis(hop.reached.dns)),
            format!("connect {}", millis(hop.reached.connect)),
        ];
        if let Some(tls) = hop.tls {
            steps.push(format!("TLS {}", millis(tls)));
        }
        steps.push(format!("first byte {}", millis(hop.first_byte)));
        out.push_str(&format!("\n   {}\n", steps.join(" · ")));
    }
    if let Some(stopped) = stopped {
        out.push_str(&stopped);
        out.push('\n');
    }
    if let Some(presented) = hops.iter().rev().find_map(|h| h.presented.as_ref()) {
        for line in presented.lines(Utc::now()) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.trim_end().to_string()
}

/// A status as people read it: `404 Not Found`.
pub(crate) fn status_words(status: hyper::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// When a connection first wrote and first read.
#[derive(Default)]
struct Seen {
    first_write: Option<Instant>,
    first_read: Option<Instant>,
}

/// A connection that notes when it first wrote (the request going out) and first read
/// (the answer's first byte).
struct Watched<S> {
    inner: S,
    seen: Arc<Mutex<Seen>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if let Ok(mut seen) = self.seen.lock() {
                seen.first_read.get_or_insert_with(Instant::now);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            if let Ok(mut seen) = self.seen.lock() {
                seen.first_write.get_or_insert_with(Instant::now);
            }
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            if let Ok(mut seen) = self.seen.lock() {
                seen.first_write.get_or_insert_with(Instant::now);
            }
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The connection's driver, stopped when the check is done with it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_http_urls_without_credentials_are_checked() {
        assert_eq!(
            url("https://example.com/a?b=1").unwrap().as_str(),
            "https://example.com/a?b=1"
        );
        assert!(url("ftp://example.com/")
            .unwrap_err()
            .contains("only http and https"));
        assert!(url("example.com").unwrap_err().contains("is not a URL"));
        assert!(url("https://user:pw@example.com/")
            .unwrap_err()
            .contains("user name or password"));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert!(url(&long).unwrap_err().contains("at most 2048"));
    }

    #[test]
    fn html_is_told_by_its_type_whatever_its_parameters() {
        assert!(is_html("text/html"));
        assert!(is_html("Text/HTML; charset=utf-8"));
        assert!(is_html("application/xhtml+xml"));
        assert!(!is_html("text/plain"));
        assert!(!is_html("image/png"));
        assert!(!is_html("text/htmlx"));
    }
}
