//! Scheduler processes under test, and a probe into what they recorded in Redis.
//!
//! - `SchedulerProcess`: one `octobox-scheduler`, killed (SIGKILL) or restarted on
//!   demand, its log kept in a file for failure messages.
//! - `ScheduleProbe`: the schedule store and job store of a private Redis, read
//!   synchronously by a test (fires, the lease holder, job records).
//! - `ChannelRecorder`: a reply sink standing in for a channel adapter (Slack), keeping
//!   what the bot's async manager delivers to it.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bot::async_manager::{DeliveryError, ReplySink};
use bot::reply::Reply;
use config::{Secret, StoreConfig};
use jobs::redis::RedisStore;
use jobs::{Fire, JobId, JobRecord, Origin, ScheduleStore, Store};
use tokio::sync::mpsc;

use crate::processes::{config_and_name, log_beside, ServiceProcess};

/// One `octobox-scheduler` process.
pub struct SchedulerProcess {
    pub name: String,
    process: ServiceProcess,
}

impl SchedulerProcess {
    /// Starts `octobox-scheduler --config <config> --name <name>`, logging to
    /// `<config's folder>/<name>.log`.
    pub fn start(config: &Path, name: &str) -> Self {
        SchedulerProcess {
            name: name.to_string(),
            process: ServiceProcess::start(
                format!("scheduler {name}"),
                "octobox-scheduler",
                config_and_name(config, name),
                &[],
                log_beside(config, name),
            ),
        }
    }
}

impl Deref for SchedulerProcess {
    type Target = ServiceProcess;
    fn deref(&self) -> &ServiceProcess {
        &self.process
    }
}

impl DerefMut for SchedulerProcess {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.process
    }
}

/// What the schedulers recorded in a Redis, read from a synchronous test.
pub struct ScheduleProbe {
    runtime: tokio::runtime::Runtime,
    store: Arc<RedisStore>,
}

impl ScheduleProbe {
    pub fn connect(redis_url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let store = runtime
            .block_on(RedisStore::connect(&StoreConfig::new(Secret::new(
                redis_url,
            ))))
            .expect("the private Redis answers");
        ScheduleProbe {
            runtime,
            store: Arc::new(store),
        }
    }

    /// A schedule's fires, oldest first.
    pub fn fires(&self, schedule: &str) -> Vec<Fire> {
        let mut fires = self
            .runtime
            .block_on(self.store.fires(schedule, jobs::redis::FIRE_LOG))
            .expect("fires readable");
        fires.reverse();
        fires
    }

    pub fn lease_holder(&self) -> Option<String> {
        self.runtime
            .block_on(self.store.lease_holder())
            .expect("lease readable")
    }

    pub fn job(&self, id: JobId) -> Option<JobRecord> {
        self.runtime
            .block_on(self.store.job(id))
            .expect("job readable")
    }
}

/// A channel adapter that keeps what it is given, for a test to receive.
pub struct ChannelRecorder(mpsc::UnboundedSender<(Origin, Reply)>);

impl ChannelRecorder {
    /// The sink to register, and the receiving end of what it is given.
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<(Origin, Reply)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(ChannelRecorder(tx)), rx)
    }
}

#[async_trait]
impl ReplySink for ChannelRecorder {
    async fn deliver(&self, origin: &Origin, reply: Reply) -> Result<(), DeliveryError> {
        self.0
            .send((origin.clone(), reply))
            .map_err(|e| DeliveryError::Gone(e.to_string()))
    }
}
