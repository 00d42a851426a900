//! Job records, the history index and its secondary indexes (read by `query`), delivery
//! claims and worker heartbeats.
//!
//! The three writes that change a record and append an event (`record_job`,
//! `mark_started`, `finish_job`) are Lua scripts, so each is atomic and is one command
//! for the retry helper to repeat. Repeating one is harmless to the record (the same
//! fields get the same values); it may append the event twice, which delivery
//! deduplicates (see the module header of `redis`). As in the in-memory twin, starting
//! or finishing a job that is not in the store is `StoreError::UnknownJob`.
//!
//! `record_job` and `finish_job` are made for every job, so the calls that arrive while
//! one is in flight go together in the next script call (`coalesce`): under load, one
//! call records or finishes many jobs, each still atomically.
//!
//! Why scripts and not `MULTI` transactions of the same plain commands: both were
//! measured. A transaction cost Redis 14% less CPU per job, but the bot and the worker
//! spent as much more parsing one reply per command instead of one per write.
//!
//! Why the reply claim is not a script too: it was measured coalesced into one
//! (`SET NX GET` and `HGETALL` per job, many jobs per call). The bot spent 4% less CPU
//! per job, Redis 14% more (a command run from Lua, and its reply turned into a Lua
//! table and back, costs more than the same command pipelined): the claim stays two
//! pipelined commands.
//!
//! A record this version cannot read is `StoreError::Corrupt`, naming its key, when asked
//! for by id; `recent_jobs` skips it with a warning so one bad record does not hide the
//! history.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::Script;
use chrono::{DateTime, SecondsFormat, Utc};

use super::events::STREAM_MAXLEN;
use super::link::Link;
use super::replicas::ReplicaAcks;
use super::{millis, retrying, RedisStore};
use crate::event::{Event, EventKind};
use crate::job::{Job, JobId, JobRecord, JobResult, JobStatus};
use crate::store::{ReplyClaim, StoreError, WorkerInfo};

/// Records a batch of jobs (see `coalesce`). KEYS: history, events, the `queued`
/// status index, then for each job: its record, its command's index, its requester's
/// index. A record that exists is left as it is: the job's worker may have written it
/// first (the bot records and publishes at the same time), or this is a retry of a write
/// whose answer was lost; only a new record enters the `queued` index (one that exists
/// holds its status already). ARGV: retention (ms), history cutoff (ms), stream cap, then
/// for each job: job JSON, job id, created (ms), event JSON.
///
/// The history and each index written are trimmed to the retention and given it as
/// their expiry, so an index nobody writes again disappears (see `query`).
static RECORD_JOBS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local touched, indexes = {}, {}
local function index(key, score, id)
  redis.call('ZADD', key, score, id)
  if not touched[key] then
    touched[key] = true
    indexes[#indexes + 1] = key
  end
end
for j = 0, (#KEYS - 3) / 3 - 1 do
  local k, a = 4 + j * 3, 4 + j * 4
  if redis.call('EXISTS', KEYS[k]) == 0 then
    redis.call('HSET', KEYS[k], 'job', ARGV[a], 'status', 'queued')
    redis.call('PEXPIRE', KEYS[k], ARGV[1])
    index(KEYS[3], ARGV[a + 2], ARGV[a + 1])
  end
  redis.call('ZADD', KEYS[1], ARGV[a + 2], ARGV[a + 1])
  index(KEYS[k + 1], ARGV[a + 2], ARGV[a + 1])
  index(KEYS[k + 2], ARGV[a + 2], ARGV[a + 1])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[a + 3])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
for _, key in ipairs(indexes) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[2])
  redis.call('PEXPIRE', key, ARGV[1])
end
return (#KEYS - 3) / 3
",
    )
});

/// One job's part of a `RECORD_JOBS` call.
pub(super) struct PendingRecord {
    key: String,
    by_command: String,
    by_requester: String,
    job_json: String,
    id: String,
    created: i64,
    event: String,
}

/// KEYS: record, events, history, the `queued` and `running` status indexes. ARGV:
/// worker, started at (RFC 3339), event JSON, stream cap, job id, retention (ms), index
/// cutoff (ms). Answers `started`, `final` (left alone: a result is in) or `unknown`.
/// The job moves from the `queued` index to `running`, with the score it had (its
/// creation time; the history's for a job recorded before the indexes existed).
static MARK_STARTED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'unknown' end
if status ~= 'queued' and status ~= 'running' then return 'final' end
redis.call('HSET', KEYS[1], 'status', 'running', 'worker', ARGV[1], 'started_at', ARGV[2])
local id = ARGV[5]
local score = redis.call('ZSCORE', KEYS[4], id) or redis.call('ZSCORE', KEYS[5], id)
  or redis.call('ZSCORE', KEYS[3], id)
if score then
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZADD', KEYS[5], score, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[7])
  redis.call('PEXPIRE', KEYS[5], ARGV[6])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'event', ARGV[3])
return 'started'
",
    )
});

/// Stores a batch of results (see `coalesce`). KEYS: events, history, the status
/// indexes (`queued`, `running`, `succeeded`, `failed`, `timed_out`, `cancelled`), then
/// one record per job. ARGV: retention (ms), stream cap, largest record carried in an
/// event (bytes), whether replicas must acknowledge (`1`/`0`), index cutoff (ms), then
/// for each job: result JSON, status, worker, started at (RFC 3339), event JSON, job id.
/// Answers, per job, 1 (finished), 2 (it already had a result: left alone, nothing
/// appended) or 0 (no record).
///
/// Each job appends exactly one `finished` event, on its first result: a repeated
/// finish (a retry whose first attempt landed, a job run again after its worker died
/// before the ack) changes nothing. A record small enough rides in the event (its `job`
/// and `result` fields beside `event`; the result holds the status, worker and times),
/// so a reader can deliver the reply without reading the record back (see `events`).
/// The first result also moves the job from the index of the status it had to that of
/// its final status, with the score it had there (the history's when it had none: a job
/// recorded before the indexes existed).
///
/// When replicas must acknowledge, a repeated finish writes the status it found again:
/// `WAIT` counts replicas that have the writes of its own connection, and the first
/// result may have come through another (another worker's, whose `WAIT` failed); the
/// replication stream is one sequence, so a replica that has this write has that one.
static FINISH_JOBS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local by_status = {queued = KEYS[3], running = KEYS[4], succeeded = KEYS[5], failed = KEYS[6],
  timed_out = KEYS[7], cancelled = KEYS[8]}
local touched, indexes = {}, {}
local out = {}
for i = 9, #KEYS do
  local a = 6 + (i - 9) * 6
  local had = redis.call('HMGET', KEYS[i], 'status', 'job')
  if not had[1] then
    out[#out + 1] = 0
  elseif had[1] ~= 'queued' and had[1] ~= 'running' then
    if ARGV[4] == '1' then redis.call('HSET', KEYS[i], 'status', had[1]) end
    out[#out + 1] = 2
  else
    redis.call('HSET', KEYS[i], 'result', ARGV[a], 'status', ARGV[a + 1], 'worker', ARGV[a + 2])
    redis.call('HSETNX', KEYS[i], 'started_at', ARGV[a + 3])
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    if had[2] and #had[2] + #ARGV[a] <= tonumber(ARGV[3]) then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[a + 4],
        'job', had[2], 'result', ARGV[a])
    else
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[a + 4])
    end
    local id, from, to = ARGV[a + 5], by_status[had[1]], by_status[ARGV[a + 1]]
    local score = redis.call('ZSCORE', from, id) or redis.call('ZSCORE', KEYS[2], id)
    if score and to then
      redis.call('ZREM', from, id)
      redis.call('ZADD', to, score, id)
      if not touched[to] then
        touched[to] = true
        indexes[#indexes + 1] = to
      end
    end
    out[#out + 1] = 1
  end
end
for _, key in ipairs(indexes) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[5])
  redis.call('PEXPIRE', key, ARGV[1])
end
return out
",
    )
});

/// The largest record (job and result JSON) a `finished` event carries: most replies
/// are a line or two; a larger one is read from the record instead, so the stream (kept
/// to [`STREAM_MAXLEN`] entries) stays small.
pub(super) const RECORD_IN_EVENT_MAX: usize = 4096;

/// One job's part of a `FINISH_JOBS` call.
pub(super) struct PendingResult {
    key: String,
    id: String,
    result_json: String,
    status: String,
    worker: String,
    started_at: String,
    event: String,
}

/// What sending a batch of record or result writes needs, shared by every write (and by
/// the task that sends; see `coalesce`), so a write clones one `Arc` and no strings.
pub(super) struct BatchSender {
    link: Arc<Link>,
    history: String,
    events: String,
    /// The status indexes, in the order `FINISH_JOBS` takes them.
    by_status: [String; 6],
    retention: Duration,
    retry_limit: Duration,
    acks: ReplicaAcks,
}

impl BatchSender {
    /// Records one batch of jobs in one `RECORD_JOBS` call, on a replica too when
    /// `min_replicas` asks (`replicas`).
    async fn record(&self, batch: Vec<PendingRecord>) -> Result<Vec<()>, StoreError> {
        let retention = millis(self.retention);
        let cutoff = Utc::now().timestamp_millis() - retention as i64;
        let what = match batch.len() {
            1 => "record a job",
            _ => "record jobs",
        };
        let (_, acknowledged) = retrying(&self.link, self.retry_limit, what, |redis| {
            let mut call = RECORD_JOBS.prepare_invoke();
            call.key(&self.history)
                .key(&self.events)
                .key(&self.by_status[0]);
            call.arg(retention.max(1)).arg(cutoff).arg(STREAM_MAXLEN);
            for job in &batch {
                call.key(&job.key)
                    .key(&job.by_command)
                    .key(&job.by_requester);
                call.arg(&job.job_json).arg(&job.id);
                call.arg(job.created).arg(&job.event);
            }
            async move { self.acks.invoke::<usize>(&redis, &RECORD_JOBS, &call).await }
        })
        .await?;
        self.acks.check(acknowledged, self.link.name(), what)?;
        Ok(vec![(); batch.len()])
    }

    /// Stores one batch of results in one `FINISH_JOBS` call, on a replica too when
    /// `min_replicas` asks; answers, per job, whether it had a record (a result already
    /// there counts: it stands).
    async fn finish(&self, batch: Vec<PendingResult>) -> Result<Vec<bool>, StoreError> {
        let what = match batch.len() {
            1 => "store a job's result",
            _ => "store jobs' results",
        };
        let retention = millis(self.retention);
        let cutoff = Utc::now().timestamp_millis() - retention as i64;
        let (answers, acknowledged) = retrying(&self.link, self.retry_limit, what, |redis| {
            let mut call = FINISH_JOBS.prepare_invoke();
            call.key(&self.events).key(&self.history);
            for index in &self.by_status {
                call.key(index);
            }
            call.arg(retention.max(1))
                .arg(STREAM_MAXLEN)
                .arg(RECORD_IN_EVENT_MAX)
                .arg(if self.acks.wanted() { "1" } else { "0" })
                .arg(cutoff);
            for job in &batch {
                call.key(&job.key).arg(&job.result_json).arg(&job.status);
                call.arg(&job.worker).arg(&job.started_at).arg(&job.event);
                call.arg(&job.id);
            }
            async move {
                self.acks
                    .invoke::<Vec<i64>>(&redis, &FINISH_JOBS, &call)
                    .await
            }
        })
        .await?;
        self.acks.check(acknowledged, self.link.name(), what)?;
        Ok(answers.into_iter().map(|a| a != 0).collect())
    }
}

impl RedisStore {
    /// The batch sender for the store's current settings.
    fn batch_sender(&self) -> Arc<BatchSender> {
        self.batches
            .get_or_init(|| {
                Arc::new(BatchSender {
                    link: self.link.clone(),
                    history: self.keys.history(),
                    events: self.keys.events(),
                    by_status: [
                        JobStatus::Queued,
                        JobStatus::Running,
                        JobStatus::Succeeded,
                        JobStatus::Failed,
                        JobStatus::TimedOut,
                        JobStatus::Cancelled,
                    ]
                    .map(|status| self.keys.by_status(status)),
                    retention: self.retention,
                    retry_limit: self.retry_limit,
                    acks: self.acks,
                })
            })
            .clone()
    }

    /// Jobs recorded at the same time go in one script call (`coalesce`).
    pub(super) async fn record(&self, job: &Job) -> Result<(), StoreError> {
        let pending = PendingRecord {
            key: self.keys.job(job.id),
            by_command: self.keys.by_command(&job.command),
            by_requester: self.keys.by_requester(&job.origin.identity()),
            // Kept and shown for days: never a secret argument's text.
            job_json: to_json(&job.masked())?,
            id: job.id.to_string(),
            created: job.created_at.timestamp_millis(),
            event: to_json(&Event::now(job.id, EventKind::Queued))?,
        };
        let sender = self.batch_sender();
        let send = move |batch| {
            let sender = sender.clone();
            async move { sender.record(batch).await }
        };
        self.recording.write(pending, send).await?;
        tracing::debug!(job = %job.id, "job recorded");
        Ok(())
    }

    pub(super) async fn start(
        &self,
        id: JobId,
        worker: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let record_key = self.keys.job(id);
        let events = self.keys.events();
        let history = self.keys.history();
        let (queued, running) = (
            self.keys.by_status(JobStatus::Queued),
            self.keys.by_status(JobStatus::Running),
        );
        let member = id.to_string();
        let retention = millis(self.retention);
        let cutoff = Utc::now().timestamp_millis() - retention as i64;
        let started_at = timestamp(at);
        let kind = EventKind::Started {
            worker: worker.to_string(),
        };
        let event = to_json(&Event::now(id, kind))?;
        let outcome = self
            .retrying("mark a job started", |redis| {
                let mut con = redis.shared.clone();
                let mut call = MARK_STARTED.prepare_invoke();
                call.key(&record_key).key(&events).key(&history);
                call.key(&queued).key(&running);
                call.arg(worker)
                    .arg(&started_at)
                    .arg(&event)
                    .arg(STREAM_MAXLEN)
                    .arg(&member)
                    .arg(retention.max(1))
                    .arg(cutoff);
                async move { call.invoke_async::<String>(&mut con).await }
            })
            .await?;
        match outcome.as_str() {
            "unknown" => Err(StoreError::UnknownJob(id)),
            "final" => {
                tracing::debug!(job = %id, worker, "job already has its result; not marked started again");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Results stored at the same time go in one script call (`coalesce`).
    pub(super) async fn finish(&self, result: &JobResult) -> Result<(), StoreError> {
        let kind = EventKind::Finished {
            status: result.status,
        };
        let pending = PendingResult {
            key: self.keys.job(result.id),
            id: result.id.to_string(),
            result_json: to_json(result)?,
            status: status_name(result.status),
            worker: result.worker.clone(),
            started_at: timestamp(result.started_at),
            event: to_json(&Event::now(result.id, kind))?,
        };
        let sender = self.batch_sender();
        let send = move |batch| {
            let sender = sender.clone();
            async move { sender.finish(batch).await }
        };
        if !self.finishing.write(pending, send).await? {
            return Err(StoreError::UnknownJob(result.id));
        }
        tracing::debug!(job = %result.id, status = %result.status, "job result stored");
        Ok(())
    }

    pub(super) async fn record_of(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let key = self.keys.job(id);
        let fields = self
            .retrying("read a job record", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("HGETALL").arg(&key).to_owned();
                async move { cmd.query_async::<HashMap<String, Vec<u8>>>(&mut con).await }
            })
            .await?;
        decode_record(&key, &fields)
    }

    /// Newest first. Ids whose record has expired are skipped and dropped from the
    /// index; records this version cannot read are skipped with a warning, so one bad
    /// record does not hide the whole history.
    pub(super) async fn history(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let index = self.keys.history();
        let mut records = Vec::new();
        let mut gone = Vec::new();
        let mut offset = 0usize;
        while records.len() < limit {
            let (start, stop) = (offset, offset + limit - 1);
            let ids = self
                .retrying("list recent jobs", |redis| {
                    let mut con = redis.shared.clone();
                    let cmd = ::redis::cmd("ZREVRANGE")
                        .arg(&index)
                        .arg(start)
                        .arg(stop)
                        .to_owned();
                    async move { cmd.query_async::<Vec<String>>(&mut con).await }
                })
                .await?;
            if ids.is_empty() {
                break;
            }
            offset += ids.len();
            let keys: Vec<(String, String)> = ids
                .into_iter()
                .filter_map(|member| match member.parse::<JobId>() {
                    Ok(id) => Some((member, self.keys.job(id))),
                    Err(_) => {
                        tracing::warn!(member, index, "history entry is not a job id; dropping it");
                        gone.push(member);
                        None
                    }
                })
                .collect();
            let all_fields = self
                .retrying("read job records", |redis| {
                    let mut con = redis.shared.clone();
                    let mut pipe = ::redis::pipe();
                    for (_, key) in &keys {
                        pipe.cmd("HGETALL").arg(key);
                    }
                    async move {
                        pipe.query_async::<Vec<HashMap<String, Vec<u8>>>>(&mut con)
                            .await
                    }
                })
                .await?;
            for ((member, key), fields) in keys.into_iter().zip(all_fields) {
                match decode_record(&key, &fields) {
                    Ok(Some(record)) if records.len() < limit => records.push(record),
                    Ok(Some(_)) => {}
                    Ok(None) => gone.push(member),
                    Err(err) => tracing::warn!(key, error = %err, "skipping a job record"),
                }
            }
        }
        if !gone.is_empty() {
            // Housekeeping only: a failure leaves entries that are skipped next time too.
            let forgotten = self
                .retrying("trim the job history", |redis| {
                    let mut con = redis.shared.clone();
                    let cmd = ::redis::cmd("ZREM").arg(&index).arg(&gone).to_owned();
                    async move { cmd.query_async::<()>(&mut con).await }
                })
                .await;
            if let Err(err) = forgotten {
                tracing::warn!(error = %err, "could not drop expired jobs from the history");
            }
        }
        Ok(records)
    }

    /// The group's claim (`SET NX GET` with a token unique to this call: if the reply to
    /// a successful first attempt is lost, the retry reads back its own token and still
    /// wins) and the record, in one round trip. The claim is the group's own, so a group
    /// that does not serve the job's adapter cannot take the reply from the one that does;
    /// such a claim is given back at once.
    pub(super) async fn claim(
        &self,
        id: JobId,
        group: &str,
        adapters: &[String],
    ) -> Result<ReplyClaim, StoreError> {
        let (record_key, claim_key) = (self.keys.job(id), self.keys.delivered(group, id));
        let token = uuid::Uuid::now_v7().to_string();
        let retention = millis(self.retention).max(1);
        let (held, fields) = self
            .retrying("claim a job's reply", |redis| {
                let mut con = redis.shared.clone();
                let mut pipe = ::redis::pipe();
                pipe.cmd("SET").arg(&claim_key).arg(&token);
                pipe.arg("NX").arg("GET").arg("PX").arg(retention);
                pipe.cmd("HGETALL").arg(&record_key);
                async move {
                    pipe.query_async::<(Option<String>, HashMap<String, Vec<u8>>)>(&mut con)
                        .await
                }
            })
            .await?;
        let Some(record) = decode_record(&record_key, &fields)? else {
            return Ok(ReplyClaim::Unknown);
        };
        let ours = held.is_none_or(|held| held == token);
        if !adapters.contains(&record.job.origin.adapter) {
            if ours {
                self.release_claim(&claim_key).await;
            }
            return Ok(ReplyClaim::Elsewhere);
        }
        Ok(match ours {
            true => ReplyClaim::Claimed(Box::new(record)),
            false => ReplyClaim::Taken,
        })
    }

    /// The group's claim alone (the same `SET NX GET` with a token as [`Self::claim`]),
    /// for a reply whose record came with its event.
    pub(super) async fn claim_carried(&self, id: JobId, group: &str) -> Result<bool, StoreError> {
        let claim_key = self.keys.delivered(group, id);
        let token = uuid::Uuid::now_v7().to_string();
        let retention = millis(self.retention).max(1);
        let held = self
            .retrying("claim a job's reply", |redis| {
                let mut con = redis.shared.clone();
                let mut cmd = ::redis::cmd("SET");
                cmd.arg(&claim_key).arg(&token);
                cmd.arg("NX").arg("GET").arg("PX").arg(retention);
                async move { cmd.query_async::<Option<String>>(&mut con).await }
            })
            .await?;
        Ok(held.is_none_or(|held| held == token))
    }

    /// Housekeeping: a claim left behind only holds a little memory until it expires.
    async fn release_claim(&self, claim_key: &str) {
        let released = self
            .retrying("give back a reply claim", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("DEL").arg(claim_key).to_owned();
                async move { cmd.query_async::<()>(&mut con).await }
            })
            .await;
        if let Err(err) = released {
            tracing::debug!(key = claim_key, error = %err, "reply claim not given back; it expires");
        }
    }

    pub(super) async fn beat(&self, worker: &WorkerInfo, ttl: Duration) -> Result<(), StoreError> {
        let key = self.keys.worker(&worker.name);
        let index = self.keys.workers();
        let info = to_json(worker)?;
        let ttl = millis(ttl).max(1);
        self.retrying("record a worker heartbeat", |redis| {
            let mut con = redis.shared.clone();
            let mut pipe = ::redis::pipe();
            pipe.cmd("SET").arg(&key).arg(&info).arg("PX").arg(ttl);
            pipe.cmd("SADD").arg(&index).arg(&worker.name);
            async move { pipe.query_async::<()>(&mut con).await }
        })
        .await
    }

    /// By name. Names whose heartbeat expired are removed from the index on the way.
    pub(super) async fn live_workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        let index = self.keys.workers();
        let mut names = self
            .retrying("list workers", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("SMEMBERS").arg(&index).to_owned();
                async move { cmd.query_async::<Vec<String>>(&mut con).await }
            })
            .await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        names.sort();
        let keys: Vec<String> = names.iter().map(|n| self.keys.worker(n)).collect();
        let beats = self
            .retrying("read worker heartbeats", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("MGET").arg(&keys).to_owned();
                async move { cmd.query_async::<Vec<Option<Vec<u8>>>>(&mut con).await }
            })
            .await?;
        let mut workers = Vec::new();
        let mut expired = Vec::new();
        for ((name, key), beat) in names.iter().zip(&keys).zip(beats) {
            match beat.map(|b| serde_json::from_slice::<WorkerInfo>(&b)) {
                Some(Ok(info)) => workers.push(info),
                Some(Err(err)) => {
                    tracing::warn!(key, error = %err, "skipping a worker heartbeat this version cannot read")
                }
                None => expired.push(name.clone()),
            }
        }
        if !expired.is_empty() {
            let forgotten = self
                .retrying("forget expired workers", |redis| {
                    let mut con = redis.shared.clone();
                    let cmd = ::redis::cmd("SREM").arg(&index).arg(&expired).to_owned();
                    async move { cmd.query_async::<()>(&mut con).await }
                })
                .await;
            if let Err(err) = forgotten {
                tracing::warn!(error = %err, "could not drop expired workers from the index");
            }
        }
        Ok(workers)
    }
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    // Our own types always serialize; a failure here is a bug worth a clear sentence.
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what: std::any::type_name::<T>().to_string(),
        reason: format!("it could not be written as JSON: {e}"),
    })
}

/// RFC 3339 with as many fractional digits as needed, so times read back exactly.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The status as the JSON contract spells it (`timed_out`), which is also what the
/// scripts compare against.
fn status_name(status: JobStatus) -> String {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(name)) => name,
        _ => unreachable!("JobStatus serializes as a string"),
    }
}

/// A record from its hash fields; `None` when the hash is gone (never recorded, or
/// expired).
fn decode_record(
    key: &str,
    fields: &HashMap<String, Vec<u8>>,
) -> Result<Option<JobRecord>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    decode_fields(key, |name| fields.get(name).map(Vec::as_slice)).map(Some)
}

/// The fields of a record, in the order [`decode_fields`] reads them by position (for
/// `HMGET`).
pub(super) const RECORD_FIELDS: [&str; 5] = ["job", "status", "worker", "started_at", "result"];

/// A record from the hash fields `field` gives by name, the hash being there.
pub(super) fn decode_fields<'f>(
    key: &str,
    field: impl Fn(&str) -> Option<&'f [u8]>,
) -> Result<JobRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        what: key.to_string(),
        reason,
    };
    let text = |name: &str| -> Result<Option<&str>, StoreError> {
        field(name)
            .map(|bytes| {
                std::str::from_utf8(bytes)
                    .map_err(|_| corrupt(format!("field `{name}` is not UTF-8")))
            })
            .transpose()
    };
    let json = |name: &str, text: &str, e: serde_json::Error| {
        corrupt(format!("field `{name}` ({text:.80}) does not read: {e}"))
    };

    let job_text = text("job")?.ok_or_else(|| corrupt("it has no `job` field".into()))?;
    let job: Job = serde_json::from_str(job_text).map_err(|e| json("job", job_text, e))?;
    let status_text = text("status")?.ok_or_else(|| corrupt("it has no `status` field".into()))?;
    let status: JobStatus =
        serde_json::from_value(serde_json::Value::String(status_text.to_string()))
            .map_err(|e| json("status", status_text, e))?;
    let worker = text("worker")?.map(str::to_string);
    let started_at = text("started_at")?
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|e| corrupt(format!("field `started_at` ({t:.40}) is not a time: {e}")))
        })
        .transpose()?;
    let result = text("result")?
        .map(|t| serde_json::from_str::<JobResult>(t).map_err(|e| json("result", t, e)))
        .transpose()?;
    Ok(JobRecord {
        job,
        status,
        worker,
        started_at,
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn statuses_are_spelled_as_in_json() {
        assert_eq!(status_name(JobStatus::TimedOut), "timed_out");
        assert_eq!(status_name(JobStatus::Queued), "queued");
        assert_eq!(status_name(JobStatus::Running), "running");
    }

    #[test]
    fn status_indexes_are_named_as_the_scripts_spell_statuses() {
        let keys = super::super::keys::Keys::new("p:");
        for status in [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::TimedOut,
            JobStatus::Cancelled,
        ] {
            let name = status_name(status);
            assert_eq!(keys.by_status(status), format!("p:jobs:by-status:{name}"));
        }
    }

    #[test]
    fn times_read_back_exactly() {
        let now = Utc::now();
        let back = DateTime::parse_from_rfc3339(&timestamp(now)).unwrap();
        assert_eq!(back.with_timezone(&Utc), now);
    }

    #[test]
    fn an_empty_hash_is_no_record() {
        assert_eq!(decode_record("k", &HashMap::new()).unwrap(), None);
    }

    #[test]
    fn a_record_that_does_not_read_names_its_key() {
        let err = decode_record(
            "octobox:job:x",
            &fields(&[("job", "{not json"), ("status", "queued")]),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{text}");
        assert!(text.contains("octobox:job:x"), "{text}");
        assert!(text.contains("`job`"), "{text}");

        let err = decode_record("k", &fields(&[("status", "queued")])).unwrap_err();
        assert!(err.to_string().contains("no `job` field"), "{err}");
    }
}
