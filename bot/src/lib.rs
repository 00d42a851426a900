//! The bot role: takes messages from people, answers them or queues jobs, and brings
//! each job's result back to where it was asked.
//!
//! - [`router`]: `Router`, `Request`, `Answer` — one message from text to answer.
//! - [`commands`]: `CommandTable` — the compiled catalog (built-ins from `builtins.toml`
//!   plus configured commands) and what runs each command.
//! - [`acl`]: `AccessPolicy` — who may run what, and refusals that say who may.
//! - [`builtins`]: the commands the bot answers itself (`help`, `explain`, `jobs`, …).
//! - [`reload`]: `ConfigFile` — reading the configuration again (`reload`, SIGHUP).
//! - [`reply`]: the one place replies are worded, for every adapter.
//! - [`async_manager`]: `AsyncManager` — follows job events, delivers results exactly once.
//! - [`dead_letters`]: `DeadLetterReporter` — jobs the broker gave up on become failed
//!   results, so their requesters are told.
//! - [`console`]: the console adapter (standard input and output).
//! - [`ssh`]: `SshServer` — the SSH adapter (exec and interactive sessions, OpenSSH clients).
//! - [`scheduling`]: the catalog as the scheduler's `CommandJobs`, `ScheduleDesk` for the
//!   schedule built-ins, and the assembly of a `Scheduler` (embedded and `octobox-scheduler`).
//! - [`slack`]: `SlackAdapter` — the bot in Slack (Socket Mode or the Events API).
//! - [`bot`]: `Bot` — a bot process assembled from a configuration (embedded mode).

pub mod acl;
pub mod async_manager;
pub mod bot;
pub mod builtins;
pub mod commands;
pub mod console;
pub mod dead_letters;
pub mod reload;
pub mod reply;
pub mod router;
mod schedule_builtins;
pub mod scheduling;
pub mod slack;
pub mod ssh;
