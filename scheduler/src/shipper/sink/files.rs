//! `FileSink`: one JSON Lines file per window, `<dir>/<shipper>/<window>.jsonl[.gz]`.
//! The window is written to a `.part` file and renamed into place once whole, so a
//! reader never sees half a window and a window shipped again replaces its file.

use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::Value;

use super::{object_name, JsonLines, Sink, WindowWriter};
use crate::shipper::window::Window;
use crate::shipper::ShipError;

pub struct FileSink {
    dir: PathBuf,
    gzip: bool,
}

impl FileSink {
    pub fn new(dir: PathBuf, gzip: bool) -> Self {
        FileSink { dir, gzip }
    }
}

#[async_trait]
impl Sink for FileSink {
    fn takes_pages(&self) -> bool {
        false
    }

    async fn open(
        &self,
        shipper: &str,
        window: &Window,
    ) -> Result<Box<dyn WindowWriter>, ShipError> {
        Ok(Box::new(FileWindow {
            path: self.dir.join(object_name(shipper, window, self.gzip)),
            lines: JsonLines::new(self.gzip),
        }))
    }
}

struct FileWindow {
    path: PathBuf,
    lines: JsonLines,
}

#[async_trait]
impl WindowWriter for FileWindow {
    async fn write(
        &mut self,
        records: &[Value],
        _key: &str,
        _retries: &mut u64,
    ) -> Result<u64, ShipError> {
        self.lines.push(records)?;
        Ok(0)
    }

    async fn finish(self: Box<Self>, _retries: &mut u64) -> Result<u64, ShipError> {
        let bytes = self.lines.into_bytes()?;
        let path = self.path;
        let failed = |what: &str, e: std::io::Error| {
            ShipError::Sink(format!("cannot {what} {}: {e}", path.display()))
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| failed("create the folder of", e))?;
        }
        let part = path.with_extension("part");
        let len = bytes.len() as u64;
        let file = tokio::fs::File::create(&part)
            .await
            .map_err(|e| failed("create", e))?;
        let mut file = file;
        tokio::io::AsyncWriteExt::write_all(&mut file, &bytes)
            .await
            .map_err(|e| failed("write", e))?;
        file.sync_all().await.map_err(|e| failed("flush", e))?;
        tokio::fs::rename(&part, &path)
            .await
            .map_err(|e| failed("move into place", e))?;
        Ok(len)
    }
}
