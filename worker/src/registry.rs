//! Native tasks and the registry that finds them by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use config::TasksConfig;
use jobs::{Event, EventKind, Job, Output, Store};
use lexicon::Value;

use crate::tasks::certificate::{CaFileError, TlsClient};

/// A task written in Rust and compiled into the worker.
#[async_trait]
pub trait NativeTask: Send + Sync + 'static {
    /// The argument slots the task reads. A command that runs it must declare each, so
    /// a mismatch is a configuration error at start, not a failed job later.
    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    /// Runs the job. The worker applies the timeout; a task only needs to be cancel-safe
    /// (it may be dropped at any `.await`).
    async fn run(&self, ctx: &TaskContext) -> Result<Output, TaskError>;
}

/// Why a task failed, as a sentence for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("argument \"{0}\" is missing or of the wrong type")]
    BadArgument(String),
    #[error("{0}")]
    Failed(String),
    /// A failure worth another attempt (a service that was briefly away): the worker
    /// retries it with backoff, up to its retry policy.
    #[error("{0}")]
    Retryable(String),
}

/// What a running task may see and do.
pub struct TaskContext {
    pub job: Job,
    store: Arc<dyn Store>,
}

impl TaskContext {
    pub fn new(job: Job, store: Arc<dyn Store>) -> Self {
        TaskContext { job, store }
    }

    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.job.args.get(name)
    }

    /// A text argument, or an error naming it.
    pub fn text_arg(&self, name: &str) -> Result<String, TaskError> {
        self.arg(name)
            .map(|v| v.to_string())
            .ok_or_else(|| TaskError::BadArgument(name.to_string()))
    }

    /// Tells the requester how the task is getting on. Best effort: a progress line that
    /// cannot be stored is logged, never a reason to fail the job.
    pub async fn progress(&self, line: impl Into<String>) {
        let line = self.job.mask_text(&line.into());
        let event = Event::now(self.job.id, EventKind::Progress { line });
        if let Err(e) = self.store.append_event(&event).await {
            tracing::warn!(job = %self.job.id, error = %e, "progress line not stored");
        }
    }
}

/// The native tasks a worker can run, by name.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    tasks: BTreeMap<String, Arc<dyn NativeTask>>,
}

impl TaskRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The tasks every worker has, the day-one tasks with their default settings.
    pub fn standard() -> Self {
        Self::with_tasks(&TasksConfig::default(), TlsClient::with_roots(Vec::new()))
    }

    /// The tasks every worker has, the day-one tasks with the settings of `[tasks]`
    /// (a worker's own file). A task switched off there is registered all the same:
    /// its commands cannot be declared in that file, so the worker, which runs only what
    /// its own catalog declares, never runs it.
    pub fn configured(tasks: &TasksConfig) -> Result<Self, CaFileError> {
        let tls = TlsClient::new(tasks.ca_file.as_deref())?;
        Ok(Self::with_tasks(tasks, tls))
    }

    fn with_tasks(tasks: &TasksConfig, tls: TlsClient) -> Self {
        use crate::tasks;
        let mut r = Self::new();
        r.register("echo", tasks::Echo);
        r.register("sleep", tasks::Sleep);
        r.register("dns", tasks::Dns::new(tasks.dns.clone()));
        r.register("whois", tasks::Whois::new(tasks.whois.clone()));
        r.register(
            "http_check",
            tasks::HttpCheck::new(tasks.http_check.clone(), tls.clone()),
        );
        r.register(
            "tls_expiry",
            tasks::TlsExpiry::new(tasks.tls_expiry.clone(), tls.clone()),
        );
        r.register(
            "walk_site",
            tasks::WalkSite::new(tasks.walk_site.clone(), tls),
        );
        r
    }

    pub fn register(&mut self, name: &str, task: impl NativeTask) {
        self.tasks.insert(name.to_string(), Arc::new(task));
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn NativeTask>> {
        self.tasks.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tasks.keys().map(String::as_str)
    }

    /// The slots task `name` reads, if there is such a task.
    pub fn params(&self, name: &str) -> Option<&'static [&'static str]> {
        self.tasks.get(name).map(|t| t.params())
    }
}
