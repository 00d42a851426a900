//! Driving `octobox-bot --console` like a person at a terminal (or a script on a pipe).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long any single expectation may wait before the test fails (never hangs).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A console to start: its configuration and its environment. Its person is whoever runs
/// the tests: the console's identity is the account of its user id, [`me`].
pub struct Console {
    dir: TempDir,
    config: Option<PathBuf>,
    env: Vec<(String, String)>,
}

/// The identity every console started by the tests has: `console:<account>`.
pub fn me() -> String {
    format!("console:{}", bot::console::login())
}

/// What a finished console run printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    pub fn new() -> Self {
        Console {
            dir: tempfile::tempdir().expect("a temporary directory"),
            config: None,
            env: Vec::new(),
        }
    }

    /// Uses `toml` as the configuration file (written to a temporary `octobox.toml`).
    pub fn config(mut self, toml: &str) -> Self {
        let path = self.dir.path().join("octobox.toml");
        std::fs::write(&path, crate::without_quota(toml)).expect("config written");
        self.config = Some(path);
        self
    }

    /// Writes `toml` over the configuration file, for a running bot to reload.
    pub fn replace_config(&self, toml: &str) {
        let path = self
            .config
            .as_ref()
            .expect("a console started with a configuration");
        std::fs::write(path, crate::without_quota(toml)).expect("config written");
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// The path of the configuration file, for messages that name it.
    pub fn config_path(&self) -> String {
        self.config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// `octobox-bot` with `args` and this console's environment, piped.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(crate::binary::path("octobox-bot"));
        cmd.args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `--config <file> --console`, or just `--console` without a configuration.
    fn console_command(&self) -> Command {
        let config = self.config_path();
        match self.config {
            Some(_) => self.command(&["--config", &config, "--console"]),
            None => self.command(&["--console"]),
        }
    }

    /// Feeds `lines` on a pipe, closes standard input, and waits for the bot to exit.
    pub fn run(&self, lines: &[&str]) -> Finished {
        let mut child = Guard(self.console_command().spawn().expect("octobox-bot starts"));
        let mut stdin = child.0.stdin.take().expect("stdin is piped");
        for line in lines {
            writeln!(stdin, "{line}").expect("the bot reads its input");
        }
        drop(stdin);
        child.finish()
    }

    /// Runs `octobox-bot --check-config <this config>`.
    pub fn check_config(&self) -> Finished {
        let mut cmd = self.command(&["--check-config", &self.config_path()]);
        cmd.stdin(Stdio::null());
        Guard(cmd.spawn().expect("octobox-bot starts")).finish()
    }

    /// Starts a live session: the test writes lines and waits for answers.
    pub fn start(&self) -> Session {
        let mut child = self.console_command().spawn().expect("octobox-bot starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Session {
            child: Guard(child),
            stdin,
            lines,
            seen: Vec::new(),
        }
    }
}

/// A running console the test converses with.
pub struct Session {
    child: Guard,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, for failure messages.
    pub seen: Vec<String>,
}

impl Session {
    /// The bot's process id, for sending it signals.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("input is still open");
        writeln!(stdin, "{line}").expect("the bot reads its input");
        stdin.flush().expect("the bot reads its input");
    }

    /// Reads output lines until one satisfies `want`, and returns it.
    pub fn expect(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        self.expect_within(what, PATIENCE, want)
    }

    /// As [`Session::expect`], with a patience of the test's choosing.
    pub fn expect_within(
        &mut self,
        what: &str,
        patience: Duration,
        want: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line {what} within {patience:?}; the console printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Reads output lines until `n` have satisfied `want`, and returns those.
    pub fn expect_count(
        &mut self,
        what: &str,
        n: usize,
        want: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        (0..n).map(|_| self.expect(what, &want)).collect()
    }

    /// Closes standard input and waits for the bot to exit.
    pub fn finish(self) -> Finished {
        self.finish_within(PATIENCE)
    }

    /// As [`Session::finish`], for a bot that has many jobs to wait for.
    pub fn finish_within(mut self, patience: Duration) -> Finished {
        drop(self.stdin.take());
        let deadline = Instant::now() + patience;
        let mut rest = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            rest.push(line);
        }
        let mut finished = self.child.finish();
        self.seen.extend(rest);
        finished.stdout = self.seen.join("\n");
        finished
    }
}

/// Kills the child if the test ends early; waits for it with a deadline otherwise.
struct Guard(Child);

impl Guard {
    fn finish(&mut self) -> Finished {
        let mut stdout = self.0.stdout.take();
        let mut stderr = self.0.stderr.take();
        let out = std::thread::spawn(move || read_all(stdout.as_mut()));
        let err = std::thread::spawn(move || read_all(stderr.as_mut()));
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.0.try_wait().expect("the bot can be waited for") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.0.kill();
                panic!(
                    "octobox-bot did not exit within {PATIENCE:?}; stderr:\n{}",
                    err.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Finished {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn read_all(r: Option<&mut impl Read>) -> String {
    let mut s = String::new();
    if let Some(r) = r {
        let _ = r.read_to_string(&mut s);
    }
    s
}
