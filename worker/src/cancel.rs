//! `CancelSignal`: one running job's cancel switch, and who tripped it.
//!
//! Its own module because both sides use it: the runtime trips it (`runtime::cancel`,
//! from `cancel` control messages) and the runners watch it (a native task is dropped, a
//! container killed and removed), and neither of those should import the other.

use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

/// One running job's cancel switch.
#[derive(Debug, Default)]
pub struct CancelSignal {
    token: CancellationToken,
    by: OnceLock<String>,
}

impl CancelSignal {
    /// Resolves once the job is cancelled.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Who cancelled the job, once it is.
    pub fn by(&self) -> Option<&str> {
        self.by.get().map(String::as_str)
    }

    /// Cancels the job on behalf of `by`; the first to trip it is the one named.
    pub(crate) fn trip(&self, by: &str) {
        let _ = self.by.set(by.to_string());
        self.token.cancel();
    }
}

/// The reason a cancelled job's result gives.
pub fn cancelled_by(by: &str) -> String {
    format!("cancelled by {by}")
}
