//! The scheduler role: fires timed jobs into the broker, exactly once per slot however
//! many scheduler processes run, and runs shippers.
//!
//! - [`table`]: `ScheduleTable` — the `[[schedule]]` entries compiled: cron, time zone,
//!   what each runs (checked against the command catalog through [`CommandJobs`]),
//!   where its result goes.
//! - [`lease`]: `Lease` — the Redis lease that keeps one scheduler firing at a time.
//! - [`runner`]: `Scheduler` — the loop: hold the lease, find due slots, apply the
//!   missed-run policy, pauses and run requests, fire.
//! - [`fire`]: `Firing` — one fire: recorded first (so a slot fires once), then the job
//!   recorded in the store and published, or the shipper run here.
//! - [`shipper`]: `Shipper` — records from an HTTP source to a sink (files, an HTTP
//!   collector, S3-compatible storage), window by window, resumed from a checkpoint.
//!
//! The scheduler knows nothing of the bot: the catalog that turns a schedule's `run`
//! text into a job is handed to it as a [`CommandJobs`].

pub mod fire;
pub mod lease;
pub mod runner;
pub mod shipper;
pub mod table;

pub use fire::{CommandJobs, SchedulerServices};
pub use lease::Lease;
pub use runner::Scheduler;
pub use shipper::{ShipReport, Shipper};
pub use table::{Schedule, ScheduleTable};
