//! `[[shipper]]`: records moved from a source (an HTTP JSON API, or Octobox's own audit
//! trail) to a sink (files, an HTTP collector, an S3 bucket), one time window at a time.
//!
//! Which schedule fires a shipper is `schedule`'s business; this module owns what a
//! shipper is, its defaults, and the checks of one entry. Header values and sink keys
//! may be `${ENV}` secrets.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::fields::{duration_at_least, is_name};
use crate::secret::{expand_env, Secret};

/// One `[[shipper]]`: records moved from a source to a sink, window by window.
#[derive(Debug, Clone)]
pub struct ShipperConfig {
    pub line: usize,
    pub name: String,
    /// The length of a window; windows are aligned to the Unix epoch in UTC, so `1d`
    /// windows are UTC days.
    pub window: Duration,
    /// Where shipping starts when no checkpoint exists: by default the last whole window.
    pub first_window: Option<DateTime<Utc>>,
    pub source: SourceConfig,
    pub sink: SinkConfig,
}

/// Where a shipper reads its records (`source = { kind = ... }`, `"http"` unless said).
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// An HTTP JSON API that answers a time window, a page at a time.
    Http(HttpSourceConfig),
    /// The audit trail in the job store (`[store]`, or the embedded store), read
    /// `page_size` entries at a time; each record is one `AuditEntry`.
    Audit { page_size: usize },
}

/// How many records a source is asked for at once when `page_size` is not set.
const DEFAULT_PAGE_SIZE: usize = 500;

/// An HTTP JSON API that answers a time window, a page at a time.
#[derive(Debug, Clone)]
pub struct HttpSourceConfig {
    pub url: String,
    pub since_param: String,
    pub until_param: String,
    pub page_size_param: String,
    pub page_size: usize,
    /// The field of a page that holds its records (an array).
    pub records: String,
    /// The field of a page that holds the next page's URL (absent or null on the last).
    pub next: String,
    /// Sent with every request; values may be `${ENV}` secrets.
    pub headers: BTreeMap<String, Secret>,
}

impl HttpSourceConfig {
    /// A source at `url` that reads the usual names: `since`, `until` and `limit` for the
    /// window and the page size (500), `records` and `next` in each page; no headers.
    pub fn new(url: String) -> Self {
        HttpSourceConfig {
            url,
            since_param: "since".into(),
            until_param: "until".into(),
            page_size_param: "limit".into(),
            page_size: DEFAULT_PAGE_SIZE,
            records: "records".into(),
            next: "next".into(),
            headers: BTreeMap::new(),
        }
    }
}

/// How many records an `http` sink posts at once when `batch` is not set.
const DEFAULT_BATCH: usize = 500;

/// The region an `s3` sink signs for when `region` is not set: the one MinIO and most
/// S3-compatible servers answer to when none is configured.
const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// One JSON Lines file per window in `dir`.
    Files { dir: String, gzip: bool },
    /// Batches POSTed as JSON Lines to a collector.
    Http {
        url: String,
        batch: usize,
        headers: BTreeMap<String, Secret>,
    },
    /// One JSON Lines object per window in an S3-compatible bucket.
    S3 {
        endpoint: String,
        bucket: String,
        region: String,
        prefix: String,
        access_key: Secret,
        secret_key: Secret,
        gzip: bool,
    },
}

/// Checks one `[[shipper]]`; problems come back as (`.field`, message).
pub(super) fn shipper(
    raw: RawShipper,
    line: usize,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ShipperConfig, Vec<(String, String)>> {
    let mut problems = Vec::new();
    if !is_name(&raw.name) {
        problems.push((
            ".name".into(),
            format!(
                "\"{}\" is not a shipper name: use letters, digits, - and _",
                raw.name
            ),
        ));
    }
    let window = match duration_at_least(&raw.window, Duration::from_secs(1)) {
        Ok(d) => d,
        Err(m) => {
            problems.push((".window".into(), m));
            Duration::from_secs(1)
        }
    };
    let first_window =
        raw.first_window
            .as_deref()
            .and_then(|t| match DateTime::parse_from_rfc3339(t) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(e) => {
                    problems.push((
                        ".first_window".into(),
                        format!("\"{t}\" is not an RFC 3339 time (2026-11-01T00:00:00Z): {e}"),
                    ));
                    None
                }
            });
    let mut secret = |key: &str, raw: &str| match expand_env(raw, env) {
        Ok(v) => Secret::new(v),
        Err(e) => {
            problems.push((key.to_string(), e.to_string()));
            Secret::new("")
        }
    };
    let mut headers = |key: &str, raw: &BTreeMap<String, String>| {
        raw.iter()
            .map(|(h, v)| (h.clone(), secret(&format!("{key}.{h}"), v)))
            .collect::<BTreeMap<_, _>>()
    };
    let mut raw_source = raw.source;
    let source_headers = headers(".source.headers", &std::mem::take(&mut raw_source.headers));
    let (source, source_problems) = source(raw_source, source_headers);
    let k = raw.sink;
    let gzip = k.gzip.unwrap_or(false);
    let sink = match k.kind.as_str() {
        "files" => k.dir.clone().map(|dir| SinkConfig::Files { dir, gzip }),
        "http" => k.url.clone().map(|url| SinkConfig::Http {
            url,
            batch: k.batch.unwrap_or(DEFAULT_BATCH),
            headers: headers(".sink.headers", &k.headers),
        }),
        "s3" => match (&k.endpoint, &k.bucket, &k.access_key, &k.secret_key) {
            (Some(e), Some(b), Some(a), Some(s)) => Some(SinkConfig::S3 {
                endpoint: e.clone(),
                bucket: b.clone(),
                region: k.region.clone().unwrap_or_else(|| DEFAULT_REGION.into()),
                prefix: k.prefix.clone().unwrap_or_default(),
                access_key: secret(".sink.access_key", a),
                secret_key: secret(".sink.secret_key", s),
                gzip,
            }),
            _ => None,
        },
        other => {
            problems.push((
                ".sink.kind".into(),
                format!("\"{other}\" is not a sink: write \"files\", \"http\" or \"s3\""),
            ));
            Some(SinkConfig::Files {
                dir: String::new(),
                gzip: false,
            })
        }
    };
    problems.extend(source_problems);
    let Some(sink) = sink else {
        let needs = match k.kind.as_str() {
            "files" => "`dir`",
            "http" => "`url`",
            _ => "`endpoint`, `bucket`, `access_key` and `secret_key`",
        };
        problems.push((
            ".sink".into(),
            format!("a \"{}\" sink needs {needs}", k.kind),
        ));
        return Err(problems);
    };
    let source_url = match &source {
        // A missing `url` is named already.
        SourceConfig::Http(http) => Some(&http.url).filter(|u| !u.is_empty()),
        SourceConfig::Audit { .. } => None,
    };
    for (key, url) in [(".source.url", source_url), (".sink.url", k.url.as_ref())]
        .into_iter()
        .chain([(".sink.endpoint", k.endpoint.as_ref())])
    {
        if let Some(u) = url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push((
                    key.into(),
                    format!("\"{u}\" is not an http:// or https:// URL"),
                ));
            }
        }
    }
    let page_size = match &source {
        SourceConfig::Http(http) => http.page_size,
        SourceConfig::Audit { page_size } => *page_size,
    };
    if page_size == 0 || matches!(sink, SinkConfig::Http { batch: 0, .. }) {
        problems.push((
            ".source.page_size".into(),
            "sizes must be at least 1".into(),
        ));
    }
    if problems.is_empty() {
        Ok(ShipperConfig {
            line,
            name: raw.name,
            window,
            first_window,
            source,
            sink,
        })
    } else {
        Err(problems)
    }
}

/// Checks a shipper's `source`: an `"http"` one (the default) needs `url`; an `"audit"`
/// one reads the store and takes `page_size` only, so a key of the HTTP source beside it
/// is a mistake worth naming, not something to ignore. `headers` are `s`'s, read already.
/// Problems come back as (`.field`, message), with a source to go on checking the rest.
fn source(
    s: RawSource,
    headers: BTreeMap<String, Secret>,
) -> (SourceConfig, Vec<(String, String)>) {
    let mut problems = Vec::new();
    let page_size = s.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    match s.kind.as_deref().unwrap_or("http") {
        "http" => {
            let url = s.url.unwrap_or_else(|| {
                problems.push((
                    ".source.url".into(),
                    "an \"http\" source needs `url` (or write `kind = \"audit\"` to ship the \
                     audit trail)"
                        .into(),
                ));
                String::new()
            });
            let default = HttpSourceConfig::new(url);
            let http = HttpSourceConfig {
                headers,
                since_param: s.since_param.unwrap_or(default.since_param),
                until_param: s.until_param.unwrap_or(default.until_param),
                page_size_param: s.page_size_param.unwrap_or(default.page_size_param),
                page_size,
                records: s.records.unwrap_or(default.records),
                next: s.next.unwrap_or(default.next),
                ..default
            };
            (SourceConfig::Http(http), problems)
        }
        "audit" => {
            let http_only = [
                ("url", s.url.is_some()),
                ("since_param", s.since_param.is_some()),
                ("until_param", s.until_param.is_some()),
                ("page_size_param", s.page_size_param.is_some()),
                ("records", s.records.is_some()),
                ("next", s.next.is_some()),
                ("headers", !headers.is_empty()),
            ];
            for (key, given) in http_only {
                if given {
                    problems.push((
                        format!(".source.{key}"),
                        format!(
                            "an \"audit\" source reads the audit trail from the store and \
                             takes only `page_size`: remove `{key}`"
                        ),
                    ));
                }
            }
            (SourceConfig::Audit { page_size }, problems)
        }
        other => {
            problems.push((
                ".source.kind".into(),
                format!("\"{other}\" is not a source: write \"http\" or \"audit\""),
            ));
            (SourceConfig::Audit { page_size }, problems)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShipper {
    name: String,
    window: String,
    first_window: Option<String>,
    source: RawSource,
    sink: RawSink,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: Option<String>,
    url: Option<String>,
    since_param: Option<String>,
    until_param: Option<String>,
    page_size_param: Option<String>,
    page_size: Option<usize>,
    records: Option<String>,
    next: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    kind: String,
    dir: Option<String>,
    gzip: Option<bool>,
    url: Option<String>,
    batch: Option<usize>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    prefix: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
}
