//! The browser UI: `frontend/dist` embedded in the binary (rust-embed) and served at `/`.
//!
//! Owns the answer to every GET that is not an API, proxy or operations path: a built asset
//! when the path names one, otherwise `index.html` so the UI's own router handles
//! `/s/{id}`, `/w/{code}` and the instructor pages. Hashed assets under `/assets/` are cached
//! for a year; `index.html` is never cached so a new build is picked up at once.
//!
//! When the binary was built before `npm run build` (no `frontend/dist`), `/` answers a short
//! page saying how to build the UI instead of failing.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../frontend/dist/"]
#[allow_missing = true]
struct Dist;

/// Paths the UI never answers: they belong to the API, the port proxy and operations.
fn reserved(path: &str) -> bool {
    ["/api/", "/p/", "/healthz", "/metrics"]
        .iter()
        .any(|prefix| path == prefix.trim_end_matches('/') || path.starts_with(prefix))
}

/// Whether a request is one the UI answers.
pub fn handles(method: &Method, uri: &Uri) -> bool {
    (method == Method::GET || method == Method::HEAD) && !reserved(uri.path())
}

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Drydock</title>\
<p>The Drydock UI is not built into this binary. Run <code>npm ci &amp;&amp; npm run build</code> \
in <code>frontend/</code>, then rebuild the server (<code>scripts/up</code> does both).</p>";

/// Serves an embedded asset, or `index.html` for the UI's own routes.
pub fn serve(uri: &Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if let Some(file) = (!path.is_empty()).then(|| Dist::get(path)).flatten() {
        let mime = file.metadata.mimetype().to_owned();
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return asset(file.data.into_owned(), &mime, cache);
    }
    // A missing file with an extension is a real 404, not a UI route.
    if path
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
    {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    match Dist::get("index.html") {
        Some(index) => asset(
            index.data.into_owned(),
            "text/html; charset=utf-8",
            "no-cache",
        ),
        None => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            NOT_BUILT,
        )
            .into_response(),
    }
}

fn asset(body: Vec<u8>, mime: &str, cache: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_and_proxy_paths_are_not_the_ui() {
        let get = Method::GET;
        assert!(handles(&get, &Uri::from_static("/")));
        assert!(handles(&get, &Uri::from_static("/s/abc")));
        assert!(handles(&get, &Uri::from_static("/assets/index-1234.js")));
        assert!(!handles(&get, &Uri::from_static("/api/v1/sessions")));
        assert!(!handles(&get, &Uri::from_static("/p/abc/node1/80/")));
        assert!(!handles(&get, &Uri::from_static("/healthz")));
        assert!(!handles(&get, &Uri::from_static("/metrics")));
        assert!(!handles(&Method::POST, &Uri::from_static("/")));
    }

    #[test]
    fn unknown_files_are_404_and_routes_get_the_app() {
        assert_eq!(
            serve(&Uri::from_static("/nope.js")).status(),
            StatusCode::NOT_FOUND
        );
        let page = serve(&Uri::from_static("/s/0123456789abcdef"));
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
}
