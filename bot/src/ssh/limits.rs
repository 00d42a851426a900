//! `SessionCounter`: how many SSH sessions are open, in total and per identity, so a
//! limit is a message to the person who hit it rather than an exhausted server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use config::SshLimits;

use crate::reply;

#[derive(Clone)]
pub struct SessionCounter {
    limits: SshLimits,
    open: Arc<Mutex<Open>>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_identity: HashMap<String, usize>,
}

/// Which session limit a new session would pass; it reads as the sentence its person is
/// shown (`reply::too_many_sessions`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionLimit {
    /// The bot serves `max` sessions already.
    #[error("{}", reply::too_many_sessions(None, *max))]
    Total { max: usize },
    /// `identity` has `max` sessions open already.
    #[error("{}", reply::too_many_sessions(Some(identity), *max))]
    PerIdentity { identity: String, max: usize },
}

/// An open session's place; given back when dropped.
pub struct SessionPermit {
    open: Arc<Mutex<Open>>,
    identity: String,
}

impl SessionCounter {
    pub fn new(limits: SshLimits) -> Self {
        SessionCounter {
            limits,
            open: Arc::default(),
        }
    }

    pub fn limits(&self) -> &SshLimits {
        &self.limits
    }

    /// A place for one more session of `identity`, or the limit it would pass.
    pub fn open(&self, identity: &str) -> Result<SessionPermit, SessionLimit> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.limits.max_sessions {
            return Err(SessionLimit::Total {
                max: self.limits.max_sessions,
            });
        }
        let mine = open.by_identity.entry(identity.to_string()).or_default();
        if *mine >= self.limits.max_sessions_per_identity {
            return Err(SessionLimit::PerIdentity {
                identity: identity.to_string(),
                max: self.limits.max_sessions_per_identity,
            });
        }
        *mine += 1;
        open.total += 1;
        Ok(SessionPermit {
            open: self.open.clone(),
            identity: identity.to_string(),
        })
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_identity.get_mut(&self.identity) {
            *n -= 1;
            if *n == 0 {
                open.by_identity.remove(&self.identity);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_named_and_places_come_back() {
        let counter = SessionCounter::new(SshLimits {
            max_sessions: 3,
            max_sessions_per_identity: 2,
            ..SshLimits::default()
        });
        let a1 = counter.open("ssh:alice").unwrap();
        let _a2 = counter.open("ssh:alice").unwrap();
        let e = counter.open("ssh:alice").err().unwrap().to_string();
        assert!(e.contains("ssh:alice") && e.contains("2"), "{e}");
        let _b = counter.open("ssh:bob").unwrap();
        let e = counter.open("ssh:carol").err().unwrap().to_string();
        assert!(e.contains("3"), "{e}");
        drop(a1);
        assert!(counter.open("ssh:carol").is_ok());
    }
}
