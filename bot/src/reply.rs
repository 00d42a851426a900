//! The one place replies are worded, for every adapter: "queued as job …", a job's
//! result, the `jobs` table, the `job <id>` details. Adapters decide only how to show
//! them (a terminal line, a Slack thread, a file upload).

use std::time::Duration;

use chrono::Utc;
use jobs::{JobId, JobRecord, JobStatus, Output, WorkerInfo};

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
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
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

/// `job <id>`: everything known about one job.
pub fn job_details(record: &JobRecord) -> String {
    let job = &record.job;
    let args = job
        .args
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
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
        if let Some(e) = &res.error {
            lines.push(format!("error     {e}"));
        }
        match &res.output {
            Output::Empty => {}
            Output::Text { text } => lines.push(format!("output\n{}", text.trim_end())),
            Output::File {
                name,
                media_type,
                bytes,
            } => lines.push(format!(
                "output    file {name} ({media_type}, {})",
                size(bytes.len())
            )),
        }
    }
    lines.join("\n")
}

/// Elapsed time with the precision people care about: `12ms`, `1.4s`, `3m20s`.
fn elapsed(d: Duration) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use jobs::{Job, JobResult, Origin, Task};

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
