//! The schedule built-ins: `schedules`, `pause schedule <name>`, `resume schedule
//! <name>`, `run schedule <name> now`, over the schedules of the catalog in force. The
//! last three are for the group `admins` (`Builtin::required_group`, checked before they
//! run whatever their declaration says); the wording is `reply`'s.

use chrono::Utc;
use commands::{Builtin, ScheduleTable};
use jobs::{ScheduleStore, Store};

use crate::reply::{self, ScheduleLine};
use crate::request::{Answer, Outcome};

/// Runs schedule built-in `builtin` for `who`; `name` is the schedule it names, if any.
pub(crate) async fn run(
    builtin: Builtin,
    table: &ScheduleTable,
    schedules: &dyn ScheduleStore,
    jobs: &dyn Store,
    name: &str,
    who: &str,
) -> Answer {
    let done = |text: String| Answer::new(Outcome::Done, text);
    let failed =
        |e: &dyn std::fmt::Display| Answer::new(Outcome::Failed, reply::schedules_unavailable(e));
    if table.is_empty() {
        return done(reply::no_schedules());
    }
    if builtin == Builtin::Schedules {
        return match list(table, schedules, jobs).await {
            Ok(lines) => done(reply::schedule_table(&lines)),
            Err(e) => failed(&e),
        };
    }
    let Some(schedule) = table.get(name) else {
        let known: Vec<&str> = table.schedules().iter().map(|s| s.name.as_str()).collect();
        return Answer::new(Outcome::Unknown, reply::unknown_schedule(name, &known));
    };
    let store = schedules;
    let answer = match builtin {
        Builtin::PauseSchedule => store
            .set_paused(name, true)
            .await
            .map(|changed| reply::schedule_paused(name, changed)),
        Builtin::ResumeSchedule => store
            .set_paused(name, false)
            .await
            .map(|changed| reply::schedule_resumed(name, changed, schedule.next_after(Utc::now()))),
        _ => store
            .request_run(name)
            .await
            .map(|()| reply::schedule_run_requested(name, &schedule.delivers_to())),
    };
    match answer {
        Ok(text) => {
            tracing::info!(user = %who, schedule = name, %builtin, "schedule changed");
            done(text)
        }
        Err(e) => failed(&e),
    }
}

pub(crate) async fn list(
    table: &ScheduleTable,
    schedules: &dyn ScheduleStore,
    jobs: &dyn Store,
) -> Result<Vec<ScheduleLine>, jobs::StoreError> {
    let paused = schedules.paused().await?;
    let now = Utc::now();
    let mut lines = Vec::new();
    for s in table.schedules() {
        let last = match schedules.fires(&s.name, 1).await?.into_iter().next() {
            None => None,
            Some(fire) => {
                let status = jobs.job(fire.job).await?.map(|r| r.status);
                Some((fire.job, status))
            }
        };
        lines.push(ScheduleLine {
            name: s.name.clone(),
            when: format!("{} ({})", s.cron_text, s.time_zone),
            runs: s.describe_run(),
            delivers_to: s.delivers_to(),
            next: s.next_after(now),
            paused: paused.contains(&s.name),
            last,
        });
    }
    Ok(lines)
}
