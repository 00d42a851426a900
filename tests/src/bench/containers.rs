//! `octobox-bench --containers`: what running a job in a container costs, against the
//! Docker CLI in the same run.
//!
//! The worker runs in this process over the in-memory broker and store (the durable
//! pipeline's own cost is measured by the main bench), with a `ContainerRunner` on the
//! local engine, and the probe image doing nothing (`noop`):
//! - start to result: from the worker marking a job started to its `finished` event,
//!   against `docker run --rm` of the same image and arguments, the two alternating so
//!   that both see the same machine;
//! - a burst: many jobs published at once, run together; every one must succeed and
//!   leave no container behind; against as many `docker run --rm` started at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use jobs::memory::{MemoryBroker, MemoryStore};
use jobs::{Broker, ContainerLimits, EventKind, Job, JobId, JobStatus, Origin, Store, Task};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use worker::{ContainerRunner, TaskRegistry, Worker};

use super::stats::{millis, Percentiles};
use crate::containers::{containers_of, probe_image};

/// What to measure.
#[derive(Debug, Clone)]
pub struct ContainerOptions {
    /// Jobs run one at a time (and as many `docker run --rm`).
    pub sequential: usize,
    /// Jobs published at once in the burst.
    pub burst: usize,
}

/// Runs both phases and returns the report.
pub fn run(options: &ContainerOptions) -> Result<Value> {
    let image = probe_image().to_string();
    let runtime = tokio::runtime::Runtime::new().context("a Tokio runtime")?;
    runtime.block_on(measure(options, &image))
}

async fn measure(options: &ContainerOptions, image: &str) -> Result<Value> {
    let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = ContainerRunner::connect()
        .await
        .map_err(anyhow::Error::msg)?;
    let engine = runner.describe();
    let worker = Worker::new(
        "bench",
        broker.clone(),
        store.clone(),
        TaskRegistry::standard(),
        1,
    )
    .with_containers(runner, options.burst.max(1));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let mut results = Results::new(store.clone());

    // One of each first: the image is in the page cache and the engine warmed up.
    submit(&broker, &store, image).await?;
    results.wait_all(1).await?;
    docker_run(image)?;

    eprintln!(
        "octobox-bench: {} container jobs one at a time, alternating with docker run --rm",
        options.sequential
    );
    let (mut ours, mut submit_to_result, mut cli) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..options.sequential {
        let submitted = Instant::now();
        let id = submit(&broker, &store, image).await?;
        let done = results.wait_all(1).await?;
        submit_to_result.push(submitted.elapsed());
        ours.push(done[0].start_to_result);
        if done[0].id != id {
            bail!("another job finished than the one submitted");
        }
        cli.push(docker_run(image)?);
    }

    eprintln!(
        "octobox-bench: a burst of {} container jobs at once",
        options.burst
    );
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..options.burst {
        ids.push(submit(&broker, &store, image).await?);
    }
    let burst = results.wait_all(options.burst).await?;
    let burst_elapsed = started.elapsed();
    let failed: Vec<String> = burst.iter().filter_map(|f| f.error.clone()).collect();
    let left_behind: usize = ids
        .iter()
        .map(|id| containers_of(&id.to_string()).len())
        .sum();
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
    eprintln!("octobox-bench: {} docker run --rm at once", options.burst);
    let cli_burst = docker_run_burst(image, options.burst)?;

    let ours_p = Percentiles::of(&ours);
    let cli_p = Percentiles::of(&cli);
    let ratio = match (ours_p, cli_p) {
        (Some(a), Some(b)) if b.p50_ms > 0.0 => json!(round3(a.p50_ms / b.p50_ms)),
        _ => Value::Null,
    };
    let burst_times: Vec<Duration> = burst.iter().map(|f| f.start_to_result).collect();
    Ok(json!({
        "engine": engine,
        "image": image,
        "sequential": {
            "jobs": options.sequential,
            "start_to_result_ms": ours_p.map(|p| json!({"p50": p.p50_ms, "p95": p.p95_ms, "p99": p.p99_ms})),
            "submit_to_result_ms": Percentiles::of(&submit_to_result).map(|p| json!({"p50": p.p50_ms, "p99": p.p99_ms})),
            "docker_run_rm_ms": cli_p.map(|p| json!({"p50": p.p50_ms, "p95": p.p95_ms, "p99": p.p99_ms})),
            "p50_ratio_vs_docker_run": ratio,
        },
        "burst": {
            "jobs": options.burst,
            "succeeded": burst.len() - failed.len(),
            "failed": failed.len(),
            "errors": failed.iter().take(5).collect::<Vec<_>>(),
            "containers_left_behind": left_behind,
            "elapsed_ms": round3(millis(burst_elapsed)),
            "start_to_result_ms": Percentiles::of(&burst_times).map(|p| json!({"p50": p.p50_ms, "p99": p.p99_ms})),
            "docker_run_rm_at_once_ms": round3(millis(cli_burst)),
            "elapsed_ratio_vs_docker_run": round3(millis(burst_elapsed) / millis(cli_burst).max(1e-9)),
        },
    }))
}

/// Records and publishes a `noop` job, as the router does.
async fn submit(broker: &Arc<dyn Broker>, store: &Arc<dyn Store>, image: &str) -> Result<JobId> {
    let task = Task::Container {
        image: image.to_string(),
        argv: vec!["noop".to_string()],
        env: Default::default(),
        limits: ContainerLimits::default(),
    };
    let job = Job::new(
        "noop",
        Default::default(),
        task,
        Origin::new("bench", "bench"),
        Duration::from_secs(60),
    );
    store.record_job(&job).await?;
    broker.publish(&job).await?;
    Ok(job.id)
}

/// `docker run --rm` of the probe doing nothing; how long it took.
fn docker_run(image: &str) -> Result<Duration> {
    let started = Instant::now();
    let status = std::process::Command::new("docker")
        .args(["run", "--rm", "--network", "none", image, "noop"])
        .status()
        .context("running docker")?;
    if !status.success() {
        bail!("docker run --rm {image} noop failed: {status}");
    }
    Ok(started.elapsed())
}

/// `n` of `docker run --rm` started at once; how long until the last one ended.
fn docker_run_burst(image: &str, n: usize) -> Result<Duration> {
    let started = Instant::now();
    let children: Vec<_> = (0..n)
        .map(|_| {
            std::process::Command::new("docker")
                .args(["run", "--rm", "--network", "none", image, "noop"])
                .spawn()
                .context("running docker")
        })
        .collect::<Result<_>>()?;
    for mut child in children {
        let status = child.wait().context("waiting for docker")?;
        if !status.success() {
            bail!("docker run --rm {image} noop failed: {status}");
        }
    }
    Ok(started.elapsed())
}

/// One finished job, as the event stream and the store show it.
struct Finished {
    id: JobId,
    /// From the worker marking it started to its `finished` event being read here.
    start_to_result: Duration,
    error: Option<String>,
}

/// Follows the event stream for `finished` events.
struct Results {
    store: Arc<dyn Store>,
    group: String,
}

impl Results {
    fn new(store: Arc<dyn Store>) -> Self {
        Results {
            store,
            group: format!("bench-containers-{}", std::process::id()),
        }
    }

    /// Waits for the next `n` jobs to finish (at most two minutes).
    async fn wait_all(&mut self, n: usize) -> Result<Vec<Finished>> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut done = Vec::with_capacity(n);
        while done.len() < n {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n} container jobs finished within two minutes",
                    done.len()
                );
            }
            let events = self
                .store
                .read_events(&self.group, "bench", 256, Duration::from_secs(1))
                .await?;
            let seen = Utc::now();
            for (_, event) in events {
                let EventKind::Finished { status } = event.kind else {
                    continue;
                };
                let record = self
                    .store
                    .job(event.job)
                    .await?
                    .context("a finished job's record")?;
                let started = record.started_at.context("a finished job's start")?;
                let error = (status != JobStatus::Succeeded).then(|| {
                    record
                        .result
                        .and_then(|r| r.error)
                        .unwrap_or_else(|| status.to_string())
                });
                done.push(Finished {
                    id: event.job,
                    start_to_result: (seen - started).to_std().unwrap_or_default(),
                    error,
                });
            }
        }
        Ok(done)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
