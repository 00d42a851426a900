//! `Link`: the one AMQP connection of a process, and the supervisor that replaces it.
//!
//! Why not lapin's own auto-recovery: under load, after a broker restart, it sometimes
//! never came back (the node answered again within seconds, yet no channel recovered and
//! no publish was confirmed for minutes). Recovery is therefore ours and simple: when the
//! connection fails (the socket breaks, RabbitMQ shuts down, the heartbeat times out), the
//! supervisor opens a brand-new connection, retrying with a backoff that grows to
//! [`RECONNECT_MAX_DELAY`] and never gives up, and bumps the link's *generation*. Users
//! of the link notice the new generation and rebuild what they hold on it: the publisher
//! opens a new confirm channel (declaring the topology again), each stream subscribes
//! again. Deliveries received on the old connection can no longer be acknowledged; RabbitMQ
//! delivers them again (at-least-once).
//!
//! Only the first connection fails fast: a broker that is not there at start is a
//! configuration problem to report, not to wait out.
//!
//! A cluster (`[broker] urls`) is several nodes of one broker: the first connection goes
//! to the first node that answers; a reconnect tries the nodes in turn, starting after
//! the one that failed. The queues are quorum queues, replicated by the cluster, so any
//! node serves them.
//!
//! With `amqps://`, the server's certificate is checked against the system's roots and
//! `[broker] ca_file`; `client_cert_file`/`client_key_file` are presented to a broker that
//! asks for a client certificate. The files are read once, at the first connection, so a
//! missing one is named at start; a certificate the broker refuses (or one of the broker's
//! we do not trust) fails that first connection at once instead of being retried.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use tokio::sync::watch;
use tokio::time::{timeout_at, Instant};

use crate::backoff::Backoff;
use crate::broker::BrokerError;
use config::{BrokerConfig, TlsFiles};

/// The longest wait between two reconnection attempts.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(2);
/// The first wait between reconnection attempts; it doubles up to [`RECONNECT_MAX_DELAY`].
pub(crate) const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(100);
/// How long one reconnection attempt may take (TCP, then the AMQP handshake).
const ATTEMPT_LIMIT: Duration = Duration::from_secs(10);
/// How often the supervisor looks at the connection.
const WATCH_EVERY: Duration = Duration::from_millis(200);
/// The largest AMQP frame we ask for, unless the URL sets `frame_max`. lapin keeps a
/// receive and a send buffer of 32 frames each, filled with zeros, so RabbitMQ's default
/// (128 KiB) costs every process 8 MiB of memory; a job is a few hundred bytes, and a
/// larger message simply travels in several frames.
pub const FRAME_MAX: u32 = 16 * 1024;

/// What the broker and its streams share: the current connection, its generation, and
/// whether the broker was closed on purpose (then streams end instead of waiting).
pub(crate) struct Shared {
    current: RwLock<(u64, Arc<Connection>)>,
    generation: watch::Sender<u64>,
    /// Every node `[broker]` names (one, or a cluster's), and the one in use.
    nodes: Vec<Node>,
    node: AtomicUsize,
    /// The private CA and client certificate, read at the first connection.
    tls: OwnedTLSConfig,
    /// `amqp://host:port` (the nodes, for a cluster), safe to log.
    pub target: String,
    pub delivery_limit: u32,
    /// The signing keys; `None` when `[broker]` has no `signing_key`.
    pub signing: Option<super::signing::Signing>,
    closed: AtomicBool,
}

impl Shared {
    /// Connects (failing by `deadline` if RabbitMQ is not there) and starts the supervisor.
    pub async fn connect(
        config: &BrokerConfig,
        signing: Option<super::signing::Signing>,
        deadline: Instant,
    ) -> Result<Arc<Shared>, BrokerError> {
        let nodes = config
            .urls()
            .map(Node::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let target = nodes
            .iter()
            .map(|n| n.target.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let tls = tls_config(&config.tls)?;
        // The first node that answers; each is tried once before giving up.
        let mut failure = None;
        let mut opened = None;
        for (index, node) in nodes.iter().enumerate() {
            match open(&node.uri, &tls, &node.target, deadline).await {
                Ok(connection) => {
                    opened = Some((index, connection));
                    break;
                }
                Err(e) => {
                    if nodes.len() > 1 {
                        tracing::warn!(target_url = %node.target, error = %e, "a RabbitMQ node did not answer; trying the next");
                    }
                    failure = Some(e);
                }
            }
        }
        let Some((index, connection)) = opened else {
            return Err(failure.expect("at least one node was tried"));
        };
        let shared = Arc::new(Shared {
            current: RwLock::new((0, Arc::new(connection))),
            generation: watch::Sender::new(0),
            nodes,
            node: AtomicUsize::new(index),
            tls,
            target,
            delivery_limit: config.delivery_limit,
            signing,
            closed: AtomicBool::new(false),
        });
        tokio::spawn(supervise(Arc::downgrade(&shared)));
        Ok(shared)
    }

    /// The node in use now, safe to log.
    pub fn node(&self) -> &str {
        &self.nodes[self.node.load(Ordering::Relaxed) % self.nodes.len()].target
    }

    /// The current connection and its generation.
    pub fn connection(&self) -> (u64, Arc<Connection>) {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        (current.0, current.1.clone())
    }

    /// The generation of the current connection; it changes with every reconnect.
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    pub fn is_connected(&self) -> bool {
        self.connection().1.status().connected()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Waits until the connection is up (at once if it is), or `deadline`. `Err(Closed)`
    /// once the broker was closed on purpose; `Err(Unavailable)` at the deadline.
    pub async fn wait_connected(&self, deadline: Instant) -> Result<(), BrokerError> {
        let mut changes = self.generation.subscribe();
        loop {
            if self.is_closed() {
                return Err(BrokerError::Closed);
            }
            if self.is_connected() {
                return Ok(());
            }
            // A new generation wakes us at once; the poll covers a connection that is
            // still handshaking.
            let waited = timeout_at(
                deadline,
                tokio::time::timeout(WATCH_EVERY, changes.changed()),
            )
            .await;
            if waited.is_err() {
                return Err(BrokerError::unavailable(format!(
                    "RabbitMQ at {} is not reachable; reconnecting",
                    self.target
                )));
            }
        }
    }

    /// Closes the connection on purpose: streams end, unacknowledged deliveries go back
    /// to their queues, the supervisor stops.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        close_connection(&self.connection().1, self.node()).await;
    }

    /// A sentence for an error that has no better one.
    pub fn unavailable(&self, doing: &str, error: lapin::Error) -> BrokerError {
        BrokerError::unavailable_by(
            format!("RabbitMQ at {}: {doing}: {error}", self.target),
            error,
        )
    }
}

/// Replaces the connection whenever it fails, until the broker is closed or dropped.
async fn supervise(shared: Weak<Shared>) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(link) = shared.upgrade() else { return };
        if link.is_closed() {
            return;
        }
        let (generation, connection) = link.connection();
        let status = connection.status();
        if !(status.errored() || status.closed()) {
            continue;
        }
        tracing::warn!(target_url = %link.node(), generation, "the connection to RabbitMQ is lost; reconnecting");
        let lost_at = Instant::now();
        let (nodes, tls) = (link.nodes.clone(), link.tls.clone());
        let lost = link.node.load(Ordering::Relaxed);
        // Not holding the link while waiting: dropping the broker must still end this.
        drop((link, connection));
        let mut backoff = Backoff::new(RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY);
        let mut attempts = 0u32;
        // A cluster's nodes in turn, starting after the one that failed (a lone node
        // is simply tried again).
        let (index, fresh) = loop {
            let index = (lost + 1 + attempts as usize) % nodes.len();
            attempts += 1;
            let node = &nodes[index];
            match open(
                &node.uri,
                &tls,
                &node.target,
                Instant::now() + ATTEMPT_LIMIT,
            )
            .await
            {
                Ok(fresh) => break (index, fresh),
                Err(error) => {
                    if attempts == 1 || attempts.is_multiple_of(10) || nodes.len() > 1 {
                        tracing::warn!(target_url = %node.target, attempts, %error, "reconnecting to RabbitMQ");
                    }
                }
            }
            match shared.upgrade() {
                Some(link) if !link.is_closed() => {}
                _ => return,
            }
            tokio::time::sleep(backoff.next_pause()).await;
        };
        let target = &nodes[index].target;
        let Some(link) = shared.upgrade() else { return };
        if link.is_closed() {
            close_connection(&fresh, target).await;
            return;
        }
        let generation = generation + 1;
        link.node.store(index, Ordering::Relaxed);
        *link.current.write().unwrap_or_else(|p| p.into_inner()) = (generation, Arc::new(fresh));
        link.generation.send_replace(generation);
        tracing::info!(
            target_url = %target, generation, attempts,
            down_ms = lost_at.elapsed().as_millis() as u64,
            "reconnected to RabbitMQ"
        );
    }
}

/// One node of the broker: its parsed URL, and how logs name it.
#[derive(Clone)]
struct Node {
    uri: AMQPUri,
    /// `amqp://host:port`, safe to log.
    target: String,
}

impl Node {
    fn parse(url: &config::Secret) -> Result<Node, BrokerError> {
        let target = url.redacted_url();
        let mut uri: AMQPUri = url.expose().parse().map_err(|_| {
            // The parser's message may quote the whole URL, password included.
            BrokerError::unavailable(format!(
                "the broker URL for {target} is not a valid AMQP URL \
                 (amqp://user:password@host:port/vhost)"
            ))
        })?;
        uri.query.frame_max.get_or_insert(FRAME_MAX);
        Ok(Node { uri, target })
    }
}

/// One connection attempt, failing by `deadline`. lapin's own retries would never give
/// up, so the broker is probed with a plain TCP connection first.
async fn open(
    uri: &AMQPUri,
    tls: &OwnedTLSConfig,
    target: &str,
    deadline: Instant,
) -> Result<Connection, BrokerError> {
    let address = (uri.authority.host.clone(), uri.authority.port);
    match timeout_at(deadline, tokio::net::TcpStream::connect(address)).await {
        Err(_) => {
            return Err(BrokerError::unavailable(format!(
                "RabbitMQ at {target} did not accept a connection in time"
            )))
        }
        Ok(Err(error)) => {
            return Err(BrokerError::unavailable_by(
                format!("could not connect to RabbitMQ at {target}: {error}"),
                error,
            ))
        }
        Ok(Ok(_probe)) => {}
    }
    let properties = ConnectionProperties::default().with_connection_name(connection_name().into());
    let runtime = lapin::runtime::default_runtime().map_err(|e| {
        BrokerError::unavailable_by(format!("cannot connect to RabbitMQ at {target}: {e}"), e)
    })?;
    let connecting =
        Connection::connect_uri_with_config(uri.clone(), properties, tls.clone(), runtime);
    match timeout_at(deadline, connecting).await {
        Err(_) => Err(BrokerError::unavailable(format!(
            "RabbitMQ at {target} did not complete the AMQP handshake in time"
        ))),
        Ok(Err(error)) => {
            // A broker that wants a client certificate it was not shown (or one from a CA
            // it does not trust) closes the TLS connection, or sends an alert; say what
            // usually causes that.
            let refused_us = matches!(error.kind(), lapin::ErrorKind::IOError(e)
                if e.kind() == std::io::ErrorKind::ConnectionReset
                    || e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
                        .is_some_and(|tls| matches!(tls, rustls::Error::AlertReceived(_))));
            let hint = if refused_us && uri.scheme == lapin::uri::AMQPScheme::AMQPS {
                " (a broker that requires a client certificate closes the connection so: \
                 check [broker] client_cert_file and client_key_file, and that the broker \
                 trusts the CA that signed them)"
            } else {
                ""
            };
            Err(BrokerError::unavailable_by(
                format!("could not connect to RabbitMQ at {target}: {error}{hint}"),
                error,
            ))
        }
        Ok(Ok(connection)) => Ok(connection),
    }
}

/// The TLS settings `files` name, with the files read (each up to
/// [`crate::tls::TLS_FILE_MAX`]). The CA is added to the system's roots.
fn tls_config(files: &TlsFiles) -> Result<OwnedTLSConfig, BrokerError> {
    let read = |path: &std::path::Path, what: &str| {
        crate::tls::read_tls_file(path, &format!("the broker's {what}"))
            .map_err(|e| BrokerError::unavailable(e.to_string()))
    };
    let cert_chain = match &files.ca_file {
        Some(path) => {
            let pem = read(path, "CA file")?;
            Some(String::from_utf8(pem).map_err(|_| {
                BrokerError::unavailable(format!(
                    "the broker's CA file {} is not PEM text; convert it with \
                     `openssl x509 -in FILE -out FILE.pem`",
                    path.display()
                ))
            })?)
        }
        None => None,
    };
    let identity = match (&files.client_cert_file, &files.client_key_file) {
        (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 {
            pem: read(cert, "client certificate")?,
            key: read(key, "client key")?,
        }),
        _ => None,
    };
    Ok(OwnedTLSConfig {
        identity,
        cert_chain,
    })
}

async fn close_connection(connection: &Connection, target: &str) {
    if !connection.status().connected() {
        return;
    }
    match connection
        .close(200, "octobox closed the broker".into())
        .await
    {
        Ok(()) => tracing::info!(target_url = %target, "closed the RabbitMQ connection"),
        Err(error) => {
            tracing::warn!(target_url = %target, %error, "closing the RabbitMQ connection failed")
        }
    }
}

/// How the connection shows in RabbitMQ's management UI: `octobox-worker (pid 4242)`.
fn connection_name() -> String {
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "octobox".to_string());
    format!("{program} (pid {})", std::process::id())
}
