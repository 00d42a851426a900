//! [`Sessions`]: the dashboard's logins. Logging in with an API token opens a session
//! whose id travels in an `HttpOnly`, `SameSite=Strict` cookie; the session keeps the
//! token's digest, never the token, and ends when that token is no longer declared (a
//! reload that removed it), after [`SESSION_TTL`], or on logout. Each session has its own
//! CSRF token, which every form the dashboard serves carries and every action checks.
//! Bounded: at most [`MAX_SESSIONS`], the oldest closed first.

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
        if open.len() >= MAX_SESSIONS {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.opened)
                .map(|(k, _)| k.clone())
            {
                open.remove(&oldest);
            }
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
