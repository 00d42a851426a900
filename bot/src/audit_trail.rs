//! The audit trail, as the bot writes and reads it: one entry per request the router
//! handled ([`Heard`] gathers what the router learnt on the way), one per job outcome the
//! async manager delivered, and the `audit` built-in that shows them to auditors.
//!
//! Writing never fails a request: an entry the store did not take is logged as an error
//! (with who and what, never the text).

use std::time::Duration;

use chrono::Utc;
use jobs::{AuditEntry, AuditKind, JobRecord, Store};
use lexicon::Value;

use crate::builtin_call::{BuiltinCall, BuiltinServices};
use crate::reply;
use crate::request::{Answer, Outcome, Request};

/// How many entries `audit` reads at most before filtering.
const SCAN_MAX: usize = 20_000;

/// What the router learnt about a request on its way: the command it was read as, the
/// access decision and the rule that made it.
#[derive(Debug, Default)]
pub struct Heard {
    pub command: Option<String>,
    pub allowed: Option<bool>,
    pub rule: Option<String>,
    /// The text as it may be kept (`secret` values masked); `None` for a message that
    /// was not read (over the length limit).
    pub masked: Option<String>,
    /// Whether the request's entry is already appended.
    pub recorded: bool,
}

/// Appends the entry for `request`, answered with `answer`.
pub async fn record_request(
    store: &dyn Store,
    keep: Duration,
    request: &Request,
    heard: Heard,
    answer: &Answer,
) {
    if answer.outcome == Outcome::Nothing {
        return;
    }
    let text = heard.masked.unwrap_or_else(|| {
        format!(
            "(a message of {} bytes, over the length limit)",
            request.text.len()
        )
    });
    let outcome = match answer.outcome {
        Outcome::Done => "answered",
        Outcome::Queued if answer.awaiting.is_some() => "awaiting approval",
        Outcome::Queued => "queued",
        Outcome::Nothing => "nothing",
        Outcome::Unknown => "unknown",
        Outcome::BadArgument => "bad argument",
        Outcome::Refused => "refused",
        Outcome::Failed => "failed",
    };
    let mut entry = AuditEntry::new(AuditKind::Request, &request.origin, &text, outcome);
    if matches!(answer.outcome, Outcome::Refused | Outcome::Failed) {
        entry = entry.with_detail(&answer.text);
    }
    entry.command = heard.command;
    entry.decision = match heard.allowed {
        Some(true) => "allowed",
        Some(false) => "refused",
        None => "-",
    }
    .to_string();
    entry.rule = heard.rule;
    entry.job = answer.job;
    append(store, keep, &entry).await;
}

/// How long the note that a job's outcome is recorded is kept: longer than any redelivery
/// of its `finished` event.
const OUTCOME_NOTE: Duration = Duration::from_secs(7 * 86_400);

/// Appends the entry for a job's final outcome, as its reply went out. Several async
/// managers may see one job end (one per bot, for adapters whose sessions live in one
/// process): the first to note it writes the entry.
pub async fn record_outcome(store: &dyn Store, keep: Duration, record: &JobRecord) {
    let job = &record.job;
    let first = store
        .note_once(&format!("audit-outcome:{}", job.id), "1", OUTCOME_NOTE)
        .await;
    if matches!(first, Ok(false)) {
        return;
    }
    let mut entry = AuditEntry::new(
        AuditKind::Outcome,
        &job.origin,
        &job.command,
        record.status.as_str(),
    );
    if let Some(error) = record.result.as_ref().and_then(|r| r.error.as_deref()) {
        entry = entry.with_detail(error);
    }
    entry.command = Some(job.command.clone());
    entry.job = Some(job.id);
    append(store, keep, &entry).await;
}

/// Appends the outcome entry for a job whose request was recorded as queued but which
/// was not queued after all.
pub async fn record_not_queued(store: &dyn Store, keep: Duration, job: &jobs::Job, why: &str) {
    let mut entry =
        AuditEntry::new(AuditKind::Outcome, &job.origin, &job.command, "failed").with_detail(why);
    entry.command = Some(job.command.clone());
    entry.job = Some(job.id);
    append(store, keep, &entry).await;
}

/// Appends `entry`; a failure is logged, never the entry's text.
pub async fn append(store: &dyn Store, keep: Duration, entry: &AuditEntry) {
    if let Err(e) = store.append_audit(entry, keep).await {
        tracing::error!(
            user = %entry.identity,
            kind = entry.kind.as_str(),
            command = entry.command.as_deref().unwrap_or("-"),
            error = %e,
            "an audit entry was not stored"
        );
    }
}

/// `audit [by <who>] [command <name>] [outcome <word>] [since <duration>] [last <n>]`.
pub async fn audit(services: &BuiltinServices, call: &BuiltinCall<'_>) -> Answer {
    let text = |slot: &str| call.args.get(slot).and_then(Value::as_str);
    let since = call
        .args
        .get("since")
        .and_then(Value::as_duration)
        .unwrap_or(Duration::from_secs(86_400));
    let count = call
        .args
        .get("count")
        .and_then(Value::as_int)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(20);
    let until = Utc::now() + chrono::Duration::seconds(1);
    let from = until - chrono::Duration::from_std(since).unwrap_or(chrono::Duration::MAX);
    let entries = match services.store.audit(from, until, SCAN_MAX).await {
        Ok(entries) => entries,
        Err(e) => {
            return Answer::new(
                Outcome::Failed,
                reply::store_unavailable("read the audit trail", &e),
            )
        }
    };
    let (who, command, outcome) = (text("who"), text("command"), text("outcome"));
    let matching: Vec<AuditEntry> = entries
        .into_iter()
        .filter(|e| who.is_none_or(|w| e.identity.eq_ignore_ascii_case(w)))
        .filter(|e| command.is_none_or(|c| e.command.as_deref() == Some(c)))
        .filter(|e| outcome.is_none_or(|o| e.outcome.starts_with(&o.to_lowercase())))
        .collect();
    let shown = &matching[matching.len().saturating_sub(count)..];
    Answer::done(reply::audit_table(shown))
}
