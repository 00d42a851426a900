//! What a command is: the built-in declarations, the command table, who may run each
//! command, the step from a command to a `Job`, and the schedules that run commands —
//! compiled together from one configuration into a [`Catalog`], held in force by a
//! [`LiveCatalog`] that every reader shares.
//!
//! - [`builtin`]: `Builtin` — the typed id of each command the bot answers itself, and
//!   their declarations (`builtins.toml`).
//! - [`day_one`]: the commands of the day-one native tasks (`tasks.toml`), declared by
//!   default unless `[tasks]` switches their task off.
//! - [`table`]: `CommandTable`, `CommandAction`, `Executor` — what runs each command;
//!   `CommandTable::job_for`, the one place a command becomes a job; `NativeTasks`.
//! - [`access`]: `AccessPolicy` — who may run what, refusals that say who may.
//! - [`schedules`]: `ScheduleTable`, `Schedule` — `[[schedule]]` entries compiled (cron,
//!   time zone, next slots), each `run` text checked against the table.
//! - [`catalog`]: `Catalog` (all of the above, from one file) and `LiveCatalog`.
//!
//! No I/O: a configuration goes in, compiled values come out. The bot, the scheduler
//! and the SSH completion read the same `LiveCatalog`, so a `reload` reaches them all.

pub mod access;
pub mod builtin;
pub mod catalog;
pub mod day_one;
pub mod schedules;
pub mod table;

pub use access::{AccessPolicy, Refusal, ADMIN_GROUP, AUDITOR_GROUP};
pub use builtin::Builtin;
pub use catalog::{Catalog, LiveCatalog};
pub use schedules::{Schedule, ScheduleTable, ORIGIN_ADAPTER};
pub use table::{CommandAction, CommandTable, Executor, NativeTasks, NotAJob, OptionLikeValue};
