//! The harness for Octobox's end-to-end tests: real binaries, real processes.
//!
//! - [`binary`]: finds the workspace's built binaries (`scripts/test` builds them first).
//! - [`console`]: runs `octobox-bot --console`, either fed a whole script through a pipe
//!   ([`console::Console::run`]) or as a live session a test converses with
//!   ([`console::Console::start`]).
//! - [`ssh`]: `SshBot` — `octobox-bot` serving SSH, reached with the OpenSSH client
//!   (exec, piped sessions, sessions on a pseudo-terminal).

//! - [`containers`]: test images for containerized tasks, built locally; the containers
//!   a job left behind.
//! - [`services`]: private `redis-server` and RabbitMQ instances on free ports (the
//!   `octobox-test-services` crate, which `jobs`' own tests use without the rest).
//! - [`health`]: what a process serves on `[http] listen` (`/readyz`, `/metrics`).
//! - [`processes`]: `octobox-worker` processes to kill, stop and respawn.
//! - [`scheduler`]: `octobox-scheduler` processes, and `ScheduleProbe` into their Redis.
//! - [`shipping`]: a shipper's far ends: a paging event source, a collector that fails
//!   some requests, moto's S3-compatible server.
//! - [`pipeline`]: `Pipeline` — private Redis and RabbitMQ plus a configuration for them.
//! - [`slack_server`]: `SlackServer` — a local Slack (Web API and Socket Mode) that
//!   records what the bot sends.
//! - [`NO_QUOTA`], [`without_quota`]: the `[quota]` of configurations whose subject is
//!   something else.
//! - [`slack_bot`]: `SlackBot` — `octobox-bot` serving Slack, to kill and restart.
//! - [`cluster`]: `Cluster` — hosts on a private Docker network (a RabbitMQ cluster,
//!   Redis with Sentinel, Octobox's containers) to kill and cut off.
//! - [`stack`]: `Stack` — `compose/docker-compose.yml` up on the Docker engine from
//!   images built here.
//! - [`browser`]: `Browser` — headless Chromium driven over W3C WebDriver (Debian's
//!   chromedriver), for pages tested in a real browser.
//! - [`schemathesis`]: Schemathesis (from PyPI) run against a live server's OpenAPI
//!   document.
//! - [`api`]: `ApiBot` — `octobox-bot` serving its HTTP API and dashboard with three
//!   tokens; `Api`, a client answering with status and JSON; `EventStream` (SSE).
//! - [`bench`]: the load tool `octobox-bench` (binary in `src/bin/`): the pipeline's
//!   round trips, throughput, memory and broker ceiling, and Celery for comparison.
//!
//! Everything a test starts is killed when its handle drops, so a failing test leaves
//! no process behind.

pub mod api;
pub mod bench;
pub mod binary;
pub mod browser;
pub mod cluster;
pub mod console;
pub mod containers;
pub mod health;
pub mod pipeline;
pub mod processes;
pub mod scheduler;
pub mod schemathesis;
pub use test_services as services;
pub mod shipping;
pub mod slack_bot;
pub mod slack_server;
pub mod ssh;
pub mod stack;

/// A `[quota]` that no test or load run reaches, for configurations whose subject is
/// something else (the quotas' own tests set theirs).
pub const NO_QUOTA: &str = "\n[quota]\nrunning_per_person = 10000\nrequests_per_minute = 100000\n";

/// `toml` with [`NO_QUOTA`] added at its end (so its line numbers stay), unless it sets a
/// `[quota]` of its own.
pub fn without_quota(toml: &str) -> String {
    if toml.contains("[quota]") {
        toml.to_string()
    } else {
        format!("{toml}\n{NO_QUOTA}")
    }
}
