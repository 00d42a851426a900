//! Shipping throughput: records per second from a local paging HTTP source into each
//! sink (files, gzip files, an HTTP collector, moto's S3), against a baseline measured
//! in the same run: the same pages read from the source and thrown away, which is the
//! most any shipper over that source could do. `octobox-ship-bench` prints the result as
//! one JSON line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use config::{Config, Secret, ShipperConfig, StoreConfig};
use jobs::redis::RedisStore;
use scheduler::Shipper;
use serde_json::{json, Value};

use crate::services::Redis;
use crate::shipping::{sample_records, Collector, EventSource, Moto};

pub struct Options {
    pub records: u64,
    pub windows: u64,
    pub page_size: usize,
    /// Also measure the S3 sink (needs moto, as `scripts/test` installs it).
    pub s3: bool,
}

const TOKEN: &str = "bench-token";

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .expect("a time")
        .to_utc()
}

fn config(name: &str, source: &str, page_size: usize, sink: &str) -> Result<ShipperConfig> {
    let text = format!(
        r#"
[[shipper]]
name = "{name}"
window = "1h"
first_window = "2026-11-01T00:00:00Z"
source = {{ url = "{source}", page_size = {page_size}, headers = {{ Authorization = "Bearer {TOKEN}" }} }}
sink = {sink}
"#
    );
    let config =
        Config::parse("bench.toml", &text, |_| None).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(config.shippers[0].clone())
}

/// Reads every page of every window and drops it: the source's own rate.
async fn baseline(source: &str, options: &Options) -> Result<(u64, Duration)> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut records = 0u64;
    for w in 0..options.windows {
        let since = start() + chrono::Duration::hours(w as i64);
        let until = since + chrono::Duration::hours(1);
        let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut url = reqwest::Url::parse(source)?;
        url.query_pairs_mut()
            .append_pair("since", &fmt(since))
            .append_pair("until", &fmt(until))
            .append_pair("limit", &options.page_size.to_string());
        loop {
            let page: Value = client
                .get(url.clone())
                .header("Authorization", format!("Bearer {TOKEN}"))
                .send()
                .await?
                .json()
                .await?;
            records += page["records"].as_array().map_or(0, Vec::len) as u64;
            match page["next"].as_str() {
                Some(next) => url = url.join(next)?,
                None => break,
            }
        }
    }
    Ok((records, started.elapsed()))
}

pub async fn run(options: &Options) -> Result<Value> {
    let redis = Redis::start();
    let store = Arc::new(
        RedisStore::connect(&StoreConfig::new(Secret::new(redis.url())))
            .await
            .context("the private Redis")?,
    );
    let span = Duration::from_secs(3600 * options.windows);
    let source = EventSource::start(
        sample_records(start(), span, options.records),
        TOKEN,
        Duration::ZERO,
    )
    .await;
    let now = start() + chrono::Duration::hours(options.windows as i64);
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(0).await;
    let moto = if options.s3 {
        Some(Moto::start().await)
    } else {
        None
    };
    if let Some(m) = &moto {
        m.create_bucket("bench").await;
    }

    // Once to warm the source up (its first pages are the slowest), once to measure.
    baseline(&source.url, options).await?;
    let (base_records, base_took) = baseline(&source.url, options).await?;
    let base_rate = base_records as f64 / base_took.as_secs_f64();
    let mut sinks = vec![
        (
            "files",
            format!("{{ kind = \"files\", dir = \"{}\" }}", dir.path().display()),
        ),
        (
            "files_gzip",
            format!(
                "{{ kind = \"files\", dir = \"{}\", gzip = true }}",
                dir.path().display()
            ),
        ),
        (
            "http_collector",
            format!(
                "{{ kind = \"http\", url = \"{}\", batch = {} }}",
                collector.url, options.page_size
            ),
        ),
    ];
    if let Some(m) = &moto {
        sinks.push(("s3", format!("{{ kind = \"s3\", endpoint = \"{}\", bucket = \"bench\", access_key = \"k\", secret_key = \"s\" }}", m.endpoint)));
    }
    let mut results = serde_json::Map::new();
    for (name, sink) in sinks {
        let shipper = Shipper::new(
            config(name, &source.url, options.page_size, &sink)?,
            store.clone(),
            store.clone(),
        );
        let report = shipper
            .run(now)
            .await
            .with_context(|| format!("shipping into {name}"))?;
        let rate = report.records as f64 / report.took.as_secs_f64();
        tracing::warn!(sink = name, %report, records_per_s = rate as u64, "measured");
        results.insert(
            name.to_string(),
            json!({
                "records": report.records,
                "bytes": report.bytes,
                "pages": report.pages,
                "seconds": report.took.as_secs_f64(),
                "records_per_s": rate.round(),
                "vs_source_only": (rate / base_rate * 100.0).round() / 100.0,
            }),
        );
    }
    Ok(json!({
        "records": options.records,
        "windows": options.windows,
        "page_size": options.page_size,
        "source_only": { "records": base_records, "seconds": base_took.as_secs_f64(), "records_per_s": base_rate.round() },
        "sinks": results,
    }))
}
