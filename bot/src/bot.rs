//! `Bot`: one bot process, assembled from a configuration.
//!
//! It owns the router, the async manager, the dead-letter reporter and their shutdown.
//! With `[broker]` and `[store]` it uses RabbitMQ and Redis, and workers are separate
//! `octobox-worker` processes. Without them (embedded mode) it also runs a worker
//! in-process over the in-memory broker and store, so a new user has a working bot with
//! nothing else installed. With `[slack]` it also connects to Slack.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use jobs::config::Config;
use jobs::memory::{MemoryBroker, MemoryStore};
use jobs::{Broker, Store};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use worker::runtime::hostname;
use worker::{RetryPolicy, TaskRegistry, Worker};

use crate::acl::AccessPolicy;
use crate::async_manager::{AsyncManager, Sinks};
use crate::commands::CommandTable;
use crate::dead_letters::DeadLetterReporter;
use crate::router::Router;
use crate::slack::SlackAdapter;

pub struct Bot {
    pub router: Arc<Router>,
    pub sinks: Sinks,
    /// This bot's name among bot processes; sessions and their reply group carry it.
    pub instance: String,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Bot {
    /// Checks the configuration as `start` would, without starting anything: what
    /// `--check-config` runs.
    pub fn check(config: &Config) -> Result<CommandTable, jobs::config::ConfigErrors> {
        let registry = TaskRegistry::standard();
        CommandTable::build(config, config.is_embedded().then_some(&registry))
    }

    pub async fn start(config: &Config) -> Result<Bot> {
        let table = Self::check(config)?;
        let (broker, store) = services(config).await?;
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();

        if config.is_embedded() {
            let worker = Worker::new(
                config
                    .worker
                    .name
                    .clone()
                    .unwrap_or_else(|| "embedded".to_string()),
                broker.clone(),
                store.clone(),
                TaskRegistry::standard(),
                config.worker.concurrency,
            )
            .with_retry(RetryPolicy {
                retries: config.jobs.retries,
                backoff: config.jobs.retry_backoff,
            })
            .with_grace(Duration::from_secs(5));
            let stop = shutdown.clone();
            tasks.spawn(async move {
                if let Err(e) = worker.run(stop).await {
                    tracing::error!(error = %e, "embedded worker stopped");
                }
            });
        }

        let instance = hostname();
        let sinks = Sinks::default();
        let manager = AsyncManager::new(
            store.clone(),
            sinks.clone(),
            AsyncManager::instance_group(&instance),
            format!("{instance}-{}", std::process::id()),
        );
        tasks.spawn(manager.run(shutdown.clone()));
        let reporter = DeadLetterReporter::new(broker.clone(), store.clone());
        tasks.spawn(reporter.run(shutdown.clone()));

        let policy = AccessPolicy::new(&config.acl);
        let router = Arc::new(Router::new(table, policy, broker, store.clone()));
        if let Some(slack) = &config.slack {
            SlackAdapter::start(
                slack,
                router.clone(),
                store,
                &instance,
                shutdown.clone(),
                &mut tasks,
            )
            .await?;
        }
        tracing::info!(
            commands = router.table().catalog.len(),
            config = %config.source,
            %instance,
            "bot ready"
        );
        Ok(Bot {
            router,
            sinks,
            instance,
            shutdown,
            tasks,
        })
    }

    /// Stops the async manager and the embedded worker, letting running jobs finish
    /// within the worker's grace period.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The broker and store the configuration asks for: RabbitMQ and Redis, or the
/// in-memory twins in embedded mode.
async fn services(config: &Config) -> Result<(Arc<dyn Broker>, Arc<dyn Store>)> {
    let (Some(broker), Some(store)) = (&config.broker, &config.store) else {
        tracing::warn!(
            "embedded mode: jobs and their results live in this process's memory and are \
             lost when it stops; configure [broker] and [store] for durable jobs"
        );
        return Ok((Arc::new(MemoryBroker::new()), Arc::new(MemoryStore::new())));
    };
    Ok(jobs::connect::connect(broker, store).await?)
}
