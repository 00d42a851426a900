//! `octobox-scheduler`: fires the configured schedules and runs shippers. Run as many as
//! you like: they share a lease in Redis, only its holder fires, and each slot fires
//! once. SIGTERM (or Ctrl-C) gives the lease up so another takes over at once.
//!
//! It compiles the same command catalog as the bot (`commands::Catalog`: the built-ins
//! plus the configured commands) to check and build scheduled jobs. SIGHUP reads the
//! configuration file again and puts its schedules and commands in force, or keeps the
//! ones in force and logs every problem.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use commands::{Catalog, LiveCatalog};
use config::Config;
use jobs::process::hostname;
use scheduler::{Scheduler, SchedulerServices};
use tokio_util::sync::CancellationToken;

/// An Octobox scheduler: fires timed jobs, exactly once across all schedulers.
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

    /// This scheduler's name in the lease and in fired jobs (default:
    /// scheduler@<host>-<pid>).
    #[arg(long)]
    name: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Asks a running scheduler's /readyz: exit 0 when ready, 1 when not (for healthchecks).
    Probe(octobox_http::probe::ProbeArgs),
}

fn main() -> ExitCode {
    jobs::tls::install_provider();
    let args = Args::parse();
    if let Some(Command::Probe(probe)) = &args.command {
        return probe.run();
    }
    jobs::process::log_to_stderr("info");
    jobs::process::run_to_exit("octobox-scheduler", run(args))
}

async fn run(args: Args) -> Result<()> {
    let path = args.config.context("--config is required")?;
    let mut config = Config::load(&path)?;
    config.http.listen = args.http_listen.or(config.http.listen);
    let (broker, store) = config.durable("octobox-scheduler")?;
    let catalog = LiveCatalog::new(Catalog::build(&config, None)?);
    let schedules = jobs::connect::schedule_store(store)
        .await
        .context("opening the schedule store")?;
    let (broker, store) = jobs::connect::connect(broker, store).await?;
    octobox_http::metrics().set_role("scheduler");
    let health = octobox_http::Health::new().services(broker.clone(), store.clone());
    let holder = args
        .name
        .unwrap_or_else(|| format!("scheduler@{}-{}", hostname(), std::process::id()));
    let services = SchedulerServices {
        catalog: catalog.clone(),
        broker,
        store,
        schedules,
    };
    let scheduler = Scheduler::new(
        holder,
        services,
        config.scheduler.lease,
        config.jobs.timeout.max(Duration::from_secs(1)),
    );
    let shutdown = CancellationToken::new();
    if let Some(listen) = config.http.listen {
        let lease = scheduler.lease_state();
        let health = health.check("lease", move || {
            let found = lease.check();
            async move { found }
        });
        octobox_http::HealthServer::serve(listen, health, shutdown.clone()).await?;
    }
    tokio::spawn(jobs::process::stop_on_signal(
        shutdown.clone(),
        "giving the lease up",
    ));
    tokio::spawn(reload_on_sighup(path.clone(), catalog)?);
    scheduler.run(shutdown).await;
    Ok(())
}

/// SIGHUP reads `path` again; a file with problems changes nothing, and each problem
/// is logged. The signal is taken over before this returns, so an early SIGHUP never
/// meets the default action (ending the process).
fn reload_on_sighup(
    path: PathBuf,
    catalog: LiveCatalog,
) -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    Ok(async move {
        while hangup.recv().await.is_some() {
            reload(&path, &catalog);
        }
    })
}

fn reload(path: &Path, catalog: &LiveCatalog) {
    match Config::load(path).and_then(|config| Catalog::build(&config, None)) {
        Ok(new) => {
            let schedules = new.schedules.schedules().len();
            catalog.replace(new);
            tracing::info!(config = %path.display(), schedules, "configuration reloaded");
        }
        Err(errors) => {
            tracing::warn!(config = %path.display(), problems = errors.0.len(), "reload refused:\n{errors}");
        }
    }
}
