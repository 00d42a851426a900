//! `RecentEvents`: Slack redelivers an event it thinks was missed (same event id); it
//! must run once. A bounded set of recent ids answers at once within this process; a
//! note in the store (`SET NX`) answers across bot processes sharing one Slack app.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::Store;

/// How long an event id is remembered in the store (Slack retries within minutes).
const REMEMBER: Duration = Duration::from_secs(3_600);

pub struct RecentEvents {
    store: Arc<dyn Store>,
    owner: String,
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl RecentEvents {
    /// How many ids this process remembers.
    const KEEP: usize = 10_000;

    pub fn new(store: Arc<dyn Store>, owner: impl Into<String>) -> Self {
        RecentEvents {
            store,
            owner: owner.into(),
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// Whether `key` (an event id, a slash command's trigger id) is seen for the first
    /// time by any bot process. If the store cannot be asked, the event runs: a
    /// duplicate is better than a lost command.
    pub async fn first_time(&self, key: &str) -> bool {
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let (set, order) = &mut *seen;
            if !set.insert(key.to_string()) {
                return false;
            }
            order.push_back(key.to_string());
            if order.len() > Self::KEEP {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
        match self
            .store
            .note_once(&format!("slack:event:{key}"), &self.owner, REMEMBER)
            .await
        {
            Ok(first) => first,
            Err(e) => {
                tracing::warn!(event = key, error = %e, "cannot check whether another bot took this event; running it");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs::memory::MemoryStore;

    #[tokio::test]
    async fn an_event_runs_once_even_when_two_bots_see_it() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let a = RecentEvents::new(store.clone(), "bot-a");
        let b = RecentEvents::new(store, "bot-b");
        assert!(a.first_time("Ev1").await);
        assert!(!a.first_time("Ev1").await);
        assert!(!b.first_time("Ev1").await);
        assert!(b.first_time("Ev2").await);
    }
}
