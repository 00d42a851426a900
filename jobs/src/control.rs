//! Control messages: what reaches *every* worker at once, unlike a job, which reaches one.
//!
//! The bot does not know which worker runs a job, so a `cancel` is broadcast and the
//! worker running the job acts on it; the others remember it for a while, in case the job
//! reaches them later. Control messages are not durable: a worker that is down when one
//! is sent never sees it (a job it ran is gone with it anyway).

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::job::JobId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "control", rename_all = "snake_case")]
pub enum Control {
    /// Stop job `job` wherever it runs; `by` is the identity that asked.
    Cancel { job: JobId, by: String },
}

/// The control messages one subscriber receives, in order.
pub struct ControlFeed {
    rx: mpsc::UnboundedReceiver<Control>,
}

impl ControlFeed {
    /// A feed and the sender a broker pushes into.
    pub fn channel() -> (mpsc::UnboundedSender<Control>, ControlFeed) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, ControlFeed { rx })
    }

    /// The next message; `None` once the broker is closed.
    pub async fn next(&mut self) -> Option<Control> {
        self.rx.recv().await
    }
}
