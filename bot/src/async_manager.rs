//! `AsyncManager`: brings each finished job's result back to where it was asked.
//!
//! It follows the store's event stream as a member of a consumer group, and acknowledges
//! an event only after its reply was handed to the adapter; `claim_delivery` makes the
//! delivery exactly-once even when an event is read twice (a redelivered job, a claimed
//! pending event). Adapters register a [`ReplySink`] under their name (`console`,
//! `slack`, `ssh`); a job's `Origin` names the adapter.
//!
//! Which group: a session that lives in one process (a console, an SSH session) can only
//! be answered by that process, so such adapters are served by a group named after the
//! bot instance ([`AsyncManager::instance_group`]). A bot restarted under the same name
//! resumes that group where it stopped, so replies that finished while it was down still
//! arrive. Adapters any process can answer for (Slack) will share one group across all
//! bot processes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use jobs::{EventId, EventKind, JobId, Origin, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::reply::{self, Reply};

/// Where an adapter receives the replies for the requests it took.
#[async_trait]
pub trait ReplySink: Send + Sync + 'static {
    async fn deliver(&self, origin: &Origin, reply: Reply) -> Result<(), String>;
}

/// The sinks by adapter name. Adapters may register after the manager has started.
#[derive(Clone, Default)]
pub struct Sinks(Arc<RwLock<HashMap<String, Arc<dyn ReplySink>>>>);

impl Sinks {
    pub fn register(&self, adapter: &str, sink: Arc<dyn ReplySink>) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(adapter.to_string(), sink);
    }

    fn get(&self, adapter: &str) -> Option<Arc<dyn ReplySink>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(adapter)
            .cloned()
    }
}

/// How many replies one async manager delivers at once.
const DELIVERIES_AT_ONCE: usize = 64;

pub struct AsyncManager {
    store: Arc<dyn Store>,
    sinks: Sinks,
    group: String,
    consumer: String,
}

impl AsyncManager {
    pub fn new(
        store: Arc<dyn Store>,
        sinks: Sinks,
        group: impl Into<String>,
        consumer: impl Into<String>,
    ) -> Self {
        AsyncManager {
            store,
            sinks,
            group: group.into(),
            consumer: consumer.into(),
        }
    }

    /// The group for the sessions of bot instance `instance`.
    pub fn instance_group(instance: &str) -> String {
        format!("octobox-bot@{instance}")
    }

    /// Delivers results until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            group = %self.group,
            consumer = %self.consumer,
            store = %self.store.describe(),
            "async manager following job events"
        );
        while !shutdown.is_cancelled() {
            let read = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.store.read_events(&self.group, &self.consumer, 100, Duration::from_secs(1)) => r,
            };
            let events = match read {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read job events; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            // The replies of one batch are delivered concurrently: each costs store round
            // trips, and one at a time they would cap the whole pipeline's throughput.
            let this = &self;
            let settled = futures::stream::iter(events)
                .map(|(id, event)| async move {
                    if let EventKind::Finished { .. } = event.kind {
                        if let Err(e) = this.deliver(event.job).await {
                            // Left pending: taken over again after the store's reclaim time.
                            tracing::warn!(job = %event.job, error = %e, "reply not delivered yet; will try again");
                            return None;
                        }
                    }
                    Some(id)
                })
                .buffer_unordered(DELIVERIES_AT_ONCE);
            let done: Vec<EventId> = settled.filter_map(|id| async move { id }).collect().await;
            if let Err(e) = self.store.ack_events(&self.group, &done).await {
                tracing::warn!(error = %e, "could not acknowledge job events; they will be read again");
            }
        }
    }

    /// Delivers job `job`'s reply if this manager serves its adapter. An error means the
    /// store could not be read, and the event must stay pending.
    async fn deliver(&self, job: JobId) -> Result<(), StoreError> {
        let Some(record) = self.store.job(job).await? else {
            tracing::warn!(%job, "finished job has no record (expired?); nothing to deliver");
            return Ok(());
        };
        let origin = &record.job.origin;
        let Some(sink) = self.sinks.get(&origin.adapter) else {
            tracing::debug!(%job, adapter = %origin.adapter, "not an adapter of this group; left to others");
            return Ok(());
        };
        if !self.store.claim_delivery(job).await? {
            return Ok(());
        }
        let reply = reply::result(&record);
        if let Err(e) = sink.deliver(origin, reply).await {
            tracing::warn!(%job, adapter = %origin.adapter, error = %e, "reply not delivered; result kept in the job history");
        }
        Ok(())
    }
}
