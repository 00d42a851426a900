//! `Router`: what happens to one message, whatever adapter it came from.
//!
//! classify (lexicon) → access check (`AccessPolicy`) → a built-in answers at once, or a
//! job is recorded in the store and published to the broker. Adapters turn text into a
//! [`Request`] and show the [`Answer`]; they make none of these decisions.

use std::sync::{Arc, OnceLock, RwLock};

use jobs::{Broker, Job, JobId, Origin, Store, Task};
use lexicon::{Classification, Match};

use crate::acl::AccessPolicy;
use crate::builtins::{self, BuiltinContext};
use crate::commands::{Action, CommandAction, CommandTable};
use crate::reload::ConfigFile;
use crate::reply;
use crate::scheduling::ScheduleDesk;

/// One message, as an adapter received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub text: String,
    pub origin: Origin,
}

/// How a request ended, for adapters that report it (an SSH exit status, a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered; nothing more will come.
    Done,
    /// A job was queued; its result is delivered later by the async manager.
    Queued,
    /// Nothing was asked (an empty line).
    Nothing,
    Unknown,
    BadArgument,
    Refused,
    /// The bot could not do what was asked (the queue or store is down).
    Failed,
}

/// The immediate answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub outcome: Outcome,
    pub text: String,
    pub job: Option<JobId>,
}

impl Answer {
    pub fn new(outcome: Outcome, text: impl Into<String>) -> Self {
        Answer {
            outcome,
            text: text.into(),
            job: None,
        }
    }
}

pub struct Router {
    table: RwLock<Arc<CommandTable>>,
    policy: RwLock<Arc<AccessPolicy>>,
    broker: Arc<dyn Broker>,
    store: Arc<dyn Store>,
    schedules: Option<ScheduleDesk>,
    /// The file `reload` reads again; none when the bot started without one.
    config_file: OnceLock<ConfigFile>,
}

impl Router {
    pub fn new(
        table: CommandTable,
        policy: AccessPolicy,
        broker: Arc<dyn Broker>,
        store: Arc<dyn Store>,
    ) -> Self {
        Router {
            table: RwLock::new(Arc::new(table)),
            policy: RwLock::new(Arc::new(policy)),
            broker,
            store,
            schedules: None,
            config_file: OnceLock::new(),
        }
    }

    /// Names the configuration file `reload` and SIGHUP read again (set once, at start).
    pub fn set_config_file(&self, file: ConfigFile) {
        let _ = self.config_file.set(file);
    }

    /// The access policy in force.
    pub fn policy(&self) -> Arc<AccessPolicy> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The broker jobs and control messages go to.
    pub fn broker(&self) -> &dyn Broker {
        self.broker.as_ref()
    }

    /// Reads the configuration file again and puts its commands and access groups in
    /// force. On failure nothing changes, and the reply lists every problem. Answers
    /// in the words of `reply`, for the `reload` built-in and the SIGHUP log alike.
    pub fn reload(&self) -> Result<String, String> {
        let Some(file) = self.config_file.get() else {
            return Err(reply::reload_without_file());
        };
        let source = file.path().display().to_string();
        match file.load() {
            Ok(reloaded) => {
                let commands = reloaded.table.catalog.len();
                *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(reloaded.table);
                *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(reloaded.policy);
                tracing::info!(config = %source, commands, "configuration reloaded");
                Ok(reply::reloaded(&source, commands, reloaded.configured))
            }
            Err(errors) => {
                tracing::warn!(config = %source, problems = errors.0.len(), "reload refused:\n{errors}");
                Err(reply::reload_failed(&errors.to_string()))
            }
        }
    }

    /// Lets the schedule built-ins list, pause, resume and run `desk`'s schedules.
    pub fn with_schedules(mut self, desk: ScheduleDesk) -> Self {
        self.schedules = Some(desk);
        self
    }

    /// The schedules this bot lists and steers, if it was given them.
    pub fn schedules(&self) -> Option<&ScheduleDesk> {
        self.schedules.as_ref()
    }

    /// The command table in force.
    pub fn table(&self) -> Arc<CommandTable> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub async fn handle(&self, request: &Request) -> Answer {
        let table = self.table();
        let m = match table.catalog.classify(&request.text) {
            Classification::Matched(m) => m,
            Classification::Empty => return Answer::new(Outcome::Nothing, ""),
            c @ Classification::Unknown { .. } => {
                let said = c.to_string();
                let stop = if said.ends_with('?') { "" } else { "." };
                return Answer::new(
                    Outcome::Unknown,
                    format!("{said}{stop} Type \"help\" for the list."),
                );
            }
            c @ Classification::BadArgument(_) => {
                return Answer::new(Outcome::BadArgument, c.to_string())
            }
        };
        let Some(action) = table.action(&m.command) else {
            // The table is built from the same declarations as the catalog.
            return Answer::new(
                Outcome::Failed,
                format!("\"{}\" has nothing to run it; this is a bug", m.command),
            );
        };
        let identity = request.origin.identity();
        let policy = self.policy();
        if let Err(refusal) =
            policy.check_origin(&request.origin, &m.command, action.allow.as_deref())
        {
            tracing::info!(user = %identity, command = %m.command, "refused");
            return Answer::new(Outcome::Refused, refusal.to_string());
        }
        match &action.runs {
            Action::Builtin(b) => {
                let ctx = BuiltinContext {
                    table: &table,
                    policy: &policy,
                    router: self,
                    store: self.store.as_ref(),
                    request,
                    args: &m.args,
                    schedules: self.schedules.as_ref(),
                };
                builtins::run(*b, ctx).await
            }
            Action::Native(_) | Action::Container(_) => {
                let Some(task) = action.runs.task_for(&m) else {
                    unreachable!("native and container actions always make a task")
                };
                self.submit(m, task, action, &request.origin).await
            }
        }
    }

    /// Records the job (so its reply survives a bot restart) and publishes it, both at
    /// once: the job is queued when the broker confirms it. A record that did not land
    /// is written by the job's worker, which has the whole job.
    async fn submit(
        &self,
        m: Match,
        task: Task,
        action: &CommandAction,
        origin: &Origin,
    ) -> Answer {
        let job = Job::new(m.command, m.args, task, origin.clone(), action.timeout);
        let (recorded, published) =
            tokio::join!(self.store.record_job(&job), self.broker.publish(&job));
        if let Err(e) = published {
            tracing::error!(job = %job.id, error = %e, "job not published");
            return Answer::new(Outcome::Failed, format!("could not queue the job: {e}"));
        }
        if let Err(e) = recorded {
            tracing::warn!(job = %job.id, error = %e, "job queued but not recorded; its worker will record it");
        }
        tracing::info!(job = %job.id, command = %job.command, user = %origin.identity(), "job queued");
        Answer {
            outcome: Outcome::Queued,
            text: reply::queued(job.id),
            job: Some(job.id),
        }
    }
}
