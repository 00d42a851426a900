//! `SlackBot`: an `octobox-bot` process serving Slack (no console), started from a
//! configuration, killed or restarted on demand, its log kept for failure messages.

use std::ops::{Deref, DerefMut};

use tempfile::TempDir;

use crate::processes::ServiceProcess;

pub struct SlackBot {
    // Declared first, so the process is stopped before its folder goes.
    process: ServiceProcess,
    dir: TempDir,
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
        std::fs::write(&config, crate::without_quota(toml)).expect("config written");
        let process = ServiceProcess::start(
            "the bot",
            "octobox-bot",
            vec!["--config".into(), config.into()],
            env,
            dir.path().join("bot.log"),
        );
        SlackBot { process, dir }
    }

    /// The folder holding the configuration, for other processes' files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Deref for SlackBot {
    type Target = ServiceProcess;
    fn deref(&self) -> &ServiceProcess {
        &self.process
    }
}

impl DerefMut for SlackBot {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.process
    }
}
