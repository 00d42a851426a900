//! [`Sessions`]: the dashboard's logins. Logging in with an API token opens a session
//! whose id travels in an `HttpOnly`, `SameSite=Strict` cookie; the session keeps the
//! token's digest, never the token, and ends when that token is no longer declared (a
//! reload that removed it), after [`SESSION_TTL`], or on logout. Each session has its own
//! CSRF token, which every form the dashboard serves carries and every action checks.
//! Bounded: at most [`MAX_SESSIONS`], the oldest closed first, and at most
//! [`MAX_SESSIONS_PER_CALLER`] of one caller, whose own oldest is closed first — so one
//! token logging in over and over closes only its own sessions, never everyone else's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use config::ApiToken;

use super::auth::{caller_by_digest, TokenDigest};
use super::Caller;

/// The cookie's name.
pub const COOKIE: &str = "octobox_session";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The most sessions kept at once.
pub const MAX_SESSIONS: usize = 10_000;
/// The most sessions one caller (one declared token) keeps at once: a browser each, and
/// some to spare.
pub const MAX_SESSIONS_PER_CALLER: usize = 32;

struct Session {
    name: String,
    digest: TokenDigest,
    csrf: String,
    opened: Instant,
}

/// A live session, as a request finds it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub caller: Caller,
    pub csrf: String,
}

#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    /// Opens a session for `caller`, who logged in with the token of digest `digest`;
    /// the `Set-Cookie` value that carries it.
    pub fn open(&self, caller: &Caller, digest: TokenDigest) -> String {
        let id = random_hex();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, s| s.opened.elapsed() < SESSION_TTL);
        let own = open.values().filter(|s| s.name == caller.name).count();
        let closed = if own >= MAX_SESSIONS_PER_CALLER {
            oldest(&open, |s| s.name == caller.name)
        } else if open.len() >= MAX_SESSIONS {
            oldest(&open, |_| true)
        } else {
            None
        };
        if let Some(id) = closed {
            open.remove(&id);
        }
        open.insert(
            id.clone(),
            Session {
                name: caller.name.clone(),
                digest,
                csrf: random_hex(),
                opened: Instant::now(),
            },
        );
        format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_TTL.as_secs()
        )
    }

    /// The session a request's cookie names, if it is open and its token still declared.
    pub fn caller(&self, headers: &HeaderMap, tokens: &[ApiToken]) -> Option<SessionView> {
        let id = cookie(headers)?;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let session = open.get(&id)?;
        let caller = caller_by_digest(tokens, &session.digest)
            .filter(|c| c.name == session.name && session.opened.elapsed() < SESSION_TTL);
        match caller {
            Some(caller) => Some(SessionView {
                caller,
                csrf: session.csrf.clone(),
            }),
            None => {
                open.remove(&id);
                None
            }
        }
    }

    /// Ends the session a request's cookie names.
    pub fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
    }
}

/// The id of the oldest session of those `which` picks.
fn oldest(open: &HashMap<String, Session>, which: impl Fn(&Session) -> bool) -> Option<String> {
    open.iter()
        .filter(|(_, s)| which(s))
        .min_by_key(|(_, s)| s.opened)
        .map(|(id, _)| id.clone())
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session id in a request's `Cookie` headers.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Compares a form's CSRF token with the session's, in constant time.
pub fn csrf_matches(session: &SessionView, presented: &str) -> bool {
    let (a, b) = (session.csrf.as_bytes(), presented.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::digest;
    use axum::http::HeaderValue;
    use config::Secret;

    fn token(value: &str) -> ApiToken {
        ApiToken {
            name: "ops".into(),
            groups: vec![],
            value: Secret::new(value),
        }
    }

    fn with_cookie(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(pair).unwrap());
        h
    }

    #[test]
    fn a_session_lasts_while_its_token_is_declared() {
        let sessions = Sessions::default();
        let t = token("a-long-enough-token-value-1234");
        let caller = Caller { name: "ops".into() };
        let set = sessions.open(&caller, digest(t.value.expose()));
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        let headers = with_cookie(&set);
        let view = sessions.caller(&headers, std::slice::from_ref(&t)).unwrap();
        assert_eq!(view.caller, caller);
        assert!(csrf_matches(&view, &view.csrf.clone()));
        assert!(!csrf_matches(&view, "0"));
        // The token was replaced: the session is over, and stays over.
        let other = token("another-long-enough-token-5678");
        assert!(sessions.caller(&headers, &[other]).is_none());
        assert!(sessions.caller(&headers, &[t]).is_none());
    }

    #[test]
    fn one_caller_logging_in_again_and_again_closes_only_its_own_oldest_sessions() {
        let sessions = Sessions::default();
        let (ops, viewer) = (token("a-long-enough-token-value-1234"), {
            let mut t = token("the-viewers-long-token-value-99");
            t.name = "viewer".into();
            t
        });
        let tokens = [ops.clone(), viewer.clone()];
        let ops_caller = Caller { name: "ops".into() };
        let ops_session = with_cookie(&sessions.open(&ops_caller, digest(ops.value.expose())));
        let viewer_caller = Caller {
            name: "viewer".into(),
        };
        let opened: Vec<HeaderMap> = (0..MAX_SESSIONS + 10)
            .map(|_| with_cookie(&sessions.open(&viewer_caller, digest(viewer.value.expose()))))
            .collect();
        assert!(sessions.caller(&ops_session, &tokens).is_some());
        assert!(sessions.caller(&opened[0], &tokens).is_none());
        let live = opened
            .iter()
            .filter(|h| sessions.caller(h, &tokens).is_some())
            .count();
        assert_eq!(live, MAX_SESSIONS_PER_CALLER);
        assert!(sessions.caller(opened.last().unwrap(), &tokens).is_some());
    }

    #[test]
    fn logout_and_forged_cookies_find_no_session() {
        let sessions = Sessions::default();
        let t = token("a-long-enough-token-value-1234");
        let set = sessions.open(&Caller { name: "ops".into() }, digest(t.value.expose()));
        let headers = with_cookie(&set);
        let forged = with_cookie(&format!("{COOKIE}={}", "a".repeat(64)));
        assert!(sessions.caller(&forged, std::slice::from_ref(&t)).is_none());
        sessions.close(&headers);
        assert!(sessions.caller(&headers, &[t]).is_none());
    }
}
