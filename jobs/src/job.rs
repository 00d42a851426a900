//! The job and its result: what travels from the bot to a worker and back.
//!
//! Everything here is serialized as JSON on the wire and in the store, so field names are
//! part of the contract between processes of different versions: add fields with
//! `#[serde(default)]`, never rename one.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use lexicon::Value;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use config::limits::ContainerLimits;

/// A job's identity: a UUID v7, so ids sort by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }

    /// The id's 16 bytes, for compact encodings (history cursors).
    pub fn to_bytes(self) -> [u8; 16] {
        *self.0.as_bytes()
    }

    /// The id whose bytes are `bytes` (read back from [`JobId::to_bytes`]).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        JobId(Uuid::from_bytes(bytes))
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim()).map(JobId)
    }
}

/// Where a request came from, and so where its answer goes.
///
/// It is stored with the job, so a reply can be delivered by a bot process that did not
/// receive the request (after a restart, or on another machine).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The adapter that received the request: `console`, `slack`, `ssh`, `scheduler`.
    pub adapter: String,
    /// The user as the adapter knows them (a login name, a Slack user id, a key name).
    pub user: String,
    /// The conversation: a console session, a Slack channel, an SSH session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// A thread inside the conversation, where the adapter has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
}

impl Origin {
    /// An origin with no channel or thread.
    pub fn new(adapter: impl Into<String>, user: impl Into<String>) -> Self {
        Origin {
            adapter: adapter.into(),
            user: user.into(),
            channel: None,
            thread: None,
        }
    }

    /// The identity the access policy knows: `adapter:user`, e.g. `console:alice`.
    pub fn identity(&self) -> String {
        format!("{}:{}", self.adapter, self.user)
    }
}

/// What a worker runs for a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// A task compiled into the worker, found by name in its registry.
    Native { name: String },
    /// A program in a container image, run by a worker's `ContainerRunner`. `argv` and
    /// `env` hold the argument values already substituted, each value one whole element:
    /// no shell ever reads them.
    Container {
        image: String,
        argv: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        limits: ContainerLimits,
    },
    /// A `[[shipper]]` run. It is never published: the scheduler that fires it runs it,
    /// since the shipper's source, sink, secrets and checkpoint are that scheduler's
    /// configuration. A worker that receives one fails it.
    Ship { shipper: String },
}

impl Task {
    pub fn native(name: impl Into<String>) -> Self {
        Task::Native { name: name.into() }
    }

    /// The queue the task would travel on. A `Ship` task never travels; it counts as
    /// native, so one that reaches a broker is failed by the first worker, quickly.
    pub fn class(&self) -> TaskClass {
        match self {
            Task::Native { .. } | Task::Ship { .. } => TaskClass::Native,
            Task::Container { .. } => TaskClass::Container,
        }
    }
}

/// Task classes get queues of their own, so slow container jobs never starve quick
/// native ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskClass {
    Native,
    Container,
}

impl TaskClass {
    pub const ALL: [TaskClass; 2] = [TaskClass::Native, TaskClass::Container];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskClass::Native => "native",
            TaskClass::Container => "container",
        }
    }
}

/// One unit of asynchronous work, as published to the broker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    /// The catalog name of the command that created the job.
    pub command: String,
    /// The typed arguments, as the lexicon classified them.
    pub args: BTreeMap<String, Value>,
    pub task: Task,
    pub origin: Origin,
    pub created_at: DateTime<Utc>,
    /// How long the task may run once a worker starts it.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// 1 for the first delivery; raised each time the job is retried.
    pub attempt: u32,
    /// For one of a fan-out's jobs (one per host of a group): the fan-out's job, which
    /// answers the requester with one summary instead of one reply per host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<JobId>,
    /// For a fan-out's job: its jobs, one per host. A fan-out's job is never queued;
    /// it is finished by the bot when its last child finishes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<JobId>,
}

impl Job {
    /// The job as it may be kept and shown: every `secret` argument replaced by
    /// `lexicon::MASK`, in the arguments and wherever the task carries its text (argv
    /// elements, environment values). What a store records and an event carries; the
    /// broker carries the job itself, to the worker that needs the text.
    pub fn masked(&self) -> Job {
        if !self.has_secrets() {
            return self.clone();
        }
        let mut job = self.clone();
        job.args = self
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.masked()))
            .collect();
        if let Task::Container { argv, env, .. } = &mut job.task {
            for element in argv.iter_mut() {
                *element = self.mask_text(element);
            }
            for value in env.values_mut() {
                *value = self.mask_text(value);
            }
        }
        job
    }

    /// Whether any argument is a secret.
    pub fn has_secrets(&self) -> bool {
        self.args.values().any(|v| v.secret().is_some())
    }

    /// `text` (a task's output, error or progress line) with every occurrence of a secret
    /// argument replaced by `lexicon::MASK`. Time linear in the text for each secret.
    pub fn mask_text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in self.args.values().filter_map(Value::secret) {
            if !secret.is_empty() && out.contains(secret) {
                out = out.replace(secret, lexicon::MASK);
            }
        }
        out
    }

    /// A new job: a fresh id, created now, on its first attempt.
    pub fn new(
        command: impl Into<String>,
        args: BTreeMap<String, Value>,
        task: Task,
        origin: Origin,
        timeout: Duration,
    ) -> Self {
        Job {
            id: JobId::new(),
            command: command.into(),
            args,
            task,
            origin,
            created_at: Utc::now(),
            timeout,
            attempt: 1,
            parent: None,
            children: Vec::new(),
        }
    }
}

/// The life of a job. The last four are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

impl JobStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timed out",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a task produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Output {
    #[default]
    Empty,
    Text {
        text: String,
    },
    /// Bytes with a media type, delivered as a file where the adapter can.
    File {
        name: String,
        media_type: String,
        #[serde(with = "base64_bytes")]
        bytes: Vec<u8>,
    },
}

impl Output {
    pub fn text(text: impl Into<String>) -> Self {
        Output::Text { text: text.into() }
    }
}

/// The outcome of one job, written by the worker that ran it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub id: JobId,
    pub status: JobStatus,
    #[serde(default)]
    pub output: Output,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Why the job did not succeed, as a sentence a person can read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JobResult {
    /// The result with every secret argument of `job` masked in its text output and its
    /// error, as it is stored and delivered (a task may print what it was given).
    pub fn masked_for(mut self, job: &Job) -> JobResult {
        if !job.has_secrets() {
            return self;
        }
        if let Output::Text { text } = &mut self.output {
            *text = job.mask_text(text);
        }
        if let Some(error) = &mut self.error {
            *error = job.mask_text(error);
        }
        self
    }

    pub fn duration(&self) -> Duration {
        (self.finished_at - self.started_at)
            .to_std()
            .unwrap_or_default()
    }
}

/// Everything the store knows about a job: what `jobs` and `job <id>` show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job: Job,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
}

impl JobRecord {
    pub fn queued(job: Job) -> Self {
        JobRecord {
            job,
            status: JobStatus::Queued,
            worker: None,
            started_at: None,
            result: None,
        }
    }
}

/// Durations travel as whole milliseconds: readable in the JSON and exact.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// File contents travel as standard base64 inside the JSON.
mod base64_bytes {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Job {
        let mut args = BTreeMap::new();
        args.insert("text".to_string(), Value::Text("hello  world".into()));
        Job::new(
            "echo",
            args,
            Task::native("echo"),
            Origin {
                channel: Some("c1".into()),
                ..Origin::new("console", "alice")
            },
            Duration::from_millis(1500),
        )
    }

    #[test]
    fn job_round_trips_through_json() {
        let job = sample();
        let json = serde_json::to_string(&job).unwrap();
        assert!(json.contains(r#""timeout":1500"#), "{json}");
        assert!(json.contains(r#""kind":"native""#), "{json}");
        let back: Job = serde_json::from_str(&json).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn file_output_is_base64_in_json() {
        let out = Output::File {
            name: "a.png".into(),
            media_type: "image/png".into(),
            bytes: vec![0x89, b'P', b'N', b'G'],
        };
        let json = serde_json::to_string(&out).unwrap();
        assert!(json.contains("iVBORw=="), "{json}");
        assert_eq!(serde_json::from_str::<Output>(&json).unwrap(), out);
    }

    #[test]
    fn job_ids_sort_by_creation_and_parse_back() {
        let a = JobId::new();
        let b = JobId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<JobId>().unwrap(), a);
        assert!("not-a-uuid".parse::<JobId>().is_err());
    }

    #[test]
    fn identity_joins_adapter_and_user() {
        assert_eq!(sample().origin.identity(), "console:alice");
    }
}
