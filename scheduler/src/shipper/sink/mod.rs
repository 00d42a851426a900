//! Sinks: where shipped records go, as JSON Lines.
//!
//! - `files`: `FileSink` — one file per window, renamed into place when whole.
//! - `http`: `HttpSink` — batches POSTed to a collector, page by page.
//! - `s3`: `S3Sink` — one object per window in an S3-compatible bucket.
//! - this module: the `Sink` and `WindowWriter` traits; `ObjectStore`, what the two
//!   window sinks are (a place that stores a named object in one step), and
//!   `WholeWindows`, the `Sink` that buffers a window as `JsonLines` (optionally
//!   gzip-compressed) and stores it there when it is whole.

mod files;
mod http;
mod s3;

use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use config::SinkConfig;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::Value;

use super::window::Window;
use super::ShipError;

pub use files::FileSink;
pub use http::HttpSink;
pub use s3::S3Sink;

#[async_trait]
pub trait Sink: Send + Sync {
    /// `true` if the sink takes a window a page at a time (so a run can resume inside
    /// a window); `false` if it stores a window whole, in one step.
    fn takes_pages(&self) -> bool;

    async fn open(
        &self,
        shipper: &str,
        window: &Window,
    ) -> Result<Box<dyn WindowWriter>, ShipError>;
}

/// One window being written.
#[async_trait]
pub trait WindowWriter: Send {
    /// Takes one page of records; `key` names the page uniquely (shipper, window, page).
    /// Returns the bytes sent to the sink now.
    async fn write(
        &mut self,
        records: &[Value],
        key: &str,
        retries: &mut u64,
    ) -> Result<u64, ShipError>;

    /// Completes the window; returns the bytes sent to the sink now.
    async fn finish(self: Box<Self>, retries: &mut u64) -> Result<u64, ShipError>;
}

pub fn build(config: &SinkConfig, client: reqwest::Client) -> Box<dyn Sink> {
    match config {
        SinkConfig::Files { dir, gzip } => Box::new(WholeWindows {
            store: Arc::new(FileSink::new(dir.into())),
            gzip: *gzip,
        }),
        SinkConfig::Http {
            url,
            batch,
            headers,
        } => Box::new(HttpSink::new(url.clone(), *batch, headers.clone(), client)),
        SinkConfig::S3 { gzip, .. } => Box::new(WholeWindows {
            store: Arc::new(S3Sink::new(config, client)),
            gzip: *gzip,
        }),
    }
}

/// A place that stores a window whole, as one named object, in one step.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Stores `bytes` as `name`, replacing what was there; returns the bytes written.
    async fn put(&self, name: &str, bytes: Vec<u8>, retries: &mut u64) -> Result<u64, ShipError>;
}

/// The `Sink` of an [`ObjectStore`]: each window buffered, then stored under its name.
pub struct WholeWindows {
    store: Arc<dyn ObjectStore>,
    gzip: bool,
}

#[async_trait]
impl Sink for WholeWindows {
    fn takes_pages(&self) -> bool {
        false
    }

    async fn open(
        &self,
        shipper: &str,
        window: &Window,
    ) -> Result<Box<dyn WindowWriter>, ShipError> {
        Ok(Box::new(WholeWindow {
            store: self.store.clone(),
            name: object_name(shipper, window, self.gzip),
            lines: JsonLines::new(self.gzip),
        }))
    }
}

struct WholeWindow {
    store: Arc<dyn ObjectStore>,
    name: String,
    lines: JsonLines,
}

#[async_trait]
impl WindowWriter for WholeWindow {
    async fn write(
        &mut self,
        records: &[Value],
        _key: &str,
        _retries: &mut u64,
    ) -> Result<u64, ShipError> {
        self.lines.push(records)?;
        Ok(0)
    }

    async fn finish(self: Box<Self>, retries: &mut u64) -> Result<u64, ShipError> {
        let bytes = self.lines.into_bytes()?;
        self.store.put(&self.name, bytes, retries).await
    }
}

/// The object or file name of a window: `<shipper>/<window key>.jsonl[.gz]`.
pub(crate) fn object_name(shipper: &str, window: &Window, gzip: bool) -> String {
    let ext = if gzip { "jsonl.gz" } else { "jsonl" };
    format!("{shipper}/{}.{ext}", window.key())
}

/// Records as JSON Lines in memory, optionally gzip-compressed as they arrive.
pub(crate) enum JsonLines {
    Plain(Vec<u8>),
    Gzip(GzEncoder<Vec<u8>>),
}

impl JsonLines {
    pub(crate) fn new(gzip: bool) -> Self {
        if gzip {
            JsonLines::Gzip(GzEncoder::new(Vec::new(), Compression::fast()))
        } else {
            JsonLines::Plain(Vec::new())
        }
    }

    pub(crate) fn push(&mut self, records: &[Value]) -> Result<(), ShipError> {
        let failed = |e: std::io::Error| ShipError::Sink(format!("cannot encode records: {e}"));
        match self {
            JsonLines::Plain(v) => write_lines(v, records).map_err(failed),
            JsonLines::Gzip(g) => {
                // The page is encoded first and compressed in one call: fed a few bytes at
                // a time (one JSON token per write), the encoder is many times slower.
                let mut page = Vec::new();
                write_lines(&mut page, records).map_err(failed)?;
                g.write_all(&page).map_err(failed)
            }
        }
    }

    pub(crate) fn into_bytes(self) -> Result<Vec<u8>, ShipError> {
        match self {
            JsonLines::Plain(v) => Ok(v),
            JsonLines::Gzip(g) => g
                .finish()
                .map_err(|e| ShipError::Sink(format!("cannot compress records: {e}"))),
        }
    }
}

pub(crate) fn write_lines(out: &mut dyn Write, records: &[Value]) -> std::io::Result<()> {
    for record in records {
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
