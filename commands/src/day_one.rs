//! The commands of the day-one native tasks (`tasks.toml`): declared by default, each
//! unless `[tasks]` switches its task off, with the `allow` list `[tasks]` gives it.
//!
//! They are written like `[[command]]` entries of `octobox.toml` and compiled into the
//! same catalog as the built-ins and the file's own commands, so a configured command
//! that clashes with one is reported like any other clash.

use config::{Config, ConfigErrors, Runs, TasksConfig};

/// The declarations of the day-one tasks' commands.
pub const DECLARATIONS: &str = include_str!("tasks.toml");

/// Where [`DECLARATIONS`] come from, in error messages.
pub const DECLARATIONS_SOURCE: &str =
    "day-one task commands (switch one off with [tasks.<task>] enabled = false)";

/// The day-one commands `tasks` keeps on, each with the access `tasks` gives it.
pub fn declarations(tasks: &TasksConfig) -> Result<Config, ConfigErrors> {
    let mut declared = Config::parse(DECLARATIONS_SOURCE, DECLARATIONS, |_| None)?;
    declared.commands.retain(|c| match &c.runs {
        Runs::Native(task) => tasks.enabled(task) != Some(false),
        _ => true,
    });
    for c in &mut declared.commands {
        if let Runs::Native(task) = &c.runs {
            c.allow = Some(tasks.allow_for(task).to_vec());
        }
    }
    Ok(declared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::AllowEntry;

    #[test]
    fn every_day_one_task_has_its_command_and_only_those_switched_on_are_kept() {
        let all = declarations(&TasksConfig::default()).unwrap();
        let tasks: Vec<_> = all
            .commands
            .iter()
            .map(|c| match &c.runs {
                Runs::Native(t) => t.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(tasks, config::DAY_ONE_TASKS);

        let mut some = TasksConfig::default();
        some.dns.enabled = false;
        some.http_check.allow = Some(vec![AllowEntry::Group("ops".into())]);
        let kept = declarations(&some).unwrap();
        assert!(!kept.commands.iter().any(|c| c.pattern.starts_with("dns")));
        let http = kept
            .commands
            .iter()
            .find(|c| c.runs == Runs::Native("http_check".into()))
            .unwrap();
        assert_eq!(http.allow, Some(vec![AllowEntry::Group("ops".into())]));
    }
}
