//! The event stream: appending, reading as a consumer group, acknowledging, and taking
//! over the events a dead consumer left pending.
//!
//! A group is created on first use at the start of the stream (`0`, not `$`), so events
//! appended before the first bot ever started are still delivered. Before reading new
//! events, a reader claims (`XAUTOCLAIM`) events that another consumer of its group was
//! handed but has not acknowledged for longer than the claim idle time: that consumer
//! is presumed dead, and its events would otherwise never be delivered. Looking costs a
//! round trip, and an event becomes claimable only after the idle time, so a group looks
//! once per quarter of that time or once a second, whichever is more often, and again at
//! once while it finds some ([`ClaimSchedule`]).
//!
//! A `finished` entry may carry its job's record beside the event (see `records`); it is
//! passed on only with entries read fresh, never with ones taken over ([`Event::record`]).
//!
//! An entry this version cannot read is logged and acknowledged (so it does not come
//! back), never an error for the whole read.
//!
//! Blocking reads get connections of their own ([`BlockingReaders`]): a multiplexed
//! connection answers in order, so a read blocked for seconds on the shared one would
//! hold up every other command behind it.

use std::collections::HashMap;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, MultiplexedConnection};
use ::redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use ::redis::{AsyncConnectionConfig, Cmd, FromRedisValue, RedisResult};
use tokio::time::Instant;

use super::primary::Primary;
use super::{millis, RedisStore, CONNECT_TIMEOUT};
use crate::event::{Event, EventKind};
use crate::job::{Job, JobRecord, JobResult};
use crate::store::{EventId, StoreError};

/// The stream is capped near this many entries (`MAXLEN ~`): far more than any reader
/// lags behind, small enough that Redis's memory stays bounded.
pub const STREAM_MAXLEN: usize = 100_000;

/// How long past its `BLOCK` time a blocking read may take before the connection is
/// presumed lost.
const BLOCK_GRACE: Duration = Duration::from_secs(5);

/// How many `XAUTOCLAIM` rounds one read makes through a long pending list before it
/// turns to new events (each round looks at up to ten times `max` entries).
const CLAIM_ROUNDS: usize = 10;

/// Connections for blocking reads, kept between reads; one is opened for each reader
/// blocked at the same time. They are the primary's of one generation: when the link
/// moves to another primary, those of the old one are dropped.
#[derive(Default)]
pub(super) struct BlockingReaders {
    idle: std::sync::Mutex<(u64, Vec<MultiplexedConnection>)>,
}

impl BlockingReaders {
    async fn take(&self, redis: &Primary) -> RedisResult<MultiplexedConnection> {
        let kept = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.0 != redis.generation {
                *idle = (redis.generation, Vec::new());
            }
            idle.1.pop()
        };
        if let Some(con) = kept {
            return Ok(con);
        }
        // No response timeout: the read waits as long as its BLOCK says, and the caller
        // bounds it with its own timeout.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None);
        redis
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Keeps a connection whose last read completed (to the primary of `generation`);
    /// one that failed is dropped instead.
    fn put_back(&self, generation: u64, con: MultiplexedConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.0 == generation {
            idle.1.push(con);
        }
    }

    /// Drops the kept connections after one failed: they went to the same server, and
    /// after a restart each would fail once more before the read got a fresh one.
    fn forget_all(&self) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clear();
    }
}

/// When each group last looked for abandoned events and found none.
#[derive(Default)]
pub(super) struct ClaimSchedule {
    looked: std::sync::Mutex<HashMap<String, Instant>>,
}

impl ClaimSchedule {
    /// Whether `group` should look for abandoned events before this read.
    fn due(&self, group: &str, idle: Duration) -> bool {
        let every = (idle / 4).min(Duration::from_secs(1));
        let looked = self.looked.lock().unwrap_or_else(|p| p.into_inner());
        looked.get(group).is_none_or(|at| at.elapsed() >= every)
    }

    /// `group` looked and found nothing: the next look can wait.
    fn found_none(&self, group: &str) {
        let mut looked = self.looked.lock().unwrap_or_else(|p| p.into_inner());
        looked.insert(group.to_string(), Instant::now());
    }
}

impl RedisStore {
    pub(super) async fn append(&self, event: &Event) -> Result<EventId, StoreError> {
        let stream = self.keys.events();
        let json = serde_json::to_string(event).map_err(|e| StoreError::Corrupt {
            what: "an event".into(),
            reason: format!("it could not be written as JSON: {e}"),
        })?;
        self.retrying("append an event", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("XADD")
                .arg(&stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAXLEN)
                .arg("*")
                .arg("event")
                .arg(&json)
                .to_owned();
            async move { cmd.query_async::<String>(&mut con).await }
        })
        .await
    }

    pub(super) async fn read(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<(EventId, Event)>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut entries = Vec::new();
        if self.claims.due(group, self.claim_idle) {
            entries = self.claim_abandoned(group, consumer, max).await?;
            if entries.is_empty() {
                self.claims.found_none(group);
            }
        }
        if entries.is_empty() {
            let fresh = self.read_new(group, consumer, max, block).await?;
            return Ok(self.decode(group, fresh, true).await);
        }
        tracing::info!(
            group,
            consumer,
            count = entries.len(),
            "took over events another consumer left unacknowledged"
        );
        Ok(self.decode(group, entries, false).await)
    }

    /// Events of `group` pending (handed out, unacknowledged) for longer than the claim
    /// idle time, now handed to `consumer`.
    async fn claim_abandoned(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<StreamId>, StoreError> {
        let stream = self.keys.events();
        let idle = millis(self.claim_idle);
        self.retrying("claim abandoned events", |redis| {
            let mut con = redis.shared.clone();
            let stream = stream.clone();
            async move {
                let mut start = "0-0".to_string();
                for _ in 0..CLAIM_ROUNDS {
                    let cmd = ::redis::cmd("XAUTOCLAIM")
                        .arg(&stream)
                        .arg(group)
                        .arg(consumer)
                        .arg(idle)
                        .arg(&start)
                        .arg("COUNT")
                        .arg(max)
                        .to_owned();
                    let reply: StreamAutoClaimReply =
                        in_group(&mut con, &stream, group, &cmd).await?;
                    if !reply.claimed.is_empty() {
                        return Ok(reply.claimed);
                    }
                    if reply.next_stream_id == "0-0" {
                        break;
                    }
                    start = reply.next_stream_id;
                }
                Ok(Vec::new())
            }
        })
        .await
    }

    /// Events never handed to `group`, waiting up to `block` for one to arrive. A zero
    /// `block` sends no `BLOCK` at all (`BLOCK 0` would wait forever).
    async fn read_new(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<StreamId>, StoreError> {
        let stream = self.keys.events();
        let until = Instant::now() + block;
        let reply = self
            .retrying("read events", |redis| {
                let stream = stream.clone();
                // A retry after a dropped connection waits only for what is left.
                let wait = until.saturating_duration_since(Instant::now());
                async move {
                    let mut options = StreamReadOptions::default()
                        .group(group, consumer)
                        .count(max);
                    let wait_ms = millis(wait);
                    if wait_ms == 0 {
                        let cmd = xreadgroup(&stream, options);
                        let mut con = redis.shared.clone();
                        return in_group(&mut con, &stream, group, &cmd).await;
                    }
                    options = options.block(usize::try_from(wait_ms).unwrap_or(usize::MAX));
                    let cmd = xreadgroup(&stream, options);
                    let mut con = self.readers.take(&redis).await?;
                    let read = in_group::<Option<StreamReadReply>>(&mut con, &stream, group, &cmd);
                    match tokio::time::timeout(wait + BLOCK_GRACE, read).await {
                        Ok(Ok(reply)) => {
                            self.readers.put_back(redis.generation, con);
                            Ok(reply)
                        }
                        Ok(Err(err)) => {
                            self.readers.forget_all();
                            Err(err)
                        }
                        Err(_) => Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "a blocking read outlived its BLOCK time",
                        )
                        .into()),
                    }
                }
            })
            .await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Events from stream entries. An entry this version cannot read is logged and
    /// acknowledged, so it is not handed out again and again; it never fails the read.
    /// Entries read `fresh` (never handed to this group before) keep the record a
    /// `finished` event carries; entries taken over drop it (see [`Event::record`]).
    async fn decode(
        &self,
        group: &str,
        entries: Vec<StreamId>,
        fresh: bool,
    ) -> Vec<(EventId, Event)> {
        let mut events = Vec::with_capacity(entries.len());
        let mut unreadable = Vec::new();
        for entry in entries {
            let parsed = match entry.get::<Vec<u8>>("event") {
                Some(json) => serde_json::from_slice::<Event>(&json).map_err(|e| e.to_string()),
                None => Err("it has no `event` field".to_string()),
            };
            match parsed {
                Ok(mut event) => {
                    if fresh && matches!(event.kind, EventKind::Finished { .. }) {
                        event.record = carried_record(&entry);
                    }
                    events.push((entry.id, event))
                }
                Err(reason) => {
                    tracing::warn!(
                        event_id = %entry.id,
                        group,
                        %reason,
                        "skipping an event this version cannot read"
                    );
                    unreadable.push(entry.id);
                }
            }
        }
        if !unreadable.is_empty() {
            if let Err(err) = self.ack(group, &unreadable).await {
                tracing::warn!(group, error = %err, "could not acknowledge unreadable events");
            }
        }
        events
    }

    pub(super) async fn ack(&self, group: &str, ids: &[EventId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let stream = self.keys.events();
        self.retrying("acknowledge events", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("XACK")
                .arg(&stream)
                .arg(group)
                .arg(ids)
                .to_owned();
            async move {
                match cmd.query_async::<usize>(&mut con).await {
                    // No group, nothing pending: the acknowledgement has nothing to do.
                    Err(err) if err.code() == Some("NOGROUP") => Ok(0),
                    other => other,
                }
            }
        })
        .await?;
        Ok(())
    }
}

/// The record a `finished` entry carries beside its event (its job and its result), if it
/// carries one this version can read; one it cannot is read from the store instead.
fn carried_record(entry: &StreamId) -> Option<Box<JobRecord>> {
    let (job, result) = (
        entry.get::<Vec<u8>>("job")?,
        entry.get::<Vec<u8>>("result")?,
    );
    let read = serde_json::from_slice::<Job>(&job)
        .and_then(|job| Ok((job, serde_json::from_slice::<JobResult>(&result)?)));
    match read {
        Ok((job, result)) => Some(Box::new(JobRecord {
            job,
            status: result.status,
            worker: Some(result.worker.clone()),
            started_at: Some(result.started_at),
            result: Some(result),
        })),
        Err(err) => {
            tracing::debug!(event_id = %entry.id, error = %err, "a finished event's record does not read; reading the store instead");
            None
        }
    }
}

fn xreadgroup(stream: &str, options: StreamReadOptions) -> Cmd {
    ::redis::cmd("XREADGROUP")
        .arg(options)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .to_owned()
}

/// Runs a group command, creating the group (and the stream) first if Redis says it
/// does not exist: on first use, or after the data was lost.
async fn in_group<T: FromRedisValue>(
    con: &mut impl ConnectionLike,
    stream: &str,
    group: &str,
    cmd: &Cmd,
) -> RedisResult<T> {
    match cmd.query_async(con).await {
        Err(err) if err.code() == Some("NOGROUP") => {
            create_group(con, stream, group).await?;
            cmd.query_async(con).await
        }
        other => other,
    }
}

/// `XGROUP CREATE <stream> <group> 0 MKSTREAM`: from the first event, so nothing
/// appended before the group existed is missed. Another reader creating it first is
/// fine.
async fn create_group(con: &mut impl ConnectionLike, stream: &str, group: &str) -> RedisResult<()> {
    let created = ::redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async::<()>(con)
        .await;
    match created {
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        Ok(()) => {
            tracing::info!(stream, group, "created consumer group");
            Ok(())
        }
        other => other,
    }
}
