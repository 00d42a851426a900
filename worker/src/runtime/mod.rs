//! `Worker`: the consume loop, and the heartbeat that makes the worker visible to
//! `workers`.
//!
//! A permit is taken *before* asking the broker for the next job, so a worker never holds
//! more jobs than it can run: the rest stay in the queue for other workers, and on
//! shutdown nothing unstarted is held here. How one job is run is [`job_run`]'s business.

mod job_run;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use jobs::{Broker, BrokerError, Store, TaskClass, WorkerInfo};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::registry::TaskRegistry;
use job_run::JobRun;
pub use job_run::RetryPolicy;

pub struct Worker {
    name: String,
    broker: Arc<dyn Broker>,
    store: Arc<dyn Store>,
    registry: Arc<TaskRegistry>,
    concurrency: usize,
    grace: Duration,
    retry: RetryPolicy,
    delivery_limit: u32,
}

/// How often a worker reports itself, and how long a report stays valid: a worker that
/// misses three heartbeats is no longer listed.
const HEARTBEAT: Duration = Duration::from_secs(5);
const HEARTBEAT_TTL: Duration = Duration::from_secs(15);

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
            retry: RetryPolicy::default(),
            delivery_limit: 5,
        }
    }

    /// How many deliveries a job gets before it is set aside as one that crashes its
    /// workers (the broker's `delivery_limit`).
    pub fn with_delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = limit.max(1);
        self
    }

    /// How failures the task calls retryable are tried again.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
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
        let busy = Arc::new(AtomicUsize::new(0));
        let heartbeat = tokio::spawn(self.heartbeat(busy.clone(), shutdown.clone()));
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
                    let run = JobRun {
                        worker: self.name.clone(),
                        broker: self.broker.clone(),
                        store: self.store.clone(),
                        registry: self.registry.clone(),
                        retry: self.retry,
                        delivery_limit: self.delivery_limit,
                    };
                    let busy = busy.clone();
                    busy.fetch_add(1, Ordering::Relaxed);
                    running.spawn(async move {
                        run.handle(delivery).await;
                        busy.fetch_sub(1, Ordering::Relaxed);
                        drop(permit);
                    });
                }
            }
        }
        // Dropping the stream gives back whatever the broker had sent ahead.
        drop(stream);
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
        heartbeat.abort();
        Ok(())
    }

    /// Reports this worker to the store every few seconds until shutdown.
    fn heartbeat(
        &self,
        busy: Arc<AtomicUsize>,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let store = self.store.clone();
        let mut info = WorkerInfo {
            name: self.name.clone(),
            host: hostname(),
            classes: vec![TaskClass::Native],
            concurrency: self.concurrency,
            running: 0,
            started_at: Utc::now(),
            heartbeat_at: Utc::now(),
        };
        async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                info.running = busy.load(Ordering::Relaxed);
                info.heartbeat_at = Utc::now();
                if let Err(e) = store.heartbeat(&info, HEARTBEAT_TTL).await {
                    tracing::warn!(worker = %info.name, error = %e, "heartbeat not stored");
                }
            }
        }
    }
}

/// This machine's name, for worker reports.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests;
