//! Reading the file: TOML syntax and types first (serde, with spans for line numbers),
//! then the checks serde cannot make, one function per section, all writing to one
//! `Report` so that every error is reported at once.
//!
//! This module owns [`Config::load`], [`Config::parse`] (which calls the sections one
//! after the other), the file's raw shape (`RawConfig`) and the small sections `[acl]`,
//! `[jobs]` and `[worker]`. The larger ones have modules of their own: `command`,
//! `durable` (`[broker]`, `[store]`), `ssh`, `schedule`, `shipper`, `slack`, `tasks`.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::command::{self, RawCommand};
use crate::durable::{self, RawBroker, RawStore};
use crate::error::Report;
use crate::fields::{bounded, is_identity, positive_duration};
use crate::schedule::{self, RawSchedule, RawScheduler, RawTimed};
use crate::shipper::RawShipper;
use crate::slack::{self, RawSlack};
use crate::ssh::{self, RawSsh};
use crate::*;

impl Config {
    /// Reads and validates the file at `path`, expanding `${NAME}` from the environment.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: source.clone(),
                line: None,
                key: String::new(),
                message: format!("cannot read the configuration file: {e}"),
            }])
        })?;
        Self::parse(&source, &text, |name| std::env::var(name).ok())
    }

    /// Validates `text`, read from `source`; `env` resolves `${NAME}` references.
    pub fn parse(
        source: &str,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let mut report = Report::new(source, text);
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| {
            let key = e.span().map(|s| key_at(text, s.start)).unwrap_or_default();
            let message = plain_words(&without_values(e.message()));
            ConfigErrors(vec![report.at(e.span(), &key, message)])
        })?;
        let env: &dyn Fn(&str) -> Option<String> = &env;
        if !(1..=1_000_000).contains(&raw.bot.max_message_length) {
            report.error(
                None,
                "bot.max_message_length",
                "must be from 1 to 1000000 characters (default 4096)",
            );
        }

        acl(&raw.acl, &mut report);
        let api = crate::api::api(std::mem::take(&mut raw.api), &mut raw.acl, env, &mut report);
        let jobs = jobs(&raw.jobs, &mut report);
        let worker = worker(raw.worker, &mut report);
        let quota = quota(&raw.quota, &mut report);
        let audit = audit(&raw.audit, &mut report);
        let http = HttpConfig {
            listen: report.read(&raw.http.listen, "http.listen", |l| {
                crate::fields::socket_addr(l, "0.0.0.0:9100")
            }),
        };
        let commands = command::commands(raw.command, &raw.acl, &mut report);
        let tasks = crate::tasks::tasks(std::mem::take(&mut raw.tasks), &raw.acl, &mut report);
        let broker = raw
            .broker
            .and_then(|b| durable::broker(b, env, &mut report));
        let store = raw.store.and_then(|s| durable::store(s, env, &mut report));
        let ssh = raw.ssh.and_then(|s| ssh::ssh(s, &mut report));
        let timed = RawTimed {
            scheduler: raw.scheduler,
            schedule: raw.schedule,
            shipper: raw.shipper,
        };
        let timed = schedule::load(timed, env, &mut report);
        let slack = raw
            .slack
            .and_then(|s| slack::slack(s, &raw.bot.name, env, &mut report));
        durable::both_or_neither(broker.is_some(), store.is_some(), &mut report);

        report.finish(Config {
            source: source.to_string(),
            bot: raw.bot,
            acl: raw.acl,
            jobs,
            worker,
            quota,
            audit,
            commands,
            broker,
            store,
            ssh,
            scheduler: timed.scheduler,
            schedules: timed.schedules,
            shippers: timed.shippers,
            slack,
            http,
            api,
            tasks,
        })
    }
}

/// `[acl]`: serde reads it whole; each group member must be an identity, since an
/// `allow` entry naming the group would otherwise let in no one the author meant.
fn acl(acl: &AclConfig, report: &mut Report) {
    for (group, members) in &acl.groups {
        for member in members.iter().filter(|m| !is_identity(m)) {
            report.error(
                None,
                &format!("acl.groups.{group}"),
                format!(
                    "\"{member}\" is not an identity: write adapter:user, \
                     e.g. console:alice or slack:U024BE7LH"
                ),
            );
        }
    }
}

/// `[jobs]`: the defaults every job gets from its command.
fn jobs(raw: &RawJobs, report: &mut Report) -> JobsConfig {
    let default = JobsConfig::default();
    JobsConfig {
        timeout: report
            .read(&raw.timeout, "jobs.timeout", |t| positive_duration(t))
            .unwrap_or(default.timeout),
        retries: report
            .read(&raw.retries, "jobs.retries", |&n| bounded(n, 0..=100))
            .unwrap_or(default.retries),
        retry_backoff: report
            .read(&raw.retry_backoff, "jobs.retry_backoff", |t| {
                positive_duration(t)
            })
            .unwrap_or(default.retry_backoff),
    }
}

/// `[worker]`: how much one worker process takes on at once.
fn worker(raw: RawWorker, report: &mut Report) -> WorkerConfig {
    let default = WorkerConfig::default();
    WorkerConfig {
        name: raw.name.or(default.name),
        concurrency: report
            .read(&raw.concurrency, "worker.concurrency", |&n| {
                bounded(n, 1..=1024)
            })
            .unwrap_or(default.concurrency),
        container_concurrency: report
            .read(
                &raw.container_concurrency,
                "worker.container_concurrency",
                |&n| bounded(n, 1..=256),
            )
            .unwrap_or(default.container_concurrency),
    }
}

/// `[quota]`: per-person limits.
fn quota(raw: &RawQuota, report: &mut Report) -> QuotaConfig {
    let default = QuotaConfig::default();
    QuotaConfig {
        running_per_person: report
            .read(&raw.running_per_person, "quota.running_per_person", |&n| {
                bounded(n, 1..=10_000)
            })
            .unwrap_or(default.running_per_person),
        requests_per_minute: report
            .read(
                &raw.requests_per_minute,
                "quota.requests_per_minute",
                |&n| bounded(n, 1..=100_000),
            )
            .unwrap_or(default.requests_per_minute),
    }
}

/// `[audit]`: how long the trail keeps its entries, from an hour to ten years.
fn audit(raw: &RawAudit, report: &mut Report) -> AuditConfig {
    let default = AuditConfig::default();
    AuditConfig {
        keep: report
            .read(&raw.keep, "audit.keep", |t| {
                let d = positive_duration(t)?;
                if (3600..=3650 * 86_400).contains(&d.as_secs()) {
                    Ok(d)
                } else {
                    Err("must be from 1h to 3650d (default 90d)".to_string())
                }
            })
            .unwrap_or(default.keep),
    }
}

/// The dotted key written on the line holding `offset` (`worker.concurrency`), found from
/// the line itself and the table header above it; empty when the line has no key.
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let Some((key, _)) = line.split_once('=') else {
        return String::new();
    };
    let key = key.trim().trim_matches('"');
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|h| h.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    }
}

/// serde's type names, in the words of the configuration file.
/// A parser message with the offending value left out: the value may be a password put
/// under the wrong key. Field names (`unknown field `pasword``) and what was expected are
/// kept; quoted text before ", expected" is dropped.
fn without_values(message: &str) -> String {
    if message.starts_with("unknown field") || message.starts_with("missing field") {
        return message.to_string();
    }
    let (head, tail) = message.split_at(message.find(", expected").unwrap_or(message.len()));
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in head.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '`' => {
                quote = Some(c);
                out.truncate(out.trim_end().len());
            }
            None => out.push(c),
        }
    }
    out.push_str(tail);
    out
}

fn plain_words(message: &str) -> String {
    message
        .trim_end()
        .replace("expected i64", "expected a whole number")
        .replace("expected usize", "expected a whole number")
        .replace("expected a sequence", "expected a list")
        .replace("expected a string", "expected a quoted string")
}

/// The file as serde reads it: every section, with spans where a later check needs a line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    bot: BotConfig,
    #[serde(default)]
    acl: AclConfig,
    #[serde(default)]
    jobs: RawJobs,
    #[serde(default)]
    worker: RawWorker,
    #[serde(default)]
    quota: RawQuota,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    command: Vec<Spanned<RawCommand>>,
    broker: Option<RawBroker>,
    store: Option<Spanned<RawStore>>,
    ssh: Option<RawSsh>,
    #[serde(default)]
    scheduler: RawScheduler,
    #[serde(default)]
    schedule: Vec<Spanned<RawSchedule>>,
    #[serde(default)]
    shipper: Vec<Spanned<RawShipper>>,
    slack: Option<RawSlack>,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    api: crate::api::RawApi,
    #[serde(default)]
    tasks: crate::tasks::RawTasks,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawJobs {
    timeout: Option<Spanned<String>>,
    retries: Option<Spanned<i64>>,
    retry_backoff: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    running_per_person: Option<Spanned<i64>>,
    requests_per_minute: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    keep: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    name: Option<String>,
    concurrency: Option<Spanned<i64>>,
    container_concurrency: Option<Spanned<i64>>,
}
