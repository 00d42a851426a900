//! `JobRun`: one delivery, from "started" to acknowledged.
//!
//! The task runs in a tokio task of its own, so a panic fails the job and not the worker,
//! and a timeout can drop it. The delivery is settled only after the store holds the
//! outcome: a result (then ack), a retry scheduled with the broker (then ack), or nothing
//! because the store failed (then the job goes back to the queue).
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
use jobs::{Broker, Delivery, Event, EventKind, Job, JobResult, JobStatus, Output, Store, Task};

use super::cancel::{CancelSignal, Cancellations};
use crate::container::ContainerRunner;
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

/// What one job's handling needs, moved into its task.
pub(super) struct JobRun {
    pub worker: String,
    pub broker: Arc<dyn Broker>,
    pub store: Arc<dyn Store>,
    pub registry: Arc<TaskRegistry>,
    pub containers: Option<Arc<ContainerRunner>>,
    pub cancellations: Arc<Cancellations>,
    pub retry: RetryPolicy,
    /// How many deliveries a job gets before it is set aside.
    pub delivery_limit: u32,
}

/// How a run ended, before it is written down.
pub(crate) enum Ran {
    Done(JobStatus, Output, Option<String>),
    Retry(String),
}

impl JobRun {
    pub async fn handle(self, delivery: Delivery) {
        if delivery.redelivered {
            return self.recover(delivery).await;
        }
        let job = delivery.job.clone();
        let started_at = Utc::now();
        if let Err(e) = self
            .store
            .mark_started(job.id, &self.worker, started_at)
            .await
        {
            tracing::error!(job = %job.id, error = %e, "could not record the start; job goes back to the queue");
            return requeue(delivery).await;
        }
        tracing::info!(job = %job.id, command = %job.command, attempt = job.attempt, "job started");
        let cancel = self.cancellations.start(job.id);
        let ran = self.execute(&job, &cancel).await;
        self.cancellations.finish(job.id);
        let (status, output, error) = match ran {
            Ran::Done(status, output, error) => (status, output, error),
            Ran::Retry(why) => match self.retry.delay_after(job.attempt) {
                Some(delay) => return self.retry_later(delivery, why, delay).await,
                None => {
                    let why = format!("failed after {} attempts: {why}", job.attempt);
                    (JobStatus::Failed, Output::Empty, Some(why))
                }
            },
        };
        let result = JobResult {
            id: job.id,
            status,
            output,
            worker: self.worker.clone(),
            started_at,
            finished_at: Utc::now(),
            error,
        };
        match self.store.finish_job(&result).await {
            Ok(()) => {
                tracing::info!(
                    job = %job.id,
                    status = %status,
                    ms = result.duration().as_millis() as u64,
                    "job finished"
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

    async fn execute(&self, job: &Job, cancel: &CancelSignal) -> Ran {
        if let Some(by) = cancel.by() {
            return cancelled(by);
        }
        let ctx = TaskContext::new(job.clone(), self.store.clone());
        let name = match &job.task {
            Task::Native { name } => name,
            Task::Container { image, .. } => {
                return match &self.containers {
                    Some(runner) => {
                        let (status, output, error) = runner.run(&ctx, cancel).await;
                        Ran::Done(status, output, error)
                    }
                    None => Ran::Done(
                        JobStatus::Failed,
                        Output::Empty,
                        Some(format!(
                            "this worker cannot run containers, so it cannot run image \"{image}\""
                        )),
                    ),
                };
            }
        };
        let Some(task) = self.registry.get(name) else {
            let known: Vec<_> = self.registry.names().collect();
            let why = format!(
                "this worker has no native task \"{name}\" (it has: {})",
                known.join(", ")
            );
            return Ran::Done(JobStatus::Failed, Output::Empty, Some(why));
        };
        let mut handle = tokio::spawn(async move { task.run(&ctx).await });
        let finished = tokio::select! {
            f = tokio::time::timeout(job.timeout, &mut handle) => f,
            _ = cancel.cancelled() => {
                handle.abort();
                return cancelled(cancel.by().unwrap_or("someone"));
            }
        };
        match finished {
            Ok(Ok(Ok(output))) => Ran::Done(JobStatus::Succeeded, output, None),
            Ok(Ok(Err(TaskError::Retryable(why)))) => Ran::Retry(why),
            Ok(Ok(Err(e))) => Ran::Done(JobStatus::Failed, Output::Empty, Some(e.to_string())),
            Ok(Err(join)) => {
                tracing::error!(job = %job.id, error = %join, "native task crashed");
                let why = format!("the task \"{name}\" crashed; the worker log has details");
                Ran::Done(JobStatus::Failed, Output::Empty, Some(why))
            }
            Err(_) => {
                handle.abort();
                let why = format!("timed out after {}", lexicon::format_duration(job.timeout));
                Ran::Done(JobStatus::TimedOut, Output::Empty, Some(why))
            }
        }
    }

    /// Schedules the next attempt after a retryable failure.
    async fn retry_later(&self, delivery: Delivery, why: String, delay: Duration) {
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
            let times = match deliveries {
                1 => "once".to_string(),
                n => format!("{n} times"),
            };
            let why = format!(
                "was set aside: it was delivered {times} and never finished (the delivery \
                 limit); it may crash the workers that take it"
            );
            tracing::warn!(job = %job.id, deliveries, "job set aside after repeated lost deliveries");
            let now = Utc::now();
            let result = JobResult {
                id: job.id,
                status: JobStatus::Failed,
                output: Output::Empty,
                worker: self.worker.clone(),
                started_at: record.and_then(|r| r.started_at).unwrap_or(now),
                finished_at: now,
                error: Some(why),
            };
            if let Err(e) = self.store.finish_job(&result).await {
                tracing::error!(job = %job.id, error = %e, "result not stored; job goes back to the queue");
                return requeue(delivery).await;
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

/// The outcome of a job stopped by `cancel`; `by` is who asked.
pub(crate) fn cancelled(by: &str) -> Ran {
    Ran::Done(
        JobStatus::Cancelled,
        Output::Empty,
        Some(super::cancel::cancelled_by(by)),
    )
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
