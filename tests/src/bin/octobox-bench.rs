//! `octobox-bench`: measures Octobox's job pipeline end to end (and, with `--celery`,
//! Celery on the same services), and prints one JSON line on standard output. Progress
//! and logs go to standard error. `--slack` measures the Slack adapter instead;
//! `--history` the job history's filtered pages, printed as a table. See
//! `octobox_tests::bench` for what is measured.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use octobox_tests::bench::{self, Options};
use tracing_subscriber::EnvFilter;

/// Octobox's job pipeline under load: round trips, throughput, memory, the broker
/// ceiling, and Celery for comparison.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Jobs in the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    jobs: usize,
    /// Jobs outstanding at most in the throughput phase.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Jobs in the low-load phase, sent one at a time.
    #[arg(long, default_value_t = 1_000)]
    low_load: usize,
    /// `[worker] concurrency` of the worker process (also the ceiling consumer's prefetch).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Messages for the broker ceiling (default: --jobs).
    #[arg(long)]
    ceiling_messages: Option<usize>,
    /// Also run Celery on the same RabbitMQ and Redis (scripts/celery_bench.py).
    #[arg(long)]
    celery: bool,
    /// Tasks in Celery's throughput phase (default: --jobs).
    #[arg(long)]
    celery_jobs: Option<usize>,
    /// Log filter for the bot (this process) and the worker, as RUST_LOG. Celery runs
    /// at its default, WARNING; "warn" keeps per-job log lines out of all three.
    #[arg(long, default_value = "warn")]
    log_level: String,
    /// Measure a cluster instead: throughput with one, two and three worker hosts (Docker
    /// containers) against RabbitMQ on three nodes and Redis with Sentinel, and the
    /// cluster's own ceiling, --jobs each, --window outstanding.
    #[arg(long)]
    cluster: bool,
    /// Measure container jobs instead: start to result against `docker run --rm` of the
    /// same image, and a burst of jobs at once (see --container-jobs, --container-burst).
    #[arg(long)]
    containers: bool,
    /// With --containers: jobs run one at a time, alternating with `docker run --rm`.
    #[arg(long, default_value_t = 30)]
    container_jobs: usize,
    /// With --containers: jobs published at once.
    #[arg(long, default_value_t = 50)]
    container_burst: usize,
    /// Measure the Slack adapter instead: people sending commands through a local Slack
    /// server (acknowledgement and reply latencies).
    #[arg(long)]
    slack: bool,
    /// Slack mode: people sending commands.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Slack mode: commands per second.
    #[arg(long, default_value_t = 100)]
    slack_rate: u32,
    /// Slack mode: commands in all.
    #[arg(long, default_value_t = 3_000)]
    slack_commands: usize,
    /// Slack mode: Socket Mode connections of the bot.
    #[arg(long, default_value_t = 2)]
    connections: u32,
    /// The longest any one phase may take, in seconds.
    #[arg(long, default_value_t = 600)]
    patience: u64,
    /// Measure the SSH adapter instead (with the OpenSSH client): time to the first
    /// answer, and many sessions at once. Needs no RabbitMQ or Redis.
    #[arg(long)]
    ssh: bool,
    /// With --ssh: connections, one at a time, for the first-answer phase.
    #[arg(long, default_value_t = 50)]
    ssh_connections: usize,
    /// With --ssh: sessions at once in the throughput phase.
    #[arg(long, default_value_t = 100)]
    ssh_sessions: usize,
    /// With --ssh: commands per session.
    #[arg(long, default_value_t = 20)]
    ssh_commands: usize,
    /// Measure the job history's filtered pages instead, in a Redis filled with this
    /// many jobs (1,000,000 when no number is given), against `recent_jobs`; prints a
    /// table.
    #[arg(long, value_name = "JOBS", num_args = 0..=1, default_missing_value = "1000000")]
    history: Option<usize>,
    /// With --history: calls of each kind of page.
    #[arg(long, default_value_t = 300)]
    history_calls: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&args.log_level))
        .with_writer(std::io::stderr)
        .init();
    if let Some(jobs) = args.history {
        let options = bench::history::HistoryOptions {
            jobs,
            calls: args.history_calls,
        };
        return print(bench::history::run(&options));
    }
    if args.ssh {
        let options = bench::ssh::SshOptions {
            connections: args.ssh_connections,
            sessions: args.ssh_sessions,
            commands: args.ssh_commands,
        };
        return print(bench::ssh::run(&options));
    }
    if args.cluster {
        let options = bench::cluster::ClusterOptions {
            jobs: args.jobs,
            window: args.window,
            concurrency: args.concurrency,
            patience: Duration::from_secs(args.patience),
        };
        return print(bench::cluster::run(&options));
    }
    if args.containers {
        let options = bench::containers::ContainerOptions {
            sequential: args.container_jobs,
            burst: args.container_burst,
        };
        return print(bench::containers::run(&options));
    }
    if args.slack {
        let options = bench::slack::SlackOptions {
            users: args.users,
            rate: args.slack_rate,
            commands: args.slack_commands,
            connections: args.connections,
            log_level: args.log_level,
            patience: Duration::from_secs(args.patience),
        };
        return print(bench::slack::run(&options));
    }
    let options = Options {
        jobs: args.jobs,
        window: args.window,
        low_load: args.low_load,
        concurrency: args.concurrency,
        ceiling_messages: args.ceiling_messages,
        celery: args.celery,
        celery_jobs: args.celery_jobs,
        log_level: args.log_level,
        patience: Duration::from_secs(args.patience),
        workspace: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate lives in the workspace")
            .to_path_buf(),
    };
    print(bench::run(&options))
}

/// The report as one JSON line on standard output, or the error on standard error.
fn print(result: anyhow::Result<impl std::fmt::Display>) -> ExitCode {
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("octobox-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
