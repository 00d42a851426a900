//! `Lease`: which of several scheduler processes fires.
//!
//! The lease lives in the schedule store with a time to live. Its holder renews it well
//! before it runs out; a holder that dies stops renewing, and the next scheduler to ask
//! gets it once it has expired, so schedules are never unattended for longer than the
//! lease. The lease alone is not what prevents double fires (a holder could stall past
//! its lease and wake up still believing it holds it): every fire is also recorded
//! first-writer-wins per slot (`ScheduleStore::record_fire`).

use std::sync::Arc;
use std::time::Duration;

use jobs::{ScheduleStore, StoreError};

pub struct Lease {
    store: Arc<dyn ScheduleStore>,
    holder: String,
    ttl: Duration,
    held: bool,
}

impl Lease {
    pub fn new(store: Arc<dyn ScheduleStore>, holder: impl Into<String>, ttl: Duration) -> Self {
        Lease {
            store,
            holder: holder.into(),
            ttl,
            held: false,
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes or renews the lease: `true` while this scheduler holds it. Logs changes.
    pub async fn hold(&mut self) -> Result<bool, StoreError> {
        let held = self.store.hold_lease(&self.holder, self.ttl).await?;
        if held != self.held {
            if held {
                tracing::info!(holder = %self.holder, ttl_ms = self.ttl.as_millis() as u64, "took the scheduler lease: this scheduler fires");
            } else {
                tracing::warn!(holder = %self.holder, "lost the scheduler lease: another scheduler fires");
            }
            self.held = held;
        }
        Ok(held)
    }

    /// Gives the lease up (on a clean stop), so another scheduler takes over at once.
    pub async fn release(&mut self) {
        if self.held {
            if let Err(e) = self.store.release_lease(&self.holder).await {
                tracing::warn!(error = %e, "could not release the scheduler lease; it expires by itself");
            }
            self.held = false;
        }
    }
}
