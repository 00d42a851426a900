//! `SshServer`: the bot over SSH, for operators who live in a terminal.
//!
//! `ssh -p 2222 octobox "<command>"` runs one command (exec mode, [`exec`]);
//! `ssh -p 2222 octobox` opens a session (shell mode, [`shell`], with a [`line_editor`]
//! on a terminal). Public-key authentication only, against an authorized_keys file
//! ([`keys`]); each key is the identity `ssh:<name>` for the access policy. Every command
//! goes through `Router::handle`; results of async jobs come back through the async
//! manager to [`SshSessions`], the adapter's `ReplySink`, which hands them to the session
//! that asked. Sessions live in this process, so they are served by the bot's
//! per-instance reply group, like the console. [`limits`] caps sessions in total and per
//! identity, and connections not logged in yet in total and per address.
//!
//! - `listener`: the accept loop (it outlives running out of file descriptors) and each
//!   connection's login grace time.
//! - [`connection`]: `Connection`, the russh handler of one client connection.
//! - [`session`]: `Session` and `Terminal`, what exec and shell modes share.
//! - `logged`: what of a client's words may reach the log, and how.

mod connection;
mod exec;
pub mod keys;
pub mod limits;
pub mod line_editor;
mod listener;
mod logged;
mod session;
mod shell;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use config::SshConfig;
use jobs::Origin;
use russh::MethodKind;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::async_manager::{DeliveryError, ReplySink, Sinks};
use crate::reply::{JobUpdate, Reply};
use crate::router::Router;
use keys::AuthorizedKeys;
use limits::SessionCounter;
use session::Notice;

/// The adapter's name in `Origin`s and identities (`ssh:<name>`).
pub const ADAPTER: &str = "ssh";

/// The SSH sessions of this process, by session name: where the async manager's replies
/// and progress for the `ssh` adapter go.
#[derive(Default)]
pub struct SshSessions(Mutex<HashMap<String, mpsc::UnboundedSender<Notice>>>);

impl SshSessions {
    fn open(&self, name: &str) -> mpsc::UnboundedReceiver<Notice> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(name.to_string(), tx);
        rx
    }

    fn close(&self, name: &str) {
        self.lock().remove(name);
    }

    fn send(&self, origin: &Origin, notice: Notice) -> Result<(), DeliveryError> {
        let name = origin.channel.as_deref().unwrap_or("");
        let tx = self.lock().get(name).cloned();
        match tx {
            Some(tx) => tx
                .send(notice)
                .map_err(|_| DeliveryError::Gone(format!("the SSH session {name} has closed"))),
            None => Err(DeliveryError::Gone(format!(
                "the SSH session that asked ({name}) is gone; the result stays in the job history"
            ))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Notice>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ReplySink for SshSessions {
    async fn deliver(&self, origin: &Origin, reply: Reply) -> Result<(), DeliveryError> {
        self.send(origin, Notice::Reply(reply))
    }

    /// Only while some session is open: otherwise no progress could be shown, and the
    /// async manager would read each job's record for nothing.
    fn follows_progress(&self) -> bool {
        !self.lock().is_empty()
    }

    async fn progress(&self, origin: &Origin, update: JobUpdate) -> Result<(), DeliveryError> {
        // A session that ended sees no progress; that is not worth a log line.
        let _ = self.send(origin, Notice::Progress(update));
        Ok(())
    }
}

/// What every connection of one server shares.
pub(crate) struct Shared {
    router: Arc<Router>,
    keys: AuthorizedKeys,
    counter: SessionCounter,
    sessions: Arc<SshSessions>,
    /// Session names are `<instance>/<pid>-<n>`: unique in this process and across
    /// restarts of the same instance.
    instance: String,
    next: AtomicU64,
}

impl Shared {
    fn session_name(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}/{}-{n}", self.instance, std::process::id())
    }
}

pub struct SshServer;

impl SshServer {
    /// Binds the listener and serves until `shutdown`; returns the bound address (the
    /// port chosen when `listen` asks for port 0) and the serving task.
    pub async fn start(
        config: &SshConfig,
        router: Arc<Router>,
        sinks: &Sinks,
        instance: &str,
        shutdown: CancellationToken,
    ) -> Result<(
        SocketAddr,
        impl std::future::Future<Output = ()> + Send + 'static,
    )> {
        let keys = AuthorizedKeys::load(&config.authorized_keys)?;
        let host_key = keys::host_key(&config.host_key)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen for SSH on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let sessions = Arc::new(SshSessions::default());
        sinks.register(ADAPTER, sessions.clone());
        tracing::info!(%addr, keys = keys.len(), "SSH server listening");
        if keys.is_empty() {
            tracing::warn!(
                file = %config.authorized_keys.display(),
                "no SSH key is authorized: nobody can log in until one is added and the bot restarted"
            );
        }

        let russh_config = Arc::new(russh::server::Config {
            methods: russh::MethodSet::from(&[MethodKind::PublicKey][..]),
            keys: vec![host_key],
            auth_rejection_time: Duration::from_millis(300),
            auth_rejection_time_initial: Some(Duration::ZERO),
            max_auth_attempts: 6,
            // Sessions wait on long jobs without traffic: liveness comes from keepalives,
            // idleness from the session's own idle timeout, and a connection that does
            // not log in is closed by `listener` after the login grace time.
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        let shared = Arc::new(Shared {
            router,
            keys,
            counter: SessionCounter::new(config.limits),
            sessions,
            instance: instance.to_string(),
            next: AtomicU64::new(1),
        });
        let serve = listener::serve(listener, russh_config, shared, shutdown);
        Ok((addr, serve))
    }
}
