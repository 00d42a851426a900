//! `[broker]` and `[store]`: the RabbitMQ broker and the Redis store that make jobs
//! durable. Both are set, or neither and the bot runs embedded; one without the other is
//! refused, since a durable queue whose results are lost (or the reverse) is neither mode.
//!
//! Their URLs are [`Secret`]s: they usually hold a password, so an error about one names
//! the key and what was expected, never the value. So are the signing keys of
//! `[broker]`; a missing `signing_key` is allowed for now (existing setups have none),
//! and the broker warns at connect that jobs are then not authenticated.

use serde::Deserialize;
use toml::Spanned;

use crate::error::Report;
use crate::fields::{bounded, positive_duration};
use crate::secret::expand_env;
use crate::{BrokerConfig, Secret, StoreConfig, TlsFiles, MIN_SIGNING_KEY_BYTES};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBroker {
    url: Option<Spanned<String>>,
    urls: Option<Spanned<Vec<String>>>,
    delivery_limit: Option<Spanned<i64>>,
    publish_timeout: Option<Spanned<String>>,
    signing_key: Option<Spanned<String>>,
    previous_signing_key: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    client_cert_file: Option<Spanned<String>>,
    client_key_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    url: Spanned<String>,
    retention: Option<Spanned<String>>,
    reclaim_after: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    client_cert_file: Option<Spanned<String>>,
    client_key_file: Option<Spanned<String>>,
}

/// The TLS files of `[broker]` or `[store]`: the same three keys in both.
struct RawTls<'a> {
    ca_file: &'a Option<Spanned<String>>,
    client_cert_file: &'a Option<Spanned<String>>,
    client_key_file: &'a Option<Spanned<String>>,
}

impl RawBroker {
    fn tls(&self) -> RawTls<'_> {
        RawTls {
            ca_file: &self.ca_file,
            client_cert_file: &self.client_cert_file,
            client_key_file: &self.client_key_file,
        }
    }
}

impl RawStore {
    fn tls(&self) -> RawTls<'_> {
        RawTls {
            ca_file: &self.ca_file,
            client_cert_file: &self.client_cert_file,
            client_key_file: &self.client_key_file,
        }
    }
}

/// Checks `[broker]`; its settings start from [`BrokerConfig::new`]'s defaults.
pub(crate) fn broker(
    raw: RawBroker,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Option<BrokerConfig> {
    let urls = broker_urls(&raw, env, report);
    let delivery_limit = report.read(&raw.delivery_limit, "broker.delivery_limit", |&n| {
        bounded(n, 1..=1000)
    });
    let publish_timeout = report.read(&raw.publish_timeout, "broker.publish_timeout", |t| {
        positive_duration(t)
    });
    let signing_key = report.read(&raw.signing_key, "broker.signing_key", |k| key(k, env));
    let previous_signing_key = report.read(
        &raw.previous_signing_key,
        "broker.previous_signing_key",
        |k| key(k, env),
    );
    if previous_signing_key.is_some() && raw.signing_key.is_none() {
        report.error(
            raw.previous_signing_key.as_ref().map(|k| k.span()),
            "broker.previous_signing_key",
            "is set but signing_key is not: the previous key is only accepted alongside a \
             current one, e.g. signing_key = \"${OCTOBOX_SIGNING_KEY}\"",
        );
    }
    let is_tls = urls
        .as_ref()
        .is_some_and(|urls| urls.iter().all(|u| u.expose().starts_with("amqps://")));
    let tls = tls_files(raw.tls(), "broker", is_tls, "amqps", report);
    let mut urls = urls?.into_iter();
    let default = BrokerConfig::new(urls.next()?);
    Some(BrokerConfig {
        other_urls: urls.collect(),
        delivery_limit: delivery_limit.unwrap_or(default.delivery_limit),
        publish_timeout: publish_timeout.unwrap_or(default.publish_timeout),
        signing_key,
        previous_signing_key,
        tls,
        ..default
    })
}

/// The most nodes `urls` may list.
const MAX_BROKER_NODES: usize = 16;

/// `url` (one node) or `urls` (a cluster's nodes, each tried in turn): exactly one of
/// them, every URL `amqp://` or every one `amqps://`.
fn broker_urls(
    raw: &RawBroker,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Option<Vec<Secret>> {
    let check = |u: &str| url(u, &["amqp", "amqps"], env);
    match (&raw.url, &raw.urls) {
        (Some(one), None) => report
            .check(one, "broker.url", |u: &String| check(u))
            .map(|u| vec![u]),
        (None, Some(many)) => {
            let list = many.get_ref();
            if list.is_empty() || list.len() > MAX_BROKER_NODES {
                report.error(
                    Some(many.span()),
                    "broker.urls",
                    format!("lists 1 to {MAX_BROKER_NODES} nodes, e.g. [\"amqp://octobox:${{OCTOBOX_AMQP_PASSWORD}}@rabbit-1:5672/%2f\", …]"),
                );
                return None;
            }
            let mut urls = Vec::new();
            for (i, text) in list.iter().enumerate() {
                match check(text) {
                    Ok(u) => urls.push(u),
                    Err(why) => {
                        report.error(Some(many.span()), &format!("broker.urls[{i}]"), why);
                    }
                }
            }
            let tls = urls
                .iter()
                .filter(|u| u.expose().starts_with("amqps://"))
                .count();
            if tls != 0 && tls != urls.len() {
                report.error(
                    Some(many.span()),
                    "broker.urls",
                    "mixes amqp:// and amqps://: every node of one broker speaks TLS, or none does",
                );
                return None;
            }
            (urls.len() == list.len()).then_some(urls)
        }
        (Some(one), Some(_)) => {
            report.error(
                Some(one.span()),
                "broker.url",
                "and broker.urls are both set: write url for one node, or urls for a cluster's nodes",
            );
            None
        }
        (None, None) => {
            report.error(
                None,
                "broker.url",
                "is missing: [broker] needs url = \"amqp://…\" (or urls = [...] for a cluster)",
            );
            None
        }
    }
}

/// Checks `[store]`; its settings start from [`StoreConfig::new`]'s defaults.
pub(crate) fn store(
    raw: RawStore,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Option<StoreConfig> {
    let url = report.check(&raw.url, "store.url", |u| url(u, &["redis", "rediss"], env));
    let retention = report.read(&raw.retention, "store.retention", |t| positive_duration(t));
    let reclaim_after = report.read(&raw.reclaim_after, "store.reclaim_after", |t| {
        positive_duration(t)
    });
    let is_tls = raw.url.get_ref().starts_with("rediss://");
    let tls = tls_files(raw.tls(), "store", is_tls, "rediss", report);
    let default = StoreConfig::new(url?);
    Some(StoreConfig {
        retention: retention.unwrap_or(default.retention),
        reclaim_after: reclaim_after.unwrap_or(default.reclaim_after),
        tls,
        ..default
    })
}

/// The TLS files of `section`, which are only meaningful when its URL uses `tls_scheme`;
/// a client certificate comes with its key.
fn tls_files(
    raw: RawTls<'_>,
    section: &str,
    is_tls: bool,
    tls_scheme: &str,
    report: &mut Report,
) -> TlsFiles {
    for (key, given) in [
        ("ca_file", raw.ca_file),
        ("client_cert_file", raw.client_cert_file),
        ("client_key_file", raw.client_key_file),
    ] {
        if let (Some(given), false) = (given, is_tls) {
            report.error(
                Some(given.span()),
                &format!("{section}.{key}"),
                format!("is for TLS: write the {section}'s URL as {tls_scheme}://"),
            );
        }
    }
    if raw.client_cert_file.is_some() != raw.client_key_file.is_some() {
        report.error(
            None,
            &format!("{section}.client_cert_file"),
            format!("and {section}.client_key_file go together: set both, or neither"),
        );
    }
    let path = |p: &Option<Spanned<String>>| p.as_ref().map(|p| p.get_ref().into());
    TlsFiles {
        ca_file: path(raw.ca_file),
        client_cert_file: path(raw.client_cert_file),
        client_key_file: path(raw.client_key_file),
    }
}

/// Refuses one of `[broker]` and `[store]` without the other. Only when nothing else is
/// wrong: a section that failed its own checks reads as absent here, and this error
/// would then blame the wrong thing.
pub(crate) fn both_or_neither(broker: bool, store: bool, report: &mut Report) {
    if report.found() > 0 {
        return;
    }
    match (broker, store) {
        (true, false) => report.error(
            None,
            "store",
            "[broker] is set but [store] is not: set both for durable jobs, or neither \
             to run embedded",
        ),
        (false, true) => report.error(
            None,
            "broker",
            "[store] is set but [broker] is not: set both for durable jobs, or neither \
             to run embedded",
        ),
        _ => {}
    }
}

/// A URL with one of `schemes`, after `${NAME}` expansion. The message never quotes the
/// value, which may hold a password.
fn url(
    text: &str,
    schemes: &[&str],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, String> {
    let value = expand_env(text, env).map_err(|e| e.to_string())?;
    if !schemes
        .iter()
        .any(|s| value.starts_with(&format!("{s}://")))
    {
        return Err(format!(
            "expected a URL starting with {}://",
            schemes.join(":// or ")
        ));
    }
    Ok(Secret::new(value))
}

/// A signing key, after `${NAME}` expansion, at least [`MIN_SIGNING_KEY_BYTES`] long. The
/// message gives the length, never the value.
fn key(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, String> {
    let value = expand_env(text, env).map_err(|e| e.to_string())?;
    if value.len() < MIN_SIGNING_KEY_BYTES {
        return Err(format!(
            "a signing key must be at least {MIN_SIGNING_KEY_BYTES} bytes, this one is {}; \
             generate one with `openssl rand -hex 32` and pass it through the environment",
            value.len()
        ));
    }
    Ok(Secret::new(value))
}

/// A role that runs only against RabbitMQ and Redis was given a file without them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{source_file}: {program} needs [broker] and [store] sections; to run everything in one \
     process, start octobox-bot without them instead"
)]
pub struct NotDurable {
    pub source_file: String,
    pub program: String,
}

impl crate::Config {
    /// `[broker]` and `[store]`, for `program`, a role that runs only against them
    /// (`octobox-worker`, `octobox-scheduler`).
    pub fn durable(&self, program: &str) -> Result<(&BrokerConfig, &StoreConfig), NotDurable> {
        match (&self.broker, &self.store) {
            (Some(broker), Some(store)) => Ok((broker, store)),
            _ => Err(NotDurable {
                source_file: self.source.clone(),
                program: program.to_string(),
            }),
        }
    }
}
