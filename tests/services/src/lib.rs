//! Private instances of the real services, one per test: `redis-server` and a RabbitMQ
//! node on free ports (each also with TLS and a private CA, `TestPki`), a replicated
//! Redis under Redis Sentinel (`SentinelGroup`), and the machine's Docker engine behind a
//! TLS front (`DockerTlsFront`); directories of their own, stopped
//! when dropped. Never the machine's shared instances, so tests run in parallel and leave
//! nothing behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

mod docker_tls;
mod pki;
pub mod sentinel;
pub use docker_tls::DockerTlsFront;
pub use pki::TestPki;
pub use sentinel::SentinelGroup;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn wait_for_port(port: u16, what: &str, deadline: Duration) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < deadline,
            "{what} did not listen on port {port} within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private `redis-server` with append-only persistence.
pub struct Redis {
    dir: TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Self {
        let mut redis = Redis {
            dir: tempfile::tempdir().expect("a temporary directory"),
            port: free_port(),
            child: None,
        };
        redis.launch();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.path().display().to_string()])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/test installs it)");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server", Duration::from_secs(20));
        // Listening is not ready: after a restart Redis answers LOADING while it replays
        // its append-only file.
        let start = Instant::now();
        while !self.answers_ping() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "redis-server on port {} did not answer PING",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reply = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok()
            && s.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Stops the server (SIGTERM: it flushes its append-only file) and starts it again on
    /// the same port and data.
    pub fn restart(&mut self, down_for: Duration) {
        self.stop();
        std::thread::sleep(down_for);
        self.launch();
    }

    /// Stops the server (SIGTERM: it flushes its append-only file); [`Redis::start_again`]
    /// brings it back on the same port and data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    pub fn start_again(&mut self) {
        self.launch();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private `redis-server` that speaks TLS only, with a certificate for 127.0.0.1 signed
/// by a private CA made for it (`openssl`), and a second CA that signed nothing it
/// serves (what a client of an impostor would trust).
pub struct TlsRedis {
    pki: TestPki,
    pub port: u16,
    child: Child,
}

impl TlsRedis {
    pub fn start() -> Self {
        let pki = TestPki::new();
        let at = |p: PathBuf| p.display().to_string();
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--dir", &pki.dir().display().to_string()])
            .args([
                "--tls-cert-file",
                &at(pki.cert("server")),
                "--tls-key-file",
                &at(pki.key("server")),
            ])
            .args([
                "--tls-ca-cert-file",
                &at(pki.cert("ca")),
                "--tls-auth-clients",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/test installs it)");
        wait_for_port(port, "redis-server (TLS)", Duration::from_secs(20));
        TlsRedis { pki, port, child }
    }

    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.port)
    }

    /// The CA that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.pki.cert("ca")
    }

    /// A CA that signed nothing this server presents.
    pub fn other_ca_file(&self) -> PathBuf {
        self.pki.cert("other-ca")
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// A private RabbitMQ node: its own node name, ports and directories.
pub struct RabbitMq {
    dir: TempDir,
    pub port: u16,
    node: String,
    child: Option<Child>,
    /// With [`RabbitMq::start_tls`]: the AMQPS port and the certificates.
    tls: Option<(u16, TestPki)>,
}

const RABBITMQ_BIN: &str = "/usr/lib/rabbitmq/bin";

impl RabbitMq {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A node that also listens for AMQPS, with a server certificate signed by a private
    /// CA, and that refuses a TLS client without a certificate that CA signed
    /// (`verify_peer`, `fail_if_no_peer_cert`).
    pub fn start_tls() -> Self {
        Self::start_with(Some((free_port(), TestPki::new())))
    }

    fn start_with(tls: Option<(u16, TestPki)>) -> Self {
        let port = free_port();
        let mut mq = RabbitMq {
            dir: tempfile::tempdir().expect("a temporary directory"),
            port,
            node: format!("octobox-test-{port}@localhost"),
            child: None,
            tls,
        };
        std::fs::write(mq.dir.path().join("plugins"), "[].\n").expect("plugins file");
        let mut conf = format!("listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n");
        if let Some((tls_port, pki)) = &mq.tls {
            let p = |f: PathBuf| f.display().to_string();
            conf.push_str(&format!(
                "listeners.ssl.default = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = true\n",
                p(pki.cert("ca")),
                p(pki.cert("server")),
                p(pki.key("server")),
            ));
        }
        std::fs::write(mq.dir.path().join("rabbitmq.conf"), conf).expect("rabbitmq.conf");
        mq.launch();
        mq
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `amqps://` to the TLS listener of a node made by [`RabbitMq::start_tls`].
    pub fn tls_url(&self) -> String {
        let (port, _) = self.tls.as_ref().expect("a node started with start_tls");
        format!("amqps://guest:guest@127.0.0.1:{port}/%2f")
    }

    /// The certificates of a node made by [`RabbitMq::start_tls`].
    pub fn pki(&self) -> &TestPki {
        &self.tls.as_ref().expect("a node started with start_tls").1
    }

    /// The id of the process started for the node (`rabbitmq-server`; the Erlang VM runs
    /// under it), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn env(&self, cmd: &mut Command) {
        let d = self.dir.path();
        let p = |name: &str| d.join(name).display().to_string();
        cmd.env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_MNESIA_BASE", p("mnesia"))
            .env("RABBITMQ_LOG_BASE", p("log"))
            .env("RABBITMQ_PID_FILE", p("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", p("plugins"))
            .env("RABBITMQ_CONFIG_FILE", p("rabbitmq"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", p("advanced.config"));
    }

    fn ctl(&self, args: &[&str]) -> bool {
        let mut cmd = Command::new(Path::new(RABBITMQ_BIN).join("rabbitmqctl"));
        self.env(&mut cmd);
        cmd.arg("-n")
            .arg(&self.node)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn launch(&mut self) {
        let mut cmd = Command::new(Path::new(RABBITMQ_BIN).join("rabbitmq-server"));
        self.env(&mut cmd);
        let log = std::fs::File::create(self.dir.path().join("server.out")).expect("log file");
        let child = cmd
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("rabbitmq-server starts (scripts/test installs it)");
        self.child = Some(child);
        let pid: PathBuf = self.dir.path().join("pid");
        // `rabbitmqctl wait <pidfile>` is the reliable readiness check.
        let ready = self.ctl(&["wait", &pid.display().to_string(), "--timeout", "90"]);
        assert!(
            ready,
            "RabbitMQ node {} did not start; see {}",
            self.node,
            self.dir.path().join("server.out").display()
        );
        wait_for_port(self.port, "RabbitMQ", Duration::from_secs(30));
        if let Some((tls_port, _)) = &self.tls {
            wait_for_port(*tls_port, "RabbitMQ (AMQPS)", Duration::from_secs(30));
        }
    }

    /// Closes every client connection from the broker's side, as an operator or a load
    /// balancer would; the node stays up.
    pub fn close_all_connections(&self) {
        assert!(
            self.ctl(&["close_all_connections", "closed by the test"]),
            "rabbitmqctl close_all_connections failed on {}",
            self.node
        );
    }

    /// The frame size each open client connection negotiated, as the broker reports it.
    pub fn connection_frame_sizes(&self) -> Vec<u32> {
        let mut cmd = Command::new(Path::new(RABBITMQ_BIN).join("rabbitmqctl"));
        self.env(&mut cmd);
        let out = cmd
            .arg("-n")
            .arg(&self.node)
            .args([
                "list_connections",
                "frame_max",
                "--quiet",
                "--no-table-headers",
            ])
            .output()
            .expect("rabbitmqctl runs");
        assert!(
            out.status.success(),
            "rabbitmqctl list_connections failed: {out:?}"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Stops the node and starts it again with the same data (durable queues survive).
    pub fn restart(&mut self, down_for: Duration) {
        self.stop();
        std::thread::sleep(down_for);
        self.launch();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if !self.ctl(&["stop"]) {
                terminate(&mut child);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM, then SIGKILL if the process has not gone within ten seconds.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
