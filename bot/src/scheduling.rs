//! The bot's side of the scheduler: the command catalog as the scheduler's
//! [`CommandJobs`], the [`ScheduleDesk`] the schedule built-ins work on, and
//! [`scheduler_for`], which assembles a `Scheduler` from a configuration for both the
//! bot's embedded mode and the `octobox-scheduler` binary.

use std::sync::Arc;
use std::time::Duration;

use config::{Config, ConfigErrors};
use jobs::{Broker, Job, Origin, ScheduleStore, Store};
use lexicon::Classification;
use scheduler::{CommandJobs, ScheduleTable, Scheduler, SchedulerServices};

use crate::commands::CommandTable;

/// Turns a schedule's `run` text into a job exactly as the router would for a person.
pub struct CatalogJobs(pub Arc<CommandTable>);

impl CommandJobs for CatalogJobs {
    fn job_for(&self, text: &str, origin: Origin) -> Result<Job, String> {
        let m = match self.0.catalog.classify(text) {
            Classification::Matched(m) => m,
            Classification::Empty => return Err("is empty".to_string()),
            other => return Err(format!("\"{text}\": {other}")),
        };
        let Some(action) = self.0.action(&m.command) else {
            return Err(format!("\"{}\" has nothing to run it", m.command));
        };
        match action.runs.task_for(&m) {
            Some(task) => Ok(Job::new(m.command, m.args, task, origin, action.timeout)),
            None => Err(format!(
                "\"{}\" is answered by the bot at once, not run as a job: schedule a command \
                 that runs a task",
                m.command
            )),
        }
    }
}

/// What the schedule built-ins (`schedules`, `pause schedule`, ...) work on.
#[derive(Clone)]
pub struct ScheduleDesk {
    pub table: Arc<ScheduleTable>,
    pub store: Arc<dyn ScheduleStore>,
}

/// Compiles the configuration's schedules against the command table: what
/// `--check-config` and every role that fires or lists schedules runs.
pub fn schedule_table(
    config: &Config,
    commands: &CommandTable,
) -> Result<ScheduleTable, ConfigErrors> {
    let jobs = CatalogJobs(Arc::new(commands.clone()));
    ScheduleTable::build(config, &jobs)
}

/// A scheduler named `holder` for `config`, firing into `broker` and `store`.
pub fn scheduler_for(
    holder: String,
    config: &Config,
    commands: Arc<CommandTable>,
    table: Arc<ScheduleTable>,
    broker: Arc<dyn Broker>,
    store: Arc<dyn Store>,
    schedules: Arc<dyn ScheduleStore>,
) -> Scheduler {
    let services = SchedulerServices {
        commands: Arc::new(CatalogJobs(commands)),
        broker,
        store,
        schedules,
    };
    Scheduler::new(
        holder,
        table,
        services,
        config.scheduler.lease,
        config.jobs.timeout.max(Duration::from_secs(1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs::Task;
    use worker::TaskRegistry;

    fn check(schedules: &str) -> Result<ScheduleTable, String> {
        let config =
            Config::parse("octobox.toml", schedules, |_| None).map_err(|e| e.to_string())?;
        let table = CommandTable::build(&config, Some(&TaskRegistry::standard())).unwrap();
        schedule_table(&config, &table).map_err(|e| e.to_string())
    }

    #[test]
    fn a_schedule_runs_only_commands_that_queue_jobs() {
        let ok = check("[[schedule]]\nname = \"n\"\ncron = \"0 2 * * *\"\nrun = \"sleep 5s\"\n")
            .unwrap();
        let job = CatalogJobs(Arc::new(
            CommandTable::build(&Config::default(), None).unwrap(),
        ))
        .job_for("sleep 5s", Origin::new("scheduler", "n"))
        .unwrap();
        assert_eq!(job.task, Task::native("sleep"));
        assert_eq!(ok.schedules()[0].describe_run(), "sleep 5s");

        let e = check("\n[[schedule]]\nname = \"n\"\ncron = \"0 2 * * *\"\nrun = \"jobs\"\n")
            .unwrap_err();
        assert!(
            e.contains("octobox.toml:2: schedule[1].run: \"jobs\" is answered by the bot"),
            "{e}"
        );
        let e = check("[[schedule]]\nname = \"n\"\ncron = \"0 2 * * *\"\nrun = \"deploy all\"\n")
            .unwrap_err();
        assert!(
            e.contains("octobox.toml:1: schedule[1].run: \"deploy all\": "),
            "{e}"
        );
        let e =
            check("[[schedule]]\nname = \"n\"\ncron = \"0 2 * * *\"\nrun = \"sleep forever\"\n")
                .unwrap_err();
        assert!(e.contains("schedule[1].run: \"sleep forever\": "), "{e}");
    }
}
