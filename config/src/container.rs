//! The `container = { ... }` table of a `[[command]]`: a containerized task declared in
//! configuration alone.
//!
//! `argv` and `env` values are templates: `{slot}` is replaced by the value of that slot
//! of the command's pattern, inside one argv element or one environment value, never
//! through a shell. Whether each `{slot}` names a slot of the pattern is checked where
//! the pattern is compiled (the bot's command table), since this file does not parse
//! patterns; [`ContainerCommand::slot_references`] gives it what to check.
//!
//! A worker runs what the configuration says and trusts nothing else, so the
//! configuration is where a dangerous container is stopped: a network shared with the
//! host or another container, capabilities past [`ALLOWED_CAPABILITIES`], a limit past
//! its ceiling (`MAX_*` in [`crate::limits`]), root without `allow_root = true`, and
//! variables that choose what code runs ([`DENIED_ENV`]) are refused when the file is
//! loaded, each with the file, line and key. A slot's value that starts with `-` is
//! refused for argv when the command runs, unless the table says `dash_values = true`
//! (the command table does that check, where the values are known).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::fields::{bounded, positive_duration};
use crate::limits::{
    parse_size, ContainerLimits, OutputFormat, MAX_CPUS, MAX_MEMORY, MAX_OUTPUT_LIMIT, MAX_PIDS,
    MAX_TMPFS, MIN_MEMORY,
};

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
    /// `allow_root = true`: the entry asked for `user = "root"` (or uid 0 in any
    /// spelling) on purpose. Without it root is refused, so running as root is always a
    /// decision someone wrote down, never a slip.
    pub allow_root: bool,
    /// `dash_values = true`: a slot's value starting with `-` may reach argv. Without it
    /// such a value is refused when the command is run, because the program would read
    /// it as an option (`--help`, `-oProxyCommand=...`), not as the value it asked for.
    pub dash_values: bool,
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
    #[serde(default)]
    allow_root: bool,
    read_only: Option<bool>,
    tmpfs: Option<String>,
    output_limit: Option<String>,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    dash_values: bool,
}

/// The capabilities a task may be given back, without the `CAP_` prefix. Each is what
/// some ordinary task needs (raw sockets for a scanner or ping, a low port, a daemon
/// that drops to its own user) and none reaches past the container: the others
/// (`SYS_ADMIN`, `SYS_MODULE`, `SYS_PTRACE`, `DAC_READ_SEARCH`, `NET_ADMIN`, `BPF`, …)
/// are known ways out of it or into the host's kernel.
pub const ALLOWED_CAPABILITIES: [&str; 6] = [
    "NET_RAW",
    "NET_BIND_SERVICE",
    "CHOWN",
    "SETUID",
    "SETGID",
    "KILL",
];

/// Environment variables that change how a program, its loader or its interpreter
/// behaves whatever the image holds: with one of them a command's author, or a slot's
/// value, decides what code runs, not the image. Names starting with [`DENIED_ENV_PREFIXES`]
/// are refused too.
pub const DENIED_ENV: [&str; 14] = [
    "PATH",
    "HOME",
    "SHELL",
    "IFS",
    "BASH_ENV",
    "ENV",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "NODE_OPTIONS",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "JAVA_TOOL_OPTIONS",
];

/// Prefixes of the dynamic loaders' variables (`LD_PRELOAD`, `LD_LIBRARY_PATH`,
/// `LD_AUDIT`, macOS's `DYLD_INSERT_LIBRARIES`): every one of them loads or finds code.
pub const DENIED_ENV_PREFIXES: [&str; 2] = ["LD_", "DYLD_"];

/// A size as the configuration writes it (`16g`, `64m`), for the bounds in messages.
fn written_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    match bytes {
        b if b % (1024 * MIB) == 0 => format!("{}g", b / (1024 * MIB)),
        b if b % MIB == 0 => format!("{}m", b / MIB),
        b if b % 1024 == 0 => format!("{}k", b / 1024),
        b => b.to_string(),
    }
}

/// Why `network` may not be attached, if it may not. `none` and an absent key mean no
/// network; `bridge` and a user-defined network are separate from the host. `host`
/// shares the worker's own network stack and `container:<name>` another container's,
/// so neither is accepted, nor any other mode written with a colon.
fn network_refusal(network: &str) -> Option<String> {
    if network == "host" {
        Some(
            "\"host\" would give the container the worker's own network (its interfaces, \
             its listening services, its localhost); name a Docker network such as \"bridge\""
                .into(),
        )
    } else if network.contains(':') {
        Some(format!(
            "\"{network}\" would share another container's network (and whatever that one \
             can reach); name a Docker network such as \"bridge\""
        ))
    } else if network.trim().is_empty() {
        Some("is empty: leave it out for no network, or name a Docker network".into())
    } else if !network
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some(format!(
            "\"{network}\" is not a network name: letters, digits, '-', '_' and '.', \
             e.g. \"bridge\""
        ))
    } else {
        None
    }
}

/// Whether `user` (`name`, `uid`, `name:group`, `uid:gid`) runs as uid 0, in any
/// spelling Docker reads as root: `root`, `0`, `00`, `0:0`, `root:1`.
fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or_default().trim();
    name.eq_ignore_ascii_case("root")
        || (!name.is_empty()
            && name.chars().all(|c| c.is_ascii_digit())
            && name.parse() == Ok(0u32))
}

/// Why an environment variable may not be set, if it may not.
fn env_refusal(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let well_formed = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Some(
            "is not a variable name: a letter or '_', then letters, digits and '_'".into(),
        );
    }
    let upper = name.to_ascii_uppercase();
    let denied = DENIED_ENV.contains(&upper.as_str())
        || DENIED_ENV_PREFIXES.iter().any(|p| upper.starts_with(p));
    denied.then(|| {
        format!(
            "{name} changes which code a program, its loader or its interpreter runs, \
             whatever the image holds; set it in the image instead"
        )
    })
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
    let mut size = |key: &str, raw: &Option<String>, max: u64, slot: &mut u64| {
        if let Some(text) = raw {
            match parse_size(text) {
                Ok(bytes) if bytes > max => problem(
                    key,
                    format!(
                        "\"{text}\" is more than {}, the most a task may have",
                        written_size(max)
                    ),
                ),
                Ok(bytes) => *slot = bytes,
                Err(e) => problem(key, e.to_string()),
            }
        }
    };
    size("memory", &raw.memory, MAX_MEMORY, &mut limits.memory);
    size("tmpfs", &raw.tmpfs, MAX_TMPFS, &mut limits.tmpfs);
    size(
        "output_limit",
        &raw.output_limit,
        MAX_OUTPUT_LIMIT,
        &mut limits.output_limit,
    );
    if limits.memory < MIN_MEMORY {
        problems.push((
            ".container.memory".into(),
            "is below 6m, the least Docker accepts".into(),
        ));
    }
    if let Some(cpus) = raw.cpus {
        if !(cpus.is_finite() && cpus > 0.0) {
            problems.push((
                ".container.cpus".into(),
                format!("{cpus} is not a number of CPUs greater than 0, e.g. 0.5 or 2"),
            ));
        } else if cpus > MAX_CPUS {
            problems.push((
                ".container.cpus".into(),
                format!("{cpus} is more than {MAX_CPUS} CPUs, the most a task may have"),
            ));
        } else {
            limits.nano_cpus = (cpus * 1e9).round() as u64;
        }
    }
    if let Some(pids) = raw.pids {
        match bounded(pids, 1..=MAX_PIDS) {
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
        Some(n) => match network_refusal(n) {
            Some(m) => problems.push((".container.network".into(), m)),
            None => limits.network = Some(n.to_string()),
        },
    }
    limits.pull = raw.pull.unwrap_or(limits.pull);
    limits.read_only = raw.read_only.unwrap_or(limits.read_only);
    match raw.user {
        Some(u) if u.trim().is_empty() => problems.push((
            ".container.user".into(),
            "is empty: leave it out to run as the image's non-root user (or nobody)".into(),
        )),
        Some(u) if is_root(&u) && !raw.allow_root => problems.push((
            ".container.user".into(),
            format!(
                "\"{u}\" is root (uid 0), which owns whatever the container can reach and is \
                 one kernel bug from the host; add `allow_root = true` if the task truly needs it"
            ),
        )),
        u => limits.user = u,
    }
    for cap in &raw.capabilities {
        let upper = cap.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            problems.push((
                ".container.capabilities".into(),
                format!("\"{cap}\" is not a capability name such as NET_RAW"),
            ));
        } else if !ALLOWED_CAPABILITIES.contains(&name) {
            problems.push((
                ".container.capabilities".into(),
                format!(
                    "\"{cap}\" would undo the isolation; a task may be given back only {}",
                    ALLOWED_CAPABILITIES.join(", ")
                ),
            ));
        } else if !limits.capabilities.iter().any(|c| c == name) {
            limits.capabilities.push(name.to_string());
        }
    }
    for name in raw.env.keys() {
        if let Some(m) = env_refusal(name) {
            problems.push((format!(".container.env.{name}"), m));
        }
    }
    if problems.is_empty() {
        Ok(ContainerCommand {
            image: raw.image,
            argv: raw.argv,
            env: raw.env,
            limits,
            timeout,
            allow_root: raw.allow_root,
            dash_values: raw.dash_values,
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
                    network = \"bridge\", timeout = \"30s\" }\nallow = [\"everyone\"]\n";
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

    /// The errors of one `[[command]]` whose container table is `table`, on line 4.
    fn errors_of(table: &str) -> String {
        let text = format!(
            "[jobs]\ntimeout = \"1m\"\n\n[[command]]\npattern = \"scan {{host:hostname}}\"\n\
             help = \"Scans\"\ncontainer = {{ image = \"scan:1\", {table} }}\n\
             allow = [\"everyone\"]\n"
        );
        match crate::Config::parse("octobox.toml", &text, |_| None) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    /// The limits of a container table that loads.
    fn limits_of(table: &str) -> ContainerCommand {
        let text = format!(
            "[[command]]\npattern = \"scan {{host:hostname}}\"\nhelp = \"Scans\"\n\
             container = {{ image = \"scan:1\", {table} }}\nallow = [\"everyone\"]\n"
        );
        let config = crate::Config::parse("octobox.toml", &text, |_| None)
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        let crate::Runs::Container(c) = &config.commands[0].runs else {
            panic!("a container command");
        };
        (**c).clone()
    }

    fn assert_refused(table: &str, expected: &str) {
        let errors = errors_of(table);
        let expected = format!("octobox.toml:4: command[1].container.{expected}");
        assert!(errors.contains(&expected), "{table}\n{expected}\n{errors}");
    }

    #[test]
    fn networks_shared_with_the_host_or_another_container_are_refused() {
        assert_refused(
            "network = \"host\"",
            "network: \"host\" would give the container the worker's own network",
        );
        for n in ["container:db", "container:3f2a", "ns:/proc/1/ns/net"] {
            assert_refused(
                &format!("network = \"{n}\""),
                &format!("network: \"{n}\" would share another container's network"),
            );
        }
        assert_refused(
            "network = \"my net\"",
            "network: \"my net\" is not a network name",
        );
        assert_eq!(limits_of("network = \"none\"").limits.network, None);
        for n in ["bridge", "scan-net", "team_1.internal"] {
            let c = limits_of(&format!("network = \"{n}\""));
            assert_eq!(c.limits.network.as_deref(), Some(n));
        }
    }

    #[test]
    fn only_the_capabilities_ordinary_tasks_need_are_given_back() {
        for cap in [
            "SYS_ADMIN",
            "CAP_SYS_MODULE",
            "sys_ptrace",
            "DAC_READ_SEARCH",
            "NET_ADMIN",
            "BPF",
            "ALL",
        ] {
            assert_refused(
                &format!("capabilities = [\"{cap}\"]"),
                &format!(
                    "capabilities: \"{cap}\" would undo the isolation; a task may be given back only \
                     NET_RAW, NET_BIND_SERVICE, CHOWN, SETUID, SETGID, KILL"
                ),
            );
        }
        assert_refused(
            "capabilities = [\"NET RAW\"]",
            "capabilities: \"NET RAW\" is not a capability name",
        );
        let c = limits_of("capabilities = [\"NET_RAW\", \"cap_net_bind_service\", \"Cap_Chown\", \"SETUID\", \"setgid\", \"KILL\"]");
        assert_eq!(c.limits.capabilities, ALLOWED_CAPABILITIES);
    }

    #[test]
    fn every_limit_has_a_ceiling_named_in_its_message() {
        assert_refused(
            "memory = \"1000g\"",
            "memory: \"1000g\" is more than 16g, the most a task may have",
        );
        assert_refused("memory = \"17g\"", "memory: \"17g\" is more than 16g");
        assert_refused("tmpfs = \"5g\"", "tmpfs: \"5g\" is more than 4g");
        assert_refused(
            "output_limit = \"65m\"",
            "output_limit: \"65m\" is more than 64m",
        );
        assert_refused(
            "pids = 4097",
            "pids: 4097 is not a whole number from 1 to 4096",
        );
        assert_refused("pids = 0", "pids: 0 is not a whole number from 1 to 4096");
        assert_refused("cpus = 65", "cpus: 65 is more than 64 CPUs");
        assert_refused("cpus = 0", "cpus: 0 is not a number of CPUs greater than 0");
        assert_refused("memory = \"4m\"", "memory: is below 6m");
        let c = limits_of(
            "memory = \"16g\", tmpfs = \"4g\", output_limit = \"64m\", pids = 4096, cpus = 64",
        );
        assert_eq!(c.limits.memory, MAX_MEMORY);
        assert_eq!(c.limits.tmpfs, MAX_TMPFS);
        assert_eq!(c.limits.output_limit, MAX_OUTPUT_LIMIT);
        assert_eq!(c.limits.pids, MAX_PIDS);
        assert_eq!(c.limits.nano_cpus, 64_000_000_000);
    }

    #[test]
    fn root_in_any_spelling_must_be_asked_for() {
        for user in [
            "0",
            "0:0",
            "root",
            "root:root",
            "0:1",
            "00",
            "root:0",
            "ROOT",
        ] {
            assert_refused(
                &format!("user = \"{user}\""),
                &format!("user: \"{user}\" is root (uid 0)"),
            );
            let c = limits_of(&format!("user = \"{user}\", allow_root = true"));
            assert_eq!(c.limits.user.as_deref(), Some(user));
            assert!(c.allow_root);
        }
        for user in ["1000", "1000:0", "nobody", "65534:65534", "10"] {
            let c = limits_of(&format!("user = \"{user}\""));
            assert_eq!(c.limits.user.as_deref(), Some(user));
            assert!(!c.allow_root);
        }
    }

    #[test]
    fn variables_that_choose_what_code_runs_are_refused() {
        for name in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "LD_AUDIT",
            "LD_BIND_NOW",
            "PATH",
            "HOME",
            "SHELL",
            "IFS",
            "BASH_ENV",
            "ENV",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "NODE_OPTIONS",
            "PERL5OPT",
            "RUBYOPT",
            "JAVA_TOOL_OPTIONS",
            "DYLD_INSERT_LIBRARIES",
            "ld_preload",
        ] {
            assert_refused(
                &format!("env = {{ {name} = \"x\" }}"),
                &format!("env.{name}: {name} changes which code a program"),
            );
        }
        for name in ["1X", "A-B", "A.B"] {
            assert_refused(
                &format!("env = {{ \"{name}\" = \"x\" }}"),
                &format!("env.{name}: is not a variable name"),
            );
        }
        let c = limits_of("env = { TARGET = \"{host}\", _X1 = \"1\", LDAP_URL = \"ldap://x\" }");
        assert_eq!(c.env.len(), 3);
    }

    #[test]
    fn dash_values_is_read_and_off_by_default() {
        assert!(!limits_of("argv = [\"{host}\"]").dash_values);
        assert!(limits_of("argv = [\"{host}\"], dash_values = true").dash_values);
    }
}
