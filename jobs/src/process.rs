//! What every Octobox process runs on: its async runtime ([`build`], [`run_to_exit`]),
//! its log output ([`log_to_stderr`]) and its machine's name ([`hostname`]).
//!
//! One runtime thread unless `TOKIO_WORKER_THREADS` asks for more. The bot, the worker
//! and the scheduler wait on RabbitMQ, Redis, Slack and the Docker engine far more than
//! they compute; with one thread, a reply that comes back wakes no other thread on its
//! way. Measured with `octobox-bench` on two cores: with one thread the worker spent
//! about a tenth less CPU per job, and the bot's round trip at low load was about an
//! eighth shorter. Many SSH sessions opening at once are the one load that gains from
//! more threads (the key exchanges are computation): raise the count there.

use std::error::Error;
use std::future::Future;
use std::io;
use std::process::{ExitCode, Termination};

/// The variable that sets the number of runtime threads (read by tokio itself).
pub const THREADS_VARIABLE: &str = "TOKIO_WORKER_THREADS";

/// A multi-thread runtime (so `spawn_blocking` and `block_in_place` work as usual) with
/// one worker thread, or as many as [`THREADS_VARIABLE`] says.
pub fn build() -> io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os(THREADS_VARIABLE).is_none() {
        builder.worker_threads(1);
    }
    builder.enable_all().build()
}

/// Runs a program's `main` future on [`build`]'s runtime and turns its outcome into the
/// exit code; a failure is printed as `program: error` (with its causes) on standard
/// error, the last thing a person running the program reads.
pub fn run_to_exit<T, E, F>(program: &str, main: F) -> ExitCode
where
    T: Termination,
    E: AsRef<dyn Error + Send + Sync + 'static>,
    F: Future<Output = Result<T, E>>,
{
    let runtime = match build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(done) => done.report(),
        Err(e) => {
            eprintln!("{program}: {}", with_causes(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes as one line, `error: cause: cause`. Our errors often quote
/// their cause in their own sentence and keep it as their source too; a cause whose
/// words are already on the line is not repeated.
pub fn with_causes(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let words = c.to_string();
        if !line.contains(&words) {
            line.push_str(": ");
            line.push_str(&words);
        }
        cause = c.source();
    }
    line
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C; `then` says in the log what stopping means
/// for this process ("giving the lease up").
pub async fn stop_on_signal(shutdown: tokio_util::sync::CancellationToken, then: &'static str) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        tracing::error!("cannot listen for SIGTERM");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: {then}"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: {then}"),
    }
    shutdown.cancel();
}

/// Logs go to standard error, filtered by `RUST_LOG` when it is set and by
/// `default_filter` (`info`, `warn`, ...) when it is not. Colours only on a terminal:
/// a log file or `docker logs` gets plain text.
pub fn log_to_stderr(default_filter: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// This machine's name, for worker reports and process names (`localhost` when the
/// system will not say).
pub fn hostname() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct Failed {
        what: String,
        #[source]
        cause: std::io::Error,
    }

    #[test]
    fn a_cause_is_printed_once() {
        let quoted = Failed {
            what: "cannot reach Redis: connection refused".into(),
            cause: std::io::Error::other("connection refused"),
        };
        assert_eq!(
            with_causes(&quoted),
            "cannot reach Redis: connection refused"
        );
        let unquoted = Failed {
            what: "cannot reach Redis".into(),
            cause: std::io::Error::other("connection refused"),
        };
        assert_eq!(
            with_causes(&unquoted),
            "cannot reach Redis: connection refused"
        );
    }

    #[test]
    fn one_thread_runs_the_tasks_unless_the_variable_asks_for_more() {
        if std::env::var_os(THREADS_VARIABLE).is_some() {
            return;
        }
        let runtime = build().unwrap();
        assert_eq!(runtime.metrics().num_workers(), 1);
        // Blocking work still has threads of its own.
        let answer = runtime.block_on(async { tokio::task::spawn_blocking(|| 42).await });
        assert_eq!(answer.unwrap(), 42);
    }
}
