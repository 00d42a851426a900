//! Wording of the audit trail (`audit`) and of approvals (`pending`, `approve`, `deny`,
//! the answer to a request that waits for a yes).

use chrono::{DateTime, Utc};
use jobs::{Approval, AuditEntry, Decision, JobId};

use super::{elapsed, printable, table};

/// The answer to a request whose job waits for approval.
pub fn awaiting_approval(approval: &Approval) -> String {
    let id = approval.id();
    format!(
        "job {id} ({}) waits for approval by {} (expires in {}); one of them can say \
         \"approve {id}\" or \"deny {id} <reason>\"",
        approval.job.command,
        approvers(&approval.by),
        left(approval.expires_at),
    )
}

/// The approval prompt approvers read (in the request's thread, and in the approvers'
/// channel): who asks for what, why, who may decide, and until when.
pub fn approval_prompt(approval: &Approval) -> String {
    let job = &approval.job;
    let args: String = job
        .args
        .iter()
        .map(|(k, v)| format!(" {k}={}", printable(&v.to_string(), false)))
        .collect();
    let reason = approval
        .reason
        .as_deref()
        .map(|r| format!(" because {}", printable(r, false)))
        .unwrap_or_default();
    let hosts = match job.children.len() {
        0 => String::new(),
        1 => " on 1 host".to_string(),
        n => format!(" on each of {n} hosts"),
    };
    format!(
        "{} asks to run {}{args}{hosts}{reason} (job {}); {} may approve or deny it within {}",
        approval.requester(),
        job.command,
        approval.id(),
        approvers(&approval.by),
        left(approval.expires_at),
    )
}

/// An approval prompt once decided, in three parts: the words before the decider, the
/// decider (an identity, which each adapter shows its own way), the words after. A
/// prompt that expired has no decider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedPrompt {
    pub before: String,
    pub by: Option<String>,
    pub after: String,
}

pub fn decided_prompt(approval: &Approval, decision: &Decision) -> DecidedPrompt {
    let head = format!(
        "job {} ({}) asked by {}: ",
        approval.id(),
        approval.job.command,
        approval.requester()
    );
    match decision {
        Decision::Approved { by, .. } => DecidedPrompt {
            before: format!("{head}approved by "),
            by: Some(by.clone()),
            after: String::new(),
        },
        Decision::Denied { by, reason, .. } => DecidedPrompt {
            before: format!("{head}denied by "),
            by: Some(by.clone()),
            after: reason
                .as_deref()
                .map(|r| format!(": {}", printable(r, false)))
                .unwrap_or_default(),
        },
        Decision::Expired { .. } => DecidedPrompt {
            before: format!(
                "{head}expired: nobody of {} decided in time",
                approvers(&approval.by)
            ),
            by: None,
            after: String::new(),
        },
    }
}

/// `group:leads` as people say it.
fn approvers(by: &str) -> String {
    match by.split_once(':') {
        Some(("group", g)) => format!("group {g}"),
        Some(("user", u)) => u.to_string(),
        _ => by.to_string(),
    }
}

fn left(at: DateTime<Utc>) -> String {
    elapsed((at - Utc::now()).to_std().unwrap_or_default())
}

/// A command that needs its requester's reason was asked without one.
pub fn reason_needed(command: &str) -> String {
    format!(
        "\"{command}\" needs a reason for its approvers: ask again ending with \
         \"because <reason>\""
    )
}

/// The line `job <id>` adds for a job that needed approval: who may decide and until
/// when, or what was decided.
pub fn approval_line(approval: &Approval, decision: Option<&Decision>) -> String {
    match decision {
        None => format!("approval  {}", waits_for(approval)),
        Some(d) => format!("approval  {}", printable(&d.describe(), false)),
    }
}

/// Who an undecided approval waits for, and until when: `waits for group leads (expires
/// in 9m)`.
pub fn waits_for(approval: &Approval) -> String {
    format!(
        "waits for {} (expires in {})",
        approvers(&approval.by),
        left(approval.expires_at)
    )
}

/// `pending`: the jobs waiting for approval.
pub fn pending_table(pending: &[Approval]) -> String {
    if pending.is_empty() {
        return "no jobs wait for approval".to_string();
    }
    let rows: Vec<Vec<String>> = pending
        .iter()
        .map(|a| {
            vec![
                a.id().to_string(),
                a.job.command.clone(),
                a.requester(),
                approvers(&a.by),
                left(a.expires_at),
                a.reason
                    .as_deref()
                    .map(|r| printable(r, false).into_owned())
                    .unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    table(
        &[
            "job",
            "command",
            "asked by",
            "approved by",
            "expires in",
            "reason",
        ],
        &rows,
    )
}

pub fn approved(approval: &Approval) -> String {
    format!(
        "approved job {} ({}) asked by {}; it is queued, and its result goes to them",
        approval.id(),
        approval.job.command,
        approval.requester()
    )
}

pub fn denied(approval: &Approval) -> String {
    format!(
        "denied job {} ({}) asked by {}; they are told",
        approval.id(),
        approval.job.command,
        approval.requester()
    )
}

/// Someone tried to decide their own request.
pub fn own_request(id: JobId) -> String {
    format!("job {id} is your own request: someone else must approve or deny it")
}

/// Someone outside the approvers tried to decide.
pub fn not_an_approver(identity: &str, approval: &Approval) -> String {
    format!(
        "{identity} may not decide job {}: only {} may",
        approval.id(),
        approvers(&approval.by)
    )
}

/// The request was decided (or expired) before this decision.
pub fn already_decided(id: JobId, decision: &Decision) -> String {
    format!("job {id} was already {}", decision.describe())
}

pub fn no_such_approval(id: JobId) -> String {
    format!("job {id} is not waiting for approval (see \"pending\")")
}

/// An approved job the broker would not take: the requester is told in its result.
pub fn approved_not_queued(id: JobId, e: &dyn std::fmt::Display) -> String {
    format!("job {id} was approved but could not be queued: {e}; ask for it again")
}

/// `audit`: the entries, oldest first, one line each.
pub fn audit_table(entries: &[AuditEntry]) -> String {
    if entries.is_empty() {
        return "no audit entries match".to_string();
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let mut outcome = e.outcome.clone();
            if let Some(detail) = &e.detail {
                outcome = format!("{outcome}: {}", printable(detail, false));
            }
            vec![
                e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                e.identity.clone(),
                e.kind.as_str().to_string(),
                printable(&e.text, false).into_owned(),
                e.decision.clone(),
                e.rule.clone().unwrap_or_else(|| "-".to_string()),
                e.job
                    .map(|j| j.to_string())
                    .unwrap_or_else(|| "-".to_string()),
                outcome,
            ]
        })
        .collect();
    table(
        &[
            "time (UTC)",
            "who",
            "kind",
            "said",
            "access",
            "rule",
            "job",
            "outcome",
        ],
        &rows,
    )
}
