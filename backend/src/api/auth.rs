//! Where a request's session token comes from: `Authorization: Bearer`, the
//! `drydock_session=<id>.<token>` cookie, or `?token=` (for WebSocket upgrades).

use axum::http::HeaderMap;

pub const COOKIE_NAME: &str = "drydock_session";

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(id: &str, token: &str) -> String {
    format!("{COOKIE_NAME}={id}.{token}; HttpOnly; SameSite=Lax; Path=/")
}

/// Decodes `a=b&c=d` (with `%XX` and `+`) into pairs.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                },
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

pub fn query_get(query: Option<&str>, key: &str) -> Option<String> {
    query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// The token offered for session `id`, if any.
pub fn token_for(id: &str, headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim().to_owned());
        }
    }
    for h in headers.get_all(axum::http::header::COOKIE) {
        let Ok(h) = h.to_str() else { continue };
        for c in h.split(';') {
            if let Some((name, value)) = c.trim().split_once('=') {
                if name == COOKIE_NAME {
                    if let Some((cid, tok)) = value.split_once('.') {
                        if cid == id {
                            return Some(tok.to_owned());
                        }
                    }
                }
            }
        }
    }
    query_get(query, "token").filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_sources() {
        let mut h = HeaderMap::new();
        assert_eq!(
            token_for("abc", &h, Some("x=1&token=t%2Dq")),
            Some("t-q".into())
        );
        h.insert(
            "cookie",
            "other=1; drydock_session=abc.tok".parse().unwrap(),
        );
        assert_eq!(token_for("abc", &h, None), Some("tok".into()));
        assert_eq!(token_for("zzz", &h, None), None);
        h.insert("authorization", "Bearer bear".parse().unwrap());
        assert_eq!(token_for("abc", &h, None), Some("bear".into()));
        assert_eq!(query_get(Some("a=%"), "a"), Some("%".into()));
    }
}
