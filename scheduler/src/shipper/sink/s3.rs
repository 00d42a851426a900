//! `S3Sink`: one JSON Lines object per window in an S3-compatible bucket (AWS S3, MinIO,
//! Ceph, moto), `<prefix><shipper>/<window>.jsonl[.gz]`, written by one PUT so a
//! window shipped again replaces its object.
//!
//! Requests are signed with rusty-s3 (AWS Signature V4, no I/O of its own) and sent with
//! the same reqwest client as the source: a few small crates instead of an SDK, and one
//! HTTP stack and retry policy for every request a shipper makes. Path-style URLs, which
//! every S3-compatible server takes.

use std::time::Duration;

use async_trait::async_trait;
use jobs::config::SinkConfig;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde_json::Value;

use super::{object_name, JsonLines, Sink, WindowWriter};
use crate::shipper::retry::HttpRetry;
use crate::shipper::window::Window;
use crate::shipper::ShipError;

/// How long a signed request stays valid: long enough for its retries.
const SIGNATURE_VALID: Duration = Duration::from_secs(15 * 60);

pub struct S3Sink {
    bucket: Result<Bucket, String>,
    credentials: Credentials,
    prefix: String,
    gzip: bool,
    client: reqwest::Client,
}

impl S3Sink {
    /// `config` must be `SinkConfig::S3`.
    pub fn new(config: &SinkConfig, client: reqwest::Client) -> Self {
        let SinkConfig::S3 {
            endpoint,
            bucket,
            region,
            prefix,
            access_key,
            secret_key,
            gzip,
        } = config
        else {
            unreachable!("S3Sink::new takes an S3 sink configuration")
        };
        let bucket = endpoint
            .parse()
            .map_err(|e| format!("the endpoint \"{endpoint}\" is not a URL: {e}"))
            .and_then(|url| {
                Bucket::new(url, UrlStyle::Path, bucket.clone(), region.clone())
                    .map_err(|e| format!("bucket \"{bucket}\" at \"{endpoint}\": {e}"))
            });
        S3Sink {
            bucket,
            credentials: Credentials::new(access_key.expose(), secret_key.expose()),
            prefix: prefix.clone(),
            gzip: *gzip,
            client,
        }
    }
}

#[async_trait]
impl Sink for S3Sink {
    fn takes_pages(&self) -> bool {
        false
    }

    async fn open(
        &self,
        shipper: &str,
        window: &Window,
    ) -> Result<Box<dyn WindowWriter>, ShipError> {
        let bucket = self.bucket.clone().map_err(ShipError::Sink)?;
        Ok(Box::new(S3Window {
            bucket,
            credentials: self.credentials.clone(),
            key: format!("{}{}", self.prefix, object_name(shipper, window, self.gzip)),
            lines: JsonLines::new(self.gzip),
            gzip: self.gzip,
            client: self.client.clone(),
        }))
    }
}

struct S3Window {
    bucket: Bucket,
    credentials: Credentials,
    key: String,
    lines: JsonLines,
    gzip: bool,
    client: reqwest::Client,
}

#[async_trait]
impl WindowWriter for S3Window {
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
        let len = bytes.len() as u64;
        let url = self
            .bucket
            .put_object(Some(&self.credentials), &self.key)
            .sign(SIGNATURE_VALID);
        let media_type = if self.gzip {
            "application/gzip"
        } else {
            "application/x-ndjson"
        };
        let make = || {
            self.client
                .put(url.clone())
                .header(reqwest::header::CONTENT_TYPE, media_type)
                .body(bytes.clone())
        };
        let what = format!("PUT of object {}", self.key);
        HttpRetry::default()
            .send(&what, make, retries)
            .await
            .map_err(ShipError::Sink)?;
        Ok(len)
    }
}
