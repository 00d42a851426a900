//! `HttpSink`: records POSTed to a collector as JSON Lines, in batches, page by page.
//! Each batch carries `Idempotency-Key: <shipper>:<window>:<page>:<batch>`; 5xx and 429
//! answers are retried with backoff (`HttpRetry`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use config::Secret;
use serde_json::Value;

use super::{write_lines, Sink, WindowWriter};
use crate::shipper::retry::HttpRetry;
use crate::shipper::window::Window;
use crate::shipper::ShipError;

#[derive(Clone)]
pub struct HttpSink {
    url: String,
    batch: usize,
    headers: BTreeMap<String, Secret>,
    client: reqwest::Client,
    retry: HttpRetry,
}

impl HttpSink {
    pub fn new(
        url: String,
        batch: usize,
        headers: BTreeMap<String, Secret>,
        client: reqwest::Client,
    ) -> Self {
        HttpSink {
            url,
            batch: batch.max(1),
            headers,
            client,
            retry: HttpRetry::default(),
        }
    }
}

#[async_trait]
impl Sink for HttpSink {
    fn takes_pages(&self) -> bool {
        true
    }

    async fn open(
        &self,
        _shipper: &str,
        _window: &Window,
    ) -> Result<Box<dyn WindowWriter>, ShipError> {
        Ok(Box::new(self.clone()))
    }
}

#[async_trait]
impl WindowWriter for HttpSink {
    async fn write(
        &mut self,
        records: &[Value],
        key: &str,
        retries: &mut u64,
    ) -> Result<u64, ShipError> {
        let mut sent = 0;
        for (i, batch) in records.chunks(self.batch).enumerate() {
            let mut body = Vec::new();
            write_lines(&mut body, batch)
                .map_err(|e| ShipError::Sink(format!("cannot encode records: {e}")))?;
            let idempotency_key = format!("{key}:{i}");
            let make = || {
                let mut request = self
                    .client
                    .post(&self.url)
                    .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                    .header("Idempotency-Key", &idempotency_key)
                    .body(body.clone());
                for (name, value) in &self.headers {
                    request = request.header(name, value.expose());
                }
                request
            };
            self.retry
                .send("POST of a batch to the collector", make, retries)
                .await
                .map_err(ShipError::Sink)?;
            sent += body.len() as u64;
        }
        Ok(sent)
    }

    async fn finish(self: Box<Self>, _retries: &mut u64) -> Result<u64, ShipError> {
        Ok(0)
    }
}
