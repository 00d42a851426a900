//! Our programs run as child processes in tests: started from a configuration file,
//! killed (SIGKILL), stopped (SIGTERM) or started again on demand, their output kept in a
//! log file whose last lines a failing test prints.
//!
//! - `ServiceProcess`: any of them (`octobox-worker`, `octobox-scheduler`, `octobox-bot`
//!   serving Slack); the wrappers below only say how each is started.
//! - `WorkerProcess`: one `octobox-worker`.

use std::ffi::OsString;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One of our programs, running as a child process with its output in a log file.
pub struct ServiceProcess {
    /// How failure messages name it: `worker w1`, `scheduler s2`, `the bot`.
    what: String,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `binary` (one of the workspace's, see [`crate::binary::path`]) with `args`
    /// and `env`, appending its output to `log`.
    pub fn start(
        what: impl Into<String>,
        binary: &str,
        args: Vec<OsString>,
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Self {
        let mut process = ServiceProcess {
            what: what.into(),
            program: crate::binary::path(binary),
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log,
            child: None,
        };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(&self.program)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", self.program.display()));
        self.child = Some(child);
    }

    /// Starts the process again if it has exited (a supervisor's job).
    pub fn respawn_if_dead(&mut self) -> bool {
        let dead = matches!(
            self.child.as_mut().map(|c| c.try_wait()),
            Some(Ok(Some(_))) | None
        );
        if dead {
            self.spawn();
        }
        dead
    }

    /// SIGKILL: the process dies with whatever it holds.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again (after a kill, or killing it first).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGTERM, then waits for the exit (at most `patience`).
    pub fn terminate(&mut self, patience: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("the process is running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + patience;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{} did not stop within {patience:?} of SIGTERM; its log:\n{}",
                    self.what,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has exited, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // A failing test shows what each of its processes was doing.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of {}'s log ---", self.what);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// One `octobox-worker` process.
pub struct WorkerProcess {
    pub name: String,
    process: ServiceProcess,
}

impl WorkerProcess {
    /// Starts `octobox-worker --config <config> --name <name>`, logging to
    /// `<config's folder>/<name>.log`.
    pub fn start(config: &Path, name: &str) -> Self {
        Self::start_with_env(config, name, &[])
    }

    pub fn start_with_env(config: &Path, name: &str, env: &[(&str, &str)]) -> Self {
        WorkerProcess {
            name: name.to_string(),
            process: ServiceProcess::start(
                format!("worker {name}"),
                "octobox-worker",
                config_and_name(config, name),
                env,
                log_beside(config, name),
            ),
        }
    }
}

impl Deref for WorkerProcess {
    type Target = ServiceProcess;
    fn deref(&self) -> &ServiceProcess {
        &self.process
    }
}

impl DerefMut for WorkerProcess {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.process
    }
}

/// `--config <config> --name <name>`, as the worker and the scheduler take them.
pub fn config_and_name(config: &Path, name: &str) -> Vec<OsString> {
    vec![
        "--config".into(),
        config.into(),
        "--name".into(),
        name.into(),
    ]
}

/// `<config's folder>/<name>.log`.
pub fn log_beside(config: &Path, name: &str) -> PathBuf {
    config
        .parent()
        .expect("the config lives in a folder")
        .join(format!("{name}.log"))
}
