//! Instructor access. The instructor proves they hold the configured admin token once
//! (`POST /api/v1/admin/login {"token"}`) and gets the `drydock_admin` cookie: a random id
//! (HttpOnly, SameSite=Strict, 12 hours) of which the store keeps only the SHA-256, so the
//! token itself never rides along in URLs. API clients may send `Authorization: Bearer
//! <admin token>` instead.
//!
//! Who an instructor is: [`owner_of_token`], a fingerprint of the token that signed them in.
//! Workshops carry it as their `owner`, so an instructor sees the workshops made with their
//! token; per-instructor tokens later only need more tokens mapping to more owners. A cookie
//! made with a token that is no longer configured stops working.
//!
//! Without an admin token configured every instructor endpoint answers 403 (disabled); a
//! wrong token 401; repeated failures from one address 429.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use rand::RngCore;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use crate::error::Error;
use crate::sessions::{hash_token, Sessions};
use crate::store::AdminSessionRow;

pub const COOKIE: &str = "drydock_admin";
/// How long a sign-in lasts.
pub const ADMIN_SESSION_LENGTH: Duration = Duration::from_secs(12 * 3600);

/// A signed-in instructor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Who owns what this instructor creates.
    pub owner: String,
    /// The admin session (cookie) it came from; `None` for a Bearer token.
    pub session: Option<String>,
}

/// The owner id of the instructor holding `token`.
pub fn owner_of_token(token: &str) -> String {
    format!(
        "admin-{}",
        &hash_token(&format!("drydock workshop owner\n{token}"))[..16]
    )
}

pub fn disabled() -> Error {
    Error::Forbidden(
        "instructor features are disabled: this server has no admin token (set admin_token \
         in the configuration file or DRYDOCK_ADMIN_TOKEN, then restart it)"
            .into(),
    )
}

fn not_signed_in() -> Error {
    Error::Unauthorized(
        "instructor sign-in required: sign in at /admin with the admin token, or send \
         Authorization: Bearer <admin token>"
            .into(),
    )
}

/// The `drydock_admin` cookie's value, if the request has one.
pub fn cookie_value(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// A cookie's value by name.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    (v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ")).then(|| v[7..].trim().to_owned())
}

fn token_matches(configured: &str, offered: &str) -> bool {
    // Compare digests: equal length, constant time whatever was offered.
    let (a, b) = (hash_token(configured), hash_token(offered));
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether the request carries anything that could be instructor credentials.
pub fn offered(headers: &HeaderMap) -> bool {
    cookie_value(headers).is_some() || bearer(headers).is_some()
}

/// The instructor making the request: the admin token as Bearer, or a live `drydock_admin`
/// cookie. 403 when instructor features are disabled, 401 otherwise.
pub async fn authenticate(sessions: &Sessions, headers: &HeaderMap) -> Result<Admin, Error> {
    let Some(configured) = sessions.config().admin_token.as_deref() else {
        return Err(disabled());
    };
    let owner = owner_of_token(configured);
    if let Some(b) = bearer(headers) {
        if token_matches(configured, &b) {
            return Ok(Admin {
                owner,
                session: None,
            });
        }
    }
    if let Some(v) = cookie_value(headers) {
        let id_hash = hash_token(&v);
        if let Some(row) = sessions.store().get_admin_session(&id_hash).await? {
            if row.expires_at > sessions.clock().now_ms() && row.owner == owner {
                return Ok(Admin {
                    owner,
                    session: Some(id_hash),
                });
            }
        }
    }
    Err(not_signed_in())
}

/// Checks `token` and opens an admin session: the cookie value and the row stored for it.
pub async fn login(sessions: &Sessions, token: &str) -> Result<(String, AdminSessionRow), Error> {
    let Some(configured) = sessions.config().admin_token.as_deref() else {
        return Err(disabled());
    };
    if token.trim().is_empty() {
        return Err(Error::BadRequest(
            "the admin token is empty: enter the admin_token of the server's configuration".into(),
        ));
    }
    if !token_matches(configured, token.trim()) {
        return Err(Error::Unauthorized(
            "wrong admin token: it does not match this server's admin_token".into(),
        ));
    }
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    let value = hex::encode(b);
    let now = sessions.clock().now_ms();
    let row = AdminSessionRow {
        id_hash: hash_token(&value),
        owner: owner_of_token(configured),
        created_at: now,
        expires_at: now + ADMIN_SESSION_LENGTH.as_millis() as i64,
    };
    let store = sessions.store();
    if let Err(e) = store.delete_expired_admin_sessions(now).await {
        tracing::warn!(error = %e, "dropping expired admin sessions");
    }
    store.insert_admin_session(&row).await?;
    Ok((value, row))
}

/// `Set-Cookie` for a new admin session (Secure when the public origin is https).
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        ADMIN_SESSION_LENGTH.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the admin cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// Counts failures (wrong admin tokens, unknown join codes) per client address in a sliding
/// minute, and refuses an address with too many.
pub struct FailureLimiter {
    per_minute: usize,
    what: &'static str,
    hits: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl FailureLimiter {
    pub fn new(per_minute: usize, what: &'static str) -> FailureLimiter {
        FailureLimiter {
            per_minute,
            what,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// 429 while `ip` has had too many failures in the last minute.
    pub fn check(&self, ip: IpAddr) -> Result<(), Error> {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        let Some(q) = hits.get_mut(&ip) else {
            return Ok(());
        };
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.len() >= self.per_minute {
            let wait = q
                .front()
                .map(|t| WINDOW.saturating_sub(now.duration_since(*t)).as_secs() + 1)
                .unwrap_or(60);
            return Err(Error::RateLimited(format!(
                "too many {} from {ip}: try again in {wait} s",
                self.what
            )));
        }
        Ok(())
    }

    pub fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() > 10_000 {
            hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        hits.entry(ip).or_default().push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_cookies() {
        assert_eq!(owner_of_token("a"), owner_of_token("a"));
        assert_ne!(owner_of_token("a"), owner_of_token("b"));
        assert!(!owner_of_token("secret").contains("secret"));
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            "x=1; drydock_admin=abc ; drydock_session=s.t"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie_value(&h).as_deref(), Some("abc"));
        assert!(set_cookie("v", true).ends_with("; Secure"));
        assert!(set_cookie("v", false).contains("SameSite=Strict"));
        assert!(token_matches("tok", "tok") && !token_matches("tok", "to"));
    }

    #[test]
    fn failures_are_limited_per_address() {
        let l = FailureLimiter::new(2, "failed sign-ins");
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.check(ip).is_ok());
        l.failed(ip);
        l.failed(ip);
        let e = l.check(ip).unwrap_err().to_string();
        assert!(e.contains("too many failed sign-ins from 10.0.0.1"), "{e}");
        assert!(l.check("10.0.0.2".parse().unwrap()).is_ok());
    }
}
