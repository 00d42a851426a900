//! `Places`: the embedded store's quota places, in time logarithmic in their number.
//!
//! A place is held by a job until its record is final (the store releases it from
//! `finish_job`) or its deadline passes. Deadlines sit in a min-heap; entries of places
//! already released are skipped when they come to its top, and the heap is rebuilt when
//! they outnumber the held places, so it stays bounded.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Utc};

use crate::job::JobId;

#[derive(Default)]
pub(super) struct Places {
    /// Per quota key: who holds a place, and until when at the latest.
    keys: HashMap<String, Held>,
    /// Per job: the keys it holds a place under, to release them when it ends.
    jobs: HashMap<JobId, Vec<String>>,
}

#[derive(Default)]
struct Held {
    until: HashMap<JobId, DateTime<Utc>>,
    deadlines: BinaryHeap<Reverse<(DateTime<Utc>, JobId)>>,
}

impl Held {
    /// Drops places past their deadline, and heap entries of places already released.
    fn expire(&mut self, now: DateTime<Utc>) {
        while let Some(&Reverse((at, job))) = self.deadlines.peek() {
            let current = self.until.get(&job) == Some(&at);
            if current && at > now {
                break;
            }
            self.deadlines.pop();
            if current {
                self.until.remove(&job);
            }
        }
        if self.deadlines.len() > 2 * self.until.len() + 64 {
            self.deadlines = self
                .until
                .iter()
                .map(|(&job, &at)| Reverse((at, job)))
                .collect();
        }
    }
}

impl Places {
    /// `Store::take_place`: `None` when taken (or already held by `id`), else the soonest
    /// deadline among the holders.
    pub(super) fn take(
        &mut self,
        key: &str,
        limit: u32,
        id: JobId,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let held = self.keys.entry(key.to_string()).or_default();
        held.expire(now);
        if held.until.contains_key(&id) {
            return None;
        }
        if held.until.len() < limit as usize {
            held.until.insert(id, until);
            held.deadlines.push(Reverse((until, id)));
            self.jobs.entry(id).or_default().push(key.to_string());
            return None;
        }
        // `expire` left a current entry on top.
        held.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// `Store::give_back_place`: the job was not queued after all.
    pub(super) fn give_back(&mut self, key: &str, id: JobId) {
        if let Some(held) = self.keys.get_mut(key) {
            held.until.remove(&id);
            if held.until.is_empty() {
                self.keys.remove(key);
            }
        }
        if let Some(keys) = self.jobs.get_mut(&id) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.jobs.remove(&id);
            }
        }
    }

    /// Job `id` ended: every place it held is free.
    pub(super) fn release(&mut self, id: JobId) {
        for key in self.jobs.remove(&id).unwrap_or_default() {
            if let Some(held) = self.keys.get_mut(&key) {
                held.until.remove(&id);
                if held.until.is_empty() {
                    self.keys.remove(&key);
                }
            }
        }
    }
}
