//! `MemoryStore`: job records and the event stream in one process's memory.
//!
//! Bounded so an embedded bot can run for months: past [`MemoryStore::KEEP_JOBS`]
//! records it forgets those whose reply went out first (the record is final and every
//! consumer group has acknowledged its `finished` event), never one whose reply is still
//! to go; it drops events every consumer group has acknowledged. How many jobs can be
//! outstanding at once is bounded by the quotas (`[quota]`), which it also keeps.
//!
//! History pages (`job_page`) are a pass over the records kept, at most those bounds:
//! every record is examined, so a page never stops early and `next` is set only when
//! more matching jobs remain. Dead-lettered jobs are a set of ids, forgotten with their
//! records.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::places::Places;
use super::trail::Trail;
use crate::approval::{Approval, Decided, Decision};
use crate::audit::{AuditEntry, AuditPosition};
use crate::event::{Event, EventKind};
use crate::job::{Job, JobId, JobRecord, JobResult, JobStatus};
use crate::query::{JobCursor, JobPage, JobQuery};
use crate::store::{ChildCounts, EventId, ReplyClaim, Store, StoreError, WorkerInfo};

#[derive(Default)]
pub struct MemoryStore {
    inner: std::sync::Mutex<Inner>,
    appended: Notify,
    /// The audit trail and approvals.
    trail: std::sync::Mutex<Trail>,
    fan_outs: std::sync::Mutex<super::fan_out::FanOuts>,
}

#[derive(Default)]
struct Inner {
    records: HashMap<JobId, JobRecord>,
    /// Job ids, oldest first; ids whose record was forgotten stay until the next
    /// compaction (`recent_jobs` skips them).
    order: VecDeque<JobId>,
    /// Events with their sequence numbers; `log[0]` has sequence `first_seq`.
    log: VecDeque<Event>,
    first_seq: u64,
    groups: HashMap<String, Group>,
    /// The consumer groups that claimed each job's reply.
    delivered: HashMap<JobId, HashSet<String>>,
    workers: HashMap<String, (WorkerInfo, tokio::time::Instant)>,
    notes: HashMap<String, (String, tokio::time::Instant)>,
    /// Note keys, oldest first: past [`MemoryStore::KEEP_NOTES`] the oldest are forgotten
    /// whatever their TTL, so notes are bounded in number, not only in time.
    note_order: VecDeque<String>,
    /// Final records by the sequence number of their `finished` event, so the ones whose
    /// reply is out are found first, without walking every record.
    finished: BTreeMap<u64, JobId>,
    /// The jobs noted as dead-lettered (`note_dead_letter`) whose record is kept.
    dead: HashSet<JobId>,
    /// Quota places: who holds one under each key, released when the job ends.
    places: Places,
    /// Quota uses: per key, the window they were counted in and how many.
    uses: HashMap<String, (u64, u32)>,
}

#[derive(Default)]
struct Group {
    /// The sequence number of the next event this group has not been handed.
    next: u64,
    pending: BTreeSet<u64>,
}

impl MemoryStore {
    /// How many job records are kept before the oldest are forgotten.
    pub const KEEP_JOBS: usize = 10_000;
    /// How many notes are kept before the oldest are forgotten.
    pub const KEEP_NOTES: usize = 20_000;

    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn trail(&self) -> std::sync::MutexGuard<'_, Trail> {
        self.trail.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, inner: &mut Inner, event: Event) -> EventId {
        let seq = inner.first_seq + inner.log.len() as u64;
        inner.log.push_back(event);
        self.appended.notify_waiters();
        seq.to_string()
    }
}

impl Inner {
    fn record_mut(&mut self, id: JobId) -> Result<&mut JobRecord, StoreError> {
        self.records.get_mut(&id).ok_or(StoreError::UnknownJob(id))
    }

    /// Claims job `id`'s reply for `group`: `true` for the group's first caller only.
    fn claim(&mut self, id: JobId, group: &str) -> bool {
        self.delivered
            .entry(id)
            .or_default()
            .insert(group.to_string())
    }

    /// Drops events every group is done with, then, past the limit, the records whose
    /// reply went out first: final, with their `finished` event behind every group.
    fn trim(&mut self) {
        let done = self
            .groups
            .values()
            .map(|g| g.pending.first().copied().unwrap_or(g.next).min(g.next))
            .min()
            .unwrap_or(self.first_seq);
        while self.first_seq < done && !self.log.is_empty() {
            self.log.pop_front();
            self.first_seq += 1;
        }
        // Past the limit, forget records whose `finished` event every group is done with,
        // earliest first: each costs O(log n), and a record still to be replied to stops it.
        let mut excess = self.records.len().saturating_sub(MemoryStore::KEEP_JOBS);
        while excess > 0 {
            match self.finished.first_key_value() {
                Some((&seq, &id)) if seq < self.first_seq => {
                    self.finished.pop_first();
                    self.records.remove(&id);
                    self.delivered.remove(&id);
                    self.dead.remove(&id);
                    excess -= 1;
                }
                _ => break,
            }
        }
        // The ids of forgotten records leave `order` once they outnumber the kept ones:
        // one pass per as many removals, so linear overall.
        if self.order.len() > 2 * self.records.len() + 64 {
            let records = &self.records;
            self.order.retain(|id| records.contains_key(id));
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn record_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Entry::Vacant(slot) = inner.records.entry(job.id) {
            // Kept and shown: never a secret argument's text.
            slot.insert(JobRecord::queued(job.masked()));
            inner.order.push_back(job.id);
        }
        self.append(inner, Event::now(job.id, EventKind::Queued));
        inner.trim();
        Ok(())
    }

    async fn mark_started(
        &self,
        id: JobId,
        worker: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let record = inner.record_mut(id)?;
        if record.status.is_final() {
            return Ok(());
        }
        record.status = JobStatus::Running;
        record.worker = Some(worker.to_string());
        record.started_at = Some(at);
        let worker = worker.to_string();
        self.append(&mut inner, Event::now(id, EventKind::Started { worker }));
        Ok(())
    }

    async fn finish_job(&self, result: &JobResult) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let record = inner.record_mut(result.id)?;
        // The first result stands and appends the one `finished` event, as in Redis.
        if record.status.is_final() {
            return Ok(());
        }
        record.status = result.status;
        record.worker = Some(result.worker.clone());
        record.started_at.get_or_insert(result.started_at);
        record.result = Some(result.clone());
        let status = result.status;
        let seq = inner.first_seq + inner.log.len() as u64;
        inner.finished.insert(seq, result.id);
        inner.places.release(result.id);
        self.append(
            &mut inner,
            Event::now(result.id, EventKind::Finished { status }),
        );
        Ok(())
    }

    async fn append_event(&self, event: &Event) -> Result<EventId, StoreError> {
        let mut inner = self.lock();
        Ok(self.append(&mut inner, event.clone()))
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.lock().records.get(&id).cloned())
    }

    async fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .order
            .iter()
            .rev()
            .filter_map(|id| inner.records.get(id).cloned())
            .take(limit)
            .collect())
    }

    async fn job_page(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let filters = query.filters()?;
        let limit = query.page_size();
        let inner = self.lock();
        let mut matching: Vec<(JobCursor, &JobRecord)> = inner
            .records
            .values()
            .map(|record| (JobCursor::of(record), record))
            .filter(|(at, record)| {
                query.after.is_none_or(|after| *at < after)
                    && filters.matches(record, inner.dead.contains(&record.job.id))
            })
            .collect();
        let newest_first = |a: &(JobCursor, _), b: &(JobCursor, _)| b.0.cmp(&a.0);
        let more = matching.len() > limit;
        if more {
            matching.select_nth_unstable_by(limit, newest_first);
            matching.truncate(limit);
        }
        matching.sort_unstable_by(newest_first);
        Ok(JobPage {
            next: more.then(|| matching.last().map(|(at, _)| *at)).flatten(),
            jobs: matching.into_iter().map(|(_, r)| r.clone()).collect(),
            scanned: inner.records.len(),
        })
    }

    async fn note_dead_letter(&self, job: &Job) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.records.contains_key(&job.id) {
            inner.dead.insert(job.id);
        }
        Ok(())
    }

    async fn note_child_ended(
        &self,
        parent: JobId,
        child: JobId,
        status: JobStatus,
    ) -> Result<ChildCounts, StoreError> {
        let mut fan_outs = self.fan_outs.lock().unwrap_or_else(|p| p.into_inner());
        Ok(fan_outs.note(parent, child, status))
    }

    async fn read_events(
        &self,
        group: &str,
        _consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<(EventId, Event)>, StoreError> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            // Register for wake-ups before looking, so an append in between is not missed.
            let appended = self.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            {
                let mut inner = self.lock();
                let first = inner.first_seq;
                let end = first + inner.log.len() as u64;
                let g = inner.groups.entry(group.to_string()).or_default();
                g.next = g.next.max(first);
                let from = g.next;
                let to = end.min(from + max as u64);
                if from < to {
                    g.next = to;
                    g.pending.extend(from..to);
                    // Every read here is a first hand-out, so `finished` events carry
                    // their record as Redis's do.
                    let events = (from..to)
                        .map(|seq| {
                            let mut event = inner.log[(seq - first) as usize].clone();
                            if matches!(event.kind, EventKind::Finished { .. }) {
                                event.record = inner.records.get(&event.job).cloned().map(Box::new);
                            }
                            (seq.to_string(), event)
                        })
                        .collect();
                    return Ok(events);
                }
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn ack_events(&self, group: &str, ids: &[EventId]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(g) = inner.groups.get_mut(group) {
            for id in ids {
                if let Ok(seq) = id.parse::<u64>() {
                    g.pending.remove(&seq);
                }
            }
        }
        inner.trim();
        Ok(())
    }

    async fn claim_reply(
        &self,
        id: JobId,
        group: &str,
        adapters: &[String],
    ) -> Result<ReplyClaim, StoreError> {
        let mut inner = self.lock();
        let Some(record) = inner.records.get(&id) else {
            return Ok(ReplyClaim::Unknown);
        };
        if !adapters.contains(&record.job.origin.adapter) {
            return Ok(ReplyClaim::Elsewhere);
        }
        let record = Box::new(record.clone());
        Ok(match inner.claim(id, group) {
            true => ReplyClaim::Claimed(record),
            false => ReplyClaim::Taken,
        })
    }

    async fn claim_carried_reply(&self, id: JobId, group: &str) -> Result<bool, StoreError> {
        Ok(self.lock().claim(id, group))
    }

    async fn note_once(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = tokio::time::Instant::now();
        let mut inner = self.lock();
        match inner.notes.get(key) {
            Some((_, expires)) if *expires > now => Ok(false),
            _ => {
                let renewed = inner
                    .notes
                    .insert(key.to_string(), (value.to_string(), now + ttl))
                    .is_some();
                // An expired note noted again keeps its place: `note_order` holds each
                // key once, so forgetting the oldest is one removal.
                if !renewed {
                    inner.note_order.push_back(key.to_string());
                }
                while inner.note_order.len() > Self::KEEP_NOTES {
                    if let Some(old) = inner.note_order.pop_front() {
                        inner.notes.remove(&old);
                    }
                }
                Ok(true)
            }
        }
    }

    async fn note(&self, key: &str) -> Result<Option<String>, StoreError> {
        let now = tokio::time::Instant::now();
        Ok(self
            .lock()
            .notes
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(v, _)| v.clone()))
    }

    async fn heartbeat(&self, worker: &WorkerInfo, ttl: Duration) -> Result<(), StoreError> {
        let expires = tokio::time::Instant::now() + ttl;
        self.lock()
            .workers
            .insert(worker.name.clone(), (worker.clone(), expires));
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        let now = tokio::time::Instant::now();
        let mut inner = self.lock();
        inner.workers.retain(|_, (_, expires)| *expires > now);
        let mut list: Vec<_> = inner.workers.values().map(|(w, _)| w.clone()).collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn take_place(
        &self,
        key: &str,
        limit: u32,
        id: JobId,
        until: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.lock().places.take(key, limit, id, until, Utc::now()))
    }

    async fn give_back_place(&self, key: &str, id: JobId) -> Result<(), StoreError> {
        self.lock().places.give_back(key, id);
        Ok(())
    }

    async fn count_use(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        let index = now_ms / window_ms;
        let mut inner = self.lock();
        if inner.uses.len() >= Self::KEEP_JOBS {
            inner.uses.retain(|_, (w, _)| *w == index);
        }
        let entry = inner.uses.entry(key.to_string()).or_insert((index, 0));
        if entry.0 != index {
            *entry = (index, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        Ok((entry.1 > limit).then(|| Duration::from_millis((index + 1) * window_ms - now_ms)))
    }

    async fn append_audit(&self, entry: &AuditEntry, keep: Duration) -> Result<(), StoreError> {
        self.trail().append(entry, keep);
        Ok(())
    }

    async fn audit(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let page = self.trail().page(from, until, None, limit);
        Ok(page.into_iter().map(|(_, entry)| entry).collect())
    }

    async fn audit_page(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<AuditPosition>,
        limit: usize,
    ) -> Result<Vec<(AuditPosition, AuditEntry)>, StoreError> {
        Ok(self.trail().page(from, until, after, limit))
    }

    async fn hold_for_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        self.trail().hold(approval);
        Ok(())
    }

    async fn pending_approvals(&self, limit: usize) -> Result<Vec<Approval>, StoreError> {
        Ok(self.trail().pending(limit))
    }

    async fn approval(
        &self,
        id: JobId,
    ) -> Result<Option<(Approval, Option<Decision>)>, StoreError> {
        Ok(self.trail().get(id))
    }

    async fn decide_approval(&self, id: JobId, decision: &Decision) -> Result<Decided, StoreError> {
        Ok(self.trail().decide(id, decision))
    }

    fn describe(&self) -> String {
        "in-memory store".to_string()
    }

    /// An in-memory store serves one process only.
    fn scope(&self) -> String {
        format!("in-memory store of process {}", std::process::id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Origin, Output, Task};

    fn job() -> Job {
        Job::new(
            "echo",
            Default::default(),
            Task::native("echo"),
            Origin::new("console", "u"),
            Duration::from_secs(1),
        )
    }

    fn succeeded(id: JobId) -> JobResult {
        JobResult {
            id,
            status: JobStatus::Succeeded,
            output: Output::text("done"),
            worker: "w1".into(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            error: None,
        }
    }

    #[tokio::test]
    async fn past_the_limit_only_records_whose_reply_is_out_are_forgotten() {
        let store = MemoryStore::new();
        let extra = 50;
        let mut ids = Vec::new();
        for _ in 0..MemoryStore::KEEP_JOBS + extra {
            let j = job();
            store.record_job(&j).await.unwrap();
            ids.push(j.id);
        }
        // The oldest jobs finish while nobody has read their `finished` events yet, and
        // the newest are still outstanding: every record stays.
        for &id in &ids[..extra] {
            store.finish_job(&succeeded(id)).await.unwrap();
        }
        store.record_job(&job()).await.unwrap();
        for &id in &ids {
            assert!(store.job(id).await.unwrap().is_some(), "{id} was dropped");
        }
        // The reply reader reads and acknowledges everything: the finished ones go, and
        // no outstanding one does.
        loop {
            let events = store
                .read_events("bot", "c", 1000, Duration::ZERO)
                .await
                .unwrap();
            if events.is_empty() {
                break;
            }
            let seen: Vec<_> = events.into_iter().map(|(id, _)| id).collect();
            store.ack_events("bot", &seen).await.unwrap();
        }
        for &id in &ids[..extra] {
            assert!(store.job(id).await.unwrap().is_none(), "{id} was kept");
        }
        for &id in &ids[extra..] {
            assert!(store.job(id).await.unwrap().is_some(), "{id} was dropped");
        }
    }

    #[tokio::test]
    async fn a_page_is_newest_first_by_time_then_id_and_goes_on_after_its_cursor() {
        let store = MemoryStore::new();
        let at = Utc::now();
        let mut jobs: Vec<Job> = (0..5).map(|_| job()).collect();
        for j in &mut jobs {
            j.created_at = at;
        }
        // Recorded newest first: the order of recording does not matter.
        for j in jobs.iter().rev() {
            store.record_job(j).await.unwrap();
        }
        let query = JobQuery {
            limit: 2,
            ..Default::default()
        };
        let first = store.job_page(&query).await.unwrap();
        let ids: Vec<JobId> = first.jobs.iter().map(|r| r.job.id).collect();
        assert_eq!(ids, vec![jobs[4].id, jobs[3].id]);
        assert_eq!(first.next, Some(JobCursor::of(&first.jobs[1])));
        assert_eq!(first.scanned, 5);
        let last = store
            .job_page(&JobQuery {
                limit: 3,
                after: first.next,
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<JobId> = last.jobs.iter().map(|r| r.job.id).collect();
        assert_eq!(ids, vec![jobs[2].id, jobs[1].id, jobs[0].id]);
        assert_eq!(last.next, None, "nothing older remains");
    }

    #[tokio::test]
    async fn dead_letters_are_noted_for_kept_records_and_forgotten_with_them() {
        let store = MemoryStore::new();
        let (kept, never_recorded) = (job(), job());
        store.record_job(&kept).await.unwrap();
        store.note_dead_letter(&kept).await.unwrap();
        store.note_dead_letter(&never_recorded).await.unwrap();
        assert_eq!(store.lock().dead, HashSet::from([kept.id]));
        let dead = JobQuery {
            dead_lettered: true,
            ..Default::default()
        };
        let page = store.job_page(&dead).await.unwrap();
        assert_eq!(page.jobs.len(), 1);

        // Past the limit, a finished and delivered record goes, and its note with it.
        store.finish_job(&succeeded(kept.id)).await.unwrap();
        loop {
            let events = store
                .read_events("bot", "c", 1000, Duration::ZERO)
                .await
                .unwrap();
            if events.is_empty() {
                break;
            }
            let seen: Vec<_> = events.into_iter().map(|(id, _)| id).collect();
            store.ack_events("bot", &seen).await.unwrap();
        }
        for _ in 0..MemoryStore::KEEP_JOBS {
            store.record_job(&job()).await.unwrap();
        }
        assert_eq!(store.job(kept.id).await.unwrap(), None);
        assert!(store.lock().dead.is_empty());
        assert!(store.job_page(&dead).await.unwrap().jobs.is_empty());
    }

    #[tokio::test]
    async fn notes_are_bounded_in_number_whatever_their_ttl() {
        let store = MemoryStore::new();
        let week = Duration::from_secs(7 * 86_400);
        for i in 0..MemoryStore::KEEP_NOTES + 10 {
            assert!(store.note_once(&format!("n{i}"), "v", week).await.unwrap());
        }
        assert_eq!(store.note("n0").await.unwrap(), None);
        assert_eq!(store.note("n9").await.unwrap(), None);
        assert_eq!(store.note("n10").await.unwrap().as_deref(), Some("v"));
        let last = format!("n{}", MemoryStore::KEEP_NOTES + 9);
        assert!(!store.note_once(&last, "w", week).await.unwrap());
        assert_eq!(store.lock().notes.len(), MemoryStore::KEEP_NOTES);
    }

    #[tokio::test]
    async fn a_place_is_held_until_its_job_is_final_and_uses_are_counted_per_window() {
        let store = MemoryStore::new();
        let until = Utc::now() + chrono::Duration::minutes(5);
        let (a, b, c) = (job(), job(), job());
        for j in [&a, &b, &c] {
            store.record_job(j).await.unwrap();
        }
        assert_eq!(
            store.take_place("person:u", 2, a.id, until).await.unwrap(),
            None
        );
        assert_eq!(
            store.take_place("person:u", 2, a.id, until).await.unwrap(),
            None
        );
        assert_eq!(
            store.take_place("person:u", 2, b.id, until).await.unwrap(),
            None
        );
        assert_eq!(
            store.take_place("person:u", 2, c.id, until).await.unwrap(),
            Some(until),
            "full: the answer says by when a place frees"
        );
        store.finish_job(&succeeded(a.id)).await.unwrap();
        assert_eq!(
            store.take_place("person:u", 2, c.id, until).await.unwrap(),
            None
        );
        store.give_back_place("person:u", c.id).await.unwrap();
        let d = job();
        assert_eq!(
            store.take_place("person:u", 2, d.id, until).await.unwrap(),
            None
        );

        let window = Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(store.count_use("person:u", 3, window).await.unwrap(), None);
        }
        let wait = store.count_use("person:u", 3, window).await.unwrap();
        assert!(wait.is_some_and(|w| w <= window), "{wait:?}");
        assert_eq!(store.count_use("person:v", 3, window).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_job_lifecycle_shows_in_record_and_events() {
        let store = MemoryStore::new();
        let j = job();
        store.record_job(&j).await.unwrap();
        store.mark_started(j.id, "w1", Utc::now()).await.unwrap();
        let result = JobResult {
            id: j.id,
            status: JobStatus::Succeeded,
            output: Output::text("hi"),
            worker: "w1".into(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            error: None,
        };
        store.finish_job(&result).await.unwrap();

        let rec = store.job(j.id).await.unwrap().unwrap();
        assert_eq!(rec.status, JobStatus::Succeeded);
        assert_eq!(rec.result.unwrap().output, Output::text("hi"));

        let events = store
            .read_events("bot", "c", 10, Duration::ZERO)
            .await
            .unwrap();
        let kinds: Vec<_> = events.iter().map(|(_, e)| e.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::Queued,
                EventKind::Started {
                    worker: "w1".into()
                },
                EventKind::Finished {
                    status: JobStatus::Succeeded
                }
            ]
        );
        // Handed out once per group; another group sees them all again.
        assert!(store
            .read_events("bot", "c", 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .read_events("dashboard", "d", 10, Duration::ZERO)
                .await
                .unwrap()
                .len(),
            3
        );
    }

    #[tokio::test]
    async fn a_blocked_reader_wakes_on_append() {
        let store = std::sync::Arc::new(MemoryStore::new());
        let reader = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .read_events("bot", "c", 10, Duration::from_secs(5))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.record_job(&job()).await.unwrap();
        let got = reader.await.unwrap().unwrap();
        assert_eq!(got.len(), 1);
    }

    #[tokio::test]
    async fn a_note_is_kept_once_and_read_back_until_it_expires() {
        let store = MemoryStore::new();
        let ttl = Duration::from_millis(50);
        assert!(store.note_once("k", "first", ttl).await.unwrap());
        assert!(!store.note_once("k", "second", ttl).await.unwrap());
        assert_eq!(store.note("k").await.unwrap().as_deref(), Some("first"));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(store.note("k").await.unwrap(), None);
        assert!(store.note_once("k", "third", ttl).await.unwrap());
    }

    #[tokio::test]
    async fn a_reply_is_claimed_once_and_only_by_its_adapter() {
        let store = MemoryStore::new();
        let j = job();
        let served = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(matches!(
            store
                .claim_reply(j.id, "g", &served(&["console"]))
                .await
                .unwrap(),
            ReplyClaim::Unknown
        ));
        store.record_job(&j).await.unwrap();
        let adapter = j.origin.adapter.clone();
        assert!(matches!(
            store
                .claim_reply(j.id, "g", &served(&["elsewhere"]))
                .await
                .unwrap(),
            ReplyClaim::Elsewhere
        ));
        match store
            .claim_reply(j.id, "g", &served(&[&adapter]))
            .await
            .unwrap()
        {
            ReplyClaim::Claimed(record) => assert_eq!(record.job.id, j.id),
            other => panic!("the first claim should win, got {other:?}"),
        }
        assert!(matches!(
            store
                .claim_reply(j.id, "g", &served(&[&adapter]))
                .await
                .unwrap(),
            ReplyClaim::Taken
        ));
    }

    #[tokio::test]
    async fn acknowledged_events_are_dropped() {
        let store = MemoryStore::new();
        for _ in 0..3 {
            store.record_job(&job()).await.unwrap();
        }
        let got = store
            .read_events("bot", "c", 10, Duration::ZERO)
            .await
            .unwrap();
        let ids: Vec<_> = got.into_iter().map(|(id, _)| id).collect();
        store.ack_events("bot", &ids).await.unwrap();
        assert!(store.lock().log.is_empty());
        store.record_job(&job()).await.unwrap();
        let got = store
            .read_events("bot", "c", 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "new events still arrive after a trim");
    }

    #[tokio::test]
    async fn workers_are_listed_until_their_heartbeat_expires() {
        let store = MemoryStore::new();
        let info = WorkerInfo {
            name: "w1".into(),
            host: "h".into(),
            classes: vec![crate::job::TaskClass::Native],
            concurrency: 4,
            running: 1,
            started_at: Utc::now(),
            heartbeat_at: Utc::now(),
        };
        store
            .heartbeat(&info, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(store.workers().await.unwrap(), vec![info]);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(store.workers().await.unwrap().is_empty());
    }
}
