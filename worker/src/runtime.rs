//! `Worker`: the consume loop.
//!
//! A permit is taken *before* asking the broker for the next job, so a worker never holds
//! more jobs than it can run: the rest stay in the queue for other workers. Each job runs
//! in its own tokio task, so a panicking task fails its job, not the worker. The delivery
//! is acknowledged only once the result (and so its `finished` event) is in the store.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use jobs::{
    Broker, BrokerError, Delivery, Job, JobResult, JobStatus, Output, Store, Task, TaskClass,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::registry::{TaskContext, TaskRegistry};

pub struct Worker {
    name: String,
    broker: Arc<dyn Broker>,
    store: Arc<dyn Store>,
    registry: Arc<TaskRegistry>,
    concurrency: usize,
    grace: Duration,
}

impl Worker {
    pub fn new(
        name: impl Into<String>,
        broker: Arc<dyn Broker>,
        store: Arc<dyn Store>,
        registry: TaskRegistry,
        concurrency: usize,
    ) -> Self {
        Worker {
            name: name.into(),
            broker,
            store,
            registry: Arc::new(registry),
            concurrency: concurrency.max(1),
            grace: Duration::from_secs(30),
        }
    }

    /// How long running jobs may take to finish once shutdown is asked for.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Consumes native jobs until `shutdown` is cancelled, then lets running jobs finish
    /// within the grace period.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BrokerError> {
        let prefetch = u16::try_from(self.concurrency).unwrap_or(u16::MAX);
        let mut stream = self.broker.consume(TaskClass::Native, prefetch).await?;
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut running = JoinSet::new();
        tracing::info!(
            worker = %self.name,
            concurrency = self.concurrency,
            broker = %self.broker.describe(),
            tasks = ?self.registry.names().collect::<Vec<_>>(),
            "worker consuming native jobs"
        );
        loop {
            // Reap finished jobs so the set does not grow.
            while running.try_join_next().is_some() {}
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            };
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => break,
                d = stream.next() => d,
            };
            match delivery {
                None => {
                    tracing::warn!(worker = %self.name, "the job queue closed; worker stops");
                    break;
                }
                Some(Err(e)) => {
                    tracing::error!(worker = %self.name, error = %e, "could not receive a job");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(Ok(delivery)) => {
                    let job = JobRun {
                        worker: self.name.clone(),
                        store: self.store.clone(),
                        registry: self.registry.clone(),
                    };
                    running.spawn(async move {
                        job.handle(delivery).await;
                        drop(permit);
                    });
                }
            }
        }
        tracing::info!(worker = %self.name, running = running.len(), "worker stopping");
        let drained = tokio::time::timeout(self.grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                worker = %self.name,
                abandoned = running.len(),
                "grace period over; unfinished jobs stay with the broker"
            );
        }
        Ok(())
    }
}

/// What one job's handling needs, moved into its task.
struct JobRun {
    worker: String,
    store: Arc<dyn Store>,
    registry: Arc<TaskRegistry>,
}

impl JobRun {
    async fn handle(self, delivery: Delivery) {
        let job = delivery.job.clone();
        let started_at = Utc::now();
        if let Err(e) = self
            .store
            .mark_started(job.id, &self.worker, started_at)
            .await
        {
            tracing::error!(job = %job.id, error = %e, "could not record the start; job goes back to the queue");
            if let Err(e) = delivery.reject(true).await {
                tracing::error!(job = %job.id, error = %e, "could not return the job to the queue");
            }
            return;
        }
        tracing::info!(job = %job.id, command = %job.command, attempt = job.attempt, "job started");
        let (status, output, error) = self.execute(&job).await;
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
                if let Err(e) = delivery.reject(true).await {
                    tracing::error!(job = %job.id, error = %e, "could not return the job to the queue");
                }
            }
        }
    }

    async fn execute(&self, job: &Job) -> (JobStatus, Output, Option<String>) {
        let Task::Native { name } = &job.task;
        let Some(task) = self.registry.get(name) else {
            let known: Vec<_> = self.registry.names().collect();
            let why = format!(
                "this worker has no native task \"{name}\" (it has: {})",
                known.join(", ")
            );
            return (JobStatus::Failed, Output::Empty, Some(why));
        };
        let ctx = TaskContext::new(job.clone(), self.store.clone());
        // Its own task: a panic inside becomes a failed job, and a timeout drops it.
        let mut handle = tokio::spawn(async move { task.run(&ctx).await });
        match tokio::time::timeout(job.timeout, &mut handle).await {
            Ok(Ok(Ok(output))) => (JobStatus::Succeeded, output, None),
            Ok(Ok(Err(e))) => (JobStatus::Failed, Output::Empty, Some(e.to_string())),
            Ok(Err(join)) => {
                tracing::error!(job = %job.id, error = %join, "native task crashed");
                (
                    JobStatus::Failed,
                    Output::Empty,
                    Some(format!(
                        "the task \"{name}\" crashed; the worker log has details"
                    )),
                )
            }
            Err(_) => {
                handle.abort();
                let why = format!("timed out after {}", lexicon::format_duration(job.timeout));
                (JobStatus::TimedOut, Output::Empty, Some(why))
            }
        }
    }
}

#[cfg(test)]
mod tests;
