//! An HTTP/1.1 server for tests and benches, plain or over TLS with a certificate from a
//! test CA (rcgen): on 127.0.0.1, one request per connection, noting each request's
//! target. By default it answers by path — `/new` 200, `/old` a 301 to `/new`,
//! `/away?to=URL` a 302 to URL, `/loop` a 302 to itself, `/slow` 200 after [`SLOW`],
//! `/big` a 3 MiB body; or a site of the test's own ([`WebServer::site`]) answers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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

/// What the server answers to one request.
pub struct Reply {
    /// The status line's code and reason: `200 OK`.
    pub status: String,
    pub content_type: String,
    pub location: Option<String>,
    pub body: Vec<u8>,
    /// Waits this long before answering.
    pub delay: Duration,
    /// Closes the connection without a word, once the request is read.
    pub hang_up: bool,
}

impl Reply {
    /// `200 OK`, `text/html`.
    pub fn html(body: impl Into<String>) -> Reply {
        Reply::with(
            "200 OK",
            "text/html; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    pub fn with(status: &str, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status: status.to_string(),
            content_type: content_type.to_string(),
            location: None,
            body,
            delay: Duration::ZERO,
            hang_up: false,
        }
    }

    /// `404 Not Found`.
    pub fn not_found() -> Reply {
        Reply::with("404 Not Found", "text/plain", b"no such page\n".to_vec())
    }

    pub fn redirect(status: &str, to: &str) -> Reply {
        Reply {
            location: Some(to.to_string()),
            ..Reply::with(status, "text/plain", Vec::new())
        }
    }

    pub fn after(self, delay: Duration) -> Reply {
        Reply { delay, ..self }
    }

    pub fn hang_up() -> Reply {
        Reply {
            hang_up: true,
            ..Reply::with("200 OK", "text/plain", Vec::new())
        }
    }
}

/// A site: the reply to each request target (path and query).
type Site = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

pub struct WebServer {
    pub addr: SocketAddr,
    /// The target (path and query) of every request read, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
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
        Self::start(None, Arc::new(test_paths)).await
    }

    /// HTTPS with `cert`.
    pub async fn tls(cert: ServerCert) -> WebServer {
        Self::start(Some(acceptor(cert)), Arc::new(test_paths)).await
    }

    /// Plain HTTP, each request answered by `site`.
    pub async fn site(site: impl Fn(&str) -> Reply + Send + Sync + 'static) -> WebServer {
        Self::start(None, Arc::new(site)).await
    }

    /// HTTPS with `cert`, each request answered by `site`.
    pub async fn tls_site(
        cert: ServerCert,
        site: impl Fn(&str) -> Reply + Send + Sync + 'static,
    ) -> WebServer {
        Self::start(Some(acceptor(cert)), Arc::new(site)).await
    }

    /// The targets requested so far.
    pub fn requested(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    async fn start(tls: Option<tokio_rustls::TlsAcceptor>, site: Site) -> WebServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let noted = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tls = tls.clone();
                let site = site.clone();
                let noted = noted.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, &site, &noted).await;
                            }
                        }
                        None => serve(stream, &site, &noted).await,
                    }
                });
            }
        });
        WebServer {
            addr,
            requests,
            task,
        }
    }
}

/// A TLS acceptor presenting `cert`.
fn acceptor(cert: ServerCert) -> tokio_rustls::TlsAcceptor {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(cert.chain, cert.key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// The default site: the paths of the `http check` tests.
fn test_paths(target: &str) -> Reply {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/old" => Reply::redirect("301 Moved Permanently", "/new"),
        "/away" => Reply::redirect("302 Found", query.strip_prefix("to=").unwrap_or("/")),
        "/loop" => Reply::redirect("302 Found", "/loop"),
        "/slow" => Reply::with("200 OK", "text/plain", b"late but here\n".to_vec()).after(SLOW),
        "/big" => Reply::with("200 OK", "text/plain", vec![b'x'; 3 * 1024 * 1024]),
        _ => Reply::with(
            "200 OK",
            "text/plain",
            b"hello from the test server\n".to_vec(),
        ),
    }
}

/// Reads one request's head, notes its target and answers it as `site` says.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    site: &Site,
    noted: &Mutex<Vec<String>>,
) {
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
    noted.lock().unwrap().push(target.clone());
    let reply = site(&target);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if reply.hang_up {
        return;
    }
    let Reply {
        status,
        content_type,
        location,
        body,
        ..
    } = reply;
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
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
