//! An HTTP/1.1 server for tests, plain or over TLS with a certificate from a test CA
//! (rcgen): on 127.0.0.1, one request per connection, answering by path —
//! `/new` 200, `/old` a 301 to `/new`, `/away?to=URL` a 302 to URL, `/loop` a 302 to
//! itself, `/slow` 200 after [`SLOW`], `/big` a 3 MiB body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// How long `/slow` waits before it answers.
pub const SLOW: Duration = Duration::from_millis(1200);

/// A certificate authority of the test's own.
pub struct TestCa {
    /// Its certificate, PEM, for `[tasks] ca_file`.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate chain and its key, for a server.
pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Octobox test CA");
        params.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + time::Duration::days(3650);
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1, valid from `from` to `to`
    /// (offsets from now), with this CA's certificate after it.
    pub fn server_cert(&self, from: time::Duration, to: time::Duration) -> ServerCert {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.not_before = OffsetDateTime::now_utc() + from;
        params.not_after = OffsetDateTime::now_utc() + to;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let ca = CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap();
        ServerCert {
            chain: vec![cert.der().clone(), ca],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

use rustls::pki_types::pem::PemObject;

pub struct WebServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebServer {
    /// Plain HTTP.
    pub async fn plain() -> WebServer {
        Self::start(None).await
    }

    /// HTTPS with `cert`.
    pub async fn tls(cert: ServerCert) -> WebServer {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)
        .unwrap();
        Self::start(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> WebServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream).await;
                            }
                        }
                        None => serve(stream).await,
                    }
                });
            }
        });
        WebServer { addr, task }
    }
}

/// Reads one request's head and answers it by its path.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, location, body): (&str, Option<String>, Vec<u8>) = match path {
        "/old" => ("301 Moved Permanently", Some("/new".into()), Vec::new()),
        "/away" => (
            "302 Found",
            Some(query.strip_prefix("to=").unwrap_or("/").to_string()),
            Vec::new(),
        ),
        "/loop" => ("302 Found", Some("/loop".into()), Vec::new()),
        "/slow" => {
            tokio::time::sleep(SLOW).await;
            ("200 OK", None, b"late but here\n".to_vec())
        }
        "/big" => ("200 OK", None, vec![b'x'; 3 * 1024 * 1024]),
        _ => ("200 OK", None, b"hello from the test server\n".to_vec()),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(location) = location {
        response.push_str(&format!("Location: {location}\r\n"));
    }
    response.push_str("\r\n");
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}
