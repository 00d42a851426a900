//! `octobox-bot`: the bot process.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use bot::bot::Bot;
use bot::reload::{self, Reloader};
use clap::Parser;
use config::Config;

/// Octobox: a chat-ops bot with a job queue.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The configuration file (TOML). Without one, the bot runs embedded with the
    /// built-in commands only.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Read commands from standard input and answer on standard output.
    #[arg(long)]
    console: bool,

    /// Validate a configuration file, print every problem, and exit (0 when valid).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["config", "console"])]
    check_config: Option<PathBuf>,

    /// Where to serve /healthz, /readyz and /metrics (overrides [http] listen).
    #[arg(long, value_name = "ADDRESS")]
    http_listen: Option<std::net::SocketAddr>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Asks a running bot's /readyz: exit 0 when ready, 1 when not (for healthchecks).
    Probe(octobox_http::probe::ProbeArgs),
}

fn main() -> ExitCode {
    // Several TLS users share this process: one crypto provider, before any of them starts.
    jobs::tls::install_provider();
    let args = Args::parse();
    if let Some(Command::Probe(probe)) = &args.command {
        return probe.run();
    }
    // The console is for people: keep its terminal free of routine logs.
    let default_level = if args.console { "warn" } else { "info" };
    jobs::process::log_to_stderr(default_level);

    jobs::process::run_to_exit("octobox-bot", run(args))
}

async fn run(args: Args) -> Result<ExitCode> {
    if let Some(path) = args.check_config {
        return Ok(check_config(&path));
    }
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config {
            source: "built-in defaults".to_string(),
            ..Config::default()
        },
    };
    config.http.listen = args.http_listen.or(config.http.listen);
    if !args.console && config.ssh.is_none() && config.slack.is_none() {
        bail!(
            "nothing to serve: start with --console to talk to the bot on this terminal, \
             or configure [ssh] or [slack]"
        );
    }
    let bot = Bot::start(&config)
        .await
        .with_context(|| format!("cannot start with {}", config.source))?;
    if let Some(path) = &args.config {
        bot.reloader.set_file(path);
        tokio::spawn(reload_on_sighup(bot.reloader.clone(), bot.router.clone())?);
    }
    let result = if args.console {
        bot::console::run(&bot).await
    } else {
        stop_signal().await
    };
    bot.stop().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// Waits for Ctrl-C or SIGTERM: how a served bot (no console) is stopped.
async fn stop_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot watch for Ctrl-C")?,
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    Ok(())
}

/// SIGHUP reads the configuration file again, as the `reload` built-in does; the outcome
/// goes to the log. The signal is taken over here, before the caller goes on, so a SIGHUP
/// that comes at once never meets the default action (ending the process).
fn reload_on_sighup(
    reloader: std::sync::Arc<Reloader>,
    router: std::sync::Arc<bot::router::Router>,
) -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    Ok(async move {
        while hangup.recv().await.is_some() {
            // `Reloader::reload` logs the outcome, every problem included; the audit
            // trail records who asked (whoever may signal the process) and how it went.
            let outcome = match reloader.reload() {
                Ok(_) => "reloaded",
                Err(_) => "refused",
            };
            let origin = jobs::Origin::new("signal", "SIGHUP");
            let entry = jobs::AuditEntry::new(jobs::AuditKind::Reload, &origin, "reload", outcome);
            let keep = router.catalog().audit_keep;
            bot::audit_trail::append(router.services().store.as_ref(), keep, &entry).await;
        }
    })
}

/// `--check-config`: the verdict on stdout, each problem on its own line.
fn check_config(path: &std::path::Path) -> ExitCode {
    let checked = Config::load(path).and_then(|config| reload::check(&config).map(|c| (config, c)));
    match checked {
        Ok((config, catalog)) => {
            println!(
                "{}: valid — {} commands ({} configured), {}",
                path.display(),
                catalog.commands.catalog.len(),
                config.commands.len(),
                if config.is_embedded() {
                    "embedded mode"
                } else {
                    "RabbitMQ and Redis"
                }
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprint!("{errors}");
            ExitCode::FAILURE
        }
    }
}
