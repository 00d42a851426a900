//! `octobox-scheduler`: fires the configured schedules and runs shippers. Run as many as
//! you like: they share a lease in Redis, only its holder fires, and each slot fires
//! once. SIGTERM (or Ctrl-C) gives the lease up so another takes over at once.
//!
//! It lives in the bot's package because it compiles the same command catalog
//! (`builtins.toml` plus the configured commands) to check and build scheduled jobs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bot::commands::CommandTable;
use bot::scheduling::{schedule_table, scheduler_for};
use clap::Parser;
use config::Config;
use tokio_util::sync::CancellationToken;
use worker::runtime::hostname;

/// An Octobox scheduler: fires timed jobs, exactly once across all schedulers.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The configuration file; it must have [broker] and [store] sections.
    #[arg(long, value_name = "PATH")]
    config: PathBuf,

    /// This scheduler's name in the lease and in fired jobs (default:
    /// scheduler@<host>-<pid>).
    #[arg(long)]
    name: Option<String>,
}

fn main() -> ExitCode {
    jobs::tls::install_provider();
    jobs::runtime::log_to_stderr("info");
    let args = Args::parse();
    jobs::runtime::run_to_exit("octobox-scheduler", run(args))
}

async fn run(args: Args) -> Result<()> {
    let config = Config::load(&args.config)?;
    let (Some(broker), Some(store)) = (&config.broker, &config.store) else {
        bail!(
            "{}: octobox-scheduler needs [broker] and [store] sections; to run everything in \
             one process, start octobox-bot without them instead",
            config.source
        );
    };
    let commands = CommandTable::build(&config, None)?;
    let table = schedule_table(&config, &commands)?;
    let schedules = jobs::connect::schedule_store(store)
        .await
        .context("opening the schedule store")?;
    let (broker, store) = jobs::connect::connect(broker, store).await?;
    let holder = args
        .name
        .unwrap_or_else(|| format!("scheduler@{}-{}", hostname(), std::process::id()));
    let scheduler = scheduler_for(
        holder,
        &config,
        Arc::new(commands),
        Arc::new(table),
        broker,
        store,
        schedules,
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    scheduler.run(shutdown).await;
    Ok(())
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        tracing::error!("cannot listen for SIGTERM");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: giving the lease up"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: giving the lease up"),
    }
    shutdown.cancel();
}
