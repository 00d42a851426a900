//! The `[ssh]` section: where the bot's SSH server listens, its host key, the keys it
//! lets in, and the limits that keep one person (or everyone together) from exhausting it.
//!
//! Without an `[ssh]` section there is no SSH listener. Relative paths are read from the
//! configuration file's folder, so a deployment can keep its keys beside its config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

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
}

impl Default for SshLimits {
    fn default() -> Self {
        SshLimits {
            idle_timeout: Duration::from_secs(15 * 60),
            max_sessions: 256,
            max_sessions_per_identity: 16,
            max_line_length: 4096,
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
}

/// A problem found in `[ssh]`: (where, key, message).
pub(super) type Problem = (Option<std::ops::Range<usize>>, String, String);

/// Checks `[ssh]`; `source` is the configuration file, whose folder relative paths are
/// read from.
pub(super) fn ssh(raw: RawSsh, source: &str) -> Result<SshConfig, Vec<Problem>> {
    let mut problems: Vec<Problem> = Vec::new();
    let mut problem = |span: Option<std::ops::Range<usize>>, key: &str, m: String| {
        problems.push((span, format!("ssh.{key}"), m));
    };
    let base = Path::new(source).parent().unwrap_or(Path::new("."));

    let listen = match &raw.listen {
        None => Some(DEFAULT_LISTEN.parse().expect("the default address parses")),
        Some(l) => match l.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                problem(
                    Some(l.span()),
                    "listen",
                    format!(
                        "\"{}\" is not an address and port: write e.g. \"0.0.0.0:2222\" or \
                         \"[::1]:2222\"",
                        l.get_ref()
                    ),
                );
                None
            }
        },
    };
    let mut path = |raw: &Option<Spanned<String>>, key: &str, what: &str| match raw {
        Some(p) if !p.get_ref().trim().is_empty() => Some(base.join(p.get_ref())),
        Some(p) => {
            problem(Some(p.span()), key, "is empty".into());
            None
        }
        None => {
            problem(
                None,
                key,
                format!("is missing: [ssh] needs the path of {what}"),
            );
            None
        }
    };
    let host_key = path(
        &raw.host_key,
        "host_key",
        "the server's host key (created there on first start)",
    );
    let authorized_keys = path(
        &raw.authorized_keys,
        "authorized_keys",
        "the file of keys that may log in",
    );

    let mut limits = SshLimits::default();
    if let Some(t) = &raw.idle_timeout {
        match positive_duration(t.get_ref()) {
            Ok(d) => limits.idle_timeout = d,
            Err(m) => problem(Some(t.span()), "idle_timeout", m),
        }
    }
    let mut count = |raw: &Option<Spanned<i64>>, key: &str, max: usize, slot: &mut usize| {
        if let Some(n) = raw {
            match bounded(*n.get_ref(), 1..=max) {
                Ok(v) => *slot = v,
                Err(m) => problem(Some(n.span()), key, m),
            }
        }
    };
    count(
        &raw.max_sessions,
        "max_sessions",
        100_000,
        &mut limits.max_sessions,
    );
    count(
        &raw.max_sessions_per_identity,
        "max_sessions_per_identity",
        100_000,
        &mut limits.max_sessions_per_identity,
    );
    count(
        &raw.max_line_length,
        "max_line_length",
        1_048_576,
        &mut limits.max_line_length,
    );
    match (listen, host_key, authorized_keys) {
        (Some(listen), Some(host_key), Some(authorized_keys)) if problems.is_empty() => {
            Ok(SshConfig {
                listen,
                host_key,
                authorized_keys,
                limits,
            })
        }
        _ => Err(problems),
    }
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
