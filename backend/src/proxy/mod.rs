//! Port preview: an authenticated HTTP and WebSocket reverse proxy to the servers learners
//! start inside their instances.
//!
//! - [`path`]: `/p/{session}/{instance}/{port}/…` on the server's own origin.
//! - [`host`]: `{port}-{instance}-{session}.{preview_domain}` (only when `preview_domain` is
//!   configured), routed by the Host header before the normal router, so apps that must live
//!   at `/` work and the app gets an origin of its own.
//! - [`forward`]: connects to `instance_ip:port` on the session's network (the same address
//!   the agent is reached at, another port), streams the request and the answer both ways,
//!   and splices WebSocket (any `Upgrade`) connections.
//! - [`rewrite`]: what is stripped from requests and how `Location`/`Set-Cookie` are adapted.
//! - [`pages`]: the HTML error pages.
//!
//! Access needs the session's token, as for the session API: `Authorization: Bearer`, the
//! `drydock_session` cookie, the preview cookie ([`PREVIEW_COOKIE`], set by the `?token=`
//! handshake), or `?token=`. An unknown session and a wrong token get the same 404 page.

pub mod forward;
pub mod host;
pub mod pages;
pub mod path;
pub mod rewrite;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::agent_client::AgentTarget;
use crate::api::{auth, AppState};
use crate::sessions::{valid_instance_name, valid_session_id, Live};
use crate::store::instance_state;

/// Cookie set by the `?token=` handshake: `{session}.{token}`, HttpOnly, scoped to
/// `/p/{session}/` (path-based) or to the preview host (host-based).
pub const PREVIEW_COOKIE: &str = "drydock_preview";

/// Where the token that authorized a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Bearer,
    Cookie,
    Query,
}

/// A request allowed to reach a session's previews.
pub struct Authorized {
    pub live: Arc<Live>,
    pub token: String,
    pub source: TokenSource,
}

/// Cookie values named `name` of the form `{id}.{token}`: the tokens.
fn cookie_tokens(headers: &HeaderMap, name: &str, id: &str) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(n, _)| n.trim() == name)
        .filter_map(|(_, v)| v.trim().split_once('.'))
        .filter(|(cid, _)| *cid == id)
        .map(|(_, tok)| tok.to_owned())
        .collect()
}

/// Checks the tokens a request offers for session `id` (Bearer, then cookies, then
/// `?token=`); the first that is the session's token wins.
pub fn authorize(
    st: &AppState,
    id: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<Authorized> {
    if !valid_session_id(id) {
        return None;
    }
    let mut offered: Vec<(String, TokenSource)> = Vec::new();
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            offered.push((v[7..].trim().to_owned(), TokenSource::Bearer));
        }
    }
    for name in [PREVIEW_COOKIE, auth::COOKIE_NAME] {
        for t in cookie_tokens(headers, name, id) {
            offered.push((t, TokenSource::Cookie));
        }
    }
    if let Some(t) = auth::query_get(query, "token").filter(|t| !t.is_empty()) {
        offered.push((t, TokenSource::Query));
    }
    if offered.is_empty() {
        // Same work as for a wrong token.
        let _ = st.sessions.authorize(id, "");
        return None;
    }
    offered.into_iter().find_map(|(token, source)| {
        st.sessions
            .authorize(id, &token)
            .ok()
            .map(|live| Authorized {
                live,
                token,
                source,
            })
    })
}

/// Why a preview is refused before anything is connected; answered with its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    BadPort(String),
    NoInstance(String),
    Starting(String),
    Failed(String, Option<String>),
    AgentPort(u16),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::BadPort(raw) => pages::bad_port(&raw),
            Refused::NoInstance(name) => pages::no_instance(&name),
            Refused::Starting(name) => pages::starting(&name),
            Refused::Failed(name, reason) => pages::failed(&name, reason.as_deref()),
            Refused::AgentPort(port) => pages::agent_port(port),
        }
    }
}

/// `"8080"` → 8080; anything but 1-65535 in plain digits is refused.
pub fn parse_port(raw: &str) -> Result<u16, Refused> {
    match raw.parse::<u16>() {
        Ok(p) if p > 0 && raw.bytes().all(|b| b.is_ascii_digit()) && !raw.starts_with('0') => Ok(p),
        _ => Err(Refused::BadPort(raw.to_owned())),
    }
}

/// Where a preview's requests go.
pub struct Target {
    pub upstream: SocketAddr,
    pub agent: AgentTarget,
}

/// Finds the instance `name` of an authorized session and the address of its `port`.
pub fn resolve(st: &AppState, auth: &Authorized, name: &str, port: u16) -> Result<Target, Refused> {
    let state = valid_instance_name(name)
        .then(|| st.sessions.instance_state(&auth.live, name))
        .flatten();
    match state {
        None => return Err(Refused::NoInstance(name.to_owned())),
        Some((state, _)) if state == instance_state::STARTING => {
            return Err(Refused::Starting(name.to_owned()))
        }
        Some((state, reason)) if state == instance_state::FAILED => {
            return Err(Refused::Failed(name.to_owned(), reason))
        }
        Some(_) => {}
    }
    let agent = st
        .sessions
        .agent_target(&auth.live, name)
        .map_err(|_| Refused::Starting(name.to_owned()))?;
    if port == agent.addr.port() {
        return Err(Refused::AgentPort(port));
    }
    Ok(Target {
        upstream: SocketAddr::new(agent.addr.ip(), port),
        agent,
    })
}

/// Whether a request is a plain page load (GET/HEAD, not an upgrade): only those are
/// redirected by the token handshake.
pub fn is_navigation(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD) && !rewrite::is_upgrade(headers)
}

/// The scheme the browser used: `X-Forwarded-Proto` from a front proxy, else the configured
/// public origin's, else `http`.
pub fn browser_proto(st: &AppState, headers: &HeaderMap) -> String {
    if let Some(p) = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| v == "http" || v == "https")
    {
        return p;
    }
    match &st.sessions.config().public_origin {
        Some(o) if o.to_ascii_lowercase().starts_with("https:") => "https".into(),
        _ => "http".into(),
    }
}

/// A 302 to `location` (never cached), optionally setting a cookie.
pub fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The handshake cookie for session `id`.
pub fn preview_cookie(id: &str, token: &str, path: &str, secure: bool) -> String {
    format!(
        "{PREVIEW_COOKIE}={id}.{token}; Path={path}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port("8080").unwrap(), 8080);
        assert_eq!(parse_port("65535").unwrap(), 65535);
        for bad in ["0", "65536", "-1", "+80", "080", "", "80a", "99999999999"] {
            let e = parse_port(bad).unwrap_err();
            assert_eq!(e, Refused::BadPort(bad.into()));
            assert_eq!(e.into_response().status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn cookie_tokens_match_the_session() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("drydock_preview=aaaa.t1; drydock_preview=bbbb.t2"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("x=1"));
        assert_eq!(cookie_tokens(&h, PREVIEW_COOKIE, "bbbb"), vec!["t2"]);
        assert!(cookie_tokens(&h, auth::COOKIE_NAME, "bbbb").is_empty());
    }
}
