//! `octobox-bench`: the job pipeline under load, end to end, on this machine.
//!
//! One run starts a private Redis and RabbitMQ, one `octobox-worker` process, and the bot
//! in this very process (`Bot::start`), then measures:
//! - low load: jobs one at a time, round-trip percentiles;
//! - throughput: many jobs with a bounded window outstanding, jobs/s and percentiles;
//! - the resident memory of the bot (this process) and of the worker;
//! - the broker ceiling: RabbitMQ alone, carrying job-sized messages the way the
//!   pipeline asks it to;
//! - optionally, Celery doing the same two phases on the same RabbitMQ and Redis, its
//!   low-load tasks in blocks alternating with Octobox's.
//!
//! Modules:
//! - [`load`]: submitting through the router, receiving through a reply sink, one phase.
//! - [`ceiling`]: the raw broker rate, through lapin.
//! - [`containers`]: `--containers`, container jobs against `docker run --rm`.
//! - [`cluster`]: `--cluster`, throughput with one to three worker hosts against a
//!   RabbitMQ cluster and Redis with Sentinel, and that cluster's own ceiling.
//! - [`celery`]: the Celery script and its virtual environment.
//! - [`cpu`]: CPU time by process, to show where the throughput phase spent its time.
//! - [`redis_probe`]: Redis commands per job, and the events waiting for the async
//!   manager, during the throughput phase.
//! - [`ssh`]: `octobox-bench --ssh`, the SSH adapter with the OpenSSH client (a mode of
//!   its own: first answer and many sessions, each against a same-run baseline).
//! - [`history`]: `--history N`, filtered pages of the job history in a Redis holding N
//!   jobs, against `recent_jobs` in the same run, and Redis memory per job.
//! - [`shipping`]: shipper throughput by sink (`octobox-ship-bench`), a separate tool.
//! - [`slack`]: the Slack mode (`--slack`): people sending commands through the local
//!   Slack server; acknowledgement and reply latencies.
//! - [`stats`]: percentiles and rates, computed as the Celery script computes them.
//!
//! Every wait is bounded; every process started here is stopped before [`run`] returns.

pub mod ceiling;
pub mod celery;
pub mod cluster;
pub mod containers;
pub mod cpu;
pub mod history;
pub mod load;
pub mod redis_probe;
pub mod shipping;
pub mod slack;
pub mod ssh;
pub mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bot::async_manager::AsyncManager;
use bot::bot::Bot;
use chrono::Utc;
use config::Config;
use jobs::{Job, Task};
use serde_json::{json, Value};

use crate::processes::WorkerProcess;
use crate::services::{RabbitMq, Redis};
use load::{BenchSink, Phase, ADAPTER};
use stats::{rate, Percentiles};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Jobs in the throughput phase.
    pub jobs: usize,
    /// Jobs outstanding at most in the throughput phase.
    pub window: usize,
    /// Jobs in the low-load phase (one at a time).
    pub low_load: usize,
    /// `[worker] concurrency` of the worker process.
    pub concurrency: usize,
    /// Messages for the broker ceiling (default: `jobs`).
    pub ceiling_messages: Option<usize>,
    /// Run the Celery comparison too.
    pub celery: bool,
    /// Tasks in Celery's throughput phase (default: `jobs`).
    pub celery_jobs: Option<usize>,
    /// `RUST_LOG` for the bot (this process) and the worker.
    pub log_level: String,
    /// The longest any one phase may take.
    pub patience: Duration,
    /// The workspace, for the Celery script and its virtual environment.
    pub workspace: PathBuf,
}

/// Messages sent one at a time for the broker's low-load floor.
const FLOOR_MESSAGES: usize = 500;

/// With Celery, the low-load phase runs in this many blocks, alternating with Celery's.
const LOW_LOAD_BLOCKS: usize = 10;

/// `[broker] delivery_limit` in the bench's configuration (the default).
const DELIVERY_LIMIT: u32 = 5;

/// Runs everything and returns the report (the JSON line `octobox-bench` prints).
pub fn run(options: &Options) -> Result<Value> {
    eprintln!("octobox-bench: starting a private Redis and RabbitMQ");
    let redis = Redis::start();
    let mq = RabbitMq::start();
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let config_path = write_config(dir.path(), &mq, &redis, options.concurrency)?;
    let mut worker = WorkerProcess::start_with_env(
        &config_path,
        "bench-worker",
        &[("RUST_LOG", options.log_level.as_str())],
    );
    // Celery's worker starts now: its low-load tasks alternate with Octobox's.
    let celery = if options.celery {
        let c = celery::Celery::in_workspace(&options.workspace);
        c.prepare()?;
        eprintln!("octobox-bench: starting Celery's worker");
        Some(c.start(&celery::CeleryRun {
            broker_url: &mq.url(),
            redis_url: &redis.url(),
            window: options.window,
            patience: options.patience * 2,
        })?)
    } else {
        None
    };

    // The bot runs on the runtime `octobox-bot` runs on.
    let bot_runtime = jobs::process::build().context("the bot's runtime")?;
    let services = vec![("redis", redis.pid()), ("rabbitmq", mq.pid())];
    let worker_pid = worker
        .pid()
        .ok_or_else(|| anyhow!("the worker is not running"))?;

    // The measuring runs as a task on the runtime's thread, where `octobox-bot` runs its
    // adapters, not on this one: a reply then reaches it without waking another thread.
    let measuring = measure_pipeline(
        options.clone(),
        config_path.clone(),
        worker_pid,
        services,
        redis.port,
        celery,
    );
    let (pipeline, celery) = bot_runtime
        .block_on(async { tokio::spawn(measuring).await })
        .context("the measuring task ended early")
        .and_then(|measured| measured)
        .map_err(|e| {
            anyhow!(
                "{e:#}\n--- the worker's log (last lines) ---\n{}",
                tail(&worker.log(), 20)
            )
        })?;
    worker.terminate(Duration::from_secs(30));
    drop(bot_runtime);

    let messages = options.ceiling_messages.unwrap_or(options.jobs);
    eprintln!("octobox-bench: broker ceiling: {messages} messages straight through RabbitMQ");
    let me = std::process::id();
    let cpu_at = || {
        let rabbit = mq.pid().map_or(0.0, |pid| cpu::seconds(pid, true));
        (cpu::seconds(me, false), rabbit)
    };
    // A thread per core for the ceiling's publisher and consumer, so that what is
    // measured is the broker's limit and not its client's.
    let runtime = tokio::runtime::Runtime::new().context("a Tokio runtime")?;
    let (clients_before, rabbit_before) = cpu_at();
    let msgs_per_s = runtime
        .block_on(ceiling::measure(ceiling::Ceiling {
            url: &mq.url(),
            body: &pipeline.job_body,
            messages,
            window: options.window,
            prefetch: u16::try_from(options.concurrency).unwrap_or(u16::MAX),
            delivery_limit: DELIVERY_LIMIT,
            patience: options.patience,
        }))
        .context("measuring the broker ceiling")?;
    let (clients_after, rabbit_after) = cpu_at();
    let per_msg = |spent: f64| round3(spent * 1000.0 / messages.max(1) as f64);
    eprintln!("octobox-bench: broker floor: {FLOOR_MESSAGES} messages one at a time");
    let floor = runtime
        .block_on(ceiling::floor(ceiling::Ceiling {
            url: &mq.url(),
            body: &pipeline.job_body,
            messages: FLOOR_MESSAGES,
            window: 1,
            prefetch: u16::try_from(options.concurrency).unwrap_or(u16::MAX),
            delivery_limit: DELIVERY_LIMIT,
            patience: options.patience,
        }))
        .context("measuring the broker's low-load floor")?;
    let ceiling = CeilingFigures {
        messages,
        msgs_per_s,
        cpu_ms_per_msg: json!({
            "rabbitmq": per_msg(rabbit_after - rabbit_before),
            "publisher_and_consumer": per_msg(clients_after - clients_before),
        }),
        floor_delivered: Percentiles::of(&floor.delivered),
        floor_confirmed: Percentiles::of(&floor.confirmed),
    };
    drop(runtime);

    let celery = match celery {
        Some(mut session) => {
            let jobs = options.celery_jobs.unwrap_or(options.jobs);
            eprintln!(
                "octobox-bench: Celery: {jobs} tasks, window {}",
                options.window
            );
            session.throughput(jobs, options.window)?;
            let mut report = session.finish()?;
            report["low_load"] = json!({
                "jobs": pipeline.celery_low.len(),
                "blocks": LOW_LOAD_BLOCKS,
                "p50_ms": Percentiles::of(&pipeline.celery_low).map(|p| p.p50_ms),
                "p95_ms": Percentiles::of(&pipeline.celery_low).map(|p| p.p95_ms),
                "p99_ms": Percentiles::of(&pipeline.celery_low).map(|p| p.p99_ms),
            });
            Some(report)
        }
        None => None,
    };
    Ok(report(options, &pipeline, &ceiling, celery))
}

/// What the broker ceiling measured.
struct CeilingFigures {
    messages: usize,
    msgs_per_s: f64,
    /// CPU per message: RabbitMQ's, and this process's (lapin publishing and consuming).
    cpu_ms_per_msg: Value,
    /// One message at a time: from the publish to the delivery, and to the confirm.
    floor_delivered: Option<Percentiles>,
    floor_confirmed: Option<Percentiles>,
}

/// What the Octobox phases measured.
struct Pipeline {
    low: Phase,
    /// Celery's low-load round trips, taken in the blocks between Octobox's.
    celery_low: Vec<Duration>,
    high: Phase,
    /// CPU milliseconds per job in the throughput phase, by process.
    cpu_ms_per_job: Vec<(&'static str, f64)>,
    /// Events waiting for the async manager during the throughput phase: mean and most.
    event_backlog: (f64, u64),
    /// Redis commands per job in the throughput phase, by command.
    redis_calls_per_job: BTreeMap<String, f64>,
    bot_rss_mb: f64,
    worker_rss_mb: f64,
    /// One serialized job as the router makes it, for the ceiling's message size.
    job_body: Vec<u8>,
}

async fn measure_pipeline(
    options: Options,
    config_path: PathBuf,
    worker_pid: u32,
    services: Vec<(&'static str, Option<u32>)>,
    redis_port: u16,
    mut celery: Option<celery::CelerySession>,
) -> Result<(Pipeline, Option<celery::CelerySession>)> {
    let config = Config::load(&config_path)?;
    let bot = Bot::start(&config).await.context("starting the bot")?;
    let (sink, mut arrivals) = BenchSink::new();
    bot.sinks.register(ADAPTER, sink);
    let session = format!("bench-{}", std::process::id());
    let job_body = serde_json::to_vec(&sample_job(&bot, &session)?)?;

    let measured = async {
        // One job first: the worker is connected and every connection is open.
        load::run_phase(
            bot.router.clone(),
            &mut arrivals,
            &session,
            1,
            1,
            Duration::from_secs(60),
        )
        .await
        .context("the first job did not come back")?;
        // With Celery, its low-load tasks alternate with Octobox's in blocks, so that a
        // change in the machine's load during the run weighs on both alike.
        let blocks = if celery.is_some() { LOW_LOAD_BLOCKS } else { 1 };
        eprintln!(
            "octobox-bench: low load: {} jobs one at a time, in {blocks} block(s)",
            options.low_load
        );
        let mut parts = Vec::with_capacity(blocks);
        let mut celery_low = Vec::with_capacity(options.low_load);
        for block in 0..blocks {
            let count = options.low_load * (block + 1) / blocks - options.low_load * block / blocks;
            let part = load::run_phase(
                bot.router.clone(),
                &mut arrivals,
                &session,
                count,
                1,
                options.patience,
            )
            .await
            .context("low-load phase")?;
            parts.push(part);
            if let Some(mut c) = celery.take() {
                // The script blocks its caller; the bot's thread stays free meanwhile.
                let (c, round_trips) = tokio::task::spawn_blocking(move || {
                    let round_trips = c.low_load(count);
                    (c, round_trips)
                })
                .await?;
                celery_low.extend(round_trips.context("Celery's low-load phase")?);
                celery = Some(c);
            }
        }
        let low = Phase::combined(parts);
        eprintln!(
            "octobox-bench: throughput: {} jobs, window {}",
            options.jobs, options.window
        );
        // The bench process is the bot; the others are counted with their descendants.
        let mut counted = vec![
            ("bot", std::process::id(), false),
            ("worker", worker_pid, true),
        ];
        counted.extend(
            services
                .iter()
                .filter_map(|(name, pid)| Some((*name, (*pid)?, true))),
        );
        let before: Vec<f64> = counted
            .iter()
            .map(|&(_, pid, tree)| cpu::seconds(pid, tree))
            .collect();
        let redis_before = redis_probe::calls(redis_port)?;
        let backlog = redis_probe::BacklogProbe::start(
            redis_port,
            format!("{}events", jobs::redis::DEFAULT_PREFIX),
            AsyncManager::instance_group(&bot.instance),
        )?;
        let high = load::run_phase(
            bot.router.clone(),
            &mut arrivals,
            &session,
            options.jobs,
            options.window,
            options.patience,
        )
        .await
        .context("throughput phase")?;
        let event_backlog = backlog.finish();
        let redis_calls_per_job =
            redis_probe::per_job(&redis_before, &redis_probe::calls(redis_port)?, high.jobs);
        let cpu_ms_per_job = counted
            .iter()
            .zip(before)
            .map(|(&(name, pid, tree), before)| {
                let spent = cpu::seconds(pid, tree) - before;
                (name, round3(spent * 1000.0 / high.jobs.max(1) as f64))
            })
            .collect();
        anyhow::Ok(Pipeline {
            low,
            celery_low,
            high,
            cpu_ms_per_job,
            redis_calls_per_job,
            event_backlog,
            bot_rss_mb: rss_mb(std::process::id())?,
            worker_rss_mb: rss_mb(worker_pid)?,
            job_body,
        })
    }
    .await;
    if tokio::time::timeout(Duration::from_secs(30), bot.stop())
        .await
        .is_err()
    {
        eprintln!("octobox-bench: the bot did not stop within 30 s; going on");
    }
    measured.map(|pipeline| (pipeline, celery))
}

/// A job exactly as the router builds one for the bench's request (for its size).
fn sample_job(bot: &Bot, session: &str) -> Result<Job> {
    let request = load::request(session);
    let job = bot
        .catalog
        .load()
        .commands
        .job_for(&request.text, request.origin)?;
    if !matches!(job.task, Task::Native { .. }) {
        bail!("\"{}\" is not a native job", request.text);
    }
    Ok(job)
}

fn write_config(dir: &Path, mq: &RabbitMq, redis: &Redis, concurrency: usize) -> Result<PathBuf> {
    let path = dir.join("octobox.toml");
    let text = format!(
        r#"# Written by octobox-bench for its private services.
[broker]
url = "{mq}"
delivery_limit = {DELIVERY_LIMIT}

[store]
url = "{redis}"

[worker]
concurrency = {concurrency}
{quota}"#,
        mq = mq.url(),
        redis = redis.url(),
        // The load is one person's: measured is the bot, not its quotas.
        quota = crate::NO_QUOTA,
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `VmRSS` of a process, in MB.
pub fn rss_mb(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("{path} has no VmRSS line"))?;
    Ok((kb / 1024.0 * 10.0).round() / 10.0)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn report(
    options: &Options,
    pipeline: &Pipeline,
    ceiling: &CeilingFigures,
    celery: Option<Value>,
) -> Value {
    let high = Percentiles::of(&pipeline.high.round_trips);
    let low = Percentiles::of(&pipeline.low.round_trips);
    let low_submit = Percentiles::of(&pipeline.low.submissions);
    let jobs_per_s = rate(pipeline.high.jobs, pipeline.high.elapsed);
    let fraction = if ceiling.msgs_per_s > 0.0 {
        round3(jobs_per_s / ceiling.msgs_per_s)
    } else {
        0.0
    };
    let number = |v: &Value, key: &str| v.get(key).and_then(Value::as_f64);
    let vs_celery = celery.as_ref().map(|c| {
        let ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
            (Some(a), Some(b)) if b > 0.0 => json!(round3(a / b)),
            _ => Value::Null,
        };
        let low_p50 = c.get("low_load").and_then(|l| number(l, "p50_ms"));
        json!({
            "jobs_per_s_ratio": ratio(Some(jobs_per_s), number(c, "jobs_per_s")),
            "p50_ratio": ratio(high.map(|p| p.p50_ms), number(c, "p50_ms")),
            "low_load_p50_ratio": ratio(low.map(|p| p.p50_ms), low_p50),
        })
    });
    let ratio_of = |key: &str| {
        vs_celery
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(Value::as_f64)
    };
    json!({
        "jobs": pipeline.high.jobs,
        "window": options.window,
        "jobs_per_s": jobs_per_s,
        "p50_ms": high.map(|p| p.p50_ms),
        "p95_ms": high.map(|p| p.p95_ms),
        "p99_ms": high.map(|p| p.p99_ms),
        "low_load": {
            "jobs": pipeline.low.jobs,
            "p50_ms": low.map(|p| p.p50_ms),
            "p95_ms": low.map(|p| p.p95_ms),
            "p99_ms": low.map(|p| p.p99_ms),
            // The part of the round trip spent in `handle` (record + confirmed publish).
            "submit_p50_ms": low_submit.map(|p| p.p50_ms),
            "submit_p99_ms": low_submit.map(|p| p.p99_ms),
            // What the pipeline adds to RabbitMQ's own publish-to-delivery time.
            "p50_above_broker_floor_ms": low
                .zip(ceiling.floor_delivered)
                .map(|(l, f)| round3(l.p50_ms - f.p50_ms)),
        },
        "bot_rss_mb": pipeline.bot_rss_mb,
        "worker_rss_mb": pipeline.worker_rss_mb,
        "worker_concurrency": options.concurrency,
        "log_level": options.log_level,
        "cpu_ms_per_job": cpu_report(&pipeline.cpu_ms_per_job, jobs_per_s),
        "redis_calls_per_job": pipeline.redis_calls_per_job,
        // Events (each job appends three) unread or unacknowledged by the bot's group.
        "event_backlog": {
            "mean": pipeline.event_backlog.0,
            "max": pipeline.event_backlog.1,
        },
        "broker_ceiling_msgs_per_s": ceiling.msgs_per_s,
        "ceiling_messages": ceiling.messages,
        "ceiling_cpu_ms_per_msg": ceiling.cpu_ms_per_msg,
        "broker_floor": {
            "messages": FLOOR_MESSAGES,
            "publish_to_delivery_ms": ceiling.floor_delivered,
            "publish_to_confirm_ms": ceiling.floor_confirmed,
        },
        "ceiling_message_bytes": pipeline.job_body.len(),
        "fraction_of_ceiling": fraction,
        "celery": celery,
        "vs_celery": vs_celery,
        "targets": {
            "jobs_per_s_at_least_10x_celery": ratio_of("jobs_per_s_ratio").map(|r| r >= 10.0),
            "at_least_60pct_of_ceiling": fraction >= 0.6,
            // Both latency targets are read at low load, where a round trip is not a wait
            // in a queue of 256.
            "low_load_p50_at_most_half_celery": ratio_of("low_load_p50_ratio").map(|r| r <= 0.5),
            "low_load_p99_under_5ms": low.is_some_and(|p| p.p99_ms < 5.0),
            "worker_rss_under_20mb": pipeline.worker_rss_mb < 20.0,
        },
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "date": Utc::now().format("%Y-%m-%d").to_string(),
    })
}

/// CPU per job by process in the throughput phase, their total, and how busy that kept
/// the machine's cores (1.0: every core busy all the time).
fn cpu_report(per_job: &[(&str, f64)], jobs_per_s: f64) -> Value {
    let mut map = serde_json::Map::new();
    for (name, ms) in per_job {
        map.insert(name.to_string(), json!(ms));
    }
    let total: f64 = per_job.iter().map(|(_, ms)| ms).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    map.insert("total".into(), json!(round3(total)));
    map.insert(
        "cores_busy".into(),
        json!(round3(total * jobs_per_s / 1000.0 / cores)),
    );
    Value::Object(map)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
