//! `octobox-worker`: a worker process. Consumes native jobs (and container jobs, when a
//! Docker engine answers) from RabbitMQ, runs them, stores results in Redis. SIGTERM (or Ctrl-C) stops taking jobs, lets running ones
//! finish within the grace period, and leaves the rest in the queue.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use commands::{Catalog, LiveCatalog};
use config::Config;
use jobs::process::hostname;
use tokio_util::sync::CancellationToken;
use worker::{tasks, RetryPolicy, TaskRegistry, Worker};

/// An Octobox worker: runs the jobs the bot queues.
#[derive(Parser, Debug)]
#[command(version, about, subcommand_negates_reqs = true)]
struct Args {
    /// The configuration file; it must have [broker] and [store] sections.
    #[arg(long, value_name = "PATH", required = true)]
    config: Option<PathBuf>,

    /// Where to serve /healthz, /readyz and /metrics (overrides [http] listen).
    #[arg(long, value_name = "ADDRESS")]
    http_listen: Option<std::net::SocketAddr>,

    #[command(subcommand)]
    command: Option<Command>,

    /// This worker's name in results and `workers` (default: [worker] name, else
    /// worker@<host>-<pid>).
    #[arg(long)]
    name: Option<String>,
}

/// How long running jobs may take to finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(30);

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Asks a running worker's /readyz: exit 0 when ready, 1 when not (for healthchecks).
    Probe(octobox_http::probe::ProbeArgs),
}

fn main() -> ExitCode {
    jobs::tls::install_provider();
    let args = Args::parse();
    if let Some(Command::Probe(probe)) = &args.command {
        return probe.run();
    }
    jobs::process::log_to_stderr("info");
    jobs::process::run_to_exit("octobox-worker", run(args))
}

async fn run(args: Args) -> Result<()> {
    let path = args.config.context("--config is required")?;
    let mut config = Config::load(&path)?;
    config.http.listen = args.http_listen.or(config.http.listen);
    let (broker, store) = config.durable("octobox-worker")?;
    // Tasks are built from this file's commands, never taken from the queue. Native task
    // names are checked when a job runs (a chaos worker has one more than the others).
    let catalog = LiveCatalog::new(Catalog::build(&config, None)?);
    octobox_http::metrics().start_at_zero(catalog.load().commands.job_commands());
    let delivery_limit = broker.delivery_limit;
    let (broker, store) = jobs::connect::connect(broker, store).await?;
    octobox_http::metrics().set_role("worker");

    let mut registry =
        TaskRegistry::configured(&config.tasks).context("the [tasks] settings cannot be used")?;
    if std::env::var("OCTOBOX_CHAOS_TASKS").as_deref() == Ok("1") {
        tracing::warn!("OCTOBOX_CHAOS_TASKS=1: the \"abort\" task can end this process");
        registry.register("abort", tasks::Abort);
    }
    let name = args
        .name
        .or(config.worker.name.clone())
        .unwrap_or_else(|| format!("worker@{}-{}", hostname(), std::process::id()));
    let health = octobox_http::Health::new().services(broker.clone(), store.clone());
    let worker = Worker::new(name, broker, store, registry, config.worker.concurrency)
        .with_retry(RetryPolicy {
            retries: config.jobs.retries,
            backoff: config.jobs.retry_backoff,
        })
        .with_delivery_limit(delivery_limit)
        .with_catalog(catalog)
        .with_grace(GRACE);
    // Container jobs come only to workers whose engine answers.
    let worker = worker
        .with_containers_if_engine_answers(config.worker.container_concurrency)
        .await;

    let shutdown = CancellationToken::new();
    if let Some(listen) = config.http.listen {
        let consuming = worker.consuming();
        let health = health.check("consuming", move || {
            let found = consuming.check();
            async move { found }
        });
        octobox_http::HealthServer::serve(listen, health, shutdown.clone()).await?;
    }
    tokio::spawn(jobs::process::stop_on_signal(
        shutdown.clone(),
        "finishing running jobs, taking no more",
    ));
    worker.run(shutdown).await.context("the worker stopped")?;
    Ok(())
}
