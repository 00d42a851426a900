//! `octobox-bench --cluster`: throughput with one, two and three worker hosts against a
//! three-node RabbitMQ cluster and Redis behind Sentinel (containers on a private Docker
//! network, `cluster::Cluster`), and the cluster's own ceiling in the same run: job-sized
//! messages straight through RabbitMQ with the pipeline's guarantees (persistent,
//! confirmed, a quorum queue replicated on the three nodes).
//!
//! The bot runs in this process, reaching the containers by their addresses; each worker
//! host is an `octobox/worker` container. Hosts are added one at a time and every phase
//! sends the same number of jobs with the same window.

use std::time::Duration;

use anyhow::{Context, Result};
use bot::bot::Bot;
use config::Config;
use serde_json::{json, Value};

use super::load::{self, BenchSink, ADAPTER};
use super::stats::rate;
use super::{ceiling, sample_job, DELIVERY_LIMIT};
use crate::cluster::Cluster;

/// What the cluster mode sends.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Jobs per phase (and messages for the ceiling).
    pub jobs: usize,
    /// Jobs outstanding at most.
    pub window: usize,
    /// `[worker] concurrency` of each worker host.
    pub concurrency: usize,
    pub patience: Duration,
}

/// The configuration, with the nodes named as `node` names them (by name inside the
/// network, by address from here).
fn config(node: &dyn Fn(&str) -> String, concurrency: usize) -> String {
    format!(
        r#"# Written by octobox-bench --cluster.
[broker]
urls = ["amqp://octobox:password@{r1}:5672/%2f", "amqp://octobox:password@{r2}:5672/%2f", "amqp://octobox:password@{r3}:5672/%2f"]
delivery_limit = {DELIVERY_LIMIT}

[store]
sentinels = ["{s1}:26379", "{s2}:26379", "{s3}:26379"]
master_name = "octobox"

[http]
listen = "0.0.0.0:9100"

[worker]
concurrency = {concurrency}
{quota}"#,
        r1 = node("rabbit-1"),
        r2 = node("rabbit-2"),
        r3 = node("rabbit-3"),
        s1 = node("sentinel-1"),
        s2 = node("sentinel-2"),
        s3 = node("sentinel-3"),
        quota = crate::NO_QUOTA,
    )
}

pub fn run(options: &ClusterOptions) -> Result<Value> {
    eprintln!("octobox-bench: starting RabbitMQ on three nodes and Redis with Sentinel");
    let mut c = Cluster::new("octobox-bench-cluster");
    c.start_rabbitmq();
    c.start_redis();
    c.file(
        "octobox.toml",
        &config(&|n| n.to_string(), options.concurrency),
    );
    let outside = c.file(
        "bench.toml",
        &config(&|n| c.ip(n), options.concurrency)
            .replace("[http]\nlisten = \"0.0.0.0:9100\"\n", ""),
    );
    let runtime = jobs::process::build().context("the bot's runtime")?;
    let folder = format!("{}:/etc/octobox:ro", c.dir().display());
    let mut phases = Vec::new();
    let mut job_body = Vec::new();
    for hosts in 1..=3 {
        let name = format!("worker-{hosts}");
        c.run(
            &name,
            &["-v", &folder],
            "octobox/worker:latest",
            &["--config", "/etc/octobox/octobox.toml", "--name", &name],
        );
        c.wait_healthy(&name, options.patience);
        eprintln!(
            "octobox-bench: {} jobs through {hosts} worker host(s)",
            options.jobs
        );
        let (jobs_per_s, body) = runtime.block_on(async {
            let config = Config::load(&outside)?;
            let bot = Bot::start(&config).await.context("starting the bot")?;
            let (sink, mut arrivals) = BenchSink::new();
            bot.sinks.register(ADAPTER, sink);
            let session = format!("bench-cluster-{hosts}");
            let body = serde_json::to_vec(&sample_job(&bot, &session)?)?;
            // One job first: every connection is open.
            load::run_phase(
                bot.router.clone(),
                &mut arrivals,
                &session,
                1,
                1,
                options.patience,
            )
            .await?;
            let phase = load::run_phase(
                bot.router.clone(),
                &mut arrivals,
                &session,
                options.jobs,
                options.window,
                options.patience,
            )
            .await?;
            bot.stop().await;
            anyhow::Ok((rate(phase.jobs, phase.elapsed), body))
        })?;
        job_body = body;
        phases.push((hosts, jobs_per_s));
    }
    drop(runtime);

    eprintln!(
        "octobox-bench: the cluster's ceiling: {} messages",
        options.jobs
    );
    let url = format!("amqp://octobox:password@{}:5672/%2f", c.ip("rabbit-1"));
    let ceiling = tokio::runtime::Runtime::new()?.block_on(ceiling::measure(ceiling::Ceiling {
        url: &url,
        body: &job_body,
        messages: options.jobs,
        window: options.window,
        prefetch: u16::try_from(options.concurrency * 3).unwrap_or(u16::MAX),
        delivery_limit: DELIVERY_LIMIT,
        patience: options.patience,
    }))?;
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Ok(json!({
        "mode": "cluster",
        "jobs_per_phase": options.jobs,
        "window": options.window,
        "concurrency_per_host": options.concurrency,
        "ceiling_msgs_per_s": ceiling.round(),
        "workers": phases.iter().map(|(hosts, jobs_per_s)| json!({
            "hosts": hosts,
            "jobs_per_s": jobs_per_s.round(),
            "of_ceiling": round(jobs_per_s / ceiling),
        })).collect::<Vec<_>>(),
    }))
}
