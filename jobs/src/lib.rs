//! The contract between Octobox's processes.
//!
//! The bot, the worker and the scheduler never call each other; they agree on the types
//! in this crate and meet in a [`Broker`] (jobs in flight) and a [`Store`] (job records,
//! results and the event stream). Each trait has an in-memory twin used by embedded mode,
//! so a single process behaves like the distributed system, minus durability.
//!
//! - [`job`]: `Job`, `JobId`, `Task`, `Origin`, `JobResult`, `JobStatus`, `Output`, `JobRecord`.
//! - [`event`]: `Event` and `EventKind` — what the event stream carries.
//! - [`control`]: `Control` — messages every worker receives (`cancel`).
//! - [`audit`]: `AuditEntry` — one line of the audit trail; `AuditPosition` — where it is.
//! - [`approval`]: `Approval`, `Decision` — a job held until a second person decides.
//! - [`failure`]: `JobFailure` — why a job failed, the sentences workers and the dead-letter
//!   reporter write into results; `DeadLetter` — why the broker gave up on a job.
//! - [`broker`]: the `Broker` trait: publish with confirmation, consume with acknowledgement,
//!   broadcast control messages.
//! - [`store`]: the `Store` trait: job records, results, the event stream read as a consumer group.
//! - [`query`]: `JobQuery`, `JobCursor`, `JobPage` — filtered pages of the job history
//!   (`Store::job_page`).
//! - [`inventory`]: `Host`, the `InventoryStore` trait and the changes made through it
//!   (`add_to_group`, `merge_host`, ...) — hosts and groups for `servers in group`.
//! - [`schedule_store`]: the `ScheduleStore` trait: the scheduler lease, fires, pauses,
//!   shipper checkpoints.
//! - [`memory`]: `MemoryBroker`, `MemoryStore`, `MemoryScheduleStore` and `MemoryInventory`,
//!   the embedded twins.
//! - [`rabbit`]: `RabbitBroker`, the `Broker` on RabbitMQ: confirmed publishes, quorum
//!   queues with a delivery limit, dead letters, delayed jobs, recovery after a broker restart.
//! - [`redis`]: `RedisStore`, the `Store` in Redis: records, history, the event stream as a
//!   consumer group, delivery claims, worker heartbeats; retried through reconnects.
//! - [`connect`]: `connect` — opening RabbitMQ and Redis from the configuration, for every role.
//! - [`backoff`]: `Backoff` — the one policy (doubling, jittered pauses) for every retry and
//!   reconnect loop.
//! - [`tls`]: `install_provider` — the one TLS crypto provider, installed by every binary;
//!   `read_tls_file` — a CA, certificate or key file, read up to `TLS_FILE_MAX`.
//! - [`process`]: `build` — the async runtime every binary runs on (one thread by default);
//!   `run_to_exit` — a binary's `main` future to its exit code; `log_to_stderr` — their log output;
//!   `hostname`.

pub mod approval;
pub mod audit;
pub mod backoff;
pub mod broker;
pub mod connect;
pub mod control;
pub mod event;
pub mod failure;
pub mod inventory;
pub mod job;
pub mod memory;
pub mod process;
pub mod query;
pub mod rabbit;
pub mod redis;
pub mod schedule_store;
pub mod store;
pub mod tls;

pub use approval::{Approval, Decided, Decision};
pub use audit::{AuditEntry, AuditKind, AuditPosition, BadAuditPosition};
pub use broker::{Acknowledge, Broker, BrokerError, Delivery, JobStream};
pub use config::{ContainerLimits, OutputFormat};
pub use control::{Control, ControlFeed};
pub use event::{Event, EventKind};
pub use failure::{BadSignature, DeadLetter, JobFailure};
pub use inventory::{Host, InventoryError, InventoryStore};
pub use job::{Job, JobId, JobRecord, JobResult, JobStatus, Origin, Output, Task, TaskClass};
pub use query::{BadCursor, BadQuery, JobCursor, JobPage, JobQuery, MAX_FILTER_CHARS, MAX_PAGE};
pub use schedule_store::{Fire, FireKind, ScheduleStore};
pub use store::{ChildCounts, EventId, ReplyClaim, Store, StoreError, WorkerInfo, APPROVAL_KEEP};
