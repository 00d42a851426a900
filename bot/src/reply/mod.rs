//! The one place replies are worded, for every adapter: "queued as job …", a job's
//! result, the `jobs` table, the `job <id>` details. Adapters decide only how to show
//! them (a terminal line, a Slack thread, a file upload).
//!
//! - `trail`: the audit trail and approvals.
//! - `inventory`: the inventory built-ins.

use std::time::Duration;

use chrono::Utc;
use jobs::{JobId, JobRecord, JobStatus, Output, WorkerInfo};

use crate::reload::{ReloadError, Reloaded};

mod inventory;
mod trail;
pub use inventory::*;
pub use trail::*;

/// The final answer to an async request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub job: JobId,
    pub status: JobStatus,
    pub text: String,
    /// A file to attach, where the adapter can: (name, media type, bytes).
    pub file: Option<(String, String, Vec<u8>)>,
}

pub fn queued(id: JobId) -> String {
    format!("queued as job {id}")
}

/// The name of the file a result too long for messages is sent as.
pub fn text_file_name(id: JobId) -> String {
    format!("job-{id}.txt")
}

/// A job's progress on its way to a result, for adapters that show it (a Slack status
/// message, an SSH session's stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobUpdate {
    /// A worker took the job.
    Started { job: JobId, worker: String },
    /// The task reported a line of progress.
    Progress { job: JobId, line: String },
}

impl JobUpdate {
    pub fn job(&self) -> JobId {
        match self {
            JobUpdate::Started { job, .. } | JobUpdate::Progress { job, .. } => *job,
        }
    }
}

/// How an update reads.
pub fn update(update: &JobUpdate) -> String {
    match update {
        JobUpdate::Started { job, worker } => format!("job {job} running on {worker}"),
        JobUpdate::Progress { job, line } => format!("job {job}: {}", line.trim_end()),
    }
}

/// The reply for a finished job.
pub fn result(record: &JobRecord) -> Reply {
    let job = &record.job;
    let head = format!("job {} ({})", job.id, job.command);
    let Some(result) = &record.result else {
        return Reply {
            job: job.id,
            status: record.status,
            text: format!("{head} is {} but has no result yet", record.status),
            file: None,
        };
    };
    let took = elapsed(result.duration());
    let why = result.error.as_deref();
    let (text, file) = match (result.status, &result.output) {
        (JobStatus::Succeeded, Output::Empty) => {
            (format!("{head} succeeded in {took} (no output)"), None)
        }
        (JobStatus::Succeeded, Output::Text { text }) => (
            format!("{head} succeeded in {took}:\n{}", text.trim_end()),
            None,
        ),
        (
            JobStatus::Succeeded,
            Output::File {
                name,
                media_type,
                bytes,
            },
        ) => (
            format!(
                "{head} succeeded in {took}: file {name} ({media_type}, {})",
                size(bytes.len())
            ),
            Some((name.clone(), media_type.clone(), bytes.clone())),
        ),
        // A fan-out that did not all succeed: its table says which hosts did not.
        (status, Output::Text { text }) if !job.children.is_empty() => (
            format!(
                "{head} {status} after {took}: {}\n{}",
                why.unwrap_or("no reason given"),
                text.trim_end()
            ),
            None,
        ),
        (
            status,
            Output::File {
                name,
                media_type,
                bytes,
            },
        ) if !job.children.is_empty() => (
            format!(
                "{head} {status} after {took}: {}; the table is file {name} ({media_type}, {})",
                why.unwrap_or("no reason given"),
                size(bytes.len())
            ),
            Some((name.clone(), media_type.clone(), bytes.clone())),
        ),
        (JobStatus::TimedOut, _) => (format!("{head} {}", why.unwrap_or("timed out")), None),
        (JobStatus::Cancelled, _) => (format!("{head} was {}", why.unwrap_or("cancelled")), None),
        (status, _) => (
            format!(
                "{head} {status} after {took}: {}",
                why.unwrap_or("no reason given")
            ),
            None,
        ),
    };
    Reply {
        job: job.id,
        status: result.status,
        text,
        file,
    }
}

/// The `jobs` listing: newest first, one line each.
pub fn job_table(records: &[JobRecord]) -> String {
    if records.is_empty() {
        return "no jobs yet".to_string();
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.job.id.to_string(),
                r.job.command.clone(),
                r.status.to_string(),
                r.job.origin.identity(),
                r.result
                    .as_ref()
                    .map(|res| elapsed(res.duration()))
                    .unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    table(&["job", "command", "status", "asked by", "took"], &rows)
}

/// The `workers` listing: one line per live worker.
pub fn worker_table(workers: &[WorkerInfo]) -> String {
    if workers.is_empty() {
        return "no live workers: jobs wait in the queue until one starts".to_string();
    }
    let now = Utc::now();
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            let since = |t: chrono::DateTime<Utc>| elapsed((now - t).to_std().unwrap_or_default());
            vec![
                w.name.clone(),
                w.host.clone(),
                w.classes
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                format!("{}/{}", w.running, w.concurrency),
                format!("{} ago", since(w.heartbeat_at)),
                since(w.started_at),
            ]
        })
        .collect();
    table(
        &["worker", "host", "takes", "running", "last seen", "up"],
        &rows,
    )
}

/// Left-aligned columns, two spaces apart.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            row.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `job <id>`: everything known about one job. `whole` is false for someone else's job
/// asked about by someone outside the auditors: its arguments, error and output are left
/// out (they may hold what only the requester should see). Text that came from someone
/// is shown with its control characters escaped, so that it cannot drive the reader's
/// terminal.
pub fn job_details(record: &JobRecord, whole: bool) -> String {
    const HIDDEN: &str = "(hidden: only the requester and group auditors see them)";
    let job = &record.job;
    let args = if !whole && !job.args.is_empty() {
        HIDDEN.to_string()
    } else {
        job.args
            .iter()
            .map(|(k, v)| format!("{k}={}", printable(&v.to_string(), false)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut lines = vec![
        format!("job       {}", job.id),
        format!(
            "command   {}{}{}",
            job.command,
            if args.is_empty() { "" } else { "  " },
            args
        ),
        format!("status    {}", record.status),
        format!("asked by  {}", job.origin.identity()),
        format!(
            "queued    {}",
            job.created_at.format("%Y-%m-%d %H:%M:%S%.3f UTC")
        ),
        format!("attempt   {}", job.attempt),
    ];
    if let Some(worker) = &record.worker {
        lines.push(format!("worker    {worker}"));
    }
    if let Some(started) = record.started_at {
        lines.push(format!(
            "started   {}",
            started.format("%Y-%m-%d %H:%M:%S%.3f UTC")
        ));
    }
    if let Some(res) = &record.result {
        lines.push(format!(
            "finished  {}",
            res.finished_at.format("%Y-%m-%d %H:%M:%S%.3f UTC")
        ));
        lines.push(format!("took      {}", elapsed(res.duration())));
        if !whole {
            if res.error.is_some() || !matches!(res.output, Output::Empty) {
                lines.push(format!("output    {HIDDEN}"));
            }
            return lines.join("\n");
        }
        if let Some(e) = &res.error {
            lines.push(format!("error     {}", printable(e, false)));
        }
        match &res.output {
            Output::Empty => {}
            Output::Text { text } => {
                lines.push(format!("output\n{}", printable(text.trim_end(), true)))
            }
            Output::File {
                name,
                media_type,
                bytes,
            } => lines.push(format!(
                "output    file {} ({}, {})",
                printable(name, false),
                printable(media_type, false),
                size(bytes.len())
            )),
        }
    }
    lines.join("\n")
}

/// `text` with its control characters escaped (`\u{1b}` for ESC), keeping line breaks
/// and tabs when `multiline`.
pub fn printable(text: &str, multiline: bool) -> std::borrow::Cow<'_, str> {
    let kept = |c: char| multiline && (c == '\n' || c == '\t');
    if !text.chars().any(|c| c.is_control() && !kept(c)) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() && !kept(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// `cancel <id>`: the cancel is on its way to the workers.
pub fn cancel_sent(id: JobId) -> String {
    format!("cancelling job {id}; its result will say who cancelled it")
}

/// `cancel <id>` for a job that was waiting for approval.
pub fn cancel_withdrawn(id: JobId) -> String {
    format!("job {id} was waiting for approval; it is cancelled and will not run")
}

/// `cancel <id>` for a job that is over.
pub fn cancel_too_late(record: &JobRecord) -> String {
    format!(
        "job {} has already {}; there is nothing to cancel",
        record.job.id,
        match record.status {
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timed out",
            _ => "been cancelled",
        }
    )
}

/// `cancel <id>` by someone who neither asked for the job nor is an admin.
pub fn cancel_refused(id: JobId, owner: &str, admins: &str) -> String {
    format!("only {owner}, who asked for job {id}, or a member of group {admins} may cancel it")
}

/// A message past `[bot] max_message_length`.
pub fn message_too_long(bytes: usize, limit: usize) -> String {
    format!(
        "that message is {bytes} bytes long; commands are at most {limit} characters, so \
         nothing was run"
    )
}

/// Past `[quota] requests_per_minute`.
pub fn too_many_messages(limit: u32, wait: Duration) -> String {
    format!(
        "you have sent {limit} messages this minute, the most allowed; try again in {}",
        elapsed(wait.max(Duration::from_secs(1)))
    )
}

/// Past `[quota] running_per_person`.
pub fn too_many_running(limit: u32, freed_by: chrono::DateTime<Utc>) -> String {
    format!(
        "you have {limit} jobs queued or running, the most allowed at once; try again when \
         one finishes (at the latest {} UTC)",
        freed_by.format("%H:%M:%S")
    )
}

/// Past a command's `max_running`.
pub fn command_too_busy(command: &str, limit: u32, freed_by: chrono::DateTime<Utc>) -> String {
    format!(
        "\"{command}\" already has {limit} jobs queued or running, the most allowed at once \
         for everyone together; try again when one finishes (at the latest {} UTC)",
        freed_by.format("%H:%M:%S")
    )
}

/// Past a command's `max_per_minute`.
pub fn command_too_frequent(command: &str, limit: u32, wait: Duration) -> String {
    format!(
        "\"{command}\" may start {limit} jobs a minute, everyone's together, and has; try \
         again in {}",
        elapsed(wait.max(Duration::from_secs(1)))
    )
}

/// A job id that the store does not know.
pub fn no_such_job(id: JobId) -> String {
    format!("no job {id}: it never existed or has expired from the history")
}

/// `reload` (or SIGHUP) worked.
pub fn reloaded(r: &Reloaded) -> String {
    format!(
        "reloaded {}: {} commands ({} configured) answer from now on",
        r.source, r.commands, r.configured
    )
}

/// `reload` changed nothing: the bot has no file, or the file has problems.
pub fn reload_failed(e: &ReloadError) -> String {
    match e {
        ReloadError::NoFile => {
            "nothing to reload: this bot was started without --config".to_string()
        }
        ReloadError::Refused(problems) => format!(
            "reload refused, the running commands stay as they were; {}",
            problems.to_string().trim_end()
        ),
    }
}

/// `help <topic>` for a topic no command starts with.
pub fn no_help_topic(topic: &str) -> String {
    format!("no command starts with \"{topic}\". Type \"help\" for the list.")
}

/// `version`.
pub fn version() -> String {
    format!("octobox {}", env!("CARGO_PKG_VERSION"))
}

/// `ping`.
pub fn pong() -> String {
    "pong".to_string()
}

/// `whoami`.
pub fn whoami(identity: &str, groups: &[&str]) -> String {
    if groups.is_empty() {
        format!("you are {identity}, in no group")
    } else {
        format!("you are {identity}, in groups: {}", groups.join(", "))
    }
}

/// A built-in could not do `what` (`list jobs`, `read job <id>`) because the store
/// did not answer.
pub fn store_unavailable(what: &str, e: &dyn std::fmt::Display) -> String {
    format!("cannot {what}: {e}")
}

/// A re-run of a job whose secret argument the store kept masked.
pub fn rerun_has_secret(id: JobId) -> String {
    format!("job {id} had a secret argument, which is never kept: ask for it again with the secret")
}

/// A re-run of something that was not a job (the API names records only, but a
/// reload may have made its command a built-in).
pub fn rerun_not_a_job(id: JobId) -> String {
    format!("job {id}'s command is now answered by the bot itself: ask for it instead")
}

/// An argument that should be a job id is not one.
pub fn not_a_job_id() -> String {
    "that is not a job id".to_string()
}

/// The broker would not take a cancel.
pub fn cancel_not_sent(id: JobId, e: &dyn std::fmt::Display) -> String {
    format!("could not cancel job {id}: {e}")
}

/// A message that is no command (with the lexicon's suggestions).
pub fn unknown_command(said: &str) -> String {
    let stop = if said.ends_with('?') { "" } else { "." };
    format!("{said}{stop} Type \"help\" for the list.")
}

/// A job the broker would not take.
pub fn not_queued(e: &dyn std::fmt::Display) -> String {
    format!("could not queue the job: {e}")
}

/// A matched command with nothing to run it (the table and catalog disagree: a bug).
pub fn nothing_runs(command: &str) -> String {
    format!("\"{command}\" has nothing to run it; this is a bug")
}

/// Elapsed time with the precision people care about: `12ms`, `1.4s`, `3m20s`.
pub(crate) fn elapsed(d: Duration) -> String {
    match d.as_millis() {
        0..=999 => format!("{}ms", d.as_millis()),
        1000..=59_999 => format!("{:.1}s", d.as_secs_f64()),
        _ => lexicon::format_duration(Duration::from_secs(d.as_secs())),
    }
}

fn size(bytes: usize) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// The greeting of an interactive SSH session.
pub fn ssh_greeting(identity: &str) -> String {
    format!(
        "Octobox {} — you are {identity}. Type \"help\" for commands, Tab to complete, \
         Ctrl-C to cancel the job you wait for, Ctrl-D or \"exit\" to leave.",
        env!("CARGO_PKG_VERSION")
    )
}

/// An SSH session refused because a session limit is reached: one identity's, or the
/// server's (`identity` is `None`).
pub fn too_many_sessions(identity: Option<&str>, max: usize) -> String {
    match identity {
        Some(who) => format!(
            "{who} already has {max} sessions open, the most one identity may have; \
             close one and try again"
        ),
        None => format!("the bot already serves {max} sessions, its limit; try again shortly"),
    }
}

/// A command line past the length limit, refused whole.
pub fn line_too_long(max: usize) -> String {
    format!(
        "line too long: the line is longer than {max} characters (the most a command may \
         have) and was not run"
    )
}

/// An SSH session's input arrived faster than the session could take it, past `max`
/// bytes waiting: some was dropped. On a terminal the line being typed is refused; a
/// piped session is closed (its script would go on with a gap in it).
pub fn input_overflow(max: usize, closing: bool) -> String {
    let what = if closing {
        "the session is closed; send fewer commands at once"
    } else {
        "the line being typed will not be run"
    };
    format!(
        "input arrived faster than this session could take it (more than {} waiting), \
         so some was dropped: {what}",
        size(max)
    )
}

/// An interactive session closed for want of input.
pub fn idle_closed(after: Duration) -> String {
    format!(
        "no input for {}: closing the session",
        lexicon::format_duration(after)
    )
}

/// Leaving a session whose jobs have not finished yet.
pub fn still_running(jobs: usize) -> String {
    format!(
        "{jobs} job{} still running; \"jobs\" and \"job <id>\" show the result{} later",
        if jobs == 1 { "" } else { "s" },
        if jobs == 1 { "" } else { "s" }
    )
}

/// Ctrl-C on a session with no job to cancel.
pub fn nothing_to_cancel() -> String {
    "no job to cancel".to_string()
}

/// One line of the `schedules` listing, as the built-in gathers it.
pub struct ScheduleLine {
    pub name: String,
    /// The cron expression and its time zone.
    pub when: String,
    pub runs: String,
    pub delivers_to: String,
    pub next: Option<chrono::DateTime<Utc>>,
    pub paused: bool,
    /// The last fire: its job and that job's status, if still in the history.
    pub last: Option<(JobId, Option<JobStatus>)>,
}

/// `schedules`: one line per schedule.
pub fn schedule_table(lines: &[ScheduleLine]) -> String {
    if lines.is_empty() {
        return no_schedules();
    }
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let next = match (l.paused, l.next) {
                (true, _) => "paused".to_string(),
                (false, Some(t)) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                (false, None) => "never".to_string(),
            };
            let last = match &l.last {
                None => "never fired".to_string(),
                Some((id, Some(status))) => format!("{status} (job {id})"),
                Some((id, None)) => format!("job {id} (expired)"),
            };
            vec![
                l.name.clone(),
                l.when.clone(),
                next,
                l.runs.clone(),
                l.delivers_to.clone(),
                last,
            ]
        })
        .collect();
    table(
        &[
            "schedule",
            "when",
            "next",
            "runs",
            "delivers to",
            "last result",
        ],
        &rows,
    )
}

pub fn no_schedules() -> String {
    "no schedules: declare them as [[schedule]] entries in the configuration".to_string()
}

pub fn unknown_schedule(name: &str, known: &[&str]) -> String {
    if known.is_empty() {
        format!("no schedule \"{name}\": none are configured")
    } else {
        format!("no schedule \"{name}\" (there are: {})", known.join(", "))
    }
}

pub fn schedule_paused(name: &str, changed: bool) -> String {
    if changed {
        format!("paused schedule {name}: it will not fire until resumed")
    } else {
        format!("schedule {name} was already paused")
    }
}

pub fn schedule_resumed(name: &str, changed: bool, next: Option<chrono::DateTime<Utc>>) -> String {
    let next = next
        .map(|t| format!("; next at {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
        .unwrap_or_default();
    if changed {
        format!("resumed schedule {name}{next}")
    } else {
        format!("schedule {name} was not paused{next}")
    }
}

pub fn schedule_run_requested(name: &str, delivers_to: &str) -> String {
    let goes = if delivers_to == "history" {
        "the job history (see jobs)".to_string()
    } else {
        delivers_to.to_string()
    };
    format!("asked the scheduler to run {name} now; its result goes to {goes}")
}

pub fn schedules_unavailable(e: &dyn std::fmt::Display) -> String {
    format!("cannot reach the schedules: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use jobs::{Job, JobResult, Origin, Task};

    #[test]
    fn job_details_escape_control_characters_that_would_drive_a_terminal() {
        let mut r = record(
            JobStatus::Succeeded,
            Output::text("line one\n\u{1b}]0;pwned\u{7}\u{1b}[2Jcleared"),
            None,
        );
        r.job.args.insert(
            "text".into(),
            lexicon::Value::Text("hi\u{1b}[31m\rforged".into()),
        );
        let shown = job_details(&r, true);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\r'),
            "{shown:?}"
        );
        assert!(shown.contains("\\u{1b}]0;pwned"), "{shown}");
        assert!(
            shown.contains("line one\n"),
            "line breaks of the output stay: {shown}"
        );
        let hidden = job_details(&r, false);
        assert!(
            !hidden.contains("pwned") && !hidden.contains("forged"),
            "{hidden}"
        );
        assert!(hidden.contains("hidden"), "{hidden}");
    }

    fn record(status: JobStatus, output: Output, error: Option<&str>) -> JobRecord {
        let job = Job::new(
            "echo",
            Default::default(),
            Task::native("echo"),
            Origin::new("console", "alice"),
            Duration::from_secs(5),
        );
        let now = Utc::now();
        let mut r = JobRecord::queued(job);
        r.status = status;
        r.result = Some(JobResult {
            id: r.job.id,
            status,
            output,
            worker: "w".into(),
            started_at: now,
            finished_at: now + chrono::Duration::milliseconds(1500),
            error: error.map(String::from),
        });
        r
    }

    #[test]
    fn results_read_as_sentences() {
        let r = result(&record(JobStatus::Succeeded, Output::text("hi\n"), None));
        assert!(
            r.text.ends_with("(echo) succeeded in 1.5s:\nhi"),
            "{}",
            r.text
        );
        let r = result(&record(JobStatus::Failed, Output::Empty, Some("disk full")));
        assert!(
            r.text.ends_with("(echo) failed after 1.5s: disk full"),
            "{}",
            r.text
        );
        let r = result(&record(
            JobStatus::TimedOut,
            Output::Empty,
            Some("timed out after 1s"),
        ));
        assert!(r.text.ends_with("(echo) timed out after 1s"), "{}", r.text);
    }

    #[test]
    fn files_are_attached_and_described() {
        let out = Output::File {
            name: "a.csv".into(),
            media_type: "text/csv".into(),
            bytes: vec![b'x'; 2048],
        };
        let r = result(&record(JobStatus::Succeeded, out, None));
        assert!(
            r.text.ends_with("file a.csv (text/csv, 2.0 KiB)"),
            "{}",
            r.text
        );
        assert_eq!(r.file.unwrap().2.len(), 2048);
    }

    #[test]
    fn the_job_table_aligns_columns() {
        let t = job_table(&[record(JobStatus::Succeeded, Output::Empty, None)]);
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("job "));
        assert_eq!(lines[0].find("command"), lines[1].find("echo"));
        assert!(lines[1].contains("console:alice") && lines[1].ends_with("1.5s"));
        assert_eq!(job_table(&[]), "no jobs yet");
    }
}
