//! `Catalog`: everything a configuration says about commands, compiled once — the
//! command table, the access policy, the schedules — and `LiveCatalog`, the one shared
//! value that holds the catalog in force.
//!
//! Every reader (the router, the scheduler, SSH completion, each adapter) loads the
//! catalog from the same `LiveCatalog`, so a `reload` reaches all of them at once, and a
//! reader that loaded a catalog keeps a consistent one (table, policy and schedules of
//! the same file) until it loads again. `arc-swap` makes the load a few atomic
//! operations with no lock, cheap enough for every message.

use std::sync::Arc;

use arc_swap::ArcSwap;
use config::{Config, ConfigErrors};

use crate::access::AccessPolicy;
use crate::schedules::ScheduleTable;
use crate::table::{CommandTable, NativeTasks};

/// One configuration's commands, access policy and schedules, checked together.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub commands: CommandTable,
    pub access: AccessPolicy,
    pub schedules: ScheduleTable,
    /// `[bot] max_message_length`: the longest message, in characters, that is read at
    /// all; every adapter refuses a longer one before anything else.
    pub max_message_length: usize,
    /// `[quota]`: what one person may ask for.
    pub quota: config::QuotaConfig,
    /// `[audit] keep`: how long the audit trail keeps an entry.
    pub audit_keep: std::time::Duration,
    /// How many commands the configuration declares (the table has the built-ins too).
    pub configured: usize,
    /// Where the configuration was read from.
    pub source: String,
    /// `[api]`: the HTTP API's tokens, replaced with the rest on a reload.
    pub api: config::ApiConfig,
}

impl Catalog {
    /// Compiles `config`. `tasks`, when given, are the native tasks this process runs
    /// (embedded mode): a command naming another task is an error.
    pub fn build(config: &Config, tasks: Option<&NativeTasks>) -> Result<Self, ConfigErrors> {
        let commands = CommandTable::build(config, tasks)?;
        let schedules = ScheduleTable::build(config, &commands)?;
        Ok(Catalog {
            commands,
            access: AccessPolicy::new(&config.acl),
            schedules,
            max_message_length: config.bot.max_message_length,
            quota: config.quota.clone(),
            audit_keep: config.audit.keep,
            configured: config.commands.len(),
            source: config.source.clone(),
            api: config.api.clone(),
        })
    }
}

/// The catalog in force, shared by every part of a process that reads it.
#[derive(Debug, Clone)]
pub struct LiveCatalog {
    current: Arc<ArcSwap<Catalog>>,
}

impl LiveCatalog {
    pub fn new(catalog: Catalog) -> Self {
        LiveCatalog {
            current: Arc::new(ArcSwap::from_pointee(catalog)),
        }
    }

    /// The catalog in force now; it stays whole while the caller holds it.
    pub fn load(&self) -> Arc<Catalog> {
        self.current.load_full()
    }

    /// Puts `catalog` in force for every reader.
    pub fn replace(&self, catalog: Catalog) {
        self.current.store(Arc::new(catalog));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::standard_tasks;
    use jobs::{Origin, Task};

    fn check(schedules: &str) -> Result<Catalog, String> {
        let config =
            Config::parse("octobox.toml", schedules, |_| None).map_err(|e| e.to_string())?;
        Catalog::build(&config, Some(&standard_tasks())).map_err(|e| e.to_string())
    }

    #[test]
    fn a_schedule_runs_only_commands_that_queue_jobs() {
        let ok = check("[[schedule]]\nname = \"n\"\ncron = \"0 2 * * *\"\nrun = \"sleep 5s\"\n")
            .unwrap();
        let job = CommandTable::build(&Config::default(), None)
            .unwrap()
            .job_for("sleep 5s", Origin::new("scheduler", "n"))
            .unwrap();
        assert_eq!(job.task, Task::native("sleep"));
        assert_eq!(ok.schedules.schedules()[0].describe_run(), "sleep 5s");

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

    #[test]
    fn a_replaced_catalog_reaches_every_holder_of_the_live_one() {
        let first = check("").unwrap();
        let live = LiveCatalog::new(first);
        let reader = live.clone();
        let before = reader.load();
        live.replace(
            check("[[command]]\npattern = \"hello {text:text}\"\nhelp = \"Greets\"\nnative = \"echo\"\nallow = [\"everyone\"]\n")
                .unwrap(),
        );
        assert!(reader.load().commands.catalog.get("hello").is_some());
        // A catalog already loaded stays whole: the reload is seen at the next load.
        assert!(before.commands.catalog.get("hello").is_none());
    }
}
