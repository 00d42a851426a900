//! `Router`: what happens to one message, whatever adapter it came from.
//!
//! length check → per-person rate (`[quota]`) → classify (lexicon) → access check
//! (`AccessPolicy`) → a built-in answers at once, or a job takes its quota places (per
//! person, per command) and is recorded in the store and published to the broker — or,
//! for a command declared with `approval`, held until someone decides (`approvals`); for
//! one declared with `fan_out`, one job per host of the group it names (`fan_out`; a
//! re-run of one of those jobs runs on its host alone).
//! Whatever the answer, the request then lands in the audit trail (`audit_trail`).
//! Adapters turn text into a [`Request`] and show the [`Answer`]; they make none of these
//! decisions. Each request is handled under one catalog, loaded once from the
//! `LiveCatalog` every reader shares. Quotas are counted in the store, so every bot of
//! one Octobox counts together.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use commands::{Catalog, CommandAction, Executor, LiveCatalog};
use jobs::{Broker, Job, JobRecord, Origin, Store, Task};
use lexicon::{Classification, Match};

use crate::approvals;
use crate::audit_trail::{self, Heard};
use crate::builtins::{self, BuiltinCall, BuiltinServices};
use crate::fan_out;
use crate::reply;
pub use crate::request::{Answer, Outcome, Request};

/// What a command declared with `fan_out` runs on: its whole group (as asked), or the
/// one host a job of an earlier fan-out ran on (that job's re-run).
#[derive(Debug, Clone, Copy)]
enum Scope {
    Whole,
    OneHost(jobs::JobId),
}

/// The answer to a request for a command whose `approval` needs a reason, asked without
/// one.
fn missing_reason(action: &CommandAction, reason: Option<&str>, command: &str) -> Option<Answer> {
    (action.approval.as_ref().is_some_and(|a| a.reason) && reason.is_none())
        .then(|| Answer::new(Outcome::BadArgument, reply::reason_needed(command)))
}

/// Who asked for a command and under which catalog: what every step of submitting it
/// reads.
#[derive(Clone, Copy)]
struct Asked<'a> {
    catalog: &'a Catalog,
    request: &'a Request,
    reason: Option<&'a str>,
}

/// The window of the per-minute quotas.
const MINUTE: Duration = Duration::from_secs(60);

pub struct Router {
    catalog: LiveCatalog,
    services: BuiltinServices,
}

impl Router {
    pub fn new(catalog: LiveCatalog, services: BuiltinServices) -> Self {
        Router { catalog, services }
    }

    /// The catalog in force.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load()
    }

    /// What built-ins use: the store, the broker, the schedules, the reloader.
    pub fn services(&self) -> &BuiltinServices {
        &self.services
    }

    /// Answers `request`, and records it in the audit trail: after answering, or, for a
    /// request that makes a job, before the job can run, so its entry comes before the
    /// job's outcome.
    pub async fn handle(&self, request: &Request) -> Answer {
        let catalog = self.catalog.load();
        let mut heard = Heard::default();
        let answer = self.answer(&catalog, request, &mut heard).await;
        if !heard.recorded {
            self.record(&catalog, request, &mut heard, &answer).await;
        }
        answer
    }

    /// Appends the audit entry for `request`, answered (or about to be) with `answer`.
    async fn record(
        &self,
        catalog: &Catalog,
        request: &Request,
        heard: &mut Heard,
        answer: &Answer,
    ) {
        let taken = std::mem::take(heard);
        heard.recorded = true;
        audit_trail::record_request(
            self.services.store.as_ref(),
            catalog.audit_keep,
            request,
            taken,
            answer,
        )
        .await;
    }

    async fn answer(&self, catalog: &Catalog, request: &Request, heard: &mut Heard) -> Answer {
        // First, before any work that grows with the text: a message past the limit is
        // refused unread. Counting stops one past the limit.
        let limit = catalog.max_message_length;
        if request.text.chars().nth(limit).is_some() {
            tracing::info!(
                user = %request.origin.identity(),
                bytes = request.text.len(),
                limit,
                "refused a message past the length limit"
            );
            return Answer::new(
                Outcome::BadArgument,
                reply::message_too_long(request.text.len(), limit),
            );
        }
        let table = &catalog.commands;
        heard.masked = Some(table.catalog.masked(&request.text));
        if let Some(refused) = self.over_rate(catalog, &request.origin).await {
            return refused;
        }
        let (text, reason) = split_reason(table, &request.text);
        let m = match table.catalog.classify(text) {
            Classification::Matched(m) => m,
            Classification::Empty => return Answer::new(Outcome::Nothing, ""),
            c @ Classification::Unknown { .. } => {
                return Answer::new(Outcome::Unknown, reply::unknown_command(&c.to_string()));
            }
            c @ Classification::BadArgument(_) => {
                return Answer::new(Outcome::BadArgument, c.to_string())
            }
        };
        self.act(catalog, request, m, reason, Scope::Whole, heard)
            .await
    }

    /// Runs what `m`, read from `request`, asks for: the access check, then a built-in's
    /// answer or a job submitted.
    async fn act(
        &self,
        catalog: &Catalog,
        request: &Request,
        m: Match,
        reason: Option<&str>,
        scope: Scope,
        heard: &mut Heard,
    ) -> Answer {
        let table = &catalog.commands;
        let Some(action) = table.action(&m.command) else {
            // The table is built from the same declarations as the catalog.
            return Answer::new(Outcome::Failed, reply::nothing_runs(&m.command));
        };
        let identity = request.origin.identity();
        heard.command = Some(m.command.clone());
        heard.rule = Some(catalog.access.rule(action));
        let decided = catalog
            .access
            .check_action(&request.origin, &m.command, action);
        heard.allowed = Some(decided.is_ok());
        if let Err(refusal) = decided {
            tracing::info!(user = %identity, command = %m.command, "refused");
            return Answer::new(Outcome::Refused, refusal.to_string());
        }
        match &action.runs {
            Executor::Builtin(b) => {
                let call = BuiltinCall {
                    catalog,
                    request,
                    args: &m.args,
                };
                builtins::run(*b, &self.services, call).await
            }
            Executor::Native(_) | Executor::Container(_) => {
                let asked = Asked {
                    catalog,
                    request,
                    reason,
                };
                if let Some(fan_out) = &action.fan_out {
                    match scope {
                        Scope::OneHost(id) => {
                            if let Err(refused) = self.still_in_group(id, &m, fan_out).await {
                                return refused;
                            }
                        }
                        Scope::Whole => {
                            if let Some(refused) = missing_reason(action, reason, &m.command) {
                                return refused;
                            }
                            return self.submit_fan_out(asked, &m, action, fan_out, heard).await;
                        }
                    }
                }
                let task = match action.runs.task_checked(&m) {
                    Ok(Some(task)) => task,
                    Ok(None) => unreachable!("native and container actions always make a task"),
                    Err(refused) => return Answer::new(Outcome::BadArgument, refused.to_string()),
                };
                if let Some(refused) = missing_reason(action, reason, &m.command) {
                    return refused;
                }
                self.submit(asked, m, task, action, heard).await
            }
        }
    }

    /// Runs job `record` again, as `origin` asks (the API's re-run): the same command and
    /// arguments, checked and submitted as if `origin` had typed them now, so access,
    /// quotas, approval and the audit trail (as `rerun <id>`) apply. A job with a
    /// `secret` argument cannot be: the store kept the secret masked. A job of a fan-out
    /// runs again on its own host only, if that host is still in the group.
    pub async fn rerun(&self, record: &JobRecord, origin: &Origin, reason: Option<&str>) -> Answer {
        let catalog = self.catalog.load();
        let id = record.job.id;
        let request = Request {
            text: format!("rerun {id}"),
            origin: origin.clone(),
        };
        let mut heard = Heard {
            masked: Some(request.text.clone()),
            command: Some(record.job.command.clone()),
            ..Heard::default()
        };
        let answer = if record.job.has_secrets() {
            Answer::new(Outcome::BadArgument, reply::rerun_has_secret(id))
        } else if let Some(refused) = self.over_rate(&catalog, origin).await {
            refused
        } else {
            let m = Match {
                command: record.job.command.clone(),
                args: record.job.args.clone(),
            };
            match catalog.commands.action(&m.command) {
                Some(action) if matches!(action.runs, Executor::Builtin(_)) => {
                    Answer::new(Outcome::BadArgument, reply::rerun_not_a_job(id))
                }
                _ => {
                    let scope = match record.job.parent {
                        Some(_) => Scope::OneHost(id),
                        None => Scope::Whole,
                    };
                    self.act(&catalog, &request, m, reason, scope, &mut heard)
                        .await
                }
            }
        };
        if !heard.recorded {
            self.record(&catalog, &request, &mut heard, &answer).await;
        }
        answer
    }

    /// Counts the message against its sender's `requests_per_minute`; an answer when
    /// past it. A store that does not answer lets the message through (a job needs the
    /// store anyway, and fails there with the reason).
    async fn over_rate(&self, catalog: &Catalog, origin: &Origin) -> Option<Answer> {
        let identity = origin.identity();
        let limit = catalog.quota.requests_per_minute;
        let key = format!("person:{identity}");
        match self.services.store.count_use(&key, limit, MINUTE).await {
            Ok(None) => None,
            Ok(Some(wait)) => {
                tracing::info!(user = %identity, limit, "refused: past the per-minute limit");
                Some(Answer::new(
                    Outcome::Refused,
                    reply::too_many_messages(limit, wait),
                ))
            }
            Err(e) => {
                tracing::warn!(user = %identity, error = %e, "could not count a message against its sender's quota");
                None
            }
        }
    }

    /// Takes the places job `job` needs: its requester's (`running_per_person`) and its
    /// command's (`max_running`), after counting it against the command's
    /// `max_per_minute`. The keys of the places taken, or the answer that refuses it (with
    /// any place already taken given back).
    async fn take_places(
        &self,
        catalog: &Catalog,
        action: &CommandAction,
        job: &Job,
    ) -> Result<Vec<String>, Answer> {
        let store = self.services.store.as_ref();
        let unavailable = |e: jobs::StoreError| Answer::new(Outcome::Failed, reply::not_queued(&e));
        let command = job.command.as_str();
        if let Some(per_minute) = action.max_per_minute {
            let key = format!("command:{command}");
            if let Some(wait) = store
                .count_use(&key, per_minute, MINUTE)
                .await
                .map_err(unavailable)?
            {
                return Err(Answer::new(
                    Outcome::Refused,
                    reply::command_too_frequent(command, per_minute, wait),
                ));
            }
        }
        // A place is freed when its job's record is final; this is only the latest time,
        // for a job that never gets a result (a retried job runs up to three times).
        let until = Utc::now()
            + chrono::Duration::from_std(job.timeout * 4 + Duration::from_secs(600))
                .unwrap_or(chrono::Duration::MAX);
        let identity = job.origin.identity();
        let mut places = vec![(
            format!("person:{identity}"),
            catalog.quota.running_per_person,
        )];
        if let Some(max) = action.max_running {
            places.push((format!("command:{command}"), max));
        }
        let mut taken = Vec::new();
        for (key, limit) in places {
            let full = match store.take_place(&key, limit, job.id, until).await {
                Ok(full) => full,
                Err(e) => {
                    self.give_back(&taken, job).await;
                    return Err(unavailable(e));
                }
            };
            if let Some(freed_by) = full {
                self.give_back(&taken, job).await;
                tracing::info!(user = %identity, command, key = %key, limit, "refused: every place is held");
                let text = if key.starts_with("person:") {
                    reply::too_many_running(limit, freed_by)
                } else {
                    reply::command_too_busy(command, limit, freed_by)
                };
                return Err(Answer::new(Outcome::Refused, text));
            }
            taken.push(key);
        }
        Ok(taken)
    }

    /// Gives back the places a job took when it will not be queued after all.
    async fn give_back(&self, keys: &[String], job: &Job) {
        for key in keys {
            if let Err(e) = self.services.store.give_back_place(key, job.id).await {
                tracing::warn!(job = %job.id, key = %key, error = %e, "a quota place was not given back; it frees when its deadline passes");
            }
        }
    }

    /// Records the job (so its reply survives a bot restart) and publishes it, both at
    /// once: the job is queued when the broker confirms it. A record that did not land
    /// is written by the job's worker, which has the whole job.
    ///
    /// The request's audit entry is appended first, as queued (or awaiting approval): a
    /// job may end before the broker's confirmation comes back. A job that then fails to
    /// be queued gets an outcome entry saying so.
    async fn submit(
        &self,
        asked: Asked<'_>,
        m: Match,
        task: Task,
        action: &CommandAction,
        heard: &mut Heard,
    ) -> Answer {
        let Asked {
            catalog,
            request,
            reason,
        } = asked;
        let origin = &request.origin;
        let job = Job::new(m.command, m.args, task, origin.clone(), action.timeout);
        let places = match self.take_places(catalog, action, &job).await {
            Ok(places) => places,
            Err(refused) => return refused,
        };
        let store: &dyn Store = self.services.store.as_ref();
        if let Some(approval) = &action.approval {
            let held = approvals::request(approval, reason, job.clone());
            let answer = approvals::awaiting(held.clone());
            self.record(catalog, request, heard, &answer).await;
            let stored = match store.record_job(&job).await {
                Ok(()) => approvals::hold(store, &held).await,
                Err(e) => Err(e),
            };
            return match stored {
                Ok(()) => {
                    octobox_http::metrics().job_submitted(&job.command);
                    answer
                }
                Err(e) => {
                    tracing::error!(job = %job.id, error = %e, "job not held for approval");
                    self.not_queued(catalog, &places, &job, &e).await
                }
            };
        }
        let answer = Answer {
            outcome: Outcome::Queued,
            text: reply::queued(job.id),
            job: Some(job.id),
            awaiting: None,
        };
        self.record(catalog, request, heard, &answer).await;
        let broker: &dyn Broker = self.services.broker.as_ref();
        let (recorded, published) = tokio::join!(store.record_job(&job), broker.publish(&job));
        if let Err(e) = published {
            tracing::error!(job = %job.id, error = %e, "job not published");
            return self.not_queued(catalog, &places, &job, &e).await;
        }
        if let Err(e) = recorded {
            tracing::warn!(job = %job.id, error = %e, "job queued but not recorded; its worker will record it");
        }
        tracing::info!(job = %job.id, command = %job.command, user = %origin.identity(), "job queued");
        octobox_http::metrics().job_submitted(&job.command);
        answer
    }

    /// Whether the host job `id` of a fan-out ran on (its `fan_out.host` argument) is
    /// still in the group it was run over; the answer that refuses a re-run when not.
    async fn still_in_group(
        &self,
        id: jobs::JobId,
        m: &Match,
        fan_out: &config::FanOutConfig,
    ) -> Result<(), Answer> {
        let arg = |name: &str| m.args.get(name).map(|v| v.to_string()).unwrap_or_default();
        let (host, group) = (arg(&fan_out.host), arg(&fan_out.group));
        match self.services.inventory.host(&host).await {
            Ok(Some(h)) if h.groups.contains(&group) => Ok(()),
            Ok(_) => Err(Answer::new(
                Outcome::BadArgument,
                reply::rerun_host_left_group(id, &host, &group),
            )),
            Err(e) => Err(Answer::new(
                Outcome::Failed,
                reply::store_unavailable("read the inventory", &e),
            )),
        }
    }

    /// Queues a fan-out: the parent recorded (and holding the requester's place), then a
    /// job per host of the group, each recorded and published. A child that cannot be
    /// published ends at once as failed, so the fan-out still finishes with a summary. A
    /// command declared with `approval` records them all and holds the parent: the
    /// approver decides for the whole fan-out, and its jobs are published then.
    async fn submit_fan_out(
        &self,
        asked: Asked<'_>,
        m: &Match,
        action: &CommandAction,
        fan_out: &config::FanOutConfig,
        heard: &mut Heard,
    ) -> Answer {
        let Asked {
            catalog,
            request,
            reason,
        } = asked;
        let group = m
            .args
            .get(&fan_out.group)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let hosts = match self.services.inventory.group(&group).await {
            Ok(hosts) => hosts,
            Err(e) => {
                return Answer::new(
                    Outcome::Failed,
                    reply::store_unavailable("read the inventory", &e),
                )
            }
        };
        let plan = match fan_out::plan(m, action, fan_out, &group, hosts, &request.origin) {
            Ok(plan) => plan,
            Err(refused) => return refused,
        };
        let parent = &plan.parent;
        let places = match self.take_places(catalog, action, parent).await {
            Ok(places) => places,
            Err(refused) => return refused,
        };
        let store: &dyn Store = self.services.store.as_ref();
        if let Some(approval) = &action.approval {
            let held = approvals::request(approval, reason, parent.clone());
            let answer = approvals::awaiting(held.clone());
            self.record(catalog, request, heard, &answer).await;
            // The jobs first, the hold last: an approver can only see a fan-out whose
            // jobs are all recorded, ready to be published.
            let mut stored = store.record_job(parent).await;
            for child in &plan.children {
                if stored.is_ok() {
                    stored = store.record_job(child).await;
                }
            }
            if stored.is_ok() {
                stored = approvals::hold(store, &held).await;
            }
            if let Err(e) = stored {
                tracing::error!(job = %parent.id, error = %e, "fan-out not held for approval");
                for child in &plan.children {
                    fan_out::end_unqueued(store, child.id, &reply::not_queued(&e)).await;
                }
                return self.not_queued(catalog, &places, parent, &e).await;
            }
            return answer;
        }
        let answer = Answer {
            outcome: Outcome::Queued,
            text: reply::fan_out_queued(parent.id, &plan.group, plan.children.len()),
            job: Some(parent.id),
            awaiting: None,
        };
        self.record(catalog, request, heard, &answer).await;
        // The parent's record comes first: a child may end before the next line runs,
        // and its end is counted against the parent's list of children.
        let recorded = match store.record_job(parent).await {
            Ok(()) => store.mark_started(parent.id, "fan-out", Utc::now()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            tracing::error!(job = %parent.id, error = %e, "fan-out not recorded");
            return self.not_queued(catalog, &places, parent, &e).await;
        }
        let broker: &dyn Broker = self.services.broker.as_ref();
        for child in &plan.children {
            let (recorded, ()) = tokio::join!(
                store.record_job(child),
                fan_out::publish(store, broker, child)
            );
            if let Err(e) = recorded {
                tracing::warn!(job = %child.id, error = %e, "job queued but not recorded; its worker will record it");
            }
        }
        tracing::info!(job = %parent.id, command = %parent.command, group = %plan.group, hosts = plan.children.len(), user = %request.origin.identity(), "fan-out queued");
        answer
    }

    /// The answer for a job that was not queued after all (its request already recorded
    /// as queued): its places are given back and the trail says it failed.
    async fn not_queued(
        &self,
        catalog: &Catalog,
        places: &[String],
        job: &Job,
        error: &(dyn std::fmt::Display + Sync),
    ) -> Answer {
        self.give_back(places, job).await;
        let text = reply::not_queued(error);
        audit_trail::record_not_queued(
            self.services.store.as_ref(),
            catalog.audit_keep,
            job,
            &text,
        )
        .await;
        Answer::new(Outcome::Failed, text)
    }
}

/// The requester's reason for an approval: `<command> because <reason>`. The reason is
/// split off only when what comes before it is a command declared with `approval`, so a
/// text argument may still say "because".
fn split_reason<'a>(table: &commands::CommandTable, text: &'a str) -> (&'a str, Option<&'a str>) {
    const WORD: &str = " because ";
    let Some(at) = text.to_ascii_lowercase().rfind(WORD) else {
        return (text, None);
    };
    let (head, reason) = (&text[..at], text[at + WORD.len()..].trim());
    let held = match table.catalog.classify(head) {
        Classification::Matched(m) => table
            .action(&m.command)
            .is_some_and(|a| a.approval.is_some()),
        _ => false,
    };
    if held && !reason.is_empty() {
        (head, Some(reason))
    } else {
        (text, None)
    }
}
