//! The worker role: takes jobs from the broker, runs them, stores their results.
//!
//! - [`registry`]: `NativeTask`, the trait a Rust task implements, and `TaskRegistry`,
//!   the tasks a worker can run by name.
//! - [`tasks`]: the native tasks every worker has (`echo`, `sleep`).
//! - [`runtime`]: `Worker`, the consume loop: bounded concurrency, a timeout per job,
//!   retries with backoff (`RetryPolicy`), result stored before the delivery is
//!   acknowledged, heartbeats, graceful shutdown.
//!
//! The worker knows the `jobs` contract and nothing of the bot: the bot's embedded mode
//! runs a `Worker` in its own process, exactly as `octobox-worker` will run one alone.

pub mod registry;
pub mod runtime;
pub mod tasks;

pub use registry::{NativeTask, TaskContext, TaskError, TaskRegistry};
pub use runtime::{RetryPolicy, Worker};
