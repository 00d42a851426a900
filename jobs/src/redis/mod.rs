//! `RedisStore`: the [`Store`] that survives restarts. Job records, results, the
//! event stream, delivery claims and worker heartbeats live in Redis, so the bot, the
//! workers and the scheduler can be separate processes on separate machines.
//!
//! - `keys`: the names of everything below (prefix `octobox:` by default).
//! - `records`: job records, the history index, delivery claims, worker heartbeats.
//! - `query`: filtered pages of the history (`job_page`) through its secondary indexes,
//!   which the record scripts keep, and the index of dead-lettered jobs.
//! - `coalesce`: `Coalescer`, which sends the record and result writes that arrive while
//!   one is in flight as one script call.
//! - `schedules`: the `ScheduleStore` (scheduler lease, fires, pauses, shipper checkpoints).
//! - `trail`: the audit trail (a stream trimmed by age) and approvals.
//! - `notes`: small shared values adapters keep for a while (`Store::note_once`).
//! - `events`: the event stream, read as a consumer group, and the claim of events a
//!   dead consumer left pending.
//! - `link`: `Link`, the Redis commands go to, fixed for a URL, following failovers
//!   with sentinels.
//! - `primary`: `Primary`, the connections to the node that takes writes now, and
//!   `Settings`, how they are made.
//! - `sentinel`: `Sentinels`, asking Redis Sentinel which node is the primary now.
//! - `replicas`: `ReplicaAcks`, `[store] min_replicas`: the writes callers act on wait
//!   for replicas (`WAIT`).
//! - this module: [`RedisStore`], and the one retry helper every operation goes through.
//!
//! Needs Redis 7.0 or later (`SET ... NX GET`, `XAUTOCLAIM`).
//!
//! # Data layout
//!
//! | key | type | holds |
//! |---|---|---|
//! | `octobox:job:<id>` | HASH | `job` (JSON `Job`), `status` (`queued`, `running`, `succeeded`, `failed`, `timed_out`, `cancelled`), `worker`, `started_at` (RFC 3339), `result` (JSON `JobResult`); expires `retention` after it was recorded or finished |
//! | `octobox:jobs` | ZSET | job ids scored by creation time (ms), for `recent_jobs`; entries older than `retention` are trimmed whenever a job is recorded |
//! | `octobox:jobs:by-command:<command>` | ZSET | the jobs of one command, scored by creation time (ms); written with the record, trimmed like the history, expiring `retention` after its last write (so are the three below) |
//! | `octobox:jobs:by-requester:<identity>` | ZSET | the jobs of one requester (`adapter:user`), scored by creation time (ms) |
//! | `octobox:jobs:by-status:<status>` | ZSET | the jobs whose record holds that status now, scored by creation time (ms); a job moves from `queued` to `running` to its final status in the script that changes its record |
//! | `octobox:jobs:dead-lettered` | ZSET | the jobs the broker gave up on (`note_dead_letter`), scored by creation time (ms) |
//! | `octobox:events` | STREAM | one field `event` (JSON `Event`); capped near [`STREAM_MAXLEN`] entries (`MAXLEN ~`) |
//! | `octobox:delivered:<group>:<id>` | STRING | a consumer group's delivery claim of a job, set with `NX`, expiring after `retention` |
//! | `octobox:worker:<name>` | STRING | a worker's last heartbeat (JSON `WorkerInfo`), expiring after the heartbeat's ttl |
//! | `octobox:note:<key>` | STRING | a note an adapter keeps (`note_once`), set with `NX`, expiring after its ttl |
//! | `octobox:audit` | STREAM | the audit trail, one field `entry` (JSON `AuditEntry`); entries older than `[audit] keep` are trimmed on append (`MINID`) |
//! | `octobox:approval:<id>` | STRING | an approval (JSON `Approval`), expiring `APPROVAL_KEEP` after the approval does |
//! | `octobox:approval:<id>:decision` | STRING | its decision (JSON `Decision`), set with `NX`, expiring with it |
//! | `octobox:approvals` | ZSET | pending approvals' job ids scored by expiry (ms) |
//! | `octobox:workers` | SET | worker names, so `workers` need not `SCAN`; names whose key expired are removed while listing |
//! | `octobox:fan-out:<id>:…`, `octobox:inventory:…` | | see `fan_out` and `inventory` |
//!
//! A record is a hash so that each update is one `HSET` of the fields it changes, never
//! a read-modify-write of a whole JSON document that two processes could race on.
//!
//! # Atomicity
//!
//! The writes the contract pairs happen in one Lua script each, so no reader ever sees
//! one half: `record_job` writes the record, its history and index entries and the
//! `queued` event; `finish_job` writes the result and status, moves the job to its final
//! status's index and only then appends `finished`; `mark_started` writes `running`
//! (record and index) and appends `started` unless the record already holds a final
//! status (a late redelivery must not undo a result). Scripts rather than
//! `MULTI`/`EXEC` because the status check in `mark_started` needs a read inside the
//! transaction, and one script call is one command for the retry helper to repeat.
//!
//! # Resilience
//!
//! Every operation goes through `RedisStore::retrying`: a failure of the connection
//! class (refused, dropped, timed out, or Redis answering `LOADING` while it replays its
//! append-only file) is retried with a backoff from 50 ms doubling to 1 s, for up to
//! the retry limit (30 s unless [`RedisStore::with_retry_limit`] says otherwise); only
//! then does the caller see [`StoreError::Unavailable`], naming the server by its
//! redacted URL. The shared `ConnectionManager` reconnects by itself in between.
//!
//! With `[store] sentinels` the retry helper also follows a failover: each try goes to
//! the primary the link holds, and a try that fails as a failover makes it fail (the
//! connection class above, or `READONLY`: the node was demoted) makes the next try ask
//! the sentinels first (see `link`). A write in flight when the primary died is sent
//! again to the new one, as after any lost reply. With a URL, `READONLY` is a refusal
//! as before: the address names a replica, and trying again would not change it.
//!
//! A write whose reply was lost is sent again, so a retried `record_job` or
//! `mark_started` may append its event twice. That is acceptable: those events only
//! inform, and the record writes are idempotent. A retried `finish_job` appends nothing:
//! the script appends `finished` only with a job's first result, so each job has one. The
//! delivery claim itself is made safe to repeat by writing a token unique to the call
//! and reading back the old value (`SET NX GET`): a retry that finds its own token knows
//! the first attempt won.
//!
//! Blocking stream reads (`XREADGROUP ... BLOCK`) never run on the shared connection:
//! Redis answers a connection's commands in order, so a blocked read would stall every
//! other command multiplexed on it. They use connections of their own (see `events`).

mod coalesce;
mod events;
mod fan_out;
mod inventory;
mod keys;
mod link;
mod notes;
mod primary;
mod query;
mod quota;
mod records;
mod replicas;
mod schedules;
mod sentinel;
mod trail;

use std::future::Future;
use std::time::Duration;

use ::redis::aio::ConnectionManagerConfig;
use ::redis::{RedisError, RedisResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::approval::{Approval, Decided, Decision};
use crate::audit::{AuditEntry, AuditPosition};
use crate::backoff::Backoff;
use crate::event::Event;
use crate::job::{Job, JobId, JobRecord, JobResult, JobStatus};
use crate::query::{JobPage, JobQuery};
use crate::store::{ChildCounts, EventId, ReplyClaim, Store, StoreError, WorkerInfo};
use config::{StoreConfig, StoreServer, TlsFiles};

pub use events::STREAM_MAXLEN;
pub use keys::DEFAULT_PREFIX;
pub use query::SCAN_BUDGET;
pub use schedules::{FIRE_LOG, FIRE_RETENTION};

/// How long commands may take to answer on the shared connection before the attempt
/// counts as failed (and is retried).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one attempt to open a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The first wait between retries; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The job store in Redis. Cheap to share behind an `Arc`; every method may be called
/// from many tasks at once.
pub struct RedisStore {
    /// The Redis commands go to, and the connections to it (see `link`).
    link: std::sync::Arc<link::Link>,
    readers: events::BlockingReaders,
    claims: events::ClaimSchedule,
    /// `record_job` calls made at the same time, sent as one.
    recording: std::sync::Arc<coalesce::Coalescer<records::PendingRecord>>,
    /// `finish_job` calls made at the same time, sent as one; each answers whether the
    /// job had a record.
    finishing: std::sync::Arc<coalesce::Coalescer<records::PendingResult, bool>>,
    /// What a task sending a batch of those writes needs, built at the first write after
    /// the last change of settings (`with_*` clear it), and shared by every write.
    batches: std::sync::OnceLock<std::sync::Arc<records::BatchSender>>,
    keys: keys::Keys,
    retention: Duration,
    claim_idle: Duration,
    retry_limit: Duration,
    /// `[store] min_replicas`: the replicas the writes callers act on wait for.
    acks: replicas::ReplicaAcks,
}

impl RedisStore {
    /// The retry limit unless [`RedisStore::with_retry_limit`] changes it.
    pub const DEFAULT_RETRY_LIMIT: Duration = Duration::from_secs(30);
    /// Connects to the Redis at `config.url`, or to the primary `config.sentinels` name,
    /// waiting (within the retry limit) for it to answer, so a bot started alongside
    /// Redis does not fail on its first seconds.
    pub async fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        let acks = replicas::ReplicaAcks {
            min: config.min_replicas,
            timeout: config.replica_timeout,
        };
        let settings = connection_settings(acks);
        let link = match &config.server {
            StoreServer::Url(url) => {
                let address = url.redacted_url();
                let not_redis = |e: RedisError| {
                    StoreError::unavailable_by(
                        format!(
                            "the store URL {address} is not a Redis URL \
                             (redis://[:password@]host:port/db, or rediss:// for TLS): {e}"
                        ),
                        e,
                    )
                };
                let client = match tls_files(&config.tls)? {
                    None => ::redis::Client::open(url.expose()).map_err(not_redis)?,
                    Some(certificates) => {
                        ::redis::Client::build_with_tls(url.expose(), certificates)
                            .map_err(not_redis)?
                    }
                };
                link::Link::fixed(client, address.clone(), &settings).map_err(|e| {
                    StoreError::unavailable_by(
                        format!("could not prepare a connection to Redis at {address}: {e}"),
                        e,
                    )
                })?
            }
            StoreServer::Sentinels(sentinels) => {
                link::Link::through(sentinel::Sentinels::new(sentinels), settings)
            }
        };
        let store = RedisStore {
            link: std::sync::Arc::new(link),
            readers: events::BlockingReaders::default(),
            claims: events::ClaimSchedule::default(),
            recording: Default::default(),
            finishing: Default::default(),
            batches: Default::default(),
            keys: keys::Keys::new(DEFAULT_PREFIX),
            retention: config.retention,
            claim_idle: config.reclaim_after,
            retry_limit: Self::DEFAULT_RETRY_LIMIT,
            acks,
        };
        store
            .retrying("answer a PING", |redis| {
                let mut con = redis.shared.clone();
                async move { ::redis::cmd("PING").query_async::<()>(&mut con).await }
            })
            .await?;
        tracing::info!(
            store = %store.link.name(),
            min_replicas = acks.min,
            "connected to the job store"
        );
        Ok(store)
    }

    /// Sets how long an event may stay unacknowledged before another consumer of the
    /// group claims it (the consumer it was handed to is presumed dead).
    pub fn with_claim_idle(mut self, idle: Duration) -> Self {
        self.claim_idle = idle;
        self.batches = Default::default();
        self
    }

    /// Sets how long an operation keeps retrying through connection failures before it
    /// reports [`StoreError::Unavailable`].
    pub fn with_retry_limit(mut self, limit: Duration) -> Self {
        self.retry_limit = limit;
        self.batches = Default::default();
        self
    }

    /// Puts every key under `prefix` instead of [`DEFAULT_PREFIX`], so several stores
    /// (deployments, tests) can share one Redis database without seeing each other.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.keys = keys::Keys::new(prefix);
        self.batches = Default::default();
        self
    }

    /// Runs `attempt` until it succeeds, retrying failures of the connection class with
    /// backoff for up to the retry limit, counted from the first failure (so a long
    /// blocking read does not use it up); one try may run past the limit by its own
    /// timeouts (connect 1 s, answer 3 s). Any other error is reported at once.
    ///
    /// `what` completes "while trying to ..." in logs and errors.
    async fn retrying<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T, StoreError>
    where
        F: FnMut(std::sync::Arc<primary::Primary>) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        retrying(&self.link, self.retry_limit, what, attempt).await
    }

    /// [`RedisStore::retrying`] for a write callers act on, which waits for `min_replicas`
    /// (see `replicas`): `attempt` answers the write's reply and how many replicas
    /// acknowledged it.
    async fn acknowledged<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T, StoreError>
    where
        F: FnMut(std::sync::Arc<primary::Primary>) -> Fut,
        Fut: Future<Output = RedisResult<(T, u32)>>,
    {
        let (reply, acknowledged) = self.retrying(what, attempt).await?;
        self.acks.check(acknowledged, self.link.name(), what)?;
        Ok(reply)
    }
}

/// How the connections to Redis are made: one quick second try inside the connection
/// manager (the longer wait is the retry helper's, so one place decides how long to keep
/// trying); the connection of the writes that wait for replicas answers within the
/// response timeout plus that wait.
fn connection_settings(acks: replicas::ReplicaAcks) -> primary::Settings {
    let manager = |response: Duration| {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response))
            .set_number_of_retries(1)
            .set_min_delay(FIRST_BACKOFF)
            .set_max_delay(MAX_BACKOFF)
    };
    primary::Settings {
        shared: manager(RESPONSE_TIMEOUT),
        acked: acks
            .wanted()
            .then(|| manager(RESPONSE_TIMEOUT + acks.timeout)),
    }
}

/// [`RedisStore::retrying`], for work that runs apart from the store (a coalesced write's
/// own task): `link` is the store's, `limit` the retry limit. Each try gets the primary
/// in use; a try that fails in a way a failover explains tells the link, which asks the
/// sentinels again before the next (a fixed URL: nothing changes).
async fn retrying<T, F, Fut>(
    link: &link::Link,
    limit: Duration,
    what: &str,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut(std::sync::Arc<primary::Primary>) -> Fut,
    Fut: Future<Output = RedisResult<T>>,
{
    let address = link.name();
    let mut first_failure: Option<Instant> = None;
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let mut failures = 0u32;
    loop {
        let outcome = match link.primary().await {
            Ok(redis) => {
                let generation = redis.generation;
                attempt(redis).await.map_err(|err| (err, Some(generation)))
            }
            Err(err) => Err((err, None)),
        };
        let err = match outcome {
            Ok(value) => {
                if let Some(since) = first_failure {
                    tracing::info!(
                        store = %address,
                        failures,
                        after_ms = since.elapsed().as_millis() as u64,
                        "the job store answers again while trying to {what}"
                    );
                }
                return Ok(value);
            }
            Err((err, generation)) => {
                if let (Some(generation), true) = (generation, link.retries(&err)) {
                    link.lost(generation, &err);
                }
                err
            }
        };
        if !link.retries(&err) {
            return Err(StoreError::unavailable_by(
                format!("Redis at {address} refused to {what}: {err}"),
                err,
            ));
        }
        failures += 1;
        let since = *first_failure.get_or_insert_with(Instant::now);
        let left = limit.saturating_sub(since.elapsed());
        if left.is_zero() {
            tracing::error!(
                store = %address,
                failures,
                error = %err,
                "giving up on the job store while trying to {what}"
            );
            return Err(StoreError::unavailable_by(
                format!(
                    "Redis at {} did not answer within {} ({failures} tries) while trying \
                     to {what}; the last error was: {err}",
                    address,
                    lexicon::format_duration(limit),
                ),
                err,
            ));
        }
        if failures == 1 {
            tracing::warn!(
                store = %address,
                error = %err,
                "the job store did not answer; retrying while trying to {what}"
            );
        } else {
            tracing::debug!(store = %address, failures, error = %err, "retrying");
        }
        // The last wait ends at the limit, so the last try comes as late as allowed.
        tokio::time::sleep(backoff.next_pause().min(left)).await;
    }
}

/// The private CA and client certificate `tls` names, read now so that a missing or
/// unreadable file is named at start; `None` when it names none (the system's roots).
fn tls_files(tls: &TlsFiles) -> Result<Option<::redis::TlsCertificates>, StoreError> {
    let read = |path: &std::path::Path, what: &str| {
        crate::tls::read_tls_file(path, &format!("the store's {what}"))
            .map_err(|e| StoreError::unavailable(e.to_string()))
    };
    let root_cert = match &tls.ca_file {
        Some(path) => Some(read(path, "CA file")?),
        None => None,
    };
    let client_tls = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => Some(::redis::ClientTlsConfig {
            client_cert: read(cert, "client certificate")?,
            client_key: read(key, "client key")?,
        }),
        _ => None,
    };
    if root_cert.is_none() && client_tls.is_none() {
        return Ok(None);
    }
    Ok(Some(::redis::TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// Whether a failure says "Redis is not reachable right now" (worth retrying) rather
/// than "Redis refused this command" (which will fail again the same way).
fn is_transient(err: &RedisError) -> bool {
    (err.is_io_error() && !is_refused_tls(err))
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || matches!(err.code(), Some("LOADING" | "TRYAGAIN" | "MASTERDOWN"))
}

/// Whether a failure is the TLS handshake refusing the server (a certificate our CA did
/// not sign, a name that does not match) or the connection: trying again meets the same
/// certificate, so it is reported at once. rustls reports these as invalid data.
fn is_refused_tls(err: &RedisError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::InvalidData {
                return true;
            }
        }
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        cause = e.source();
    }
    // The connection manager hands some handshake failures on as text alone.
    let text = err.to_string();
    text.contains("invalid peer certificate") || text.contains("certificate verify failed")
}

/// Whole milliseconds for a Redis argument (`PX`, `BLOCK`, idle times), saturating;
/// callers raise it to 1 where Redis refuses 0.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl Store for RedisStore {
    async fn record_job(&self, job: &Job) -> Result<(), StoreError> {
        self.record(job).await
    }

    async fn mark_started(
        &self,
        id: JobId,
        worker: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.start(id, worker, at).await
    }

    async fn finish_job(&self, result: &JobResult) -> Result<(), StoreError> {
        self.finish(result).await
    }

    async fn append_event(&self, event: &Event) -> Result<EventId, StoreError> {
        self.append(event).await
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.record_of(id).await
    }

    async fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        self.history(limit).await
    }

    async fn job_page(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        self.page(query).await
    }

    async fn note_dead_letter(&self, job: &Job) -> Result<(), StoreError> {
        self.note_dead(job).await
    }

    async fn note_child_ended(
        &self,
        parent: JobId,
        child: JobId,
        status: JobStatus,
    ) -> Result<ChildCounts, StoreError> {
        self.note_child(parent, child, status).await
    }

    async fn read_events(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<(EventId, Event)>, StoreError> {
        self.read(group, consumer, max, block).await
    }

    async fn ack_events(&self, group: &str, ids: &[EventId]) -> Result<(), StoreError> {
        self.ack(group, ids).await
    }

    async fn claim_reply(
        &self,
        id: JobId,
        group: &str,
        adapters: &[String],
    ) -> Result<ReplyClaim, StoreError> {
        self.claim(id, group, adapters).await
    }

    async fn claim_carried_reply(&self, id: JobId, group: &str) -> Result<bool, StoreError> {
        self.claim_carried(id, group).await
    }

    async fn note_once(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.note_once(key, value, ttl).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let answered = match self.link.primary().await {
            Ok(redis) => {
                let mut con = redis.shared.clone();
                let answer = ::redis::cmd("PING").query_async::<String>(&mut con).await;
                if let Err(err) = &answer {
                    if self.link.retries(err) {
                        self.link.lost(redis.generation, err);
                    }
                }
                answer.map(drop)
            }
            Err(err) => Err(err),
        };
        answered.map_err(|e| {
            StoreError::unavailable_by(
                format!("Redis at {} does not answer: {e}", self.link.name()),
                e,
            )
        })
    }

    async fn note(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read_note(key).await
    }

    async fn heartbeat(&self, worker: &WorkerInfo, ttl: Duration) -> Result<(), StoreError> {
        self.beat(worker, ttl).await
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        self.live_workers().await
    }

    async fn take_place(
        &self,
        key: &str,
        limit: u32,
        id: JobId,
        until: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.take_place_in(key, limit, id, until).await
    }

    async fn give_back_place(&self, key: &str, id: JobId) -> Result<(), StoreError> {
        self.give_back_place_in(key, id).await
    }

    async fn count_use(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        self.count_use_in(key, limit, window).await
    }

    async fn append_audit(&self, entry: &AuditEntry, keep: Duration) -> Result<(), StoreError> {
        self.append_audit_entry(entry, keep).await
    }

    async fn audit(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.read_audit(from, until, limit).await
    }

    async fn audit_page(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<AuditPosition>,
        limit: usize,
    ) -> Result<Vec<(AuditPosition, AuditEntry)>, StoreError> {
        self.read_audit_page(from, until, after, limit).await
    }

    async fn hold_for_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        self.hold_approval(approval).await
    }

    async fn pending_approvals(&self, limit: usize) -> Result<Vec<Approval>, StoreError> {
        self.pending(limit).await
    }

    async fn approval(
        &self,
        id: JobId,
    ) -> Result<Option<(Approval, Option<Decision>)>, StoreError> {
        self.approval_and_decision(id).await
    }

    async fn decide_approval(&self, id: JobId, decision: &Decision) -> Result<Decided, StoreError> {
        self.decide(id, decision).await
    }

    fn describe(&self) -> String {
        format!("Redis at {}", self.link.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ::redis::ErrorKind;

    #[test]
    fn connection_failures_are_transient_and_refusals_are_not() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let dropped = RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        let timeout = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(is_transient(&refused));
        assert!(is_transient(&dropped));
        assert!(is_transient(&timeout));

        let wrong_type = RedisError::from((ErrorKind::UnexpectedReturnType, "not a hash"));
        let auth = RedisError::from((ErrorKind::AuthenticationFailed, "bad password"));
        assert!(!is_transient(&wrong_type));
        assert!(!is_transient(&auth));
    }

    #[tokio::test]
    async fn readonly_moves_a_store_through_sentinels_and_is_a_refusal_by_url() {
        let readonly = RedisError::from((
            ErrorKind::Server(::redis::ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        let settings = connection_settings(replicas::ReplicaAcks {
            min: 0,
            timeout: Duration::from_secs(1),
        });
        let client = ::redis::Client::open("redis://127.0.0.1:1/0").unwrap();
        let by_url = link::Link::fixed(client, "redis://127.0.0.1:1".into(), &settings).unwrap();
        assert!(
            !by_url.retries(&readonly),
            "a URL that names a replica stays refused"
        );

        let sentinels = config::SentinelsConfig {
            sentinels: vec![
                config::SentinelAddress {
                    host: "10.0.0.5".into(),
                    port: 26379,
                },
                config::SentinelAddress {
                    host: "::1".into(),
                    port: 26380,
                },
            ],
            master_name: "octobox".into(),
            password: Some(config::Secret::new("hunter2")),
            sentinel_password: Some(config::Secret::new("hunter3")),
            db: 0,
        };
        let through = link::Link::through(sentinel::Sentinels::new(&sentinels), settings);
        assert!(
            through.retries(&readonly),
            "a demoted primary: ask the sentinels again"
        );
        assert_eq!(
            through.name(),
            "primary \"octobox\" of sentinels 10.0.0.5:26379, [::1]:26380"
        );
    }

    #[tokio::test]
    async fn a_url_that_is_not_redis_is_refused_without_showing_it() {
        let config = StoreConfig::new(config::Secret::new("http://u:hunter2@h:1/"));
        let Err(err) = RedisStore::connect(&config).await else {
            panic!("an http URL must be refused");
        };
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("http://h:1"), "{text}");
    }
}
