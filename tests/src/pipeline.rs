//! `Pipeline`: the production path on one machine — a private Redis and RabbitMQ, and a
//! configuration pointing every process at them. Tests add workers and consoles.

use std::path::PathBuf;
use std::time::Duration;

use crate::console::Console;
use crate::processes::WorkerProcess;
use crate::services::{RabbitMq, Redis};

/// What a scenario tunes.
pub struct Options {
    pub concurrency: usize,
    pub delivery_limit: u32,
    /// More configuration (commands, groups), appended as is.
    pub extra: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 8,
            delivery_limit: 5,
            extra: String::new(),
        }
    }
}

/// The pipeline's `[broker] signing_key`: every job and control message between its
/// processes is signed, as in production.
pub const SIGNING_KEY: &str = "octobox-test-signing-key-0123456789abcdef";

pub struct Pipeline {
    pub redis: Redis,
    pub mq: RabbitMq,
    pub console: Console,
}

impl Pipeline {
    /// The broker configuration the pipeline's processes use, signing key included.
    pub fn broker_config(&self) -> config::BrokerConfig {
        let mut broker = config::BrokerConfig::new(config::Secret::new(self.mq.url()));
        broker.signing_key = Some(config::Secret::new(SIGNING_KEY));
        broker
    }

    pub fn start(options: Options) -> Self {
        let redis = Redis::start();
        let mq = RabbitMq::start();
        let config = format!(
            r#"
[broker]
url = "{mq}"
delivery_limit = {limit}
publish_timeout = "90s"
signing_key = "{key}"

[store]
url = "{redis}"
reclaim_after = "2s"

[worker]
concurrency = {concurrency}

[jobs]
retry_backoff = "200ms"

{extra}
"#,
            mq = mq.url(),
            key = SIGNING_KEY,
            redis = redis.url(),
            limit = options.delivery_limit,
            concurrency = options.concurrency,
            extra = options.extra,
        );
        let console = Console::new().config(&config);
        Pipeline { redis, mq, console }
    }

    pub fn config_path(&self) -> PathBuf {
        PathBuf::from(self.console.config_path())
    }

    pub fn worker(&self, name: &str) -> WorkerProcess {
        WorkerProcess::start(&self.config_path(), name)
    }

    pub fn chaos_worker(&self, name: &str) -> WorkerProcess {
        WorkerProcess::start_with_env(&self.config_path(), name, &[("OCTOBOX_CHAOS_TASKS", "1")])
    }
}

/// Waits until `done` holds, checking every 50 ms, failing with `what` after `patience`.
pub fn wait_until(what: &str, patience: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + patience;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting {patience:?} for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The ids in "queued as job <id>" lines.
pub fn queued_ids(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("queued as job "))
        .map(str::to_string)
        .collect()
}

/// How many result lines ("job <id> (...) ...") each job id got.
pub fn results_per_job(text: &str) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("job ") {
            if let Some((id, tail)) = rest.split_once(' ') {
                if tail.starts_with('(') {
                    *counts.entry(id.to_string()).or_default() += 1;
                }
            }
        }
    }
    counts
}
