//! Worker processes under test: started from a configuration file, killed (SIGKILL) or
//! stopped (SIGTERM) on demand, their logs kept in a file for failure messages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One `octobox-worker` process.
pub struct WorkerProcess {
    pub name: String,
    config: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl WorkerProcess {
    /// Starts `octobox-worker --config <config> --name <name>`, logging to
    /// `<config's folder>/<name>.log`.
    pub fn start(config: &Path, name: &str) -> Self {
        Self::start_with_env(config, name, &[])
    }

    pub fn start_with_env(config: &Path, name: &str, env: &[(&str, &str)]) -> Self {
        let log = config
            .parent()
            .expect("the config lives in a folder")
            .join(format!("{name}.log"));
        let mut w = WorkerProcess {
            name: name.to_string(),
            config: config.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log,
            child: None,
        };
        w.spawn();
        w
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("worker log file");
        let mut cmd = Command::new(crate::binary::path("octobox-worker"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(["--name", &self.name])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("worker log file"))
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("octobox-worker starts"));
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

    /// SIGKILL: the worker dies with whatever it holds.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit (at most `patience`).
    pub fn terminate(&mut self, patience: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("the worker is running");
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
                    "worker {} did not stop within {patience:?} of SIGTERM; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // A failing test shows what each of its workers was doing.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of worker {}'s log ---", self.name);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
