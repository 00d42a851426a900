//! `Primary`: the connections to the Redis that takes writes now, and `Settings`, how
//! they are made. `link` keeps the current one; `sentinel` opens a new one when the
//! sentinels name another node.

use std::collections::HashSet;
use std::sync::Mutex;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisResult, Script};

/// The connections to the Redis that takes writes now.
pub(super) struct Primary {
    /// Counts the primaries this link has had (from 1): what was lost is named by it, so
    /// a failure seen after the link moved on does not send it looking again.
    pub(super) generation: u64,
    /// For connections of their own (blocking reads).
    pub(super) client: Client,
    /// Multiplexed: every non-blocking command of every task goes through it.
    pub(super) shared: ConnectionManager,
    /// The writes that wait for replicas (`WAIT`), which blocks the connection it is sent
    /// on until the replicas answer: a connection of their own when `min_replicas` asks
    /// for any, so reads never wait behind it; otherwise `shared` itself.
    pub(super) acked: ConnectionManager,
    /// `host:port` (for a URL, the redacted URL), safe to log.
    pub(super) address: String,
    /// The scripts (by hash) this primary is known to hold, for the writes that wait for
    /// replicas (see `replicas`).
    scripts: Mutex<HashSet<String>>,
    /// The replicas connected to this primary when last asked, and when that was.
    replicas: Mutex<Option<(u32, std::time::Instant)>>,
}

/// How long a count of connected replicas is trusted before it is asked again.
const REPLICAS_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

impl Primary {
    pub(super) fn new(
        generation: u64,
        client: Client,
        shared: ConnectionManager,
        acked: ConnectionManager,
        address: String,
    ) -> Self {
        Primary {
            generation,
            client,
            shared,
            acked,
            address,
            scripts: Default::default(),
            replicas: Default::default(),
        }
    }

    /// How many replicas are connected to this primary (`ROLE`), asked at most once per
    /// [`REPLICAS_FRESH`]; `None` when the primary did not answer.
    pub(super) async fn connected_replicas(&self) -> Option<u32> {
        if let Some((count, at)) = *self.replicas.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < REPLICAS_FRESH {
                return Some(count);
            }
        }
        let mut con = self.shared.clone();
        let role: Vec<::redis::Value> = ::redis::cmd("ROLE").query_async(&mut con).await.ok()?;
        let count = match role.get(2) {
            Some(::redis::Value::Array(replicas)) => replicas.len() as u32,
            _ => 0,
        };
        let before = self
            .replicas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace((count, std::time::Instant::now()))
            .map(|(n, _)| n);
        if before.is_some_and(|n| n != count) {
            tracing::warn!(
                store = %self.address,
                replicas = count,
                before = before.unwrap_or_default(),
                "the replicas connected to the primary changed; writes that wait for replicas \
                 (min_replicas) wait for at most those connected"
            );
        }
        Some(count)
    }

    /// Whether `script` was loaded on this primary.
    pub(super) fn holds(&self, script: &Script) -> bool {
        self.scripts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(script.get_hash())
    }

    /// `script` is loaded on this primary now.
    pub(super) fn loaded(&self, script: &Script) {
        self.scripts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(script.get_hash().to_string());
    }
}

/// How the connections to a primary are made.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) shared: ConnectionManagerConfig,
    /// For `acked`; `None` when it is `shared`.
    pub(super) acked: Option<ConnectionManagerConfig>,
}

impl Settings {
    /// The connections to the Redis `client` names, opened when first used.
    pub(super) fn lazy(
        &self,
        client: &Client,
    ) -> RedisResult<(ConnectionManager, ConnectionManager)> {
        let shared = ConnectionManager::new_lazy_with_config(client.clone(), self.shared.clone())?;
        Ok((shared.clone(), self.acked_beside(client, shared)?))
    }

    /// `acked` for a primary whose `shared` connection is `shared`.
    pub(super) fn acked_beside(
        &self,
        client: &Client,
        shared: ConnectionManager,
    ) -> RedisResult<ConnectionManager> {
        match &self.acked {
            Some(config) => ConnectionManager::new_lazy_with_config(client.clone(), config.clone()),
            None => Ok(shared),
        }
    }
}
