//! The scheduler role: fires timed jobs (cron schedules, shippers) into the broker.
//!
//! Nothing is scheduled yet: this crate reserves the role's place in the workspace so
//! the dependency direction (scheduler knows `jobs`, nothing knows the scheduler but the
//! bot's embedded mode) is fixed from the start.
