//! The one configuration file every role reads (`octobox.toml`), and its loader.
//!
//! Its own crate so that a change to one role's section recompiles only the roles that
//! read it, and so that the configuration depends on nothing but serde, toml, the
//! lexicon (durations) and croner (cron expressions are checked at load, with their line).
//!
//! - [`Config`]: the validated file, one field per section.
//! - `load`: [`Config::load`] and [`Config::parse`], which calls one function per
//!   section; the small sections `[acl]`, `[jobs]`, `[worker]`.
//! - `command`: the `[[command]]` entries, and [`Config::command_error`] for the roles.
//! - `container`: the `container = { ... }` table of a command ([`ContainerCommand`]).
//! - `durable`: `[broker]` and `[store]`, set together or not at all.
//! - [`limits`]: [`ContainerLimits`], [`OutputFormat`], sizes (`parse_size`, `SizeError`).
//! - `schedule`: `[scheduler]` and `[[schedule]]`, [`parse_cron`] and [`CronError`].
//! - `shipper`: `[[shipper]]` ([`ShipperConfig`]: a source, a sink, a window).
//! - `api`: `[api]`, the HTTP API's tokens ([`ApiConfig`], [`ApiToken`]).
//! - [`tasks`]: `[tasks]`, the day-one native tasks ([`TasksConfig`]).
//! - `ssh`, `slack`: their sections. `secret`: [`Secret`] and `${ENV}` expansion.
//! - `error`: [`ConfigError`] (file, line, key, message), [`ConfigErrors`], and the
//!   `Report` every section writes its problems to.
//! - `fields`: readers every section shares (bounded whole numbers, durations with a
//!   floor, identities), so one mistake reads the same in every section.
//!
//! [`Config::load`] parses and validates it, and reports every problem at once, each
//! naming the file, the line and the key. Keys that hold secrets (broker and store URLs,
//! later tokens) are [`Secret`]s: they may be written as `${NAME}` to read an environment
//! variable, and they never appear in logs or `Debug` output.
//!
//! `compose/octobox.example.toml` documents every key; keep it in step with this module.

pub mod api;
mod command;
mod container;
mod durable;
mod error;
mod fields;
pub mod limits;
mod load;
mod schedule;
mod secret;
mod shipper;
mod slack;
mod ssh;
pub mod tasks;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

pub use api::{ApiConfig, ApiToken, API_ADAPTER};
pub use container::{fill_template, template_slots, ContainerCommand};
pub use durable::NotDurable;
pub use error::{ConfigError, ConfigErrors};
pub use limits::{ContainerLimits, OutputFormat};
pub use schedule::{
    parse_cron, CronError, Deliver, Missed, ScheduleConfig, ScheduleRuns, SchedulerConfig,
};
pub use secret::Secret;
pub use shipper::{HttpSourceConfig, ShipperConfig, SinkConfig, SourceConfig};
pub use slack::{SlackConfig, SlackMode, SLACK_API_URL};
pub use ssh::{SshConfig, SshLimits};
pub use tasks::{
    DnsSettings, HttpCheckSettings, ResolverAddress, ResolverConfig, TasksConfig,
    TlsExpirySettings, WalkSiteSettings, WhoisSettings, DAY_ONE_TASKS, MAX_WALK_DEPTH,
};

/// A validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where it was read from, for error messages: a path, or `built-in`.
    pub source: String,
    pub bot: BotConfig,
    pub acl: AclConfig,
    pub jobs: JobsConfig,
    pub worker: WorkerConfig,
    /// `[quota]`: how much one person may ask of the workers.
    pub quota: QuotaConfig,
    /// `[audit]`: how long the audit trail keeps its entries.
    pub audit: AuditConfig,
    pub commands: Vec<CommandConfig>,
    pub broker: Option<BrokerConfig>,
    pub store: Option<StoreConfig>,
    /// `[ssh]`: the SSH server; `None` means no SSH listener.
    pub ssh: Option<SshConfig>,
    /// `[scheduler]`, `[[schedule]]` and `[[shipper]]`.
    pub scheduler: SchedulerConfig,
    pub schedules: Vec<ScheduleConfig>,
    pub shippers: Vec<ShipperConfig>,
    /// `[slack]`: the Slack adapter, when configured.
    pub slack: Option<SlackConfig>,
    /// `[http]`: where the process serves its health, readiness and metrics.
    pub http: HttpConfig,
    /// `[api]`: the tokens of the HTTP API and dashboard (served on `[http] listen`).
    pub api: ApiConfig,
    /// `[tasks]`: the day-one native tasks (`dns`, `whois`, `http_check`,
    /// `tls_expiry`, `walk_site`): which are on, who may run them, their settings.
    pub tasks: TasksConfig,
}

impl Config {
    /// Runs embedded (in-process queue and store) unless both `[broker]` and `[store]`
    /// are configured.
    pub fn is_embedded(&self) -> bool {
        self.broker.is_none() || self.store.is_none()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BotConfig {
    /// The name people address the bot by.
    pub name: String,
    /// The longest message, in characters, any adapter passes on; a longer one is
    /// refused unread (a command is a line, not a document).
    pub max_message_length: usize,
}

/// The default of `[bot] max_message_length`.
pub const MAX_MESSAGE_LENGTH: usize = 4096;

impl Default for BotConfig {
    fn default() -> Self {
        BotConfig {
            name: "octobot".to_string(),
            max_message_length: MAX_MESSAGE_LENGTH,
        }
    }
}

/// Whether a command with no `allow` list may be run by anyone (`[acl] default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AclConfig {
    /// What a command without an `allow` list follows. Access is never assumed: when
    /// the file states no default, every configured command must have its own `allow`.
    pub default: Option<DefaultPolicy>,
    /// Group name to its members: identities such as `console:alice` or `slack:U024BE7LH`.
    pub groups: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// How long a job may run when its command sets no `timeout`.
    pub timeout: Duration,
    /// How many times a job whose task failed in a retryable way is tried again.
    pub retries: u32,
    /// The wait before the first retry; each further retry waits twice as long.
    pub retry_backoff: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            timeout: Duration::from_secs(600),
            retries: 2,
            retry_backoff: Duration::from_secs(1),
        }
    }
}

/// `[quota]`: what one person may ask for, so that nobody can fill every worker slot or
/// flood the bot. Counted in the store, so every bot of one Octobox shares the counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaConfig {
    /// Jobs one person may have queued or running at once.
    pub running_per_person: u32,
    /// Messages one person may send per minute (answered or not).
    pub requests_per_minute: u32,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            running_per_person: 4,
            requests_per_minute: 60,
        }
    }
}

/// `[audit]`: the audit trail every request is recorded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// How long an entry is kept (the store forgets older ones).
    pub keep: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            keep: Duration::from_secs(90 * 86_400),
        }
    }
}

/// `[http]`: the listener every process serves `/healthz`, `/readyz` and `/metrics` on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpConfig {
    /// Where to listen; `None` (no `listen`) serves nothing.
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How this worker names itself in results and `workers`; defaults to `worker@<host>`.
    pub name: Option<String>,
    /// How many native jobs one worker runs at once.
    pub concurrency: usize,
    /// How many container jobs one worker runs at once, besides the native ones.
    pub container_concurrency: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            name: None,
            concurrency: 8,
            container_concurrency: 4,
        }
    }
}

/// One `[[command]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandConfig {
    /// The line of its `[[command]]` header, for error messages.
    pub line: usize,
    pub name: Option<String>,
    pub pattern: String,
    pub help: String,
    pub section: String,
    pub examples: Vec<String>,
    pub runs: Runs,
    /// `user:<identity>` and `group:<name>` entries; `None` means the default policy.
    pub allow: Option<Vec<AllowEntry>>,
    pub timeout: Option<Duration>,
    /// `max_running`: jobs of this command queued or running at once, everyone's together.
    pub max_running: Option<u32>,
    /// `max_per_minute`: jobs of this command started per minute, everyone's together.
    pub max_per_minute: Option<u32>,
    /// `approval`: its jobs wait for a second person's yes.
    pub approval: Option<ApprovalConfig>,
    /// `fan_out`: the command names an inventory group and runs once per host.
    pub fan_out: Option<FanOutConfig>,
}

/// `fan_out = { group = "group", host = "target" }`: slot `group` of the pattern names an
/// inventory group; the command runs as one job per host of it, each given the host's
/// name as argument `host` (`{host}` in a container's argv, or a native task's
/// parameter), and the requester gets one summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOutConfig {
    pub group: String,
    pub host: String,
}

impl FanOutConfig {
    /// The argument each job gets the host's name in, unless `host` says otherwise.
    pub const DEFAULT_HOST: &'static str = "host";
}

/// `approval = { by = "group:leads", ttl = "15m", reason = true, channel = "C0123" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalConfig {
    /// Who may approve: a group or a user, never `everyone`. The requester never may.
    pub by: AllowEntry,
    /// How long the request waits for a decision before it expires.
    pub ttl: Duration,
    /// Whether the requester must give a reason (`... because <reason>`).
    pub reason: bool,
    /// A Slack channel the approval prompt also goes to, besides the request's thread.
    pub channel: Option<String>,
}

impl ApprovalConfig {
    /// The default of `ttl`.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
}

impl CommandConfig {
    /// The declaration the lexicon compiles.
    pub fn spec(&self) -> lexicon::CommandSpec {
        lexicon::CommandSpec {
            name: self.name.clone(),
            pattern: self.pattern.clone(),
            help: self.help.clone(),
            section: self.section.clone(),
            examples: self.examples.clone(),
        }
    }
}

/// What runs a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runs {
    /// Answered by the bot itself, at once.
    Builtin(String),
    /// A job for a worker's native task registry.
    Native(String),
    /// A job that runs a container image (`container = { ... }`).
    Container(Box<ContainerCommand>),
}

/// One entry of an `allow` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    User(String),
    Group(String),
    /// `everyone`: anyone who can reach the bot, said on purpose.
    Everyone,
}

impl std::fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowEntry::User(u) => write!(f, "user:{u}"),
            AllowEntry::Group(g) => write!(f, "group:{g}"),
            AllowEntry::Everyone => f.write_str("everyone"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `amqp://user:password@host:5672/vhost`: the node tried first.
    pub url: Secret,
    /// The cluster's other nodes (`urls = [...]` past the first), tried in turn when the
    /// one in use fails.
    pub other_urls: Vec<Secret>,
    /// How many times a job may be delivered before it is dead-lettered: a job that
    /// crashes every worker that takes it stops there.
    pub delivery_limit: u32,
    /// How long a publish may wait for the broker (through reconnects) before the
    /// requester is told the job could not be queued.
    pub publish_timeout: Duration,
    /// `signing_key`: the HMAC key every job and control message is signed with, and
    /// checked against on receipt, so that someone who holds only the broker's
    /// credentials cannot make a worker run a job. At least [`MIN_SIGNING_KEY_BYTES`]
    /// bytes. `None` (the key is not set): messages are neither signed nor checked,
    /// which the broker warns about when it connects.
    pub signing_key: Option<Secret>,
    /// `previous_signing_key`: during a rotation, the key being replaced; still accepted
    /// when checking, never used to sign.
    pub previous_signing_key: Option<Secret>,
    /// TLS (`amqps://`) beyond the system's trust store: a private CA, a client
    /// certificate.
    pub tls: TlsFiles,
}

/// The shortest signing key accepted: HMAC-SHA256's own output size, so that the key is
/// not the weak part.
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Where the Redis that takes writes is: one URL, or the primary sentinels name.
    pub server: StoreServer,
    /// How long job records and results are kept.
    pub retention: Duration,
    /// How long an event read by a bot that then died stays pending before another bot
    /// process takes it over.
    pub reclaim_after: Duration,
    /// TLS (`rediss://`) beyond the system's trust store: a private CA, a client
    /// certificate.
    pub tls: TlsFiles,
    /// `min_replicas`: how many replicas must acknowledge the writes a caller acts on
    /// (a job's record and result, a schedule's fire, a shipper's checkpoint) before
    /// they count as done (Redis `WAIT`); 0 sends no `WAIT`.
    pub min_replicas: u32,
    /// `replica_timeout`: how long such a write waits for those acknowledgements before
    /// it fails.
    pub replica_timeout: Duration,
}

/// Where `[store]` finds Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreServer {
    /// `url`: one Redis, `redis://host:6379/0`; it holds any password.
    Url(Secret),
    /// `sentinels` and `master_name`: the primary Redis Sentinel names, asked again
    /// whenever it stops answering or refuses a write, so a failover is followed.
    Sentinels(SentinelsConfig),
}

/// `[store]` through Redis Sentinel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelsConfig {
    /// The sentinels, `host:port` each, asked in this order.
    pub sentinels: Vec<SentinelAddress>,
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> ...`).
    pub master_name: String,
    /// `password`: the password of the Redis nodes (primary and replicas).
    pub password: Option<Secret>,
    /// `sentinel_password`: the password of the sentinels themselves.
    pub sentinel_password: Option<Secret>,
    /// `db`: the database number on the primary.
    pub db: i64,
}

/// One sentinel's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelAddress {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for SentinelAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port),
            false => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl StoreServer {
    /// `min_replicas` when the file does not set it: on whenever replicas exist, which
    /// sentinels imply; off for a single URL, which may well have none.
    pub fn default_min_replicas(&self) -> u32 {
        match self {
            StoreServer::Url(_) => 0,
            StoreServer::Sentinels(_) => 1,
        }
    }
}

/// The TLS files of `[broker]` (`amqps://`) or `[store]` (`rediss://`), PEM, read when
/// the connection is opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the server's certificate: the store trusts it instead of the
    /// system's roots; the broker trusts it as well as the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// A client certificate and its key, for servers that ask for one (Redis'
    /// `tls-auth-clients yes`, RabbitMQ's `fail_if_no_peer_cert`).
    pub client_cert_file: Option<std::path::PathBuf>,
    pub client_key_file: Option<std::path::PathBuf>,
}

impl BrokerConfig {
    /// Every node's URL, the first one first.
    pub fn urls(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.url).chain(&self.other_urls)
    }

    pub fn new(url: Secret) -> Self {
        BrokerConfig {
            url,
            other_urls: Vec::new(),
            delivery_limit: 5,
            publish_timeout: Duration::from_secs(30),
            signing_key: None,
            previous_signing_key: None,
            tls: TlsFiles::default(),
        }
    }
}

impl StoreConfig {
    /// The default of `replica_timeout`.
    pub const DEFAULT_REPLICA_TIMEOUT: Duration = Duration::from_secs(1);

    /// One Redis at `url`.
    pub fn new(url: Secret) -> Self {
        Self::at(StoreServer::Url(url))
    }

    /// Redis at `server`, with the defaults (`min_replicas` as
    /// [`StoreServer::default_min_replicas`] says).
    pub fn at(server: StoreServer) -> Self {
        StoreConfig {
            min_replicas: server.default_min_replicas(),
            server,
            retention: Duration::from_secs(7 * 86_400),
            reclaim_after: Duration::from_secs(30),
            tls: TlsFiles::default(),
            replica_timeout: Self::DEFAULT_REPLICA_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests;
