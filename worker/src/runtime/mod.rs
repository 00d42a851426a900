//! `Worker`: the consume loops (one per task class it takes), the heartbeat that makes
//! the worker visible to `workers`, and the listener that hears `cancel`.
//!
//! A permit is taken *before* asking the broker for the next job, so a worker never holds
//! more jobs than it can run: the rest stay in the queue for other workers, and on
//! shutdown nothing unstarted is held here. How one job is run is [`job_run`]'s business.

mod cancel;
mod job_run;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use commands::LiveCatalog;
use jobs::{Broker, BrokerError, Control, ControlFeed, Store, TaskClass, WorkerInfo};
use octobox_http::metrics;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::container::ContainerRunner;
use crate::registry::TaskRegistry;
pub use cancel::Cancellations;
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
    containers: Option<Arc<ContainerRunner>>,
    container_concurrency: usize,
    cancellations: Arc<Cancellations>,
    catalog: Option<LiveCatalog>,
    consuming: Arc<Consuming>,
}

/// Whether a worker is consuming every queue it takes jobs from, for `/readyz`.
#[derive(Debug, Default)]
pub struct Consuming {
    /// Consume loops subscribed to their queue now.
    subscribed: AtomicUsize,
    /// Consume loops the worker runs.
    loops: AtomicUsize,
}

impl Consuming {
    /// `Ok` with what is consumed when every loop is subscribed; why not otherwise.
    pub fn check(&self) -> Result<String, String> {
        let (subscribed, loops) = (
            self.subscribed.load(Ordering::Relaxed),
            self.loops.load(Ordering::Relaxed),
        );
        if loops > 0 && subscribed == loops {
            Ok(format!("{subscribed} of {loops} queues"))
        } else {
            Err(format!("consuming {subscribed} of {loops} queues"))
        }
    }
}

/// How often a worker reports itself, and how long a report stays valid: a worker that
/// misses three heartbeats is no longer listed.
const HEARTBEAT: Duration = Duration::from_secs(5);
const HEARTBEAT_TTL: Duration = Duration::from_secs(15);
/// How often a worker looks for containers no live worker holds.
const SWEEP: Duration = Duration::from_secs(10);

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
            containers: None,
            container_concurrency: 1,
            cancellations: Arc::default(),
            catalog: None,
            consuming: Arc::default(),
        }
    }

    /// Whether this worker consumes every queue it takes jobs from (for `/readyz`).
    pub fn consuming(&self) -> Arc<Consuming> {
        self.consuming.clone()
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

    /// Builds every job's task from `catalog` (this worker's own configuration) instead
    /// of taking it from the job, and refuses jobs that say otherwise
    /// ([`crate::own_config`]). The binaries always set it; a worker without one trusts
    /// what it is sent, for tests that make their jobs by hand.
    pub fn with_catalog(mut self, catalog: LiveCatalog) -> Self {
        self.catalog = Some(catalog);
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

    /// Runs container jobs with `runner`, at most `concurrency` at once, beside the
    /// native ones: this worker then takes jobs from the container queue too.
    pub fn with_containers(mut self, mut runner: ContainerRunner, concurrency: usize) -> Self {
        runner.set_worker(&self.name, &self.store.scope());
        self.containers = Some(Arc::new(runner));
        self.container_concurrency = concurrency.max(1);
        self
    }

    /// Takes container jobs too, at most `concurrency` at once, if a Docker engine answers
    /// (`DOCKER_HOST`, else the local socket); the log says which. Without an engine the
    /// worker takes native jobs only, so container jobs go to workers that can run them.
    pub async fn with_containers_if_engine_answers(self, concurrency: usize) -> Self {
        match ContainerRunner::connect().await {
            Ok(runner) => {
                tracing::info!(worker = %self.name, engine = %runner.describe(), "taking container jobs");
                self.with_containers(runner, concurrency)
            }
            Err(why) => {
                tracing::warn!(worker = %self.name, %why, "taking no container jobs");
                self
            }
        }
    }

    /// The task classes this worker takes, each with how many of its jobs run at once.
    fn classes(&self) -> Vec<(TaskClass, usize)> {
        let mut classes = vec![(TaskClass::Native, self.concurrency)];
        if self.containers.is_some() {
            classes.push((TaskClass::Container, self.container_concurrency));
        }
        classes
    }

    /// Consumes jobs until `shutdown` is cancelled, then lets running jobs finish within
    /// the grace period. Each task class has its own queue and its own concurrency limit,
    /// so a burst of long container jobs never holds up quick native ones.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BrokerError> {
        let control = self.broker.subscribe_control().await?;
        let this = Arc::new(self);
        let listener = tokio::spawn(listen_for_cancels(
            this.name.clone(),
            control,
            this.cancellations.clone(),
            shutdown.clone(),
        ));
        let busy = Arc::new(AtomicUsize::new(0));
        let heartbeat = tokio::spawn(this.heartbeat(busy.clone(), shutdown.clone()));
        let sweeper = this.containers.clone().map(|runner| {
            tokio::spawn(sweep_orphans(runner, this.store.clone(), shutdown.clone()))
        });
        let mut loops = JoinSet::new();
        this.consuming
            .loops
            .store(this.classes().len(), Ordering::Relaxed);
        for (class, concurrency) in this.classes() {
            let (this, busy, shutdown) = (this.clone(), busy.clone(), shutdown.clone());
            loops.spawn(async move { this.consume(class, concurrency, busy, shutdown).await });
        }
        let mut outcome = Ok(());
        while let Some(ended) = loops.join_next().await {
            match ended {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    // One class cannot be consumed: stop the others too, and say why.
                    shutdown.cancel();
                    outcome = Err(e);
                }
                Err(join) => {
                    tracing::error!(worker = %this.name, error = %join, "a consume loop crashed")
                }
            }
        }
        heartbeat.abort();
        listener.abort();
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        if let Some(runner) = &this.containers {
            runner.remove_leftovers().await;
        }
        outcome
    }

    /// Consumes the jobs of one class until `shutdown`, then waits out the grace period.
    async fn consume(
        self: Arc<Self>,
        class: TaskClass,
        concurrency: usize,
        busy: Arc<AtomicUsize>,
        shutdown: CancellationToken,
    ) -> Result<(), BrokerError> {
        let prefetch = u16::try_from(concurrency).unwrap_or(u16::MAX);
        let mut stream = self.broker.consume(class, prefetch).await?;
        self.consuming.subscribed.fetch_add(1, Ordering::Relaxed);
        let kind = class.as_str();
        let slots_busy = metrics().worker_slots_busy.with_label_values(&[kind]);
        metrics()
            .worker_slots
            .with_label_values(&[kind])
            .set(concurrency as i64);
        let permits = Arc::new(Semaphore::new(concurrency));
        let mut running = JoinSet::new();
        tracing::info!(
            worker = %self.name,
            class = class.as_str(),
            concurrency,
            broker = %self.broker.describe(),
            tasks = ?self.registry.names().collect::<Vec<_>>(),
            "worker consuming jobs"
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
                    tracing::warn!(worker = %self.name, class = class.as_str(), "the job queue closed; worker stops");
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
                        containers: self.containers.clone(),
                        catalog: self.catalog.clone(),
                        cancellations: self.cancellations.clone(),
                        retry: self.retry,
                        delivery_limit: self.delivery_limit,
                    };
                    let (busy, slots_busy) = (busy.clone(), slots_busy.clone());
                    busy.fetch_add(1, Ordering::Relaxed);
                    slots_busy.inc();
                    running.spawn(async move {
                        run.handle(delivery).await;
                        busy.fetch_sub(1, Ordering::Relaxed);
                        slots_busy.dec();
                        drop(permit);
                    });
                }
            }
        }
        // Dropping the stream gives back whatever the broker had sent ahead.
        drop(stream);
        self.consuming.subscribed.fetch_sub(1, Ordering::Relaxed);
        tracing::info!(worker = %self.name, class = class.as_str(), running = running.len(), "worker stopping");
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

    /// Reports this worker to the store every few seconds until shutdown.
    fn heartbeat(
        &self,
        busy: Arc<AtomicUsize>,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let store = self.store.clone();
        let mut info = WorkerInfo {
            name: self.name.clone(),
            host: jobs::process::hostname(),
            classes: self.classes().into_iter().map(|(c, _)| c).collect(),
            concurrency: self.classes().into_iter().map(|(_, n)| n).sum(),
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

/// Follows control messages: a `cancel` trips the job's switch if it runs here.
async fn listen_for_cancels(
    worker: String,
    mut control: ControlFeed,
    cancellations: Arc<Cancellations>,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            m = control.next() => m,
        };
        match message {
            None => return,
            Some(Control::Cancel { job, by }) => {
                let here = cancellations.cancel(job, &by);
                tracing::info!(%worker, %job, %by, running_here = here, "cancel received");
            }
        }
    }
}

/// Removes, at start and then every [`SWEEP`], the job containers no live worker holds
/// (`ContainerRunner::remove_orphans`): a worker killed mid-job leaves its container
/// running, and nothing else would ever stop it. A worker is live while its heartbeat is.
async fn sweep_orphans(
    runner: Arc<ContainerRunner>,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(SWEEP);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.workers().await {
            Ok(workers) => {
                let live = workers.into_iter().map(|w| w.name).collect();
                runner.remove_orphans(&live).await;
            }
            Err(e) => tracing::debug!(error = %e, "cannot list live workers; no sweep this time"),
        }
    }
}

#[cfg(test)]
mod tests;
