//! `Firing`: what happens when a schedule fires.
//!
//! The schedule and the job it fires come from the catalog in force (`LiveCatalog`), so
//! a `reload` changes what the next fire runs.
//!
//! The fire is recorded first (`ScheduleStore::record_fire`, first writer wins per
//! slot), so whichever scheduler gets there second does nothing. Then the job is
//! recorded in the store (so `jobs`, `job <id>` and the reply know it) and, for a
//! command, published to the broker for a worker, like a job a person asked for. A
//! shipper job (`Task::Ship`) runs here, in the scheduler that fired it: its source,
//! sink, secrets and checkpoint belong to the scheduler's configuration; its result is
//! stored like any job's and delivered by the bot's async manager. Shipper runs are
//! tracked, and a stopping scheduler waits for them ([`Firing::finish_shipping`]).
//!
//! The fired job is kept with the fire (`unsent_fires`) until it has been recorded and
//! sent on. A scheduler that dies in between leaves it there, and the next holder sends
//! it ([`Firing::send_unsent`]) once it is older than the lateness limit, so a stalled
//! holder that wakes up is not raced. If the dead scheduler had published the job but
//! not yet marked it sent, the job is published twice under the same id: its reply is
//! still delivered once, but the task may run twice (a window of one store write).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::{LiveCatalog, NotAJob, Schedule};
use config::ScheduleRuns;
use jobs::{
    Broker, BrokerError, Fire, FireKind, Job, JobFailure, JobId, JobResult, JobStatus, Output,
    ScheduleStore, Store, StoreError, Task,
};
use lexicon::Value;
use tokio_util::task::TaskTracker;

use crate::shipper::Shipper;

/// The command name of a shipper's jobs, as `jobs` lists them.
pub const SHIP_COMMAND: &str = "ship";

#[derive(Debug, thiserror::Error)]
pub enum FireError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("schedule {schedule}: {source}")]
    Command {
        schedule: String,
        #[source]
        source: NotAJob,
    },
}

/// What a scheduler fires into: the catalog in force (schedules, and the commands that
/// make their jobs), the broker and store the jobs go to, and the store of schedules
/// (lease, fires, checkpoints).
#[derive(Clone)]
pub struct SchedulerServices {
    pub catalog: LiveCatalog,
    pub broker: Arc<dyn Broker>,
    pub store: Arc<dyn Store>,
    pub schedules: Arc<dyn ScheduleStore>,
}

/// Everything a fire needs; shared by the scheduler loop and the shipper runs it starts.
pub struct Firing {
    pub(crate) holder: String,
    pub(crate) catalog: LiveCatalog,
    broker: Arc<dyn Broker>,
    store: Arc<dyn Store>,
    pub(crate) schedules: Arc<dyn ScheduleStore>,
    ship_timeout: Duration,
    /// One run at a time per shipper: a slow run and the next slot's do not overlap.
    shipping: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The shipper runs under way, waited for when the scheduler stops.
    shipper_runs: TaskTracker,
}

impl Firing {
    pub fn new(holder: String, services: SchedulerServices, ship_timeout: Duration) -> Self {
        let SchedulerServices {
            catalog,
            broker,
            store,
            schedules,
        } = services;
        Firing {
            holder,
            catalog,
            broker,
            store,
            schedules,
            ship_timeout,
            shipping: Mutex::default(),
            shipper_runs: TaskTracker::new(),
        }
    }

    /// Waits for the shipper runs under way: each stores its result (or, past its
    /// timeout, a failure that says the next run resumes from the checkpoint).
    pub async fn finish_shipping(&self) {
        self.shipper_runs.close();
        if !self.shipper_runs.is_empty() {
            tracing::info!(
                runs = self.shipper_runs.len(),
                "waiting for shipper runs to finish"
            );
        }
        self.shipper_runs.wait().await;
    }

    /// Fires `schedule` for `slot`: the job's id, or `None` if the slot had been fired.
    pub async fn fire(
        self: &Arc<Self>,
        schedule: &Schedule,
        slot: DateTime<Utc>,
        kind: FireKind,
    ) -> Result<Option<JobId>, FireError> {
        let job = match &schedule.runs {
            ScheduleRuns::Command(text) => self
                .catalog
                .load()
                .commands
                .job_for(text, schedule.origin.clone())
                .map_err(|source| FireError::Command {
                    schedule: schedule.name.clone(),
                    source,
                })?,
            ScheduleRuns::Shipper(name) => {
                let mut args = BTreeMap::new();
                args.insert("shipper".to_string(), Value::Name(name.clone()));
                Job::new(
                    SHIP_COMMAND,
                    args,
                    Task::Ship {
                        shipper: name.clone(),
                    },
                    schedule.origin.clone(),
                    self.ship_timeout,
                )
            }
        };
        let fire = Fire {
            schedule: schedule.name.clone(),
            slot,
            kind,
            job: job.id,
            by: self.holder.clone(),
            at: Utc::now(),
        };
        if !self.schedules.record_fire(&fire, &job).await? {
            tracing::debug!(schedule = %schedule.name, %slot, "slot already fired");
            return Ok(None);
        }
        self.send(&job, false).await?;
        tracing::info!(schedule = %schedule.name, %slot, kind = ?kind, job = %job.id, "fired");
        let m = octobox_http::metrics();
        m.schedule_fires
            .with_label_values(&[m.label(&schedule.name)])
            .inc();
        Ok(Some(job.id))
    }

    /// Records a fired job in the store (unless `recorded`) and sends it on: published
    /// for a worker, or its shipper started here. Then the fire is complete.
    async fn send(self: &Arc<Self>, job: &Job, recorded: bool) -> Result<(), FireError> {
        if !recorded {
            self.store.record_job(job).await?;
        }
        match &job.task {
            Task::Ship { shipper } => {
                let this = self.clone();
                let (name, job) = (shipper.clone(), job.clone());
                self.shipper_runs
                    .spawn(async move { this.ship(&name, job).await });
            }
            Task::Native { .. } | Task::Container { .. } => self.broker.publish(job).await?,
        }
        self.schedules.fire_sent(job.id).await?;
        Ok(())
    }

    /// Sends the fired jobs that a scheduler recorded but did not send on (it died, or
    /// the broker refused), once they are older than `older_than`.
    pub async fn send_unsent(
        self: &Arc<Self>,
        older_than: chrono::Duration,
    ) -> Result<(), FireError> {
        for job in self.schedules.unsent_fires().await? {
            if Utc::now() - job.created_at < older_than {
                continue;
            }
            let record = self.store.job(job.id).await?;
            if record
                .as_ref()
                .is_some_and(|r| r.status != JobStatus::Queued)
            {
                // A worker has it: it was sent, only the mark is missing.
                self.schedules.fire_sent(job.id).await?;
                continue;
            }
            tracing::warn!(job = %job.id, command = %job.command, "a fired job was not sent on by the scheduler that fired it; sending it now");
            self.send(&job, record.is_some()).await?;
        }
        Ok(())
    }

    /// Runs shipper `name` as job `job`, storing its result like a worker would.
    async fn ship(&self, name: &str, job: Job) {
        let lock = {
            let mut shipping = self.shipping.lock().unwrap_or_else(|p| p.into_inner());
            shipping.entry(name.to_string()).or_default().clone()
        };
        let _one_at_a_time = lock.lock().await;
        let started_at = Utc::now();
        if let Err(e) = self
            .store
            .mark_started(job.id, &self.holder, started_at)
            .await
        {
            tracing::warn!(job = %job.id, error = %e, "shipper job not marked started");
        }
        let catalog = self.catalog.load();
        let outcome = match catalog.schedules.shipper(name) {
            None => Err(JobFailure::UnknownShipper {
                name: name.to_string(),
            }),
            Some(config) => {
                let shipper =
                    Shipper::new(config.clone(), self.schedules.clone(), self.store.clone());
                match tokio::time::timeout(job.timeout, shipper.run(Utc::now())).await {
                    Ok(Ok(report)) => Ok(report),
                    Ok(Err(e)) => Err(JobFailure::Task(e.to_string())),
                    Err(_) => Err(JobFailure::ShipperStopped { after: job.timeout }),
                }
            }
        };
        let (status, output, error) = match outcome {
            Ok(report) => {
                tracing::info!(shipper = name, job = %job.id, %report, "shipped");
                (JobStatus::Succeeded, Output::text(report.to_string()), None)
            }
            Err(e) => {
                tracing::warn!(shipper = name, job = %job.id, error = %e, "shipping failed");
                (e.status(), Output::Empty, Some(e.to_string()))
            }
        };
        let result = JobResult {
            id: job.id,
            status,
            output,
            worker: self.holder.clone(),
            started_at,
            finished_at: Utc::now(),
            error,
        };
        if let Err(e) = self.store.finish_job(&result).await {
            tracing::error!(job = %job.id, error = %e, "shipper result not stored");
        }
    }
}
