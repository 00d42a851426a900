//! `[[shipper]]`: records moved from an HTTP JSON source to a sink (files, an HTTP
//! collector, an S3 bucket), one time window at a time.
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

/// One `[[shipper]]`: records moved from an HTTP source to a sink, window by window.
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

/// An HTTP JSON API that answers a time window, a page at a time.
#[derive(Debug, Clone)]
pub struct SourceConfig {
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

impl SourceConfig {
    /// A source at `url` that reads the usual names: `since`, `until` and `limit` for the
    /// window and the page size (500), `records` and `next` in each page; no headers.
    pub fn new(url: String) -> Self {
        SourceConfig {
            url,
            since_param: "since".into(),
            until_param: "until".into(),
            page_size_param: "limit".into(),
            page_size: 500,
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
    let s = raw.source;
    let default = SourceConfig::new(s.url);
    let source = SourceConfig {
        headers: headers(".source.headers", &s.headers),
        since_param: s.since_param.unwrap_or(default.since_param),
        until_param: s.until_param.unwrap_or(default.until_param),
        page_size_param: s.page_size_param.unwrap_or(default.page_size_param),
        page_size: s.page_size.unwrap_or(default.page_size),
        records: s.records.unwrap_or(default.records),
        next: s.next.unwrap_or(default.next),
        ..default
    };
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
    for (key, url) in [
        (".source.url", Some(&source.url)),
        (".sink.url", k.url.as_ref()),
    ]
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
    if source.page_size == 0 || matches!(sink, SinkConfig::Http { batch: 0, .. }) {
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
    url: String,
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
