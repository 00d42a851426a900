//! The harness for Octobox's end-to-end tests: real binaries, real processes.
//!
//! - [`binary`]: finds the workspace's built binaries (`scripts/test` builds them first).
//! - [`console`]: runs `octobox-bot --console`, either fed a whole script through a pipe
//!   ([`console::Console::run`]) or as a live session a test converses with
//!   ([`console::Console::start`]).
//! - [`services`]: private `redis-server` and RabbitMQ instances on free ports.
//! - [`processes`]: `octobox-worker` processes to kill, stop and respawn.
//! - [`pipeline`]: `Pipeline` — private Redis and RabbitMQ plus a configuration for them.
//! - [`slack_server`]: `SlackServer` — a local Slack (Web API and Socket Mode) that
//!   records what the bot sends.
//! - [`slack_bot`]: `SlackBot` — `octobox-bot` serving Slack, to kill and restart.
//! - [`bench`]: the load tool `octobox-bench` (binary in `src/bin/`): the pipeline's
//!   round trips, throughput, memory and broker ceiling, and Celery for comparison.
//!
//! Everything a test starts is killed when its handle drops, so a failing test leaves
//! no process behind.

pub mod bench;
pub mod binary;
pub mod console;
pub mod pipeline;
pub mod processes;
pub mod services;
pub mod slack_bot;
pub mod slack_server;
