//! The far ends of a shipper, local and real: an event source that pages like Halo's
//! exports (axum), a collector that fails some requests (axum), and an S3-compatible
//! server (moto's server mode, installed by `scripts/test` into `target/moto-venv`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// `count` records `{"id": i, "at": ...}` spread evenly over `[start, start + span)`.
pub fn sample_records(start: DateTime<Utc>, span: Duration, count: u64) -> Vec<Value> {
    let step = span.as_millis() as i64 / count as i64;
    (0..count)
        .map(|i| {
            let at = start + chrono::Duration::milliseconds(step * i as i64);
            json!({"id": i, "at": at.to_rfc3339_opts(SecondsFormat::Millis, true), "host": format!("h{}", i % 7)})
        })
        .collect()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

struct SourceState {
    /// Sorted by time, so a window is found by binary search.
    records: Vec<(DateTime<Utc>, Value)>,
    token: String,
    page_delay: Duration,
    pages_served: AtomicU64,
    /// Pages past this many hang until it is raised (a source gone quiet).
    stall_after: AtomicU64,
}

/// An HTTP JSON API answering `since`/`until`/`limit` with pages and relative
/// `next` links, refusing requests without `Authorization: Bearer <token>`.
pub struct EventSource {
    pub url: String,
    state: Arc<SourceState>,
}

impl EventSource {
    pub async fn start(records: Vec<Value>, token: &str, page_delay: Duration) -> Self {
        let mut records: Vec<(DateTime<Utc>, Value)> = records
            .into_iter()
            .map(|r| {
                let at = DateTime::parse_from_rfc3339(r["at"].as_str().unwrap_or_default())
                    .expect("records have an RFC 3339 \"at\"")
                    .to_utc();
                (at, r)
            })
            .collect();
        records.sort_by_key(|(at, _)| *at);
        let state = Arc::new(SourceState {
            records,
            token: token.to_string(),
            page_delay,
            pages_served: AtomicU64::new(0),
            stall_after: AtomicU64::new(u64::MAX),
        });
        let app = Router::new()
            .route("/v1/events", get(page))
            .with_state(state.clone());
        let addr = serve(app).await;
        EventSource {
            url: format!("http://{addr}/v1/events"),
            state,
        }
    }

    pub fn pages_served(&self) -> u64 {
        self.state.pages_served.load(Ordering::SeqCst)
    }

    /// Serves `pages` more pages, then hangs every request until [`Self::release`].
    pub fn stall_after(&self, pages: u64) {
        self.state.stall_after.store(pages, Ordering::SeqCst);
    }

    pub fn release(&self) {
        self.state.stall_after.store(u64::MAX, Ordering::SeqCst);
    }
}

async fn page(
    State(state): State<Arc<SourceState>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> axum::response::Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", state.token));
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "no token").into_response();
    }
    let time = |k: &str| {
        q.get(k)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc())
    };
    let (Some(since), Some(until)) = (time("since"), time("until")) else {
        return (StatusCode::BAD_REQUEST, "since and until are required").into_response();
    };
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let cursor: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    tokio::time::sleep(state.page_delay).await;
    while state.pages_served.load(Ordering::SeqCst) >= state.stall_after.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = state.records.partition_point(|(at, _)| *at < since);
    let end = state.records.partition_point(|(at, _)| *at < until);
    let matching = &state.records[first..end.max(first)];
    let records: Vec<&Value> = matching
        .iter()
        .skip(cursor)
        .take(limit)
        .map(|(_, r)| r)
        .collect();
    let next = (cursor + limit < matching.len()).then(|| {
        format!(
            "events?since={}&until={}&limit={limit}&cursor={}",
            q["since"].replace('+', "%2B"),
            q["until"].replace('+', "%2B"),
            cursor + limit
        )
    });
    state.pages_served.fetch_add(1, Ordering::SeqCst);
    Json(json!({"records": records, "next": next})).into_response()
}

#[derive(Default)]
struct CollectorState {
    /// Every record received in an accepted batch, in order.
    records: Mutex<Vec<Value>>,
    /// Batches accepted, by idempotency key.
    batches: Mutex<BTreeMap<String, usize>>,
    requests: AtomicU64,
    fail_every: u64,
}

/// A collector taking JSON Lines batches by POST that answers 503 (every
/// `fail_every`-th request) or 429 (the one after) without keeping the batch.
pub struct Collector {
    pub url: String,
    state: Arc<CollectorState>,
}

impl Collector {
    pub async fn start(fail_every: u64) -> Self {
        let state = Arc::new(CollectorState {
            fail_every,
            ..CollectorState::default()
        });
        let app = Router::new()
            .route("/ingest", post(ingest))
            .with_state(state.clone());
        let addr = serve(app).await;
        Collector {
            url: format!("http://{addr}/ingest"),
            state,
        }
    }

    pub fn records(&self) -> Vec<Value> {
        self.state.records.lock().unwrap().clone()
    }

    /// How many times each idempotency key was accepted.
    pub fn batches(&self) -> BTreeMap<String, usize> {
        self.state.batches.lock().unwrap().clone()
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

async fn ingest(
    State(state): State<Arc<CollectorState>>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if state.fail_every > 0 && n % state.fail_every == 0 {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    if state.fail_every > 0 && n % state.fail_every == 1 && n > 1 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response();
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let parsed: Result<Vec<Value>, _> = body.lines().map(serde_json::from_str).collect();
    let Ok(records) = parsed else {
        return (StatusCode::BAD_REQUEST, "not JSON Lines").into_response();
    };
    state.records.lock().unwrap().extend(records);
    *state.batches.lock().unwrap().entry(key).or_default() += 1;
    StatusCode::NO_CONTENT.into_response()
}

/// moto's S3-compatible server on a free port, stopped when dropped.
pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Moto {
    /// Where `scripts/test` installs moto (override with `OCTOBOX_MOTO_SERVER`).
    pub fn server_path() -> PathBuf {
        std::env::var_os("OCTOBOX_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../target/moto-venv/bin/moto_server")
            })
    }

    pub async fn start() -> Self {
        let server = Self::server_path();
        assert!(
            server.exists(),
            "{} is missing: scripts/test installs moto's server from PyPI",
            server.display()
        );
        let port = crate::services::free_port();
        let mut child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if client.get(&endpoint).send().await.is_ok() {
                return Moto { endpoint, child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto_server did not answer on port {port}");
    }

    /// A bucket handle and credentials (moto takes any) to sign requests with.
    fn bucket(&self, bucket: &str) -> (rusty_s3::Bucket, rusty_s3::Credentials) {
        let url = self.endpoint.parse().expect("a URL");
        let bucket = rusty_s3::Bucket::new(
            url,
            rusty_s3::UrlStyle::Path,
            bucket.to_string(),
            "us-east-1",
        )
        .expect("a bucket");
        (bucket, rusty_s3::Credentials::new("test", "test"))
    }

    pub async fn create_bucket(&self, name: &str) {
        use rusty_s3::S3Action;
        let (bucket, credentials) = self.bucket(name);
        let url = bucket
            .create_bucket(&credentials)
            .sign(Duration::from_secs(60));
        let r = reqwest::Client::new()
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .send()
            .await
            .expect("moto answers");
        assert!(
            r.status().is_success(),
            "bucket not created: {}",
            r.status()
        );
    }

    /// Every object of `bucket`, by key.
    pub async fn objects(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        use rusty_s3::S3Action;
        let (bucket, credentials) = self.bucket(name);
        let client = reqwest::Client::new();
        let get = |url: reqwest::Url| {
            let client = client.clone();
            async move {
                let r = client.get(url).send().await.expect("moto answers");
                assert!(
                    r.status().is_success(),
                    "moto refused a read: {}",
                    r.status()
                );
                r.bytes().await.expect("a body").to_vec()
            }
        };
        let listing = get(bucket
            .list_objects_v2(Some(&credentials))
            .sign(Duration::from_secs(60)))
        .await;
        let listing = String::from_utf8(listing).expect("an XML listing");
        let keys = regex::Regex::new("<Key>([^<]+)</Key>").expect("a regex");
        let mut objects = BTreeMap::new();
        for key in keys.captures_iter(&listing).map(|c| c[1].to_string()) {
            let url = bucket
                .get_object(Some(&credentials), &key)
                .sign(Duration::from_secs(60));
            objects.insert(key, get(url).await);
        }
        objects
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The records of JSON Lines text, gzip-compressed or not.
pub fn read_json_lines(bytes: &[u8]) -> Vec<Value> {
    use std::io::Read;
    let mut text = String::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .expect("valid gzip");
    } else {
        text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    }
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// How many times each record id occurs.
pub fn id_counts(records: &[Value]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for r in records {
        *counts.entry(r["id"].as_u64().expect("an id")).or_default() += 1;
    }
    counts
}

/// What a hostile source does with its first page.
#[derive(Clone, Copy, Debug)]
pub enum Hostility {
    /// Answers a page whose `next` link is on another origin (the [`Catcher`]).
    LinksElsewhere,
    /// Answers with a redirect to another origin (the [`Catcher`]).
    RedirectsElsewhere,
    /// Answers a page of this many bytes, without a `Content-Length`.
    Huge(usize),
}

/// A server on another origin that records every request reaching it, to show that a
/// source's headers never go there.
pub struct Catcher {
    pub url: String,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

impl Catcher {
    pub async fn start() -> Self {
        let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
        let caught = seen.clone();
        let app = Router::new().fallback(move |headers: HeaderMap| {
            let caught = caught.clone();
            async move {
                caught.lock().unwrap().push(headers);
                Json(json!({"records": [], "next": null}))
            }
        });
        let addr = serve(app).await;
        Catcher {
            url: format!("http://{addr}/steal"),
            seen,
        }
    }

    /// The headers of each request that reached it.
    pub fn requests(&self) -> Vec<HeaderMap> {
        self.seen.lock().unwrap().clone()
    }
}

/// A source at `/v1/events` that does what `hostility` says.
pub async fn hostile_source(hostility: Hostility, elsewhere: &str) -> String {
    let elsewhere = elsewhere.to_string();
    let app = Router::new().route(
        "/v1/events",
        get(move || {
            let elsewhere = elsewhere.clone();
            async move {
                match hostility {
                    Hostility::LinksElsewhere => {
                        Json(json!({"records": [{"id": 1}], "next": elsewhere})).into_response()
                    }
                    Hostility::RedirectsElsewhere => (
                        StatusCode::FOUND,
                        [(axum::http::header::LOCATION, elsewhere)],
                    )
                        .into_response(),
                    Hostility::Huge(bytes) => {
                        let chunk = vec![b' '; 64 * 1024];
                        let chunks = bytes.div_ceil(chunk.len());
                        let stream = futures::stream::iter(
                            (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                        );
                        axum::body::Body::from_stream(stream).into_response()
                    }
                }
            }
        }),
    );
    let addr = serve(app).await;
    format!("http://{addr}/v1/events")
}
