//! Sources: where a shipper reads a window's records, a page at a time.
//!
//! - `http`: `HttpSource` — an HTTP JSON API answering since/until with pages and
//!   next-page links (same origin only), `${ENV}` headers, pages read up to `PAGE_MAX`.
//! - `audit`: `AuditSource` — Octobox's own audit trail, read from the job store.
//! - this module: the `Source` trait and its `Page`. A page names the next one by a link
//!   (a URL, an audit trail position) that the shipper keeps in the checkpoint for page
//!   sinks, so every source resumes inside a window the same way.

mod audit;
mod http;

use std::sync::Arc;

use async_trait::async_trait;
use config::SourceConfig;
use jobs::Store;
use serde_json::Value;

use super::window::Window;
use super::ShipError;

pub use audit::AuditSource;
pub use http::{HttpSource, PAGE_MAX};

/// One page of a window's records.
pub struct Page {
    pub records: Vec<Value>,
    /// The link of the window's next page; `None` on its last.
    pub next: Option<String>,
}

#[async_trait]
pub trait Source: Send + Sync {
    /// A page of `window`'s records: its first (`link` is `None`), or the one `link`
    /// names (the `next` of the page before, as the checkpoint kept it).
    async fn fetch(
        &self,
        window: &Window,
        link: Option<&str>,
        retries: &mut u64,
    ) -> Result<Page, ShipError>;
}

/// The source `config` describes; an audit source reads `store`'s trail.
pub fn build(
    config: &SourceConfig,
    client: reqwest::Client,
    store: Arc<dyn Store>,
) -> Box<dyn Source> {
    match config {
        SourceConfig::Http(http) => Box::new(HttpSource::new(http.clone(), client)),
        SourceConfig::Audit { page_size } => Box::new(AuditSource::new(store, *page_size)),
    }
}
