//! Quotas: places held by running jobs (`take_place`) and uses counted per window
//! (`count_use`), kept in Redis so that every bot of one Octobox counts together.
//!
//! A place needs no release when its job ends: taking one first drops the places of jobs
//! whose record is final, and of any past its deadline. So a job that finished on a
//! worker, or a bot that died between taking a place and queueing, frees it by itself.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::Script;
use chrono::{DateTime, TimeZone, Utc};

use super::{millis, RedisStore};
use crate::job::JobId;
use crate::store::StoreError;

/// KEYS: places. ARGV: now (ms), limit, job id, until (ms), job key prefix.
/// -1 when the place is taken, else the soonest deadline among the holders (ms).
/// At most `limit` records are read: the set never holds more.
static TAKE_PLACE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, holder in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local status = redis.call('HGET', ARGV[5] .. holder, 'status')
  if status and status ~= 'queued' and status ~= 'running' then
    redis.call('ZREM', KEYS[1], holder)
  end
end
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return -1 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], last[2])
  return -1
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(first[2])
",
    )
});

/// KEYS: uses. ARGV: window (ms), limit. -1 within the limit, else the window's
/// remaining time (ms).
static COUNT_USE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n <= tonumber(ARGV[2]) then return -1 end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return left
",
    )
});

impl RedisStore {
    pub(super) async fn take_place_in(
        &self,
        key: &str,
        limit: u32,
        id: JobId,
        until: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let places = self.keys.places(key);
        let prefix = self.keys.job_prefix();
        let id = id.to_string();
        let soonest = self
            .retrying("take a quota place", |redis| {
                let mut con = redis.shared.clone();
                let mut call = TAKE_PLACE.prepare_invoke();
                call.key(&places)
                    .arg(Utc::now().timestamp_millis())
                    .arg(limit)
                    .arg(&id)
                    .arg(until.timestamp_millis())
                    .arg(&prefix);
                async move { call.invoke_async::<i64>(&mut con).await }
            })
            .await?;
        Ok((soonest >= 0).then(|| Utc.timestamp_millis_opt(soonest).single().unwrap_or(until)))
    }

    pub(super) async fn give_back_place_in(&self, key: &str, id: JobId) -> Result<(), StoreError> {
        let places = self.keys.places(key);
        let id = id.to_string();
        self.retrying("give back a quota place", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("ZREM").arg(&places).arg(&id).to_owned();
            async move { cmd.query_async::<i64>(&mut con).await }
        })
        .await?;
        Ok(())
    }

    pub(super) async fn count_use_in(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let window_ms = millis(window).max(1);
        let index = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0) / window_ms;
        let uses = self.keys.uses(key, index);
        let left = self
            .retrying("count a use against a quota", |redis| {
                let mut con = redis.shared.clone();
                let mut call = COUNT_USE.prepare_invoke();
                call.key(&uses).arg(window_ms).arg(limit);
                async move { call.invoke_async::<i64>(&mut con).await }
            })
            .await?;
        Ok(u64::try_from(left).ok().map(Duration::from_millis))
    }
}
