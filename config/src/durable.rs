//! `[broker]` and `[store]`: the RabbitMQ broker and the Redis store that make jobs
//! durable. Both are set, or neither and the bot runs embedded; one without the other is
//! refused, since a durable queue whose results are lost (or the reverse) is neither mode.
//!
//! `[store]` names its Redis one of two ways, exactly one of them: `url` (one Redis), or
//! `sentinels` with `master_name` (the primary Redis Sentinel names, with `password`,
//! `sentinel_password` and `db` beside them, since there is no URL to hold them).
//! `min_replicas` defaults to 1 with sentinels (they imply replicas) and to 0 with a URL.
//!
//! Their URLs are [`Secret`]s: they usually hold a password, so an error about one names
//! the key and what was expected, never the value; so are the store's passwords. So are the signing keys of
//! `[broker]`; a missing `signing_key` is allowed for now (existing setups have none),
//! and the broker warns at connect that jobs are then not authenticated.

use serde::Deserialize;
use toml::Spanned;

use crate::error::Report;
use std::time::Duration;

use crate::fields::{bounded, duration_at_most, positive_duration};
use crate::secret::expand_env;
use crate::{
    BrokerConfig, Secret, SentinelAddress, SentinelsConfig, StoreConfig, StoreServer, TlsFiles,
    MIN_SIGNING_KEY_BYTES,
};

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
    url: Option<Spanned<String>>,
    sentinels: Option<Spanned<Vec<Spanned<String>>>>,
    master_name: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    sentinel_password: Option<Spanned<String>>,
    db: Option<Spanned<i64>>,
    min_replicas: Option<Spanned<i64>>,
    replica_timeout: Option<Spanned<String>>,
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

/// Checks `[store]`; its settings start from [`StoreConfig::at`]'s defaults. `span` is
/// the section's, for the problems that are on no one key's line.
pub(crate) fn store(
    raw: Spanned<RawStore>,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Option<StoreConfig> {
    let span = raw.span();
    let raw = raw.into_inner();
    let server = store_server(&raw, span, env, report);
    let retention = report.read(&raw.retention, "store.retention", |t| positive_duration(t));
    let reclaim_after = report.read(&raw.reclaim_after, "store.reclaim_after", |t| {
        positive_duration(t)
    });
    let min_replicas = report.read(&raw.min_replicas, "store.min_replicas", |&n| {
        bounded(n, 0..=MAX_MIN_REPLICAS)
    });
    let replica_timeout = report.read(&raw.replica_timeout, "store.replica_timeout", |t| {
        duration_at_most(t, MAX_REPLICA_TIMEOUT)
    });
    let tls = match (&raw.url, &raw.sentinels) {
        (Some(url), _) => {
            let is_tls = url.get_ref().starts_with("rediss://");
            tls_files(raw.tls(), "store", is_tls, "rediss", report)
        }
        _ => no_tls_with_sentinels(raw.tls(), report),
    };
    let default = StoreConfig::at(server?);
    Some(StoreConfig {
        retention: retention.unwrap_or(default.retention),
        reclaim_after: reclaim_after.unwrap_or(default.reclaim_after),
        min_replicas: min_replicas.unwrap_or(default.min_replicas),
        replica_timeout: replica_timeout.unwrap_or(default.replica_timeout),
        tls,
        ..default
    })
}

/// The most `min_replicas` may ask for: more replicas than any deployment runs.
const MAX_MIN_REPLICAS: u32 = 10;
/// The longest `replica_timeout`: a write waits this long with its caller (a worker's
/// acknowledgement, a person's "queued") held.
const MAX_REPLICA_TIMEOUT: Duration = Duration::from_secs(60);
/// The highest `db`: Redis has 16 databases unless told otherwise.
const MAX_DB: i64 = 255;

/// `url`, or `sentinels` with `master_name` (and their passwords, `db`): exactly one.
fn store_server(
    raw: &RawStore,
    span: std::ops::Range<usize>,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report,
) -> Option<StoreServer> {
    match (&raw.url, &raw.sentinels) {
        (Some(url), None) => {
            for (key, given) in [
                ("master_name", raw.master_name.as_ref().map(Spanned::span)),
                ("password", raw.password.as_ref().map(Spanned::span)),
                (
                    "sentinel_password",
                    raw.sentinel_password.as_ref().map(Spanned::span),
                ),
                ("db", raw.db.as_ref().map(Spanned::span)),
            ] {
                if let Some(given) = given {
                    report.error(
                        Some(given),
                        &format!("store.{key}"),
                        "goes with sentinels; with url, write the password and the \
                         database in the URL (redis://:password@host:6379/0)",
                    );
                }
            }
            let url = report.check(url, "store.url", |u| {
                self::url(u, &["redis", "rediss"], env)
            });
            Some(StoreServer::Url(url?))
        }
        (None, Some(sentinels)) => {
            let found = report.found();
            let addresses: Vec<SentinelAddress> = sentinels
                .get_ref()
                .iter()
                .filter_map(|s| report.check(s, "store.sentinels", |s| sentinel_address(s)))
                .collect();
            if sentinels.get_ref().is_empty() {
                report.error(
                    Some(sentinels.span()),
                    "store.sentinels",
                    "lists no sentinel: write each as \"host:26379\"",
                );
            }
            let master_name = match &raw.master_name {
                Some(name) => report.check(name, "store.master_name", |n| master_name(n)),
                None => {
                    report.error(
                        Some(sentinels.span()),
                        "store.master_name",
                        "is needed with sentinels: the name they monitor the primary under \
                         (`sentinel monitor <name> <host> <port> <quorum>`)",
                    );
                    None
                }
            };
            let password = report.read(&raw.password, "store.password", |p| secret(p, env));
            let sentinel_password =
                report.read(&raw.sentinel_password, "store.sentinel_password", |p| {
                    secret(p, env)
                });
            let db = report.read(&raw.db, "store.db", |&n| bounded(n, 0..=MAX_DB));
            if report.found() > found {
                return None;
            }
            Some(StoreServer::Sentinels(SentinelsConfig {
                sentinels: addresses,
                master_name: master_name?,
                password,
                sentinel_password,
                db: db.unwrap_or(0),
            }))
        }
        (Some(_), Some(sentinels)) => {
            report.error(
                Some(sentinels.span()),
                "store.sentinels",
                "and store.url both name the store: keep url for one Redis, or sentinels \
                 (with master_name) for Redis Sentinel",
            );
            None
        }
        (None, None) => {
            report.error(
                Some(span),
                "store",
                "names no Redis: set url = \"redis://host:6379/0\" for one Redis, or \
                 sentinels = [\"host:26379\", ...] with master_name for Redis Sentinel",
            );
            None
        }
    }
}

/// The TLS keys, which only a `rediss://` URL uses: the sentinel form connects without
/// TLS.
fn no_tls_with_sentinels(raw: RawTls<'_>, report: &mut Report) -> TlsFiles {
    for (key, given) in [
        ("ca_file", raw.ca_file),
        ("client_cert_file", raw.client_cert_file),
        ("client_key_file", raw.client_key_file),
    ] {
        if let Some(given) = given {
            report.error(
                Some(given.span()),
                &format!("store.{key}"),
                "is for TLS, which only url = \"rediss://...\" offers: the sentinel form \
                 connects without TLS",
            );
        }
    }
    TlsFiles::default()
}

/// A sentinel's `host:port` (`[::1]:26379` for an IPv6 address).
fn sentinel_address(text: &str) -> Result<SentinelAddress, String> {
    let wrong = || format!("\"{text}\" is not host:port: write e.g. \"10.0.0.5:26379\"");
    let (host, port) = text.rsplit_once(':').ok_or_else(wrong)?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.strip_suffix(']').ok_or_else(wrong)?,
        None if host.contains(':') => return Err(wrong()),
        None => host,
    };
    let port = port.parse::<u16>().ok().filter(|&p| p > 0);
    match port {
        Some(port) if !host.is_empty() && !host.contains(['/', '@', ' ', '[', ']']) => {
            Ok(SentinelAddress {
                host: host.to_string(),
                port,
            })
        }
        _ => Err(wrong()),
    }
}

/// A master name as Sentinel accepts one: no spaces, nothing empty.
fn master_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "\"{text}\" is not a master name: the name of `sentinel monitor`, e.g. \"octobox\""
        ));
    }
    Ok(text.to_string())
}

/// A password, after `${NAME}` expansion. The message never quotes the value.
fn secret(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, String> {
    let value = expand_env(text, env).map_err(|e| e.to_string())?;
    if value.is_empty() {
        return Err("is empty: leave the key out for a server without a password".into());
    }
    Ok(Secret::new(value))
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
