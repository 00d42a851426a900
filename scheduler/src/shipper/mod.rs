//! `Shipper`: records moved from a source to a sink, window by window, exactly once.
//!
//! A window is a span of time `[start, end)` of the configured length, aligned to the
//! Unix epoch (so `1d` windows are UTC days). A run ships every whole window from the
//! checkpoint (or the configured first window, or else the last whole one) up to now,
//! and moves the checkpoint past each window once the sink has all of it.
//!
//! Exactly once, per kind of sink:
//! - window sinks (files, S3) write one object per window, named after the window, in
//!   one step (a file renamed into place, one PUT). A run killed half way leaves no
//!   object and no checkpoint move; the next run ships the window again and the object
//!   is written once. A window shipped twice overwrites itself.
//! - page sinks (the HTTP collector) take a window a page at a time, and the checkpoint
//!   also records the next page's link after each page, so a killed run resumes at the
//!   page it had not finished. Each batch carries an `Idempotency-Key` derived from
//!   shipper, window, page and batch, so a collector can drop the one batch that a kill
//!   between POST and checkpoint sends twice.
//!
//! - `window`: `Window`. `checkpoint`: `Checkpoint` in the schedule store.
//! - `source`: `Source` and its two kinds: `HttpSource` (since/until, page size,
//!   next-page links on its own origin, `${ENV}` headers, pages read up to `PAGE_MAX`)
//!   and `AuditSource` (the audit trail in the job store, paged by position).
//! - `sink`: `Sink` and its three kinds. `retry`: `HttpRetry`, shared by source and sinks.

mod checkpoint;
mod retry;
pub mod sink;
pub mod source;
mod window;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use config::ShipperConfig;
use jobs::{ScheduleStore, Store, StoreError};

pub use checkpoint::Checkpoint;
pub use source::PAGE_MAX;
pub use window::Window;

use checkpoint::Checkpoints;
use sink::Sink;
use source::Source;

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("the source failed: {0}")]
    Source(String),
    #[error("the sink failed: {0}")]
    Sink(String),
    #[error("the checkpoint could not be kept: {0}")]
    Checkpoint(#[from] StoreError),
}

/// What one run moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipReport {
    pub windows: u64,
    pub records: u64,
    /// Bytes written to the sink (compressed, where it compresses).
    pub bytes: u64,
    pub pages: u64,
    /// Requests sent again after a failure (source and sink).
    pub retries: u64,
    pub took: Duration,
}

impl fmt::Display for ShipReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shipped {} window{}: {} records, {} bytes, {} pages, {} retries, in {}",
            self.windows,
            if self.windows == 1 { "" } else { "s" },
            self.records,
            self.bytes,
            self.pages,
            self.retries,
            lexicon::format_duration(self.took.max(Duration::from_millis(1))),
        )
    }
}

pub struct Shipper {
    config: ShipperConfig,
    source: Box<dyn Source>,
    sink: Box<dyn Sink>,
    checkpoints: Checkpoints,
}

impl Shipper {
    /// The shipper `config` describes, its checkpoint kept in `schedules`; an audit
    /// source reads the trail of `store`.
    pub fn new(
        config: ShipperConfig,
        schedules: Arc<dyn ScheduleStore>,
        store: Arc<dyn Store>,
    ) -> Self {
        let client = http_client();
        Shipper {
            source: source::build(&config.source, client.clone(), store),
            sink: sink::build(&config.sink, client),
            checkpoints: Checkpoints::new(schedules, &config.name),
            config,
        }
    }

    /// Ships every whole window that ended by `now` and is not shipped yet.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<ShipReport, ShipError> {
        let started = Instant::now();
        let mut report = ShipReport::default();
        let length = self.config.window;
        let checkpoint = self.checkpoints.load().await?;
        let mut start = match &checkpoint {
            Some(c) => c.shipped_until,
            None => self
                .config
                .first_window
                .unwrap_or_else(|| Window::containing(now, length).start - length),
        };
        let mut resume = checkpoint.and_then(|c| c.next_page.map(|next| (next, c.pages)));
        loop {
            let window = Window::starting(start, length);
            if window.end > now {
                break;
            }
            let resume_at = resume.take().filter(|_| self.sink.takes_pages());
            self.ship_window(&window, resume_at, &mut report).await?;
            self.checkpoints.save(&Checkpoint::after(&window)).await?;
            report.windows += 1;
            start = window.end;
        }
        report.took = started.elapsed();
        Ok(report)
    }

    async fn ship_window(
        &self,
        window: &Window,
        resume: Option<(String, u64)>,
        report: &mut ShipReport,
    ) -> Result<(), ShipError> {
        let name = &self.config.name;
        let mut writer = self.sink.open(name, window).await?;
        let (mut link, mut page) = match resume {
            Some((next, pages)) => {
                tracing::info!(shipper = %name, window = %window, pages, "resuming a window from its checkpoint");
                (Some(next), pages)
            }
            None => (None, 0),
        };
        loop {
            let fetched = self
                .source
                .fetch(window, link.as_deref(), &mut report.retries)
                .await?;
            report.pages += 1;
            report.records += fetched.records.len() as u64;
            let key = format!("{name}:{}:{page}", window.key());
            let written = writer
                .write(&fetched.records, &key, &mut report.retries)
                .await?;
            report.bytes += written;
            let m = octobox_http::metrics();
            let shipper = m.label(name);
            m.shipper_records
                .with_label_values(&[shipper])
                .inc_by(fetched.records.len() as u64);
            m.shipper_bytes
                .with_label_values(&[shipper])
                .inc_by(written);
            page += 1;
            let Some(next) = fetched.next else { break };
            if self.sink.takes_pages() {
                let progress = Checkpoint::within(window, next.clone(), page);
                self.checkpoints.save(&progress).await?;
            }
            link = Some(next);
        }
        let written = writer.finish(&mut report.retries).await?;
        report.bytes += written;
        let m = octobox_http::metrics();
        m.shipper_bytes
            .with_label_values(&[m.label(name)])
            .inc_by(written);
        Ok(())
    }
}

/// The HTTP client of sources and sinks: connection pooling, timeouts so a stuck server
/// fails a request (which is retried) instead of the whole run, and redirects followed
/// only on the same origin, since requests carry configured secrets (reqwest drops only
/// `Authorization` and cookies on a redirect elsewhere, not an `X-Api-Key`).
fn http_client() -> reqwest::Client {
    let same_origin = reqwest::redirect::Policy::custom(|attempt| {
        let elsewhere = attempt
            .previous()
            .last()
            .is_some_and(|from| from.origin() != attempt.url().origin());
        if elsewhere || attempt.previous().len() >= 5 {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .redirect(same_origin)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "HTTP client with timeouts unavailable; using the default");
            reqwest::Client::new()
        })
}
