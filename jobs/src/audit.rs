//! `AuditEntry`: one line of the audit trail — who asked what, through which door, what
//! was decided and by which rule, and how it ended.
//!
//! The router writes one entry for every request that reaches it (refused, unknown and
//! over-quota ones too), the async manager one for every job's final outcome, the
//! approval sweeper one for every approval that expired. Entries are appended to the
//! store ([`crate::Store::append_audit`]) and never changed; the store forgets them past
//! their age limit. Text is kept as typed, `secret` values masked, and cut to
//! [`AuditEntry::TEXT_MAX`] characters.

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
}
