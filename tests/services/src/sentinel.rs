//! A replicated Redis watched by Redis Sentinel: a primary, its replicas
//! (`--replicaof`) and three sentinels (`redis-server --sentinel`), each a private
//! process on a free port, without persistence (a node that comes back, comes back
//! empty, as a replaced machine would).
//!
//! The sentinels are quick on purpose: a primary is down after 1 s without an answer,
//! and a quorum of 2 agrees on it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{free_port, terminate, wait_for_port};

/// The name the sentinels monitor the primary under.
pub const MASTER_NAME: &str = "octobox";

/// The passwords of a group: of the Redis nodes (`requirepass`, `masterauth`, the
/// sentinels' `auth-pass`) and of the sentinels themselves (`requirepass`).
#[derive(Debug, Clone, Default)]
pub struct Passwords {
    pub nodes: Option<String>,
    pub sentinels: Option<String>,
}

/// One `redis-server` of the group (the primary, or a replica).
pub struct RedisNode {
    dir: TempDir,
    pub port: u16,
    password: Option<String>,
    child: Option<Child>,
}

impl RedisNode {
    fn start(replica_of: Option<u16>, password: Option<String>) -> Self {
        let mut node = RedisNode {
            dir: tempfile::tempdir().expect("a temporary directory"),
            port: free_port(),
            password,
            child: None,
        };
        node.launch(replica_of);
        node
    }

    fn launch(&mut self, replica_of: Option<u16>) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.path().display().to_string()])
            .args(["--save", "", "--appendonly", "no"]);
        if let Some(primary) = replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        if let Some(password) = &self.password {
            cmd.args(["--requirepass", password, "--masterauth", password]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/test installs it)");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server", Duration::from_secs(20));
    }

    /// SIGKILL: the node dies at once, with whatever it had not sent its replicas.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP (`pause = true`) or SIGCONT: a paused node keeps its connections open and
    /// answers nothing, as a node stuck on a slow disk or a lost network does.
    pub fn pause(&self, pause: bool) {
        if let Some(child) = &self.child {
            let signal = if pause { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// SIGTERM, and waits for the process to end.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Starts the node again on its port, empty and believing itself a primary, as a
    /// crashed primary restarted by its supervisor does; the sentinels turn it into a
    /// replica of the primary they promoted.
    pub fn start_again(&mut self) {
        self.launch(None);
    }

    /// Starts the node again on its port, empty, as a replica of the node on `primary`.
    pub fn start_again_as_replica_of(&mut self, primary: u16) {
        self.launch(Some(primary));
    }

    /// `redis-cli` against this node.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, self.password.as_deref(), args)
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `redis-server --sentinel`.
pub struct Sentinel {
    _dir: TempDir,
    pub port: u16,
    password: Option<String>,
    child: Child,
}

impl Sentinel {
    fn start(primary: u16, passwords: &Passwords) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        // Sentinel rewrites its file as it learns: it must be its own and writable.
        let file = dir.path().join("sentinel.conf");
        let mut text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {primary} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 5000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            dir = dir.path().display(),
        );
        if let Some(password) = &passwords.nodes {
            text += &format!("sentinel auth-pass {MASTER_NAME} {password}\n");
        }
        // A sentinel with a password uses it with the other sentinels too.
        if let Some(password) = &passwords.sentinels {
            text += &format!("requirepass {password}\n");
        }
        std::fs::write(&file, text).expect("the sentinel's configuration is written");
        let child = Command::new("redis-server")
            .arg(Path::new(&file))
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel starts");
        wait_for_port(port, "redis-server --sentinel", Duration::from_secs(20));
        Sentinel {
            _dir: dir,
            port,
            password: passwords.sentinels.clone(),
            child,
        }
    }

    /// `SENTINEL master <name>` as field/value pairs.
    fn master_state(&self) -> Vec<(String, String)> {
        let out = self.cli(&["SENTINEL", "master", MASTER_NAME]);
        let lines: Vec<&str> = out.lines().collect();
        lines
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((k.to_string(), v.to_string())),
                _ => None,
            })
            .collect()
    }

    /// `redis-cli` against this sentinel.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, self.password.as_deref(), args)
    }

    /// The primary's port as this sentinel knows it.
    pub fn primary_port(&self) -> Option<u16> {
        let out = self.cli(&["SENTINEL", "get-master-addr-by-name", MASTER_NAME]);
        out.lines().nth(1).and_then(|p| p.trim().parse().ok())
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A primary, its replicas and three sentinels that agree on them.
pub struct SentinelGroup {
    pub primary: RedisNode,
    pub replicas: Vec<RedisNode>,
    pub sentinels: Vec<Sentinel>,
}

impl SentinelGroup {
    /// Starts the primary, `replicas` replicas and three sentinels, and returns once the
    /// replicas are in sync and every sentinel knows them and the two other sentinels: a
    /// failover can happen from then on.
    pub fn start(replicas: usize) -> Self {
        Self::start_with(replicas, Passwords::default())
    }

    /// [`SentinelGroup::start`], the nodes and the sentinels asking for `passwords`.
    pub fn start_with(replicas: usize, passwords: Passwords) -> Self {
        let primary = RedisNode::start(None, passwords.nodes.clone());
        let replicas: Vec<RedisNode> = (0..replicas)
            .map(|_| RedisNode::start(Some(primary.port), passwords.nodes.clone()))
            .collect();
        let sentinels = (0..3)
            .map(|_| Sentinel::start(primary.port, &passwords))
            .collect();
        let group = SentinelGroup {
            primary,
            replicas,
            sentinels,
        };
        group.wait_until_ready(Duration::from_secs(30));
        group
    }

    /// The sentinels' addresses, as `[store] sentinels` lists them.
    pub fn sentinel_addresses(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// The primary's port once a majority of the sentinels name one other than `old`.
    pub fn wait_for_new_primary(&self, old: u16, deadline: Duration) -> u16 {
        let start = Instant::now();
        loop {
            let named: Vec<u16> = self
                .sentinels
                .iter()
                .filter_map(Sentinel::primary_port)
                .filter(|&p| p != old)
                .collect();
            if named.len() >= 2 {
                return named[0];
            }
            assert!(
                start.elapsed() < deadline,
                "the sentinels named no primary other than {old} within {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the node on `port` is a replica in sync with the primary (`INFO
    /// replication`: `master_link_status:up`).
    pub fn wait_for_replica(&self, port: u16, deadline: Duration) {
        let node = std::iter::once(&self.primary)
            .chain(&self.replicas)
            .find(|n| n.port == port)
            .expect("a node of the group");
        let start = Instant::now();
        while !node
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
        {
            assert!(
                start.elapsed() < deadline,
                "the node on port {port} did not become a replica in sync within {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_until_ready(&self, deadline: Duration) {
        let start = Instant::now();
        for replica in &self.replicas {
            self.wait_for_replica(replica.port, deadline);
        }
        let wanted = self.replicas.len().to_string();
        let ready = |s: &Sentinel| {
            let state = s.master_state();
            let field = |name: &str| {
                state
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            field("num-slaves").as_deref() == Some(wanted.as_str())
                && field("num-other-sentinels").as_deref() == Some("2")
        };
        while !self.sentinels.iter().all(ready) {
            assert!(
                start.elapsed() < deadline,
                "the sentinels did not learn of the replicas and of each other within {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `redis-cli -p <port> <args>`, with `password` when given; its output, empty when it
/// fails.
fn cli(port: u16, password: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(password) = password {
        cmd.args(["--no-auth-warning", "-a", password]);
    }
    cmd.args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
