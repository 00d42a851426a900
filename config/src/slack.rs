//! The `[slack]` section: how the bot reaches Slack, and how people address it there.
//!
//! Tokens and the signing secret are [`Secret`]s (usually `${ENV}` references). The Web
//! API base URL is a key of its own so the bot can be pointed at any Slack-compatible
//! server (a proxy, the local server the tests run).

use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use crate::fields::bounded;
use crate::secret::expand_env;
use crate::{ConfigError, Secret};

/// Slack's own Web API.
pub const SLACK_API_URL: &str = "https://slack.com/api/";

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

/// Makes an error for a span of the file and a key.
type ErrorAt<'a> = &'a dyn Fn(Option<std::ops::Range<usize>>, &str, String) -> ConfigError;

/// Checks `[slack]`; `at` makes an error for a span and key, `env` resolves `${NAME}`.
pub(super) fn slack(
    raw: RawSlack,
    bot_name: &str,
    at: ErrorAt<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<SlackConfig> {
    let first_errors = errors.len();
    let mut secret = |raw: &Spanned<String>, key: &str| match expand_env(raw.get_ref(), env) {
        Ok(v) if v.trim().is_empty() => {
            errors.push(at(Some(raw.span()), key, "is empty".into()));
            None
        }
        Ok(v) => Some(Secret::new(v)),
        Err(e) => {
            errors.push(at(Some(raw.span()), key, e.to_string()));
            None
        }
    };
    let bot_token = secret(&raw.bot_token, "slack.bot_token");
    let mode_name = raw
        .mode
        .as_ref()
        .map(|m| m.get_ref().as_str())
        .unwrap_or("socket");
    let mode = match mode_name {
        "socket" => {
            let app_token = match &raw.app_token {
                Some(t) => secret(t, "slack.app_token"),
                None => {
                    errors.push(at(
                        None,
                        "slack.app_token",
                        "Socket Mode needs an app-level token (xapp-…); set app_token, or \
                         mode = \"events\" with listen and signing_secret"
                            .into(),
                    ));
                    None
                }
            };
            let mut connections = 2;
            if let Some(c) = &raw.connections {
                match bounded(*c.get_ref(), 1..=10) {
                    Ok(n) => connections = n,
                    Err(m) => errors.push(at(Some(c.span()), "slack.connections", m)),
                }
            }
            app_token.map(|app_token| SlackMode::Socket {
                app_token,
                connections,
            })
        }
        "events" => {
            let signing_secret = match &raw.signing_secret {
                Some(s) => secret(s, "slack.signing_secret"),
                None => {
                    errors.push(at(
                        None,
                        "slack.signing_secret",
                        "the Events API needs the app's signing secret to verify requests".into(),
                    ));
                    None
                }
            };
            let listen = match &raw.listen {
                Some(l) => match l.get_ref().parse::<SocketAddr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        errors.push(at(
                            Some(l.span()),
                            "slack.listen",
                            format!(
                                "\"{}\" is not an address and port, e.g. 0.0.0.0:3000",
                                l.get_ref()
                            ),
                        ));
                        None
                    }
                },
                None => {
                    errors.push(at(
                        None,
                        "slack.listen",
                        "the Events API needs an address to listen on, e.g. 0.0.0.0:3000".into(),
                    ));
                    None
                }
            };
            match (listen, signing_secret) {
                (Some(listen), Some(signing_secret)) => Some(SlackMode::Events {
                    listen,
                    signing_secret,
                }),
                _ => None,
            }
        }
        other => {
            errors.push(at(
                raw.mode.as_ref().map(|m| m.span()),
                "slack.mode",
                format!("\"{other}\" is neither \"socket\" nor \"events\""),
            ));
            None
        }
    };
    let api_url = match &raw.api_url {
        None => SLACK_API_URL.to_string(),
        Some(u) => {
            let url = u.get_ref().trim();
            if url.starts_with("https://") || url.starts_with("http://") {
                if url.ends_with('/') {
                    url.to_string()
                } else {
                    format!("{url}/")
                }
            } else {
                errors.push(at(
                    Some(u.span()),
                    "slack.api_url",
                    format!("\"{url}\" is not an http:// or https:// URL"),
                ));
                String::new()
            }
        }
    };
    let prefixes = raw
        .prefixes
        .unwrap_or_else(|| vec![bot_name.to_string(), "!".to_string()]);
    if prefixes.iter().any(|p| p.trim().is_empty()) {
        errors.push(at(
            None,
            "slack.prefixes",
            "a prefix is empty: every message would address the bot".into(),
        ));
    }
    if errors.len() > first_errors {
        return None;
    }
    Some(SlackConfig {
        bot_token: bot_token?,
        api_url,
        mode: mode?,
        prefixes: prefixes.into_iter().map(|p| p.trim().to_string()).collect(),
    })
}
