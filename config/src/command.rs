//! The `[[command]]` entries: what runs each command, who may run it, its timeout.
//!
//! Patterns are not compiled here (the lexicon's catalog is built by the roles, with the
//! built-in declarations this crate does not know); [`Config::command_error`] lets them
//! report what they find with the entry's line, like every error of this crate.

use serde::Deserialize;
use toml::Spanned;

use crate::container::{self, RawContainer};
use crate::error::Report;
use crate::fields::{bounded, is_identity, positive_duration};
use crate::{
    AclConfig, AllowEntry, ApprovalConfig, CommandConfig, Config, ConfigError, FanOutConfig, Runs,
};

impl Config {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommand {
    name: Option<String>,
    pattern: String,
    help: String,
    section: Option<String>,
    #[serde(default)]
    examples: Vec<String>,
    builtin: Option<String>,
    native: Option<String>,
    container: Option<RawContainer>,
    allow: Option<Vec<String>>,
    timeout: Option<String>,
    max_running: Option<i64>,
    max_per_minute: Option<i64>,
    approval: Option<RawApproval>,
    fan_out: Option<RawFanOut>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFanOut {
    group: String,
    host: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApproval {
    by: String,
    ttl: Option<String>,
    #[serde(default)]
    reason: bool,
    channel: Option<String>,
}

/// Checks every `[[command]]`; `allow` lists are checked against the groups of `acl`.
pub(crate) fn commands(
    raw: Vec<Spanned<RawCommand>>,
    acl: &AclConfig,
    report: &mut Report,
) -> Vec<CommandConfig> {
    let mut commands = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        let span = entry.span();
        let line = report.line(span.start);
        match command(entry.into_inner(), line, acl) {
            Ok(c) => commands.push(c),
            Err(problems) => report.entry(span, &format!("command[{}]", i + 1), problems),
        }
    }
    commands
}

/// Checks one `[[command]]`; problems come back as (`.field`, message).
fn command(
    raw: RawCommand,
    line: usize,
    acl: &AclConfig,
) -> Result<CommandConfig, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let container = raw.container.map(|c| match container::container(c) {
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
    let is_builtin = matches!(runs, Some(Runs::Builtin(_)));
    if raw.allow.is_none() && acl.default.is_none() && !is_builtin {
        problems.push((
            ".allow".into(),
            "is missing, and [acl] states no default: say who may run it, e.g. \
             allow = [\"group:ops\"] (or [\"everyone\"]), or set [acl] default = \"deny\" \
             (or \"allow\") for commands without a list"
                .into(),
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
    let mut count = |key: &str, value: Option<i64>| {
        value.and_then(|n| match bounded::<u32>(n, 1..=100_000) {
            Ok(n) => Some(n),
            Err(m) => {
                problems.push((key.to_string(), m));
                None
            }
        })
    };
    let max_running = count(".max_running", raw.max_running);
    let max_per_minute = count(".max_per_minute", raw.max_per_minute);
    let approval = raw
        .approval
        .and_then(|a| match approval(a, acl, is_builtin) {
            Ok(a) => Some(a),
            Err(found) => {
                problems.extend(found);
                None
            }
        });
    let fan_out = raw.fan_out.map(|f| {
        let fan_out = FanOutConfig {
            group: f.group,
            host: f
                .host
                .unwrap_or_else(|| FanOutConfig::DEFAULT_HOST.to_string()),
        };
        if is_builtin {
            problems.push((
                ".fan_out".into(),
                "is for commands that run jobs; a built-in is answered at once".into(),
            ));
        } else if fan_out.group == fan_out.host {
            problems.push((
                ".fan_out.host".into(),
                "is the group's slot: name the argument each job gets its host in \
                 (default \"host\")"
                    .into(),
            ));
        }
        fan_out
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
            max_running,
            max_per_minute,
            approval,
            fan_out,
        }),
        _ => Err(problems),
    }
}

/// Checks a command's `approval` table; problems come back as (`.approval.field`, message).
fn approval(
    raw: RawApproval,
    acl: &AclConfig,
    is_builtin: bool,
) -> Result<ApprovalConfig, Vec<(String, String)>> {
    let mut problems = Vec::new();
    if is_builtin {
        problems.push((
            ".approval".into(),
            "is for commands that run as jobs, not built-ins".into(),
        ));
    }
    let by = match allow_entry(&raw.by, acl) {
        Ok(AllowEntry::Everyone) => {
            problems.push((
                ".approval.by".into(),
                "cannot be \"everyone\": name the group (or user) whose yes counts, \
                 e.g. by = \"group:leads\""
                    .into(),
            ));
            None
        }
        Ok(by) => Some(by),
        Err(m) => {
            problems.push((".approval.by".into(), m));
            None
        }
    };
    let ttl = match raw.ttl.as_deref().map(positive_duration) {
        None => Some(ApprovalConfig::DEFAULT_TTL),
        Some(Ok(d)) if (10..=7 * 86_400).contains(&d.as_secs()) => Some(d),
        Some(Ok(_)) => {
            problems.push((
                ".approval.ttl".into(),
                "must be from 10s to 7d (default 15m)".into(),
            ));
            None
        }
        Some(Err(m)) => {
            problems.push((".approval.ttl".into(), m));
            None
        }
    };
    if let Some(channel) = &raw.channel {
        let valid = !channel.is_empty()
            && channel.len() <= 64
            && channel.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid {
            problems.push((
                ".approval.channel".into(),
                "must be a Slack channel id such as C0123ABCD".into(),
            ));
        }
    }
    match (by, ttl) {
        (Some(by), Some(ttl)) if problems.is_empty() => Ok(ApprovalConfig {
            by,
            ttl,
            reason: raw.reason,
            channel: raw.channel,
        }),
        _ => Err(problems),
    }
}

/// One `allow` entry, its group checked against `acl`.
pub(crate) fn allow_entry(entry: &str, acl: &AclConfig) -> Result<AllowEntry, String> {
    if entry == "everyone" {
        return Ok(AllowEntry::Everyone);
    }
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
            "\"{entry}\" is neither \"group:<name>\", \"user:<adapter>:<user>\" \
             (e.g. user:console:alice) nor \"everyone\""
        )),
    }
}
