//! `own_task`: what a worker runs is what its own configuration says.
//!
//! Whoever can publish to the broker can put any `Task` in a job: an image of their
//! choosing, the host's network, uid 0, every capability. So a worker never takes a task
//! from a job: it looks the job's command up in its own catalog, checks the arguments
//! against the command's slots, and builds the task from its own declaration, as the bot
//! did. A job whose task says otherwise is refused, unrun: it was forged, or the bot and
//! the worker were given different configurations (and then running either version would
//! surprise someone).

use commands::Catalog;
use jobs::{Job, JobFailure, Task};
use lexicon::Match;

/// The task `job` runs on this worker, built from `catalog`, or why the job is refused.
pub fn own_task(catalog: &Catalog, job: &Job) -> Result<Task, JobFailure> {
    let command = &job.command;
    let (Some(def), Some(action)) = (
        catalog.commands.catalog.get(command),
        catalog.commands.action(command),
    ) else {
        return Err(JobFailure::UnknownCommand {
            command: command.clone(),
        });
    };
    // A fan-out's parent is never queued: a job that lists children was not made by a bot.
    if !job.children.is_empty() {
        return Err(JobFailure::NotAsConfigured {
            command: command.clone(),
        });
    }
    let slots = def.slots();
    // A fan-out's job also has its host, which must be a name the inventory could hold.
    let host_argument = action.fan_out.as_ref().map(|f| f.host.as_str());
    for (name, value) in &job.args {
        let valid = match slots.iter().find(|s| &s.name == name) {
            Some(slot) => slot.kind.parse(&value.reveal()).is_ok(),
            None => {
                host_argument == Some(name.as_str())
                    && jobs::inventory::check_host_name(&value.reveal()).is_ok()
            }
        };
        if !valid {
            return Err(JobFailure::NotAsConfigured {
                command: command.clone(),
            });
        }
    }
    let m = Match {
        command: command.clone(),
        args: job.args.clone(),
    };
    match action.runs.task_checked(&m) {
        Ok(Some(task)) if task == job.task && action.timeout == job.timeout => Ok(task),
        Ok(Some(_)) | Err(_) => Err(JobFailure::NotAsConfigured {
            command: command.clone(),
        }),
        Ok(None) => Err(JobFailure::UnknownCommand {
            command: command.clone(),
        }),
    }
}
