//! Fan-out progress in memory: which of a fan-out's jobs have ended, for at most
//! [`FanOuts::KEEP`] fan-outs (the oldest forgotten first).

use std::collections::{HashMap, VecDeque};

use crate::job::{JobId, JobStatus};
use crate::store::ChildCounts;

#[derive(Default)]
pub(super) struct FanOuts {
    ended: HashMap<JobId, HashMap<JobId, JobStatus>>,
    order: VecDeque<JobId>,
}

impl FanOuts {
    /// Fan-outs whose progress is kept.
    pub const KEEP: usize = 10_000;

    pub(super) fn note(&mut self, parent: JobId, child: JobId, status: JobStatus) -> ChildCounts {
        if !self.ended.contains_key(&parent) {
            self.order.push_back(parent);
            while self.order.len() > Self::KEEP {
                if let Some(old) = self.order.pop_front() {
                    self.ended.remove(&old);
                }
            }
        }
        let children = self.ended.entry(parent).or_default();
        children.entry(child).or_insert(status);
        let mut counts = ChildCounts::default();
        for status in children.values() {
            *counts
                .by_status
                .entry(status.as_str().to_string())
                .or_default() += 1;
        }
        counts
    }
}
