//! `JobFailure`: why a job ended without its output, in the words its requester reads.
//!
//! Workers write a `JobFailure` into a result's `error`, and so does the bot's dead-letter
//! reporter for a job the broker gave up on. Every such sentence is here, so one event is
//! told in the same words whoever tells it, and the status that goes with a failure
//! ([`JobFailure::status`]) is decided in one place. A reply puts the sentence after
//! "job <id> (<command>)" (`bot/src/reply.rs`), so each reads as the end of that phrase.
//!
//! `DeadLetter`: why the broker gave up on a job, as a dead-letter `Delivery` carries it.

use std::fmt;
use std::time::Duration;

use config::limits::format_size;
use lexicon::format_duration;

use crate::job::{JobId, JobStatus};

/// Why a job failed, timed out or was cancelled; its `Display` is the sentence stored as
/// the result's `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobFailure {
    // Jobs a worker cannot run.
    /// The worker's own configuration has no such command (or answers it in the bot).
    #[error("this worker's configuration has no command \"{command}\", so it did not run it")]
    UnknownCommand { command: String },
    /// The job's task or arguments are not what the worker's own configuration makes of
    /// its command: forged, or the bot and the worker read different files.
    #[error(
        "was not run: what it asks for is not what this worker's configuration declares for \
         \"{command}\" (if the configuration changed, reload the bot and restart the workers)"
    )]
    NotAsConfigured { command: String },
    #[error("this worker has no native task \"{name}\" (it has: {})", known.join(", "))]
    UnknownTask { name: String, known: Vec<String> },
    #[error("this worker cannot run containers, so it cannot run image \"{image}\"")]
    NoContainers { image: String },
    #[error("shipper \"{shipper}\" runs in the scheduler that fires it, never on a worker")]
    ShipperOnWorker { shipper: String },
    #[error("job {job} is not a container job")]
    NotAContainerJob { job: JobId },

    // Native tasks.
    /// The task's own sentence (a native task's error).
    #[error("{0}")]
    Task(String),
    /// A failure the task called retryable, once no attempts are left.
    #[error("failed after {attempts} attempts: {last}")]
    RetriesUsedUp { attempts: u32, last: String },
    #[error("the task \"{task}\" crashed; the worker log has details")]
    Crashed { task: String },

    // Stopped from outside.
    #[error("timed out after {}", format_duration(*after))]
    TimedOut { after: Duration },
    #[error(
        "timed out after {}; its container was stopped and removed",
        format_duration(*after)
    )]
    ContainerTimedOut { after: Duration },
    #[error("cancelled by {by}")]
    Cancelled { by: String },

    // Approvals (written by the bot that saw the decision).
    #[error("denied by {by}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Denied { by: String, reason: Option<String> },
    #[error("not approved within {}, so it did not run", format_duration(*after))]
    ApprovalExpired { after: Duration },
    #[error("it was approved by {by} but could not be queued ({reason}); ask for it again")]
    ApprovedNotQueued { by: String, reason: String },

    // Shipper runs (in the scheduler that fired them).
    #[error("no shipper \"{name}\" in this scheduler's configuration")]
    UnknownShipper { name: String },
    /// Past its timeout. The status stays `failed`: the run stopped at a checkpoint and
    /// the next one resumes there, so nothing is lost as with a timed-out task.
    #[error(
        "timed out after {}; the next run resumes from the checkpoint",
        format_duration(*after)
    )]
    ShipperStopped { after: Duration },

    // The Docker engine and the container.
    /// The engine could not be reached; `reason` quotes the client's error.
    #[error("the Docker engine at {host} does not answer: {reason}")]
    EngineSilent { host: String, reason: String },
    #[error("the Docker engine at {host} did not answer within {} seconds", within.as_secs())]
    EngineSlow { host: String, within: Duration },
    /// The engine's TLS certificate is not signed by the CA this worker was given
    /// (`DOCKER_CERT_PATH`'s `ca.pem`): not the engine it was configured for.
    #[error(
        "the Docker engine at {host} was refused: its certificate was not trusted ({detail}); \
         this worker trusts only an engine whose certificate the CA in {ca} signed"
    )]
    EngineNotTrusted {
        host: String,
        ca: String,
        detail: String,
    },
    /// The TLS settings for the engine cannot be used: a certificate or key file missing,
    /// unreadable or not PEM. `reason` names the file and what to do.
    #[error("the Docker engine at {host} cannot be reached over TLS: {reason}")]
    EngineTlsSettings { host: String, reason: String },
    /// The engine answered with an error while the worker was trying to `doing`.
    #[error("the Docker engine at {host} refused to {doing}: {message}")]
    EngineRefused {
        host: String,
        doing: String,
        message: String,
    },
    /// The engine stopped answering while the worker was trying to `doing`.
    #[error("the Docker engine at {host} is not answering (trying to {doing}): {reason}")]
    EngineGone {
        host: String,
        doing: String,
        reason: String,
    },
    #[error(
        "image \"{image}\" is not on this worker's Docker engine, and this command does not \
         pull images: load the image on the worker, or set pull = true in the command's \
         container table"
    )]
    MissingImage { image: String },
    #[error("the Docker engine at {host} stopped sending the container's output: {reason}")]
    OutputBroken { host: String, reason: String },
    #[error(
        "its container ran out of memory (the limit is {}) and was stopped",
        format_size(*limit)
    )]
    OutOfMemory { limit: u64 },
    /// A non-zero exit status, with the last lines the container wrote to stderr.
    #[error("{}", ExitStatus { code: *code, stderr_tail })]
    Exited { code: i64, stderr_tail: Vec<String> },
    #[error(
        "its output passed the {} limit and was cut, so it cannot be decoded as base64; \
         raise the command's output_limit",
        format_size(*limit)
    )]
    Base64Cut { limit: u64 },
    #[error("its output is not valid base64 ({reason})")]
    NotBase64 { reason: String },

    // Set aside.
    /// The broker gave up on it (a dead letter), as the bot reports it.
    #[error("was set aside: {0}")]
    DeadLettered(DeadLetter),
    /// A worker received it again past the delivery limit: it never finished.
    #[error(
        "was set aside: it was delivered {} and never finished (the delivery limit); it may \
         crash the workers that take it",
        Times(*deliveries)
    )]
    NeverFinished { deliveries: u32 },
}

impl JobFailure {
    /// The status of a result that ends this way.
    pub fn status(&self) -> JobStatus {
        match self {
            JobFailure::TimedOut { .. } | JobFailure::ContainerTimedOut { .. } => {
                JobStatus::TimedOut
            }
            JobFailure::Cancelled { .. }
            | JobFailure::Denied { .. }
            | JobFailure::ApprovalExpired { .. } => JobStatus::Cancelled,
            _ => JobStatus::Failed,
        }
    }
}

/// Why the broker gave up on a job; its `Display` is the reason, as a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetter {
    /// Delivered `limit` times, never acknowledged: the job may crash its workers.
    #[error(
        "it was delivered {} without being acknowledged (the delivery limit): it may crash \
         the workers that take it",
        Times(*limit)
    )]
    DeliveryLimit { limit: u32 },
    #[error("it was rejected by a worker")]
    Rejected,
    #[error("it expired")]
    Expired,
    #[error("its queue was full")]
    QueueFull,
    /// A reason RabbitMQ gave that has no variant of its own, as it spelled it.
    #[error("RabbitMQ dead-lettered it ({0})")]
    Other(String),
    #[error("RabbitMQ dead-lettered it without saying why")]
    Unexplained,
    /// A dead letter that came without any reason at all.
    #[error("the job queue gave up on it")]
    GaveUp,
    /// A worker set it aside unrun: its signature was missing or wrong, so someone
    /// published it straight to the broker rather than through an Octobox process.
    #[error("{0}")]
    Unauthenticated(BadSignature),
}

/// Why a message's signature (`x-octobox-signature`) was not accepted. Each sentence
/// ends the same way: what it means for the person reading a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    #[error("it carries no signature: it was not published by an Octobox process with this key")]
    Missing,
    #[error(
        "its signature is not a hex HMAC-SHA256: it was not published by an Octobox process \
         with this key"
    )]
    Malformed,
    #[error(
        "its signature does not match: it was not published by an Octobox process with this key"
    )]
    Mismatch,
}

impl BadSignature {
    /// The short form carried in the `x-octobox-dead-reason` header of a dead letter.
    pub fn as_str(self) -> &'static str {
        match self {
            BadSignature::Missing => "unsigned",
            BadSignature::Malformed => "malformed-signature",
            BadSignature::Mismatch => "bad-signature",
        }
    }

    /// The reverse of [`BadSignature::as_str`].
    pub fn parse(text: &str) -> Option<BadSignature> {
        [
            BadSignature::Missing,
            BadSignature::Malformed,
            BadSignature::Mismatch,
        ]
        .into_iter()
        .find(|b| b.as_str() == text)
    }
}

/// "once", "2 times": how often a job was delivered.
struct Times(u32);

impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("once"),
            n => write!(f, "{n} times"),
        }
    }
}

/// A container's non-zero exit, with its last stderr lines if it wrote any.
struct ExitStatus<'a> {
    code: i64,
    stderr_tail: &'a [String],
}

impl fmt::Display for ExitStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code;
        if self.stderr_tail.is_empty() {
            write!(
                f,
                "its container exited with status {code} (it wrote nothing to stderr)"
            )
        } else {
            write!(
                f,
                "its container exited with status {code}; its last lines on stderr:\n{}",
                self.stderr_tail.join("\n")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_delivery_limit_sentences_count_deliveries_the_same_way() {
        assert_eq!(
            DeadLetter::DeliveryLimit { limit: 5 }.to_string(),
            "it was delivered 5 times without being acknowledged (the delivery limit): \
             it may crash the workers that take it"
        );
        assert_eq!(
            JobFailure::NeverFinished { deliveries: 1 }.to_string(),
            "was set aside: it was delivered once and never finished (the delivery limit); \
             it may crash the workers that take it"
        );
        assert_eq!(
            JobFailure::DeadLettered(DeadLetter::Rejected).to_string(),
            "was set aside: it was rejected by a worker"
        );
        assert_eq!(
            JobFailure::DeadLettered(DeadLetter::Unauthenticated(BadSignature::Mismatch))
                .to_string(),
            "was set aside: its signature does not match: it was not published by an Octobox \
             process with this key"
        );
    }

    #[test]
    fn the_status_follows_the_failure() {
        let after = Duration::from_millis(100);
        let timed_out = JobFailure::TimedOut { after };
        assert_eq!(timed_out.to_string(), "timed out after 100ms");
        assert_eq!(timed_out.status(), JobStatus::TimedOut);
        assert_eq!(
            JobFailure::ContainerTimedOut { after }.status(),
            JobStatus::TimedOut
        );
        let cancelled = JobFailure::Cancelled {
            by: "console:alice".into(),
        };
        assert_eq!(cancelled.to_string(), "cancelled by console:alice");
        assert_eq!(cancelled.status(), JobStatus::Cancelled);
        assert_eq!(
            JobFailure::Crashed { task: "x".into() }.status(),
            JobStatus::Failed
        );
    }

    #[test]
    fn an_exit_quotes_the_last_stderr_lines_when_there_are_some() {
        let quiet = JobFailure::Exited {
            code: 3,
            stderr_tail: vec![],
        };
        assert_eq!(
            quiet.to_string(),
            "its container exited with status 3 (it wrote nothing to stderr)"
        );
        let loud = JobFailure::Exited {
            code: 1,
            stderr_tail: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            loud.to_string(),
            "its container exited with status 1; its last lines on stderr:\na\nb"
        );
    }
}
