//! The built-in commands the bot answers itself, at once.
//!
//! Their patterns, help and examples are declared in `builtins.toml`; this module only
//! says what each does.

use std::collections::BTreeMap;
use std::str::FromStr;

use jobs::{Control, JobId, Store};
use lexicon::Value;

use crate::acl::AccessPolicy;
use crate::acl::ADMIN_GROUP;
use crate::commands::CommandTable;
use crate::reply;
use crate::router::{Answer, Outcome, Request, Router};
use crate::scheduling::ScheduleDesk;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Help,
    Explain,
    Version,
    Ping,
    Whoami,
    Jobs,
    Job,
    Workers,
    Schedules,
    PauseSchedule,
    ResumeSchedule,
    RunSchedule,
    Cancel,
    Reload,
}

impl FromStr for Builtin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "help" => Builtin::Help,
            "explain" => Builtin::Explain,
            "version" => Builtin::Version,
            "ping" => Builtin::Ping,
            "whoami" => Builtin::Whoami,
            "jobs" => Builtin::Jobs,
            "job" => Builtin::Job,
            "workers" => Builtin::Workers,
            "schedules" => Builtin::Schedules,
            "pause_schedule" => Builtin::PauseSchedule,
            "resume_schedule" => Builtin::ResumeSchedule,
            "run_schedule" => Builtin::RunSchedule,
            "cancel" => Builtin::Cancel,
            "reload" => Builtin::Reload,
            other => {
                return Err(format!(
                    "no built-in command \"{other}\" (there are: help, explain, version, \
                     ping, whoami, jobs, job, workers, schedules, pause_schedule, \
                     resume_schedule, run_schedule, cancel, reload)"
                ))
            }
        })
    }
}

/// What a built-in may look at.
pub struct BuiltinContext<'a> {
    pub table: &'a CommandTable,
    pub policy: &'a AccessPolicy,
    pub store: &'a dyn Store,
    pub request: &'a Request,
    pub router: &'a Router,
    pub args: &'a BTreeMap<String, Value>,
    /// The schedules, where this bot knows them.
    pub schedules: Option<&'a ScheduleDesk>,
}

impl BuiltinContext<'_> {
    pub(crate) fn text(&self, slot: &str) -> Option<&str> {
        self.args.get(slot).and_then(Value::as_str)
    }
}

pub async fn run(builtin: Builtin, ctx: BuiltinContext<'_>) -> Answer {
    let done = |text: String| Answer::new(Outcome::Done, text);
    match builtin {
        Builtin::Help => match ctx.text("topic") {
            None => done(ctx.table.catalog.help_overview()),
            Some(topic) => match ctx.table.catalog.help_for(topic) {
                Some(text) => done(text),
                None => Answer::new(
                    Outcome::Unknown,
                    format!("no command starts with \"{topic}\". Type \"help\" for the list."),
                ),
            },
        },
        Builtin::Explain => done(ctx.table.catalog.explain(ctx.text("message").unwrap_or(""))),
        Builtin::Version => done(format!("octobox {}", env!("CARGO_PKG_VERSION"))),
        Builtin::Ping => done("pong".to_string()),
        Builtin::Whoami => {
            let identity = ctx.request.origin.identity();
            let groups = ctx.policy.groups_of(&identity);
            done(if groups.is_empty() {
                format!("you are {identity}, in no group")
            } else {
                format!("you are {identity}, in groups: {}", groups.join(", "))
            })
        }
        Builtin::Jobs => {
            let count = ctx.args.get("count").and_then(Value::as_int).unwrap_or(20);
            let count = usize::try_from(count).unwrap_or(20);
            match ctx.store.recent_jobs(count).await {
                Ok(records) => done(reply::job_table(&records)),
                Err(e) => Answer::new(Outcome::Failed, format!("cannot list jobs: {e}")),
            }
        }
        Builtin::Job => {
            let Some(id) = ctx.text("id").and_then(|s| s.parse::<JobId>().ok()) else {
                return Answer::new(Outcome::BadArgument, "that is not a job id");
            };
            match ctx.store.job(id).await {
                Ok(Some(record)) => done(reply::job_details(&record)),
                Ok(None) => Answer::new(Outcome::Unknown, reply::no_such_job(id)),
                Err(e) => Answer::new(Outcome::Failed, format!("cannot read job {id}: {e}")),
            }
        }
        Builtin::Workers => match ctx.store.workers().await {
            Ok(workers) => done(reply::worker_table(&workers)),
            Err(e) => Answer::new(Outcome::Failed, format!("cannot list workers: {e}")),
        },
        Builtin::Schedules
        | Builtin::PauseSchedule
        | Builtin::ResumeSchedule
        | Builtin::RunSchedule => crate::schedule_builtins::run(builtin, &ctx).await,
        Builtin::Cancel => cancel(&ctx).await,
        Builtin::Reload => {
            if !ctx.policy.is_admin(&ctx.request.origin.identity()) {
                return Answer::new(Outcome::Refused, reply::admins_only("reload", ADMIN_GROUP));
            }
            match ctx.router.reload() {
                Ok(text) => done(text),
                Err(text) => Answer::new(Outcome::Failed, text),
            }
        }
    }
}

/// `cancel <id>`: the job's requester, or an admin, stops it wherever it runs.
async fn cancel(ctx: &BuiltinContext<'_>) -> Answer {
    let Some(id) = ctx.text("id").and_then(|s| s.parse::<JobId>().ok()) else {
        return Answer::new(Outcome::BadArgument, "that is not a job id");
    };
    let record = match ctx.store.job(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return Answer::new(Outcome::Unknown, reply::no_such_job(id)),
        Err(e) => return Answer::new(Outcome::Failed, format!("cannot read job {id}: {e}")),
    };
    if record.status.is_final() {
        return Answer::new(Outcome::Done, reply::cancel_too_late(&record));
    }
    let who = ctx.request.origin.identity();
    let owner = record.job.origin.identity();
    if who != owner && !ctx.policy.is_admin(&who) {
        return Answer::new(
            Outcome::Refused,
            reply::cancel_refused(id, &owner, ADMIN_GROUP),
        );
    }
    let control = Control::Cancel { job: id, by: who };
    match ctx.router.broker().broadcast(&control).await {
        Ok(()) => {
            tracing::info!(job = %id, by = %ctx.request.origin.identity(), "cancel sent");
            Answer::new(Outcome::Done, reply::cancel_sent(id))
        }
        Err(e) => Answer::new(Outcome::Failed, format!("could not cancel job {id}: {e}")),
    }
}
