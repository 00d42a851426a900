//! `Trail`: the embedded store's audit trail and approvals, bounded.
//!
//! The audit trail keeps at most [`Trail::KEEP_ENTRIES`] entries and none older than the
//! age each append names. Each entry gets its position as Redis would give it (the clock
//! in ms when appended, never going back, and a sequence within the ms), and ranges are
//! read by position, so both stores read and page through the trail alike. Approvals stay while pending (their number is bounded by the
//! quotas, as jobs are) and the [`Trail::KEEP_DECIDED`] latest decided ones are kept so
//! that a late click is told who decided.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::approval::{Approval, Decided, Decision};
use crate::audit::{AuditEntry, AuditPosition};
use crate::job::JobId;

#[derive(Default)]
pub(super) struct Trail {
    /// Oldest first; positions only grow.
    audit: VecDeque<(AuditPosition, AuditEntry)>,
    /// The position of the last entry appended, kept once the deque is emptied.
    last: Option<AuditPosition>,
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
        let now = millis(Utc::now());
        let oldest = now.saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
        while self
            .audit
            .front()
            .is_some_and(|(p, _)| p.millis < oldest || self.audit.len() >= Self::KEEP_ENTRIES)
        {
            self.audit.pop_front();
        }
        // As a stream id: the clock, unless it went back, then the next sequence number.
        let position = match self.last {
            Some(last) if last.millis >= now => AuditPosition {
                millis: last.millis,
                seq: last.seq + 1,
            },
            _ => AuditPosition {
                millis: now,
                seq: 0,
            },
        };
        self.last = Some(position);
        self.audit.push_back((position, entry.clone()));
    }

    /// The entries in `[from, until)` after `after`, oldest first, at most `limit`.
    pub(super) fn page(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<AuditPosition>,
        limit: usize,
    ) -> Vec<(AuditPosition, AuditEntry)> {
        let (from, until) = (millis(from), millis(until));
        // Positions only grow: skip to the first one wanted by bisection.
        let start = self
            .audit
            .partition_point(|(p, _)| p.millis < from || after.is_some_and(|a| *p <= a));
        self.audit
            .range(start..)
            .take_while(|(p, _)| p.millis < until)
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

/// `t` in ms since the Unix epoch (0 before it), as positions count.
fn millis(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;
    use crate::job::Origin;

    #[test]
    fn pages_go_on_after_their_last_position_inside_a_millisecond_and_windows_split_by_it() {
        let mut trail = Trail::default();
        let start = Utc::now();
        let keep = Duration::from_secs(3600);
        for i in 0..200 {
            let origin = Origin::new("console", format!("u{i}"));
            trail.append(
                &AuditEntry::new(AuditKind::Request, &origin, "ping", "answered"),
                keep,
            );
        }
        let until = Utc::now() + chrono::Duration::seconds(1);
        let whole = trail.page(start, until, None, 1000);
        assert_eq!(whole.len(), 200);
        assert!(whole.windows(2).all(|w| w[0].0 < w[1].0), "positions grow");
        assert!(
            whole
                .iter()
                .filter(|(p, _)| p.millis == whole[0].0.millis)
                .count()
                > 3,
            "appends in one loop share a millisecond"
        );

        let page_through = |from, until| {
            let (mut all, mut after) = (Vec::new(), None);
            loop {
                let page = trail.page(from, until, after, 3);
                after = page.last().map(|(p, _)| *p);
                let done = page.len() < 3;
                all.extend(page);
                if done {
                    return all;
                }
            }
        };
        assert_eq!(page_through(start, until), whole);
        let boundary_ms = whole[100].0.millis;
        let boundary = DateTime::from_timestamp_millis(boundary_ms as i64).unwrap();
        let (before, after) = (page_through(start, boundary), page_through(boundary, until));
        assert!(before.iter().all(|(p, _)| p.millis < boundary_ms));
        assert!(after.iter().all(|(p, _)| p.millis >= boundary_ms));
        assert_eq!([before, after].concat(), whole);
    }
}
