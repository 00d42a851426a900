//! The `[tasks]` section: the native tasks every worker has from day one (`dns`, `whois`,
//! `http_check`, `tls_expiry`, `walk_site`), which of them are on, who may run their
//! commands, and their settings (resolvers, the WHOIS server, timeouts, redirect and
//! referral limits, a walk's bounds).
//!
//! Each task's command is declared by default (`commands/src/tasks.toml`); a task
//! switched off here is neither declared nor runnable by any command of the file. A
//! worker reads this section from its own file: what it runs, and how, is its own say.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::command::allow_entry;
use crate::error::Report;
use crate::fields::{bounded, duration_at_most, is_name};
use crate::{AclConfig, AllowEntry};

/// The day-one tasks, by the name a command's `native` gives them.
pub const DAY_ONE_TASKS: [&str; 5] = ["dns", "whois", "http_check", "tls_expiry", "walk_site"];

/// The most resolvers `[tasks.dns] resolvers` may list: each is asked on every lookup.
pub const MAX_RESOLVERS: usize = 16;

/// The longest a task's `timeout` may be.
pub const MAX_TASK_TIMEOUT: Duration = Duration::from_secs(60);

/// The deepest `walk site` may go: `[tasks.walk_site] max_depth` is at most this, and
/// so is the command's `{depth}` (`int(0..10)` in `commands/src/tasks.toml`).
pub const MAX_WALK_DEPTH: u32 = 10;

/// The most URLs one walk may fetch (`[tasks.walk_site] max_pages`).
pub const MAX_WALK_PAGES: u32 = 5000;

/// The most pages a walk may fetch at once (`[tasks.walk_site] concurrency`): it is one
/// job among others on a worker, and a guest on the site it walks.
pub const MAX_WALK_CONCURRENCY: u32 = 16;

/// The longest a whole walk may take (`[tasks.walk_site] deadline`): well inside the
/// default job timeout ([jobs] timeout, 10m), so that its report lands.
pub const MAX_WALK_DEADLINE: Duration = Duration::from_secs(5 * 60);

/// A validated `[tasks]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TasksConfig {
    /// `allow`: who may run the day-one commands, unless a task says otherwise.
    pub allow: Vec<AllowEntry>,
    /// `ca_file`: a PEM file of CA certificates trusted besides the system's, for
    /// `http check` and `tls expiry` (a private CA's services).
    pub ca_file: Option<PathBuf>,
    pub dns: DnsSettings,
    pub whois: WhoisSettings,
    pub http_check: HttpCheckSettings,
    pub tls_expiry: TlsExpirySettings,
    pub walk_site: WalkSiteSettings,
}

impl Default for TasksConfig {
    fn default() -> Self {
        TasksConfig {
            allow: vec![AllowEntry::Everyone],
            ca_file: None,
            dns: DnsSettings::default(),
            whois: WhoisSettings::default(),
            http_check: HttpCheckSettings::default(),
            tls_expiry: TlsExpirySettings::default(),
            walk_site: WalkSiteSettings::default(),
        }
    }
}

impl TasksConfig {
    /// Whether `task` is on: `Some` for a day-one task, `None` for any other name.
    pub fn enabled(&self, task: &str) -> Option<bool> {
        self.switch(task).map(|(enabled, _)| enabled)
    }

    /// Who may run `task`'s default command: its own `allow`, else `[tasks] allow`.
    pub fn allow_for(&self, task: &str) -> &[AllowEntry] {
        match self.switch(task) {
            Some((_, Some(allow))) => allow,
            _ => &self.allow,
        }
    }

    fn switch(&self, task: &str) -> Option<(bool, Option<&[AllowEntry]>)> {
        let (enabled, allow) = match task {
            "dns" => (self.dns.enabled, &self.dns.allow),
            "whois" => (self.whois.enabled, &self.whois.allow),
            "http_check" => (self.http_check.enabled, &self.http_check.allow),
            "tls_expiry" => (self.tls_expiry.enabled, &self.tls_expiry.allow),
            "walk_site" => (self.walk_site.enabled, &self.walk_site.allow),
            _ => return None,
        };
        Some((enabled, allow.as_deref()))
    }
}

/// `[tasks.dns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    pub enabled: bool,
    pub allow: Option<Vec<AllowEntry>>,
    /// Asked all at once, answers shown in this order.
    pub resolvers: Vec<ResolverConfig>,
    /// How long one resolver may take to answer.
    pub timeout: Duration,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            enabled: true,
            allow: None,
            resolvers: vec![ResolverConfig {
                name: "system".to_string(),
                address: ResolverAddress::System,
            }],
            timeout: Duration::from_secs(3),
        }
    }
}

/// One entry of `resolvers`: `"system"`, `"127.0.0.1:5353"` or `"office=10.0.0.53"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// How answers name it: what comes before `=`, else the address as written.
    pub name: String,
    pub address: ResolverAddress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolverAddress {
    /// The resolvers of the worker's host (`/etc/resolv.conf`).
    System,
    /// A resolver at this address (port 53 unless written).
    At(SocketAddr),
}

/// `[tasks.whois]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoisSettings {
    pub enabled: bool,
    pub allow: Option<Vec<AllowEntry>>,
    /// The server asked first, `host:port`; its referrals are followed from there.
    pub server: String,
    /// How long one server may take to answer in full.
    pub timeout: Duration,
    /// How many referrals are followed after the first server.
    pub max_referrals: u32,
}

impl Default for WhoisSettings {
    fn default() -> Self {
        WhoisSettings {
            enabled: true,
            allow: None,
            server: "whois.iana.org:43".to_string(),
            timeout: Duration::from_secs(10),
            max_referrals: 3,
        }
    }
}

/// `[tasks.http_check]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheckSettings {
    pub enabled: bool,
    pub allow: Option<Vec<AllowEntry>>,
    /// How long the whole check may take, redirects included.
    pub timeout: Duration,
    /// How many redirects are followed before the check stops and says where the next
    /// one pointed.
    pub max_redirects: u32,
}

impl Default for HttpCheckSettings {
    fn default() -> Self {
        HttpCheckSettings {
            enabled: true,
            allow: None,
            timeout: Duration::from_secs(10),
            max_redirects: 5,
        }
    }
}

/// `[tasks.tls_expiry]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsExpirySettings {
    pub enabled: bool,
    pub allow: Option<Vec<AllowEntry>>,
    /// How long connecting and the handshake may take together.
    pub timeout: Duration,
}

impl Default for TlsExpirySettings {
    fn default() -> Self {
        TlsExpirySettings {
            enabled: true,
            allow: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// `[tasks.walk_site]`: the bounds of one `walk site`. Every one of them is said in the
/// report when it stopped the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkSiteSettings {
    pub enabled: bool,
    pub allow: Option<Vec<AllowEntry>>,
    /// How long one URL may take: connecting, the answer and its body.
    pub timeout: Duration,
    /// How long the whole walk may take; what was not fetched by then is counted.
    pub deadline: Duration,
    /// The deepest a walk may be asked to go, in links from the first page (a walk
    /// goes 2 deep unless asked, never deeper than this).
    pub max_depth: u32,
    /// The most URLs one walk fetches, pages and resources together.
    pub max_pages: u32,
    /// How many URLs are fetched at once.
    pub concurrency: u32,
}

impl Default for WalkSiteSettings {
    fn default() -> Self {
        WalkSiteSettings {
            enabled: true,
            allow: None,
            timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(60),
            max_depth: 5,
            max_pages: 200,
            concurrency: 4,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTasks {
    allow: Option<Spanned<Vec<String>>>,
    ca_file: Option<Spanned<String>>,
    #[serde(default)]
    dns: RawDns,
    #[serde(default)]
    whois: RawWhois,
    #[serde(default)]
    http_check: RawHttpCheck,
    #[serde(default)]
    tls_expiry: RawTlsExpiry,
    #[serde(default)]
    walk_site: RawWalkSite,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDns {
    enabled: Option<bool>,
    allow: Option<Spanned<Vec<String>>>,
    resolvers: Option<Spanned<Vec<Spanned<String>>>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWhois {
    enabled: Option<bool>,
    allow: Option<Spanned<Vec<String>>>,
    server: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    max_referrals: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttpCheck {
    enabled: Option<bool>,
    allow: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    max_redirects: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTlsExpiry {
    enabled: Option<bool>,
    allow: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWalkSite {
    enabled: Option<bool>,
    allow: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    deadline: Option<Spanned<String>>,
    max_depth: Option<Spanned<i64>>,
    max_pages: Option<Spanned<i64>>,
    concurrency: Option<Spanned<i64>>,
}

/// Checks `[tasks]`; `allow` lists are checked against the groups of `acl`, `ca_file` is
/// read from the configuration file's folder when relative.
pub(crate) fn tasks(raw: RawTasks, acl: &AclConfig, report: &mut Report) -> TasksConfig {
    let default = TasksConfig::default();
    let allow = |raw: &Option<Spanned<Vec<String>>>, key: &str, report: &mut Report| {
        report.read(raw, key, |list| {
            list.iter()
                .map(|entry| allow_entry(entry, acl))
                .collect::<Result<Vec<_>, _>>()
        })
    };
    let timeout = |raw: &Option<Spanned<String>>, key: &str, report: &mut Report| {
        report.read(raw, key, |t| {
            let d = duration_at_most(t, MAX_TASK_TIMEOUT)?;
            match d >= Duration::from_millis(100) {
                true => Ok(d),
                false => Err("must be at least 100ms".to_string()),
            }
        })
    };
    let base = Path::new(report.source())
        .parent()
        .unwrap_or(Path::new("."));
    let ca_file = report.read(&raw.ca_file, "tasks.ca_file", |p| match p.trim() {
        "" => Err("is empty".to_string()),
        p => Ok(base.join(p)),
    });

    let dns = DnsSettings {
        enabled: raw.dns.enabled.unwrap_or(true),
        allow: allow(&raw.dns.allow, "tasks.dns.allow", report),
        resolvers: raw
            .dns
            .resolvers
            .as_ref()
            .and_then(|list| resolvers(list, report))
            .unwrap_or(default.dns.resolvers),
        timeout: timeout(&raw.dns.timeout, "tasks.dns.timeout", report)
            .unwrap_or(default.dns.timeout),
    };
    let whois = WhoisSettings {
        enabled: raw.whois.enabled.unwrap_or(true),
        allow: allow(&raw.whois.allow, "tasks.whois.allow", report),
        server: report
            .read(&raw.whois.server, "tasks.whois.server", |s| {
                server_address(s, 43)
            })
            .unwrap_or(default.whois.server),
        timeout: timeout(&raw.whois.timeout, "tasks.whois.timeout", report)
            .unwrap_or(default.whois.timeout),
        max_referrals: report
            .read(
                &raw.whois.max_referrals,
                "tasks.whois.max_referrals",
                |&n| bounded(n, 0..=5),
            )
            .unwrap_or(default.whois.max_referrals),
    };
    let http_check = HttpCheckSettings {
        enabled: raw.http_check.enabled.unwrap_or(true),
        allow: allow(&raw.http_check.allow, "tasks.http_check.allow", report),
        timeout: timeout(&raw.http_check.timeout, "tasks.http_check.timeout", report)
            .unwrap_or(default.http_check.timeout),
        max_redirects: report
            .read(
                &raw.http_check.max_redirects,
                "tasks.http_check.max_redirects",
                |&n| bounded(n, 0..=20),
            )
            .unwrap_or(default.http_check.max_redirects),
    };
    let tls_expiry = TlsExpirySettings {
        enabled: raw.tls_expiry.enabled.unwrap_or(true),
        allow: allow(&raw.tls_expiry.allow, "tasks.tls_expiry.allow", report),
        timeout: timeout(&raw.tls_expiry.timeout, "tasks.tls_expiry.timeout", report)
            .unwrap_or(default.tls_expiry.timeout),
    };
    let walk_allow = allow(&raw.walk_site.allow, "tasks.walk_site.allow", report);
    let walk_timeout = timeout(&raw.walk_site.timeout, "tasks.walk_site.timeout", report);
    let walk_site = WalkSiteSettings {
        enabled: raw.walk_site.enabled.unwrap_or(true),
        allow: walk_allow,
        ..walk_site(&raw.walk_site, walk_timeout, report)
    };
    TasksConfig {
        allow: allow(&raw.allow, "tasks.allow", report).unwrap_or(default.allow),
        ca_file,
        dns,
        whois,
        http_check,
        tls_expiry,
        walk_site,
    }
}

/// `[tasks.walk_site]`'s bounds, each within its range, and one URL's `timeout` (read
/// already) no longer than the whole walk's `deadline`: it could never be reached.
fn walk_site(
    raw: &RawWalkSite,
    timeout: Option<Duration>,
    report: &mut Report,
) -> WalkSiteSettings {
    let default = WalkSiteSettings::default();
    let deadline = report
        .read(
            &raw.deadline,
            "tasks.walk_site.deadline",
            |t| match duration_at_most(t, MAX_WALK_DEADLINE)? {
                d if d >= Duration::from_secs(1) => Ok(d),
                _ => Err("must be at least 1s".to_string()),
            },
        )
        .unwrap_or(default.deadline);
    let timeout = match (timeout, &raw.timeout) {
        (Some(t), Some(raw)) if t > deadline => {
            report.error(
                Some(raw.span()),
                "tasks.walk_site.timeout",
                format!(
                    "{} is longer than the whole walk's deadline ({}): make it shorter, or \
                     the deadline longer",
                    lexicon::format_duration(t),
                    lexicon::format_duration(deadline)
                ),
            );
            None
        }
        (t, _) => t,
    };
    let mut count = |raw: &Option<Spanned<i64>>, key: &str, range| {
        report.read(raw, key, |&n| bounded(n, range))
    };
    WalkSiteSettings {
        timeout: timeout.unwrap_or(default.timeout.min(deadline)),
        deadline,
        max_depth: count(
            &raw.max_depth,
            "tasks.walk_site.max_depth",
            0..=MAX_WALK_DEPTH,
        )
        .unwrap_or(default.max_depth),
        max_pages: count(
            &raw.max_pages,
            "tasks.walk_site.max_pages",
            1..=MAX_WALK_PAGES,
        )
        .unwrap_or(default.max_pages),
        concurrency: count(
            &raw.concurrency,
            "tasks.walk_site.concurrency",
            1..=MAX_WALK_CONCURRENCY,
        )
        .unwrap_or(default.concurrency),
        ..default
    }
}

/// `resolvers`: at least one, at most [`MAX_RESOLVERS`], each name once.
fn resolvers(
    list: &Spanned<Vec<Spanned<String>>>,
    report: &mut Report,
) -> Option<Vec<ResolverConfig>> {
    let key = "tasks.dns.resolvers";
    if list.get_ref().is_empty() || list.get_ref().len() > MAX_RESOLVERS {
        report.error(
            Some(list.span()),
            key,
            format!("must list from 1 to {MAX_RESOLVERS} resolvers, e.g. [\"system\", \"127.0.0.1:5353\"]"),
        );
        return None;
    }
    let found = report.found();
    let mut resolvers: Vec<ResolverConfig> = Vec::new();
    for entry in list.get_ref() {
        let Some(resolver) = report.check(entry, key, |e| resolver(e)) else {
            continue;
        };
        if resolvers.iter().any(|r| r.name == resolver.name) {
            report.error(
                Some(entry.span()),
                key,
                format!(
                    "\"{}\" is listed twice: give each resolver its own name, e.g. \"office={}\"",
                    resolver.name,
                    match resolver.address {
                        ResolverAddress::At(a) => a.to_string(),
                        ResolverAddress::System => "10.0.0.53".to_string(),
                    }
                ),
            );
            continue;
        }
        resolvers.push(resolver);
    }
    (report.found() == found).then_some(resolvers)
}

/// One resolver: `system`, an address with an optional port, or `name=` before either.
fn resolver(entry: &str) -> Result<ResolverConfig, String> {
    let (name, address) = match entry.split_once('=') {
        Some((name, address)) => (Some(name.trim()), address.trim()),
        None => (None, entry.trim()),
    };
    if let Some(name) = name {
        if !is_name(name) || name.len() > 32 {
            return Err(format!(
                "\"{}\" is not a resolver name: letters, digits, - and _, at most 32",
                excerpt(name)
            ));
        }
    }
    let address = match address {
        "system" => ResolverAddress::System,
        a => ResolverAddress::At(socket_address(a, 53).ok_or_else(|| {
            format!(
                "\"{}\" is neither \"system\" nor an IP address with an optional port \
                 (\"127.0.0.1:5353\", \"[::1]:53\", \"10.0.0.53\"), optionally named \
                 (\"office=10.0.0.53\")",
                excerpt(entry)
            )
        })?),
    };
    Ok(ResolverConfig {
        name: name.unwrap_or(address_text(address, entry)).to_string(),
        address,
    })
}

fn address_text(address: ResolverAddress, written: &str) -> &str {
    match address {
        ResolverAddress::System => "system",
        ResolverAddress::At(_) => written.trim(),
    }
}

/// An IP address with an optional port (`default_port` when left out); IPv6 with a
/// port in brackets.
fn socket_address(text: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip = text.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, default_port))
}

/// A server given by host name or address, with an optional port: `host:port`, the port
/// `default_port` when left out.
fn server_address(text: &str, default_port: u16) -> Result<String, String> {
    let bad = || {
        format!(
            "\"{}\" is not a server: write a host name or address with an optional port, \
             e.g. \"whois.iana.org:43\"",
            excerpt(text)
        )
    };
    if let Some(addr) = socket_address(text, default_port) {
        return Ok(addr.to_string());
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad())?),
        None => (text, default_port),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if port == 0 || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(bad());
    }
    Ok(format!("{}:{port}", host.to_ascii_lowercase()))
}

/// At most 64 characters of what was written, for a message.
fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse("/etc/octobox/octobox.toml", text, |_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn every_task_is_on_with_defaults_when_the_section_is_absent() {
        let t = parse("").unwrap().tasks;
        for task in DAY_ONE_TASKS {
            assert_eq!(t.enabled(task), Some(true), "{task}");
            assert_eq!(t.allow_for(task), [AllowEntry::Everyone]);
        }
        assert_eq!(t.enabled("echo"), None);
        assert_eq!(t.dns.resolvers.len(), 1);
        assert_eq!(t.dns.resolvers[0].address, ResolverAddress::System);
        assert_eq!(t.whois.server, "whois.iana.org:43");
        assert_eq!(t.http_check.max_redirects, 5);
        assert_eq!(t.walk_site, WalkSiteSettings::default());
        assert_eq!(
            (
                t.walk_site.max_depth,
                t.walk_site.max_pages,
                t.walk_site.concurrency
            ),
            (5, 200, 4)
        );
    }

    #[test]
    fn a_walks_bounds_are_read() {
        let t = parse(
            r#"
[acl.groups]
web = ["console:alice"]
[tasks.walk_site]
allow = ["group:web"]
timeout = "2s"
deadline = "30s"
max_depth = 3
max_pages = 500
concurrency = 8
"#,
        )
        .unwrap()
        .tasks;
        assert_eq!(
            t.walk_site,
            WalkSiteSettings {
                enabled: true,
                allow: Some(vec![AllowEntry::Group("web".into())]),
                timeout: Duration::from_secs(2),
                deadline: Duration::from_secs(30),
                max_depth: 3,
                max_pages: 500,
                concurrency: 8,
            }
        );
        assert_eq!(t.allow_for("walk_site"), [AllowEntry::Group("web".into())]);
        assert_eq!(t.allow_for("http_check"), [AllowEntry::Everyone]);

        let off = parse("[tasks.walk_site]\nenabled = false\n").unwrap().tasks;
        assert_eq!(off.enabled("walk_site"), Some(false));
        // A deadline shorter than the default page timeout shortens it: a page may take
        // the whole walk, no more.
        let short = parse("[tasks.walk_site]\ndeadline = \"3s\"\n")
            .unwrap()
            .tasks;
        assert_eq!(short.walk_site.timeout, Duration::from_secs(3));
    }

    #[test]
    fn a_walks_mistakes_are_named_with_their_line_and_key() {
        let e = parse(
            r#"[tasks.walk_site]
allow = ["group:nobody"]
timeout = "50ms"
deadline = "10m"
max_depth = 11
max_pages = 0
concurrency = 64
"#,
        )
        .unwrap_err();
        for expected in [
            "octobox.toml:2: tasks.walk_site.allow: group \"nobody\" is not declared",
            "octobox.toml:3: tasks.walk_site.timeout: must be at least 100ms",
            "octobox.toml:4: tasks.walk_site.deadline: must be at most 5m",
            "octobox.toml:5: tasks.walk_site.max_depth: 11 is not a whole number from 0 to 10",
            "octobox.toml:6: tasks.walk_site.max_pages: 0 is not a whole number from 1 to 5000",
            "octobox.toml:7: tasks.walk_site.concurrency: 64 is not a whole number from 1 to 16",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
        }
        let e = parse("[tasks.walk_site]\ndeadline = \"5s\"\ntimeout = \"10s\"\n").unwrap_err();
        assert!(
            e.contains(
                "octobox.toml:3: tasks.walk_site.timeout: 10s is longer than the whole walk's deadline (5s)"
            ),
            "{e}"
        );
        let e = parse("[tasks.walk_site]\ndeadline = \"500ms\"\n").unwrap_err();
        assert!(
            e.contains("octobox.toml:2: tasks.walk_site.deadline: must be at least 1s"),
            "{e}"
        );
        let e = parse("[tasks.walk_site]\nmax_pages = \"many\"\n").unwrap_err();
        assert!(e.contains("octobox.toml:2"), "{e}");
        let e = parse("[tasks.walk_site]\ndepth = 3\n").unwrap_err();
        assert!(e.contains("unknown field `depth`"), "{e}");
    }

    #[test]
    fn a_schedule_may_walk_a_site() {
        let config = parse(
            "[[schedule]]\nname = \"nightly-walk\"\ncron = \"0 3 * * *\"\nrun = \"walk site https://example.com/ 3\"\n",
        )
        .unwrap();
        assert_eq!(
            config.schedules[0].runs,
            crate::ScheduleRuns::Command("walk site https://example.com/ 3".into())
        );
    }

    #[test]
    fn resolvers_are_named_switches_and_access_are_read() {
        let t = parse(
            r#"
[acl.groups]
ops = ["console:alice"]
[tasks]
allow = ["group:ops"]
ca_file = "private-ca.pem"
[tasks.dns]
resolvers = ["system", "127.0.0.1:5353", "office=10.0.0.53", "v6=[::1]:5300"]
timeout = "500ms"
[tasks.whois]
server = "127.0.0.1:4343"
max_referrals = 1
[tasks.http_check]
enabled = false
[tasks.tls_expiry]
allow = ["everyone"]
"#,
        )
        .unwrap()
        .tasks;
        let names: Vec<_> = t.dns.resolvers.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["system", "127.0.0.1:5353", "office", "v6"]);
        assert_eq!(
            t.dns.resolvers[2].address,
            ResolverAddress::At("10.0.0.53:53".parse().unwrap())
        );
        assert_eq!(
            t.dns.resolvers[3].address,
            ResolverAddress::At("[::1]:5300".parse().unwrap())
        );
        assert_eq!(t.dns.timeout, Duration::from_millis(500));
        assert_eq!(t.whois.server, "127.0.0.1:4343");
        assert_eq!(t.whois.max_referrals, 1);
        assert_eq!(t.enabled("http_check"), Some(false));
        assert_eq!(t.allow_for("dns"), [AllowEntry::Group("ops".into())]);
        assert_eq!(t.allow_for("tls_expiry"), [AllowEntry::Everyone]);
        assert_eq!(
            t.ca_file.as_deref(),
            Some(Path::new("/etc/octobox/private-ca.pem"))
        );
    }

    #[test]
    fn the_example_file_documents_the_defaults() {
        let text = include_str!("../../compose/octobox.example.toml");
        let example = Config::parse("octobox.example.toml", text, |_| Some("x".repeat(64)))
            .map_err(|e| e.to_string())
            .unwrap()
            .tasks;
        assert_eq!(example, TasksConfig::default());
    }

    #[test]
    fn whois_servers_take_names_and_default_to_port_43() {
        assert_eq!(
            server_address("Whois.Example.net", 43).unwrap(),
            "whois.example.net:43"
        );
        assert_eq!(
            server_address("whois.example.net:4343", 43).unwrap(),
            "whois.example.net:4343"
        );
        assert_eq!(server_address("::1", 43).unwrap(), "[::1]:43");
        assert!(server_address("whois example", 43).is_err());
        assert!(server_address("host:0", 43).is_err());
    }

    #[test]
    fn each_mistake_is_named_with_its_line_and_key() {
        let e = parse(
            r#"[tasks]
allow = ["group:nobody"]
[tasks.dns]
resolvers = ["system",
  "dns.example.net",
  "a=127.0.0.1", "a=127.0.0.2"]
timeout = "5m"
[tasks.whois]
server = "not a server"
max_referrals = 9
[tasks.http_check]
max_redirects = -1
timeout = "10ms"
"#,
        )
        .unwrap_err();
        for expected in [
            "octobox.toml:2: tasks.allow: group \"nobody\" is not declared",
            "octobox.toml:5: tasks.dns.resolvers: \"dns.example.net\" is neither \"system\" nor an IP address",
            "octobox.toml:6: tasks.dns.resolvers: \"a\" is listed twice",
            "octobox.toml:7: tasks.dns.timeout: must be at most 1m",
            "octobox.toml:9: tasks.whois.server: \"not a server\" is not a server",
            "octobox.toml:10: tasks.whois.max_referrals: 9 is not a whole number from 0 to 5",
            "octobox.toml:12: tasks.http_check.max_redirects: -1 is not a whole number from 0 to 20",
            "octobox.toml:13: tasks.http_check.timeout: must be at least 100ms",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
        }
        let e = parse("[tasks.dns]\nresolvers = []\n").unwrap_err();
        assert!(
            e.contains(":2: tasks.dns.resolvers: must list from 1 to 16"),
            "{e}"
        );
        let e = parse("[tasks.dns]\nenable = false\n").unwrap_err();
        assert!(e.contains("unknown field `enable`"), "{e}");
    }
}
