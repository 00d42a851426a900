//! `octobox-bench --operator`: the operator's view under a large history and a busy
//! pipeline. A private Redis and RabbitMQ, one worker process, and the bot in this process
//! serving its API and dashboard; the history is filled with `--history-jobs` jobs (the
//! same mix as `--history`), then:
//!
//! - the dashboard's jobs page, first and filtered, and the API's filtered page, fetched
//!   over HTTP with a session cookie or a token, each against `/healthz` on the same
//!   listener (the HTTP round trip alone) as the baseline;
//! - an event's time from the store to an open page in headless Chromium while jobs are
//!   asked at `--rate` a second: the page's own script notes, for every event, the time
//!   from the event's `at` (when the worker or bot wrote it) to its arrival; the same
//!   events read by an HTTP client in this process are the baseline.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use config::{Secret, StoreConfig};
use jobs::redis::RedisStore;
use jobs::Origin;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::stats::Percentiles;
use crate::browser::Browser;
use crate::processes::WorkerProcess;
use crate::services::{RabbitMq, Redis};

/// The token the bench logs in with.
const TOKEN: &str = "bench-operator-token-0123456789abcdef";

/// What to measure.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    /// Jobs in the history before anything is measured.
    pub history_jobs: usize,
    /// Fetches of each page.
    pub fetches: usize,
    /// Jobs asked a second while events are timed.
    pub rate: u32,
    /// For how long jobs are asked.
    pub seconds: u32,
    pub log_level: String,
}

/// Runs the measurement; the JSON report.
pub fn run(options: &OperatorOptions) -> Result<Value> {
    eprintln!("octobox-bench: starting a private Redis and RabbitMQ");
    let redis = Redis::start();
    super::redis_probe::config_set(redis.port, "appendonly", "no")?;
    let mq = RabbitMq::start();
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let http = crate::services::free_port();
    let config_path = write_config(dir.path(), "octobox.toml", &mq, &redis, http)?;
    // The worker's own file: the same queue and store, its own (free) metrics listener —
    // with the bot's, one of the two could not listen and would stop.
    let worker_config = write_config(
        dir.path(),
        "worker.toml",
        &mq,
        &redis,
        crate::services::free_port(),
    )?;
    let runtime = tokio::runtime::Runtime::new().context("a Tokio runtime")?;
    let before = super::redis_probe::used_memory(redis.port)?;
    runtime.block_on(async {
        let config = StoreConfig {
            retention: Duration::from_secs(40 * 86_400),
            ..StoreConfig::new(Secret::new(redis.url()))
        };
        let store = Arc::new(RedisStore::connect(&config).await?);
        eprintln!("octobox-bench: recording {} jobs", options.history_jobs);
        super::history::fill(&store, options.history_jobs, Utc::now()).await
    })?;
    let after = super::redis_probe::used_memory(redis.port)?;
    let mut worker = WorkerProcess::start_with_env(
        &worker_config,
        "bench-worker",
        &[("RUST_LOG", options.log_level.as_str())],
    );
    let config = config::Config::load(&config_path).map_err(|e| anyhow!("{e}"))?;
    let bot_runtime = jobs::process::build().context("the bot's runtime")?;
    let bot = bot_runtime.block_on(bot::bot::Bot::start(&config))?;
    let base = format!("http://127.0.0.1:{http}");
    let measured = runtime.block_on(measure(&base, &bot, &bot_runtime, options));
    bot_runtime.block_on(bot.stop());
    worker.terminate(Duration::from_secs(30));
    let mut report = measured?;
    if report["events_finished_seen_in_process"].as_u64() < report["events_asked"].as_u64() {
        // The figures would be of part of the jobs only: show why the rest never finished.
        let log = worker.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!(
            "octobox-bench: the worker finished only part of the jobs; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    report["history_jobs"] = json!(options.history_jobs);
    report["redis_bytes_per_job"] =
        json!(((after.saturating_sub(before)) as f64 / options.history_jobs.max(1) as f64).round());
    Ok(report)
}

fn write_config(
    dir: &Path,
    name: &str,
    mq: &RabbitMq,
    redis: &Redis,
    http: u16,
) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    let text = format!(
        r#"[broker]
url = "{mq}"

[store]
url = "{redis}"
retention = "40d"

[worker]
concurrency = 16

[http]
listen = "127.0.0.1:{http}"

[api]
requests_per_minute = 100000

[[api.token]]
name = "bench"
groups = ["auditors"]
token = "{TOKEN}"

[acl]
default = "allow"
{quota}"#,
        mq = mq.url(),
        redis = redis.url(),
        quota = crate::NO_QUOTA,
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `fetches` GETs of `path` with `headers`; each must answer 200.
async fn timed_gets(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    fetches: usize,
) -> Result<Vec<Duration>> {
    let mut took = Vec::with_capacity(fetches);
    for _ in 0..fetches {
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let started = Instant::now();
        let response = request.send().await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response.bytes().await?;
        took.push(started.elapsed());
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
        }
    }
    Ok(took)
}

fn figures(samples: &[Duration], baseline: &Percentiles) -> Value {
    match Percentiles::of(samples) {
        Some(p) => json!({
            "p50_ms": p.p50_ms, "p99_ms": p.p99_ms,
            "p99_vs_baseline": (p.p99_ms / baseline.p99_ms.max(0.001) * 10.0).round() / 10.0,
        }),
        None => Value::Null,
    }
}

async fn measure(
    base: &str,
    bot: &bot::bot::Bot,
    bot_runtime: &tokio::runtime::Runtime,
    options: &OperatorOptions,
) -> Result<Value> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // A session, as the browser gets one.
    let login = client
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await?;
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow!("the login set no cookie: {}", login.status()))?
        .to_string();
    let session = [("cookie", cookie)];
    let bearer = [("authorization", format!("Bearer {TOKEN}"))];
    let n = options.fetches;
    eprintln!("octobox-bench: fetching pages, {n} of each");
    let baseline = timed_gets(&client, &format!("{base}/healthz"), &[], n).await?;
    let base_p = Percentiles::of(&baseline).ok_or_else(|| anyhow!("no baseline"))?;
    let pages = [
        (
            "dashboard_jobs_first_page",
            format!("{base}/ui/jobs"),
            &session[..],
        ),
        (
            "dashboard_jobs_failed",
            format!("{base}/ui/jobs?status=failed"),
            &session[..],
        ),
        (
            "dashboard_jobs_command_and_status",
            format!("{base}/ui/jobs?command=deploy&status=failed"),
            &session[..],
        ),
        (
            "api_jobs_failed",
            format!("{base}/api/v1/jobs?status=failed&limit=50"),
            &bearer[..],
        ),
        (
            "api_jobs_requester",
            format!("{base}/api/v1/jobs?requester=slack:U0042&limit=50"),
            &bearer[..],
        ),
    ];
    let mut report = json!({ "baseline_healthz": figures(&baseline, &base_p) });
    for (name, url, headers) in pages {
        let took = timed_gets(&client, &url, headers, n).await?;
        report[name] = figures(&took, &base_p);
    }

    eprintln!(
        "octobox-bench: events to an open page at {} jobs/s for {} s",
        options.rate, options.seconds
    );
    let browser = Browser::start().await?;
    browser.goto(&format!("{base}/ui/login")).await?;
    browser.find("#token").await?.send_keys(TOKEN).await?;
    browser.find("#login").await?.click().await?;
    browser.wait_for("#jobs", Duration::from_secs(30)).await?;
    // The page's own listener: arrival minus the event's time, in ms.
    browser
        .execute(
            "window.lat = []; const s = new EventSource('/api/v1/events');\
             s.onmessage = (m) => { const e = JSON.parse(m.data); if (!e.at) return;\
               window.lat.push([e.event, Date.now() - Date.parse(e.at.slice(0, 23) + 'Z')]); };",
            vec![],
        )
        .await?;
    // The baseline listener, in this process.
    let mut stream = crate::api::Api {
        base: base.to_string(),
        token: Some(TOKEN.to_string()),
        http: client.clone(),
    }
    .stream("/api/v1/events")
    .await;
    let total = options.rate as usize * options.seconds as usize;
    let router = bot.router.clone();
    let interval = Duration::from_secs(1) / options.rate.max(1);
    let asking = bot_runtime.spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for i in 0..total {
            tick.tick().await;
            let router = router.clone();
            tokio::spawn(async move {
                let request = bot::request::Request {
                    text: format!("echo {i}"),
                    // Many people, as a busy Octobox has: one person's quota places
                    // would be read on every request past a few thousand outstanding.
                    origin: Origin::new("bench", format!("operator-{}", i % 500)),
                };
                router.handle(&request).await
            });
        }
    });
    let mut in_process: Vec<(String, Duration)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(u64::from(options.seconds) + 30);
    let mut finished = 0;
    while finished < total && Instant::now() < deadline {
        let Some(ev) = stream.next(Duration::from_secs(10)).await else {
            break;
        };
        if let Some(at) = ev["at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            let ms = (Utc::now() - at.with_timezone(&Utc))
                .num_microseconds()
                .unwrap_or(0);
            let kind = ev["event"].as_str().unwrap_or("other").to_string();
            in_process.push((kind, Duration::from_micros(u64::try_from(ms).unwrap_or(0))));
        }
        if ev["event"] == "finished" {
            finished += 1;
        }
    }
    asking.await.context("asking jobs")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let page: Vec<(String, f64)> =
        serde_json::from_value(browser.execute("return window.lat;", vec![]).await?)?;
    let page: Vec<(String, Duration)> = page
        .into_iter()
        .map(|(kind, ms)| (kind, Duration::from_micros((ms.max(0.0) * 1000.0) as u64)))
        .collect();
    let all = |samples: &[(String, Duration)]| samples.iter().map(|(_, d)| *d).collect::<Vec<_>>();
    let proc_p = Percentiles::of(&all(&in_process))
        .ok_or_else(|| anyhow!("no event reached the bench's listener"))?;
    report["events_asked"] = json!(total);
    report["events_finished_seen_in_process"] = json!(finished);
    report["events_seen_by_page"] = json!(page.len());
    report["event_to_http_client"] = figures(&all(&in_process), &proc_p);
    report["event_to_browser_page"] = figures(&all(&page), &proc_p);
    // Each kind apart: `queued` is written by the bot, `started` and `finished` by the
    // worker process, so they measure the whole path from another process.
    for kind in ["queued", "started", "finished"] {
        let of = |samples: &[(String, Duration)]| {
            samples
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, d)| *d)
                .collect::<Vec<_>>()
        };
        let baseline = Percentiles::of(&of(&in_process)).unwrap_or(proc_p);
        report[format!("{kind}_to_http_client")] = figures(&of(&in_process), &baseline);
        report[format!("{kind}_to_browser_page")] = figures(&of(&page), &baseline);
    }
    Ok(report)
}
