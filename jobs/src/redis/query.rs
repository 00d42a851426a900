//! Filtered pages of the job history (`Store::job_page`) and the index of dead-lettered
//! jobs (`Store::note_dead_letter`).
//!
//! # Indexes
//!
//! Besides the history (`octobox:jobs`), ZSETs of job ids scored like it, by creation
//! time in milliseconds: one per command, one per requester identity, one per status,
//! and one of the jobs the broker gave up on. The record scripts (`records`) write the
//! first three with the record itself, so no reader sees a record without its entries:
//! `record_job` adds a new job to its command's, its requester's and the `queued` index;
//! `mark_started` moves it to `running`; `finish_job`'s first result moves it to its
//! final status. The dead-letter reporter notes a job before it stores its result. Each
//! index is trimmed to the retention whenever it is written, like the history, and
//! expires a retention after its last write, so the index of a command nobody runs any
//! more disappears.
//!
//! # A page
//!
//! 1. Choose the index to walk: of those the query names (exactly one status, a
//!    command, a requester, dead-lettered), the one with the fewest entries in the
//!    query's time range (one `ZCOUNT` each, in one round trip; an empty one ends the
//!    page at once); with none, the history.
//! 2. Walk it newest first from the query's cursor, a chunk at a time: one round trip
//!    reads the entries after the cursor (`ZRANGE … BYSCORE REV LIMIT`, `since` and
//!    `until` as score bounds; see `chunk`), then one pipeline reads their records (`HMGET`
//!    each, and `ZMSCORE` in the dead-letter index when that filter is not the walked
//!    index). Every filter is applied to every record in Rust: an index only narrows
//!    the walk. A record of another status, or whose stored JSON cannot hold the text
//!    asked for, is passed over undecoded. Chunks start at the page size (twice that
//!    when the walked index does not imply every filter) and double, up to
//!    [`MAX_CHUNK`].
//! 3. Stop when the page is full, the index has nothing older, or [`SCAN_BUDGET`]
//!    entries have been examined: `next` is then the position of the last entry
//!    examined, and the caller goes on from there.
//!
//! So a call costs Redis O(log N + k) per chunk for an index of N entries and a chunk of
//! k (O(log² N + k) by rank, when the cursor's millisecond is crowded), at most
//! [`SCAN_BUDGET`] records per call, whatever the size of the history; a deep page costs
//! what the first one does.
//!
//! # Positions
//!
//! A ZSET orders its entries by score, then by member bytes; members are ids in their
//! lowercase hyphenated form, whose byte order is the ids' order. A chunk starts exactly
//! after a position (ms, id), whether or not that id is still in the index (its job
//! moved to another status, its entry was trimmed), so a cursor never skips or repeats a
//! job, however many share its millisecond.
//!
//! Entries whose record has expired are skipped (counted as examined) and dropped from
//! the walked index, as `recent_jobs` drops them from the history.
//!
//! # Data written before the indexes
//!
//! A job recorded by a version without these indexes is in the history only: a query
//! that walks an index (one status, a command, a requester, dead-lettered) does not find
//! it, one that walks the history (any other filters) does. Such a job that finishes after the upgrade
//! enters its final status's index.

use std::sync::LazyLock;

use ::redis::{FromRedisValue, Script, Value};
use chrono::Utc;

use super::records::{decode_fields, RECORD_FIELDS};
use super::{millis, RedisStore};
use crate::job::{Job, JobStatus};
use crate::query::{Filters, JobCursor, JobPage, JobQuery};
use crate::store::StoreError;

/// The most index entries (and so records) one `job_page` call examines. At that many,
/// a page that is not full ends with `next` set.
pub const SCAN_BUDGET: usize = 2_000;

/// The most entries read in one round trip.
const MAX_CHUNK: usize = 500;

/// Past this many entries in the cursor's millisecond, a chunk is found by rank.
const SAME_MS_MAX: usize = 256;

/// One chunk of an index, newest first, found by rank: used after a cursor whose
/// millisecond holds [`SAME_MS_MAX`] entries or more (see `chunk`). KEYS: the index. ARGV: since (ms, inclusive, or
/// empty), until (ms, exclusive, or empty), the cursor's ms (or empty) and id, how many.
/// Answers `more` (`1` when entries older than the chunk remain in range, else `0`),
/// then member, score, member, score… oldest first.
///
/// Ranks: `ZCOUNT -inf (ms` is how many entries come before millisecond `ms`; inside
/// one millisecond, entries are in member order, searched by rank (`ZRANGE i i`) with a
/// byte comparison (Lua's `<` on strings follows the server's locale, a ZSET does not).
static INDEX_PAGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
local function less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local top = redis.call('ZCARD', key)
if ARGV[2] ~= '' then top = redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[2]) end
if ARGV[3] ~= '' then
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[3])
  local hi = redis.call('ZCOUNT', key, '-inf', ARGV[3])
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if less(redis.call('ZRANGE', key, mid, mid)[1], ARGV[4]) then lo = mid + 1 else hi = mid end
  end
  top = math.min(top, lo)
end
local bottom = 0
if ARGV[1] ~= '' then bottom = redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[1]) end
local from = math.max(bottom, top - tonumber(ARGV[5]))
if from >= top then return {'0'} end
local out = {from > bottom and '1' or '0'}
local entries = redis.call('ZRANGE', key, from, top - 1, 'WITHSCORES')
for i = 1, #entries do out[i + 1] = entries[i] end
return out
",
    )
});

/// A record's hash fields as `HMGET` reads them, in the order of [`RECORD_FIELDS`]; all
/// `None` when the record is gone.
type Fields = Vec<Option<Vec<u8>>>;

/// Field `name` of `fields`.
fn field<'f>(fields: &'f Fields, name: &str) -> Option<&'f [u8]> {
    let at = RECORD_FIELDS.iter().position(|f| *f == name)?;
    fields.get(at)?.as_deref()
}

/// The `status` field of a record, when it reads as one.
fn status_of(fields: &Fields) -> Option<JobStatus> {
    let text = std::str::from_utf8(field(fields, "status")?).ok()?;
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

/// Entries of one chunk, newest first: member and position.
#[derive(Default)]
struct Chunk {
    entries: Vec<(String, JobCursor)>,
    /// Members that are not job ids (dropped from the index).
    strays: Vec<String>,
    /// Older entries remain in range.
    more: bool,
}

impl Chunk {
    /// The chunk of `index` that `read` (members and scores, newest first) is.
    fn of(index: &str, read: Vec<(String, f64)>, more: bool) -> Chunk {
        let mut chunk = Chunk {
            entries: Vec::with_capacity(read.len()),
            strays: Vec::new(),
            more,
        };
        for (member, score) in read {
            match member.parse() {
                Ok(id) if score.is_finite() => {
                    let position = JobCursor::new(score as i64, id);
                    chunk.entries.push((member, position));
                }
                _ => {
                    tracing::warn!(
                        member,
                        index,
                        "history index entry is not a job; dropping it"
                    );
                    chunk.strays.push(member);
                }
            }
        }
        chunk
    }
}

impl RedisStore {
    pub(super) async fn page(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let filters = query.filters()?;
        let limit = query.page_size();
        let Some(index) = self.index_for(query, &filters).await? else {
            return Ok(JobPage {
                jobs: Vec::new(),
                next: None,
                scanned: 0,
            });
        };
        // Walking the dead-letter index, each entry is in it; else, when the filter asks,
        // each is looked up there.
        let dead = self.keys.dead_lettered();
        let walks_dead = index == dead;
        let check_dead = query.dead_lettered && !walks_dead;
        // Filters the walked index does not imply: pages then need more entries than jobs.
        let set = [
            !query.statuses.is_empty(),
            query.command.is_some(),
            query.requester.is_some(),
            query.adapter.is_some(),
            query.text.is_some(),
            query.dead_lettered,
        ];
        let walks_history = index == self.keys.history();
        let others = set.iter().filter(|&&s| s).count() > usize::from(!walks_history);
        let mut chunk = if others { limit * 2 } else { limit }.min(MAX_CHUNK);

        let mut at = query.after;
        let (mut jobs, mut scanned) = (Vec::new(), 0usize);
        let mut scratch = Vec::new();
        let next = loop {
            let room = SCAN_BUDGET.saturating_sub(scanned);
            if room == 0 {
                break at;
            }
            let found = self.chunk(&index, &filters, at, chunk.min(room)).await?;
            if !found.strays.is_empty() {
                // Dropped now, so the next chunk does not meet them again.
                scanned += found.strays.len();
                self.forget(&index, &found.strays).await;
            }
            if found.entries.is_empty() {
                if found.more && !found.strays.is_empty() {
                    continue;
                }
                break None;
            }
            let records = self
                .read_records(&found.entries, check_dead.then_some(dead.as_str()))
                .await?;
            let count = found.entries.len();
            let mut expired = Vec::new();
            let mut older_remain = found.more;
            for (i, ((member, position), (fields, noted))) in
                found.entries.into_iter().zip(records).enumerate()
            {
                scanned += 1;
                at = Some(position);
                if fields.iter().all(Option::is_none) {
                    expired.push(member);
                    continue;
                }
                // A record of another status, or whose JSON cannot hold the text, is
                // skipped undecoded.
                if status_of(&fields).is_some_and(|status| !filters.admits_status(status)) {
                    continue;
                }
                let raw = ["job", "result"].map(|name| field(&fields, name).unwrap_or_default());
                if !filters.may_hold_text(&raw, &mut scratch) {
                    continue;
                }
                let key = self.keys.job(position.id());
                let record = decode_fields(&key, |name| field(&fields, name));
                match record {
                    Err(err) => tracing::warn!(key, error = %err, "skipping a job record"),
                    Ok(record) if filters.matches(&record, noted || walks_dead) => {
                        jobs.push(record);
                        if jobs.len() == limit {
                            older_remain |= i + 1 < count;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            self.forget(&index, &expired).await;
            if jobs.len() == limit || !found.more {
                break if older_remain { at } else { None };
            }
            chunk = (chunk * 2).min(MAX_CHUNK);
        };
        Ok(JobPage {
            jobs,
            next,
            scanned,
        })
    }

    /// The index a query walks (see the module documentation); `None` when one it names
    /// holds nothing in its range.
    async fn index_for(
        &self,
        query: &JobQuery,
        filters: &Filters<'_>,
    ) -> Result<Option<String>, StoreError> {
        let mut named = Vec::new();
        if let [status] = query.statuses.as_slice() {
            named.push(self.keys.by_status(*status));
        }
        if let Some(command) = &query.command {
            named.push(self.keys.by_command(command));
        }
        if let Some(requester) = &query.requester {
            named.push(self.keys.by_requester(requester));
        }
        if query.dead_lettered {
            named.push(self.keys.dead_lettered());
        }
        if named.len() < 2 {
            return Ok(Some(named.pop().unwrap_or_else(|| self.keys.history())));
        }
        let min = filters
            .since_ms
            .map_or_else(|| "-inf".to_string(), |ms| ms.to_string());
        let below = [
            filters.until_ms.map(|ms| ms.saturating_sub(1)),
            query.after.map(|at| at.created_ms()),
        ];
        let max = below
            .into_iter()
            .flatten()
            .min()
            .map_or_else(|| "+inf".to_string(), |ms| ms.to_string());
        let counts = self
            .retrying("count the job history's indexes", |redis| {
                let mut con = redis.shared.clone();
                let mut pipe = ::redis::pipe();
                for key in &named {
                    pipe.cmd("ZCOUNT").arg(key).arg(&min).arg(&max);
                }
                async move { pipe.query_async::<Vec<u64>>(&mut con).await }
            })
            .await?;
        let fewest = counts
            .into_iter()
            .zip(named)
            .min_by_key(|(count, _)| *count);
        Ok(fewest.filter(|(count, _)| *count > 0).map(|(_, key)| key))
    }

    /// The next (at most) `count` entries of `index` after position `at`, in range.
    ///
    /// Two reads by score in one round trip: the entries of the cursor's millisecond
    /// (kept when their id is below the cursor's), and those of the milliseconds before
    /// it. Each read is atomic and they cover disjoint scores, so the chunk is exact
    /// whatever changed in between. Only when the cursor's millisecond holds
    /// [`SAME_MS_MAX`] entries or more is the chunk found by rank (`INDEX_PAGE`), which
    /// costs Redis more per entry (each passes through Lua).
    async fn chunk(
        &self,
        index: &str,
        filters: &Filters<'_>,
        at: Option<JobCursor>,
        count: usize,
    ) -> Result<Chunk, StoreError> {
        let (since, until) = (filters.since_ms, filters.until_ms);
        if at.is_some_and(|at| since.is_some_and(|since| at.created_ms() < since)) {
            return Ok(Chunk::default());
        }
        // The cursor's millisecond, when it is in range; the milliseconds before both.
        let block = at.filter(|at| until.is_none_or(|until| at.created_ms() < until));
        let below = [until, at.map(|at| at.created_ms())]
            .into_iter()
            .flatten()
            .min();
        let min = since.map_or_else(|| "-inf".to_string(), |ms| ms.to_string());
        let max = below.map_or_else(|| "+inf".to_string(), |ms| format!("({ms}"));
        let (same_ms, older) = self
            .retrying("read the job history", |redis| {
                let mut con = redis.shared.clone();
                let mut pipe = ::redis::pipe();
                if let Some(at) = block {
                    let ms = at.created_ms();
                    pipe.cmd("ZRANGE").arg(index).arg(ms).arg(ms).arg("BYSCORE");
                    pipe.arg("REV").arg("LIMIT").arg(0).arg(SAME_MS_MAX);
                    pipe.arg("WITHSCORES");
                }
                pipe.cmd("ZRANGE")
                    .arg(index)
                    .arg(&max)
                    .arg(&min)
                    .arg("BYSCORE");
                pipe.arg("REV").arg("LIMIT").arg(0).arg(count + 1);
                pipe.arg("WITHSCORES");
                async move {
                    let mut replies = pipe
                        .query_async::<Vec<Vec<(String, f64)>>>(&mut con)
                        .await?;
                    let older = replies.pop().unwrap_or_default();
                    Ok((replies.pop(), older))
                }
            })
            .await?;
        let mut entries = match (block, same_ms) {
            (Some(at), Some(same_ms)) => {
                if same_ms.len() >= SAME_MS_MAX {
                    return self.chunk_by_rank(index, filters, at, count).await;
                }
                let id = at.id().to_string();
                same_ms
                    .into_iter()
                    .filter(|(member, _)| member.as_str() < id.as_str())
                    .collect()
            }
            _ => Vec::new(),
        };
        entries.extend(older);
        let more = entries.len() > count;
        entries.truncate(count);
        Ok(Chunk::of(index, entries, more))
    }

    /// [`Self::chunk`] after a cursor whose millisecond holds many entries, by rank, in
    /// one script call (`INDEX_PAGE`).
    async fn chunk_by_rank(
        &self,
        index: &str,
        filters: &Filters<'_>,
        at: JobCursor,
        count: usize,
    ) -> Result<Chunk, StoreError> {
        let bound = |ms: Option<i64>| ms.map(|ms| ms.to_string()).unwrap_or_default();
        let (since, until) = (bound(filters.since_ms), bound(filters.until_ms));
        let (at_ms, at_id) = (at.created_ms().to_string(), at.id().to_string());
        let reply = self
            .retrying("read the job history", |redis| {
                let mut con = redis.shared.clone();
                let mut call = INDEX_PAGE.prepare_invoke();
                call.key(index)
                    .arg(&since)
                    .arg(&until)
                    .arg(&at_ms)
                    .arg(&at_id)
                    .arg(count);
                async move { call.invoke_async::<Vec<String>>(&mut con).await }
            })
            .await?;
        let mut reply = reply.into_iter();
        let more = reply.next().as_deref() == Some("1");
        let rest: Vec<String> = reply.collect();
        let entries = rest
            .chunks_exact(2)
            .rev()
            .map(|pair| (pair[0].clone(), pair[1].parse::<f64>().unwrap_or(f64::NAN)))
            .collect();
        Ok(Chunk::of(index, entries, more))
    }

    /// The records of `entries` (their hash fields, none for a record that expired) in
    /// one round trip, each with whether it is in the dead-letter index `dead` (when
    /// given; else `false`).
    async fn read_records(
        &self,
        entries: &[(String, JobCursor)],
        dead: Option<&str>,
    ) -> Result<Vec<(Fields, bool)>, StoreError> {
        let keys: Vec<String> = entries
            .iter()
            .map(|(_, at)| self.keys.job(at.id()))
            .collect();
        let replies = self
            .retrying("read job records", |redis| {
                let mut con = redis.shared.clone();
                let mut pipe = ::redis::pipe();
                if let Some(dead) = dead {
                    pipe.cmd("ZMSCORE").arg(dead);
                    for (member, _) in entries {
                        pipe.arg(member);
                    }
                }
                for key in &keys {
                    pipe.cmd("HMGET").arg(key).arg(&RECORD_FIELDS[..]);
                }
                async move { pipe.query_async::<Vec<Value>>(&mut con).await }
            })
            .await?;
        let mut replies = replies.into_iter();
        let unreadable = |e: ::redis::ParsingError| StoreError::Corrupt {
            what: "a reply to reading job records".into(),
            reason: e.to_string(),
        };
        let dead: Vec<bool> = match dead {
            Some(_) => {
                let scores = replies.next().unwrap_or(Value::Nil);
                Vec::<Option<f64>>::from_redis_value(scores)
                    .map_err(unreadable)?
                    .into_iter()
                    .map(|score| score.is_some())
                    .collect()
            }
            None => vec![false; keys.len()],
        };
        let mut records = Vec::with_capacity(keys.len());
        for i in 0..keys.len() {
            let fields = replies.next().unwrap_or(Value::Nil);
            let fields = Fields::from_redis_value(fields).map_err(unreadable)?;
            records.push((fields, dead.get(i).copied().unwrap_or(false)));
        }
        Ok(records)
    }

    /// Housekeeping: drops `members` from `index`; a failure leaves entries that are
    /// skipped next time too.
    async fn forget(&self, index: &str, members: &[String]) {
        if members.is_empty() {
            return;
        }
        let forgotten = self
            .retrying("trim a job history index", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("ZREM").arg(index).arg(members).to_owned();
                async move { cmd.query_async::<()>(&mut con).await }
            })
            .await;
        if let Err(err) = forgotten {
            tracing::warn!(index, error = %err, "could not drop expired jobs from a history index");
        }
    }

    /// Adds `job` to the dead-letter index, trimmed to the retention and expiring after it.
    pub(super) async fn note_dead(&self, job: &Job) -> Result<(), StoreError> {
        let key = self.keys.dead_lettered();
        let member = job.id.to_string();
        let score = job.created_at.timestamp_millis();
        let retention = millis(self.retention);
        let cutoff = Utc::now().timestamp_millis() - retention as i64;
        self.retrying("note a dead-lettered job", |redis| {
            let mut con = redis.shared.clone();
            let mut pipe = ::redis::pipe();
            pipe.cmd("ZADD").arg(&key).arg(score).arg(&member).ignore();
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(format!("({cutoff}"))
                .ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(retention.max(1)).ignore();
            async move { pipe.query_async::<()>(&mut con).await }
        })
        .await
    }
}
