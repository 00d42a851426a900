//! The `[api]` section: who may call the bot's HTTP API and log in to its dashboard.
//!
//! Access is declared, never assumed: with no `[[api.token]]` the API answers every call
//! with 401. Each token names a caller (`name`, whose identity is `api:<name>`), the
//! `[acl]` groups it belongs to, and its value, usually an `${ENV}` reference. The groups
//! are merged into `[acl.groups]` when the file is read, so every command's `allow` list
//! and the built-in groups (`admins`, `auditors`) treat an API caller like anyone else.

use serde::Deserialize;
use toml::Spanned;

use crate::error::Report;
use crate::fields::{bounded, is_name};
use crate::secret::expand_env;
use crate::{AclConfig, Secret};

/// The shortest token value accepted: shorter ones can be guessed.
pub const MIN_TOKEN_LENGTH: usize = 24;
/// The longest: the value is compared on every call.
pub const MAX_TOKEN_LENGTH: usize = 256;
/// How many tokens one file may declare.
pub const MAX_TOKENS: usize = 64;
/// The adapter name of API callers: a token named `grafana` is `api:grafana`.
pub const API_ADAPTER: &str = "api";

/// A validated `[api]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    pub tokens: Vec<ApiToken>,
    /// Calls one token may make in a minute (default 600); more are answered 429.
    pub requests_per_minute: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            tokens: Vec::new(),
            requests_per_minute: 600,
        }
    }
}

/// One `[[api.token]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    /// The caller's name; its identity is `api:<name>`.
    pub name: String,
    pub groups: Vec<String>,
    pub value: Secret,
}

impl ApiToken {
    pub fn identity(&self) -> String {
        format!("{API_ADAPTER}:{}", self.name)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    #[serde(default)]
    token: Vec<Spanned<RawToken>>,
    requests_per_minute: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    token: String,
}

/// Checks `[api]` (`env` resolves `${NAME}`) and adds each token's identity to the
/// `[acl]` groups it names.
pub(super) fn api(
    raw: RawApi,
    acl: &mut AclConfig,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> ApiConfig {
    let requests_per_minute = report
        .read(&raw.requests_per_minute, "api.requests_per_minute", |&n| {
            bounded(n, 1..=100_000)
        })
        .unwrap_or(ApiConfig::default().requests_per_minute);
    if raw.token.len() > MAX_TOKENS {
        report.error(
            None,
            "api.token",
            format!("at most {MAX_TOKENS} tokens may be declared"),
        );
        return ApiConfig::default();
    }
    let mut tokens: Vec<ApiToken> = Vec::new();
    for entry in raw.token {
        let span = entry.span();
        let raw = entry.into_inner();
        let mut problems = Vec::new();
        if !is_name(&raw.name) || raw.name.len() > 64 {
            problems.push((
                ".name".to_string(),
                format!(
                    "\"{}\" is not a name: letters, digits, - and _, at most 64",
                    raw.name.chars().take(80).collect::<String>()
                ),
            ));
        } else if tokens.iter().any(|t| t.name == raw.name) {
            problems.push((
                ".name".to_string(),
                format!("a token named \"{}\" is declared twice", raw.name),
            ));
        }
        for group in raw.groups.iter().filter(|g| !is_name(g)) {
            problems.push((
                ".groups".to_string(),
                format!("\"{group}\" is not a group name: letters, digits, - and _"),
            ));
        }
        let value = match expand_env(&raw.token, env) {
            Err(e) => Err(e.to_string()),
            Ok(v) if v.chars().count() < MIN_TOKEN_LENGTH => Err(format!(
                "is shorter than {MIN_TOKEN_LENGTH} characters, which can be guessed: \
                 make one with `openssl rand -hex 32`"
            )),
            Ok(v) if v.len() > MAX_TOKEN_LENGTH => {
                Err(format!("is longer than {MAX_TOKEN_LENGTH} bytes"))
            }
            Ok(v) if tokens.iter().any(|t| t.value.expose() == v) => {
                Err("has the same value as another token".to_string())
            }
            Ok(v) => Ok(Secret::new(v)),
        };
        let value = match value {
            Ok(v) => Some(v),
            Err(message) => {
                problems.push((".token".to_string(), message));
                None
            }
        };
        match value {
            Some(value) if problems.is_empty() => tokens.push(ApiToken {
                name: raw.name,
                groups: raw.groups,
                value,
            }),
            _ => report.entry(span, "api.token", problems),
        }
    }
    for token in &tokens {
        for group in &token.groups {
            let members = acl.groups.entry(group.clone()).or_default();
            let identity = token.identity();
            if !members.contains(&identity) {
                members.push(identity);
            }
        }
    }
    ApiConfig {
        tokens,
        requests_per_minute,
    }
}
