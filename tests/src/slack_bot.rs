//! `SlackBot`: an `octobox-bot` process serving Slack (no console), started from a
//! configuration, killed or restarted on demand, its log kept for failure messages.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

pub struct SlackBot {
    dir: TempDir,
    config: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl SlackBot {
    /// Writes `toml` to a temporary `octobox.toml` and starts `octobox-bot --config` on it.
    pub fn start(toml: &str) -> Self {
        Self::start_with_env(toml, &[])
    }

    /// As [`SlackBot::start`], with more environment variables (for `${NAME}` secrets).
    pub fn start_with_env(toml: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("octobox.toml");
        std::fs::write(&config, toml).expect("config written");
        let log = dir.path().join("bot.log");
        let mut bot = SlackBot {
            dir,
            config,
            log,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        bot.spawn();
        bot
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("bot log file");
        let child = Command::new(crate::binary::path("octobox-bot"))
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("bot log file"))
            .stderr(log)
            .spawn()
            .expect("octobox-bot starts");
        self.child = Some(child);
    }

    /// SIGKILL: the bot dies with whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again (after [`SlackBot::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Whether the process has exited, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The folder holding the configuration, for other processes' files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SlackBot {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of the bot's log ---");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
