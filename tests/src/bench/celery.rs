//! The Celery comparison: `scripts/celery_bench.py`, run against the same private
//! RabbitMQ and Redis, inside a virtual environment created on first use
//! (`target/celery-venv`, with `celery[redis]==5.*` from PyPI).
//!
//! The script starts and stops its own Celery worker; it runs here in a process group of
//! its own, so that if it outlasts its time the whole group (script, worker, pool) is
//! killed, by that group's id.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// What the script is asked to measure.
pub struct CeleryRun<'a> {
    pub broker_url: &'a str,
    pub redis_url: &'a str,
    pub jobs: usize,
    pub window: usize,
    pub low_load: usize,
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

    /// Runs the script and returns the JSON object it printed.
    pub fn measure(&self, r: &CeleryRun<'_>) -> Result<Value> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(self.python())
            .arg(&self.script)
            .args(["--broker", r.broker_url, "--redis", r.redis_url])
            .args(["--jobs", &r.jobs.to_string()])
            .args(["--window", &r.window.to_string()])
            .args(["--low-load", &r.low_load.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.script.display()))?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let reader = std::thread::spawn(move || {
            let mut out = String::new();
            stdout.read_to_string(&mut out).map(|_| out)
        });
        let deadline = Instant::now() + r.patience;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                // The script, its Celery worker and the pool share the group we created.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
                bail!("the Celery run took over {:?} and was stopped", r.patience);
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = reader
            .join()
            .map_err(|_| anyhow!("reading the Celery script's output failed"))??;
        if !status.success() {
            bail!("the Celery script failed ({status}); its log is above");
        }
        let line = out
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .ok_or_else(|| anyhow!("the Celery script printed no JSON line"))?;
        serde_json::from_str(line).context("the Celery script's JSON line")
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
