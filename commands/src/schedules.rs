//! `ScheduleTable`: the configuration's schedules, compiled and checked against the
//! command table they run from.
//!
//! A schedule's `run` text is turned into a job once here, through the same catalog a
//! person's message goes through, so a schedule that names no command (or a built-in,
//! or gives a bad argument) is a configuration error at start, not a failed fire at 2am.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use config::{
    parse_cron, Config, ConfigError, ConfigErrors, Deliver, Missed, ScheduleRuns, ShipperConfig,
};
use croner::Cron;
use jobs::Origin;

use crate::table::CommandTable;

/// One schedule, ready to fire.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    /// The expression as configured, for listings.
    pub cron_text: String,
    cron: Cron,
    pub time_zone: chrono_tz::Tz,
    pub runs: ScheduleRuns,
    /// Where its results are delivered: the configured channel, or the adapter
    /// `scheduler` that no bot serves (the job history only).
    pub origin: Origin,
    pub missed: Missed,
}

impl Schedule {
    /// The first slot strictly after `t`, if the expression has one.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.time_zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The slots in `(after, until]`, oldest first, at most `limit`.
    pub fn slots(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut slots = Vec::new();
        let mut t = after;
        while slots.len() < limit {
            match self.next_after(t) {
                Some(next) if next <= until => {
                    slots.push(next);
                    t = next;
                }
                _ => break,
            }
        }
        slots
    }

    /// Where this schedule's results go, for listings: `slack:#ops`, or `history`.
    pub fn delivers_to(&self) -> String {
        match &self.origin.channel {
            Some(channel) if self.origin.adapter != ORIGIN_ADAPTER => {
                format!("{}:{channel}", self.origin.adapter)
            }
            _ => "history".to_string(),
        }
    }

    /// What it runs, for listings: the command text, or `ship <shipper>`.
    pub fn describe_run(&self) -> String {
        match &self.runs {
            ScheduleRuns::Command(text) => text.clone(),
            ScheduleRuns::Shipper(name) => format!("ship {name}"),
        }
    }
}

/// The adapter named in the origin of results that go nowhere but the history.
pub const ORIGIN_ADAPTER: &str = "scheduler";

/// Every schedule of a configuration, and the shippers they run.
#[derive(Debug, Clone, Default)]
pub struct ScheduleTable {
    schedules: Vec<Schedule>,
    shippers: BTreeMap<String, ShipperConfig>,
}

impl ScheduleTable {
    /// Compiles `config`'s schedules; `commands` checks each `run` text.
    pub fn build(config: &Config, commands: &CommandTable) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut schedules = Vec::new();
        for (i, s) in config.schedules.iter().enumerate() {
            let error = |key: &str, message: String| ConfigError {
                file: config.source.clone(),
                line: Some(s.line),
                key: format!("schedule[{}]{key}", i + 1),
                message,
            };
            let cron = match parse_cron(&s.cron) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(error(".cron", e.to_string()));
                    continue;
                }
            };
            let origin = match &s.deliver {
                Deliver::History => Origin::new(ORIGIN_ADAPTER, &s.name),
                Deliver::Channel { adapter, channel } => Origin {
                    channel: Some(channel.clone()),
                    ..Origin::new(adapter, ORIGIN_ADAPTER)
                },
            };
            if let ScheduleRuns::Command(text) = &s.runs {
                if let Err(m) = commands.job_for(text, origin.clone()) {
                    errors.push(error(".run", m.to_string()));
                    continue;
                }
            }
            schedules.push(Schedule {
                name: s.name.clone(),
                cron_text: s.cron.clone(),
                cron,
                time_zone: s.time_zone,
                runs: s.runs.clone(),
                origin,
                missed: s.missed,
            });
        }
        let shippers = config
            .shippers
            .iter()
            .map(|s| (s.name.clone(), s.clone()))
            .collect();
        if errors.is_empty() {
            Ok(ScheduleTable {
                schedules,
                shippers,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    pub fn get(&self, name: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.name == name)
    }

    pub fn shipper(&self, name: &str) -> Option<&ShipperConfig> {
        self.shippers.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(schedule: &str) -> ScheduleTable {
        let config = Config::parse("t.toml", schedule, |_| None).unwrap();
        let commands = CommandTable::build(&config, None).unwrap();
        ScheduleTable::build(&config, &commands).unwrap()
    }

    fn at(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().to_utc()
    }

    #[test]
    fn a_schedule_may_walk_a_site_and_its_depth_is_checked() {
        let config = Config::parse(
            "t.toml",
            "[[schedule]]\nname = \"walk\"\ncron = \"0 3 * * *\"\nrun = \"walk site https://example.com/ 3\"\n",
            |_| None,
        )
        .unwrap();
        let commands = CommandTable::build(&config, None).unwrap();
        let t = ScheduleTable::build(&config, &commands).unwrap();
        let s = &t.schedules()[0];
        let ScheduleRuns::Command(text) = &s.runs else {
            panic!("{:?}", s.runs)
        };
        // What the scheduler does at each slot: the run text through the one step from a
        // text to a job; the job's result lands in the history as any job's does.
        let job = commands.job_for(text, s.origin.clone()).unwrap();
        assert_eq!(job.task, jobs::Task::native("walk_site"));
        assert_eq!(job.args["depth"], lexicon::Value::Int(3));

        let config = Config::parse(
            "t.toml",
            "[[schedule]]\nname = \"walk\"\ncron = \"0 3 * * *\"\nrun = \"walk site https://example.com/ 12\"\n",
            |_| None,
        )
        .unwrap();
        let commands = CommandTable::build(&config, None).unwrap();
        let e = ScheduleTable::build(&config, &commands)
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml:1: schedule[1].run: "), "{e}");
        assert!(e.contains("from 0 to 10"), "{e}");
    }

    #[test]
    fn slots_follow_the_schedules_time_zone() {
        let t = table(
            "[[schedule]]\nname = \"n\"\ncron = \"0 2 * * *\"\ntime_zone = \"Europe/Paris\"\nrun = \"echo x\"\n",
        );
        let s = &t.schedules()[0];
        // 02:00 in Paris is 01:00 UTC in winter and 00:00 UTC in summer.
        assert_eq!(
            s.next_after(at("2026-11-22T00:00:00Z")),
            Some(at("2026-11-22T01:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-07-01T12:00:00Z")),
            Some(at("2026-07-02T00:00:00Z"))
        );
        assert_eq!(s.delivers_to(), "history");
    }

    #[test]
    fn slots_between_two_times_come_oldest_first() {
        let t = table("[[schedule]]\nname = \"n\"\ncron = \"*/20 * * * * *\"\nrun = \"echo x\"\ndeliver = \"slack:#ops\"\n");
        let s = &t.schedules()[0];
        let slots = s.slots(at("2026-11-22T10:00:00Z"), at("2026-11-22T10:01:00Z"), 10);
        assert_eq!(
            slots,
            [
                at("2026-11-22T10:00:20Z"),
                at("2026-11-22T10:00:40Z"),
                at("2026-11-22T10:01:00Z")
            ]
        );
        assert_eq!(s.delivers_to(), "slack:#ops");
    }
}
