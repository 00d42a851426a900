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
//! 2. Walk it newest first from the query's cursor, a chunk at a time: the entries after
//!    the cursor (`ZRANGE … BYSCORE REV LIMIT`, `since` and `until` as score bounds; see
//!    `ChunkRead`); each entry looked up in the other indexes the query names (`ZMSCORE`,
//!    one round trip), and the records of those in all of them read (`HMGET`, one
//!    pipeline). When filters the walked index does not imply may leave the page short,
//!    the next chunk is read in the same round trip. Every filter is then applied to
//!    each record in Rust: the indexes only narrow the walk. A record of another status,
//!    or whose stored JSON cannot hold the text asked for, is passed over undecoded.
//!    Chunks start at the page size (twice that when the walked index does not imply
//!    every filter) and double, up to [`MAX_CHUNK`].
//! 3. Stop when the page is full, the index has nothing older, or [`SCAN_BUDGET`]
//!    entries have been examined: `next` is then the position of the last entry
//!    examined, and the caller goes on from there.
//!
//! So a call costs Redis O(log N + k) per chunk for an index of N entries and a chunk of
//! k (O(log² N + k) by rank, when the cursor's millisecond is crowded), and at most
//! [`SCAN_BUDGET`] entries examined (and so records read) per call, whatever the size of
//! the history; a deep page costs what the first one does.
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
//! naming one status, a command, a requester or dead-lettered does not find it (it walks
//! those indexes and looks entries up in them); one with only other filters walks the
//! history and does. Such a job that finishes after the upgrade
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
/// millisecond holds [`SAME_MS_MAX`] entries or more (see `ChunkRead`). KEYS: the index. ARGV: since (ms, inclusive, or
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

/// Where a page's records are read: the walked index, and the other indexes the query
/// names, each entry checked in them before its record is read.
struct RecordReads<'a> {
    index: &'a str,
    members_of: &'a [String],
}

/// The reads of one chunk: the entries of `index` after `at`, in range, at most `count`.
///
/// Two reads by score: the entries of the cursor's millisecond (kept when their id is
/// below the cursor's), and those of the milliseconds before it. Each read is atomic and
/// they cover disjoint scores, so the chunk is exact whatever changed in between. Only
/// when the cursor's millisecond holds [`SAME_MS_MAX`] entries or more is the chunk
/// found by rank instead (`INDEX_PAGE`), which costs Redis more per entry (each passes
/// through Lua).
#[derive(Clone, Copy)]
struct ChunkRead {
    /// The cursor, when its millisecond is in range.
    block: Option<JobCursor>,
    /// Exclusive: the cursor's millisecond or `until`, whichever is lower.
    below: Option<i64>,
    count: usize,
}

impl ChunkRead {
    /// `None` when nothing after `at` is in range.
    fn new(filters: &Filters<'_>, at: Option<JobCursor>, count: usize) -> Option<ChunkRead> {
        let (since, until) = (filters.since_ms, filters.until_ms);
        if at.is_some_and(|at| since.is_some_and(|since| at.created_ms() < since)) {
            return None;
        }
        Some(ChunkRead {
            block: at.filter(|at| until.is_none_or(|until| at.created_ms() < until)),
            below: [until, at.map(|at| at.created_ms())]
                .into_iter()
                .flatten()
                .min(),
            count,
        })
    }

    /// Adds the reads to `pipe`: one or two `ZRANGE … BYSCORE REV LIMIT … WITHSCORES`.
    fn add_to(&self, pipe: &mut ::redis::Pipeline, index: &str, filters: &Filters<'_>) {
        if let Some(at) = self.block {
            let ms = at.created_ms();
            pipe.cmd("ZRANGE").arg(index).arg(ms).arg(ms).arg("BYSCORE");
            pipe.arg("REV").arg("LIMIT").arg(0).arg(SAME_MS_MAX);
            pipe.arg("WITHSCORES");
        }
        let min = filters
            .since_ms
            .map_or_else(|| "-inf".to_string(), |ms| ms.to_string());
        let max = self
            .below
            .map_or_else(|| "+inf".to_string(), |ms| format!("({ms}"));
        pipe.cmd("ZRANGE")
            .arg(index)
            .arg(max)
            .arg(min)
            .arg("BYSCORE");
        pipe.arg("REV").arg("LIMIT").arg(0).arg(self.count + 1);
        pipe.arg("WITHSCORES");
    }
}

fn unreadable(e: ::redis::ParsingError) -> StoreError {
    StoreError::Corrupt {
        what: "a reply to reading the job history".into(),
        reason: e.to_string(),
    }
}

impl RedisStore {
    pub(super) async fn page(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let filters = query.filters()?;
        let limit = query.page_size();
        let Some((index, members_of)) = self.indexes_for(query, &filters).await? else {
            return Ok(JobPage {
                jobs: Vec::new(),
                next: None,
                scanned: 0,
            });
        };
        let reads = RecordReads {
            index: &index,
            members_of: &members_of,
        };
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
        let mut size = if others { limit * 2 } else { limit }.min(MAX_CHUNK);

        let mut at = query.after;
        let (mut jobs, mut scanned) = (Vec::new(), 0usize);
        let mut scratch = Vec::new();
        let mut found = self.read_chunk(&index, &filters, at, size).await?;
        let next = loop {
            if !found.strays.is_empty() {
                // Dropped now, so the next chunk does not meet them again.
                scanned += found.strays.len();
                self.forget(&index, &found.strays).await;
            }
            let room = SCAN_BUDGET.saturating_sub(scanned);
            if found.entries.is_empty() {
                if !found.more {
                    break None;
                }
                if room == 0 {
                    break at;
                }
                found = self
                    .read_chunk(&index, &filters, at, size.min(room))
                    .await?;
                continue;
            }
            // With filters the index does not imply, the next chunk is read with these
            // records, after the last of them (without, these fill the page).
            size = (size * 2).min(MAX_CHUNK);
            let room = room.saturating_sub(found.entries.len());
            let ahead = match found.entries.last() {
                Some((_, last)) if others && found.more && room > 0 => {
                    ChunkRead::new(&filters, Some(*last), size.min(room))
                }
                _ => None,
            };
            let (records, ahead) = self
                .read_records(&reads, &found.entries, ahead, &filters)
                .await?;
            let count = found.entries.len();
            let mut expired = Vec::new();
            let mut older_remain = found.more;
            for (i, ((member, position), fields)) in
                found.entries.into_iter().zip(records).enumerate()
            {
                scanned += 1;
                at = Some(position);
                // Not in another index the query names: passed over unread.
                let Some(fields) = fields else {
                    continue;
                };
                if fields.iter().all(Option::is_none) {
                    expired.push(member);
                    continue;
                }
                // A record of another status, or whose JSON cannot hold the text, is
                // passed over undecoded.
                if status_of(&fields).is_some_and(|status| !filters.admits_status(status)) {
                    continue;
                }
                let raw = ["job", "result"].map(|name| field(&fields, name).unwrap_or_default());
                if !filters.may_hold_text(&raw, &mut scratch) {
                    continue;
                }
                let key = self.keys.job(position.id());
                match decode_fields(&key, |name| field(&fields, name)) {
                    Err(err) => tracing::warn!(key, error = %err, "skipping a job record"),
                    // Read only when in every index named (the dead letters' among them).
                    Ok(record) if filters.matches(&record, query.dead_lettered) => {
                        jobs.push(record);
                        if jobs.len() == limit {
                            older_remain |= i + 1 < count;
                            break;
                        }
                    }
                    Ok(_) => {}
                }
            }
            self.forget(&index, &expired).await;
            if jobs.len() == limit || !older_remain {
                break older_remain.then_some(at).flatten();
            }
            found = match ahead {
                Some(ahead) => ahead,
                None if room > 0 => {
                    self.read_chunk(&index, &filters, at, size.min(room))
                        .await?
                }
                // The budget is spent.
                None => break at,
            };
        };
        Ok(JobPage {
            jobs,
            next,
            scanned,
        })
    }

    /// The index a query walks (see the module documentation), and the other indexes it
    /// names, whose entries must be in too; `None` when one it names holds nothing in
    /// its range.
    async fn indexes_for(
        &self,
        query: &JobQuery,
        filters: &Filters<'_>,
    ) -> Result<Option<(String, Vec<String>)>, StoreError> {
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
            let walked = named.pop().unwrap_or_else(|| self.keys.history());
            return Ok(Some((walked, Vec::new())));
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
            .iter()
            .enumerate()
            .min_by_key(|(_, count)| **count)
            .map(|(i, count)| (i, *count));
        match fewest {
            Some((i, count)) if count > 0 => {
                let walked = named.remove(i);
                Ok(Some((walked, named)))
            }
            _ => Ok(None),
        }
    }

    /// The next (at most) `count` entries of `index` after position `at`, in range, in
    /// a round trip of their own.
    async fn read_chunk(
        &self,
        index: &str,
        filters: &Filters<'_>,
        at: Option<JobCursor>,
        count: usize,
    ) -> Result<Chunk, StoreError> {
        let Some(read) = ChunkRead::new(filters, at, count) else {
            return Ok(Chunk::default());
        };
        let replies = self
            .retrying("read the job history", |redis| {
                let mut con = redis.shared.clone();
                let mut pipe = ::redis::pipe();
                read.add_to(&mut pipe, index, filters);
                async move { pipe.query_async::<Vec<Value>>(&mut con).await }
            })
            .await?;
        self.chunk_from(read, index, filters, &mut replies.into_iter())
            .await
    }

    /// The chunk `read` asked for, from its replies; by rank when the cursor's
    /// millisecond was crowded.
    async fn chunk_from(
        &self,
        read: ChunkRead,
        index: &str,
        filters: &Filters<'_>,
        replies: &mut impl Iterator<Item = Value>,
    ) -> Result<Chunk, StoreError> {
        let mut next = || -> Result<Vec<(String, f64)>, StoreError> {
            let reply = replies.next().unwrap_or(Value::Nil);
            Vec::<(String, f64)>::from_redis_value(reply).map_err(unreadable)
        };
        let same_ms = match read.block {
            Some(_) => Some(next()?),
            None => None,
        };
        let older = next()?;
        let mut entries = match (read.block, same_ms) {
            (Some(at), Some(same_ms)) => {
                if same_ms.len() >= SAME_MS_MAX {
                    return self.chunk_by_rank(index, filters, at, read.count).await;
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
        let more = entries.len() > read.count;
        entries.truncate(read.count);
        Ok(Chunk::of(index, entries, more))
    }

    /// A chunk after a cursor whose millisecond holds many entries, by rank, in
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

    /// The records of `entries` (their hash fields, all `None` for a record that
    /// expired; `None` for an entry missing from an index of `reads.members_of`, whose
    /// record is not read), and the chunk `ahead` asks for, read with them. Entries are
    /// checked in the other indexes first (`ZMSCORE`, one round trip), then the records
    /// of those in all of them are read (`HMGET`, one more).
    async fn read_records(
        &self,
        reads: &RecordReads<'_>,
        entries: &[(String, JobCursor)],
        ahead: Option<ChunkRead>,
        filters: &Filters<'_>,
    ) -> Result<(Vec<Option<Fields>>, Option<Chunk>), StoreError> {
        let mut ahead = ahead;
        let mut found_ahead = None;
        let mut keep = vec![true; entries.len()];
        if !reads.members_of.is_empty() {
            let replies = self
                .retrying("read the job history's indexes", |redis| {
                    let mut con = redis.shared.clone();
                    let mut pipe = ::redis::pipe();
                    for index in reads.members_of {
                        pipe.cmd("ZMSCORE").arg(index);
                        for (member, _) in entries {
                            pipe.arg(member);
                        }
                    }
                    if let Some(ahead) = ahead {
                        ahead.add_to(&mut pipe, reads.index, filters);
                    }
                    async move { pipe.query_async::<Vec<Value>>(&mut con).await }
                })
                .await?;
            let mut replies = replies.into_iter();
            for _ in reads.members_of {
                let scores = replies.next().unwrap_or(Value::Nil);
                let scores = Vec::<Option<f64>>::from_redis_value(scores).map_err(unreadable)?;
                for (keep, score) in keep.iter_mut().zip(scores) {
                    *keep &= score.is_some();
                }
            }
            if let Some(read) = ahead.take() {
                found_ahead = Some(
                    self.chunk_from(read, reads.index, filters, &mut replies)
                        .await?,
                );
            }
        }
        let keys: Vec<String> = entries
            .iter()
            .zip(&keep)
            .filter(|(_, keep)| **keep)
            .map(|((_, at), _)| self.keys.job(at.id()))
            .collect();
        if keys.is_empty() && ahead.is_none() {
            return Ok((vec![None; entries.len()], found_ahead));
        }
        let replies = self
            .retrying("read job records", |redis| {
                let mut con = redis.shared.clone();
                let mut pipe = ::redis::pipe();
                for key in &keys {
                    pipe.cmd("HMGET").arg(key).arg(&RECORD_FIELDS[..]);
                }
                if let Some(ahead) = ahead {
                    ahead.add_to(&mut pipe, reads.index, filters);
                }
                async move { pipe.query_async::<Vec<Value>>(&mut con).await }
            })
            .await?;
        let mut replies = replies.into_iter();
        let mut records = Vec::with_capacity(entries.len());
        for keep in keep {
            if !keep {
                records.push(None);
                continue;
            }
            let fields = replies.next().unwrap_or(Value::Nil);
            records.push(Some(Fields::from_redis_value(fields).map_err(unreadable)?));
        }
        if let Some(read) = ahead {
            found_ahead = Some(
                self.chunk_from(read, reads.index, filters, &mut replies)
                    .await?,
            );
        }
        Ok((records, found_ahead))
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
