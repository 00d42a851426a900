//! `JobRun`: one delivery, from taken to acknowledged.
//!
//! A job is marked started (`running`, a `started` event) only once it has run for
//! [`START_NOTICE_AFTER`]: most jobs are done sooner, and their result, which carries the
//! start time, is then their one write to the store.
//!
//! Each delivery is handled in a tokio task of its own; a native task's panic is caught
//! there, so it fails the job and not the worker, and a timeout or a cancel drops it. The
//! delivery is settled only after the store holds the outcome: a result (then ack), a
//! retry scheduled with the broker (then ack), or nothing because the store failed (then
//! the job goes back to the queue).
//!
//! A *redelivered* job was handed out before and never acknowledged: its worker died —
//! perhaps because of that very job — or the acknowledgement was lost. If its result is
//! already stored it is only acknowledged. Otherwise it is moved to the back of the queue
//! after a delay that grows with each attempt, instead of running again beside the jobs
//! it was delivered with: a job that crashes its worker then meets other neighbours each
//! time, so one poison job cannot use up the delivery limit of the jobs around it. Past
//! the delivery limit it is set aside in the dead letters and its requester told why.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use commands::LiveCatalog;
use futures::FutureExt;
use jobs::{
    Broker, Delivery, Event, EventKind, Job, JobFailure, JobResult, Store, StoreError, Task,
};
use octobox_http::metrics;

use super::cancel::Cancellations;
use crate::cancel::CancelSignal;
use crate::container::ContainerRunner;
use crate::finished::Finished;
use crate::own_config::own_task;
use crate::registry::{TaskContext, TaskError, TaskRegistry};

/// How failures a task calls retryable are tried again: up to `retries` more attempts,
/// the first after `backoff`, each later one waiting twice as long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 2,
            backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The wait before the attempt after `attempt`, or `None` when no attempts are left.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        (attempt <= self.retries).then(|| {
            let doublings = attempt.saturating_sub(1).min(16);
            self.backoff.saturating_mul(1 << doublings)
        })
    }
}

/// How long a job runs before its worker marks it started (status `running`, a
/// `started` event that adapters show as "running on <worker>").
pub const START_NOTICE_AFTER: Duration = Duration::from_millis(100);

/// What one job's handling needs, moved into its task.
pub(super) struct JobRun {
    pub worker: String,
    pub broker: Arc<dyn Broker>,
    pub store: Arc<dyn Store>,
    pub registry: Arc<TaskRegistry>,
    pub containers: Option<Arc<ContainerRunner>>,
    /// The catalog tasks are built from; `None` only where a caller trusts its jobs (tests).
    pub catalog: Option<LiveCatalog>,
    pub cancellations: Arc<Cancellations>,
    pub retry: RetryPolicy,
    /// How many deliveries a job gets before it is set aside.
    pub delivery_limit: u32,
}

/// How a run ended, before it is written down: finished, or a failure the task calls
/// retryable (its sentence), to try again if attempts are left.
pub(crate) enum Ran {
    Done(Finished),
    Retry(String),
}

/// How a run ended, once written down: a result and whether the store took it, or a
/// retryable failure to try again after the delay.
enum Stored {
    Result(JobResult, Result<(), StoreError>),
    Rescheduled(String, Duration),
}

impl JobRun {
    pub async fn handle(self, delivery: Delivery) {
        if delivery.redelivered {
            return self.recover(delivery).await;
        }
        let job = delivery.job.clone();
        let started_at = Utc::now();
        tracing::info!(job = %job.id, command = %job.command, attempt = job.attempt, "job started");
        let command = self.command_label(&job);
        let waited = (started_at - job.created_at).to_std().unwrap_or_default();
        metrics().job_started(&command, waited.as_secs_f64());
        let stored = match self.run_with_start_notice(&job, started_at).await {
            Stored::Rescheduled(why, delay) => {
                return self.retry_later(delivery, why, delay).await;
            }
            // No record: the bot's write has not landed (it records and publishes at the same
            // time) or it expired. The job itself says everything the record needs.
            Stored::Result(result, Err(StoreError::UnknownJob(_))) => {
                self.record_then_finish(&job, &result).await
            }
            Stored::Result(result, stored) => stored.map(|()| result),
        };
        match stored {
            Ok(result) => {
                tracing::info!(
                    job = %job.id,
                    status = %result.status,
                    ms = result.duration().as_millis() as u64,
                    "job finished"
                );
                metrics().job_finished(
                    &command,
                    result.status.as_str(),
                    result.duration().as_secs_f64(),
                );
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(job = %job.id, error = %e, "result stored but the ack failed; the job may run again");
                }
            }
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "result not stored; job goes back to the queue");
                requeue(delivery).await;
            }
        }
    }

    /// Runs the job, and marks it started only if it is still running after
    /// [`START_NOTICE_AFTER`]. Most jobs finish sooner: their result (which carries the
    /// start time) is then the only write, and nobody is shown a "running" that is
    /// already over. A start written late, or after the result, changes nothing: the
    /// store leaves a finished job alone.
    async fn run_with_start_notice(&self, job: &Job, started_at: chrono::DateTime<Utc>) -> Stored {
        let run = self.run_and_store(job, started_at);
        tokio::pin!(run);
        tokio::select! {
            biased;
            stored = &mut run => return stored,
            () = tokio::time::sleep(START_NOTICE_AFTER) => {}
        }
        let (start, stored) = tokio::join!(
            self.store.mark_started(job.id, &self.worker, started_at),
            run
        );
        match start {
            // No record yet: the result will find none either, and the record is written then.
            Ok(()) | Err(StoreError::UnknownJob(_)) => {}
            Err(e) => tracing::warn!(job = %job.id, error = %e, "the job's start was not recorded"),
        }
        stored
    }

    /// Runs the job and stores its result, or says when to try it again.
    async fn run_and_store(&self, job: &Job, started_at: chrono::DateTime<Utc>) -> Stored {
        let cancel = self.cancellations.start(job.id);
        let ran = self.execute(job, &cancel).await;
        self.cancellations.finish(job.id);
        let finished = match ran {
            Ran::Done(finished) => finished,
            Ran::Retry(why) => match self.retry.delay_after(job.attempt) {
                Some(delay) => return Stored::Rescheduled(why, delay),
                None => Finished::Failed(JobFailure::RetriesUsedUp {
                    attempts: job.attempt,
                    last: why,
                }),
            },
        };
        let result = finished
            .into_result(job.id, &self.worker, started_at)
            .masked_for(job);
        let stored = self.store.finish_job(&result).await;
        Stored::Result(result, stored)
    }

    /// Writes the record a job lacks, then its result (which carries the start time).
    async fn record_then_finish(
        &self,
        job: &Job,
        result: &JobResult,
    ) -> Result<JobResult, StoreError> {
        tracing::info!(job = %job.id, "the job had no record; writing it from the job");
        self.store.record_job(job).await?;
        self.store.finish_job(result).await?;
        Ok(result.clone())
    }

    async fn execute(&self, job: &Job, cancel: &CancelSignal) -> Ran {
        if let Some(by) = cancel.by() {
            return cancelled(by);
        }
        let mut job = job.clone();
        if let Some(catalog) = &self.catalog {
            match own_task(&catalog.load(), &job) {
                Ok(task) => job.task = task,
                Err(refused) => {
                    tracing::warn!(job = %job.id, command = %job.command, reason = %refused, "job refused");
                    return Ran::Done(Finished::Failed(refused));
                }
            }
        }
        let job = &job;
        let ctx = TaskContext::new(job.clone(), self.store.clone());
        let name = match &job.task {
            Task::Native { name } => name,
            Task::Container { image, .. } => {
                return Ran::Done(match &self.containers {
                    Some(runner) => runner.run(&ctx, cancel).await,
                    None => Finished::Failed(JobFailure::NoContainers {
                        image: image.clone(),
                    }),
                });
            }
            Task::Ship { shipper } => {
                return Ran::Done(Finished::Failed(JobFailure::ShipperOnWorker {
                    shipper: shipper.clone(),
                }));
            }
        };
        let Some(task) = self.registry.get(name) else {
            return Ran::Done(Finished::Failed(JobFailure::UnknownTask {
                name: name.clone(),
                known: self.registry.names().map(String::from).collect(),
            }));
        };
        // Run in place (each job already has a tokio task of its own): a panic is caught
        // here and fails only this job; a timeout or a cancel drops the task's future.
        let run = std::panic::AssertUnwindSafe(async move { task.run(&ctx).await }).catch_unwind();
        let finished = tokio::select! {
            f = tokio::time::timeout(job.timeout, run) => f,
            _ = cancel.cancelled() => return cancelled(cancel.by().unwrap_or("someone")),
        };
        match finished {
            Ok(Ok(Ok(output))) => Ran::Done(Finished::Succeeded(output)),
            Ok(Ok(Err(TaskError::Retryable(why)))) => Ran::Retry(why),
            Ok(Ok(Err(e))) => Ran::Done(Finished::Failed(JobFailure::Task(e.to_string()))),
            Ok(Err(panic)) => {
                tracing::error!(job = %job.id, panic = panic_message(&*panic), "native task crashed");
                Ran::Done(Finished::Failed(JobFailure::Crashed { task: name.clone() }))
            }
            Err(_) => Ran::Done(Finished::Failed(JobFailure::TimedOut {
                after: job.timeout,
            })),
        }
    }

    /// The job's command as a metric label: its name when this worker's configuration
    /// declares it, `unknown` otherwise (names from the queue are not ours to keep).
    fn command_label(&self, job: &Job) -> String {
        match &self.catalog {
            Some(catalog) if catalog.load().commands.action(&job.command).is_none() => {
                "unknown".to_string()
            }
            _ => job.command.clone(),
        }
    }

    /// Schedules the next attempt after a retryable failure.
    async fn retry_later(&self, delivery: Delivery, why: String, delay: Duration) {
        metrics()
            .jobs_retried
            .with_label_values(&[metrics().label(&self.command_label(&delivery.job))])
            .inc();
        let mut next = delivery.job.clone();
        next.attempt += 1;
        let line = format!(
            "attempt {} failed: {why}; trying again in {}",
            delivery.job.attempt,
            lexicon::format_duration(delay)
        );
        self.reschedule(delivery, next, delay, line).await;
    }
}

impl JobRun {
    /// Settles a redelivered job: acknowledged if already done, else moved or set aside.
    async fn recover(&self, delivery: Delivery) {
        let job = delivery.job.clone();
        let record = match self.store.job(job.id).await {
            Ok(Some(r)) if r.status.is_final() => {
                // The result may be one whose store write failed (too few replicas had
                // it): finishing again changes nothing, and returns once the store holds
                // the result as firmly as for a first finish.
                if let Some(result) = &r.result {
                    if let Err(e) = self.store.finish_job(result).await {
                        tracing::error!(job = %job.id, error = %e, "redelivered job's result not confirmed; it goes back to the queue");
                        return requeue(delivery).await;
                    }
                }
                tracing::info!(job = %job.id, "redelivered job had already finished; acknowledging it");
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(job = %job.id, error = %e, "ack failed");
                }
                return;
            }
            Ok(record) => record,
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "cannot check a redelivered job; it goes back to the queue");
                return requeue(delivery).await;
            }
        };
        let deliveries = job.attempt.saturating_sub(1);
        if deliveries >= self.delivery_limit {
            tracing::warn!(job = %job.id, deliveries, "job set aside after repeated lost deliveries");
            let started_at = record.and_then(|r| r.started_at).unwrap_or_else(Utc::now);
            let result = Finished::Failed(JobFailure::NeverFinished { deliveries }).into_result(
                job.id,
                &self.worker,
                started_at,
            );
            if let Err(e) = self.store.finish_job(&result).await {
                tracing::error!(job = %job.id, error = %e, "result not stored; job goes back to the queue");
                return requeue(delivery).await;
            }
            // The dead-letter reporter finds this job finished and passes it by, so the
            // history's dead-lettered index is told here.
            if let Err(e) = self.store.note_dead_letter(&job).await {
                tracing::warn!(job = %job.id, error = %e, "could not note the job as dead-lettered in the history");
            }
            if let Err(e) = delivery.reject(false).await {
                tracing::warn!(job = %job.id, error = %e, "could not move the job to the dead letters");
            }
            return;
        }
        let delay = self.retry.backoff.saturating_mul(job.attempt);
        let line = format!(
            "the worker running it stopped before it finished; trying again in {}",
            lexicon::format_duration(delay)
        );
        self.reschedule(delivery, job, delay, line).await;
    }

    /// Publishes `job` again after `delay`, tells the requester `line`, and only then
    /// lets go of `delivery`.
    async fn reschedule(&self, delivery: Delivery, job: Job, delay: Duration, line: String) {
        if let Err(e) = self.broker.publish_delayed(&job, delay).await {
            tracing::error!(job = %job.id, error = %e, "not rescheduled; job goes back to the queue");
            return requeue(delivery).await;
        }
        tracing::info!(job = %job.id, attempt = job.attempt, "{line}");
        let event = Event::now(job.id, EventKind::Progress { line });
        if let Err(e) = self.store.append_event(&event).await {
            tracing::warn!(job = %job.id, error = %e, "progress line not stored");
        }
        if let Err(e) = delivery.ack().await {
            tracing::warn!(job = %job.id, error = %e, "rescheduled but the ack failed; the attempt may run twice");
        }
    }
}

/// What a panic said, when it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "(no message)"
    }
}

/// The outcome of a job stopped by `cancel`; `by` is who asked.
pub(crate) fn cancelled(by: &str) -> Ran {
    Ran::Done(Finished::Failed(JobFailure::Cancelled {
        by: by.to_string(),
    }))
}

async fn requeue(delivery: Delivery) {
    let id = delivery.job.id;
    if let Err(e) = delivery.reject(true).await {
        tracing::error!(job = %id, error = %e, "could not return the job to the queue");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_then_stop() {
        let p = RetryPolicy {
            retries: 3,
            backoff: Duration::from_millis(100),
        };
        assert_eq!(p.delay_after(1), Some(Duration::from_millis(100)));
        assert_eq!(p.delay_after(2), Some(Duration::from_millis(200)));
        assert_eq!(p.delay_after(3), Some(Duration::from_millis(400)));
        assert_eq!(p.delay_after(4), None);
        let none = RetryPolicy {
            retries: 0,
            backoff: Duration::from_secs(1),
        };
        assert_eq!(none.delay_after(1), None);
    }
}
