//! What every Octobox process (bot, worker, scheduler) serves over HTTP about itself, and
//! the listener it is served on:
//!
//! - [`bounded`]: an HTTP/1 listener that bounds what a client can hold (connections at
//!   once, time to send a request's head); the Slack endpoint is served by it too.
//! - [`health`]: `/healthz` (the process answers), `/readyz` (its named checks pass:
//!   RabbitMQ, Redis, consuming, the lease…) and `/metrics`, on `[http] listen`.
//! - [`metrics`]: the process's metric families, named after celery-exporter's and
//!   Sidekiq's exporters, with bounded labels (command names, never job ids or people).
//! - [`probe`]: the `probe` subcommand's check of `/readyz`, so an image without a
//!   shell can have a healthcheck.

pub mod bounded;
pub mod health;
pub mod metrics;
pub mod probe;

pub use health::{Health, HealthServer};
pub use metrics::metrics;
