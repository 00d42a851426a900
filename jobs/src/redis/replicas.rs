//! `ReplicaAcks`: `[store] min_replicas`, the writes that wait for replicas.
//!
//! Redis replicates asynchronously: a primary answers a write before any replica has it,
//! and a failover promotes a replica that may not. The writes a caller acts on (a job's
//! record: the bot then says "queued"; its result: the worker then acknowledges the
//! delivery; a schedule's fire; a shipper's checkpoint) are followed by `WAIT
//! <min_replicas> <timeout>` in the same pipeline, on the same connection: `WAIT` counts
//! the replicas that have every write that connection sent before it, and a multiplexed
//! connection sends a pipeline's commands together, so the count covers this write.
//! Fewer replicas in time and the write fails with [`StoreError::NotReplicated`]: it
//! happened on the primary (nothing is undone), but nobody may act on it; the caller's
//! own retry repeats it, which the scripts make harmless.
//!
//! A primary with fewer replicas connected than `min_replicas` (a failover promoted the
//! only replica; a replica is down) is not asked for more than it has: `WAIT` asks for
//! the replicas connected now (counted with `ROLE`, at most once a second), and with
//! none, writes go on without it, each such stretch logged. Writes then live on fewer
//! machines, but they go on: a lost replica must not stop every job.
//!
//! `WAIT` is not consensus. A write acknowledged by a replica survives a failover that
//! promotes that replica, which Sentinel prefers (it picks the replica with the most
//! data) but does not promise; and a write that failed its `WAIT` may still appear.

use std::time::Duration;

use ::redis::{FromRedisValue, Pipeline, RedisResult, Script, ScriptInvocation, Value};

use super::millis;
use super::primary::Primary;
use crate::store::StoreError;

/// How many replicas must acknowledge a write, and how long it waits for them.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReplicaAcks {
    pub(super) min: u32,
    pub(super) timeout: Duration,
}

impl ReplicaAcks {
    /// `WAIT` is sent only when some replica must acknowledge.
    pub(super) fn wanted(&self) -> bool {
        self.min > 0
    }

    /// How many replicas a write on `redis` waits for: `min`, or fewer when fewer are
    /// connected (see the module documentation).
    async fn asked_of(&self, redis: &Primary) -> u32 {
        match redis.connected_replicas().await {
            Some(connected) => connected.min(self.min),
            None => self.min,
        }
    }

    /// Sends `pipe`, a write on `redis`'s `acked` connection, and then `WAIT` unless no
    /// replica is wanted; answers the write's replies (as the pipeline alone would) and
    /// how many replicas acknowledged (`min` when none was asked, or when every
    /// connected replica acknowledged and fewer than `min` are connected).
    pub(super) async fn send<T: FromRedisValue>(
        &self,
        redis: &Primary,
        mut pipe: Pipeline,
    ) -> RedisResult<(T, u32)> {
        let mut con = redis.acked.clone();
        let asked = if self.wanted() {
            self.asked_of(redis).await
        } else {
            0
        };
        if asked == 0 {
            return Ok((pipe.query_async(&mut con).await?, self.min));
        }
        pipe.cmd("WAIT").arg(asked).arg(millis(self.timeout).max(1));
        let mut replies: Vec<Value> = pipe.query_async(&mut con).await?;
        let acknowledged = match replies.pop() {
            Some(count) => u32::from_redis_value(count)?,
            None => 0,
        };
        let acknowledged = if acknowledged >= asked {
            self.min
        } else {
            acknowledged
        };
        Ok((T::from_redis_value(Value::Array(replies))?, acknowledged))
    }

    /// [`ReplicaAcks::send`] for one call of `script`, on `redis`'s `acked` connection.
    ///
    /// A pipeline does not load a script Redis lacks (`NOSCRIPT`), and the `WAIT` behind
    /// a refused call still waits its whole timeout when replicas are missing. So the
    /// script is loaded first on each primary (a new primary's script cache starts
    /// empty), and `NOSCRIPT` is only met after Redis lost its cache at the same address
    /// (a restart): then it is loaded and the write sent again.
    pub(super) async fn invoke<T: FromRedisValue>(
        &self,
        redis: &Primary,
        script: &Script,
        call: &ScriptInvocation<'_>,
    ) -> RedisResult<(T, u32)> {
        let mut con = redis.acked.clone();
        if !self.wanted() {
            return Ok((call.invoke_async(&mut con).await?, self.min));
        }
        if !redis.holds(script) {
            call.load_async(&mut con).await?;
            redis.loaded(script);
        }
        let mut pipe = ::redis::pipe();
        pipe.invoke_script(call);
        match self.send::<(T,)>(redis, pipe.clone()).await {
            Err(err) if err.code() == Some("NOSCRIPT") => {
                call.load_async(&mut con).await?;
                let ((reply,), acknowledged) = self.send(redis, pipe).await?;
                Ok((reply, acknowledged))
            }
            other => other.map(|((reply,), acknowledged)| (reply, acknowledged)),
        }
    }

    /// The outcome of a write `acknowledged` replicas took: an error when too few did.
    pub(super) fn check(
        &self,
        acknowledged: u32,
        server: &str,
        what: &str,
    ) -> Result<(), StoreError> {
        if acknowledged >= self.min {
            return Ok(());
        }
        tracing::warn!(
            store = %server,
            acknowledged,
            wanted = self.min,
            "a write was not acknowledged by enough replicas while trying to {what}"
        );
        Err(StoreError::NotReplicated {
            server: server.to_string(),
            what: what.to_string(),
            acknowledged,
            wanted: self.min,
            waited: self.timeout,
        })
    }
}
