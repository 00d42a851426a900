//! The `Store`: job records, results, and the event stream.
//!
//! Writes that must be seen together happen in one call (a result and its `finished`
//! event, a record and its `queued` event), so an implementation can make them atomic.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::approval::{Approval, Decided, Decision};
use crate::audit::{AuditEntry, AuditPosition};
use crate::event::Event;
use crate::job::{Job, JobId, JobRecord, JobResult, JobStatus, TaskClass};
use crate::query::{BadQuery, JobPage, JobQuery};

/// How long an approval's record and decision are kept after it expires.
pub const APPROVAL_KEEP: Duration = Duration::from_secs(7 * 86_400);

/// A position in the event stream, as the store names it (Redis: `1700000000000-0`).
pub type EventId = String;

/// What a worker reports about itself in its heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkerInfo {
    pub name: String,
    pub host: String,
    pub classes: Vec<TaskClass>,
    pub concurrency: usize,
    pub running: usize,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

/// What [`Store::claim_reply`] found.
#[derive(Debug)]
pub enum ReplyClaim {
    /// The caller holds the claim and delivers the reply; this is the job's record.
    Claimed(Box<JobRecord>),
    /// The job was asked through an adapter the caller does not serve.
    Elsewhere,
    /// Someone claimed this reply before: it is delivered, or being delivered.
    Taken,
    /// The job has no record: it expired, or was never written.
    Unknown,
}

/// What went wrong with a store. Cloned to every caller of a batched write, so the
/// client's error is kept behind an `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer, or refused: `reason` is the whole sentence (naming the
    /// server and what was being done, quoting the client's error), `source` that error.
    #[error("the job store is unavailable: {reason}")]
    Unavailable {
        reason: String,
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    #[error("the job store holds data this version cannot read ({what}): {reason}")]
    Corrupt { what: String, reason: String },
    #[error("job {0} is not in the store")]
    UnknownJob(JobId),
    /// The primary took a write, but fewer replicas than `[store] min_replicas` asks for
    /// acknowledged it within `replica_timeout`: it may be lost if the primary fails now,
    /// so it does not count as done (the caller tries again or refuses).
    #[error(
        "Redis at {server} took the write ({what}) but only {acknowledged} of the {wanted} replica \
         acknowledgements [store] min_replicas asks for arrived within {}; it does not count \
         as done",
        lexicon::format_duration(*.waited)
    )]
    NotReplicated {
        server: String,
        what: String,
        acknowledged: u32,
        wanted: u32,
        waited: std::time::Duration,
    },
    /// A history query the store refuses to run (a filter too long).
    #[error("the job history query was refused: {0}")]
    BadQuery(#[from] BadQuery),
}

impl StoreError {
    /// [`StoreError::Unavailable`] for a failure with no underlying error.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        StoreError::Unavailable {
            reason: reason.into(),
            source: None,
        }
    }

    /// [`StoreError::Unavailable`] caused by `source`, which `reason` quotes.
    pub fn unavailable_by(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Unavailable {
            reason: reason.into(),
            source: Some(Arc::new(source)),
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Asks the store whether it answers now (for `/readyz`), once, without retrying.
    /// The in-memory store always does.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Records a new job as queued and appends its `queued` event. A record that exists
    /// already is left as it is (its worker may have written it first).
    async fn record_job(&self, job: &Job) -> Result<(), StoreError>;

    /// Marks a job as running on `worker` and appends its `started` event; a job that has
    /// its result already is left alone. `UnknownJob` if the job has no record.
    async fn mark_started(
        &self,
        id: JobId,
        worker: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Stores a job's result and then appends its `finished` event.
    async fn finish_job(&self, result: &JobResult) -> Result<(), StoreError>;

    /// Appends an event that changes no record (`progress`).
    async fn append_event(&self, event: &Event) -> Result<EventId, StoreError>;

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError>;

    /// The newest jobs first, at most `limit`.
    async fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError>;

    /// One page of the history, newest first: the jobs matching every filter of `query`,
    /// after `query.after` (exclusive), at most its page size. Each call costs bounded
    /// time: a store may stop before the page is full, with `next` set, and the caller
    /// goes on from there. `StoreError::BadQuery` for a filter past its length limit.
    async fn job_page(&self, query: &JobQuery) -> Result<JobPage, StoreError>;

    /// Marks job `job` as one the broker gave up on, for `JobQuery::dead_lettered`; the
    /// dead-letter reporter calls it just before it stores the job's failed result.
    async fn note_dead_letter(&self, job: &Job) -> Result<(), StoreError>;

    /// Notes that `child`, one of fan-out `parent`'s jobs, ended with `status`: how many
    /// of the fan-out's jobs have ended so far, by status. A child noted again (its
    /// `finished` event read twice) counts once.
    async fn note_child_ended(
        &self,
        parent: JobId,
        child: JobId,
        status: JobStatus,
    ) -> Result<ChildCounts, StoreError>;

    /// Reads events as `consumer` in consumer group `group`: events not yet handed to
    /// the group, waiting up to `block` for one to arrive. An event stays pending for
    /// the group until acknowledged.
    async fn read_events(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<(EventId, Event)>, StoreError>;

    async fn ack_events(&self, group: &str, ids: &[EventId]) -> Result<(), StoreError>;

    /// Reads job `id`'s record and, if the job was asked through one of `adapters`,
    /// claims the right to deliver its reply for consumer group `group`:
    /// [`ReplyClaim::Claimed`] for the group's first caller only. This is what makes
    /// delivery exactly-once when events are read more than once; each adapter is served
    /// by one group. Reading and claiming together cost one round trip, not two.
    async fn claim_reply(
        &self,
        id: JobId,
        group: &str,
        adapters: &[String],
    ) -> Result<ReplyClaim, StoreError>;

    /// Claims job `id`'s reply for group `group` without reading the record, for an
    /// event that carried it ([`Event::record`]): `true` for the group's first caller
    /// only. The reader may deliver while the claim is on its way: no other reader of
    /// the group is handed that event unless this one stops acknowledging, and one that
    /// takes it over then finds the claim and uses [`Store::claim_reply`].
    async fn claim_carried_reply(&self, id: JobId, group: &str) -> Result<bool, StoreError>;

    /// Keeps `value` under `key` for `ttl`, unless `key` is already kept: `true` for the
    /// first caller only. Adapters use it to agree across bot processes: an event already
    /// handled, the message that shows a job's status.
    async fn note_once(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// The value kept under `key`, if it has not expired.
    async fn note(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Records that a worker is alive, with what it is doing; it is listed by `workers`
    /// until `ttl` passes without another heartbeat.
    async fn heartbeat(&self, worker: &WorkerInfo, ttl: Duration) -> Result<(), StoreError>;

    /// The workers whose last heartbeat has not expired, by name.
    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError>;

    /// Takes one of `limit` places under `key` for job `id`. A place is held until the
    /// job's record is final, or `until` at the latest (so a job that vanished frees its
    /// place); counting happens where the places are, so every bot sharing this store
    /// counts together. `None`: taken. `Some(at)`: every place is held, and `at` is when
    /// the soonest of them is freed at the latest.
    async fn take_place(
        &self,
        key: &str,
        limit: u32,
        id: JobId,
        until: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Gives back the place `id` took under `key` (its job was not queued after all).
    async fn give_back_place(&self, key: &str, id: JobId) -> Result<(), StoreError>;

    /// Counts one use of `key` in the current `window` (fixed windows, aligned on the
    /// clock). `None`: within `limit`. `Some(wait)`: past it, until the window ends in
    /// `wait`.
    async fn count_use(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<Option<Duration>, StoreError>;

    /// Appends `entry` to the audit trail. Entries older than `keep` are forgotten.
    async fn append_audit(&self, entry: &AuditEntry, keep: Duration) -> Result<(), StoreError>;

    /// The audit entries appended from `from` (inclusive) until `until` (exclusive),
    /// oldest first, at most `limit`.
    async fn audit(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// One page of the audit entries appended from `from` (inclusive) until `until`
    /// (exclusive), each with its position, oldest first, at most `limit`: those after
    /// position `after` (exclusive), or from the start of the range. Asking again after
    /// the last position of a page reads the next one; no entry is skipped or read twice,
    /// however many were appended in one millisecond. A range is in the store's clock
    /// (the positions'), as [`Store::audit`]'s is.
    async fn audit_page(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<AuditPosition>,
        limit: usize,
    ) -> Result<Vec<(AuditPosition, AuditEntry)>, StoreError>;

    /// Keeps `approval` pending until it is decided or expires; its record and decision
    /// are kept [`APPROVAL_KEEP`] past its expiry.
    async fn hold_for_approval(&self, approval: &Approval) -> Result<(), StoreError>;

    /// The pending approvals, the soonest to expire first, at most `limit`.
    async fn pending_approvals(&self, limit: usize) -> Result<Vec<Approval>, StoreError>;

    /// Approval `id` and its decision, if one was made.
    async fn approval(&self, id: JobId)
        -> Result<Option<(Approval, Option<Decision>)>, StoreError>;

    /// Stores `decision` for approval `id` unless a decision was stored first, and takes
    /// it off the pending list: [`Decided::Now`] for the first caller only, whichever bot
    /// it is. A retry whose first attempt landed still finds its own decision.
    async fn decide_approval(&self, id: JobId, decision: &Decision) -> Result<Decided, StoreError>;

    /// A short description for logs: "in-memory store", "Redis at host:port".
    fn describe(&self) -> String;

    /// Names the deployment this store serves: every process sharing this store is one
    /// Octobox. Labels carry it so that one Octobox never touches another's resources on a
    /// shared machine (the Docker engine). By default, what `describe` says.
    fn scope(&self) -> String {
        self.describe()
    }
}

/// How far a fan-out has got: its jobs ended so far, by status (`JobStatus::as_str`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildCounts {
    pub by_status: std::collections::BTreeMap<String, usize>,
}

impl ChildCounts {
    pub fn ended(&self) -> usize {
        self.by_status.values().sum()
    }

    pub fn succeeded(&self) -> usize {
        self.by_status
            .get(JobStatus::Succeeded.as_str())
            .copied()
            .unwrap_or(0)
    }
}
