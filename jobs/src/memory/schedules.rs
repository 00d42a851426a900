//! `MemoryScheduleStore`: the embedded twin of the schedule store. One process holds
//! the lease, fires and pauses; all of it is gone when the process stops.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::job::{Job, JobId};
use crate::schedule_store::{Fire, FireKind, ScheduleStore};
use crate::store::StoreError;

/// How many fires a schedule's log keeps.
const FIRE_LOG: usize = 100;

#[derive(Default)]
struct State {
    lease: Option<(String, Instant)>,
    fired: HashSet<(String, i64, bool)>,
    last_slot: HashMap<String, DateTime<Utc>>,
    log: HashMap<String, VecDeque<Fire>>,
    paused: BTreeSet<String>,
    requests: VecDeque<String>,
    checkpoints: HashMap<String, String>,
    unsent: HashMap<JobId, Job>,
}

#[derive(Default)]
pub struct MemoryScheduleStore {
    state: Mutex<State>,
}

impl MemoryScheduleStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ScheduleStore for MemoryScheduleStore {
    async fn hold_lease(&self, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut s = self.state();
        let now = Instant::now();
        match &s.lease {
            Some((h, until)) if h != holder && *until > now => Ok(false),
            _ => {
                s.lease = Some((holder.to_string(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, holder: &str) -> Result<(), StoreError> {
        let mut s = self.state();
        if matches!(&s.lease, Some((h, _)) if h == holder) {
            s.lease = None;
        }
        Ok(())
    }

    async fn lease_holder(&self) -> Result<Option<String>, StoreError> {
        let s = self.state();
        Ok(s.lease
            .as_ref()
            .filter(|(_, until)| *until > Instant::now())
            .map(|(h, _)| h.clone()))
    }

    async fn record_fire(&self, fire: &Fire, job: &Job) -> Result<bool, StoreError> {
        let mut s = self.state();
        let manual = fire.kind == FireKind::Manual;
        let key = (fire.schedule.clone(), fire.slot.timestamp_millis(), manual);
        if !s.fired.insert(key) {
            return Ok(false);
        }
        s.unsent.insert(job.id, job.clone());
        if !manual {
            let last = s
                .last_slot
                .entry(fire.schedule.clone())
                .or_insert(fire.slot);
            *last = (*last).max(fire.slot);
        }
        let log = s.log.entry(fire.schedule.clone()).or_default();
        log.push_front(fire.clone());
        log.truncate(FIRE_LOG);
        Ok(true)
    }

    async fn fire_sent(&self, job: JobId) -> Result<(), StoreError> {
        self.state().unsent.remove(&job);
        Ok(())
    }

    async fn unsent_fires(&self) -> Result<Vec<Job>, StoreError> {
        Ok(self.state().unsent.values().cloned().collect())
    }

    async fn skip_to(&self, schedule: &str, slot: DateTime<Utc>) -> Result<(), StoreError> {
        let mut s = self.state();
        let last = s.last_slot.entry(schedule.to_string()).or_insert(slot);
        *last = (*last).max(slot);
        Ok(())
    }

    async fn last_slot(&self, schedule: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.state().last_slot.get(schedule).copied())
    }

    async fn fires(&self, schedule: &str, limit: usize) -> Result<Vec<Fire>, StoreError> {
        Ok(self
            .state()
            .log
            .get(schedule)
            .map(|l| l.iter().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn set_paused(&self, schedule: &str, paused: bool) -> Result<bool, StoreError> {
        let mut s = self.state();
        Ok(if paused {
            s.paused.insert(schedule.to_string())
        } else {
            s.paused.remove(schedule)
        })
    }

    async fn paused(&self) -> Result<BTreeSet<String>, StoreError> {
        Ok(self.state().paused.clone())
    }

    async fn request_run(&self, schedule: &str) -> Result<(), StoreError> {
        self.state().requests.push_back(schedule.to_string());
        Ok(())
    }

    async fn take_run_requests(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.state().requests.drain(..).collect())
    }

    async fn checkpoint(&self, shipper: &str) -> Result<Option<String>, StoreError> {
        Ok(self.state().checkpoints.get(shipper).cloned())
    }

    async fn save_checkpoint(&self, shipper: &str, checkpoint: &str) -> Result<(), StoreError> {
        self.state()
            .checkpoints
            .insert(shipper.to_string(), checkpoint.to_string());
        Ok(())
    }
}
