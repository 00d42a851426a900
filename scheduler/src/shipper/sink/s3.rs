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
use config::SinkConfig;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::ObjectStore;
use crate::shipper::retry::HttpRetry;
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
impl ObjectStore for S3Sink {
    async fn put(&self, name: &str, bytes: Vec<u8>, retries: &mut u64) -> Result<u64, ShipError> {
        let bucket = self
            .bucket
            .as_ref()
            .map_err(|e| ShipError::Sink(e.clone()))?;
        let key = format!("{}{name}", self.prefix);
        let len = bytes.len() as u64;
        let url = bucket
            .put_object(Some(&self.credentials), &key)
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
        let what = format!("PUT of object {key}");
        HttpRetry::default()
            .send(&what, make, retries)
            .await
            .map_err(ShipError::Sink)?;
        Ok(len)
    }
}
