//! `Bot`: one bot process, assembled from a configuration.
//!
//! It owns the router, the async manager and the shutdown of both. In embedded mode (no
//! `[broker]` and `[store]`) it also runs a worker in-process over the in-memory broker
//! and store, so a new user has a working bot with nothing else installed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use jobs::config::Config;
use jobs::memory::{MemoryBroker, MemoryStore};
use jobs::{Broker, Store};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use worker::{TaskRegistry, Worker};

use crate::acl::AccessPolicy;
use crate::async_manager::{AsyncManager, Sinks};
use crate::commands::CommandTable;
use crate::router::Router;

pub struct Bot {
    pub router: Arc<Router>,
    pub sinks: Sinks,
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
        if !config.is_embedded() {
            bail!(
                "{}: [broker] and [store] are set, but this build runs embedded only; \
                 remove both sections to run with the in-process queue",
                config.source
            );
        }
        tracing::warn!(
            "embedded mode: jobs and their results live in this process's memory and are \
             lost when it stops; configure [broker] and [store] for durable jobs"
        );
        let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();

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
        .with_grace(Duration::from_secs(5));
        let stop = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = worker.run(stop).await {
                tracing::error!(error = %e, "embedded worker stopped");
            }
        });

        let sinks = Sinks::default();
        let manager = AsyncManager::new(store.clone(), sinks.clone(), consumer_name());
        tasks.spawn(manager.run(shutdown.clone()));

        let policy = AccessPolicy::new(&config.acl);
        let router = Arc::new(Router::new(table, policy, broker, store));
        tracing::info!(
            commands = router.table().catalog.len(),
            config = %config.source,
            "bot ready"
        );
        Ok(Bot {
            router,
            sinks,
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

/// This process's name in the event consumer group.
fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    format!("bot@{host}-{}", std::process::id())
}
