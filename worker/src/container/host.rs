//! `DockerHost`: where a worker's Docker engine is and how it is reached — the local
//! socket, TCP in clear, or TCP with TLS — read from `DOCKER_HOST`, `DOCKER_TLS_VERIFY`
//! and `DOCKER_CERT_PATH` as the `docker` client reads them, or given explicitly.
//!
//! With TLS, the worker trusts only what it was given: the engine's certificate must be
//! signed by the CA in `ca.pem` (never the system's roots), and the worker presents
//! `cert.pem` / `key.pem`. Each file is read once, when the engine is first reached, up to
//! `jobs::tls::TLS_FILE_MAX`; a file that cannot be used is named with what to do. An
//! engine over TCP without TLS on another machine is reached, with a warning.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::{BollardRequest, Docker, API_DEFAULT_VERSION};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jobs::JobFailure;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The engine's address when `DOCKER_HOST` names none.
pub const LOCAL_SOCKET: &str = "unix:///var/run/docker.sock";
/// How long one call to the engine may take, in seconds (bollard's default).
const CALL_TIMEOUT: u64 = 120;

/// Where the Docker engine is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerHost {
    /// As given: `unix:///var/run/docker.sock`, `tcp://10.0.0.5:2376`.
    url: String,
    /// With TLS: the directory that holds `ca.pem`, `cert.pem` and `key.pem`.
    cert_dir: Option<PathBuf>,
}

/// Why the client for an engine could not be built or could not talk to it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A TLS file cannot be used; the sentence names it and what to do.
    #[error("{0}")]
    Settings(String),
    #[error(transparent)]
    Client(#[from] bollard::errors::Error),
}

impl DockerHost {
    /// The engine at `url` (`unix://…`, `tcp://host:port`), without TLS.
    pub fn new(url: impl Into<String>) -> Self {
        DockerHost {
            url: url.into(),
            cert_dir: None,
        }
    }

    /// The engine the `docker` client would use: `DOCKER_HOST` (the local socket by
    /// default); over TLS when `DOCKER_TLS_VERIFY` is set to anything but the empty string,
    /// with the files in `DOCKER_CERT_PATH` (`~/.docker` by default).
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let host = DockerHost::new(var("DOCKER_HOST").unwrap_or_else(|| LOCAL_SOCKET.into()));
        if var("DOCKER_TLS_VERIFY").is_none() {
            return host;
        }
        let dir = var("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        host.tls(dir)
    }

    /// Reached over TLS: the engine's certificate checked against `dir/ca.pem`, and
    /// `dir/cert.pem` with `dir/key.pem` presented to it.
    pub fn tls(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cert_dir = Some(dir.into());
        self
    }

    /// The address, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn is_tcp(&self) -> bool {
        ["tcp://", "http://", "https://"]
            .iter()
            .any(|scheme| self.url.starts_with(scheme))
    }

    /// A client for the engine (no call made yet).
    pub fn client(&self) -> Result<Docker, ConnectError> {
        match &self.cert_dir {
            Some(dir) if self.is_tcp() => self.tls_client(dir),
            _ => {
                if self.is_tcp() && !is_loopback(&self.url) {
                    tracing::warn!(
                        engine = %self.url,
                        "the Docker engine is reached in clear over the network: anyone on the \
                         path can read and change what this worker runs; set DOCKER_TLS_VERIFY=1 \
                         and DOCKER_CERT_PATH to reach it over TLS"
                    );
                }
                Ok(Docker::connect_with_host(&self.url)?)
            }
        }
    }

    /// A client that speaks TLS to the engine, trusting only `dir/ca.pem`.
    fn tls_client(&self, dir: &Path) -> Result<Docker, ConnectError> {
        let ca = pem_file(&dir.join("ca.pem"), "CA certificate")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(&dir.join("ca.pem"), &ca, "CA certificate")? {
            roots
                .add(cert)
                .map_err(|e| unusable(&dir.join("ca.pem"), "CA certificate", &e.to_string()))?;
        }
        let cert_path = dir.join("cert.pem");
        let chain = certificates(
            &cert_path,
            &pem_file(&cert_path, "client certificate")?,
            "client certificate",
        )?;
        let key_path = dir.join("key.pem");
        let key = PrivateKeyDer::from_pem_slice(&pem_file(&key_path, "client key")?)
            .map_err(|e| unusable(&key_path, "client key", &e.to_string()))?;
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectError::Settings(format!("TLS cannot be set up: {e}")))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| {
                ConnectError::Settings(format!(
                    "the client certificate {} and key {} cannot be used together ({e}); \
                     give the worker the key that goes with its certificate",
                    cert_path.display(),
                    key_path.display()
                ))
            })?;
        // Each call is a connection of its own: no session is resumed, which also keeps
        // OpenSSL-based TLS fronts that verify clients (stunnel, socat) from refusing the
        // second connection.
        config.resumption = rustls::client::Resumption::disabled();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(https);
        let address = format!("https://{}", strip_scheme(&self.url));
        let transport = move |request: BollardRequest| {
            let client = client.clone();
            async move {
                client
                    .request(request)
                    .await
                    .map_err(bollard::errors::Error::from)
            }
        };
        Ok(Docker::connect_with_custom_transport(
            transport,
            Some(address),
            CALL_TIMEOUT,
            API_DEFAULT_VERSION,
        )?)
    }

    /// The job's failure when the engine could not be reached: a certificate it was not
    /// given is told as such, a plain connection to an engine that wants TLS says so.
    pub fn failure(&self, error: &ConnectError) -> JobFailure {
        let host = self.url.clone();
        let error = match error {
            ConnectError::Settings(reason) => {
                return JobFailure::EngineTlsSettings {
                    host,
                    reason: reason.clone(),
                }
            }
            ConnectError::Client(e) => e,
        };
        match (tls_error(error), &self.cert_dir) {
            (Some(rustls::Error::InvalidCertificate(detail)), Some(dir)) => {
                JobFailure::EngineNotTrusted {
                    host,
                    ca: dir.join("ca.pem").display().to_string(),
                    detail: format!("{detail:?}"),
                }
            }
            (Some(tls), Some(dir)) => JobFailure::EngineSilent {
                host,
                reason: format!(
                    "the TLS handshake failed ({tls}); if the engine refused this worker's \
                     certificate, give the worker one the engine's CA signed in {}",
                    dir.join("cert.pem").display()
                ),
            },
            _ if self.cert_dir.is_none() && self.is_tcp() => JobFailure::EngineSilent {
                host,
                reason: format!(
                    "{}; if the engine expects TLS, set DOCKER_TLS_VERIFY=1 and \
                     DOCKER_CERT_PATH to the directory with its ca.pem, cert.pem and key.pem",
                    chain(error)
                ),
            },
            _ => JobFailure::EngineSilent {
                host,
                reason: chain(error),
            },
        }
    }
}

/// The bytes of a TLS file, or a sentence naming it and what to do.
fn pem_file(path: &Path, what: &str) -> Result<Vec<u8>, ConnectError> {
    use jobs::tls::{TlsFileError, TLS_FILE_MAX};
    jobs::tls::read_tls_file(path, what).map_err(|e| match e {
        TlsFileError::Unreadable { source, .. } => {
            unusable(path, what, &format!("cannot be read: {source}"))
        }
        TlsFileError::TooLarge { .. } => unusable(
            path,
            what,
            &format!(
                "is larger than {} KiB: not a PEM certificate or key",
                TLS_FILE_MAX / 1024
            ),
        ),
    })
}

/// Every certificate in the PEM text of `path`; at least one.
fn certificates(
    path: &Path,
    pem: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(path, what, &format!("is not PEM ({e})")))?;
    if certs.is_empty() {
        return Err(unusable(path, what, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn unusable(path: &Path, what: &str, why: &str) -> ConnectError {
    ConnectError::Settings(format!(
        "the engine's {what} {} {why}; put it there, or point DOCKER_CERT_PATH at the \
         directory that holds ca.pem, cert.pem and key.pem",
        path.display()
    ))
}

/// The rustls error under a client error, if the TLS handshake is what failed. hyper
/// hands it on inside `io::Error`s (one in another), whose own `source` skips it.
fn tls_error(error: &bollard::errors::Error) -> Option<&rustls::Error> {
    fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| find(inner));
        inner.or_else(|| e.source().and_then(find))
    }
    find(error)
}

/// The error and its causes, one after another: hyper's own sentence ("client error
/// (Connect)") says little without them.
fn chain(error: &bollard::errors::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = e.source();
    }
    text
}

fn strip_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// Whether a `tcp://` address is on this machine: `localhost`, `127.0.0.0/8`, `::1`.
fn is_loopback(url: &str) -> bool {
    let authority = strip_scheme(url).split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_on_this_machine_are_loopback() {
        for local in [
            "tcp://127.0.0.1:2375",
            "tcp://localhost:2375",
            "tcp://[::1]:2375",
            "http://127.0.0.2:2375/",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "tcp://10.0.0.5:2375",
            "tcp://docker.example.com:2375",
            "tcp://[2001:db8::1]:2375",
            "tcp://localhost.example.com:2375",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[test]
    fn a_missing_certificate_file_is_named_with_what_to_do() {
        let dir = std::env::temp_dir().join(format!("octobox-no-certs-{}", std::process::id()));
        let host = DockerHost::new("tcp://127.0.0.1:2376").tls(&dir);
        let error = host.client().expect_err("no ca.pem there");
        let failure = host.failure(&error).to_string();
        assert!(
            failure.starts_with(&format!(
                "the Docker engine at tcp://127.0.0.1:2376 cannot be reached over TLS: the \
                 engine's CA certificate {} cannot be read: ",
                dir.join("ca.pem").display()
            )) && failure.ends_with(
                "put it there, or point DOCKER_CERT_PATH at the directory that holds ca.pem, \
                 cert.pem and key.pem"
            ),
            "{failure}"
        );
    }
}
