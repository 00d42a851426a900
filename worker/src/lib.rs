//! The worker role: takes jobs from the broker, runs them, stores their results.
//!
//! - [`registry`]: `NativeTask`, the trait a Rust task implements, and `TaskRegistry`,
//!   the tasks a worker can run by name.
//! - [`tasks`]: the native tasks every worker has (`echo`, `sleep`, and the day-one
//!   tasks `dns`, `whois`, `http_check`, `tls_expiry`, `walk_site`, set by `[tasks]`).
//! - [`cancel`]: `CancelSignal`, one running job's cancel switch: tripped by the runtime,
//!   watched by whatever runs the job.
//! - [`finished`]: `Finished` — how a run ended (its output, or a `jobs::JobFailure`),
//!   whether a native task or a container ran it.
//! - [`container`]: `ContainerRunner`, which runs container jobs in Docker (bollard),
//!   isolated, with timeouts, cancel, output limits and progress from stderr.
//! - [`own_config`]: `own_task` — a job's task is built from the worker's own catalog,
//!   never taken from the queue; a job that says otherwise is refused.
//! - [`runtime`]: `Worker`, the consume loops: bounded concurrency, a timeout per job,
//!   retries with backoff (`RetryPolicy`), result stored before the delivery is
//!   acknowledged, heartbeats, graceful shutdown.
//!
//! The worker knows the `jobs` contract and nothing of the bot: the bot's embedded mode
//! runs a `Worker` in its own process, exactly as `octobox-worker` will run one alone.

pub mod cancel;
pub mod container;
pub mod finished;
pub mod own_config;
pub mod registry;
pub mod runtime;
pub mod tasks;

pub use container::{ContainerRunner, DockerHost, EngineUnavailable};
pub use finished::Finished;
pub use registry::{NativeTask, TaskContext, TaskError, TaskRegistry};
pub use runtime::{RetryPolicy, Worker};
