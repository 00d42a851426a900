//! `DockerTlsFront`: the machine's real Docker engine reached over TCP with TLS, as an
//! engine started with `--tlsverify` is: `socat` listens on 127.0.0.1 with a certificate a
//! private CA signed, takes only clients whose certificate that CA signed, and forwards
//! each connection to `/var/run/docker.sock`. `DockerTlsFront::impostor` is a man in the
//! middle in front of the same engine: a certificate from another CA, any client taken.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, terminate, wait_for_port, TestPki};

/// The engine's socket the front forwards to.
const ENGINE_SOCKET: &str = "/var/run/docker.sock";

pub struct DockerTlsFront {
    pki: TestPki,
    pub port: u16,
    child: Child,
}

impl DockerTlsFront {
    /// The engine behind TLS that trusts and is trusted by [`DockerTlsFront::cert_dir`].
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// A man in the middle: the engine behind a certificate the CA in
    /// [`DockerTlsFront::cert_dir`] did not sign (another CA's, for the same address),
    /// taking any client.
    pub fn impostor() -> Self {
        Self::launch(true)
    }

    fn launch(impostor: bool) -> Self {
        let pki = TestPki::new();
        let d = pki.dir();
        // What a client is given, named as the `docker` client wants them.
        let client = d.join("client");
        std::fs::create_dir(&client).expect("client directory");
        for (from, to) in [
            ("ca.crt", "ca.pem"),
            ("client.crt", "cert.pem"),
            ("client.key", "key.pem"),
        ] {
            std::fs::copy(d.join(from), client.join(to)).expect("client file copied");
        }
        let at = |name: &str| d.join(name).display().to_string();
        let port = free_port();
        let (served, verify) = if impostor {
            ("impostor", "verify=0")
        } else {
            ("server", "verify=1")
        };
        let listen = format!(
            "openssl-listen:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},cafile={},{verify}",
            at(&format!("{served}.crt")),
            at(&format!("{served}.key")),
            at("ca.crt"),
        );
        let log = std::fs::File::create(d.join("socat.log")).expect("log file");
        let child = Command::new("socat")
            .arg(listen)
            .arg(format!("unix-connect:{ENGINE_SOCKET}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("socat starts (scripts/test installs it)");
        wait_for_port(port, "socat (Docker over TLS)", Duration::from_secs(20));
        DockerTlsFront { pki, port, child }
    }

    /// `DOCKER_HOST` for this front.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// `DOCKER_CERT_PATH` for a client: the CA that signed the genuine front's certificate
    /// (`ca.pem`), and a client certificate and key it signed (`cert.pem`, `key.pem`).
    pub fn cert_dir(&self) -> PathBuf {
        self.pki.dir().join("client")
    }

    /// What `socat` wrote about the connections it took and refused.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.pki.dir().join("socat.log")).unwrap_or_default()
    }

    /// The directory of the CAs and certificates, for a test that needs another file.
    pub fn dir(&self) -> &Path {
        self.pki.dir()
    }
}

impl Drop for DockerTlsFront {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
