//! The bot role: takes messages from people, answers them or queues jobs, and brings
//! each job's result back to where it was asked.
//!
//! What a command is (the catalog, access, schedules) is the `commands` crate's; the bot
//! reads the catalog in force from one `commands::LiveCatalog`.
//!
//! - [`request`]: `Request`, `Answer`, `Outcome` — what adapters hand the router and get back.
//! - [`router`]: `Router` — one message from text to answer.
//! - [`builtins`]: the commands the bot answers itself (`help`, `explain`, `jobs`, …),
//!   given `BuiltinServices` (store, broker, schedules, reloader, inventory) and a
//!   `BuiltinCall` ([`builtin_call`]), never the router; `schedule_builtins` and
//!   `inventory_builtins` answer their families.
//! - [`reload`]: `check` — a configuration compiled and checked (start, `--check-config`,
//!   reload); `Reloader` — reading the file again (`reload`, SIGHUP).
//! - [`reply`]: the one place replies are worded, for every adapter.
//! - [`async_manager`]: `AsyncManager` — follows job events, delivers results exactly once
//!   (a fan-out's jobs are counted into their fan-out instead).
//! - [`fan_out`]: a command run once per host of an inventory group, answered with one
//!   summary.
//! - [`dead_letters`]: `DeadLetterReporter` — jobs the broker gave up on become failed
//!   results, so their requesters are told.
//! - [`console`]: the console adapter (standard input and output).
//! - [`ssh`]: `SshServer` — the SSH adapter (exec and interactive sessions, OpenSSH clients).
//! - [`slack`]: `SlackAdapter` — the bot in Slack (Socket Mode or the Events API).
//! - [`ansible`]: Ansible inventories (INI, YAML) read into hosts for an inventory import.
//! - [`api`]: the HTTP API (`/api/v1`): tokens, the job history, actions, live events.
//! - [`dashboard`]: the web dashboard (`/ui`) over the same reads and actions.
//! - [`bot`]: `Bot` — a bot process assembled from a configuration (embedded mode runs a
//!   worker and a scheduler in-process).

pub mod ansible;
pub mod api;
pub mod approvals;
pub mod async_manager;
pub mod audit_trail;
pub mod bot;
pub mod builtin_call;
pub mod builtins;
pub mod console;
pub mod dashboard;
pub mod dead_letters;
pub mod fan_out;
mod inventory_builtins;
pub mod reload;
pub mod reply;
pub mod request;
pub mod router;
mod schedule_builtins;
pub mod slack;
pub mod ssh;
