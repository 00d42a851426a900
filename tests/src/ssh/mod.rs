//! Reaching `octobox-bot`'s SSH server with the real OpenSSH client (`ssh` from
//! openssh-client), as an operator would: keys made by `ssh-keygen`, one command per
//! connection (exec), commands piped into a session, or a session on a pseudo-terminal
//! (`ssh -tt`) typed into key by key.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

mod password;
mod terminal;
pub use password::{try_keyboard_interactive, try_password};
pub use terminal::TerminalSession;

use crate::console::PATIENCE;
use crate::services::free_port;

/// A key pair made by `ssh-keygen` (Ed25519, no passphrase), commented with its name.
pub struct SshKey {
    pub path: PathBuf,
    pub public: String,
}

impl SshKey {
    pub fn generate(dir: &Path, name: &str) -> SshKey {
        Self::generate_with_comment(dir, name, name)
    }

    /// A key in `key-<file>`, its comment `comment`.
    pub fn generate_with_comment(dir: &Path, file: &str, comment: &str) -> SshKey {
        let path = dir.join(format!("key-{file}"));
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen runs (Debian package openssh-client)");
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        let public = std::fs::read_to_string(path.with_extension("pub"))
            .expect("ssh-keygen wrote the public key");
        SshKey {
            path,
            public: public.trim().to_string(),
        }
    }
}

/// What one `ssh` run ended with.
#[derive(Debug)]
pub struct SshRun {
    /// The exit status; `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// An `octobox-bot` serving SSH on a free port of 127.0.0.1, embedded mode.
pub struct SshBot {
    dir: TempDir,
    child: Child,
    pub port: u16,
}

/// What to start an [`SshBot`] with.
pub struct SshBotSetup {
    /// More configuration (commands, `[acl]`); must not contain `[ssh]`.
    pub config: String,
    /// Extra `key = value` lines for `[ssh]` (limits).
    pub ssh_options: Vec<String>,
    /// The users with a key in authorized_keys (each listed as `identity="<user>"`).
    pub users: Vec<String>,
    /// More keys: (key file name, the comment `ssh-keygen` writes, the options before the
    /// key in authorized_keys).
    pub keys: Vec<(String, String, String)>,
    /// The bot's limit of open file descriptors (`ulimit -n`), if it should have one.
    pub fd_limit: Option<u32>,
}

impl SshBotSetup {
    pub fn new(users: &[&str]) -> Self {
        SshBotSetup {
            config: String::new(),
            ssh_options: Vec::new(),
            users: users.iter().map(|u| u.to_string()).collect(),
            keys: Vec::new(),
            fd_limit: None,
        }
    }

    /// One more key, made with `comment` by whoever owns it, listed in authorized_keys
    /// after `options`; its private key is [`SshBot::key`]`(file)`.
    pub fn key(mut self, file: &str, comment: &str, options: &str) -> Self {
        self.keys
            .push((file.to_string(), comment.to_string(), options.to_string()));
        self
    }

    /// Runs the bot with at most `n` open file descriptors.
    pub fn fd_limit(mut self, n: u32) -> Self {
        self.fd_limit = Some(n);
        self
    }

    pub fn config(mut self, toml: &str) -> Self {
        self.config = toml.to_string();
        self
    }

    pub fn ssh_option(mut self, line: &str) -> Self {
        self.ssh_options.push(line.to_string());
        self
    }

    pub fn start(self) -> SshBot {
        SshBot::start(self)
    }
}

impl SshBot {
    fn start(setup: SshBotSetup) -> SshBot {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut authorized = String::new();
        for user in &setup.users {
            let key = SshKey::generate(dir.path(), user);
            authorized.push_str(&format!("identity=\"{user}\" {}\n", key.public));
        }
        for (file, comment, options) in &setup.keys {
            let key = SshKey::generate_with_comment(dir.path(), file, comment);
            authorized.push_str(&format!("{options} {}\n", key.public));
        }
        std::fs::write(dir.path().join("authorized_keys"), authorized).expect("keys written");
        let port = free_port();
        let config = format!(
            "{}\n\n[ssh]\nlisten = \"127.0.0.1:{port}\"\nhost_key = \"host_key\"\nauthorized_keys = \"authorized_keys\"\n{}\n",
            crate::without_quota(&setup.config),
            setup.ssh_options.join("\n")
        );
        let config_path = dir.path().join("octobox.toml");
        std::fs::write(&config_path, config).expect("config written");
        let log = std::fs::File::create(dir.path().join("bot.log")).expect("log file");
        let bin = crate::binary::path("octobox-bot");
        let mut command = match setup.fd_limit {
            None => Command::new(bin),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                    .arg(bin);
                sh
            }
        };
        let child = command
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("octobox-bot starts");
        let mut bot = SshBot { dir, child, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = bot.child.try_wait() {
                panic!(
                    "octobox-bot exited ({status}) before listening:\n{}",
                    bot.log()
                );
            }
            assert!(
                start.elapsed() < PATIENCE,
                "octobox-bot did not listen for SSH on {port}:\n{}",
                bot.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        bot
    }

    /// The bot's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bot.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The private key of `user`, made at start.
    pub fn key(&self, user: &str) -> PathBuf {
        self.dir.path().join(format!("key-{user}"))
    }

    /// `ssh` to this bot with `key`: no known-hosts file, no agent, no prompts.
    pub fn ssh_with_key(&self, key: &Path) -> Command {
        ssh_command(self.port, key)
    }

    /// `ssh` to this bot as `user`; add the command (or nothing for a session).
    pub fn ssh(&self, user: &str) -> Command {
        let mut cmd = self.ssh_with_key(&self.key(user));
        cmd.arg(format!("{user}@127.0.0.1"));
        cmd
    }

    /// `ssh bot "<command>"` as `user`, with no input; waits for it to end.
    pub fn exec(&self, user: &str, command: &str) -> SshRun {
        let mut cmd = self.ssh(user);
        cmd.arg(command).stdin(Stdio::null());
        finish(cmd)
    }

    /// `printf 'lines…' | ssh bot` as `user`: a session fed its commands on a pipe.
    pub fn piped(&self, user: &str, lines: &[String]) -> SshRun {
        let mut cmd = self.ssh(user);
        cmd.arg("-T").stdin(Stdio::piped());
        let mut child = spawn(cmd);
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
        let run = wait(child);
        let _ = writer.join();
        run
    }

    /// A session on a pseudo-terminal (`ssh -tt`), typed into by the test.
    pub fn terminal(&self, user: &str) -> TerminalSession {
        self.terminal_running(user, None)
    }

    /// `ssh -tt bot "<command>"` (or a session, for `None`), typed into by the test.
    pub fn terminal_running(&self, user: &str, command: Option<&str>) -> TerminalSession {
        let mut cmd = self.ssh(user);
        cmd.arg("-tt").args(command);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        TerminalSession::spawn(cmd)
    }
}

impl Drop for SshBot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ssh -p <port> -i <key>` to a server on this machine: no known-hosts file, no agent,
/// no prompts; add the destination and the command.
pub fn ssh_command(port: u16, key: &Path) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args([
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
        "-p",
        &port.to_string(),
        "-i",
    ])
    .arg(key)
    .env_remove("SSH_AUTH_SOCK");
    cmd
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh runs (Debian package openssh-client)")
}

/// Runs `cmd` to its end (killed past [`PATIENCE`]).
pub fn finish(cmd: Command) -> SshRun {
    wait(spawn(cmd))
}

/// Runs `cmd` to its end (killed past `patience`).
pub fn finish_within(cmd: Command, patience: Duration) -> SshRun {
    wait_within(spawn(cmd), patience)
}

fn wait(child: Child) -> SshRun {
    wait_within(child, PATIENCE)
}

fn wait_within(mut child: Child, patience: Duration) -> SshRun {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out = std::thread::spawn(move || read_all(out.as_mut()));
    let err = std::thread::spawn(move || read_all(err.as_mut()));
    let deadline = Instant::now() + patience;
    let status = loop {
        if let Some(status) = child.try_wait().expect("ssh can be waited for") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ssh did not end within {patience:?}; stdout:\n{}\nstderr:\n{}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    SshRun {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn read_all(r: Option<&mut impl Read>) -> String {
    let mut s = String::new();
    if let Some(r) = r {
        let _ = r.read_to_string(&mut s);
    }
    s
}
