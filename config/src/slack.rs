//! The `[slack]` section: how the bot reaches Slack, and how people address it there.
//!
//! Tokens and the signing secret are [`Secret`]s (usually `${ENV}` references). The Web
//! API base URL is a key of its own so the bot can be pointed at any Slack-compatible
//! server (a proxy, the local server the tests run).

use std::net::SocketAddr;

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
                l.parse::<SocketAddr>()
                    .map_err(|_| format!("\"{l}\" is not an address and port, e.g. 0.0.0.0:3000"))
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

/// A Web API base URL, ending in `/` so that method names can be appended.
fn api_url(text: &str) -> Result<String, String> {
    let url = text.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("\"{url}\" is not an http:// or https:// URL"));
    }
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}
