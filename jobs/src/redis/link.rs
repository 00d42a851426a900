//! `Link`: the Redis the store's commands go to, and the connections to it
//! ([`Primary`]), replaced when a failover moves the primary elsewhere.
//!
//! With `[store] url` the link is fixed: one `Primary` made at start, whose
//! `ConnectionManager`s reconnect by themselves to the same address. That is the whole
//! behaviour of a single Redis; nothing here ever replaces it.
//!
//! With `[store] sentinels` there is no primary until the sentinels name one
//! (`sentinel::Sentinels::find`). Every try of the retry helper is made with the current
//! `Primary`; a try that fails in a way a failover explains (the connection is lost or
//! refused, or Redis answers `READONLY`: the node was demoted) reports the generation it
//! used (`Link::lost`), and the next try asks the sentinels again, one lookup at a time
//! for the whole process. A primary at the same address keeps its connections; one at a
//! new address replaces them under the next generation. Blocking readers (`events`) keep
//! their own connections and compare generations, so none reads from an old primary.
//!
//! Why not the redis crate's own sentinel support: its `SentinelClient` hands out a
//! `Client` pinned to the address it found, and a `ConnectionManager` made from that
//! reconnects to the same address forever: it does not follow a failover.

use std::sync::{Arc, Mutex};

use ::redis::{Client, RedisError, RedisResult};

use super::primary::{Primary, Settings};
use super::sentinel::{Found, Sentinels};

pub(super) struct Link {
    route: Route,
    /// The Redis in logs and errors: the redacted URL, or the master name and sentinels.
    name: String,
    state: Mutex<State>,
    /// Held while the sentinels are asked, so one lookup runs at a time and the tasks
    /// waiting behind it find its answer.
    finding: tokio::sync::Mutex<()>,
}

enum Route {
    Fixed,
    /// Boxed: a fixed link carries nothing.
    Sentinels(Box<(Sentinels, Settings)>),
}

struct State {
    current: Option<Arc<Primary>>,
    /// A try through `current` failed as a failover would make it fail: ask again.
    suspect: bool,
}

impl Link {
    /// The one Redis a URL names (`address` is its redacted URL).
    pub(super) fn fixed(client: Client, address: String, settings: &Settings) -> RedisResult<Self> {
        let (shared, acked) = settings.lazy(&client)?;
        let primary = Primary::new(1, client, shared, acked, address.clone());
        Ok(Link {
            route: Route::Fixed,
            name: address,
            state: Mutex::new(State {
                current: Some(Arc::new(primary)),
                suspect: false,
            }),
            finding: Default::default(),
        })
    }

    /// The primary `sentinels` name, looked up at the first use.
    pub(super) fn through(sentinels: Sentinels, settings: Settings) -> Self {
        Link {
            name: sentinels.to_string(),
            route: Route::Sentinels(Box::new((sentinels, settings))),
            state: Mutex::new(State {
                current: None,
                suspect: true,
            }),
            finding: Default::default(),
        }
    }

    /// The Redis, as logs and errors name it (no password).
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Whether a failure of `err`'s kind is worth another try: the connection class (see
    /// `is_transient`), and with sentinels also `READONLY`: the primary was demoted, and
    /// the next try goes to the one that replaced it. A single Redis answering
    /// `READONLY` is a replica by configuration; trying again would not change it.
    pub(super) fn retries(&self, err: &RedisError) -> bool {
        super::is_transient(err)
            || (matches!(self.route, Route::Sentinels(_)) && err.code() == Some("READONLY"))
    }

    /// The primary to send to now; with sentinels, asked for first when none is known
    /// or the last one was lost.
    pub(super) async fn primary(&self) -> RedisResult<Arc<Primary>> {
        if let Some(primary) = self.trusted() {
            return Ok(primary);
        }
        let Route::Sentinels(route) = &self.route else {
            unreachable!("a fixed link always has its primary and never loses it");
        };
        let _one_lookup = self.finding.lock().await;
        // Another task may have looked while this one waited.
        if let Some(primary) = self.trusted() {
            return Ok(primary);
        }
        let known = self.lock().current.clone();
        let (sentinels, settings) = &**route;
        let found = sentinels.find(known.as_deref(), settings).await?;
        let mut state = self.lock();
        state.suspect = false;
        let primary = match (found, known) {
            (Found::Same, Some(known)) => known,
            (Found::Same, None) => unreachable!("nothing known cannot be found the same"),
            (Found::New(found), known) => {
                let found = *found;
                let generation = known.as_ref().map_or(1, |k| k.generation + 1);
                match &known {
                    Some(old) => tracing::warn!(
                        store = %self.name,
                        from = %old.address,
                        to = %found.address,
                        generation,
                        "the primary moved: the job store follows it"
                    ),
                    None => tracing::info!(
                        store = %self.name,
                        primary = %found.address,
                        "the sentinels name the primary"
                    ),
                }
                let primary = Arc::new(Primary::new(
                    generation,
                    found.client,
                    found.shared,
                    found.acked,
                    found.address,
                ));
                state.current = Some(primary.clone());
                primary
            }
        };
        Ok(primary)
    }

    /// A try through the primary of `generation` failed with `err`, which
    /// [`Link::retries`]: with sentinels, the next try asks them again, unless the link
    /// has moved on already.
    pub(super) fn lost(&self, generation: u64, err: &RedisError) {
        if matches!(self.route, Route::Fixed) {
            return;
        }
        let mut state = self.lock();
        if state
            .current
            .as_ref()
            .is_some_and(|p| p.generation == generation)
            && !state.suspect
        {
            tracing::debug!(store = %self.name, generation, error = %err, "asking the sentinels again");
            state.suspect = true;
        }
    }

    fn trusted(&self) -> Option<Arc<Primary>> {
        let state = self.lock();
        match state.suspect {
            true => None,
            false => state.current.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
