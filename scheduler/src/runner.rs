//! `Scheduler`: the loop every scheduler process runs.
//!
//! Each tick it takes or renews the lease; only the holder goes on. For each schedule it
//! finds the slots that came due since the schedule's last slot (kept in the store, so
//! a new holder goes on where the old one stopped) and fires them. A slot later than
//! the lateness limit (twice what a takeover can make a slot wait: the lease and a
//! tick) was missed while no scheduler ran; the schedule's policy skips those, or fires once
//! for them all (`catch_up`). Paused schedules move on without firing, so resuming one
//! does not replay the pause. Requests to run a schedule now are fired as they arrive,
//! and fires a dead scheduler left half done are finished (`Firing::send_unsent`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::Schedule;
use config::Missed;
use jobs::FireKind;
use tokio_util::sync::CancellationToken;

use crate::fire::{FireError, Firing, SchedulerServices};
use crate::lease::Lease;

/// How many due slots one tick looks at per schedule (a schedule firing every second
/// that was down for a day has 86,400; only the latest matter).
const MAX_SLOTS_PER_TICK: usize = 10_000;

pub struct Scheduler {
    firing: Arc<Firing>,
    lease: Lease,
    tick: Duration,
}

impl Scheduler {
    /// A scheduler named `holder` (unique per process) over the schedules of
    /// `services.catalog`, read again at every tick so a reload takes effect at once.
    pub fn new(
        holder: impl Into<String>,
        services: SchedulerServices,
        lease: Duration,
        ship_timeout: Duration,
    ) -> Self {
        let holder = holder.into();
        let schedules = services.schedules.clone();
        let firing = Firing::new(holder.clone(), services, ship_timeout);
        Scheduler {
            firing: Arc::new(firing),
            lease: Lease::new(schedules, holder, lease),
            // Often enough that a slot fires well within a second, and the lease is
            // renewed several times before it runs out.
            tick: (lease / 4).clamp(Duration::from_millis(50), Duration::from_millis(250)),
        }
    }

    /// What the last try to hold the lease found (for `/readyz`).
    pub fn lease_state(&self) -> Arc<crate::lease::LeaseState> {
        self.lease.state()
    }

    /// How late a slot may fire and still count as on time: a takeover makes slots wait
    /// up to the lease and a tick; twice that leaves room for a slow machine.
    fn late_limit(&self) -> chrono::Duration {
        chrono::Duration::from_std(2 * (self.lease.ttl() + self.tick))
            .unwrap_or(chrono::Duration::MAX)
    }

    /// Fires schedules until `shutdown`, then waits for the shipper runs under way and
    /// gives the lease up.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(
            holder = %self.lease.holder(),
            schedules = self.firing.catalog.load().schedules.schedules().len(),
            "scheduler started"
        );
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.tick) => {}
            }
            match self.lease.hold().await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the schedule store; not firing");
                    continue;
                }
            }
            if let Err(e) = self.tick_once(Utc::now()).await {
                tracing::warn!(error = %e, "scheduler tick failed; trying again");
            }
        }
        self.firing.finish_shipping().await;
        self.lease.release().await;
        tracing::info!(holder = %self.lease.holder(), "scheduler stopped");
    }

    async fn tick_once(&self, now: DateTime<Utc>) -> Result<(), FireError> {
        let store = &self.firing.schedules;
        if let Err(e) = self.firing.send_unsent(self.late_limit()).await {
            tracing::warn!(error = %e, "fired jobs left unsent; trying again next tick");
        }
        let paused = store.paused().await?;
        let catalog = self.firing.catalog.load();
        for schedule in catalog.schedules.schedules() {
            let result = self
                .step(schedule, now, paused.contains(&schedule.name))
                .await;
            if let Err(e) = result {
                tracing::warn!(schedule = %schedule.name, error = %e, "schedule not fired");
            }
        }
        for name in store.take_run_requests().await? {
            match catalog.schedules.get(&name) {
                Some(schedule) => {
                    self.firing.fire(schedule, now, FireKind::Manual).await?;
                }
                None => tracing::warn!(schedule = %name, "asked to run an unknown schedule"),
            }
        }
        Ok(())
    }

    async fn step(
        &self,
        schedule: &Schedule,
        now: DateTime<Utc>,
        paused: bool,
    ) -> Result<(), FireError> {
        let store = &self.firing.schedules;
        let Some(last) = store.last_slot(&schedule.name).await? else {
            // Never seen: start from now, with no backlog.
            store.skip_to(&schedule.name, now).await?;
            return Ok(());
        };
        let due = schedule.slots(last, now, MAX_SLOTS_PER_TICK);
        let Some(&latest) = due.last() else {
            return Ok(());
        };
        if paused {
            store.skip_to(&schedule.name, latest).await?;
            return Ok(());
        }
        let limit = self.late_limit();
        let (missed, on_time): (Vec<_>, Vec<_>) = due.into_iter().partition(|s| now - *s > limit);
        if let Some(&last_missed) = missed.last() {
            match schedule.missed {
                Missed::Skip => {
                    tracing::info!(schedule = %schedule.name, missed = missed.len(), "slots missed while no scheduler ran; skipped");
                    store.skip_to(&schedule.name, last_missed).await?;
                }
                Missed::CatchUp => {
                    tracing::info!(schedule = %schedule.name, missed = missed.len(), "slots missed while no scheduler ran; catching up once");
                    self.firing
                        .fire(schedule, last_missed, FireKind::CatchUp)
                        .await?;
                }
            }
        }
        for slot in on_time {
            self.firing.fire(schedule, slot, FireKind::OnTime).await?;
        }
        Ok(())
    }
}
