//! The timed part of the configuration: `[scheduler]` and `[[schedule]]`, and the loading
//! of the timed sections together, since a schedule that ships names a `[[shipper]]`
//! (whose entries `shipper` checks).
//!
//! Cron expressions are parsed here, with croner, so a bad one is reported at load with
//! its file, line and key like every other error; [`parse_cron`] is the one way the
//! scheduler reads them too. What a schedule's `run` text means is checked against the
//! command catalog by the role that builds it (the bot, the scheduler), since the
//! catalog includes built-in declarations this crate does not know.

use std::time::Duration;

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::Deserialize;
use toml::Spanned;

use crate::error::Report;
use crate::fields::{duration_at_least, is_name};
use crate::shipper::{shipper, RawShipper, ShipperConfig};

/// `[scheduler]`: how the scheduler processes share the work.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How long a scheduler holds the lease without renewing it: the longest a dead
    /// holder can leave schedules unfired before another process takes over.
    pub lease: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            lease: Duration::from_secs(10),
        }
    }
}

/// One `[[schedule]]` entry.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// The line of its `[[schedule]]` header, for error messages.
    pub line: usize,
    pub name: String,
    /// The expression as written (5 fields, or 6 with seconds first).
    pub cron: String,
    pub time_zone: chrono_tz::Tz,
    pub runs: ScheduleRuns,
    pub deliver: Deliver,
    pub missed: Missed,
}

/// What a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleRuns {
    /// A catalog command, as a person would type it (`echo nightly`).
    Command(String),
    /// A `[[shipper]]`, by name.
    Shipper(String),
}

/// Where a fired job's result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deliver {
    /// Nowhere but the job history.
    History,
    /// A channel of an adapter: `slack:#ops` is adapter `slack`, channel `#ops`.
    Channel { adapter: String, channel: String },
}

/// What a scheduler does with slots that passed while no scheduler was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Forget them; fire again at the next slot.
    #[default]
    Skip,
    /// Fire once for all of them, as soon as a scheduler is back.
    CatchUp,
}

/// Why a cron expression could not be read.
///
/// The message of [`CronError::Invalid`] repeats croner's reason although it is also the
/// source: configuration errors are shown as one line each, and that line must say what
/// is wrong with the expression.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// Neither 5 nor 6 fields (nor a nickname such as `@daily`): checked before croner,
    /// whose own message for it names no count.
    #[error(
        "\"{expr}\" has {fields} fields: write 5 (minute hour day month weekday) or 6 \
         (with seconds first)"
    )]
    FieldCount { expr: String, fields: usize },
    /// croner refused it.
    #[error("\"{expr}\" is not a cron expression: {source}")]
    Invalid {
        expr: String,
        #[source]
        source: croner::errors::CronError,
    },
}

/// Parses a cron expression of 5 fields (minute first) or 6 (seconds first).
pub fn parse_cron(expr: &str) -> Result<Cron, CronError> {
    let fields = expr.split_whitespace().count();
    if !expr.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
        return Err(CronError::FieldCount {
            expr: expr.to_string(),
            fields,
        });
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|source| CronError::Invalid {
            expr: expr.to_string(),
            source,
        })
}

/// Checks one `[[schedule]]`; problems come back as (`.field`, message), like the
/// `[[command]]` checks.
fn schedule(raw: RawSchedule, line: usize) -> Result<ScheduleConfig, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut problem = |k: &str, m: String| problems.push((k.to_string(), m));
    if !is_name(&raw.name) {
        problem(
            ".name",
            format!(
                "\"{}\" is not a schedule name: use letters, digits, - and _",
                raw.name
            ),
        );
    }
    if let Err(e) = parse_cron(&raw.cron) {
        problem(".cron", e.to_string());
    }
    let time_zone = match raw.time_zone.as_deref() {
        None => chrono_tz::UTC,
        Some(tz) => tz.parse().unwrap_or_else(|_| {
            problem(
                ".time_zone",
                format!("\"{tz}\" is not an IANA time zone (e.g. UTC, Europe/Paris)"),
            );
            chrono_tz::UTC
        }),
    };
    let runs = match (raw.run, raw.ship) {
        (Some(text), None) if !text.trim().is_empty() => Some(ScheduleRuns::Command(text)),
        (None, Some(shipper)) => Some(ScheduleRuns::Shipper(shipper)),
        (Some(_), None) => {
            problem(
                ".run",
                "is empty: write a command, e.g. \"echo hello\"".into(),
            );
            None
        }
        (None, None) => {
            problem(
                "",
                "says nothing to run: add `run = \"<command>\"` or `ship = \"<shipper>\"`".into(),
            );
            None
        }
        (Some(_), Some(_)) => {
            problem("", "has both `run` and `ship`: keep one".into());
            None
        }
    };
    let deliver = match raw.deliver.as_deref() {
        None | Some("history") => Deliver::History,
        Some(d) => match d.split_once(':') {
            Some((adapter, channel)) if is_name(adapter) && !channel.is_empty() => {
                Deliver::Channel {
                    adapter: adapter.to_string(),
                    channel: channel.to_string(),
                }
            }
            _ => {
                problem(
                    ".deliver",
                    format!(
                        "\"{d}\" is not a place to deliver: write adapter:channel \
                         (e.g. slack:#ops) or leave it out for the job history only"
                    ),
                );
                Deliver::History
            }
        },
    };
    match runs {
        Some(runs) if problems.is_empty() => Ok(ScheduleConfig {
            line,
            name: raw.name,
            cron: raw.cron,
            time_zone,
            runs,
            deliver,
            missed: raw.missed.unwrap_or_default(),
        }),
        _ => Err(problems),
    }
}

/// The `[scheduler]`, `[[schedule]]` and `[[shipper]]` sections as the file holds them.
pub(super) struct RawTimed {
    pub(super) scheduler: RawScheduler,
    pub(super) schedule: Vec<Spanned<RawSchedule>>,
    pub(super) shipper: Vec<Spanned<RawShipper>>,
}

/// The validated sections.
pub(super) struct Timed {
    pub(super) scheduler: SchedulerConfig,
    pub(super) schedules: Vec<ScheduleConfig>,
    pub(super) shippers: Vec<ShipperConfig>,
}

/// Checks the timed sections; `env` resolves the `${NAME}` secrets of shippers.
pub(super) fn load(
    raw: RawTimed,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Timed {
    let default = SchedulerConfig::default();
    let scheduler = SchedulerConfig {
        lease: report
            .read(&raw.scheduler.lease, "scheduler.lease", |t| {
                duration_at_least(t, Duration::from_millis(500))
            })
            .unwrap_or(default.lease),
    };
    let mut shippers: Vec<ShipperConfig> = Vec::new();
    for (i, entry) in raw.shipper.into_iter().enumerate() {
        let span = entry.span();
        let key = format!("shipper[{}]", i + 1);
        match shipper(entry.into_inner(), report.line(span.start), env) {
            Ok(s) if shippers.iter().any(|o| o.name == s.name) => report.error(
                Some(span),
                &format!("{key}.name"),
                format!("\"{}\" is declared twice", s.name),
            ),
            Ok(s) => shippers.push(s),
            Err(problems) => report.entry(span, &key, problems),
        }
    }
    let mut schedules: Vec<ScheduleConfig> = Vec::new();
    for (i, entry) in raw.schedule.into_iter().enumerate() {
        let span = entry.span();
        let key = format!("schedule[{}]", i + 1);
        match schedule(entry.into_inner(), report.line(span.start)) {
            Ok(s) if schedules.iter().any(|o| o.name == s.name) => report.error(
                Some(span),
                &format!("{key}.name"),
                format!("\"{}\" is declared twice", s.name),
            ),
            Ok(s) => match &s.runs {
                ScheduleRuns::Shipper(name) if !shippers.iter().any(|sh| &sh.name == name) => {
                    report.error(
                        Some(span),
                        &format!("{key}.ship"),
                        format!("no [[shipper]] named \"{name}\""),
                    )
                }
                _ => schedules.push(s),
            },
            Err(problems) => report.entry(span, &key, problems),
        }
    }
    Timed {
        scheduler,
        schedules,
        shippers,
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScheduler {
    pub(super) lease: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    name: String,
    cron: String,
    time_zone: Option<String>,
    run: Option<String>,
    ship: Option<String>,
    deliver: Option<String>,
    missed: Option<Missed>,
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn errors(text: &str) -> String {
        Config::parse("octobox.toml", text, |_| None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_bad_cron_names_its_line_and_key() {
        let text = "\n[[schedule]]\nname = \"n\"\ncron = \"* * *\"\nrun = \"echo hi\"\n";
        let e = errors(text);
        assert!(e.contains("octobox.toml:2: schedule[1].cron: "), "{e}");
        assert!(e.contains("has 3 fields"), "{e}");
        let e = errors("[[schedule]]\nname = \"n\"\ncron = \"61 * * * *\"\nrun = \"x\"\n");
        assert!(
            e.contains("schedule[1].cron: \"61 * * * *\" is not a cron"),
            "{e}"
        );
    }

    #[test]
    fn schedules_and_shippers_load_with_their_defaults() {
        let text = r#"
[scheduler]
lease = "3s"

[[schedule]]
name = "nightly"
cron = "*/5 * * * * *"
time_zone = "Europe/Paris"
ship = "events"
deliver = "slack:#ops"
missed = "catch_up"

[[shipper]]
name = "events"
window = "1h"
source = { url = "http://h/events", headers = { Authorization = "Bearer ${TOKEN}" } }
sink = { kind = "files", dir = "/tmp/x", gzip = true }
"#;
        let c = Config::parse("o.toml", text, |n| (n == "TOKEN").then(|| "t0k".into())).unwrap();
        assert_eq!(c.scheduler.lease, std::time::Duration::from_secs(3));
        let s = &c.schedules[0];
        assert_eq!(s.time_zone, chrono_tz::Europe::Paris);
        assert_eq!(s.missed, super::Missed::CatchUp);
        assert_eq!(
            s.deliver,
            super::Deliver::Channel {
                adapter: "slack".into(),
                channel: "#ops".into()
            }
        );
        let sh = &c.shippers[0];
        let crate::SourceConfig::Http(source) = &sh.source else {
            panic!("an http source: {:?}", sh.source)
        };
        assert_eq!(source.headers["Authorization"].expose(), "Bearer t0k");
        assert_eq!(source.since_param, "since");
        assert!(!format!("{sh:?}").contains("t0k"));
    }

    #[test]
    fn a_schedule_naming_an_unknown_shipper_is_refused() {
        let text = "[[schedule]]\nname = \"n\"\ncron = \"0 2 * * *\"\nship = \"nope\"\n";
        let e = errors(text);
        assert!(
            e.contains("octobox.toml:1: schedule[1].ship: no [[shipper]] named \"nope\""),
            "{e}"
        );
    }

    #[test]
    fn an_audit_source_reads_the_store_and_refuses_keys_of_an_http_source() {
        let text = "[[shipper]]\nname = \"audit\"\nwindow = \"1d\"\nsource = { kind = \"audit\", page_size = 200 }\nsink = { kind = \"files\", dir = \"/tmp/a\" }\n";
        let c = Config::parse("o.toml", text, |_| None).unwrap();
        assert!(
            matches!(
                c.shippers[0].source,
                crate::SourceConfig::Audit { page_size: 200 }
            ),
            "{:?}",
            c.shippers[0].source
        );

        let e = errors("[[shipper]]\nname = \"audit\"\nwindow = \"1d\"\nsource = { kind = \"audit\", url = \"http://h\", headers = { A = \"b\" } }\nsink = { kind = \"files\", dir = \"/tmp/a\" }\n");
        assert!(
            e.contains("octobox.toml:1: shipper[1].source.url: an \"audit\" source reads the audit trail from the store and takes only `page_size`: remove `url`"),
            "{e}"
        );
        assert!(e.contains("shipper[1].source.headers: "), "{e}");

        let e = errors("[[shipper]]\nname = \"s\"\nwindow = \"1d\"\nsource = { page_size = 5 }\nsink = { kind = \"files\", dir = \"/tmp/a\" }\n");
        assert!(
            e.contains("shipper[1].source.url: an \"http\" source needs `url`"),
            "{e}"
        );
        assert!(!e.contains("is not an http://"), "{e}");

        let e = errors("[[shipper]]\nname = \"s\"\nwindow = \"1d\"\nsource = { kind = \"ledger\" }\nsink = { kind = \"files\", dir = \"/tmp/a\" }\n");
        assert!(
            e.contains(
                "shipper[1].source.kind: \"ledger\" is not a source: write \"http\" or \"audit\""
            ),
            "{e}"
        );
    }

    #[test]
    fn a_bad_time_zone_and_sink_are_named() {
        let text = "[[schedule]]\nname = \"n\"\ncron = \"0 2 * * *\"\nrun = \"echo\"\ntime_zone = \"Mars/Base\"\n\n[[shipper]]\nname = \"s\"\nwindow = \"1d\"\nsource = { url = \"http://h\" }\nsink = { kind = \"tape\" }\n";
        let e = errors(text);
        assert!(e.contains("schedule[1].time_zone: \"Mars/Base\""), "{e}");
        assert!(e.contains("octobox.toml:7: shipper[1].sink.kind"), "{e}");
    }
}
