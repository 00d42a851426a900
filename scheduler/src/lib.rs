//! The scheduler role: fires timed jobs into the broker, exactly once per slot however
//! many scheduler processes run, and runs shippers.
//!
//! - [`lease`]: `Lease` — the Redis lease that keeps one scheduler firing at a time.
//! - [`runner`]: `Scheduler` — the loop: hold the lease, find due slots, apply the
//!   missed-run policy, pauses and run requests, fire.
//! - [`fire`]: `Firing` — one fire: recorded first (so a slot fires once), then the job
//!   recorded in the store and published, or the shipper job (`Task::Ship`) run here and
//!   waited for at shutdown.
//! - [`shipper`]: `Shipper` — records from a source (an HTTP API, or the audit trail in
//!   the job store) to a sink (files, an HTTP collector, S3-compatible storage), window
//!   by window, resumed from a checkpoint.
//!
//! The scheduler knows nothing of the bot. Its schedules, and the command table that
//! turns a schedule's `run` text into a job, come from the `commands::LiveCatalog` it
//! is given, read again at every tick: a reload reaches the next fire. The
//! `octobox-scheduler` binary (`main.rs`) runs one `Scheduler` against RabbitMQ and Redis.

pub mod fire;
pub mod lease;
pub mod runner;
pub mod shipper;

pub use fire::SchedulerServices;
pub use lease::Lease;
pub use runner::Scheduler;
pub use shipper::{ShipReport, Shipper, PAGE_MAX};
