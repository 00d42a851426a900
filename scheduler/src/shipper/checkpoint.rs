//! `Checkpoint`: how far a shipper has shipped, kept in the schedule store so a run that
//! died is resumed by the next one, in this process or another.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jobs::{ScheduleStore, StoreError};
use serde::{Deserialize, Serialize};

use super::window::Window;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every window that ends at or before this is in the sink.
    pub shipped_until: DateTime<Utc>,
    /// For page sinks: the link of the first page of the window starting at
    /// `shipped_until` that the sink does not have yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
    /// How many pages of that window the sink has.
    #[serde(default)]
    pub pages: u64,
}

impl Checkpoint {
    /// The checkpoint once `window` is wholly shipped.
    pub fn after(window: &Window) -> Self {
        Checkpoint {
            shipped_until: window.end,
            next_page: None,
            pages: 0,
        }
    }

    /// The checkpoint inside `window`, `pages` pages in, `next` the page to go on with.
    pub fn within(window: &Window, next: String, pages: u64) -> Self {
        Checkpoint {
            shipped_until: window.start,
            next_page: Some(next),
            pages,
        }
    }
}

pub(super) struct Checkpoints {
    store: Arc<dyn ScheduleStore>,
    shipper: String,
}

impl Checkpoints {
    pub(super) fn new(store: Arc<dyn ScheduleStore>, shipper: &str) -> Self {
        Checkpoints {
            store,
            shipper: shipper.to_string(),
        }
    }

    pub(super) async fn load(&self) -> Result<Option<Checkpoint>, StoreError> {
        let Some(json) = self.store.checkpoint(&self.shipper).await? else {
            return Ok(None);
        };
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                what: format!("the checkpoint of shipper {}", self.shipper),
                reason: e.to_string(),
            })
    }

    pub(super) async fn save(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let json = serde_json::to_string(checkpoint).map_err(|e| StoreError::Corrupt {
            what: format!("the checkpoint of shipper {}", self.shipper),
            reason: e.to_string(),
        })?;
        self.store.save_checkpoint(&self.shipper, &json).await
    }
}
