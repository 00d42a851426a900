//! Who is calling: a bearer token from `[[api.token]]`, or a dashboard session made by
//! logging in with one. Tokens are compared as SHA-256 digests, every declared token
//! each time, so neither a token's length nor how much of it matched shows in the time
//! an answer takes. A call without a valid token is answered 401 with no detail.
//!
//! Also here: [`RateLimits`], each caller's calls per minute (`[api] requests_per_minute`),
//! and [`WrongTokens`], the wrong tokens each address presented in the last minute: past
//! [`WRONG_TOKENS_PER_MINUTE`], no token from that address is looked at (a right one
//! neither, so guessing learns nothing) until the minute turns.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use commands::Catalog;
use config::{ApiToken, API_ADAPTER};
use jobs::Origin;
use sha2::{Digest, Sha256};

use super::ApiError;

/// A caller the API knows: the token's name, its identity `api:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
}

impl Caller {
    pub fn origin(&self) -> Origin {
        Origin::new(API_ADAPTER, &self.name)
    }

    pub fn identity(&self) -> String {
        self.origin().identity()
    }

    /// Whether the access policy lets this caller run `command` (a built-in's name such
    /// as `jobs`, `workers`, `audit`): each read of the API is allowed to whoever may
    /// ask the same in chat.
    pub fn check(&self, catalog: &Catalog, command: &str) -> Result<(), ApiError> {
        let Some(action) = catalog.commands.action(command) else {
            return Err(ApiError::Forbidden(format!(
                "the command {command} is not declared"
            )));
        };
        catalog
            .access
            .check_action(&self.origin(), command, action)
            .map_err(|refusal| ApiError::Forbidden(refusal.to_string()))
    }
}

/// A token's SHA-256 digest: what sessions keep instead of the token.
pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// The declared token whose value is `presented`, compared in constant time.
pub fn token_for(tokens: &[ApiToken], presented: &str) -> Option<Caller> {
    caller_by_digest(tokens, &digest(presented))
}

/// The declared token whose digest is `wanted`, every token compared in full.
pub fn caller_by_digest(tokens: &[ApiToken], wanted: &TokenDigest) -> Option<Caller> {
    let mut found = None;
    for token in tokens {
        let d = digest(token.value.expose());
        let differs = d.iter().zip(wanted).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs == 0 {
            found = Some(Caller {
                name: token.name.clone(),
            });
        }
    }
    found
}

/// The bearer token of an `Authorization` header value, if it is one.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Calls per caller per minute, counted in fixed one-minute windows. Bounded: at most
/// one entry per declared token (callers are tokens), cleared when the window turns.
pub struct RateLimits {
    window: Mutex<(Instant, HashMap<String, u32>)>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            window: Mutex::new((Instant::now(), HashMap::new())),
        }
    }
}

impl RateLimits {
    /// Counts one call of `caller`; the wait until the next window when past `limit`.
    pub fn take(&self, caller: &Caller, limit: u32) -> Result<(), Duration> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = window.0.elapsed();
        if elapsed >= Duration::from_secs(60) {
            *window = (Instant::now(), HashMap::new());
        }
        let wait = Duration::from_secs(60).saturating_sub(window.0.elapsed());
        let count = window.1.entry(caller.name.clone()).or_insert(0);
        if *count >= limit {
            return Err(wait);
        }
        *count += 1;
        Ok(())
    }
}

/// Wrong tokens one address may present in a minute.
pub const WRONG_TOKENS_PER_MINUTE: u32 = 20;
/// Addresses counted at once; past that, the others share one count.
const WRONG_TOKEN_ADDRESSES: usize = 10_000;

/// The wrong tokens (bearer or dashboard login) each address presented, counted in fixed
/// one-minute windows. Bounded: at most [`WRONG_TOKEN_ADDRESSES`] addresses a window.
pub struct WrongTokens {
    window: Mutex<(Instant, HashMap<Option<IpAddr>, u32>)>,
}

impl Default for WrongTokens {
    fn default() -> Self {
        WrongTokens {
            window: Mutex::new((Instant::now(), HashMap::new())),
        }
    }
}

impl WrongTokens {
    /// Whether a token from `peer` may be looked at now; the wait until it may.
    pub fn check(&self, peer: Option<IpAddr>) -> Result<(), Duration> {
        let window = self.current();
        let wait = Duration::from_secs(60).saturating_sub(window.0.elapsed());
        let key = Self::key(&window.1, peer);
        match window.1.get(&key) {
            Some(n) if *n >= WRONG_TOKENS_PER_MINUTE => Err(wait),
            _ => Ok(()),
        }
    }

    /// Counts a wrong token from `peer`.
    pub fn wrong(&self, peer: Option<IpAddr>) {
        let mut window = self.current();
        let key = Self::key(&window.1, peer);
        let count = window.1.entry(key).or_insert(0);
        *count += 1;
        if *count == WRONG_TOKENS_PER_MINUTE {
            tracing::warn!(address = ?peer, limit = WRONG_TOKENS_PER_MINUTE, "too many wrong tokens from one address; its tokens are refused until the minute turns");
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, (Instant, HashMap<Option<IpAddr>, u32>)> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if window.0.elapsed() >= Duration::from_secs(60) {
            *window = (Instant::now(), HashMap::new());
        }
        window
    }

    /// `peer`'s key: itself while there is room, else the shared one.
    fn key(counts: &HashMap<Option<IpAddr>, u32>, peer: Option<IpAddr>) -> Option<IpAddr> {
        if counts.contains_key(&peer) || counts.len() < WRONG_TOKEN_ADDRESSES {
            peer
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::Secret;

    fn tokens() -> Vec<ApiToken> {
        ["alpha", "beta"]
            .iter()
            .map(|n| ApiToken {
                name: n.to_string(),
                groups: vec![],
                value: Secret::new(format!("{n}-0123456789abcdef0123456789")),
            })
            .collect()
    }

    #[test]
    fn only_a_whole_declared_token_names_its_caller() {
        let t = tokens();
        assert_eq!(
            token_for(&t, "beta-0123456789abcdef0123456789").map(|c| c.name),
            Some("beta".to_string())
        );
        assert_eq!(token_for(&t, "beta-0123456789abcdef012345678"), None);
        assert_eq!(token_for(&t, ""), None);
        assert_eq!(token_for(&[], "beta-0123456789abcdef0123456789"), None);
    }

    #[test]
    fn bearer_reads_the_scheme_case_blind() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn an_address_past_its_wrong_tokens_is_not_heard_and_others_are() {
        let wrong = WrongTokens::default();
        let (a, b) = (
            Some("10.0.0.1".parse().unwrap()),
            Some("10.0.0.2".parse().unwrap()),
        );
        for _ in 0..WRONG_TOKENS_PER_MINUTE {
            assert!(wrong.check(a).is_ok());
            wrong.wrong(a);
        }
        let wait = wrong.check(a).unwrap_err();
        assert!(wait <= Duration::from_secs(60));
        assert!(wrong.check(b).is_ok());
    }

    #[test]
    fn past_the_addresses_it_counts_the_others_share_one_count() {
        let wrong = WrongTokens::default();
        for i in 0..WRONG_TOKEN_ADDRESSES as u32 {
            wrong.wrong(Some(IpAddr::from(i.to_be_bytes())));
        }
        let late: Vec<Option<IpAddr>> = (0..WRONG_TOKENS_PER_MINUTE)
            .map(|i| Some(IpAddr::from((u32::MAX - i).to_be_bytes())))
            .collect();
        for peer in &late {
            wrong.wrong(*peer);
        }
        assert!(wrong.check(late[0]).is_err());
        assert!(wrong.check(Some(IpAddr::from(0u32.to_be_bytes()))).is_ok());
        assert_eq!(
            wrong.window.lock().unwrap().1.len(),
            WRONG_TOKEN_ADDRESSES + 1
        );
    }

    #[test]
    fn a_caller_past_the_limit_waits_for_the_next_window() {
        let limits = RateLimits::default();
        let c = Caller { name: "a".into() };
        assert!(limits.take(&c, 2).is_ok());
        assert!(limits.take(&c, 2).is_ok());
        let wait = limits.take(&c, 2).unwrap_err();
        assert!(wait <= Duration::from_secs(60));
        assert!(limits.take(&Caller { name: "b".into() }, 2).is_ok());
    }
}
