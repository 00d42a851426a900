//! The `[ssh]` section: where the bot's SSH server listens, its host key, the keys it
//! lets in, and the limits that keep one person, one address that has not logged in, or
//! everyone together from exhausting it.
//!
//! Without an `[ssh]` section there is no SSH listener. Relative paths are read from the
//! configuration file's folder, so a deployment can keep its keys beside its config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::Report;
use crate::fields::{bounded, positive_duration};

/// A validated `[ssh]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    /// The address and port the server listens on.
    pub listen: SocketAddr,
    /// The server's private host key (OpenSSH format); created on first start if missing.
    pub host_key: PathBuf,
    /// The keys that may log in, one a line, OpenSSH's `authorized_keys` format.
    pub authorized_keys: PathBuf,
    pub limits: SshLimits,
}

/// What one session, one person and the server as a whole may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshLimits {
    /// An interactive session with no input and no job outstanding for this long is closed.
    pub idle_timeout: Duration,
    /// Sessions open at once, for everyone together.
    pub max_sessions: usize,
    /// Sessions open at once for one identity.
    pub max_sessions_per_identity: usize,
    /// The longest command line, in characters.
    pub max_line_length: usize,
    /// A connection that has not logged in this long after it was accepted is closed.
    pub login_grace_time: Duration,
    /// Connections not yet logged in, for all addresses together (OpenSSH's
    /// `MaxStartups`); one past it is closed at once.
    pub max_startups: usize,
    /// Connections not yet logged in from one client address.
    pub max_startups_per_address: usize,
}

impl Default for SshLimits {
    fn default() -> Self {
        SshLimits {
            idle_timeout: Duration::from_secs(15 * 60),
            max_sessions: 256,
            max_sessions_per_identity: 16,
            max_line_length: 4096,
            login_grace_time: Duration::from_secs(30),
            max_startups: 64,
            max_startups_per_address: 10,
        }
    }
}

/// The default `listen`: every interface, port 2222.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:2222";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSsh {
    listen: Option<Spanned<String>>,
    host_key: Option<Spanned<String>>,
    authorized_keys: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    max_sessions: Option<Spanned<i64>>,
    max_sessions_per_identity: Option<Spanned<i64>>,
    max_line_length: Option<Spanned<i64>>,
    login_grace_time: Option<Spanned<String>>,
    max_startups: Option<Spanned<i64>>,
    max_startups_per_address: Option<Spanned<i64>>,
}

/// Checks `[ssh]`; relative paths are read from the folder of the configuration file.
pub(super) fn ssh(raw: RawSsh, report: &mut Report) -> Option<SshConfig> {
    let found = report.found();
    let base = Path::new(report.source())
        .parent()
        .unwrap_or(Path::new("."));
    let listen = report.read(&raw.listen, "ssh.listen", |l| {
        crate::fields::socket_addr(l, "0.0.0.0:2222")
    });
    let host_key = path(
        &raw.host_key,
        "ssh.host_key",
        "the server's host key (created there on first start)",
        base,
        report,
    );
    let authorized_keys = path(
        &raw.authorized_keys,
        "ssh.authorized_keys",
        "the file of keys that may log in",
        base,
        report,
    );
    let default = SshLimits::default();
    let count = |n: &i64, max: usize| bounded(*n, 1..=max);
    let limits = SshLimits {
        idle_timeout: report
            .read(&raw.idle_timeout, "ssh.idle_timeout", |t| {
                positive_duration(t)
            })
            .unwrap_or(default.idle_timeout),
        max_sessions: report
            .read(&raw.max_sessions, "ssh.max_sessions", |n| count(n, 100_000))
            .unwrap_or(default.max_sessions),
        max_sessions_per_identity: report
            .read(
                &raw.max_sessions_per_identity,
                "ssh.max_sessions_per_identity",
                |n| count(n, 100_000),
            )
            .unwrap_or(default.max_sessions_per_identity),
        max_line_length: report
            .read(&raw.max_line_length, "ssh.max_line_length", |n| {
                count(n, 1_048_576)
            })
            .unwrap_or(default.max_line_length),
        login_grace_time: report
            .read(&raw.login_grace_time, "ssh.login_grace_time", |t| {
                positive_duration(t)
            })
            .unwrap_or(default.login_grace_time),
        max_startups: report
            .read(&raw.max_startups, "ssh.max_startups", |n| count(n, 100_000))
            .unwrap_or(default.max_startups),
        max_startups_per_address: report
            .read(
                &raw.max_startups_per_address,
                "ssh.max_startups_per_address",
                |n| count(n, 100_000),
            )
            .unwrap_or(default.max_startups_per_address),
    };
    if report.found() > found {
        return None;
    }
    Some(SshConfig {
        listen: listen
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("the default address parses")),
        host_key: host_key?,
        authorized_keys: authorized_keys?,
        limits,
    })
}

/// A path [ssh] needs (`what` says what it is for), read from `base` when relative.
fn path(
    raw: &Option<Spanned<String>>,
    key: &str,
    what: &str,
    base: &Path,
    report: &mut Report,
) -> Option<PathBuf> {
    if raw.is_none() {
        report.error(
            None,
            key,
            format!("is missing: [ssh] needs the path of {what}"),
        );
    }
    report.read(raw, key, |p| {
        if p.trim().is_empty() {
            Err("is empty".to_string())
        } else {
            Ok(base.join(p))
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse("/etc/octobox/octobox.toml", text, |_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn no_section_means_no_listener() {
        assert!(parse("").unwrap().ssh.is_none());
    }

    #[test]
    fn paths_are_read_beside_the_configuration_and_limits_have_defaults() {
        let c = parse("[ssh]\nhost_key = \"host_key\"\nauthorized_keys = \"/srv/keys\"\n")
            .unwrap()
            .ssh
            .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:2222");
        assert_eq!(c.host_key.to_str(), Some("/etc/octobox/host_key"));
        assert_eq!(c.authorized_keys.to_str(), Some("/srv/keys"));
        assert_eq!(c.limits.max_line_length, 4096);
        assert_eq!(c.limits.login_grace_time.as_secs(), 30);
        assert_eq!(c.limits.max_startups, 64);
        assert_eq!(c.limits.max_startups_per_address, 10);
    }

    #[test]
    fn login_limits_are_read_and_checked() {
        let c = parse(
            "[ssh]\nhost_key = \"h\"\nauthorized_keys = \"k\"\nlogin_grace_time = \"1s\"\nmax_startups = 5\nmax_startups_per_address = 2\n",
        )
        .unwrap()
        .ssh
        .unwrap();
        assert_eq!(c.limits.login_grace_time.as_secs(), 1);
        assert_eq!(c.limits.max_startups, 5);
        assert_eq!(c.limits.max_startups_per_address, 2);
        let e = parse(
            "[ssh]\nhost_key = \"h\"\nauthorized_keys = \"k\"\nlogin_grace_time = \"0s\"\nmax_startups_per_address = 0\n",
        )
        .unwrap_err();
        assert!(
            e.contains("octobox.toml:4: ssh.login_grace_time: must be longer than 0s"),
            "{e}"
        );
        assert!(
            e.contains(
                "octobox.toml:5: ssh.max_startups_per_address: 0 is not a whole number from 1"
            ),
            "{e}"
        );
    }

    #[test]
    fn every_bad_key_is_named_with_its_line() {
        let e = parse(
            "[ssh]\nlisten = \"localhost\"\nauthorized_keys = \"k\"\nidle_timeout = \"soon\"\nmax_sessions = 0\n",
        )
        .unwrap_err();
        assert!(
            e.contains("octobox.toml:2: ssh.listen: \"localhost\" is not an address and port"),
            "{e}"
        );
        assert!(
            e.contains("ssh.host_key: is missing: [ssh] needs the path"),
            "{e}"
        );
        assert!(e.contains("octobox.toml:4: ssh.idle_timeout:"), "{e}");
        assert!(
            e.contains("octobox.toml:5: ssh.max_sessions: 0 is not a whole number from 1"),
            "{e}"
        );
        let e = parse("[ssh]\nport = 22\n").unwrap_err();
        assert!(e.contains("octobox.toml:2: ssh.port: unknown field"), "{e}");
    }
}
