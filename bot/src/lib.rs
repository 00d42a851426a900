//! The bot role: takes messages from people, answers them or queues jobs, and brings
//! each job's result back to where it was asked.
//!
//! - [`router`]: `Router`, `Request`, `Answer` — one message from text to answer.
//! - [`commands`]: `CommandTable` — the compiled catalog (built-ins from `builtins.toml`
//!   plus configured commands) and what runs each command.
//! - [`acl`]: `AccessPolicy` — who may run what, and refusals that say who may.
//! - [`builtins`]: the commands the bot answers itself (`help`, `explain`, `jobs`, …).
//! - [`reply`]: the one place replies are worded, for every adapter.
//! - [`async_manager`]: `AsyncManager` — follows job events, delivers results exactly once.
//! - [`dead_letters`]: `DeadLetterReporter` — jobs the broker gave up on become failed
//!   results, so their requesters are told.
//! - [`console`]: the console adapter (standard input and output).
//! - [`slack`]: `SlackAdapter` — the bot in Slack (Socket Mode or the Events API).
//! - [`bot`]: `Bot` — a bot process assembled from a configuration (embedded mode).

pub mod acl;
pub mod async_manager;
pub mod bot;
pub mod builtins;
pub mod commands;
pub mod console;
pub mod dead_letters;
pub mod reply;
pub mod router;
pub mod slack;
