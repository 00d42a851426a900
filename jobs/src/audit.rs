//! `AuditEntry`: one line of the audit trail — who asked what, through which door, what
//! was decided and by which rule, and how it ended.
//!
//! The router writes one entry for every request that reaches it (refused, unknown and
//! over-quota ones too), the async manager one for every job's final outcome, the
//! approval sweeper one for every approval that expired. Entries are appended to the
//! store ([`crate::Store::append_audit`]) and never changed; the store forgets them past
//! their age limit. Text is kept as typed, `secret` values masked, and cut to
//! [`AuditEntry::TEXT_MAX`] characters.
//!
//! Each entry has an [`AuditPosition`] in the trail: the store's clock when it was
//! appended, in milliseconds, and a sequence number among the entries of that
//! millisecond. Positions only grow, so an export pages through a time range from the
//! last position it read ([`crate::Store::audit_page`]) and never skips or repeats an
//! entry, however many share a millisecond.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::job::{JobId, Origin};

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A message that reached the router, and what became of it at once.
    Request,
    /// A job's final status, when its reply went out.
    Outcome,
    /// An approval that nobody decided in time.
    Expiry,
    /// A reload that came from outside the router (a signal).
    Reload,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Request => "request",
            AuditKind::Outcome => "outcome",
            AuditKind::Expiry => "expiry",
            AuditKind::Reload => "reload",
        }
    }
}

/// One line of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub kind: AuditKind,
    /// Who: `adapter:user` (for an outcome, the job's requester).
    pub identity: String,
    /// Through which door: `console`, `ssh`, `slack`, `scheduler`, `signal`.
    pub adapter: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The message as typed, `secret` values masked (cut to [`AuditEntry::TEXT_MAX`]).
    pub text: String,
    /// The command it was read as, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The access decision: `allowed`, `refused`, or `-` where none was made (an unknown
    /// command, a message over the length limit).
    pub decision: String,
    /// The rule that made the decision: `allow = [group:oncall]`, `[acl] default = deny`,
    /// `built-in: group admins`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobId>,
    /// How it ended: `answered`, `queued`, `refused`, `unknown`, `bad argument`,
    /// `failed`, `awaiting approval`; for an outcome, the job's status (`succeeded`, …).
    pub outcome: String,
    /// More words on the outcome: a refusal's reason, a job's error, who decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEntry {
    /// The most characters of a message an entry keeps.
    pub const TEXT_MAX: usize = 512;

    /// An entry for something `origin` did, now.
    pub fn new(kind: AuditKind, origin: &Origin, text: &str, outcome: &str) -> Self {
        AuditEntry {
            at: Utc::now(),
            kind,
            identity: origin.identity(),
            adapter: origin.adapter.clone(),
            channel: origin.channel.clone(),
            text: cut(text, Self::TEXT_MAX),
            command: None,
            decision: "-".to_string(),
            rule: None,
            job: None,
            outcome: outcome.to_string(),
            detail: None,
        }
    }

    /// Keeps `detail`, cut to [`AuditEntry::TEXT_MAX`] characters.
    pub fn with_detail(mut self, detail: &str) -> Self {
        self.detail = Some(cut(detail, Self::TEXT_MAX));
        self
    }
}

/// Where an entry is in the trail: appended at `millis` (the store's clock, ms since the
/// Unix epoch), the `seq`-th of that millisecond. Written `<millis>-<seq>`, as a Redis
/// stream id is; ordered by time, then sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuditPosition {
    pub millis: u64,
    pub seq: u64,
}

impl fmt::Display for AuditPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

/// The text is not `<millis>-<seq>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not an audit trail position (<milliseconds>-<sequence>)")]
pub struct BadAuditPosition(pub String);

impl FromStr for AuditPosition {
    type Err = BadAuditPosition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadAuditPosition(crate::audit::cut(s, 40));
        let (millis, seq) = s.split_once('-').ok_or_else(bad)?;
        Ok(AuditPosition {
            millis: millis.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// `text` cut to `max` characters, with `…` where it was cut. Linear in `max`.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_and_the_entry_reads_back() {
        let origin = Origin::new("ssh", "alice");
        let entry = AuditEntry::new(AuditKind::Request, &origin, &"x".repeat(10_000), "unknown")
            .with_detail("why");
        assert_eq!(entry.text.chars().count(), AuditEntry::TEXT_MAX + 1);
        assert!(entry.text.ends_with('…'));
        let json = serde_json::to_string(&entry).unwrap();
        let back: AuditEntry = serde_json::from_str(&json).unwrap();
        assert_eq!(back, entry);
        assert_eq!(back.identity, "ssh:alice");
    }

    #[test]
    fn positions_read_back_and_order_by_time_then_sequence() {
        let p: AuditPosition = "1700000000000-12".parse().unwrap();
        assert_eq!((p.millis, p.seq), (1_700_000_000_000, 12));
        assert_eq!(p.to_string(), "1700000000000-12");
        let later_in_the_ms = AuditPosition { seq: 13, ..p };
        let next_ms = AuditPosition {
            millis: p.millis + 1,
            seq: 0,
        };
        assert!(p < later_in_the_ms && later_in_the_ms < next_ms);
        for bad in ["", "17", "17-", "-3", "a-1", "1-2-3"] {
            assert!(bad.parse::<AuditPosition>().is_err(), "{bad}");
        }
    }
}
