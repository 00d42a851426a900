//! The Celery comparison: `scripts/celery_bench.py`, run against the same private
//! RabbitMQ and Redis, inside a virtual environment created on first use
//! (`target/celery-venv`, with `celery[redis]==5.*` from PyPI).
//!
//! The script runs in its `--serve` mode, as a [`CelerySession`]: it starts its Celery
//! worker, then runs each phase when asked, so the bench can alternate Celery's low-load
//! tasks with Octobox's. It runs in a process group of its own, so that if it outlasts
//! its time, or the bench ends early, the whole group (script, worker, pool) is killed
//! by that group's id.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// The longest the virtual environment or the installation of Celery may take.
const SETUP_LIMIT: Duration = Duration::from_secs(600);

/// Where the script and the virtual environment live.
pub struct Celery {
    pub script: PathBuf,
    pub venv: PathBuf,
}

/// Where the script's Celery runs, and how long any one phase may take.
pub struct CeleryRun<'a> {
    pub broker_url: &'a str,
    pub redis_url: &'a str,
    /// The throughput phase's window (also stated in the script's settings).
    pub window: usize,
    pub patience: Duration,
}

impl Celery {
    /// The script and environment of the workspace at `root`.
    pub fn in_workspace(root: &Path) -> Self {
        Celery {
            script: root.join("scripts/celery_bench.py"),
            venv: root.join("target/celery-venv"),
        }
    }

    fn python(&self) -> PathBuf {
        self.venv.join("bin/python")
    }

    /// Creates the virtual environment and installs Celery, unless that was done before.
    pub fn prepare(&self) -> Result<()> {
        let ready = Command::new(self.python())
            .args(["-c", "import celery, redis"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(());
        }
        eprintln!(
            "octobox-bench: installing Celery into {} (once; this takes a minute)",
            self.venv.display()
        );
        run(Command::new("python3").args(["-m", "venv"]).arg(&self.venv))
            .context("creating the Celery virtual environment (is python3-venv installed?)")?;
        run(Command::new(self.venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "celery[redis]==5.*",
        ]))
        .context("installing celery[redis] from PyPI")
    }

    /// Starts the script and its Celery worker; returns once the worker has answered a
    /// task.
    pub fn start(&self, r: &CeleryRun<'_>) -> Result<CelerySession> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(self.python())
            .arg(&self.script)
            .args(["--broker", r.broker_url, "--redis", r.redis_url])
            .args(["--window", &r.window.to_string(), "--serve"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.script.display()))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut session = CelerySession {
            child,
            stdin,
            lines,
            patience: r.patience,
        };
        let ready = session.answer("starting its worker")?;
        if ready["ready"] != Value::Bool(true) {
            bail!("the Celery script did not say it was ready: {ready}");
        }
        Ok(session)
    }
}

/// The Celery script in `--serve` mode: each phase runs when asked.
pub struct CelerySession {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<std::io::Result<String>>,
    patience: Duration,
}

impl CelerySession {
    /// The round trips of `count` tasks sent one at a time.
    pub fn low_load(&mut self, count: usize) -> Result<Vec<Duration>> {
        self.ask(&format!("low {count}"))?;
        let answer = self.answer("running low-load tasks")?;
        let seconds = answer["round_trips_s"]
            .as_array()
            .ok_or_else(|| anyhow!("the Celery script answered without round trips: {answer}"))?;
        let round_trips: Vec<Duration> = seconds
            .iter()
            .filter_map(|s| s.as_f64().and_then(|s| Duration::try_from_secs_f64(s).ok()))
            .collect();
        if round_trips.len() != count {
            bail!(
                "the Celery script gave {} round trips for {count} tasks",
                round_trips.len()
            );
        }
        Ok(round_trips)
    }

    /// The throughput phase: `jobs` tasks with at most `window` outstanding.
    pub fn throughput(&mut self, jobs: usize, window: usize) -> Result<Value> {
        self.ask(&format!("throughput {jobs} {window}"))?;
        self.answer("running the throughput phase")
    }

    /// Stops the worker and returns the script's report (throughput figures, memory,
    /// settings).
    pub fn finish(mut self) -> Result<Value> {
        self.ask("done")?;
        let report = self.answer("stopping its worker")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("the Celery script did not exit after its report");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(report)
    }

    fn ask(&mut self, command: &str) -> Result<()> {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .with_context(|| {
                format!(
                    "asking the Celery script for \"{command}\" (did it exit? its log is above)"
                )
            })
    }

    /// The next JSON line the script prints, within the patience.
    fn answer(&mut self, doing: &str) -> Result<Value> {
        let deadline = Instant::now() + self.patience;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(wait) {
                Ok(line) => line.context("reading the Celery script's output")?,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("the Celery script took over {:?} {doing}", self.patience)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("the Celery script ended while {doing}; its log is above")
                }
            };
            if line.starts_with('{') {
                return serde_json::from_str(&line)
                    .with_context(|| format!("the Celery script's answer: {line}"));
            }
        }
    }
}

impl Drop for CelerySession {
    /// The script, its Celery worker and the pool share the group it was started in.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to its end, killing it if it takes longer than [`SETUP_LIMIT`].
fn run(cmd: &mut Command) -> Result<()> {
    let mut child = cmd.stdout(Stdio::null()).spawn()?;
    let deadline = Instant::now() + SETUP_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} took over {SETUP_LIMIT:?} and was stopped");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}
