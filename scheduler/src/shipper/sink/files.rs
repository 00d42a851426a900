//! `FileSink`: one JSON Lines file per window, `<dir>/<shipper>/<window>.jsonl[.gz]`.
//! The window is written to a `.part` file and renamed into place once whole, so a
//! reader never sees half a window and a window shipped again replaces its file.

use std::path::PathBuf;

use async_trait::async_trait;

use super::ObjectStore;
use crate::shipper::ShipError;

pub struct FileSink {
    dir: PathBuf,
}

impl FileSink {
    pub fn new(dir: PathBuf) -> Self {
        FileSink { dir }
    }
}

#[async_trait]
impl ObjectStore for FileSink {
    async fn put(&self, name: &str, bytes: Vec<u8>, _retries: &mut u64) -> Result<u64, ShipError> {
        let path = self.dir.join(name);
        let failed = |what: &str, e: std::io::Error| {
            ShipError::Sink(format!("cannot {what} {}: {e}", path.display()))
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| failed("create the folder of", e))?;
        }
        let part = path.with_extension("part");
        let mut file = tokio::fs::File::create(&part)
            .await
            .map_err(|e| failed("create", e))?;
        tokio::io::AsyncWriteExt::write_all(&mut file, &bytes)
            .await
            .map_err(|e| failed("write", e))?;
        file.sync_all().await.map_err(|e| failed("flush", e))?;
        tokio::fs::rename(&part, &path)
            .await
            .map_err(|e| failed("move into place", e))?;
        Ok(bytes.len() as u64)
    }
}
