//! `HttpSource`: an HTTP JSON API that answers a time window a page at a time.
//!
//! The first page of a window is `GET <url>?<since>=<start>&<until>=<end>&<page size
//! param>=<n>` (times in RFC 3339). A page is a JSON object whose `records` field (as
//! configured) is an array of records and whose `next` field is the next page's link,
//! absolute or relative to the URL, absent or null on the last page. Every request
//! carries the configured headers (`${ENV}` secrets, never logged), so a link is followed
//! only on the source's own origin (scheme, host and port): a page that names another is
//! refused, never sent the headers. A page is read up to [`PAGE_MAX`] bytes.

use async_trait::async_trait;
use config::HttpSourceConfig;
use reqwest::Url;
use serde_json::Value;

use super::{Page, Source};
use crate::shipper::retry::{read_capped, HttpRetry};
use crate::shipper::window::Window;
use crate::shipper::ShipError;

/// The largest page read: a source that sends more is refused, not buffered.
pub const PAGE_MAX: usize = 32 * 1024 * 1024;

pub struct HttpSource {
    config: HttpSourceConfig,
    client: reqwest::Client,
    retry: HttpRetry,
}

#[async_trait]
impl Source for HttpSource {
    async fn fetch(
        &self,
        window: &Window,
        link: Option<&str>,
        retries: &mut u64,
    ) -> Result<Page, ShipError> {
        match link {
            Some(link) => self.get(link, retries).await,
            None => self.get(&self.first_page(window)?, retries).await,
        }
    }
}

impl HttpSource {
    pub fn new(config: HttpSourceConfig, client: reqwest::Client) -> Self {
        HttpSource {
            config,
            client,
            retry: HttpRetry::default(),
        }
    }

    /// The link of a window's first page.
    fn first_page(&self, window: &Window) -> Result<String, ShipError> {
        let mut url = Url::parse(&self.config.url)
            .map_err(|e| ShipError::Source(format!("\"{}\" is not a URL: {e}", self.config.url)))?;
        url.query_pairs_mut()
            .append_pair(&self.config.since_param, &Window::rfc3339(window.start))
            .append_pair(&self.config.until_param, &Window::rfc3339(window.end))
            .append_pair(
                &self.config.page_size_param,
                &self.config.page_size.to_string(),
            );
        Ok(url.to_string())
    }

    /// The page at `link`, absolute or relative to the source's URL, on its origin only.
    async fn get(&self, link: &str, retries: &mut u64) -> Result<Page, ShipError> {
        let base = Url::parse(&self.config.url)
            .map_err(|e| ShipError::Source(format!("\"{}\" is not a URL: {e}", self.config.url)))?;
        let url = base.join(link).map_err(|e| {
            ShipError::Source(format!("the page link \"{link}\" is not a URL: {e}"))
        })?;
        if url.origin() != base.origin() {
            return Err(ShipError::Source(format!(
                "a page links to {}, not to the source's own {}: not followed, so the \
                 source's headers go nowhere else",
                url.origin().ascii_serialization(),
                base.origin().ascii_serialization()
            )));
        }
        let make = || {
            let mut request = self.client.get(url.clone());
            for (name, value) in &self.config.headers {
                request = request.header(name, value.expose());
            }
            request
        };
        let what = format!("GET of a page from {}", url.path());
        let response = self
            .retry
            .send(&what, make, retries)
            .await
            .map_err(ShipError::Source)?;
        let what = format!("a page from {}", url.path());
        let bytes = read_capped(response, PAGE_MAX, &what)
            .await
            .map_err(ShipError::Source)?;
        let mut body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ShipError::Source(format!("a page from {} is not JSON: {e}", url.path()))
        })?;
        let records = match body.get_mut(&self.config.records).map(Value::take) {
            Some(Value::Array(records)) => records,
            _ => {
                return Err(ShipError::Source(format!(
                    "a page from {} has no \"{}\" array",
                    url.path(),
                    self.config.records
                )))
            }
        };
        let next = body
            .get(&self.config.next)
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        Ok(Page { records, next })
    }
}
