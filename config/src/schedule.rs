//! The timed part of the configuration: `[scheduler]`, `[[schedule]]` and `[[shipper]]`.
//!
//! Cron expressions are parsed here, with croner, so a bad one is reported at load with
//! its file, line and key like every other error; [`parse_cron`] is the one way the
//! scheduler reads them too. What a schedule's `run` text means is checked against the
//! command catalog by the role that builds it (the bot, the scheduler), since the
//! catalog includes built-in declarations this crate does not know.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::Deserialize;
use toml::Spanned;

use crate::error::Report;
use crate::fields::duration_at_least;
use crate::secret::{expand_env, Secret};

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

/// One `[[shipper]]`: records moved from an HTTP source to a sink, window by window.
#[derive(Debug, Clone)]
pub struct ShipperConfig {
    pub line: usize,
    pub name: String,
    /// The length of a window; windows are aligned to the Unix epoch in UTC, so `1d`
    /// windows are UTC days.
    pub window: Duration,
    /// Where shipping starts when no checkpoint exists: by default the last whole window.
    pub first_window: Option<DateTime<Utc>>,
    pub source: SourceConfig,
    pub sink: SinkConfig,
}

/// An HTTP JSON API that answers a time window, a page at a time.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub url: String,
    pub since_param: String,
    pub until_param: String,
    pub page_size_param: String,
    pub page_size: usize,
    /// The field of a page that holds its records (an array).
    pub records: String,
    /// The field of a page that holds the next page's URL (absent or null on the last).
    pub next: String,
    /// Sent with every request; values may be `${ENV}` secrets.
    pub headers: BTreeMap<String, Secret>,
}

impl SourceConfig {
    /// A source at `url` that reads the usual names: `since`, `until` and `limit` for the
    /// window and the page size (500), `records` and `next` in each page; no headers.
    pub fn new(url: String) -> Self {
        SourceConfig {
            url,
            since_param: "since".into(),
            until_param: "until".into(),
            page_size_param: "limit".into(),
            page_size: 500,
            records: "records".into(),
            next: "next".into(),
            headers: BTreeMap::new(),
        }
    }
}

/// How many records an `http` sink posts at once when `batch` is not set.
const DEFAULT_BATCH: usize = 500;

/// The region an `s3` sink signs for when `region` is not set: the one MinIO and most
/// S3-compatible servers answer to when none is configured.
const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// One JSON Lines file per window in `dir`.
    Files { dir: String, gzip: bool },
    /// Batches POSTed as JSON Lines to a collector.
    Http {
        url: String,
        batch: usize,
        headers: BTreeMap<String, Secret>,
    },
    /// One JSON Lines object per window in an S3-compatible bucket.
    S3 {
        endpoint: String,
        bucket: String,
        region: String,
        prefix: String,
        access_key: Secret,
        secret_key: Secret,
        gzip: bool,
    },
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

/// Problems come back as (key suffix, message), like the `[[command]]` checks.
type Problems = Vec<(String, String)>;

pub(super) fn schedule(raw: RawSchedule, line: usize) -> Result<ScheduleConfig, Problems> {
    let mut problems = Problems::new();
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

pub(super) fn shipper(
    raw: RawShipper,
    line: usize,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ShipperConfig, Problems> {
    let mut problems = Problems::new();
    if !is_name(&raw.name) {
        problems.push((
            ".name".into(),
            format!(
                "\"{}\" is not a shipper name: use letters, digits, - and _",
                raw.name
            ),
        ));
    }
    let window = match duration_at_least(&raw.window, Duration::from_secs(1)) {
        Ok(d) => d,
        Err(m) => {
            problems.push((".window".into(), m));
            Duration::from_secs(1)
        }
    };
    let first_window =
        raw.first_window
            .as_deref()
            .and_then(|t| match DateTime::parse_from_rfc3339(t) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(e) => {
                    problems.push((
                        ".first_window".into(),
                        format!("\"{t}\" is not an RFC 3339 time (2026-11-01T00:00:00Z): {e}"),
                    ));
                    None
                }
            });
    let mut secret = |key: &str, raw: &str| match expand_env(raw, env) {
        Ok(v) => Secret::new(v),
        Err(e) => {
            problems.push((key.to_string(), e.to_string()));
            Secret::new("")
        }
    };
    let mut headers = |key: &str, raw: &BTreeMap<String, String>| {
        raw.iter()
            .map(|(h, v)| (h.clone(), secret(&format!("{key}.{h}"), v)))
            .collect::<BTreeMap<_, _>>()
    };
    let s = raw.source;
    let default = SourceConfig::new(s.url);
    let source = SourceConfig {
        headers: headers(".source.headers", &s.headers),
        since_param: s.since_param.unwrap_or(default.since_param),
        until_param: s.until_param.unwrap_or(default.until_param),
        page_size_param: s.page_size_param.unwrap_or(default.page_size_param),
        page_size: s.page_size.unwrap_or(default.page_size),
        records: s.records.unwrap_or(default.records),
        next: s.next.unwrap_or(default.next),
        ..default
    };
    let k = raw.sink;
    let gzip = k.gzip.unwrap_or(false);
    let sink = match k.kind.as_str() {
        "files" => k.dir.clone().map(|dir| SinkConfig::Files { dir, gzip }),
        "http" => k.url.clone().map(|url| SinkConfig::Http {
            url,
            batch: k.batch.unwrap_or(DEFAULT_BATCH),
            headers: headers(".sink.headers", &k.headers),
        }),
        "s3" => match (&k.endpoint, &k.bucket, &k.access_key, &k.secret_key) {
            (Some(e), Some(b), Some(a), Some(s)) => Some(SinkConfig::S3 {
                endpoint: e.clone(),
                bucket: b.clone(),
                region: k.region.clone().unwrap_or_else(|| DEFAULT_REGION.into()),
                prefix: k.prefix.clone().unwrap_or_default(),
                access_key: secret(".sink.access_key", a),
                secret_key: secret(".sink.secret_key", s),
                gzip,
            }),
            _ => None,
        },
        other => {
            problems.push((
                ".sink.kind".into(),
                format!("\"{other}\" is not a sink: write \"files\", \"http\" or \"s3\""),
            ));
            Some(SinkConfig::Files {
                dir: String::new(),
                gzip: false,
            })
        }
    };
    let Some(sink) = sink else {
        let needs = match k.kind.as_str() {
            "files" => "`dir`",
            "http" => "`url`",
            _ => "`endpoint`, `bucket`, `access_key` and `secret_key`",
        };
        problems.push((
            ".sink".into(),
            format!("a \"{}\" sink needs {needs}", k.kind),
        ));
        return Err(problems);
    };
    for (key, url) in [
        (".source.url", Some(&source.url)),
        (".sink.url", k.url.as_ref()),
    ]
    .into_iter()
    .chain([(".sink.endpoint", k.endpoint.as_ref())])
    {
        if let Some(u) = url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push((
                    key.into(),
                    format!("\"{u}\" is not an http:// or https:// URL"),
                ));
            }
        }
    }
    if source.page_size == 0 || matches!(sink, SinkConfig::Http { batch: 0, .. }) {
        problems.push((
            ".source.page_size".into(),
            "sizes must be at least 1".into(),
        ));
    }
    if problems.is_empty() {
        Ok(ShipperConfig {
            line,
            name: raw.name,
            window,
            first_window,
            source,
            sink,
        })
    } else {
        Err(problems)
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

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShipper {
    name: String,
    window: String,
    first_window: Option<String>,
    source: RawSource,
    sink: RawSink,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    url: String,
    since_param: Option<String>,
    until_param: Option<String>,
    page_size_param: Option<String>,
    page_size: Option<usize>,
    records: Option<String>,
    next: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    kind: String,
    dir: Option<String>,
    gzip: Option<bool>,
    url: Option<String>,
    batch: Option<usize>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    prefix: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
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
        assert_eq!(sh.source.headers["Authorization"].expose(), "Bearer t0k");
        assert_eq!(sh.source.since_param, "since");
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
    fn a_bad_time_zone_and_sink_are_named() {
        let text = "[[schedule]]\nname = \"n\"\ncron = \"0 2 * * *\"\nrun = \"echo\"\ntime_zone = \"Mars/Base\"\n\n[[shipper]]\nname = \"s\"\nwindow = \"1d\"\nsource = { url = \"http://h\" }\nsink = { kind = \"tape\" }\n";
        let e = errors(text);
        assert!(e.contains("schedule[1].time_zone: \"Mars/Base\""), "{e}");
        assert!(e.contains("octobox.toml:7: shipper[1].sink.kind"), "{e}");
    }
}
