//! `Lease`: which of several scheduler processes fires.
//!
//! The lease lives in the schedule store with a time to live. Its holder renews it well
//! before it runs out; a holder that dies stops renewing, and the next scheduler to ask
//! gets it once it has expired, so schedules are never unattended for longer than the
//! lease. The lease alone is not what prevents double fires (a holder could stall past
//! its lease and wake up still believing it holds it): every fire is also recorded
//! first-writer-wins per slot (`ScheduleStore::record_fire`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs::{ScheduleStore, StoreError};

pub struct Lease {
    store: Arc<dyn ScheduleStore>,
    holder: String,
    ttl: Duration,
    held: bool,
    state: Arc<LeaseState>,
}

/// What the last try to hold the lease found, for `/readyz` and `/metrics` (0 before the
/// first try).
#[derive(Debug, Default)]
pub struct LeaseState(AtomicU8);

impl LeaseState {
    const HELD: u8 = 1;
    const STANDBY: u8 = 2;
    const UNREACHABLE: u8 = 3;

    /// `Ok` with `held` or `standby` once the store answered the last try; why not
    /// otherwise.
    pub fn check(&self) -> Result<String, String> {
        match self.0.load(Ordering::Relaxed) {
            Self::HELD => Ok("held: this scheduler fires".to_string()),
            Self::STANDBY => Ok("standby: another scheduler fires".to_string()),
            Self::UNREACHABLE => Err("the schedule store did not answer the last try".to_string()),
            _ => Err("the lease has not been asked for yet".to_string()),
        }
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Relaxed);
        let held = if state == Self::HELD { 1.0 } else { 0.0 };
        octobox_http::metrics().scheduler_lease_held.set(held);
    }
}

impl Lease {
    pub fn new(store: Arc<dyn ScheduleStore>, holder: impl Into<String>, ttl: Duration) -> Self {
        Lease {
            store,
            holder: holder.into(),
            ttl,
            held: false,
            state: Arc::default(),
        }
    }

    /// What the last try to hold the lease found.
    pub fn state(&self) -> Arc<LeaseState> {
        self.state.clone()
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes or renews the lease: `true` while this scheduler holds it. Logs changes.
    pub async fn hold(&mut self) -> Result<bool, StoreError> {
        let held = match self.store.hold_lease(&self.holder, self.ttl).await {
            Ok(held) => held,
            Err(e) => {
                self.state.set(LeaseState::UNREACHABLE);
                return Err(e);
            }
        };
        self.state.set(if held {
            LeaseState::HELD
        } else {
            LeaseState::STANDBY
        });
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
            self.state.set(LeaseState::STANDBY);
        }
    }
}
