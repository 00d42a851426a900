//! `Health`: what a process answers on `[http] listen` — `/healthz` (it is alive: the
//! runtime answers), `/readyz` (each of its named checks passes: 200, or 503 naming the
//! ones that fail) and `/metrics` (its [`Metrics`](crate::metrics::Metrics), after its
//! samplers have refreshed the gauges that are read on demand, like queue depth).
//!
//! Checks and samplers each get [`CHECK_TIMEOUT`]: a broker that hangs makes `/readyz`
//! say so, never makes it hang. The listener is a [`BoundedListener`] with few
//! connections: it is for a healthcheck and a Prometheus, not for the public.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::{join_all, BoxFuture, FutureExt};
use tokio_util::sync::CancellationToken;

use crate::bounded::BoundedListener;
use crate::metrics::metrics;

/// How long one readiness check or sampler may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The listener's bounds: a healthcheck and a few scrapers at once.
pub const LISTENER: BoundedListener = BoundedListener {
    name: "the health and metrics listener",
    max_connections: 64,
    header_timeout: Duration::from_secs(5),
};

type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;
type Sampler = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A process's readiness checks and metric samplers.
#[derive(Clone, Default)]
pub struct Health {
    checks: Vec<(String, Check)>,
    samplers: Vec<Sampler>,
}

/// What `/readyz` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    /// One line per check: `name: ok (detail)` or `name: failing: why`.
    pub report: String,
}

impl Health {
    pub fn new() -> Self {
        Health::default()
    }

    /// Adds the check `name`: `Ok(detail)` when it passes, `Err(why)` when not. Neither
    /// may hold a secret: both are shown to whoever asks `/readyz`.
    pub fn check<F, Fut>(mut self, name: &str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        self.checks
            .push((name.to_string(), Arc::new(move || check().boxed())));
        self
    }

    /// Adds the checks of a process that uses `broker` and `store`: `broker` (the
    /// connection is up) and `store` (it answers a ping).
    pub fn services(self, broker: Arc<dyn jobs::Broker>, store: Arc<dyn jobs::Store>) -> Self {
        let described = broker.describe();
        self.check("broker", move || {
            let outcome = broker.connected().map(|()| described.clone());
            async move { outcome.map_err(|e| e.to_string()) }
        })
        .check("store", move || {
            let store = store.clone();
            async move {
                store
                    .ping()
                    .await
                    .map(|()| String::new())
                    .map_err(|e| e.to_string())
            }
        })
    }

    /// Adds a sampler, run before each `/metrics` answer to set gauges read on demand.
    pub fn sample<F, Fut>(mut self, sampler: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.samplers.push(Arc::new(move || sampler().boxed()));
        self
    }

    /// Runs every check at once, each within [`CHECK_TIMEOUT`].
    pub async fn readiness(&self) -> Readiness {
        let runs = self.checks.iter().map(|(name, check)| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
            };
            (name, outcome)
        });
        let mut ready = true;
        let mut report = String::new();
        for (name, outcome) in join_all(runs).await {
            match outcome {
                Ok(detail) if detail.is_empty() => report.push_str(&format!("{name}: ok\n")),
                Ok(detail) => report.push_str(&format!("{name}: ok ({detail})\n")),
                Err(why) => {
                    ready = false;
                    report.push_str(&format!("{name}: failing: {why}\n"));
                }
            }
        }
        Readiness { ready, report }
    }

    /// `/metrics`'s text, after running the samplers.
    pub async fn metrics_text(&self) -> String {
        let runs = self
            .samplers
            .iter()
            .map(|sample| tokio::time::timeout(CHECK_TIMEOUT, sample()));
        join_all(runs).await;
        metrics().render()
    }

    /// The routes, for a listener that also serves other things (the bot's API).
    pub fn routes(self) -> axum::Router {
        axum::Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_page))
            .with_state(Arc::new(self))
    }
}

async fn readyz(State(health): State<Arc<Health>>) -> impl IntoResponse {
    let found = health.readiness().await;
    let (status, head) = if found.ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    (status, format!("{head}\n{}", found.report))
}

async fn metrics_page(State(health): State<Arc<Health>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        health.metrics_text().await,
    )
}

/// Serves a process's [`Health`] on `listen` until `shutdown`.
pub struct HealthServer;

impl HealthServer {
    /// Binds `listen` and serves `/healthz`, `/readyz` and `/metrics`; the bound address.
    pub async fn serve(
        listen: SocketAddr,
        health: Health,
        shutdown: CancellationToken,
    ) -> anyhow::Result<SocketAddr> {
        use anyhow::Context;
        let bound = LISTENER
            .serve(listen, health.routes(), shutdown)
            .await
            .with_context(|| {
                format!("cannot listen for health and metrics on {listen} ([http] listen)")
            })?;
        tracing::info!(%bound, "serving /healthz, /readyz and /metrics");
        Ok(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_or_hanging_check_makes_it_not_ready_and_is_named() {
        let health = Health::new()
            .check("store", || async { Ok(String::new()) })
            .check("broker", || async { Err("connection refused".to_string()) });
        let found = health.readiness().await;
        assert!(!found.ready);
        assert_eq!(
            found.report,
            "store: ok\nbroker: failing: connection refused\n"
        );

        tokio::time::pause();
        let hanging = Health::new().check("lease", futures::future::pending);
        let found = hanging.readiness().await;
        assert!(!found.ready);
        assert_eq!(found.report, "lease: failing: no answer within 3 s\n");
    }
}
