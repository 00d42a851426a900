//! `Metrics`: the process's metric families, one registry per process (the bot's embedded
//! mode puts the worker's and the scheduler's in the bot's), rendered by `/metrics` in
//! Prometheus's text format.
//!
//! Names follow celery-exporter and Sidekiq's exporters (`…_total` counters by command
//! and status, `…_seconds` histograms, gauges for depth and busy slots). Labels stay
//! bounded: a label value is a command, schedule, shipper, Slack method or adapter name
//! from the configuration or the code, never a job id or a person, and past
//! [`LABEL_VALUES_MAX`] distinct values (a configuration that grew wild, a worker fed
//! names it does not know) new ones are counted under `other`.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// The most distinct label values kept across all families; later ones become `other`.
pub const LABEL_VALUES_MAX: usize = 2_000;

/// The process's metrics; see the module documentation.
pub struct Metrics {
    registry: Registry,
    labels: Mutex<HashSet<String>>,
    pub build_info: IntGaugeVec,
    pub jobs_submitted: IntCounterVec,
    pub jobs_started: IntCounterVec,
    pub jobs_finished: IntCounterVec,
    pub jobs_retried: IntCounterVec,
    pub jobs_dead_lettered: IntCounterVec,
    pub job_run_seconds: HistogramVec,
    pub job_queue_wait_seconds: HistogramVec,
    pub queue_depth: IntGaugeVec,
    pub workers_live: IntGauge,
    pub worker_slots: IntGaugeVec,
    pub worker_slots_busy: IntGaugeVec,
    pub reply_delivery_seconds: HistogramVec,
    pub slack_calls: IntCounterVec,
    pub ssh_sessions: IntGauge,
    pub ssh_sessions_total: IntCounter,
    pub schedule_fires: IntCounterVec,
    pub scheduler_lease_held: Gauge,
    pub shipper_records: IntCounterVec,
    pub shipper_bytes: IntCounterVec,
}

/// The process's one [`Metrics`].
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// Buckets for how long a job runs: 10 ms to 2 h.
const RUN_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0,
];
/// Buckets for a wait in the queue or on the way back: 1 ms to 5 min.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            let h = HistogramVec::new(opts, labels).expect("a valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("registered once");
            h
        };
        let workers_live = IntGauge::new(
            "octobox_workers_live",
            "Workers whose heartbeat is current.",
        )
        .expect("a valid metric");
        let ssh_sessions = IntGauge::new("octobox_ssh_sessions", "SSH sessions open now.")
            .expect("a valid metric");
        let ssh_sessions_total = IntCounter::new(
            "octobox_ssh_sessions_total",
            "SSH sessions opened (logged in) since the process started.",
        )
        .expect("a valid metric");
        let scheduler_lease_held = Gauge::new(
            "octobox_scheduler_lease_held",
            "1 while this scheduler holds the lease and fires schedules, 0 on standby.",
        )
        .expect("a valid metric");
        for single in [
            Box::new(workers_live.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(ssh_sessions.clone()),
            Box::new(ssh_sessions_total.clone()),
            Box::new(scheduler_lease_held.clone()),
        ] {
            registry.register(single).expect("registered once");
        }
        Metrics {
            labels: Mutex::new(HashSet::new()),
            build_info: gauge(
                "octobox_build_info",
                "1, labelled with the role this process plays and its version.",
                &["role", "version"],
            ),
            jobs_submitted: counter(
                "octobox_jobs_submitted_total",
                "Jobs the bot queued (or held for approval), by command.",
                &["command"],
            ),
            jobs_started: counter(
                "octobox_jobs_started_total",
                "Jobs a worker started, by command.",
                &["command"],
            ),
            jobs_finished: counter(
                "octobox_jobs_finished_total",
                "Jobs a worker finished, by command and final status.",
                &["command", "status"],
            ),
            jobs_retried: counter(
                "octobox_jobs_retried_total",
                "Job attempts that failed and were queued again, by command.",
                &["command"],
            ),
            jobs_dead_lettered: counter(
                "octobox_jobs_dead_lettered_total",
                "Jobs set aside in the dead letters, by command.",
                &["command"],
            ),
            job_run_seconds: histogram(
                "octobox_job_run_seconds",
                "How long a job ran on its worker, by command.",
                &["command"],
                RUN_BUCKETS,
            ),
            job_queue_wait_seconds: histogram(
                "octobox_job_queue_wait_seconds",
                "How long a job waited from being queued to starting, by command.",
                &["command"],
                WAIT_BUCKETS,
            ),
            queue_depth: gauge(
                "octobox_queue_depth",
                "Messages waiting in a queue (jobs, containers, dead_letters).",
                &["queue"],
            ),
            workers_live,
            worker_slots: gauge(
                "octobox_worker_slots",
                "Jobs this worker can run at once, by kind (native, container).",
                &["kind"],
            ),
            worker_slots_busy: gauge(
                "octobox_worker_slots_busy",
                "Jobs this worker is running now, by kind (native, container).",
                &["kind"],
            ),
            reply_delivery_seconds: histogram(
                "octobox_reply_delivery_seconds",
                "From a job's result being stored to its reply going out, by adapter.",
                &["adapter"],
                WAIT_BUCKETS,
            ),
            slack_calls: counter(
                "octobox_slack_calls_total",
                "Calls to Slack's Web API, by method and result (ok, error, rate_limited).",
                &["method", "result"],
            ),
            ssh_sessions,
            ssh_sessions_total,
            schedule_fires: counter(
                "octobox_schedule_fires_total",
                "Schedule slots fired (jobs queued by the scheduler), by schedule.",
                &["schedule"],
            ),
            scheduler_lease_held,
            shipper_records: counter(
                "octobox_shipper_records_total",
                "Records a shipper delivered to its sink, by shipper.",
                &["shipper"],
            ),
            shipper_bytes: counter(
                "octobox_shipper_bytes_total",
                "Bytes a shipper delivered to its sink, by shipper.",
                &["shipper"],
            ),
            registry,
        }
    }

    /// `value` as a label value: itself while fewer than [`LABEL_VALUES_MAX`] distinct
    /// values have been seen (or it is one of them), `other` after.
    pub fn label<'a>(&self, value: &'a str) -> &'a str {
        let mut seen = self.labels.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(value) {
            return value;
        }
        if seen.len() >= LABEL_VALUES_MAX {
            return "other";
        }
        seen.insert(value.to_string());
        value
    }

    /// Says which role this process plays (`bot`, `worker`, `scheduler`); the embedded bot
    /// plays all three.
    pub fn set_role(&self, role: &str) {
        self.build_info
            .with_label_values(&[role, env!("CARGO_PKG_VERSION")])
            .set(1);
    }

    /// Makes the job counters of `commands` exist at 0, so that Prometheus's `increase()`
    /// sees their first job (a series that appears at 1 has not increased).
    pub fn start_at_zero<'a>(&self, commands: impl Iterator<Item = &'a str>) {
        for command in commands {
            let command = self.label(command);
            self.jobs_submitted.with_label_values(&[command]);
            self.jobs_started.with_label_values(&[command]);
            self.jobs_retried.with_label_values(&[command]);
            self.jobs_dead_lettered.with_label_values(&[command]);
            for status in ["succeeded", "failed", "timed_out", "cancelled"] {
                self.jobs_finished.with_label_values(&[command, status]);
            }
        }
    }

    /// Counts a job queued for `command`.
    pub fn job_submitted(&self, command: &str) {
        self.jobs_submitted
            .with_label_values(&[self.label(command)])
            .inc();
    }

    /// Counts a job that started after waiting `waited` seconds in the queue.
    pub fn job_started(&self, command: &str, waited: f64) {
        let command = self.label(command);
        self.jobs_started.with_label_values(&[command]).inc();
        self.job_queue_wait_seconds
            .with_label_values(&[command])
            .observe(waited.max(0.0));
    }

    /// Counts a job that ended with `status` after running `ran` seconds.
    pub fn job_finished(&self, command: &str, status: &str, ran: f64) {
        let command = self.label(command);
        self.jobs_finished
            .with_label_values(&[command, status])
            .inc();
        self.job_run_seconds
            .with_label_values(&[command])
            .observe(ran.max(0.0));
    }

    /// Counts a Slack Web API call to `method` that ended in `result`.
    pub fn slack_call(&self, method: &str, result: &str) {
        self.slack_calls
            .with_label_values(&[self.label(method), result])
            .inc();
    }

    /// Every family in Prometheus's text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "the metrics could not be rendered");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_past_the_limit_are_counted_as_other() {
        let m = Metrics::new();
        for i in 0..LABEL_VALUES_MAX {
            assert_eq!(m.label(&format!("c{i}")), format!("c{i}"));
        }
        assert_eq!(m.label("one-more"), "other");
        assert_eq!(m.label("c7"), "c7", "a value already seen keeps its name");
        m.job_submitted("yet-another");
        let text = m.render();
        assert!(
            text.contains("octobox_jobs_submitted_total{command=\"other\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn rendered_text_names_each_family_with_help_and_type() {
        let m = Metrics::new();
        m.set_role("worker");
        m.job_started("deploy", 0.2);
        m.job_finished("deploy", "succeeded", 1.5);
        let text = m.render();
        assert!(
            text.contains("# TYPE octobox_jobs_finished_total counter"),
            "{text}"
        );
        assert!(
            text.contains("octobox_jobs_finished_total{command=\"deploy\",status=\"succeeded\"} 1")
        );
        assert!(text.contains("octobox_job_run_seconds_bucket{command=\"deploy\",le=\"2.5\"} 1"));
        assert!(text.contains("octobox_build_info{role=\"worker\",version=\""));
    }

    #[test]
    fn the_counters_of_declared_commands_start_at_zero() {
        let m = Metrics::new();
        m.start_at_zero(["deploy", "scan"].into_iter());
        let text = m.render();
        for series in [
            "octobox_jobs_submitted_total{command=\"scan\"} 0",
            "octobox_jobs_finished_total{command=\"deploy\",status=\"failed\"} 0",
            "octobox_jobs_dead_lettered_total{command=\"deploy\"} 0",
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }
}
