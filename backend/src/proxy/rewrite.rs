//! Pure header and URL rewriting for the preview proxy: what is stripped from requests
//! (Drydock's own cookies, Bearer credentials, hop-by-hop headers, our `token` query
//! parameter) and how responses are adapted to where the app is mounted (`Location`,
//! `Set-Cookie`).

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::PREVIEW_COOKIE;
use crate::api::auth::COOKIE_NAME;

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Whether a request asks to switch protocols (`Connection: upgrade` plus `Upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(axum::http::header::UPGRADE)
        && connection_tokens(headers).iter().any(|t| t == "upgrade")
}

/// The lower-cased tokens of every `Connection` header.
pub fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether `name` is hop-by-hop here: in the fixed list, or named by `Connection`
/// (`upgrade` is handled by the caller).
pub fn is_hop_by_hop(name: &HeaderName, connection: &[String]) -> bool {
    let n = name.as_str();
    HOP_BY_HOP.contains(&n) || n == "upgrade" || connection.iter().any(|t| t == n)
}

/// Whether a Drydock cookie name (the session's or the preview's).
pub fn is_drydock_cookie(name: &str) -> bool {
    name == COOKIE_NAME || name == PREVIEW_COOKIE
}

/// The request's `Cookie` headers joined, without Drydock's own cookies; `None` if nothing
/// is left.
pub fn strip_cookies<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Option<HeaderValue> {
    let kept: Vec<&str> = values
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .filter(|c| !is_drydock_cookie(c.split('=').next().unwrap_or("").trim()))
        .collect();
    if kept.is_empty() {
        None
    } else {
        HeaderValue::from_str(&kept.join("; ")).ok()
    }
}

/// Whether an `Authorization` value is a Bearer credential (Drydock's scheme; stripped).
/// Other schemes (Basic, Digest) belong to the app and pass through.
pub fn is_bearer(value: &HeaderValue) -> bool {
    value
        .to_str()
        .map(|v| {
            let v = v.trim_start();
            v.len() >= 6 && v[..6].eq_ignore_ascii_case("bearer")
        })
        .unwrap_or(true)
}

fn decode(s: &str) -> String {
    crate::api::auth::query_pairs(Some(&format!("k={s}")))
        .pop()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// `query` without the `token=<token>` pairs (other pairs keep their exact encoding); `None`
/// if nothing is left.
pub fn query_without_token(query: Option<&str>, token: &str) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| match p.split_once('=') {
            Some((k, v)) => !(decode(k) == "token" && decode(v) == token),
            None => true,
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// `path` plus `?query` when there is one.
pub fn with_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    }
}

/// Where the app is mounted, for rewriting what it says about URLs.
pub struct Mount<'a> {
    /// `/p/{id}/{name}/{port}` for path-based previews; `None` for host-based ones.
    pub prefix: Option<&'a str>,
    /// The Host the browser used.
    pub public_host: &'a str,
    /// Scheme the browser used (`http` or `https`).
    pub proto: &'a str,
    /// Authorities the app may believe it lives at: the upstream `ip:port`,
    /// `localhost:port`, `127.0.0.1:port`, `0.0.0.0:port` (lower case).
    pub upstream_hosts: Vec<String>,
}

impl Mount<'_> {
    pub fn upstream_hosts_for(ip: std::net::IpAddr, port: u16) -> Vec<String> {
        let names = [
            ip.to_string(),
            "localhost".into(),
            "127.0.0.1".into(),
            "0.0.0.0".into(),
        ];
        let mut hosts: Vec<String> = names.iter().map(|h| format!("{h}:{port}")).collect();
        if port == 80 {
            hosts.extend(names);
        }
        hosts
    }

    /// An absolute path as the browser must request it.
    fn mounted(&self, path: &str) -> String {
        let path = if path.is_empty() || path.starts_with('?') || path.starts_with('#') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        match self.prefix {
            None => path,
            Some(p) => {
                let already = path
                    .strip_prefix(p)
                    .is_some_and(|r| r.is_empty() || r.starts_with(['/', '?', '#']));
                if already {
                    path
                } else {
                    format!("{p}{path}")
                }
            }
        }
    }

    /// Rewrites a `Location` (or `Content-Location`) value: absolute paths get the prefix,
    /// absolute URLs pointing at the app's own idea of its address point at the preview.
    /// Relative references and foreign URLs are left alone.
    pub fn location(&self, value: &str) -> String {
        if value.starts_with('/') && !value.starts_with("//") {
            return self.mounted(value);
        }
        let (scheme, rest) = if let Some(r) = value.strip_prefix("//") {
            (None, r)
        } else {
            match value.split_once("://") {
                Some((s, r))
                    if s.eq_ignore_ascii_case("http")
                        || s.eq_ignore_ascii_case("https")
                        || s.eq_ignore_ascii_case("ws")
                        || s.eq_ignore_ascii_case("wss") =>
                {
                    (Some(s), r)
                }
                _ => return value.to_owned(),
            }
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let authority_lc = authority.to_ascii_lowercase();
        let ours = authority_lc == self.public_host.to_ascii_lowercase();
        let upstream = self.upstream_hosts.contains(&authority_lc);
        if !ours && !upstream {
            return value.to_owned();
        }
        match self.prefix {
            Some(_) => self.mounted(path),
            None if ours => value.to_owned(),
            None => {
                let scheme = match scheme {
                    Some(s) if s.eq_ignore_ascii_case("ws") || s.eq_ignore_ascii_case("wss") => {
                        if self.proto == "https" {
                            "wss"
                        } else {
                            "ws"
                        }
                    }
                    _ => self.proto,
                };
                format!("{scheme}://{}{}", self.public_host, self.mounted(path))
            }
        }
    }

    /// Rewrites a `Set-Cookie` value: `Path` gets the prefix, `Domain` is dropped (the cookie
    /// becomes host-only). `None`: drop the header (it would set one of Drydock's cookies).
    pub fn set_cookie(&self, value: &str) -> Option<String> {
        let mut parts = value.split(';');
        let first = parts.next().unwrap_or("").trim();
        let name = first.split('=').next().unwrap_or("").trim();
        if name.is_empty() || is_drydock_cookie(name) {
            return None;
        }
        let mut out = vec![first.to_owned()];
        for attr in parts {
            let a = attr.trim();
            if a.is_empty() {
                continue;
            }
            let (key, val) = match a.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (a, ""),
            };
            if key.eq_ignore_ascii_case("domain") {
                continue;
            }
            if key.eq_ignore_ascii_case("path") && self.prefix.is_some() && val.starts_with('/') {
                out.push(format!("Path={}", self.mounted(val)));
                continue;
            }
            out.push(a.to_owned());
        }
        Some(out.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_mount() -> Mount<'static> {
        Mount {
            prefix: Some("/p/0123456789abcdef/node1/8080"),
            public_host: "drydock.example:8000",
            proto: "http",
            upstream_hosts: Mount::upstream_hosts_for("172.20.0.2".parse().unwrap(), 8080),
        }
    }

    fn host_mount() -> Mount<'static> {
        Mount {
            prefix: None,
            public_host: "8080-node1-0123456789abcdef.preview.example",
            proto: "https",
            upstream_hosts: Mount::upstream_hosts_for("172.20.0.2".parse().unwrap(), 8080),
        }
    }

    #[test]
    fn locations_in_path_mode() {
        let m = path_mount();
        let p = "/p/0123456789abcdef/node1/8080";
        assert_eq!(m.location("/login?next=/"), format!("{p}/login?next=/"));
        assert_eq!(m.location("/"), format!("{p}/"));
        assert_eq!(m.location(&format!("{p}/x")), format!("{p}/x"));
        assert_eq!(m.location("other"), "other");
        assert_eq!(m.location("../up"), "../up");
        assert_eq!(m.location("http://172.20.0.2:8080/a#b"), format!("{p}/a#b"));
        assert_eq!(m.location("http://localhost:8080"), format!("{p}/"));
        assert_eq!(
            m.location("http://drydock.example:8000/z"),
            format!("{p}/z")
        );
        assert_eq!(m.location("https://example.org/x"), "https://example.org/x");
        assert_eq!(m.location("//example.org/x"), "//example.org/x");
        assert_eq!(m.location("mailto:a@b"), "mailto:a@b");
    }

    #[test]
    fn locations_in_host_mode() {
        let m = host_mount();
        let h = "https://8080-node1-0123456789abcdef.preview.example";
        assert_eq!(m.location("/login"), "/login");
        assert_eq!(m.location("http://127.0.0.1:8080/a"), format!("{h}/a"));
        assert_eq!(m.location(&format!("{h}/same")), format!("{h}/same"));
        assert_eq!(m.location("http://example.org/"), "http://example.org/");
    }

    #[test]
    fn set_cookie_paths_domains_and_ours() {
        let m = path_mount();
        let p = "/p/0123456789abcdef/node1/8080";
        assert_eq!(
            m.set_cookie("sid=1; Path=/; HttpOnly").unwrap(),
            format!("sid=1; Path={p}/; HttpOnly")
        );
        assert_eq!(
            m.set_cookie("a=b; Domain=localhost; path=/app").unwrap(),
            format!("a=b; Path={p}/app")
        );
        assert_eq!(m.set_cookie("a=b").unwrap(), "a=b");
        assert_eq!(m.set_cookie("drydock_session=x; Path=/"), None);
        assert_eq!(m.set_cookie("drydock_preview=x"), None);
        assert_eq!(
            host_mount()
                .set_cookie("a=b; Path=/x; Domain=.example")
                .unwrap(),
            "a=b; Path=/x"
        );
    }

    #[test]
    fn cookies_and_tokens_are_stripped() {
        let a = HeaderValue::from_static("x=1; drydock_session=id.tok; y=2");
        let b = HeaderValue::from_static("drydock_preview=id.tok");
        assert_eq!(strip_cookies([&a, &b]).unwrap(), "x=1; y=2");
        assert_eq!(strip_cookies([&b]), None);
        assert!(is_bearer(&HeaderValue::from_static("Bearer abc")));
        assert!(is_bearer(&HeaderValue::from_static("bearer abc")));
        assert!(!is_bearer(&HeaderValue::from_static("Basic dXNlcjpw")));
        assert_eq!(
            query_without_token(Some("a=1&token=t%2Dq&b=%20"), "t-q").as_deref(),
            Some("a=1&b=%20")
        );
        assert_eq!(query_without_token(Some("token=t"), "t"), None);
        assert_eq!(
            query_without_token(Some("token=theirs"), "ours").as_deref(),
            Some("token=theirs")
        );
    }

    #[test]
    fn upgrade_detection() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
        h.insert("connection", HeaderValue::from_static("keep-alive"));
        assert!(!is_upgrade(&h));
        let conn = connection_tokens(&h);
        assert!(is_hop_by_hop(&HeaderName::from_static("keep-alive"), &conn));
        assert!(!is_hop_by_hop(&HeaderName::from_static("cookie"), &conn));
    }
}
