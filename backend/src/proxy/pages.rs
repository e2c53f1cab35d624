//! The preview proxy's error pages: small HTML pages that say what went wrong in the
//! learner's terms and what to do about it. Everything interpolated is escaped.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// HTML-escapes `s`.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;\
max-width:42rem;margin:4rem auto;padding:0 1.25rem;color:#1f2933;background:#fff}\
h1{font-size:1.35rem;line-height:1.3}code,pre{font:14px ui-monospace,Menlo,Consolas,monospace;\
background:#eef1f4;border-radius:4px}code{padding:.1rem .3rem}pre{padding:.6rem .8rem;\
overflow-x:auto}.s{color:#66788a;font-size:.85rem;margin-top:2.5rem}\
@media(prefers-color-scheme:dark){body{color:#e4e7eb;background:#16191d}\
code,pre{background:#262b31}.s{color:#9aa5b1}}";

/// A page: `title` (plain text) and `body` (HTML, already escaped). `refresh`: reload after
/// that many seconds.
fn page(status: StatusCode, title: &str, body: &str, refresh: Option<u32>) -> Response {
    let refresh = refresh
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{refresh}\
<title>{t} · Drydock preview</title><style>{STYLE}</style></head>\n<body><h1>{t}</h1>\n{body}\n\
<p class=\"s\">HTTP {code} · Drydock port preview</p></body></html>\n",
        t = esc(title),
        code = status.as_u16(),
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    resp
}

const SHAPE: &str =
    "Preview addresses look like <code>/p/&lt;session&gt;/&lt;instance&gt;/&lt;port&gt;/</code>, \
for example <code>/p/…/node1/8080/</code>. Open them from the port links of your Drydock session.";

/// 502: the connection to the port was refused.
pub fn not_listening(instance: &str, port: u16) -> Response {
    let (i, p) = (esc(instance), port);
    page(
        StatusCode::BAD_GATEWAY,
        &format!("Nothing is listening on port {port} in {instance} yet."),
        &format!(
            "<p>Start your server, e.g. in the {i} terminal:</p>\
<pre>python3 -m http.server {p}</pre>\
<p>or run a container that publishes the port:</p>\
<pre>docker run -d -p {p}:80 &lt;image&gt;</pre>\
<p>Then reload this page. The server must listen on all addresses (<code>0.0.0.0</code>), \
not only on <code>127.0.0.1</code>.</p>"
        ),
        None,
    )
}

/// 502: the connection was refused although the instance reports the port as listening,
/// so the server is bound to the loopback address only.
pub fn localhost_only(instance: &str, port: u16) -> Response {
    let p = port;
    page(
        StatusCode::BAD_GATEWAY,
        &format!("Port {port} in {instance} only accepts connections from inside {instance}."),
        &format!(
            "<p>Something listens on port {p}, but on <code>127.0.0.1</code> (localhost) only, \
so the preview cannot reach it. Make the server listen on all addresses, e.g.</p>\
<pre>python3 -m http.server --bind 0.0.0.0 {p}</pre>\
<p>(for Flask: <code>flask run --host 0.0.0.0 --port {p}</code>; for most servers an option \
like <code>--host 0.0.0.0</code> or <code>--bind 0.0.0.0</code>). Then reload this page.</p>"
        ),
        None,
    )
}

/// 504: the connection was not accepted in time.
pub fn no_answer(instance: &str, port: u16, secs: u64) -> Response {
    page(
        StatusCode::GATEWAY_TIMEOUT,
        &format!("Port {port} in {instance} did not answer."),
        &format!(
            "<p>The connection was not accepted within {secs} s. The instance may be very \
busy (look at <code>top</code> in its terminal); reload this page to try again.</p>"
        ),
        None,
    )
}

/// 502: connected, but no HTTP answer came back.
pub fn bad_upstream(instance: &str, port: u16, detail: &str) -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        &format!("The server on port {port} in {instance} did not answer with HTTP."),
        &format!(
            "<p>It closed the connection or sent something that is not an HTTP/1.1 answer \
(<code>{}</code>). Previews work for web servers (HTTP and WebSocket); is the program on \
port {port} one? If it just started or crashed, reload this page.</p>",
            esc(detail)
        ),
        None,
    )
}

/// 503: the instance is still starting (reloads itself).
pub fn starting(instance: &str) -> Response {
    let i = esc(instance);
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("{instance} is still starting."),
        &format!(
            "<p>The instance {i} is not ready yet; this usually takes a few seconds. \
This page reloads by itself.</p>"
        ),
        Some(2),
    )
}

/// 503: the instance failed to start.
pub fn failed(instance: &str, reason: Option<&str>) -> Response {
    let why = reason
        .map(|r| format!("<pre>{}</pre>", esc(r)))
        .unwrap_or_default();
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("{instance} could not start."),
        &format!(
            "<p>The instance did not become ready, so nothing in it can be previewed.</p>{why}\
<p>Remove it and add a new instance from your Drydock session, or start a new session.</p>"
        ),
        None,
    )
}

/// 404: the session has no such instance.
pub fn no_instance(instance: &str) -> Response {
    page(
        StatusCode::NOT_FOUND,
        &format!("There is no instance {instance} in this session."),
        &format!(
            "<p>It may have been removed. Open the ports of an instance from your Drydock \
session's page.</p><p>{SHAPE}</p>"
        ),
        None,
    )
}

/// 404: unknown session or wrong/missing token (the same page for both).
pub fn session_not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This preview is not available.",
        "<p>The session has ended (it expired or was closed), or this link does not carry the \
session's token. Open the port again from your Drydock session: the port links there work \
while the session lasts.</p>",
        None,
    )
}

/// 400: the port part is not a port number.
pub fn bad_port(raw: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        &format!("{raw:?} is not a port number."),
        &format!("<p>Use a TCP port from 1 to 65535.</p><p>{SHAPE}</p>"),
        None,
    )
}

/// 403: the agent's own port.
pub fn agent_port(port: u16) -> Response {
    page(
        StatusCode::FORBIDDEN,
        &format!("Port {port} cannot be previewed."),
        "<p>It belongs to Drydock's agent, which runs this instance's terminals. Start your \
server on another port, such as 8080.</p>",
        None,
    )
}

/// 404: a `/p/…` path that is not a preview address.
pub fn bad_path() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This is not a preview address.",
        &format!("<p>{SHAPE}</p>"),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[tokio::test]
    async fn pages_are_html_with_the_message() {
        use http_body_util::BodyExt;
        let r = not_listening("node1", 8080);
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("Nothing is listening on port 8080 in node1 yet."));
        assert!(body.contains("python3 -m http.server 8080"));
        let r = bad_port("<script>");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert!(!String::from_utf8_lossy(&body).contains("<script>"));
    }
}
