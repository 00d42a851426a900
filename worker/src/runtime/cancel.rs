//! `Cancellations`: which running jobs were asked to stop, and by whom.
//!
//! A `cancel` reaches every worker (a control message). The worker running the job
//! trips its [`CancelSignal`] (`crate::cancel`); the task's runner stops it (a container is killed and
//! removed, a native task is dropped). A cancel for a job this worker does not run is
//! remembered for a while, so a job still in the queue is cancelled when it arrives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs::JobId;

use crate::cancel::CancelSignal;

/// How long a cancel for a job this worker has not (yet) received is remembered.
const REMEMBER: Duration = Duration::from_secs(3600);
/// At most this many such cancels are remembered; the oldest are forgotten first.
const REMEMBER_AT_MOST: usize = 10_000;

/// The cancel switches of the jobs running on this worker.
#[derive(Debug, Default)]
pub struct Cancellations {
    running: Mutex<HashMap<JobId, Arc<CancelSignal>>>,
    early: Mutex<HashMap<JobId, (String, Instant)>>,
}

impl Cancellations {
    /// The switch for job `id`, which starts now; already tripped if a cancel came first.
    pub fn start(&self, id: JobId) -> Arc<CancelSignal> {
        let signal = Arc::new(CancelSignal::default());
        // `early` is held until the job is listed as running, and `cancel` holds it while
        // it looks: a cancel that comes meanwhile finds the job one way or the other.
        let mut early = lock(&self.early);
        if let Some((by, _)) = early.remove(&id) {
            signal.trip(&by);
        }
        lock(&self.running).insert(id, signal.clone());
        drop(early);
        signal
    }

    /// Job `id` is over on this worker.
    pub fn finish(&self, id: JobId) {
        lock(&self.running).remove(&id);
    }

    /// Cancels job `id` on behalf of `by`; `true` when it runs here.
    pub fn cancel(&self, id: JobId, by: &str) -> bool {
        let mut early = lock(&self.early);
        if let Some(signal) = lock(&self.running).get(&id) {
            signal.trip(by);
            return true;
        }
        let now = Instant::now();
        early.retain(|_, (_, at)| now.duration_since(*at) < REMEMBER);
        if early.len() >= REMEMBER_AT_MOST {
            if let Some(oldest) = early.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k) {
                early.remove(&oldest);
            }
        }
        early.insert(id, (by.to_string(), now));
        false
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_trips_a_running_job_or_waits_for_a_queued_one() {
        let c = Cancellations::default();
        let running = JobId::new();
        let signal = c.start(running);
        assert!(c.cancel(running, "console:alice"));
        signal.cancelled().await;
        assert_eq!(signal.by(), Some("console:alice"));

        let queued = JobId::new();
        assert!(!c.cancel(queued, "console:bob"));
        assert_eq!(c.start(queued).by(), Some("console:bob"));
    }
}
