//! The built-in commands the bot answers itself, at once.
//!
//! Their patterns, help and examples are declared in `commands`' `builtins.toml`; this
//! module says what each does. A built-in gets the few services it uses
//! ([`BuiltinServices`]) and the one call it answers ([`BuiltinCall`]), never the
//! router. Who may run each is `AccessPolicy::check_action`'s decision, made before
//! any of them runs (the admin ones need the `admins` group whatever pattern the
//! configuration declares them under); `cancel` and `job` also look at whose job it is.

use commands::{Builtin, ADMIN_GROUP};
use jobs::Control;
use lexicon::Value;

use crate::approvals;
use crate::audit_trail;
pub use crate::builtin_call::{BuiltinCall, BuiltinServices};
use crate::fan_out;
use crate::inventory_builtins;
use crate::reply;
use crate::request::{Answer, Outcome};
use crate::schedule_builtins;

pub async fn run(builtin: Builtin, services: &BuiltinServices, call: BuiltinCall<'_>) -> Answer {
    let table = &call.catalog.commands;
    match builtin {
        Builtin::Help => match call.text("topic") {
            None => Answer::done(table.catalog.help_overview()),
            Some(topic) => match table.catalog.help_for(topic) {
                Some(text) => Answer::done(text),
                None => Answer::new(Outcome::Unknown, reply::no_help_topic(topic)),
            },
        },
        Builtin::Explain => Answer::done(table.catalog.explain(call.text("message").unwrap_or(""))),
        Builtin::Version => Answer::done(reply::version()),
        Builtin::Ping => Answer::done(reply::pong()),
        Builtin::Whoami => {
            let identity = call.identity();
            Answer::done(reply::whoami(
                &identity,
                &call.catalog.access.groups_of(&identity),
            ))
        }
        Builtin::Jobs => {
            let count = call.args.get("count").and_then(Value::as_int).unwrap_or(20);
            let count = usize::try_from(count).unwrap_or(20);
            match services.store.recent_jobs(count).await {
                Ok(records) => Answer::done(reply::job_table(&records)),
                Err(e) => Answer::new(Outcome::Failed, reply::store_unavailable("list jobs", &e)),
            }
        }
        Builtin::Job => {
            let Some(id) = call.job_id() else {
                return Answer::new(Outcome::BadArgument, reply::not_a_job_id());
            };
            match services.store.job(id).await {
                Ok(Some(record)) => {
                    let who = call.identity();
                    let whole =
                        record.job.origin.identity() == who || call.catalog.access.is_auditor(&who);
                    let mut text = reply::job_details(&record, whole);
                    // A job that needed a yes says whose, and what became of it.
                    if let Ok(Some((approval, decision))) = services.store.approval(id).await {
                        text = format!(
                            "{text}\n{}",
                            reply::approval_line(&approval, decision.as_ref())
                        );
                    }
                    Answer::done(text)
                }
                Ok(None) => Answer::new(Outcome::Unknown, reply::no_such_job(id)),
                Err(e) => Answer::new(
                    Outcome::Failed,
                    reply::store_unavailable(&format!("read job {id}"), &e),
                ),
            }
        }
        Builtin::Workers => match services.store.workers().await {
            Ok(workers) => Answer::done(reply::worker_table(&workers)),
            Err(e) => Answer::new(
                Outcome::Failed,
                reply::store_unavailable("list workers", &e),
            ),
        },
        Builtin::Schedules
        | Builtin::PauseSchedule
        | Builtin::ResumeSchedule
        | Builtin::RunSchedule => {
            schedule_builtins::run(
                builtin,
                &call.catalog.schedules,
                services.schedules.as_ref(),
                services.store.as_ref(),
                call.text("name").unwrap_or_default(),
                &call.identity(),
            )
            .await
        }
        Builtin::Cancel => cancel(services, &call).await,
        Builtin::Audit => audit_trail::audit(services, &call).await,
        Builtin::Pending => approvals::pending(services).await,
        Builtin::Approve | Builtin::Deny => match call.job_id() {
            Some(id) => approvals::decide(services, &call, id, builtin == Builtin::Approve).await,
            None => Answer::new(Outcome::BadArgument, reply::not_a_job_id()),
        },
        Builtin::ServersInGroup
        | Builtin::Inventory
        | Builtin::InventoryShow
        | Builtin::InventoryAdd
        | Builtin::InventoryRemove => {
            inventory_builtins::run(
                builtin,
                services.inventory.as_ref(),
                call.text("host"),
                call.text("group"),
                &call.identity(),
            )
            .await
        }
        Builtin::Reload => match services.reloader.reload() {
            Ok(reloaded) => Answer::done(reply::reloaded(&reloaded)),
            Err(e) => Answer::new(Outcome::Failed, reply::reload_failed(&e)),
        },
    }
}

/// `cancel <id>`: the job's requester, or an admin, stops it wherever it runs.
async fn cancel(services: &BuiltinServices, call: &BuiltinCall<'_>) -> Answer {
    let Some(id) = call.job_id() else {
        return Answer::new(Outcome::BadArgument, reply::not_a_job_id());
    };
    let record = match services.store.job(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return Answer::new(Outcome::Unknown, reply::no_such_job(id)),
        Err(e) => {
            return Answer::new(
                Outcome::Failed,
                reply::store_unavailable(&format!("read job {id}"), &e),
            )
        }
    };
    if record.status.is_final() {
        return Answer::done(reply::cancel_too_late(&record));
    }
    let who = call.identity();
    let owner = record.job.origin.identity();
    if who != owner && !call.catalog.access.is_admin(&who) {
        return Answer::new(
            Outcome::Refused,
            reply::cancel_refused(id, &owner, ADMIN_GROUP),
        );
    }
    // A request still waiting for approval is withdrawn: nothing of it is running, and
    // nothing must run once someone approves it later.
    match approvals::withdraw(services.store.as_ref(), &record.job, &who).await {
        Ok(true) => return Answer::done(reply::cancel_withdrawn(id)),
        Ok(false) => {}
        Err(e) => return Answer::new(Outcome::Failed, reply::cancel_not_sent(id, &e)),
    }
    let targets = fan_out::cancel_targets(services.store.as_ref(), &record).await;
    if targets.is_empty() {
        // A fan-out whose jobs have all ended but which was not finished (its last
        // job's end was lost): finished now, with its table.
        return match fan_out::finish(services.store.as_ref(), &record).await {
            Ok(()) => Answer::done(reply::cancel_sent(id)),
            Err(e) => Answer::new(Outcome::Failed, reply::cancel_not_sent(id, &e)),
        };
    }
    for job in targets {
        let control = Control::Cancel {
            job,
            by: who.clone(),
        };
        if let Err(e) = services.broker.broadcast(&control).await {
            return Answer::new(Outcome::Failed, reply::cancel_not_sent(id, &e));
        }
        tracing::info!(%job, by = %who, "cancel sent");
    }
    Answer::done(reply::cancel_sent(id))
}
