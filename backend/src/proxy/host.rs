//! Host-based previews, when `preview_domain` is configured: a request whose Host is
//! `{port}-{instance}-{session}.{preview_domain}` is forwarded as it is (the app lives at `/`)
//! before the normal router sees it. Every other host, the preview domain itself and names
//! under it of another shape included, goes to the normal router (so a preview domain that
//! also covers the UI's host cannot hide the UI).
//!
//! Handshake: the first page load carries `?token=`; the answer sets a host-only HttpOnly
//! cookie for that host and redirects to the same path without the token, so the token is
//! never in the app's URL afterwards.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::forward::{forward, Forward};
use super::rewrite::{query_without_token, with_query};
use super::{
    authorize, browser_proto, is_navigation, pages, parse_port, preview_cookie, redirect, resolve,
    TokenSource,
};
use crate::api::AppState;

/// What a Host header means.
#[derive(Debug, PartialEq, Eq)]
pub enum HostMatch<'a> {
    /// Not `{port}-{instance}-{session}.{domain}`: the normal router.
    Other,
    /// The three parts, not validated yet.
    Preview {
        port: &'a str,
        instance: &'a str,
        session: &'a str,
    },
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Matches a (lower-cased) Host against the preview domain (ports are ignored on both).
pub fn parse_host<'a>(host: &'a str, domain: &str) -> HostMatch<'a> {
    let host = strip_port(host).trim_end_matches('.');
    let domain = strip_port(domain);
    let Some(label) = host.strip_suffix(domain).and_then(|l| l.strip_suffix('.')) else {
        return HostMatch::Other;
    };
    if label.contains('.') {
        return HostMatch::Other;
    }
    let mut parts = label.split('-');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(port), Some(instance), Some(session), None)
            if !port.is_empty() && !instance.is_empty() && !session.is_empty() =>
        {
            HostMatch::Preview {
                port,
                instance,
                session,
            }
        }
        _ => HostMatch::Other,
    }
}

/// `{port}-{instance}-{session}.{domain}`, plus the port of the request's Host when the
/// configured domain names none (the preview hosts are served by this same listener).
pub fn preview_authority(
    domain: &str,
    port: u16,
    instance: &str,
    session: &str,
    headers: &HeaderMap,
) -> String {
    let mut a = format!("{port}-{instance}-{session}.{domain}");
    if !domain.contains(':') {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if let Some((h, p)) = host.rsplit_once(':') {
            let bracketed = h.starts_with('[') && h.ends_with(']');
            if (bracketed || !h.contains(':'))
                && !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
            {
                a.push(':');
                a.push_str(p);
            }
        }
    }
    a
}

/// Middleware in front of the whole router.
pub async fn route(State(st): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let Some(domain) = st.sessions.config().preview_domain.clone() else {
        return next.run(req).await;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().host().map(str::to_owned))
        .unwrap_or_default()
        .to_ascii_lowercase();
    match parse_host(&host, &domain) {
        HostMatch::Other => next.run(req).await,
        HostMatch::Preview {
            port,
            instance,
            session,
        } => {
            let (port, instance, session) =
                (port.to_owned(), instance.to_owned(), session.to_owned());
            handle(st, &session, &instance, &port, req).await
        }
    }
}

async fn handle(
    st: AppState,
    id: &str,
    name: &str,
    raw_port: &str,
    req: Request<Body>,
) -> Response {
    let port = match parse_port(raw_port) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let query = req.uri().query().map(str::to_owned);
    let Some(auth) = authorize(&st, id, req.headers(), query.as_deref()) else {
        return pages::session_not_found();
    };
    let target = match resolve(&st, &auth, name, port) {
        Ok(t) => t,
        Err(refused) => return refused.into_response(),
    };
    let path = req.uri().path().to_owned();
    let forwarded_query = if auth.source == TokenSource::Query {
        query_without_token(query.as_deref(), &auth.token)
    } else {
        query
    };
    let proto = browser_proto(&st, req.headers());
    if auth.source == TokenSource::Query && is_navigation(req.method(), req.headers()) {
        let cookie = preview_cookie(id, &auth.token, "/", proto == "https");
        return redirect(&with_query(&path, forwarded_query.as_deref()), Some(cookie));
    }
    let client_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let f = Forward {
        upstream: target.upstream,
        agent: target.agent,
        instance: name.to_owned(),
        port,
        prefix: None,
        path_and_query: with_query(&path, forwarded_query.as_deref()),
        client_ip,
        proto,
    };
    forward(&st.sessions, f, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let d = "preview.example";
        assert_eq!(
            parse_host("8080-node1-0123456789abcdef.preview.example:9000", d),
            HostMatch::Preview {
                port: "8080",
                instance: "node1",
                session: "0123456789abcdef"
            }
        );
        assert_eq!(parse_host("preview.example", d), HostMatch::Other);
        assert_eq!(parse_host("drydock.example", d), HostMatch::Other);
        assert_eq!(parse_host("127.0.0.1:8080", d), HostMatch::Other);
        assert_eq!(parse_host("xpreview.example", d), HostMatch::Other);
        assert_eq!(parse_host("a.b.preview.example", d), HostMatch::Other);
        assert_eq!(parse_host("drydock.preview.example", d), HostMatch::Other);
        assert_eq!(
            parse_host("8080-node1.preview.example", d),
            HostMatch::Other
        );
        assert_eq!(
            parse_host("1-2-3-4.preview.example.", "preview.example:80"),
            HostMatch::Other
        );
        assert_eq!(
            parse_host("x-y-z.preview.example.", "preview.example:80"),
            HostMatch::Preview {
                port: "x",
                instance: "y",
                session: "z"
            }
        );
    }

    #[test]
    fn authorities() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(
            preview_authority("p.test", 80, "node1", "ab", &h),
            "80-node1-ab.p.test:8000"
        );
        assert_eq!(
            preview_authority("p.test:443", 80, "node1", "ab", &h),
            "80-node1-ab.p.test:443"
        );
        h.insert(header::HOST, "drydock.test".parse().unwrap());
        assert_eq!(
            preview_authority("p.test", 80, "node1", "ab", &h),
            "80-node1-ab.p.test"
        );
    }
}
