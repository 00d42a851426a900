//! `Bot`: one bot process, assembled from a configuration.
//!
//! It owns the router, the async manager, the dead-letter reporter and their shutdown.
//! With `[broker]` and `[store]` it uses RabbitMQ and Redis, and workers are separate
//! `octobox-worker` processes. Without them (embedded mode) it also runs a worker
//! in-process over the in-memory broker and store, so a new user has a working bot with
//! nothing else installed, and a scheduler in-process when schedules are configured.
//! With `[ssh]` it serves SSH sessions; with `[slack]` it also connects to Slack.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use commands::LiveCatalog;
use config::Config;
use jobs::memory::{MemoryBroker, MemoryInventory, MemoryScheduleStore, MemoryStore};
use jobs::process::hostname;
use jobs::{Broker, InventoryStore, ScheduleStore, Store};
use scheduler::{Scheduler, SchedulerServices};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use worker::{ContainerRunner, RetryPolicy, TaskRegistry, Worker};

use crate::api::EventFeed;
use crate::approvals::ApprovalSweeper;
use crate::async_manager::{AsyncManager, Sinks};
use crate::builtins::BuiltinServices;
use crate::dead_letters::DeadLetterReporter;
use crate::reload::{self, Reloader};
use crate::router::Router;
use crate::slack::SlackAdapter;
use crate::ssh::SshServer;

pub struct Bot {
    pub router: Arc<Router>,
    /// The catalog in force, shared by the router, the embedded scheduler and the
    /// adapters; `reloader` replaces it.
    pub catalog: LiveCatalog,
    pub reloader: Arc<Reloader>,
    pub sinks: Sinks,
    /// This bot's name among bot processes; sessions and their reply group carry it.
    pub instance: String,
    /// Where the SSH server listens, when `[ssh]` is configured.
    pub ssh_addr: Option<std::net::SocketAddr>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served, when `[http] listen` is set.
    pub http_addr: Option<std::net::SocketAddr>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Bot {
    pub async fn start(config: &Config) -> Result<Bot> {
        let catalog = LiveCatalog::new(reload::check(config)?);
        let (broker, store) = services(config).await?;
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let metrics = octobox_http::metrics();
        metrics.set_role("bot");
        metrics.start_at_zero(catalog.load().commands.job_commands());
        if config.is_embedded() {
            metrics.set_role("worker");
            metrics.set_role("scheduler");
        }

        if config.is_embedded() {
            let worker = Worker::new(
                config
                    .worker
                    .name
                    .clone()
                    .unwrap_or_else(|| "embedded".to_string()),
                broker.clone(),
                store.clone(),
                TaskRegistry::configured(&config.tasks)
                    .context("the [tasks] settings cannot be used")?,
                config.worker.concurrency,
            )
            .with_retry(RetryPolicy {
                retries: config.jobs.retries,
                backoff: config.jobs.retry_backoff,
            })
            .with_grace(Duration::from_secs(5))
            .with_catalog(catalog.clone());
            // The only worker takes container jobs even without an engine, so that each
            // fails with the reason instead of waiting in the queue for ever.
            let runner = match ContainerRunner::connect().await {
                Ok(runner) => runner,
                Err(why) => {
                    tracing::warn!(%why, "container jobs fail with this reason until the engine answers");
                    ContainerRunner::unchecked()
                }
            };
            let worker = worker.with_containers(runner, config.worker.container_concurrency);
            let stop = shutdown.clone();
            tasks.spawn(async move {
                if let Err(e) = worker.run(stop).await {
                    tracing::error!(error = %e, "embedded worker stopped");
                }
            });
        }

        // Schedules: listed and steered by the built-ins in every mode; fired here in
        // embedded mode (whatever the catalog has now or after a reload), by
        // `octobox-scheduler` processes otherwise.
        let schedule_store: Arc<dyn ScheduleStore> = match (&config.store, config.is_embedded()) {
            (Some(store), false) => jobs::connect::schedule_store(store).await?,
            _ => Arc::new(MemoryScheduleStore::new()),
        };
        if config.is_embedded() {
            let services = SchedulerServices {
                catalog: catalog.clone(),
                broker: broker.clone(),
                store: store.clone(),
                schedules: schedule_store.clone(),
            };
            let scheduler = Scheduler::new(
                "embedded",
                services,
                config.scheduler.lease,
                config.jobs.timeout.max(Duration::from_secs(1)),
            );
            tasks.spawn(scheduler.run(shutdown.clone()));
        }

        let instance = hostname();
        let sinks = Sinks::default();
        sinks.register(config::API_ADAPTER, Arc::new(crate::async_manager::ApiSink));
        let (feed, feeding) = EventFeed::new(store.clone(), shutdown.clone());
        tasks.spawn(feeding);
        let manager = AsyncManager::new(
            store.clone(),
            sinks.clone(),
            AsyncManager::instance_group(&instance),
            format!("{instance}-{}", std::process::id()),
        )
        .with_audit_keep(config.audit.keep)
        .with_feed(feed.clone());
        tasks.spawn(manager.run(shutdown.clone()));
        let sweeper = ApprovalSweeper::new(store.clone(), config.audit.keep);
        tasks.spawn(sweeper.run(shutdown.clone()));
        let reporter = DeadLetterReporter::new(broker.clone(), store.clone());
        tasks.spawn(reporter.run(shutdown.clone()));

        let reloader = Arc::new(Reloader::new(catalog.clone()));
        let inventory: Arc<dyn InventoryStore> = match (&config.store, config.is_embedded()) {
            (Some(store), false) => jobs::connect::inventory(store).await?,
            _ => Arc::new(MemoryInventory::new()),
        };
        let services = BuiltinServices {
            store: store.clone(),
            broker: broker.clone(),
            schedules: schedule_store,
            reloader: reloader.clone(),
            inventory,
        };
        let router = Arc::new(Router::new(catalog.clone(), services));
        let http_addr = match config.http.listen {
            Some(listen) => Some(
                serve_http(
                    listen,
                    health(broker, store.clone()),
                    router.clone(),
                    feed,
                    shutdown.clone(),
                )
                .await?,
            ),
            None => {
                if !config.api.tokens.is_empty() {
                    tracing::warn!("[[api.token]] is declared but [http] listen is not: the API and dashboard are not served");
                }
                None
            }
        };
        let mut ssh_addr = None;
        if let Some(ssh) = &config.ssh {
            let (addr, serve) =
                SshServer::start(ssh, router.clone(), &sinks, &instance, shutdown.clone()).await?;
            tasks.spawn(serve);
            ssh_addr = Some(addr);
        }
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
            commands = catalog.load().commands.catalog.len(),
            config = %config.source,
            %instance,
            "bot ready"
        );
        Ok(Bot {
            router,
            catalog,
            reloader,
            sinks,
            instance,
            ssh_addr,
            http_addr,
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

/// How many connections the bot's HTTP listener serves at once: scrapers, API clients,
/// dashboard pages and their live streams ([`crate::api::MAX_STREAMS`] of them).
const HTTP_CONNECTIONS: usize = 512;

/// Serves health and metrics, the API and the dashboard on `listen`; the bound address.
async fn serve_http(
    listen: std::net::SocketAddr,
    health: octobox_http::Health,
    router: Arc<Router>,
    feed: EventFeed,
    shutdown: CancellationToken,
) -> Result<std::net::SocketAddr> {
    let state = crate::api::ApiState::new(router, feed);
    let app = health
        .routes()
        .merge(crate::api::routes(state.clone()))
        .merge(crate::dashboard::routes(state));
    let listener = octobox_http::bounded::BoundedListener {
        name: "the bot's HTTP listener",
        max_connections: HTTP_CONNECTIONS,
        header_timeout: Duration::from_secs(5),
    };
    let bound = listener
        .serve(listen, app, shutdown)
        .await
        .with_context(|| format!("cannot listen on {listen} ([http] listen)"))?;
    tracing::info!(%bound, "serving /healthz, /readyz, /metrics, the API (/api/v1) and the dashboard (/ui)");
    Ok(bound)
}

/// The bot's readiness (the broker and the store answer) and the gauges it samples for
/// every scrape: the depth of each queue, and how many workers have a current heartbeat.
fn health(broker: Arc<dyn Broker>, store: Arc<dyn Store>) -> octobox_http::Health {
    let (b, s) = (broker.clone(), store.clone());
    octobox_http::Health::new()
        .services(broker, store)
        .sample(move || {
            let broker = b.clone();
            async move {
                match broker.queue_depths().await {
                    Ok(depths) => {
                        for (queue, depth) in depths {
                            octobox_http::metrics()
                                .queue_depth
                                .with_label_values(&[queue])
                                .set(depth as i64);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "queue depths not sampled"),
                }
            }
        })
        .sample(move || {
            let store = s.clone();
            async move {
                match store.workers().await {
                    Ok(live) => octobox_http::metrics().workers_live.set(live.len() as i64),
                    Err(e) => tracing::debug!(error = %e, "live workers not counted"),
                }
            }
        })
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
