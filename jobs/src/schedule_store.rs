//! The `ScheduleStore`: what schedulers share so that each timed job fires exactly once.
//!
//! - a lease: only its holder fires; it expires when the holder stops renewing it, so a
//!   scheduler that died is replaced within the lease time;
//! - fires: one record per schedule and slot, made with a first-writer-wins write, so a
//!   scheduler that takes over (or an old holder that paused past its lease) can never
//!   fire a slot twice; each schedule's last slot tells a new holder where to go on; the
//!   fired job is kept with the fire until it is sent on, so a fire whose scheduler died
//!   half way is finished by the next holder instead of lost;
//! - pauses, so they survive restarts; requests to run a schedule now;
//! - shipper checkpoints: how far each shipper has shipped.
//!
//! `RedisStore` implements it for schedulers in several processes; `MemoryScheduleStore`
//! is the embedded twin.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::job::{Job, JobId};
use crate::store::StoreError;

/// Why a schedule fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FireKind {
    /// At its slot (or within the lateness a takeover allows).
    OnTime,
    /// Once for the slots missed while no scheduler ran (`missed = "catch_up"`).
    CatchUp,
    /// Asked for by a person (`run schedule <name> now`).
    Manual,
}

/// One firing of a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fire {
    pub schedule: String,
    /// The cron slot fired; for a manual fire, when it was asked for.
    pub slot: DateTime<Utc>,
    pub kind: FireKind,
    pub job: JobId,
    /// The scheduler that fired it.
    pub by: String,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    /// Takes the lease, or renews it if `holder` has it: `true` while `holder` holds it
    /// for `ttl` from now, `false` if another holder does.
    async fn hold_lease(&self, holder: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Gives the lease up if `holder` has it, so another scheduler takes over at once.
    async fn release_lease(&self, holder: &str) -> Result<(), StoreError>;

    async fn lease_holder(&self) -> Result<Option<String>, StoreError>;

    /// Records `fire` unless its schedule's slot (of its kind) was fired already:
    /// `true` for the first caller only. A fire that is not manual also moves the
    /// schedule's last slot forward. `job` is kept as unsent until [`Self::fire_sent`],
    /// so a scheduler that dies before sending it leaves it for the next to send.
    async fn record_fire(&self, fire: &Fire, job: &Job) -> Result<bool, StoreError>;

    /// The fired job `job` was recorded and sent on (published, or its shipper started).
    async fn fire_sent(&self, job: JobId) -> Result<(), StoreError>;

    /// Fired jobs not sent on yet: a fire in progress, or one whose scheduler died.
    async fn unsent_fires(&self) -> Result<Vec<Job>, StoreError>;

    /// Moves a schedule's last slot forward without firing (skipped or paused slots).
    async fn skip_to(&self, schedule: &str, slot: DateTime<Utc>) -> Result<(), StoreError>;

    /// The latest slot fired or skipped, if any.
    async fn last_slot(&self, schedule: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// A schedule's latest fires, newest first.
    async fn fires(&self, schedule: &str, limit: usize) -> Result<Vec<Fire>, StoreError>;

    /// Pauses or resumes a schedule; `true` if that changed anything.
    async fn set_paused(&self, schedule: &str, paused: bool) -> Result<bool, StoreError>;

    async fn paused(&self) -> Result<BTreeSet<String>, StoreError>;

    /// Asks whichever scheduler holds the lease to fire `schedule` now.
    async fn request_run(&self, schedule: &str) -> Result<(), StoreError>;

    /// Takes the pending requests, oldest first; each is handed out once.
    async fn take_run_requests(&self) -> Result<Vec<String>, StoreError>;

    /// A shipper's checkpoint (JSON), if it has shipped anything.
    async fn checkpoint(&self, shipper: &str) -> Result<Option<String>, StoreError>;

    async fn save_checkpoint(&self, shipper: &str, checkpoint: &str) -> Result<(), StoreError>;
}
