//! Path-based previews: `/p/{session}/{instance}/{port}/{rest}` on the server's own origin
//! is forwarded to `/{rest}` on `instance_ip:port`.
//!
//! - `/p/{session}/{instance}/{port}` (no trailing slash) redirects to the same with a slash,
//!   so the app's relative links resolve under the prefix.
//! - A page load that carries `?token=` sets the preview cookie (Path `/p/{session}/`) and
//!   redirects to the same URL without the token, so the token does not stay in the address
//!   bar or reach the app.
//! - With `preview_domain` configured, page loads are redirected to the host-based address
//!   (with `?token=` for its own handshake): apps then live at `/` on an origin of their own.
//!   Other requests (WebSocket, POST, …) are still served here.

use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::{IntoResponse, Response};

use super::forward::{forward, Forward};
use super::rewrite::{query_without_token, with_query};
use super::{
    authorize, browser_proto, is_navigation, pages, parse_port, preview_cookie, redirect, resolve,
    TokenSource,
};
use crate::api::{AppState, ClientIp};

/// `/p/{*rest}`.
pub async fn handle(
    State(st): State<AppState>,
    ClientIp(client_ip): ClientIp,
    req: Request<Body>,
) -> Response {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let Some(rest) = path.strip_prefix("/p/") else {
        return pages::bad_path();
    };
    let mut segments = rest.splitn(4, '/');
    let (Some(id), Some(name), Some(raw_port)) =
        (segments.next(), segments.next(), segments.next())
    else {
        return pages::bad_path();
    };
    if id.is_empty() || name.is_empty() {
        return pages::bad_path();
    }
    let port = match parse_port(raw_port) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let Some(tail) = segments.next() else {
        return redirect(&with_query(&format!("{path}/"), query.as_deref()), None);
    };
    let Some(auth) = authorize(&st, id, req.headers(), query.as_deref()) else {
        return pages::session_not_found();
    };
    let target = match resolve(&st, &auth, name, port) {
        Ok(t) => t,
        Err(refused) => return refused.into_response(),
    };
    let prefix = format!("/p/{id}/{name}/{port}");
    let ours_stripped = if auth.source == TokenSource::Query {
        query_without_token(query.as_deref(), &auth.token)
    } else {
        query.clone()
    };
    let proto = browser_proto(&st, req.headers());
    if is_navigation(req.method(), req.headers()) {
        if let Some(domain) = st.sessions.config().preview_domain.clone() {
            let host = super::host::preview_authority(&domain, port, name, id, req.headers());
            let mut q = ours_stripped.clone().unwrap_or_default();
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str("token=");
            q.push_str(&auth.token);
            return redirect(&format!("{proto}://{host}/{tail}?{q}"), None);
        }
        if auth.source == TokenSource::Query {
            let cookie = preview_cookie(id, &auth.token, &format!("/p/{id}/"), proto == "https");
            return redirect(&with_query(&path, ours_stripped.as_deref()), Some(cookie));
        }
    }
    let f = Forward {
        upstream: target.upstream,
        agent: target.agent,
        instance: name.to_owned(),
        port,
        prefix: Some(prefix),
        path_and_query: with_query(&format!("/{tail}"), ours_stripped.as_deref()),
        client_ip,
        proto,
    };
    forward(&st.sessions, f, req).await
}
