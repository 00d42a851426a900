//! `octobox-bench --history N`: filtered pages of the job history (`Store::job_page`) in
//! a Redis holding N jobs (a million by default), each figure beside a baseline
//! measured in the same run: `recent_jobs(50)`, the plain history read the `jobs`
//! built-in makes.
//!
//! The fill goes through `RedisStore` as the pipeline writes (`record_job`,
//! `mark_started`, `finish_job`), from many tasks at once so the store coalesces the
//! record and result writes. The mix: 20 commands, 200 requesters over the `slack`,
//! `ssh` and `api` adapters, 90% succeeded, 7% failed, 2% timed out, 1% cancelled; each
//! job has a host and an environment argument, most a line or a few of text output,
//! failures an error. It is generated from the job's number, so every run fills the
//! same history.
//!
//! Creation times are spread evenly over the last 30 days, while ids are made at fill
//! time (`JobId::new()`, a UUID v7 of now), so a job's id and its creation time do not
//! agree. That is on purpose: the history is ordered by creation millisecond and, within
//! one, by id, and a `JobCursor` is that pair, so a backdated job takes its place like
//! any other and paging stays exact; no id need be forged to match its time. The store's
//! retention is 31 days, so nothing is trimmed.
//!
//! Redis is started as every bench starts it (`services::Redis`), then its append-only
//! file is turned off (`CONFIG SET appendonly no`): a million jobs would write and rewrite
//! gigabytes, which would measure the disk rather than the queries.
//!
//! Measured: the fill time; Redis memory per job (`used_memory` after the fill less
//! before, over N), and the parts of it the history and its indexes, and the event
//! stream, take (`MEMORY USAGE` of each); then p50/p99 of each kind of page over `calls` calls, the kinds taken in
//! turn so that other work on the machine weighs on each alike, and the jobs and records
//! examined per call.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use config::{Secret, StoreConfig};
use jobs::redis::RedisStore;
use jobs::{Job, JobQuery, JobResult, JobStatus, Origin, Output, Store, Task, MAX_PAGE};
use lexicon::Value;

use super::redis_probe;
use super::stats::Percentiles;
use crate::services::Redis;

/// What to measure.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    /// Jobs in the history.
    pub jobs: usize,
    /// Calls of each kind of page (and of the baseline).
    pub calls: usize,
}

/// The commands of the mix, one in 20 each.
const COMMANDS: [&str; 20] = [
    "deploy",
    "restart",
    "rollback",
    "scale",
    "logs",
    "status",
    "backup",
    "restore",
    "migrate",
    "purge-cache",
    "rotate-keys",
    "healthcheck",
    "flush-dns",
    "renew-cert",
    "vacuum-db",
    "drain-queue",
    "flag",
    "disk-usage",
    "ping-host",
    "run-report",
];

/// Requesters: 200 people, a third each on Slack, SSH and the API.
const REQUESTERS: u64 = 200;
/// Hosts the `host` argument names.
const HOSTS: u64 = 40;
/// Creation times are spread over this many days before the fill.
const DAYS: i64 = 30;
/// Tasks writing at once during the fill.
const WRITERS: usize = 512;
/// Jobs a page holds in every measured call.
const PAGE: usize = 50;

/// The report: figures, then one row per kind of call.
pub struct HistoryReport {
    jobs: usize,
    calls: usize,
    fill: Duration,
    memory_per_job: f64,
    indexes_per_job: f64,
    stream_per_job: f64,
    rows: Vec<Row>,
}

struct Row {
    name: &'static str,
    latency: Percentiles,
    jobs: f64,
    scanned: f64,
}

pub fn run(options: &HistoryOptions) -> Result<HistoryReport> {
    if options.jobs == 0 || options.calls == 0 {
        bail!("--history needs at least one job and one call");
    }
    eprintln!("octobox-bench: starting a private Redis");
    let redis = Redis::start();
    redis_probe::config_set(redis.port, "appendonly", "no")?;
    let runtime = tokio::runtime::Runtime::new().context("a Tokio runtime")?;
    let report = runtime.block_on(measure(&redis, options));
    drop(runtime);
    drop(redis);
    report
}

async fn measure(redis: &Redis, options: &HistoryOptions) -> Result<HistoryReport> {
    let config = StoreConfig {
        retention: Duration::from_secs((DAYS as u64 + 1) * 86_400),
        ..StoreConfig::new(Secret::new(redis.url()))
    };
    let store = Arc::new(RedisStore::connect(&config).await?);
    let before = redis_probe::used_memory(redis.port)?;
    let now = Utc::now();

    eprintln!("octobox-bench: recording {} jobs", options.jobs);
    let started = Instant::now();
    fill(&store, options.jobs, now).await?;
    let fill_took = started.elapsed();
    eprintln!(
        "octobox-bench: filled in {:.1} s ({:.0} jobs/s)",
        fill_took.as_secs_f64(),
        options.jobs as f64 / fill_took.as_secs_f64()
    );
    let after = redis_probe::used_memory(redis.port)?;
    let mut index_keys = vec!["octobox:jobs".to_string()];
    index_keys.extend(
        COMMANDS
            .iter()
            .map(|c| format!("octobox:jobs:by-command:{c}")),
    );
    index_keys.extend(
        (0..REQUESTERS).map(|r| format!("octobox:jobs:by-requester:{}", requester(r).identity())),
    );
    index_keys.extend(
        [
            "queued",
            "running",
            "succeeded",
            "failed",
            "timed_out",
            "cancelled",
        ]
        .iter()
        .map(|s| format!("octobox:jobs:by-status:{s}")),
    );
    let mut index_bytes = 0u64;
    for key in &index_keys {
        index_bytes += redis_probe::memory_usage(redis.port, key)?;
    }
    let stream_bytes = redis_probe::memory_usage(redis.port, "octobox:events")?;

    let kinds = kinds(store.as_ref(), now).await?;
    eprintln!(
        "octobox-bench: {} calls of each of {} kinds",
        options.calls,
        kinds.len() + 1
    );
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len() + 1];
    let mut counts = vec![(0usize, 0usize); kinds.len() + 1];
    for _ in 0..options.calls {
        let t = Instant::now();
        let recent = store.recent_jobs(PAGE).await?;
        samples[0].push(t.elapsed());
        counts[0].0 += recent.len();
        counts[0].1 += recent.len();
        for (i, (_, query)) in kinds.iter().enumerate() {
            let t = Instant::now();
            let page = store.job_page(query).await?;
            samples[i + 1].push(t.elapsed());
            counts[i + 1].0 += page.jobs.len();
            counts[i + 1].1 += page.scanned;
        }
    }
    let names = std::iter::once("recent_jobs(50) (baseline)").chain(kinds.iter().map(|(n, _)| *n));
    let rows = names
        .zip(samples.iter().zip(&counts))
        .map(|(name, (samples, (jobs, scanned)))| {
            Ok(Row {
                name,
                latency: Percentiles::of(samples).context("no calls")?,
                jobs: *jobs as f64 / options.calls as f64,
                scanned: *scanned as f64 / options.calls as f64,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(HistoryReport {
        jobs: options.jobs,
        calls: options.calls,
        fill: fill_took,
        memory_per_job: after.saturating_sub(before) as f64 / options.jobs as f64,
        indexes_per_job: index_bytes as f64 / options.jobs as f64,
        stream_per_job: stream_bytes as f64 / options.jobs as f64,
        rows,
    })
}

/// The kinds of page measured, each with its query.
async fn kinds(store: &dyn Store, now: DateTime<Utc>) -> Result<Vec<(&'static str, JobQuery)>> {
    let page = JobQuery {
        limit: PAGE,
        ..Default::default()
    };
    // The cursor of the 20th page, followed from the first.
    let mut deep = page.clone();
    for _ in 0..19 {
        let next = store.job_page(&deep).await?.next;
        deep.after = Some(next.context("the history ended before page 20")?);
    }
    let day = |days_ago: i64| Some(now - chrono::Duration::days(days_ago));
    Ok(vec![
        ("no filter, first page", page.clone()),
        ("no filter, page 20 (cursor)", deep),
        (
            "status = failed",
            JobQuery {
                statuses: vec![JobStatus::Failed],
                ..page.clone()
            },
        ),
        (
            "command = deploy",
            JobQuery {
                command: Some("deploy".into()),
                ..page.clone()
            },
        ),
        (
            "requester = slack:U0042",
            JobQuery {
                requester: Some(requester(42).identity()),
                ..page.clone()
            },
        ),
        (
            "command = deploy, status = failed",
            JobQuery {
                command: Some("deploy".into()),
                statuses: vec![JobStatus::Failed],
                ..page.clone()
            },
        ),
        (
            "text \"web-17\"",
            JobQuery {
                text: Some("web-17".into()),
                ..page.clone()
            },
        ),
        (
            "one day (15 to 14 days ago)",
            JobQuery {
                since: day(15),
                until: day(14),
                ..page.clone()
            },
        ),
    ])
}

/// Records, starts and finishes `count` jobs from [`WRITERS`] tasks at once.
async fn fill(store: &Arc<RedisStore>, count: usize, now: DateTime<Utc>) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS.min(count) {
        let (store, next) = (store.clone(), next.clone());
        writers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return anyhow::Ok(());
                }
                if n > 0 && n % 100_000 == 0 {
                    eprintln!("octobox-bench: {n} jobs");
                }
                let (job, result) = generate(n as u64, now);
                store.record_job(&job).await?;
                store
                    .mark_started(job.id, &result.worker, result.started_at)
                    .await?;
                store.finish_job(&result).await?;
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.context("a writer task")??;
    }
    Ok(())
}

/// Job `n` of the mix and its result.
fn generate(n: u64, now: DateTime<Utc>) -> (Job, JobResult) {
    let mut mix = Mix(n);
    let command = COMMANDS[mix.below(COMMANDS.len() as u64) as usize];
    let host = format!("web-{:02}", mix.below(HOSTS));
    let env = ["prod", "staging", "dev"][mix.below(3) as usize];
    let args = BTreeMap::from([
        ("host".to_string(), Value::Hostname(host.clone())),
        ("env".to_string(), Value::Choice(env.to_string())),
    ]);
    let mut job = Job::new(
        command,
        args,
        Task::native(command),
        requester(mix.below(REQUESTERS)),
        Duration::from_secs(30),
    );
    let span_ms = DAYS * 86_400_000;
    job.created_at = now - chrono::Duration::milliseconds(mix.below(span_ms as u64) as i64);
    let started_at = job.created_at + chrono::Duration::milliseconds(40);
    let took = chrono::Duration::milliseconds(50 + mix.below(5_000) as i64);
    let roll = mix.below(100);
    let (status, output, error) = match roll {
        0..90 => {
            let text = match mix.below(4) {
                0 => Output::Empty,
                1 => Output::text(format!(
                    "{command} on {host} ({env}): done\nchecked 12 services, 0 warnings\n\
                     took {} ms\n",
                    took.num_milliseconds()
                )),
                _ => Output::text(format!("{command} {host}: ok")),
            };
            (JobStatus::Succeeded, text, None)
        }
        90..97 => (
            JobStatus::Failed,
            Output::text(format!("{command} {host}: starting")),
            Some(format!(
                "exit status 1: connection refused by {host}:{}",
                8000 + mix.below(100)
            )),
        ),
        97..99 => (
            JobStatus::TimedOut,
            Output::Empty,
            Some("ran past its 30s timeout and was stopped".to_string()),
        ),
        _ => (
            JobStatus::Cancelled,
            Output::Empty,
            Some("cancelled by its requester".to_string()),
        ),
    };
    let result = JobResult {
        id: job.id,
        status,
        output,
        worker: format!("worker-{}", mix.below(8)),
        started_at,
        finished_at: started_at + took,
        error,
    };
    (job, result)
}

/// Requester `r`: `slack:U0042`, `ssh:user-043`, `api:svc-044`.
fn requester(r: u64) -> Origin {
    match r % 3 {
        0 => Origin::new("slack", format!("U{r:04}")),
        1 => Origin::new("ssh", format!("user-{r:03}")),
        _ => Origin::new("api", format!("svc-{r:03}")),
    }
}

/// SplitMix64: a small generator, seeded by the job's number.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

impl fmt::Display for HistoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fill = self.fill.as_secs_f64();
        writeln!(
            f,
            "{} jobs filled in {:.0} s ({:.0} jobs/s); Redis memory {:.0} bytes per job, \
             of which the history and its indexes {:.0}, the event stream (capped at {} \
             events) {:.0}",
            self.jobs,
            fill,
            self.jobs as f64 / fill,
            self.memory_per_job,
            self.indexes_per_job,
            jobs::redis::STREAM_MAXLEN,
            self.stream_per_job,
        )?;
        writeln!(
            f,
            "{} calls each, a page of {PAGE} (at most {MAX_PAGE}):",
            self.calls
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| call | p50 ms | p99 ms | p50 vs baseline | p99 vs baseline | jobs | records examined |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|")?;
        let base = &self.rows[0].latency;
        for row in &self.rows {
            writeln!(
                f,
                "| {} | {:.2} | {:.2} | {:.2}× | {:.2}× | {:.0} | {:.0} |",
                row.name,
                row.latency.p50_ms,
                row.latency.p99_ms,
                row.latency.p50_ms / base.p50_ms,
                row.latency.p99_ms / base.p99_ms,
                row.jobs,
                row.scanned,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_the_same_every_run_and_roughly_as_described() {
        let now = Utc::now();
        let (a, ra) = generate(7, now);
        let (b, rb) = generate(7, now);
        assert_eq!(
            (a.command, a.origin, a.created_at),
            (b.command, b.origin, b.created_at)
        );
        assert_eq!((ra.status, ra.output), (rb.status, rb.output));
        let failed = (0..10_000)
            .filter(|&n| generate(n, now).1.status == JobStatus::Failed)
            .count();
        assert!((600..800).contains(&failed), "{failed} failed of 10,000");
        let oldest = (0..10_000)
            .map(|n| generate(n, now).0.created_at)
            .min()
            .unwrap();
        assert!(now - oldest > chrono::Duration::days(DAYS - 1));
        assert!(now - oldest <= chrono::Duration::days(DAYS));
    }
}
