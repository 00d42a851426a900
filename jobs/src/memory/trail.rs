//! `Trail`: the embedded store's audit trail and approvals, bounded.
//!
//! The audit trail keeps at most [`Trail::KEEP_ENTRIES`] entries and none older than the
//! age each append names; approvals stay while pending (their number is bounded by the
//! quotas, as jobs are) and the [`Trail::KEEP_DECIDED`] latest decided ones are kept so
//! that a late click is told who decided.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::approval::{Approval, Decided, Decision};
use crate::audit::AuditEntry;
use crate::job::JobId;

#[derive(Default)]
pub(super) struct Trail {
    audit: VecDeque<AuditEntry>,
    approvals: HashMap<JobId, (Approval, Option<Decision>)>,
    /// Decided approvals, oldest decision first.
    decided: VecDeque<JobId>,
}

impl Trail {
    /// How many audit entries are kept at most.
    pub(super) const KEEP_ENTRIES: usize = 50_000;
    /// How many decided approvals are kept.
    pub(super) const KEEP_DECIDED: usize = 10_000;

    pub(super) fn append(&mut self, entry: &AuditEntry, keep: Duration) {
        let oldest = Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        while self
            .audit
            .front()
            .is_some_and(|e| e.at < oldest || self.audit.len() >= Self::KEEP_ENTRIES)
        {
            self.audit.pop_front();
        }
        self.audit.push_back(entry.clone());
    }

    pub(super) fn read(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<AuditEntry> {
        // Entries are appended in time order: skip to `from` by bisection.
        let start = self.audit.partition_point(|e| e.at < from);
        self.audit
            .range(start..)
            .take_while(|e| e.at < until)
            .take(limit)
            .cloned()
            .collect()
    }

    pub(super) fn hold(&mut self, approval: &Approval) {
        self.approvals
            .insert(approval.id(), (approval.clone(), None));
    }

    pub(super) fn pending(&self, limit: usize) -> Vec<Approval> {
        let mut pending: Vec<Approval> = self
            .approvals
            .values()
            .filter(|(_, decision)| decision.is_none())
            .map(|(a, _)| a.clone())
            .collect();
        pending.sort_by_key(|a| (a.expires_at, a.id()));
        pending.truncate(limit);
        pending
    }

    pub(super) fn get(&self, id: JobId) -> Option<(Approval, Option<Decision>)> {
        self.approvals.get(&id).cloned()
    }

    pub(super) fn decide(&mut self, id: JobId, decision: &Decision) -> Decided {
        let Some((approval, stored)) = self.approvals.get_mut(&id) else {
            return Decided::Unknown;
        };
        if let Some(first) = stored {
            return Decided::Already(first.clone());
        }
        *stored = Some(decision.clone());
        let approval = approval.clone();
        self.decided.push_back(id);
        if self.decided.len() > Self::KEEP_DECIDED {
            if let Some(old) = self.decided.pop_front() {
                self.approvals.remove(&old);
            }
        }
        Decided::Now(Box::new(approval))
    }
}
