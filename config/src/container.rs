//! The `container = { ... }` table of a `[[command]]`: a containerized task declared in
//! configuration alone.
//!
//! `argv` and `env` values are templates: `{slot}` is replaced by the value of that slot
//! of the command's pattern, inside one argv element or one environment value, never
//! through a shell. Whether each `{slot}` names a slot of the pattern is checked where
//! the pattern is compiled (the bot's command table), since this file does not parse
//! patterns; [`ContainerCommand::slot_references`] gives it what to check.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::fields::{bounded, positive_duration};
use crate::limits::{parse_size, ContainerLimits, OutputFormat};

/// A validated `container` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCommand {
    pub image: String,
    /// Templates, one per argv element.
    pub argv: Vec<String>,
    /// Templates, one per variable.
    pub env: BTreeMap<String, String>,
    pub limits: ContainerLimits,
    /// How long the container may run (the command's job timeout).
    pub timeout: Option<Duration>,
}

impl ContainerCommand {
    /// Every `{slot}` the templates refer to, with the key it appears under
    /// (`container.argv[2]`, `container.env.TARGET`).
    pub fn slot_references(&self) -> Vec<(String, String)> {
        let argv = self
            .argv
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("container.argv[{}]", i + 1), t));
        let env = self
            .env
            .iter()
            .map(|(k, t)| (format!("container.env.{k}"), t));
        argv.chain(env)
            .flat_map(|(key, t)| {
                template_slots(t)
                    .into_iter()
                    .map(move |slot| (key.clone(), slot))
            })
            .collect()
    }
}

/// The slot names `{name}` in `template`; braces around anything else are literal.
pub fn template_slots(template: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        match rest.find('}') {
            Some(close) if is_slot_name(&rest[..close]) => {
                found.push(rest[..close].to_string());
                rest = &rest[close + 1..];
            }
            _ => {}
        }
    }
    found
}

/// `template` with each `{name}` replaced by `value(name)` (empty when it gives `None`:
/// an optional slot left out).
pub fn fill_template(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_slot_name(&after[..close]) => {
                out.push_str(&value(&after[..close]).unwrap_or_default());
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_slot_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawContainer {
    image: String,
    #[serde(default)]
    argv: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    output: Option<String>,
    memory: Option<String>,
    cpus: Option<f64>,
    pids: Option<i64>,
    timeout: Option<String>,
    network: Option<String>,
    pull: Option<bool>,
    user: Option<String>,
    read_only: Option<bool>,
    tmpfs: Option<String>,
    output_limit: Option<String>,
    #[serde(default)]
    capabilities: Vec<String>,
}

/// Checks one `container` table; problems come back as (`.container.<key>`, message).
pub(super) fn container(raw: RawContainer) -> Result<ContainerCommand, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| {
        problems.push((format!(".container.{key}"), message));
    };
    let mut limits = ContainerLimits::default();
    if raw.image.trim().is_empty() || raw.image.chars().any(char::is_whitespace) {
        problem(
            "image",
            format!(
                "\"{}\" is not an image reference: write repository:tag, e.g. example/portscan:1.2",
                raw.image
            ),
        );
    }
    match raw.output.as_deref() {
        None | Some("text") => {}
        Some("base64") => limits.output = OutputFormat::Base64,
        Some(other) => problem(
            "output",
            format!("\"{other}\" is neither \"text\" nor \"base64\""),
        ),
    }
    let mut size = |key: &str, raw: &Option<String>, slot: &mut u64| {
        if let Some(text) = raw {
            match parse_size(text) {
                Ok(bytes) => *slot = bytes,
                Err(e) => problem(key, e.to_string()),
            }
        }
    };
    size("memory", &raw.memory, &mut limits.memory);
    size("tmpfs", &raw.tmpfs, &mut limits.tmpfs);
    size("output_limit", &raw.output_limit, &mut limits.output_limit);
    if limits.memory < 6 * 1024 * 1024 {
        problems.push((
            ".container.memory".into(),
            "is below 6m, the least Docker accepts".into(),
        ));
    }
    if let Some(cpus) = raw.cpus {
        if cpus.is_finite() && cpus > 0.0 && cpus <= 1024.0 {
            limits.nano_cpus = (cpus * 1e9).round() as u64;
        } else {
            problems.push((
                ".container.cpus".into(),
                format!("{cpus} is not a number of CPUs greater than 0, e.g. 0.5 or 2"),
            ));
        }
    }
    if let Some(pids) = raw.pids {
        match bounded(pids, 1..=100_000) {
            Ok(n) => limits.pids = n,
            Err(m) => problems.push((".container.pids".into(), m)),
        }
    }
    let timeout = raw.timeout.and_then(|t| match positive_duration(&t) {
        Ok(d) => Some(d),
        Err(m) => {
            problems.push((".container.timeout".into(), m));
            None
        }
    });
    match raw.network.as_deref() {
        None | Some("none") => {}
        Some("host") => problems.push((
            ".container.network".into(),
            "\"host\" would give the container the worker's own network; name a Docker \
             network such as \"bridge\""
                .into(),
        )),
        Some(n) if n.trim().is_empty() => problems.push((
            ".container.network".into(),
            "is empty: leave it out for no network, or name a Docker network".into(),
        )),
        Some(n) => limits.network = Some(n.to_string()),
    }
    limits.pull = raw.pull.unwrap_or(limits.pull);
    limits.read_only = raw.read_only.unwrap_or(limits.read_only);
    match raw.user {
        Some(u) if u.trim().is_empty() => problems.push((
            ".container.user".into(),
            "is empty: leave it out to run as the image's non-root user (or nobody)".into(),
        )),
        u => limits.user = u,
    }
    for cap in &raw.capabilities {
        let name = cap.strip_prefix("CAP_").unwrap_or(cap);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            problems.push((
                ".container.capabilities".into(),
                format!("\"{cap}\" is not a capability name such as NET_RAW"),
            ));
        } else if name == "ALL" || name == "SYS_ADMIN" {
            problems.push((
                ".container.capabilities".into(),
                format!("\"{cap}\" would undo the isolation; name the capabilities the task needs"),
            ));
        } else {
            limits.capabilities.push(name.to_string());
        }
    }
    for name in raw.env.keys() {
        if name.is_empty() || name.contains('=') {
            problems.push((
                format!(".container.env.{name}"),
                "is not a variable name".into(),
            ));
        }
    }
    if problems.is_empty() {
        Ok(ContainerCommand {
            image: raw.image,
            argv: raw.argv,
            env: raw.env,
            limits,
            timeout,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_whole_values_and_leave_other_braces_alone() {
        let filled = fill_template("--host={host} {not a slot} {}", |n| {
            (n == "host").then(|| "; rm -rf /".to_string())
        });
        assert_eq!(filled, "--host=; rm -rf / {not a slot} {}");
        assert_eq!(template_slots("{a}-{b}{"), vec!["a", "b"]);
        assert_eq!(fill_template("[{missing}]", |_| None), "[]");
    }

    #[test]
    fn every_bad_key_of_a_container_table_names_file_line_and_key() {
        let text = "[jobs]\ntimeout = \"1m\"\n\n[[command]]\npattern = \"scan {host:hostname}\"\n\
                    help = \"Scans\"\ntimeout = \"1m\"\ncontainer = { image = \"scan:1\", output = \"html\", \
                    memory = \"lots\", cpus = -1, network = \"host\", timeout = \"2m\" }\n";
        let errors = crate::Config::parse("octobox.toml", text, |_| None)
            .unwrap_err()
            .to_string();
        for expected in [
            "octobox.toml:4: command[1].container.output: \"html\" is neither \"text\" nor \"base64\"",
            "octobox.toml:4: command[1].container.memory: \"lots\" is not a size",
            "octobox.toml:4: command[1].container.cpus: -1 is not a number of CPUs",
            "octobox.toml:4: command[1].container.network: \"host\" would give",
        ] {
            assert!(errors.contains(expected), "{expected}\n{errors}");
        }
    }

    #[test]
    fn a_valid_table_relaxes_only_what_it_names() {
        let text = "[[command]]\npattern = \"shot\"\nhelp = \"Shoots\"\n\
                    container = { image = \"shot:1\", output = \"base64\", memory = \"64m\", \
                    network = \"bridge\", timeout = \"30s\" }\n";
        let config = crate::Config::parse("octobox.toml", text, |_| None).unwrap();
        let command = &config.commands[0];
        assert_eq!(command.timeout, Some(Duration::from_secs(30)));
        let crate::Runs::Container(c) = &command.runs else {
            panic!("a container command");
        };
        assert_eq!(c.limits.output, OutputFormat::Base64);
        assert_eq!(c.limits.memory, 64 * 1024 * 1024);
        assert_eq!(c.limits.network.as_deref(), Some("bridge"));
        assert!(c.limits.read_only && !c.limits.pull && c.limits.user.is_none());
    }
}
