//! Approvals: a job held until someone of the approving group says yes.
//!
//! The router hands a command declared with `approval` to [`hold`]: its job is recorded
//! and kept pending in the store, not published. `approve <id>` and `deny <id> [reason]`
//! ([`decide`]) come through the router like any command, whichever adapter they were
//! typed or clicked in, so they follow the same access checks and land in the audit
//! trail. The requester can never decide their own request, and only the identities the
//! command's `approval.by` names can decide at all. The first decision the store keeps is
//! the decision (`Store::decide_approval`), so with several bots one click counts once;
//! whoever made it publishes the job, or gives it its final result (denied, expired), and
//! the requester hears of it where they asked, as of any job. [`ApprovalSweeper`] expires
//! what nobody decided in time, and `cancel` of a request still waiting [`withdraw`]s it.
//! A fan-out waits as one request: its jobs end with it, or are released when approved.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use config::{AllowEntry, ApprovalConfig};
use jobs::{
    Approval, AuditEntry, AuditKind, Decided, Decision, Job, JobFailure, JobId, JobResult, Output,
    Store,
};
use tokio_util::sync::CancellationToken;

use crate::builtin_call::{BuiltinCall, BuiltinServices};
use crate::fan_out;
use crate::reply;
use crate::request::{Answer, Outcome};

/// The identity the bot writes results under when it ends a job itself.
const DECIDED_BY_BOT: &str = "octobox-bot";

/// How many pending approvals `pending` lists and the sweeper looks at, at most.
const PENDING_MAX: usize = 200;

/// The approval `job` waits for, as its command's `approval` declares, asked `reason`.
pub fn request(declared: &ApprovalConfig, reason: Option<&str>, job: Job) -> Approval {
    Approval {
        expires_at: Utc::now()
            + chrono::Duration::from_std(declared.ttl).unwrap_or(chrono::Duration::MAX),
        by: declared.by.to_string(),
        reason: reason.map(str::to_string),
        job,
    }
}

/// Keeps `approval` pending in the store: its job is already recorded.
pub async fn hold(store: &dyn Store, approval: &Approval) -> Result<(), jobs::StoreError> {
    store.hold_for_approval(approval).await?;
    tracing::info!(
        job = %approval.id(),
        command = %approval.job.command,
        user = %approval.requester(),
        by = %approval.by,
        "job waits for approval"
    );
    Ok(())
}

/// The answer to a request whose job is held for `approval`: it says who may decide, and
/// carries the approval for adapters that show a prompt.
pub fn awaiting(approval: Approval) -> Answer {
    Answer {
        outcome: Outcome::Queued,
        text: reply::awaiting_approval(&approval),
        job: Some(approval.id()),
        awaiting: Some(Box::new(approval)),
    }
}

/// `pending`: the jobs waiting for a decision.
pub async fn pending(services: &BuiltinServices) -> Answer {
    match services.store.pending_approvals(PENDING_MAX).await {
        Ok(pending) => Answer::done(reply::pending_table(&pending)),
        Err(e) => Answer::new(
            Outcome::Failed,
            reply::store_unavailable("list pending approvals", &e),
        ),
    }
}

/// `approve <id>` (`approve` true) or `deny <id> [reason]`.
pub async fn decide(
    services: &BuiltinServices,
    call: &BuiltinCall<'_>,
    id: JobId,
    approve: bool,
) -> Answer {
    let store = services.store.as_ref();
    let who = call.request.origin.identity();
    let (approval, decided) = match store.approval(id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Answer::new(Outcome::Unknown, reply::no_such_approval(id)),
        Err(e) => {
            return Answer::new(
                Outcome::Failed,
                reply::store_unavailable(&format!("read the approval of job {id}"), &e),
            )
        }
    };
    if approval.requester() == who {
        tracing::info!(job = %id, user = %who, "refused: deciding one's own request");
        return Answer::new(Outcome::Refused, reply::own_request(id));
    }
    let admitted =
        approvers(&approval.by).is_some_and(|entry| call.catalog.access.admits(&who, &entry));
    if !admitted {
        tracing::info!(job = %id, user = %who, by = %approval.by, "refused: not an approver");
        return Answer::new(Outcome::Refused, reply::not_an_approver(&who, &approval));
    }
    if let Some(first) = decided {
        return Answer::new(Outcome::Refused, reply::already_decided(id, &first));
    }
    let decision = if approve {
        Decision::Approved {
            by: who.clone(),
            at: Utc::now(),
        }
    } else {
        Decision::Denied {
            by: who.clone(),
            at: Utc::now(),
            reason: call
                .args
                .get("reason")
                .and_then(lexicon::Value::as_str)
                .map(str::to_string),
        }
    };
    let approval = match store.decide_approval(id, &decision).await {
        Ok(Decided::Now(approval)) => approval,
        Ok(Decided::Already(first)) => {
            return Answer::new(Outcome::Refused, reply::already_decided(id, &first))
        }
        Ok(Decided::Unknown) => return Answer::new(Outcome::Unknown, reply::no_such_approval(id)),
        Err(e) => {
            return Answer::new(
                Outcome::Failed,
                reply::store_unavailable(&format!("store the decision on job {id}"), &e),
            )
        }
    };
    tracing::info!(job = %id, by = %who, decision = %decision.describe(), "approval decided");
    match decision {
        Decision::Approved { .. } if !approval.job.children.is_empty() => {
            let broker = services.broker.as_ref();
            match fan_out::release(store, broker, &approval.job).await {
                Ok(()) => Answer::done(reply::approved(&approval)),
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "approved fan-out not started");
                    let failure = JobFailure::ApprovedNotQueued {
                        by: who,
                        reason: e.to_string(),
                    };
                    conclude(store, &approval.job, failure).await;
                    Answer::new(Outcome::Failed, reply::approved_not_queued(id, &e))
                }
            }
        }
        Decision::Approved { .. } => match services.broker.publish(&approval.job).await {
            Ok(()) => Answer::done(reply::approved(&approval)),
            Err(e) => {
                tracing::error!(job = %id, error = %e, "approved job not published");
                let failure = JobFailure::ApprovedNotQueued {
                    by: who,
                    reason: e.to_string(),
                };
                conclude(store, &approval.job, failure).await;
                Answer::new(Outcome::Failed, reply::approved_not_queued(id, &e))
            }
        },
        Decision::Denied { reason, .. } => {
            conclude(store, &approval.job, JobFailure::Denied { by: who, reason }).await;
            Answer::done(reply::denied(&approval))
        }
        Decision::Expired { .. } => unreachable!("people approve or deny; the sweeper expires"),
    }
}

/// Ends job `job` if it is still waiting for approval, as `cancel` by `who` asks: the
/// request is withdrawn (a denial by `who`), and the job — with a fan-out's jobs — ends
/// cancelled, unrun. `false` when it was not waiting; the first decision wins, so an
/// approval made at the same moment either runs it or this ends it.
pub async fn withdraw(store: &dyn Store, job: &Job, who: &str) -> Result<bool, jobs::StoreError> {
    if !matches!(store.approval(job.id).await?, Some((_, None))) {
        return Ok(false);
    }
    let decision = Decision::Denied {
        by: who.to_string(),
        at: Utc::now(),
        reason: Some("cancelled".to_string()),
    };
    match store.decide_approval(job.id, &decision).await? {
        Decided::Now(approval) => {
            tracing::info!(job = %job.id, by = %who, "a request waiting for approval was cancelled");
            let failure = JobFailure::Cancelled {
                by: who.to_string(),
            };
            conclude(store, &approval.job, failure).await;
            Ok(true)
        }
        Decided::Already(_) | Decided::Unknown => Ok(false),
    }
}

/// `group:leads` or `user:slack:U1`, as the approval keeps it, back to an allow entry.
fn approvers(by: &str) -> Option<AllowEntry> {
    match by.split_once(':') {
        Some(("group", g)) => Some(AllowEntry::Group(g.to_string())),
        Some(("user", u)) => Some(AllowEntry::User(u.to_string())),
        _ => None,
    }
}

/// Gives a job that will not run its final result, which its requester is sent like any;
/// a fan-out's jobs (recorded, never published) end with it, after it, so none is
/// counted into it.
async fn conclude(store: &dyn Store, job: &Job, failure: JobFailure) {
    conclude_one(store, job.id, &failure).await;
    for child in &job.children {
        conclude_one(store, *child, &failure).await;
    }
}

async fn conclude_one(store: &dyn Store, id: JobId, failure: &JobFailure) {
    let now = Utc::now();
    let result = JobResult {
        id,
        status: failure.status(),
        output: Output::Empty,
        worker: DECIDED_BY_BOT.to_string(),
        started_at: now,
        finished_at: now,
        error: Some(failure.to_string()),
    };
    if let Err(e) = store.finish_job(&result).await {
        tracing::error!(job = %id, error = %e, "a decided job's result was not stored; its requester is not told");
    }
}

/// Expires approvals nobody decided in time: each bot runs one, and the store's
/// first-decision-wins makes each expiry happen once.
pub struct ApprovalSweeper {
    store: Arc<dyn Store>,
    audit_keep: Duration,
}

impl ApprovalSweeper {
    /// How often pending approvals are looked at.
    const EVERY: Duration = Duration::from_secs(1);

    pub fn new(store: Arc<dyn Store>, audit_keep: Duration) -> Self {
        ApprovalSweeper { store, audit_keep }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Self::EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "could not look for expired approvals; trying again");
            }
        }
    }

    async fn sweep(&self) -> Result<(), jobs::StoreError> {
        let now = Utc::now();
        let pending = self.store.pending_approvals(PENDING_MAX).await?;
        for approval in pending.into_iter().take_while(|a| a.expires_at <= now) {
            let decision = Decision::Expired { at: now };
            let Decided::Now(approval) =
                self.store.decide_approval(approval.id(), &decision).await?
            else {
                continue;
            };
            let ttl = (approval.expires_at - approval.job.created_at)
                .to_std()
                .unwrap_or_default();
            tracing::info!(job = %approval.id(), user = %approval.requester(), "approval expired");
            conclude(
                self.store.as_ref(),
                &approval.job,
                JobFailure::ApprovalExpired {
                    after: Duration::from_secs(ttl.as_secs()),
                },
            )
            .await;
            let mut entry = AuditEntry::new(
                AuditKind::Expiry,
                &approval.job.origin,
                &approval.job.command,
                "expired",
            )
            .with_detail(&format!("nobody of {} decided in time", approval.by));
            entry.command = Some(approval.job.command.clone());
            entry.job = Some(approval.id());
            if let Err(e) = self.store.append_audit(&entry, self.audit_keep).await {
                tracing::warn!(job = %approval.id(), error = %e, "an expiry was not written to the audit trail");
            }
        }
        Ok(())
    }
}
