//! The JSON the API answers with, one struct per shape in `openapi.json`. Every field is
//! always present (`null` when there is nothing), so a client needs no guesswork; and a
//! job's arguments and result are shown only to its requester and to group `auditors`,
//! as `job <id>` shows them in chat.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use jobs::{AuditEntry, JobRecord, JobStatus, Output, WorkerInfo};
use serde::Serialize;

use crate::reply::ScheduleLine;
use crate::request::{Answer, Outcome};

/// The longest text output a job view carries; the rest is cut, and said so.
pub const OUTPUT_MAX: usize = 64 * 1024;

#[derive(Debug, Serialize)]
pub struct AnswerView {
    pub outcome: &'static str,
    pub text: String,
    pub job: Option<String>,
}

impl From<&Answer> for AnswerView {
    fn from(a: &Answer) -> Self {
        AnswerView {
            outcome: match a.outcome {
                Outcome::Done => "done",
                Outcome::Queued => "queued",
                Outcome::Nothing => "nothing",
                Outcome::Unknown => "unknown",
                Outcome::BadArgument => "bad_argument",
                Outcome::Refused => "refused",
                Outcome::Failed => "failed",
            },
            text: a.text.clone(),
            job: a.job.map(|id| id.to_string()),
        }
    }
}

/// A job status as the API spells it (`timed_out`).
pub fn status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Queued => "queued",
        JobStatus::Running => "running",
        JobStatus::Succeeded => "succeeded",
        JobStatus::Failed => "failed",
        JobStatus::TimedOut => "timed_out",
        JobStatus::Cancelled => "cancelled",
    }
}

/// Reads a status as [`status_name`] spells it.
pub fn parse_status(text: &str) -> Option<JobStatus> {
    [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::TimedOut,
        JobStatus::Cancelled,
    ]
    .into_iter()
    .find(|s| status_name(*s) == text)
}

#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: String,
    pub command: String,
    pub status: &'static str,
    pub requester: String,
    pub adapter: String,
    pub channel: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub worker: Option<String>,
    pub attempt: u32,
    /// The fan-out this job ran one host of.
    pub parent: Option<String>,
    /// A fan-out's jobs, one per host (empty for any other job).
    pub children: Vec<String>,
    /// `null` when hidden from this caller (see the module header).
    pub args: Option<BTreeMap<String, String>>,
    pub output: Option<OutputView>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct OutputView {
    /// `empty`, `text` or `file`.
    pub kind: &'static str,
    pub text: Option<String>,
    pub truncated: bool,
    pub file_name: Option<String>,
    pub file_size: Option<u64>,
}

impl JobView {
    /// `record` as `whole` or not (arguments and output hidden).
    pub fn new(record: &JobRecord, whole: bool) -> Self {
        let job = &record.job;
        let result = record.result.as_ref();
        JobView {
            id: job.id.to_string(),
            command: job.command.clone(),
            status: status_name(record.status),
            requester: job.origin.identity(),
            adapter: job.origin.adapter.clone(),
            channel: job.origin.channel.clone(),
            created_at: job.created_at,
            started_at: record.started_at.or(result.map(|r| r.started_at)),
            finished_at: result.map(|r| r.finished_at),
            worker: record.worker.clone(),
            attempt: job.attempt,
            parent: job.parent.map(|id| id.to_string()),
            children: job.children.iter().map(|id| id.to_string()).collect(),
            args: whole.then(|| {
                job.args
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect()
            }),
            output: result.filter(|_| whole).map(|r| output_view(&r.output)),
            error: result.and_then(|r| r.error.clone()),
        }
    }
}

fn output_view(output: &Output) -> OutputView {
    match output {
        Output::Empty => OutputView {
            kind: "empty",
            text: None,
            truncated: false,
            file_name: None,
            file_size: None,
        },
        Output::Text { text } => {
            let mut end = text.len().min(OUTPUT_MAX);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            OutputView {
                kind: "text",
                text: Some(text[..end].to_string()),
                truncated: end < text.len(),
                file_name: None,
                file_size: None,
            }
        }
        Output::File { name, bytes, .. } => OutputView {
            kind: "file",
            text: None,
            truncated: false,
            file_name: Some(name.clone()),
            file_size: Some(bytes.len() as u64),
        },
    }
}

#[derive(Debug, Serialize)]
pub struct JobPageView {
    pub jobs: Vec<JobView>,
    /// Pass as `after` for the next (older) page; `null` at the end.
    pub next: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct WorkerView {
    pub name: String,
    pub host: String,
    pub classes: Vec<&'static str>,
    pub concurrency: usize,
    pub running: usize,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

impl From<&WorkerInfo> for WorkerView {
    fn from(w: &WorkerInfo) -> Self {
        WorkerView {
            name: w.name.clone(),
            host: w.host.clone(),
            classes: w.classes.iter().map(|c| c.as_str()).collect(),
            concurrency: w.concurrency,
            running: w.running,
            started_at: w.started_at,
            heartbeat_at: w.heartbeat_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ScheduleView {
    pub name: String,
    pub when: String,
    pub runs: String,
    pub delivers_to: String,
    pub next: Option<DateTime<Utc>>,
    pub paused: bool,
    pub last_job: Option<String>,
    pub last_status: Option<&'static str>,
}

impl From<&ScheduleLine> for ScheduleView {
    fn from(s: &ScheduleLine) -> Self {
        ScheduleView {
            name: s.name.clone(),
            when: s.when.clone(),
            runs: s.runs.clone(),
            delivers_to: s.delivers_to.clone(),
            next: s.next,
            paused: s.paused,
            last_job: s.last.map(|(id, _)| id.to_string()),
            last_status: s.last.and_then(|(_, st)| st).map(status_name),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ApprovalView {
    pub job: JobView,
    pub by: String,
    pub reason: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct AuditView {
    pub at: DateTime<Utc>,
    pub kind: &'static str,
    pub identity: String,
    pub adapter: String,
    pub channel: Option<String>,
    pub text: String,
    pub command: Option<String>,
    pub decision: String,
    pub rule: Option<String>,
    pub job: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

impl From<&AuditEntry> for AuditView {
    fn from(e: &AuditEntry) -> Self {
        AuditView {
            at: e.at,
            kind: e.kind.as_str(),
            identity: e.identity.clone(),
            adapter: e.adapter.clone(),
            channel: e.channel.clone(),
            text: e.text.clone(),
            command: e.command.clone(),
            decision: e.decision.clone(),
            rule: e.rule.clone(),
            job: e.job.map(|j| j.to_string()),
            outcome: e.outcome.clone(),
            detail: e.detail.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditPageView {
    pub entries: Vec<AuditView>,
    /// Pass as `after` for the next (newer) page; `null` when this page was not full.
    pub next: Option<String>,
}
