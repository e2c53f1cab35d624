//! Port preview (`/p/{id}/{name}/{port}/…` and preview hosts).
//!
//! The first tests need no Docker: the router is served on loopback over a fake runtime whose
//! "instance" is 127.0.0.1 (a fake agent answers health and ports), and a small app on another
//! loopback port plays the learner's server. The last test runs the real `drydock` binary
//! against the real dockerd and instance image (gated by `DRYDOCK_E2E` like tests/e2e.rs).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ws::{Message as AxMessage, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::routing::{any, get};
use axum::{Json, Router};
use common::e2e::{e2e, labelled, Cleanup, Server, SERIAL, SHORT};
use common::FakeRuntime;
use drydock::config::{Config, Settings};
use drydock_protocol::agent::ListeningPort;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

// ---------------------------------------------------------------------------------------
// Without Docker
// ---------------------------------------------------------------------------------------

async fn serve(router: Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            l,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    addr
}

/// An agent that is always ready and lists `ports`.
async fn fake_agent(ports: Arc<Mutex<Vec<u16>>>) -> SocketAddr {
    let engine = |state: &str| json!({"state": state, "restarts": 0, "message": null});
    let health = json!({
        "version": "fake",
        "ready": true,
        "dockerd": engine("ready"),
        "k3s": engine("absent"),
        "terminals": 0,
    });
    let router = Router::new()
        .route(
            "/v1/health",
            get(move || {
                let h = health.clone();
                async move { Json(h) }
            }),
        )
        .route(
            "/v1/ports",
            get(move || async move {
                let p: Vec<ListeningPort> = ports
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|&port| ListeningPort { port })
                    .collect();
                Json(p)
            }),
        );
    serve(router).await
}

/// What the app saw of a request.
async fn echo(req: Request) -> Json<Value> {
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                Value::String(v.to_str().unwrap_or("?").to_owned()),
            )
        })
        .collect();
    Json(json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "headers": headers,
    }))
}

/// The learner's app: echo, redirects, cookies, a streamed upload counter, a WebSocket echo.
async fn fake_app() -> SocketAddr {
    let router = Router::new()
        .route("/echo", any(echo))
        .route("/", any(echo))
        .route(
            "/redirect",
            get(|| async { (axum::http::StatusCode::FOUND, [("location", "/target")]) }),
        )
        .route(
            "/self-redirect",
            get(|State(port): State<u16>| async move {
                (
                    axum::http::StatusCode::FOUND,
                    [("location", format!("http://127.0.0.1:{port}/abs"))],
                )
            }),
        )
        .route(
            "/cookies",
            get(|| async {
                let mut h = HeaderMap::new();
                h.append("set-cookie", "app=1; Path=/; HttpOnly".parse().unwrap());
                h.append(
                    "set-cookie",
                    "deep=2; Path=/x; Domain=localhost".parse().unwrap(),
                );
                h.append(
                    "set-cookie",
                    "drydock_session=evil; Path=/".parse().unwrap(),
                );
                (h, "cookies")
            }),
        )
        .route(
            "/upload",
            axum::routing::post(|body: Body| async move {
                let mut s = body.into_data_stream();
                let mut n = 0usize;
                while let Some(c) = s.next().await {
                    n += c.unwrap().len();
                }
                n.to_string()
            }),
        )
        .route(
            "/ws",
            get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|mut socket| async move {
                    while let Some(Ok(m)) = socket.recv().await {
                        let reply = match m {
                            AxMessage::Text(t) => {
                                AxMessage::Text(format!("echo:{}", t.as_str()).into())
                            }
                            AxMessage::Binary(b) => AxMessage::Binary(b),
                            AxMessage::Close(_) => break,
                            _ => continue,
                        };
                        if socket.send(reply).await.is_err() {
                            break;
                        }
                    }
                })
            }),
        );
    // The port is only known after binding: bind first, then hand it to the router.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let router = router.with_state(addr.port());
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    addr
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Pure {
    base: String,
    server: SocketAddr,
    agent: SocketAddr,
    agent_ports: Arc<Mutex<Vec<u16>>>,
    app: u16,
    id: String,
    token: String,
    http: reqwest::Client,
}

async fn pure(preview_domain: Option<&str>, agent_answers: bool) -> Pure {
    let agent_ports = Arc::new(Mutex::new(Vec::new()));
    let agent = fake_agent(agent_ports.clone()).await;
    let runtime = Arc::new(FakeRuntime::default());
    if agent_answers {
        *runtime.agent_addr.lock().unwrap() = Some(agent);
    }
    let config = Config::resolve(Settings {
        listen: Some("127.0.0.1:8080".parse().unwrap()),
        preview_domain: preview_domain.map(str::to_owned),
        ..Default::default()
    })
    .unwrap();
    let store = Arc::new(drydock::store::MemoryStore::new());
    let (router, _sessions) = drydock::build(config, store, runtime);
    let server = serve(router).await;
    let base = format!("http://{server}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let v: Value = http
        .post(format!("{base}/api/v1/sessions"))
        .json(&json!({"template": "docker"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    );
    if agent_answers {
        let t0 = Instant::now();
        loop {
            let v: Value = http
                .get(format!("{base}/api/v1/sessions/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v["instances"][0]["state"] == "ready" {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(5), "not ready: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Pure {
        base,
        server,
        agent,
        agent_ports,
        app: fake_app().await.port(),
        id,
        token,
        http,
    }
}

impl Pure {
    fn prefix(&self, port: u16) -> String {
        format!("/p/{}/node1/{port}", self.id)
    }
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    fn cookie(&self) -> String {
        format!("drydock_preview={}.{}", self.id, self.token)
    }
}

async fn text(r: reqwest::Response) -> (u16, HeaderMap, String) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

#[tokio::test]
async fn path_proxy_needs_the_token_and_sets_a_cookie_once() {
    let p = pure(None, true).await;
    let echo = format!("{}/echo?a=1", p.prefix(p.app));

    // No token, a wrong token and an unknown session: the same 404 page.
    let (s1, h1, none) = text(p.http.get(p.url(&echo)).send().await.unwrap()).await;
    let (s2, _, wrong) = text(
        p.http
            .get(p.url(&echo))
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let unknown_path = echo.replace(&p.id, "0123456789abcdef");
    let (s3, _, unknown) = text(
        p.http
            .get(p.url(&unknown_path))
            .bearer_auth(&p.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s1, s2, s3), (404, 404, 404));
    assert_eq!(none, wrong);
    assert_eq!(none, unknown);
    assert!(none.contains("This preview is not available."), "{none}");
    assert_eq!(h1["content-type"], "text/html; charset=utf-8");

    // First visit with ?token=: a path-scoped cookie and the same URL without the token.
    let r = p
        .http
        .get(p.url(&format!("{echo}&token={}&b=2", p.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], format!("{echo}&b=2"));
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert_eq!(
        cookie,
        format!(
            "drydock_preview={}.{}; Path=/p/{}/; HttpOnly; SameSite=Lax",
            p.id, p.token, p.id
        )
    );

    // With the cookie (and the session cookie, and an app cookie, and a Bearer): the app
    // sees none of Drydock's credentials, and the X-Forwarded-* headers.
    let r = p
        .http
        .get(p.url(&format!("{echo}&b=2")))
        .header(
            "cookie",
            format!(
                "{}; theirs=1; drydock_session={}.{}",
                p.cookie(),
                p.id,
                p.token
            ),
        )
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/echo");
    assert_eq!(v["query"], "a=1&b=2");
    let h = &v["headers"];
    assert_eq!(h["cookie"], "theirs=1");
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], p.server.to_string());
    assert_eq!(h["x-forwarded-prefix"], p.prefix(p.app));
    assert_eq!(h["host"], p.server.to_string());

    // A Bearer token is stripped; the app's own Basic credentials pass.
    let v: Value = p
        .http
        .get(p.url(&echo))
        .bearer_auth(&p.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["headers"].get("authorization").is_none(), "{v}");
    let v: Value = p
        .http
        .get(p.url(&echo))
        .header("cookie", p.cookie())
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["headers"]["authorization"], "Basic dXNlcjpwYXNz");

    // A ?token= on a request that is not a page load (POST) is used and stripped.
    let v: Value = p
        .http
        .post(p.url(&format!("{echo}&token={}", p.token)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((&v["method"], &v["query"]), (&json!("POST"), &json!("a=1")));

    // Without the trailing slash: redirected to it (the token follows).
    let r = p
        .http
        .get(p.url(&format!("{}?token=x", p.prefix(p.app))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!("{}/?token=x", p.prefix(p.app))
    );
    let v: Value = p
        .http
        .get(p.url(&format!("{}/", p.prefix(p.app))))
        .bearer_auth(&p.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/");
}

#[tokio::test]
async fn path_proxy_rewrites_redirects_and_cookies_and_streams_bodies() {
    let p = pure(None, true).await;
    let pre = p.prefix(p.app);
    let get = |path: &str| {
        p.http
            .get(p.url(&format!("{pre}{path}")))
            .header("cookie", p.cookie())
    };
    let r = get("/redirect").send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], format!("{pre}/target"));
    let r = get("/self-redirect").send().await.unwrap();
    assert_eq!(r.headers()["location"], format!("{pre}/abs"));
    let r = get("/cookies").send().await.unwrap();
    let cookies: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        cookies,
        vec![
            format!("app=1; Path={pre}/; HttpOnly"),
            format!("deep=2; Path={pre}/x"),
        ]
    );

    // A 16 MiB upload goes through (the app counts what arrives).
    let r = p
        .http
        .post(p.url(&format!("{pre}/upload")))
        .header("cookie", p.cookie())
        .body(vec![7u8; 16 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), (16 << 20).to_string());
}

#[tokio::test]
async fn path_proxy_error_pages() {
    let p = pure(None, true).await;
    let get = |path: String| p.http.get(p.url(&path)).bearer_auth(&p.token).send();

    let closed = closed_port();
    let (s, h, body) = text(get(format!("{}/", p.prefix(closed))).await.unwrap()).await;
    assert_eq!(s, 502);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert!(
        body.contains(&format!(
            "Nothing is listening on port {closed} in node1 yet."
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!("python3 -m http.server {closed}")),
        "{body}"
    );

    // The agent lists the port but the connection is refused: bound to 127.0.0.1 only.
    p.agent_ports.lock().unwrap().push(closed);
    let (s, _, body) = text(get(format!("{}/", p.prefix(closed))).await.unwrap()).await;
    assert_eq!(s, 502);
    assert!(
        body.contains("only accepts connections from inside node1"),
        "{body}"
    );
    assert!(body.contains("--bind 0.0.0.0"), "{body}");

    let (s, _, body) = text(get(format!("{}/", p.prefix(p.agent.port()))).await.unwrap()).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("belongs to Drydock's agent"), "{body}");

    for bad in ["0", "65536", "http", "08080"] {
        let (s, _, body) = text(get(format!("/p/{}/node1/{bad}/", p.id)).await.unwrap()).await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert!(body.contains("is not a port number"), "{body}");
    }
    let (s, _, body) = text(get(format!("/p/{}/node7/{}/", p.id, p.app)).await.unwrap()).await;
    assert_eq!(s, 404);
    assert!(
        body.contains("There is no instance node7 in this session."),
        "{body}"
    );
    let (s, _, body) = text(get(format!("/p/{}/", p.id)).await.unwrap()).await;
    assert_eq!(s, 404);
    assert!(body.contains("This is not a preview address."), "{body}");

    // A server that accepts and closes without answering.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    let (s, _, body) = text(get(format!("{}/", p.prefix(mute))).await.unwrap()).await;
    assert_eq!(s, 502);
    assert!(body.contains("did not answer with HTTP"), "{body}");

    // After the session ends, its previews are the 404 page.
    let r = p
        .http
        .delete(p.url(&format!("/api/v1/sessions/{}", p.id)))
        .bearer_auth(&p.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, _, body) = text(get(format!("{}/echo", p.prefix(p.app))).await.unwrap()).await;
    assert_eq!(s, 404);
    assert!(body.contains("This preview is not available."), "{body}");
}

#[tokio::test]
async fn a_starting_instance_is_a_503_that_reloads() {
    let p = pure(None, false).await;
    let (s, h, body) = text(
        p.http
            .get(p.url(&format!("{}/", p.prefix(8080))))
            .bearer_auth(&p.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 503);
    assert_eq!(h["retry-after"], "2");
    assert!(body.contains("node1 is still starting."), "{body}");
    assert!(body.contains("http-equiv=\"refresh\""), "{body}");
}

async fn ws_echo(mut req: tokio_tungstenite::tungstenite::handshake::client::Request) {
    req.headers_mut().remove("origin");
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("websocket through the proxy: {e}"));
    assert_eq!(resp.status(), 101);
    for i in 0..3 {
        ws.send(Message::Text(format!("hello {i}").into()))
            .await
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => assert_eq!(t.as_str(), format!("echo:hello {i}")),
            other => panic!("no echo: {other:?}"),
        }
    }
    let big = vec![42u8; 1 << 20];
    ws.send(Message::Binary(big.clone().into())).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Binary(b)))) => assert_eq!(b.len(), big.len()),
        other => panic!("no binary echo: {other:?}"),
    }
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn websockets_pass_through_the_path_proxy() {
    let p = pure(None, true).await;
    // ?token= on an upgrade is used, not redirected.
    let url = format!("ws://{}{}/ws?token={}", p.server, p.prefix(p.app), p.token);
    ws_echo(url.into_client_request().unwrap()).await;
    // The cookie works too.
    let mut req = format!("ws://{}{}/ws", p.server, p.prefix(p.app))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("cookie", p.cookie().parse().unwrap());
    ws_echo(req).await;
    // Without a token: refused with the 404 page.
    match tokio_tungstenite::connect_async(format!("ws://{}{}/ws", p.server, p.prefix(p.app))).await
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
        other => panic!(
            "websocket without a token was not refused: {:?}",
            other.map(|_| ())
        ),
    }
}

#[tokio::test]
async fn host_proxy_routes_by_host_with_its_own_cookie_handshake() {
    let p = pure(Some("Preview.Test"), true).await;
    let host = format!("{}-node1-{}.preview.test:{}", p.app, p.id, p.server.port());
    let get = |path: &str| p.http.get(p.url(path)).header("host", &host);

    // No token: the 404 page, from the preview host (not the API's JSON).
    let (s, _, body) = text(get("/echo").send().await.unwrap()).await;
    assert_eq!(s, 404);
    assert!(body.contains("This preview is not available."), "{body}");

    // Handshake: a host-only cookie, and the same path without the token.
    let r = get(&format!("/echo?x=1&token={}", p.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/echo?x=1");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert_eq!(
        cookie,
        format!(
            "drydock_preview={}.{}; Path=/; HttpOnly; SameSite=Lax",
            p.id, p.token
        )
    );
    assert!(!cookie.to_ascii_lowercase().contains("domain"));

    // With the cookie the app lives at `/`: no prefix, the Host as the browser sent it.
    let v: Value = get("/echo?x=1")
        .header("cookie", p.cookie())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((&v["path"], &v["query"]), (&json!("/echo"), &json!("x=1")));
    assert_eq!(v["headers"]["host"], host);
    assert!(v["headers"].get("x-forwarded-prefix").is_none(), "{v}");
    assert!(v["headers"].get("cookie").is_none(), "{v}");
    // Routed before the API: /api/… on a preview host is the app's.
    let v: Value = get("/")
        .header("cookie", p.cookie())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/");
    let r = p
        .http
        .post(p.url("/api/v1/sessions"))
        .header("host", &host)
        .header("cookie", p.cookie())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "the app has no /api: its 404, not the API's"
    );
    // Redirects stay at the root; absolute ones to the app's own address point at the host.
    let r = get("/redirect")
        .header("cookie", p.cookie())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/target");
    let r = get("/self-redirect")
        .header("cookie", p.cookie())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], format!("http://{host}/abs"));

    // WebSocket on the preview host.
    let mut req = format!("ws://{}/ws", p.server)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("host", host.parse().unwrap());
    req.headers_mut()
        .insert("cookie", p.cookie().parse().unwrap());
    ws_echo(req).await;

    // The domain itself and other hosts are the normal router.
    for h in [
        format!("preview.test:{}", p.server.port()),
        p.server.to_string(),
    ] {
        let r = p
            .http
            .get(p.url("/healthz"))
            .header("host", h)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = p
        .http
        .get(p.url("/healthz"))
        .header("host", "ui.preview.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "names of another shape go to the normal router"
    );

    // Path-based page loads move to the preview host (with the token for its handshake).
    let r = p
        .http
        .get(p.url(&format!("{}/echo?y=2", p.prefix(p.app))))
        .header("cookie", format!("drydock_session={}.{}", p.id, p.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!(
            "http://{}-node1-{}.preview.test:{}/echo?y=2&token={}",
            p.app,
            p.id,
            p.server.port(),
            p.token
        )
    );
}

// ---------------------------------------------------------------------------------------
// Against the real dockerd and instance image
// ---------------------------------------------------------------------------------------

/// A minimal RFC 6455 echo server (python3 stdlib only): text and binary frames up to 64 KiB.
const WS_ECHO_PY: &str = r#"import base64, hashlib, socket, struct, sys, threading
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b
def serve(c):
    try:
        req = b""
        while b"\r\n\r\n" not in req:
            d = c.recv(4096)
            if not d:
                return
            req += d
        key = [l.split(b":", 1)[1].strip() for l in req.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:")][0]
        acc = base64.b64encode(hashlib.sha1(key + GUID).digest())
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
        while True:
            h = recv_exact(c, 2)
            op, n = h[0] & 15, h[1] & 127
            if n == 126:
                n = struct.unpack(">H", recv_exact(c, 2))[0]
            elif n == 127:
                n = struct.unpack(">Q", recv_exact(c, 8))[0]
            mask = recv_exact(c, 4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(recv_exact(c, n)))
            if op == 8:
                c.sendall(b"\x88\x00")
                return
            if op in (1, 2):
                if op == 1:
                    data = b"echo:" + data
                head = bytes([128 | op])
                head += bytes([len(data)]) if len(data) < 126 else bytes([126]) + struct.pack(">H", len(data))
                c.sendall(head + data)
    except (EOFError, OSError):
        pass
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"#;

/// The nested container's server: perl is in docker/whalesay (python3 is not).
const NESTED_PERL: &str = r#"$s=IO::Socket::INET->new(LocalPort=>8000,Listen=>5,ReuseAddr=>1) or die; while($c=$s->accept){ while(<$c>){ last if /^\r?\n$/ } print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from a nested container\n"; close $c }"#;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn ports_of(server: &Server, id: &str, token: &str) -> Vec<u64> {
    let v: Value = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/sessions/{id}/instances/node1/ports")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array()
        .unwrap_or_else(|| panic!("ports: {v}"))
        .iter()
        .filter_map(|p| p["port"].as_u64())
        .collect()
}

/// Polls the ports endpoint until `port` is (or is not) listed; returns how long it took.
async fn wait_port(server: &Server, id: &str, token: &str, port: u64, open: bool) -> Duration {
    let t0 = Instant::now();
    loop {
        if ports_of(server, id, token).await.contains(&port) == open {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "port {port} {} within 30 s",
            if open { "not listed" } else { "still listed" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn preview_of_servers_in_a_real_instance() {
    if !e2e("preview_of_servers_in_a_real_instance") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let t_all = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]).await;
    let (id, token) = server.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    server.wait_ready(&id, &token, SHORT).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let pre = |port: u16| format!("/p/{id}/node1/{port}");

    // A web server in the instance, started from the terminal like a learner would.
    let mut t = server.terminal(&id, &token).await;
    use base64::Engine;
    let ws_b64 = base64::engine::general_purpose::STANDARD.encode(WS_ECHO_PY);
    t.type_line(&format!(
        "mkdir -p /root/www/sub && cd /root/www && echo hello-from-node1 > index.html && \
         head -c 200000000 /dev/zero > big.bin && echo {ws_b64} | base64 -d > /root/ws.py && \
         echo SETUP-$((40+2))"
    ))
    .await;
    t.expect("SETUP-42", Duration::from_secs(60)).await;
    t.type_line("python3 -m http.server 8000 >/tmp/http.log 2>&1 &")
        .await;
    let listed = wait_port(&server, &id, &token, 8000, true).await;
    eprintln!("port 8000 listed {listed:?} after the server was started");
    assert!(listed < Duration::from_secs(5), "{listed:?}");

    // Through the path proxy: the token is needed.
    let r = http
        .get(server.url(&format!("{}/", pre(8000))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("This preview is not available."));
    let t0 = Instant::now();
    let r = http
        .get(server.url(&format!("{}/?token={token}", pre(8000))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = http
        .get(server.url(&format!("{}/", pre(8000))))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello-from-node1\n");
    eprintln!("first proxied page in {:?}", t0.elapsed());

    // http.server redirects a directory without its slash with an absolute path.
    let r = http
        .get(server.url(&format!("{}/sub", pre(8000))))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], format!("{}/sub/", pre(8000)));

    // Nothing on 8099; the agent's own port is refused.
    let r = http
        .get(server.url(&format!("{}/", pre(8099))))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Nothing is listening on port 8099 in node1 yet."),
        "{body}"
    );
    let r = http
        .get(server.url(&format!("{}/", pre(4200))))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A server bound to 127.0.0.1 only is explained.
    t.type_line("python3 -m http.server --bind 127.0.0.1 8002 >/dev/null 2>&1 &")
        .await;
    wait_port(&server, &id, &token, 8002, true).await;
    let r = http
        .get(server.url(&format!("{}/", pre(8002))))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("only accepts connections from inside node1"),
        "{body}"
    );

    // A WebSocket echo server in the instance.
    t.type_line("python3 /root/ws.py 8765 >/tmp/ws.log 2>&1 & WS=$!")
        .await;
    wait_port(&server, &id, &token, 8765, true).await;
    let url = format!("ws://127.0.0.1:{}{}/?token={token}", server.port, pre(8765));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("websocket: {e}\n{}", server.log_text()));
    for i in 0..3 {
        ws.send(Message::Text(format!("hi {i}").into()))
            .await
            .unwrap();
        match tokio::time::timeout(SHORT, ws.next()).await {
            Ok(Some(Ok(Message::Text(m)))) => assert_eq!(m.as_str(), format!("echo:hi {i}")),
            other => panic!("no echo: {other:?}"),
        }
    }
    ws.close(None).await.unwrap();
    drop(ws);

    // The ports list follows a port closing too.
    t.type_line("kill $WS && echo KILLED-$((1+1))").await;
    t.expect("KILLED-2", SHORT).await;
    let gone = wait_port(&server, &id, &token, 8765, false).await;
    eprintln!("port 8765 gone from the list {gone:?} after the server was killed");
    assert!(gone < Duration::from_secs(5), "{gone:?}");

    // A nested container publishing a port (-p) in the instance.
    let t0 = Instant::now();
    t.type_line(&format!(
        "docker run -d -p 8081:8000 --entrypoint perl docker/whalesay -MIO::Socket::INET -e '{NESTED_PERL}' >/tmp/nested.id && echo NESTED-$((2+3))"
    ))
    .await;
    t.expect("NESTED-5", Duration::from_secs(120)).await;
    wait_port(&server, &id, &token, 8081, true).await;
    let mut body = String::new();
    for _ in 0..50 {
        let r = http
            .get(server.url(&format!("{}/", pre(8081))))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        body = r.text().await.unwrap();
        if body.contains("hello from a nested container") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(body.contains("hello from a nested container"), "{body}");
    eprintln!(
        "nested container served through the proxy {:?} after docker run",
        t0.elapsed()
    );

    // 200 MB through the proxy while the server's memory stays flat. Read slowly at first, so
    // a proxy that buffered would hold most of the file.
    let pid = server.child.id();
    let rss0 = rss_kib(pid);
    let t0 = Instant::now();
    let mut r = http
        .get(server.url(&format!("{}/big.bin", pre(8000))))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut total = 0u64;
    let mut peak = rss0;
    let mut last_sample = Instant::now();
    // (when, bytes) at the end of the slow start.
    let mut fast: Option<(Instant, u64)> = None;
    while let Some(chunk) = r.chunk().await.unwrap() {
        total += chunk.len() as u64;
        if fast.is_none() {
            if total < (1 << 20) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            } else {
                // Two seconds in all before reading at full speed.
                if let Some(rest) = Duration::from_secs(2).checked_sub(t0.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                peak = peak.max(rss_kib(pid));
                fast = Some((Instant::now(), total));
            }
        }
        if last_sample.elapsed() > Duration::from_millis(50) {
            peak = peak.max(rss_kib(pid));
            last_sample = Instant::now();
        }
    }
    peak = peak.max(rss_kib(pid));
    assert_eq!(total, 200_000_000);
    let (fast_at, fast_from) = fast.unwrap();
    let rate = (total - fast_from) as f64 / 1e6 / fast_at.elapsed().as_secs_f64();
    let grew_mib = peak.saturating_sub(rss0) / 1024;
    eprintln!(
        "200 MB through the proxy in {:?} (2 s slow start, then {rate:.0} MB/s); server RSS {} MiB → peak {} MiB (+{grew_mib} MiB)",
        t0.elapsed(),
        rss0 / 1024,
        peak / 1024
    );
    assert!(grew_mib < 40, "server RSS grew by {grew_mib} MiB");
    drop(t);

    // Host-based previews: the same session, adopted by a server with a preview domain.
    server.kill9();
    let server = Server::start(dir.path(), &[("DRYDOCK_PREVIEW_DOMAIN", "preview.test")]).await;
    let host = format!("8000-node1-{id}.preview.test:{}", server.port);
    let r = http
        .get(server.url("/?token=nope"))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(server.url(&format!("/?token={token}")))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("Path=/;") && !set.contains("Domain"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let r = http
        .get(server.url("/"))
        .header("host", &host)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello-from-node1\n");
    let r = http
        .get(server.url("/sub"))
        .header("host", &host)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/sub/");
    // The UI's path links lead there.
    let r = http
        .get(server.url(&format!("{}/", pre(8000))))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!("http://{host}/?token={token}")
    );

    server.delete(&id, &token).await;
    assert_eq!(labelled(&format!("drydock.session={id}")), (0, 0, 0));
    eprintln!("whole preview e2e took {:?}", t_all.elapsed());
}
