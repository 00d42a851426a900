//! Reading the file: TOML syntax and types first (serde, with spans for line numbers),
//! then the checks serde cannot make, collected so that every error is reported at once.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::LineIndex;
use crate::fields::{bounded, is_identity, positive_duration};
use crate::secret::expand_env;
use crate::slack;
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
        let lines = LineIndex::new(text);
        let at = |span: Option<std::ops::Range<usize>>, key: &str, message: String| ConfigError {
            file: source.to_string(),
            line: span.map(|s| lines.line(s.start)),
            key: key.to_string(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let key = e.span().map(|s| key_at(text, s.start)).unwrap_or_default();
            ConfigErrors(vec![at(e.span(), &key, plain_words(e.message()))])
        })?;

        let mut errors = Vec::new();
        let mut config = Config {
            source: source.to_string(),
            bot: raw.bot,
            acl: raw.acl,
            ..Config::default()
        };

        for (group, members) in &config.acl.groups {
            for member in members {
                if !is_identity(member) {
                    errors.push(at(
                        None,
                        &format!("acl.groups.{group}"),
                        format!(
                            "\"{member}\" is not an identity: write adapter:user, \
                             e.g. console:alice or slack:U024BE7LH"
                        ),
                    ));
                }
            }
        }

        let mut duration = |raw: &Option<Spanned<String>>, key: &str, slot: &mut Duration| {
            if let Some(t) = raw {
                match positive_duration(t.get_ref()) {
                    Ok(d) => *slot = d,
                    Err(m) => errors.push(at(Some(t.span()), key, m)),
                }
            }
        };
        duration(&raw.jobs.timeout, "jobs.timeout", &mut config.jobs.timeout);
        duration(
            &raw.jobs.retry_backoff,
            "jobs.retry_backoff",
            &mut config.jobs.retry_backoff,
        );
        let mut publish_timeout = BrokerConfig::new(Secret::new("")).publish_timeout;
        if let Some(b) = &raw.broker {
            duration(
                &b.publish_timeout,
                "broker.publish_timeout",
                &mut publish_timeout,
            );
        }
        let store_defaults = StoreConfig::new(Secret::new(""));
        let (mut retention, mut reclaim_after) =
            (store_defaults.retention, store_defaults.reclaim_after);
        if let Some(s) = &raw.store {
            duration(&s.retention, "store.retention", &mut retention);
            duration(&s.reclaim_after, "store.reclaim_after", &mut reclaim_after);
        }
        if let Some(r) = &raw.jobs.retries {
            match bounded(*r.get_ref(), 0..=100) {
                Ok(n) => config.jobs.retries = n,
                Err(m) => errors.push(at(Some(r.span()), "jobs.retries", m)),
            }
        }
        let mut delivery_limit = 5;
        if let Some(l) = raw.broker.as_ref().and_then(|b| b.delivery_limit.as_ref()) {
            match bounded(*l.get_ref(), 1..=1000) {
                Ok(n) => delivery_limit = n,
                Err(m) => errors.push(at(Some(l.span()), "broker.delivery_limit", m)),
            }
        }

        config.worker.name = raw.worker.name;
        if let Some(c) = &raw.worker.concurrency {
            match bounded(*c.get_ref(), 1..=1024) {
                Ok(n) => config.worker.concurrency = n,
                Err(m) => errors.push(at(Some(c.span()), "worker.concurrency", m)),
            }
        }

        if let Some(c) = &raw.worker.container_concurrency {
            match bounded(*c.get_ref(), 1..=256) {
                Ok(n) => config.worker.container_concurrency = n,
                Err(m) => errors.push(at(Some(c.span()), "worker.container_concurrency", m)),
            }
        }

        for (i, entry) in raw.command.into_iter().enumerate() {
            let span = entry.span();
            let key = format!("command[{}]", i + 1);
            let line = lines.line(span.start);
            match command(entry.into_inner(), line, &config.acl) {
                Ok(c) => config.commands.push(c),
                Err(problems) => errors.extend(
                    problems
                        .into_iter()
                        .map(|(field, m)| at(Some(span.clone()), &format!("{key}{field}"), m)),
                ),
            }
        }

        let mut url = |raw: &Spanned<String>, key: &str, schemes: &[&str]| {
            let value = match expand_env(raw.get_ref(), &env) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(at(Some(raw.span()), key, e.to_string()));
                    return None;
                }
            };
            if !schemes
                .iter()
                .any(|s| value.starts_with(&format!("{s}://")))
            {
                errors.push(at(
                    Some(raw.span()),
                    key,
                    format!(
                        "expected a URL starting with {}://",
                        schemes.join(":// or ")
                    ),
                ));
                return None;
            }
            Some(Secret::new(value))
        };
        config.broker = raw
            .broker
            .and_then(|b| url(&b.url, "broker.url", &["amqp", "amqps"]))
            .map(|url| BrokerConfig {
                url,
                delivery_limit,
                publish_timeout,
            });
        config.store = raw
            .store
            .and_then(|s| url(&s.url, "store.url", &["redis", "rediss"]))
            .map(|url| StoreConfig {
                url,
                retention,
                reclaim_after,
            });

        if let Some(raw_ssh) = raw.ssh {
            match crate::ssh::ssh(raw_ssh, source) {
                Ok(ssh) => config.ssh = Some(ssh),
                Err(problems) => {
                    errors.extend(problems.into_iter().map(|(span, key, m)| at(span, &key, m)))
                }
            }
        }
        let raw_timed = crate::schedule::RawTimed {
            scheduler: raw.scheduler,
            schedule: raw.schedule,
            shipper: raw.shipper,
        };
        let timed = crate::schedule::load(raw_timed, &|o| lines.line(o), &env, &at, &mut errors);
        (config.scheduler, config.schedules, config.shippers) =
            (timed.scheduler, timed.schedules, timed.shippers);
        config.slack = raw
            .slack
            .and_then(|s| slack::slack(s, &config.bot.name, &at, &env, &mut errors));

        match (&config.broker, &config.store) {
            (Some(_), None) if errors.is_empty() => errors.push(at(
                None,
                "store",
                "[broker] is set but [store] is not: set both for durable jobs, or neither \
                 to run embedded"
                    .into(),
            )),
            (None, Some(_)) if errors.is_empty() => errors.push(at(
                None,
                "broker",
                "[store] is set but [broker] is not: set both for durable jobs, or neither \
                 to run embedded"
                    .into(),
            )),
            _ => {}
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// An error about a `[[command]]` entry of this file, for checks made by the roles
    /// (the bot compiling the catalog, for one).
    pub fn command_error(&self, index: usize, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.source.clone(),
            line: self.commands.get(index).map(|c| c.line),
            key: format!("command[{}]", index + 1),
            message: message.into(),
        }
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
fn plain_words(message: &str) -> String {
    message
        .trim_end()
        .replace("expected i64", "expected a whole number")
        .replace("expected usize", "expected a whole number")
        .replace("expected a sequence", "expected a list")
        .replace("expected a string", "expected a quoted string")
}

/// Checks one `[[command]]`; problems come back as (`.field`, message).
fn command(
    raw: RawCommand,
    line: usize,
    acl: &AclConfig,
) -> Result<CommandConfig, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let container = raw.container.map(|c| match crate::container::container(c) {
        Ok(c) => Some(c),
        Err(found) => {
            problems.extend(found);
            None
        }
    });
    let runs = match (raw.builtin, raw.native, container) {
        (Some(b), None, None) => Some(Runs::Builtin(b)),
        (None, Some(n), None) => Some(Runs::Native(n)),
        (None, None, Some(c)) => c.map(|c| Runs::Container(Box::new(c))),
        (None, None, None) => {
            problems.push((
                String::new(),
                "says nothing about what runs it: add `native = \"<task>\"`, \
                 `container = { image = \"...\" }` (or `builtin = \"<name>\"`)"
                    .to_string(),
            ));
            None
        }
        _ => {
            problems.push((
                String::new(),
                "has more than one of `builtin`, `native` and `container`: keep one".to_string(),
            ));
            None
        }
    };
    if raw.pattern.trim().is_empty() {
        problems.push((".pattern".into(), "is empty".into()));
    }
    if raw.help.trim().is_empty() {
        problems.push((
            ".help".into(),
            "is empty: say in one sentence what the command does".into(),
        ));
    }
    let allow = raw.allow.map(|list| {
        list.iter()
            .filter_map(|entry| match allow_entry(entry, acl) {
                Ok(e) => Some(e),
                Err(m) => {
                    problems.push((".allow".into(), m));
                    None
                }
            })
            .collect()
    });
    let timeout = raw.timeout.and_then(|t| match positive_duration(&t) {
        Ok(d) => Some(d),
        Err(m) => {
            problems.push((".timeout".into(), m));
            None
        }
    });
    let timeout = match &runs {
        Some(Runs::Container(c)) if c.timeout.is_some() && timeout.is_some() => {
            problems.push((
                ".container.timeout".into(),
                "and the command's `timeout` are both set: keep one".into(),
            ));
            timeout
        }
        Some(Runs::Container(c)) => timeout.or(c.timeout),
        _ => timeout,
    };
    match runs {
        Some(runs) if problems.is_empty() => Ok(CommandConfig {
            line,
            name: raw.name,
            pattern: raw.pattern,
            help: raw.help,
            section: raw.section.unwrap_or_default(),
            examples: raw.examples,
            runs,
            allow,
            timeout,
        }),
        _ => Err(problems),
    }
}

fn allow_entry(entry: &str, acl: &AclConfig) -> Result<AllowEntry, String> {
    match entry.split_once(':') {
        Some(("group", g)) if acl.groups.contains_key(g) => Ok(AllowEntry::Group(g.to_string())),
        Some(("group", g)) => Err(format!(
            "group \"{g}\" is not declared in [acl.groups] (declared: {})",
            if acl.groups.is_empty() {
                "none".to_string()
            } else {
                acl.groups.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        )),
        Some(("user", id)) if is_identity(id) => Ok(AllowEntry::User(id.to_string())),
        _ => Err(format!(
            "\"{entry}\" is neither \"group:<name>\" nor \"user:<adapter>:<user>\" \
             (e.g. user:console:alice)"
        )),
    }
}

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
    command: Vec<Spanned<RawCommand>>,
    broker: Option<RawBroker>,
    store: Option<RawStore>,
    ssh: Option<crate::ssh::RawSsh>,
    #[serde(default)]
    scheduler: crate::schedule::RawScheduler,
    #[serde(default)]
    schedule: Vec<Spanned<crate::schedule::RawSchedule>>,
    #[serde(default)]
    shipper: Vec<Spanned<crate::schedule::RawShipper>>,
    slack: Option<crate::slack::RawSlack>,
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
struct RawWorker {
    name: Option<String>,
    concurrency: Option<Spanned<i64>>,
    container_concurrency: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    name: Option<String>,
    pattern: String,
    help: String,
    section: Option<String>,
    #[serde(default)]
    examples: Vec<String>,
    builtin: Option<String>,
    native: Option<String>,
    container: Option<crate::container::RawContainer>,
    allow: Option<Vec<String>>,
    timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    url: Spanned<String>,
    delivery_limit: Option<Spanned<i64>>,
    publish_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Spanned<String>,
    retention: Option<Spanned<String>>,
    reclaim_after: Option<Spanned<String>>,
}
