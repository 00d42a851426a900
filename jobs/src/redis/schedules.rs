//! The [`ScheduleStore`] in Redis: the lease, fires, pauses, run requests, checkpoints.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `octobox:scheduler:lease` | STRING, `PX` | the holder's name; renewed by the holder only |
//! | `octobox:schedule:<name>:slot:<ms>` | STRING | the fire of one slot (JSON `Fire`), set `NX`, kept [`FIRE_RETENTION`] |
//! | `octobox:schedule:<name>:manual:<ms>` | STRING | the same, for a fire asked for by a person |
//! | `octobox:schedule:<name>` | HASH | `last_slot`: the latest slot fired or skipped (ms) |
//! | `octobox:schedule:<name>:fires` | LIST | the latest [`FIRE_LOG`] fires, newest first |
//! | `octobox:schedules:unsent` | HASH | fired jobs not yet recorded and sent on: job id to JSON `Job` |
//! | `octobox:schedules:paused` | SET | paused schedule names |
//! | `octobox:schedules:run-requests` | LIST | names to fire now, oldest first |
//! | `octobox:shipper:<name>:checkpoint` | STRING | the shipper's checkpoint (JSON) |
//!
//! The lease and the fire are Lua scripts, so check-and-set happens in one step. A fire
//! retried after a lost reply finds its own JSON in the slot key and counts as won,
//! exactly like the delivery claim. A fire and a checkpoint wait for `[store]
//! min_replicas` replicas before they count (see `replicas`).

use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::Script;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use super::{millis, RedisStore};
use crate::job::{Job, JobId};
use crate::schedule_store::{Fire, FireKind, ScheduleStore};
use crate::store::StoreError;

/// How long a slot's fire is remembered: far longer than any takeover.
pub const FIRE_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// How many fires a schedule's log keeps.
pub const FIRE_LOG: usize = 100;

/// KEYS: lease. ARGV: holder, ttl (ms). 1 if the holder has the lease afterwards.
static HOLD_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// KEYS: lease. ARGV: holder.
static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
",
    )
});

/// KEYS: fired, schedule hash, fire log, unsent. ARGV: fire JSON, retention (ms), slot
/// (ms), advance (1/0), log length, job id, job JSON. 1 if this call fired the slot.
static RECORD_FIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur ~= false then
  if cur == ARGV[1] then return 1 end
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[4] == '1' then
  local last = tonumber(redis.call('HGET', KEYS[2], 'last_slot') or '0')
  if tonumber(ARGV[3]) > last then redis.call('HSET', KEYS[2], 'last_slot', ARGV[3]) end
end
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
return 1
",
    )
});

/// KEYS: schedule hash. ARGV: slot (ms).
static SKIP_TO: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local last = tonumber(redis.call('HGET', KEYS[1], 'last_slot') or '0')
if tonumber(ARGV[1]) > last then redis.call('HSET', KEYS[1], 'last_slot', ARGV[1]) end
return 1
",
    )
});

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

#[async_trait]
impl ScheduleStore for RedisStore {
    async fn hold_lease(&self, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let key = self.keys.scheduler_lease();
        let ttl = millis(ttl).max(1);
        let held = self
            .retrying("hold the scheduler lease", |redis| {
                let mut con = redis.shared.clone();
                let mut call = HOLD_LEASE.prepare_invoke();
                call.key(&key).arg(holder).arg(ttl);
                async move { call.invoke_async::<i64>(&mut con).await }
            })
            .await?;
        Ok(held == 1)
    }

    async fn release_lease(&self, holder: &str) -> Result<(), StoreError> {
        let key = self.keys.scheduler_lease();
        self.retrying("release the scheduler lease", |redis| {
            let mut con = redis.shared.clone();
            let mut call = RELEASE_LEASE.prepare_invoke();
            call.key(&key).arg(holder);
            async move { call.invoke_async::<i64>(&mut con).await }
        })
        .await?;
        Ok(())
    }

    async fn lease_holder(&self) -> Result<Option<String>, StoreError> {
        let key = self.keys.scheduler_lease();
        self.retrying("read the scheduler lease", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("GET").arg(&key).to_owned();
            async move { cmd.query_async::<Option<String>>(&mut con).await }
        })
        .await
    }

    async fn record_fire(&self, fire: &Fire, job: &Job) -> Result<bool, StoreError> {
        let manual = fire.kind == FireKind::Manual;
        let slot = fire.slot.timestamp_millis();
        let fired = self.keys.fired(&fire.schedule, slot, manual);
        let (hash, log) = (
            self.keys.schedule(&fire.schedule),
            self.keys.fire_log(&fire.schedule),
        );
        let json = serde_json::to_string(fire).map_err(|e| corrupt("a fire", e))?;
        let job_json = serde_json::to_string(job).map_err(|e| corrupt("a job", e))?;
        let (unsent, id) = (self.keys.unsent_fires(), job.id.to_string());
        let won = self
            .acknowledged("record a schedule's fire", |redis| {
                let mut call = RECORD_FIRE.prepare_invoke();
                call.key(&fired).key(&hash).key(&log).key(&unsent);
                call.arg(&json).arg(millis(FIRE_RETENTION)).arg(slot);
                call.arg(if manual { "0" } else { "1" }).arg(FIRE_LOG);
                call.arg(&id).arg(&job_json);
                let acks = self.acks;
                async move { acks.invoke::<i64>(&redis, &RECORD_FIRE, &call).await }
            })
            .await?;
        Ok(won == 1)
    }

    async fn fire_sent(&self, job: JobId) -> Result<(), StoreError> {
        let key = self.keys.unsent_fires();
        let id = job.to_string();
        self.retrying("mark a fired job sent", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("HDEL").arg(&key).arg(&id).to_owned();
            async move { cmd.query_async::<i64>(&mut con).await }
        })
        .await?;
        Ok(())
    }

    async fn unsent_fires(&self) -> Result<Vec<Job>, StoreError> {
        let key = self.keys.unsent_fires();
        let jobs = self
            .retrying("list fired jobs not sent yet", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("HVALS").arg(&key).to_owned();
                async move { cmd.query_async::<Vec<String>>(&mut con).await }
            })
            .await?;
        jobs.iter()
            .map(|j| serde_json::from_str(j).map_err(|e| corrupt(&key, e)))
            .collect()
    }

    async fn skip_to(&self, schedule: &str, slot: DateTime<Utc>) -> Result<(), StoreError> {
        let hash = self.keys.schedule(schedule);
        let slot = slot.timestamp_millis();
        self.retrying("move a schedule on", |redis| {
            let mut con = redis.shared.clone();
            let mut call = SKIP_TO.prepare_invoke();
            call.key(&hash).arg(slot);
            async move { call.invoke_async::<i64>(&mut con).await }
        })
        .await?;
        Ok(())
    }

    async fn last_slot(&self, schedule: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let hash = self.keys.schedule(schedule);
        let ms = self
            .retrying("read a schedule's last slot", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("HGET").arg(&hash).arg("last_slot").to_owned();
                async move { cmd.query_async::<Option<i64>>(&mut con).await }
            })
            .await?;
        Ok(ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
    }

    async fn fires(&self, schedule: &str, limit: usize) -> Result<Vec<Fire>, StoreError> {
        let log = self.keys.fire_log(schedule);
        let stop = limit.max(1) as i64 - 1;
        let items = self
            .retrying("read a schedule's fires", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("LRANGE").arg(&log).arg(0).arg(stop).to_owned();
                async move { cmd.query_async::<Vec<String>>(&mut con).await }
            })
            .await?;
        items
            .iter()
            .map(|j| serde_json::from_str(j).map_err(|e| corrupt(&log, e)))
            .collect()
    }

    async fn set_paused(&self, schedule: &str, paused: bool) -> Result<bool, StoreError> {
        let key = self.keys.paused_schedules();
        let verb = if paused { "SADD" } else { "SREM" };
        let changed = self
            .retrying("pause or resume a schedule", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd(verb).arg(&key).arg(schedule).to_owned();
                async move { cmd.query_async::<i64>(&mut con).await }
            })
            .await?;
        Ok(changed == 1)
    }

    async fn paused(&self) -> Result<BTreeSet<String>, StoreError> {
        let key = self.keys.paused_schedules();
        self.retrying("list paused schedules", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("SMEMBERS").arg(&key).to_owned();
            async move { cmd.query_async::<BTreeSet<String>>(&mut con).await }
        })
        .await
    }

    async fn request_run(&self, schedule: &str) -> Result<(), StoreError> {
        let key = self.keys.run_requests();
        self.retrying("ask for a schedule to run", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("RPUSH").arg(&key).arg(schedule).to_owned();
            async move { cmd.query_async::<i64>(&mut con).await }
        })
        .await?;
        Ok(())
    }

    async fn take_run_requests(&self) -> Result<Vec<String>, StoreError> {
        let key = self.keys.run_requests();
        self.retrying("take requests to run schedules", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("LPOP").arg(&key).arg(100).to_owned();
            async move { cmd.query_async::<Option<Vec<String>>>(&mut con).await }
        })
        .await
        .map(Option::unwrap_or_default)
    }

    async fn checkpoint(&self, shipper: &str) -> Result<Option<String>, StoreError> {
        let key = self.keys.checkpoint(shipper);
        self.retrying("read a shipper's checkpoint", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("GET").arg(&key).to_owned();
            async move { cmd.query_async::<Option<String>>(&mut con).await }
        })
        .await
    }

    async fn save_checkpoint(&self, shipper: &str, checkpoint: &str) -> Result<(), StoreError> {
        let key = self.keys.checkpoint(shipper);
        self.acknowledged("save a shipper's checkpoint", |redis| {
            let mut pipe = ::redis::pipe();
            pipe.cmd("SET").arg(&key).arg(checkpoint).ignore();
            let acks = self.acks;
            async move { acks.send::<()>(&redis, pipe).await }
        })
        .await
    }
}
