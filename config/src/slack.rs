//! The `[slack]` section: how the bot reaches Slack, and how people address it there.
//!
//! Tokens and the signing secret are [`Secret`]s (usually `${ENV}` references). The Web
//! API base URL is a key of its own so the bot can be pointed at any Slack-compatible
//! server (a proxy, the local server the tests run); the bot token goes with every call,
//! so it must be `https://`, or plain `http://` to a loopback host only.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use toml::Spanned;

use crate::error::Report;
use crate::fields::bounded;
use crate::secret::expand_env;
use crate::Secret;

/// Slack's own Web API.
pub const SLACK_API_URL: &str = "https://slack.com/api/";

/// How many Socket Mode connections stay open when `connections` is not set: two, so
/// that one can be replaced while the other delivers.
const DEFAULT_CONNECTIONS: u32 = 2;

/// A validated `[slack]` section.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// The bot token (`xoxb-…`), for the Web API.
    pub bot_token: Secret,
    /// The Web API base URL, ending in `/`.
    pub api_url: String,
    pub mode: SlackMode,
    /// Words that address the bot in a channel (`octobot deploy …`, `!deploy …`).
    pub prefixes: Vec<String>,
}

/// How events reach the bot.
#[derive(Debug, Clone)]
pub enum SlackMode {
    /// Socket Mode: the bot opens WebSocket connections to Slack; no public URL needed.
    Socket {
        /// The app-level token (`xapp-…`).
        app_token: Secret,
        /// How many connections stay open at once, for failover.
        connections: u32,
    },
    /// The Events API: Slack posts events to an HTTP endpoint the bot serves.
    Events {
        listen: SocketAddr,
        /// Signs every request Slack sends; requests without a valid signature are refused.
        signing_secret: Secret,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlack {
    bot_token: Spanned<String>,
    app_token: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    connections: Option<Spanned<i64>>,
    listen: Option<Spanned<String>>,
    signing_secret: Option<Spanned<String>>,
    prefixes: Option<Vec<String>>,
}

/// Checks `[slack]`; `env` resolves `${NAME}`. The default prefixes are the bot's name
/// (`bot_name`) and `!`.
pub(super) fn slack(
    raw: RawSlack,
    bot_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Option<SlackConfig> {
    let found = report.found();
    let secret = |text: &String| match expand_env(text, env) {
        Ok(v) if v.trim().is_empty() => Err("is empty".to_string()),
        Ok(v) => Ok(Secret::new(v)),
        Err(e) => Err(e.to_string()),
    };
    let bot_token = report.check(&raw.bot_token, "slack.bot_token", secret);
    let mode_name = raw
        .mode
        .as_ref()
        .map(|m| m.get_ref().as_str())
        .unwrap_or("socket");
    let mode = match mode_name {
        "socket" => {
            if raw.app_token.is_none() {
                report.error(
                    None,
                    "slack.app_token",
                    "Socket Mode needs an app-level token (xapp-…); set app_token, or \
                     mode = \"events\" with listen and signing_secret",
                );
            }
            let app_token = report.read(&raw.app_token, "slack.app_token", secret);
            let connections = report
                .read(&raw.connections, "slack.connections", |&n| {
                    bounded(n, 1..=10)
                })
                .unwrap_or(DEFAULT_CONNECTIONS);
            app_token.map(|app_token| SlackMode::Socket {
                app_token,
                connections,
            })
        }
        "events" => {
            if raw.signing_secret.is_none() {
                report.error(
                    None,
                    "slack.signing_secret",
                    "the Events API needs the app's signing secret to verify requests",
                );
            }
            let signing_secret = report.read(&raw.signing_secret, "slack.signing_secret", secret);
            if raw.listen.is_none() {
                report.error(
                    None,
                    "slack.listen",
                    "the Events API needs an address to listen on, e.g. 0.0.0.0:3000",
                );
            }
            let listen = report.read(&raw.listen, "slack.listen", |l| {
                crate::fields::socket_addr(l, "0.0.0.0:3000")
            });
            match (listen, signing_secret) {
                (Some(listen), Some(signing_secret)) => Some(SlackMode::Events {
                    listen,
                    signing_secret,
                }),
                _ => None,
            }
        }
        other => {
            report.error(
                raw.mode.as_ref().map(|m| m.span()),
                "slack.mode",
                format!("\"{other}\" is neither \"socket\" nor \"events\""),
            );
            None
        }
    };
    let api_url = report
        .read(&raw.api_url, "slack.api_url", |u| api_url(u))
        .unwrap_or_else(|| SLACK_API_URL.to_string());
    let prefixes = raw
        .prefixes
        .unwrap_or_else(|| vec![bot_name.to_string(), "!".to_string()]);
    if prefixes.iter().any(|p| p.trim().is_empty()) {
        report.error(
            None,
            "slack.prefixes",
            "a prefix is empty: every message would address the bot",
        );
    }
    if report.found() > found {
        return None;
    }
    Some(SlackConfig {
        bot_token: bot_token?,
        api_url,
        mode: mode?,
        prefixes: prefixes.into_iter().map(|p| p.trim().to_string()).collect(),
    })
}

/// A Web API base URL, ending in `/` so that method names can be appended: `https://`,
/// or `http://` to a loopback host (the bot token must never cross a network in clear).
fn api_url(text: &str) -> Result<String, String> {
    let url = text.trim();
    if let Some(rest) = url.strip_prefix("http://") {
        if !is_loopback(host_of(rest)) {
            return Err(
                "plain http:// would send the bot token in clear: use https://; \
                 http:// is allowed only to a loopback host (127.0.0.1, ::1, localhost)"
                    .to_string(),
            );
        }
    } else if !url.starts_with("https://") {
        return Err(format!("\"{url}\" is not an http:// or https:// URL"));
    }
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

/// The host of a URL after its scheme: the authority without user info and port, an
/// IPv6 address without its brackets.
fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    host_port.split(':').next().unwrap_or("")
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_url_is_https_or_plain_http_to_a_loopback_host_only() {
        for good in [
            "https://slack.com/api/",
            "https://proxy.example:8443/slack/api",
            "http://127.0.0.1:4000/api/",
            "http://[::1]:4000/api/",
            "http://localhost/api",
            "http://LOCALHOST:80",
        ] {
            let url = api_url(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert!(url.ends_with('/'), "{url}");
        }
        for bad in [
            "http://slack.com/api/",
            "http://10.0.0.5:4000/api/",
            "http://localhost.evil.example/api/",
            "http://127.0.0.1@evil.example/api/",
            "http://[::2]/api/",
            "http://:4000/api/",
        ] {
            let e = api_url(bad).expect_err(bad);
            assert!(e.contains("in clear: use https://"), "{bad}: {e}");
            assert!(!e.contains(bad), "the URL is not quoted: {e}");
        }
        assert!(api_url("ftp://slack.com").is_err());
    }

    #[test]
    fn a_plain_http_api_url_stops_the_load_with_its_line_and_key() {
        let text = "[slack]\nbot_token = \"xoxb-1\"\napp_token = \"xapp-1\"\n\
                    api_url = \"http://slack.example/api/\"\n";
        let errors = crate::Config::parse("octobox.toml", text, |_| None)
            .expect_err("refused")
            .0;
        let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            all.iter()
                .any(|e| e.starts_with("octobox.toml:4: slack.api_url: plain http://")),
            "{all:?}"
        );
        assert!(!all.iter().any(|e| e.contains("xoxb-1")), "{all:?}");
    }
}
