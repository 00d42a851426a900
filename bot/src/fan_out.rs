//! Fan-out: a command declared with `fan_out` names an inventory group and runs as one
//! job per host of it, answered with one summary.
//!
//! The router [`plan`]s the jobs: a *parent* job, recorded but never queued, which is
//! what the requester is told about and what `cancel` stops; and a child job per host,
//! queued as any job (its host in the argument `fan_out.host`). A child's result is not
//! a reply of its own: the async manager hands it to [`child_ended`], which counts it
//! in the store (each child once, whichever bot reads its event), tells the requester
//! how far the fan-out has got as the parent's progress (`3/10 done: 2 succeeded, 1
//! failed`), and when the last child ends finishes the parent with the table of hosts
//! (a text file when it is longer than a chat message). That result is then replied
//! like any other. A fan-out declared with `approval` is held as one request: its jobs
//! are recorded with it and [`release`]d (published) once it is approved.

use std::time::Duration;

use chrono::Utc;
use commands::CommandAction;
use config::FanOutConfig;
use jobs::{
    Broker, ChildCounts, Event, EventKind, Job, JobId, JobRecord, JobResult, JobStatus, Origin,
    Output, Store, StoreError, Task,
};
use lexicon::{Match, Value};

use crate::reply;
use crate::request::{Answer, Outcome};

/// Hosts one fan-out runs on at most.
pub const MAX_HOSTS: usize = 500;
/// The longest a fan-out's parent may wait for its children.
const MAX_PARENT_TIMEOUT: Duration = Duration::from_secs(86_400);
/// The worker name a fan-out's result carries.
const FAN_OUT: &str = "fan-out";

/// A fan-out ready to be queued.
pub struct Plan {
    pub parent: Job,
    pub children: Vec<Job>,
    pub group: String,
}

/// The jobs `m` asks for, one per host of `hosts` (group `group`'s), or the answer that
/// refuses them.
pub fn plan(
    m: &Match,
    action: &CommandAction,
    fan_out: &FanOutConfig,
    group: &str,
    hosts: Vec<String>,
    origin: &Origin,
) -> Result<Plan, Answer> {
    if hosts.is_empty() {
        return Err(Answer::new(
            Outcome::BadArgument,
            reply::group_members(group, &[]),
        ));
    }
    if hosts.len() > MAX_HOSTS {
        return Err(Answer::new(
            Outcome::Refused,
            reply::fan_out_too_wide(group, hosts.len(), MAX_HOSTS),
        ));
    }
    let mut children = Vec::with_capacity(hosts.len());
    for host in hosts {
        let mut args = m.args.clone();
        args.insert(fan_out.host.clone(), Value::Word(host));
        let child = Match {
            command: m.command.clone(),
            args,
        };
        let task = match action.runs.task_checked(&child) {
            Ok(Some(task)) => task,
            Ok(None) => unreachable!("a fan-out runs a native or container task"),
            Err(refused) => return Err(Answer::new(Outcome::BadArgument, refused.to_string())),
        };
        children.push(Job::new(
            child.command,
            child.args,
            task,
            origin.clone(),
            action.timeout,
        ));
    }
    let waits = action
        .timeout
        .saturating_mul(u32::try_from(children.len()).unwrap_or(u32::MAX))
        .min(MAX_PARENT_TIMEOUT);
    let mut parent = Job::new(
        m.command.clone(),
        m.args.clone(),
        Task::native(FAN_OUT),
        origin.clone(),
        waits,
    );
    parent.children = children.iter().map(|c| c.id).collect();
    for child in &mut children {
        child.parent = Some(parent.id);
    }
    Ok(Plan {
        parent,
        children,
        group: group.to_string(),
    })
}

/// Counts `child`'s end into its fan-out; finishes the fan-out after its last child. An
/// error leaves the child's event pending, to be counted when it is read again.
pub async fn child_ended(store: &dyn Store, child: &JobRecord) -> Result<(), StoreError> {
    let Some(parent_id) = child.job.parent else {
        return Ok(());
    };
    let Some(parent) = store.job(parent_id).await? else {
        tracing::warn!(job = %child.job.id, parent = %parent_id, "a fan-out's job ended after its fan-out's record expired");
        return Ok(());
    };
    // Only the jobs the fan-out made count: a job that names a parent is not one of its
    // children for saying so (it may have been put on the queue by someone else).
    if !parent.job.children.contains(&child.job.id) {
        tracing::warn!(job = %child.job.id, parent = %parent_id, "a job names a fan-out that did not make it; not counted");
        return Ok(());
    }
    if parent.status.is_final() {
        return Ok(());
    }
    let counts = store
        .note_child_ended(parent_id, child.job.id, child.status)
        .await?;
    let total = parent.job.children.len();
    let line = reply::fan_out_progress(&counts, total);
    if let Err(e) = store
        .append_event(&Event::now(parent_id, EventKind::Progress { line }))
        .await
    {
        tracing::debug!(job = %parent_id, error = %e, "a fan-out's progress was not stored");
    }
    if counts.ended() >= total {
        finish(store, &parent).await?;
    }
    Ok(())
}

/// Finishes fan-out `parent` with the table of its hosts as they are now (a child not
/// ended counts as not succeeded).
pub async fn finish(store: &dyn Store, parent: &JobRecord) -> Result<(), StoreError> {
    let mut rows = Vec::with_capacity(parent.job.children.len());
    let mut counts = ChildCounts::default();
    for id in &parent.job.children {
        let child = store.job(*id).await?;
        if let Some(ended) = child.as_ref().filter(|c| c.status.is_final()) {
            *counts
                .by_status
                .entry(ended.status.as_str().to_string())
                .or_default() += 1;
        }
        rows.push(child);
    }
    let counts = &counts;
    let table = reply::fan_out_table(parent, &rows);
    let total = parent.job.children.len();
    let all_good = counts.succeeded() == total;
    let output = worker::tasks::fit_chat(table, &format!("fan-out-{}.txt", parent.job.id));
    let result = JobResult {
        id: parent.job.id,
        status: match all_good {
            true => JobStatus::Succeeded,
            false => JobStatus::Failed,
        },
        output,
        worker: FAN_OUT.to_string(),
        started_at: parent.job.created_at,
        finished_at: Utc::now(),
        error: (!all_good).then(|| reply::fan_out_progress(counts, total)),
    };
    tracing::info!(job = %parent.job.id, hosts = total, succeeded = counts.succeeded(), "fan-out finished");
    store.finish_job(&result).await
}

/// The jobs `cancel <id>` stops: a fan-out's children that have not ended, or the job
/// itself.
pub async fn cancel_targets(store: &dyn Store, record: &JobRecord) -> Vec<JobId> {
    if record.job.children.is_empty() {
        return vec![record.job.id];
    }
    let mut running = Vec::new();
    for id in &record.job.children {
        match store.job(*id).await {
            Ok(Some(child)) if child.status.is_final() => {}
            _ => running.push(*id),
        }
    }
    running
}

/// Publishes one of a fan-out's jobs; one the broker would not take ends at once, failed,
/// so its fan-out still finishes.
pub async fn publish(store: &dyn Store, broker: &dyn Broker, child: &Job) {
    match broker.publish(child).await {
        Ok(()) => octobox_http::metrics().job_submitted(&child.command),
        Err(e) => {
            tracing::error!(job = %child.id, error = %e, "a fan-out's job was not published");
            end_unqueued(store, child.id, &reply::not_queued(&e)).await;
        }
    }
}

/// Runs an approved fan-out: the parent started, then each of its jobs (recorded when it
/// was held) published. A job whose record is gone cannot be: it ends failed.
pub async fn release(
    store: &dyn Store,
    broker: &dyn Broker,
    parent: &Job,
) -> Result<(), StoreError> {
    store.mark_started(parent.id, FAN_OUT, Utc::now()).await?;
    for id in &parent.children {
        let why = match store.job(*id).await {
            Ok(Some(child)) => {
                publish(store, broker, &child.job).await;
                continue;
            }
            Ok(None) => "its record was lost before it was approved".to_string(),
            Err(e) => format!("the store did not give it back to be queued ({e})"),
        };
        tracing::error!(job = %id, parent = %parent.id, reason = %why, "an approved fan-out's job was not queued; it ends failed");
        end_unqueued(store, *id, &why).await;
    }
    Ok(())
}

/// Ends job `child` of a fan-out, which was not queued, failed for `why`.
pub async fn end_unqueued(store: &dyn Store, child: JobId, why: &str) {
    if let Err(e) = store.finish_job(&not_queued(child, why)).await {
        tracing::error!(job = %child, error = %e, "a fan-out's unqueued job could not be marked failed; cancelling the fan-out ends it");
    }
}

/// A child that could not be queued ends at once, failed, so its fan-out still finishes.
fn not_queued(child: JobId, why: &str) -> JobResult {
    JobResult {
        id: child,
        status: JobStatus::Failed,
        output: Output::Empty,
        worker: FAN_OUT.to_string(),
        started_at: Utc::now(),
        finished_at: Utc::now(),
        error: Some(why.to_string()),
    }
}
