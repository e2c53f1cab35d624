//! The forwarding core: one HTTP/1.1 connection to `instance_ip:port` per request. Bodies
//! stream both ways (hyper's backpressure bounds what is in memory, whatever their size);
//! an `Upgrade` request (WebSocket) that the app answers with 101 becomes a byte splice
//! between the two upgraded connections.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::pages;
use super::rewrite::{self, Mount};
use crate::agent_client::AgentTarget;
use crate::sessions::Sessions;

/// How long connecting to the app may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One request to forward.
pub struct Forward {
    pub upstream: SocketAddr,
    /// The instance's agent: asked which ports listen when a connection is refused.
    pub agent: AgentTarget,
    pub instance: String,
    pub port: u16,
    /// `/p/{id}/{name}/{port}` for path-based previews, `None` for host-based ones.
    pub prefix: Option<String>,
    /// Path and query to ask the app for (without the prefix and without our token).
    pub path_and_query: String,
    pub client_ip: IpAddr,
    /// Scheme the browser used.
    pub proto: String,
}

/// Forwards `req` as described by `f` and answers with the app's response (or an error page).
pub async fn forward(sessions: &Sessions, f: Forward, req: Request<Body>) -> Response {
    let (mut parts, body) = req.into_parts();
    let upgrade = rewrite::is_upgrade(&parts.headers);
    let client_upgrade = if upgrade {
        parts.extensions.remove::<OnUpgrade>()
    } else {
        None
    };
    let public_host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| f.upstream.to_string());
    let headers = request_headers(&parts.headers, &f, &public_host, upgrade);
    let uri: Uri = match f.path_and_query.parse() {
        Ok(u) => u,
        Err(_) => return pages::bad_path(),
    };
    let mut out = Request::new(body);
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = uri;
    *out.version_mut() = Version::HTTP_11;
    *out.headers_mut() = headers;

    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(f.upstream)).await {
        Err(_) => return pages::no_answer(&f.instance, f.port, CONNECT_TIMEOUT.as_secs()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            // Listening on loopback only looks the same from here; the agent can tell.
            let listed = match sessions.agent().ports(&f.agent).await {
                Ok(ports) => ports.iter().any(|p| p.port == f.port),
                Err(_) => false,
            };
            return if listed {
                pages::localhost_only(&f.instance, f.port)
            } else {
                pages::not_listening(&f.instance, f.port)
            };
        }
        Ok(Err(e)) => {
            tracing::debug!(upstream = %f.upstream, error = %e, "preview connect failed");
            return pages::bad_upstream(&f.instance, f.port, &format!("connect: {e}"));
        }
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(x) => x,
        Err(e) => return pages::bad_upstream(&f.instance, f.port, &e.to_string()),
    };
    let upstream = f.upstream;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(%upstream, error = %e, "preview connection ended with an error");
        }
    });
    let resp = match sender.send_request(out).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%upstream, error = %e, "preview request failed");
            return pages::bad_upstream(&f.instance, f.port, &error_chain(&e));
        }
    };
    let (mut rparts, rbody) = resp.into_parts();
    let mount = Mount {
        prefix: f.prefix.as_deref(),
        public_host: &public_host,
        proto: &f.proto,
        upstream_hosts: Mount::upstream_hosts_for(f.upstream.ip(), f.port),
    };

    if rparts.status == StatusCode::SWITCHING_PROTOCOLS {
        let (Some(client), Some(app)) = (client_upgrade, rparts.extensions.remove::<OnUpgrade>())
        else {
            return pages::bad_upstream(
                &f.instance,
                f.port,
                "the app switched protocols on a request that did not ask for it",
            );
        };
        tokio::spawn(splice(client, app, upstream));
        let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let h = resp.headers_mut();
        for (name, value) in rparts.headers.iter() {
            if let Some(v) = response_header(&mount, name, value) {
                h.append(name.clone(), v);
            }
        }
        return resp;
    }

    let connection = rewrite::connection_tokens(&rparts.headers);
    let mut h = HeaderMap::with_capacity(rparts.headers.len());
    for (name, value) in rparts.headers.iter() {
        if rewrite::is_hop_by_hop(name, &connection) {
            continue;
        }
        if let Some(v) = response_header(&mount, name, value) {
            h.append(name.clone(), v);
        }
    }
    rparts.headers = h;
    Response::from_parts(rparts, Body::new(rbody))
}

/// A response header as the browser gets it (`Location` and `Set-Cookie` adapted to the
/// mount); `None` drops it.
fn response_header(mount: &Mount, name: &HeaderName, value: &HeaderValue) -> Option<HeaderValue> {
    let text = value.to_str().ok();
    let rewritten = if name == header::LOCATION || name == header::CONTENT_LOCATION {
        text.map(|v| mount.location(v))
    } else if name == header::SET_COOKIE {
        match text {
            Some(v) => Some(mount.set_cookie(v)?),
            None => None,
        }
    } else {
        None
    };
    match rewritten {
        Some(v) => HeaderValue::from_str(&v).ok(),
        None => Some(value.clone()),
    }
}

/// The headers the app gets: the browser's, minus hop-by-hop ones, Drydock's cookies and
/// Bearer credentials, plus `X-Forwarded-*`.
fn request_headers(
    incoming: &HeaderMap,
    f: &Forward,
    public_host: &str,
    upgrade: bool,
) -> HeaderMap {
    let connection = rewrite::connection_tokens(incoming);
    let mut h = HeaderMap::with_capacity(incoming.len() + 4);
    for (name, value) in incoming.iter() {
        if rewrite::is_hop_by_hop(name, &connection)
            || name == header::COOKIE
            || (name == header::AUTHORIZATION && rewrite::is_bearer(value))
            || name.as_str() == "x-forwarded-prefix"
        {
            continue;
        }
        h.append(name.clone(), value.clone());
    }
    if let Some(c) = rewrite::strip_cookies(incoming.get_all(header::COOKIE)) {
        h.insert(header::COOKIE, c);
    }
    if upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(u) = incoming.get(header::UPGRADE) {
            h.insert(header::UPGRADE, u.clone());
        }
    }
    if !h.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(public_host) {
            h.insert(header::HOST, v);
        }
    }
    let xff = match incoming
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) if !prev.trim().is_empty() => format!("{}, {}", prev.trim(), f.client_ip),
        _ => f.client_ip.to_string(),
    };
    let set = |h: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set(&mut h, "x-forwarded-for", &xff);
    set(&mut h, "x-forwarded-proto", &f.proto);
    if !incoming.contains_key("x-forwarded-host") {
        set(&mut h, "x-forwarded-host", public_host);
    }
    if let Some(p) = &f.prefix {
        set(&mut h, "x-forwarded-prefix", p);
    }
    h
}

/// Copies bytes both ways between the browser's and the app's upgraded connections until
/// either side closes.
async fn splice(client: OnUpgrade, app: OnUpgrade, upstream: SocketAddr) {
    let (client, app) = match tokio::try_join!(client, app) {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(%upstream, error = %e, "preview upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut app = TokioIo::new(app);
    match tokio::io::copy_bidirectional(&mut client, &mut app).await {
        Ok((up, down)) => {
            tracing::debug!(%upstream, up, down, "preview upgraded connection closed")
        }
        Err(e) => tracing::debug!(%upstream, error = %e, "preview upgraded connection ended"),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
