//! What the SSH server counts so that nobody exhausts it: `SessionCounter` (sessions
//! open, in total and per identity, so a limit is a message to the person who hit it
//! rather than an exhausted server) and `StartupCounter` (connections that have not
//! logged in yet, in total and per client address, like OpenSSH's `MaxStartups`).

use std::collections::HashMap;
use std::net::IpAddr;
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
        let m = octobox_http::metrics();
        m.ssh_sessions.inc();
        m.ssh_sessions_total.inc();
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
        octobox_http::metrics().ssh_sessions.dec();
        if let Some(n) = open.by_identity.get_mut(&self.identity) {
            *n -= 1;
            if *n == 0 {
                open.by_identity.remove(&self.identity);
            }
        }
    }
}

/// Connections accepted and not logged in yet: each holds a [`StartupPermit`] from accept
/// until it logs in or ends.
#[derive(Clone)]
pub struct StartupCounter {
    max_total: usize,
    max_per_address: usize,
    open: Arc<Mutex<Startups>>,
}

#[derive(Default)]
struct Startups {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Which cap a new connection would pass; it reads as the log line's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartupLimit {
    #[error("{max} connections are waiting to log in already (ssh.max_startups)")]
    Total { max: usize },
    #[error("{max} connections from this address are waiting to log in already (ssh.max_startups_per_address)")]
    PerAddress { max: usize },
}

/// A connection's place among those not logged in yet; given back when dropped.
pub struct StartupPermit {
    open: Arc<Mutex<Startups>>,
    address: IpAddr,
}

impl StartupCounter {
    pub fn new(limits: &SshLimits) -> Self {
        StartupCounter {
            max_total: limits.max_startups,
            max_per_address: limits.max_startups_per_address,
            open: Arc::default(),
        }
    }

    /// A place for one more connection from `address`, or the cap it would pass.
    pub fn admit(&self, address: IpAddr) -> Result<StartupPermit, StartupLimit> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            return Err(StartupLimit::Total {
                max: self.max_total,
            });
        }
        let from_here = open.by_address.entry(address).or_default();
        if *from_here >= self.max_per_address {
            return Err(StartupLimit::PerAddress {
                max: self.max_per_address,
            });
        }
        *from_here += 1;
        open.total += 1;
        Ok(StartupPermit {
            open: self.open.clone(),
            address,
        })
    }
}

impl Drop for StartupPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startups_are_capped_per_address_and_in_total_and_places_come_back() {
        let counter = StartupCounter::new(&SshLimits {
            max_startups: 3,
            max_startups_per_address: 2,
            ..SshLimits::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = counter.admit(a).unwrap();
        let _a2 = counter.admit(a).unwrap();
        assert_eq!(
            counter.admit(a).err(),
            Some(StartupLimit::PerAddress { max: 2 })
        );
        let _b1 = counter.admit(b).unwrap();
        assert_eq!(counter.admit(b).err(), Some(StartupLimit::Total { max: 3 }));
        drop(a1);
        assert!(counter.admit(b).is_ok());
    }

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
