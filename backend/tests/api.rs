//! Router tests that need no Docker: the HTTP API on a fake runtime, driven with
//! `tower::ServiceExt::oneshot`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::FakeRuntime;
use drydock::config::{Config, Settings};
use drydock::sessions::Sessions;
use drydock::store::{MemoryStore, SqliteStore, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn config(f: impl FnOnce(&mut Settings)) -> Config {
    let mut s = Settings {
        listen: Some("127.0.0.1:8080".parse().unwrap()),
        ..Default::default()
    };
    f(&mut s);
    Config::resolve(s).unwrap()
}

struct App {
    router: Router,
    sessions: Arc<Sessions>,
    runtime: Arc<FakeRuntime>,
}

async fn app_with(store: Arc<dyn Store>, f: impl FnOnce(&mut Settings)) -> App {
    let runtime = Arc::new(FakeRuntime::default());
    let (router, sessions) = drydock::build(config(f), store, runtime.clone());
    App {
        router,
        sessions,
        runtime,
    }
}

async fn app(f: impl FnOnce(&mut Settings)) -> App {
    app_with(Arc::new(SqliteStore::in_memory().await.unwrap()), f).await
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

async fn send(router: &Router, req: Request<Body>) -> Resp {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

fn post(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn authed(method: &str, uri: &str, token: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

async fn create(app: &App) -> (String, String, Resp) {
    let r = send(
        &app.router,
        post(
            "/api/v1/sessions",
            r#"{"template":"docker","lesson":"whalesay","lang":"zh"}"#,
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let v = r.json();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
        r,
    )
}

#[tokio::test]
async fn create_answers_the_contract_shape_and_a_cookie() {
    let app = app(|_| {}).await;
    let (id, token, r) = create(&app).await;
    let v = r.json();
    assert_eq!(v["template"], "docker");
    assert_eq!(v["lesson"], "whalesay");
    assert_eq!(
        v["instances"],
        json!([{"name": "node1", "state": "starting"}])
    );
    assert!(chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).is_ok());
    assert_eq!(id.len(), 16);
    assert!(token.len() >= 43, "32 random bytes: {token}");
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert_eq!(
        cookie,
        format!("drydock_session={id}.{token}; HttpOnly; SameSite=Lax; Path=/")
    );
    // The cookie and ?token= authenticate too.
    let by_cookie = Request::get(format!("/api/v1/sessions/{id}"))
        .header("cookie", format!("drydock_session={id}.{token}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app.router, by_cookie).await.status, StatusCode::OK);
    let by_query = Request::get(format!("/api/v1/sessions/{id}?token={token}"))
        .body(Body::empty())
        .unwrap();
    let got = send(&app.router, by_query).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(
        got.json().get("token").is_none(),
        "GET never shows the token"
    );
    assert_eq!(app.runtime.snapshot().instances.len(), 1);
}

#[tokio::test]
async fn bad_json_is_a_400_with_serde_message() {
    let app = app(|_| {}).await;
    let r = send(&app.router, post("/api/v1/sessions", r#"{"template":"#)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.error()
            .starts_with("invalid JSON in request body: EOF while parsing"),
        "{}",
        r.error()
    );
    let r = send(&app.router, post("/api/v1/sessions", r#"{"lesson":"x"}"#)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.error().contains("missing field `template`"),
        "{}",
        r.error()
    );
    let r = send(&app.router, post("/api/v1/sessions", "")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("empty"), "{}", r.error());
    assert!(app.runtime.is_empty(), "nothing was created");
}

#[tokio::test]
async fn templates_and_fields_are_validated() {
    let app = app(|_| {}).await;
    // kubernetes: tests/kubernetes_api.rs (available only where its k3s image exists).
    let r = send(
        &app.router,
        post("/api/v1/sessions", r#"{"template":"podman"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.error().contains("unknown template \"podman\""),
        "{}",
        r.error()
    );
    let r = send(
        &app.router,
        post("/api/v1/sessions", r#"{"template":"docker","lang":"fr"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("invalid lang \"fr\""), "{}", r.error());
    let r = send(
        &app.router,
        post(
            "/api/v1/sessions",
            r#"{"template":"docker","lesson":"../etc"}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("invalid lesson"), "{}", r.error());
    assert!(app.runtime.is_empty());
}

#[tokio::test]
async fn unknown_session_and_wrong_token_look_the_same() {
    let app = app(|_| {}).await;
    let (id, _token, _) = create(&app).await;
    let wrong = send(
        &app.router,
        authed("GET", &format!("/api/v1/sessions/{id}"), "nope"),
    )
    .await;
    let unknown = send(
        &app.router,
        authed("GET", "/api/v1/sessions/0123456789abcdef", "nope"),
    )
    .await;
    let malformed = send(&app.router, authed("GET", "/api/v1/sessions/zz", "nope")).await;
    let none = send(
        &app.router,
        Request::delete(format!("/api/v1/sessions/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    for r in [&wrong, &unknown, &malformed, &none] {
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.body, wrong.body);
    }
    // Nothing changed: the session still runs.
    assert_eq!(app.runtime.snapshot().instances.len(), 1);
}

#[tokio::test]
async fn foreign_origin_on_the_terminal_websocket_is_403() {
    let app = app(|_| {}).await;
    let (id, token, _) = create(&app).await;
    let ws = |origin: Option<&str>| {
        let mut b = Request::get(format!(
            "/api/v1/sessions/{id}/instances/node1/terminals/main?token={token}"
        ))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        b.body(Body::empty()).unwrap()
    };
    let r = send(&app.router, ws(Some("https://evil.example"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.error().contains("evil.example"), "{}", r.error());
    // The right origin (and no origin) get past the check; the instance is not ready here.
    for origin in [
        Some("http://127.0.0.1:8080"),
        Some("http://localhost:8080"),
        None,
    ] {
        let r = send(&app.router, ws(origin)).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{origin:?}: {}", r.error());
        assert!(r.error().contains("starting"), "{}", r.error());
    }
    let bad = Request::get(format!(
        "/api/v1/sessions/{id}/instances/node1/terminals/Bad..?token={token}"
    ))
    .body(Body::empty())
    .unwrap();
    assert_eq!(send(&app.router, bad).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = app(|_| {}).await;
    create(&app).await;
    let r = send(
        &app.router,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(r.body).unwrap();
    for want in [
        "# TYPE drydock_sessions gauge",
        "drydock_sessions{state=\"starting\"} 1",
        "# TYPE drydock_instance_start_seconds histogram",
        "drydock_instance_start_seconds_bucket{le=\"+Inf\"} 0",
        "# TYPE drydock_terminals_open gauge",
        "drydock_relay_bytes_total{direction=\"to_browser\"} 0",
        "drydock_sessions_created_total 1",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(name.starts_with("drydock_"), "{line}");
    }
    let h = send(
        &app.router,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(h.status, StatusCode::OK);
}

#[tokio::test]
async fn global_cap_is_503_and_rate_limit_is_429() {
    let app = app(|s| s.max_sessions = Some(1)).await;
    create(&app).await;
    let r = send(
        &app.router,
        post("/api/v1/sessions", r#"{"template":"docker"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.error(),
        "server is full: 1 of 1 sessions in use, try again later"
    );

    let limited = self::app(|s| s.create_per_minute = Some(2)).await;
    create(&limited).await;
    create(&limited).await;
    let r = send(
        &limited.router,
        post("/api/v1/sessions", r#"{"template":"docker"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.error().contains("at most 2 per minute"), "{}", r.error());
    assert_eq!(limited.runtime.snapshot().networks.len(), 2);
}

#[tokio::test]
async fn instances_are_added_up_to_the_cap_and_removed() {
    let app = app(|s| s.max_instances_per_session = Some(3)).await;
    let (id, token, _) = create(&app).await;
    let base = format!("/api/v1/sessions/{id}");
    for n in 2..=3 {
        let r = send(
            &app.router,
            authed("POST", &format!("{base}/instances"), &token),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(
            r.json(),
            json!({"name": format!("node{n}"), "state": "starting"})
        );
    }
    let r = send(
        &app.router,
        authed("POST", &format!("{base}/instances"), &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error().contains("3 of 3 instances"), "{}", r.error());

    let r = send(
        &app.router,
        authed("DELETE", &format!("{base}/instances/node2"), &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(
        &app.router,
        authed("DELETE", &format!("{base}/instances/node2"), &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.error().contains("node2"), "{}", r.error());
    let r = send(
        &app.router,
        authed("DELETE", &format!("{base}/instances/x"), &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The freed name is reused.
    let r = send(
        &app.router,
        authed("POST", &format!("{base}/instances"), &token),
    )
    .await;
    assert_eq!(r.json()["name"], "node2");
    let names: Vec<String> = app
        .runtime
        .snapshot()
        .instances
        .keys()
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(names, ["node1", "node2", "node3"]);
    // Every instance got its own agent secret.
    let secrets: std::collections::BTreeSet<String> = app
        .runtime
        .snapshot()
        .instances
        .values()
        .map(|s| s.env["DRYDOCK_AGENT_SECRET"].clone())
        .collect();
    assert_eq!(secrets.len(), 3);
}

#[tokio::test]
async fn delete_removes_everything_before_answering() {
    let app = app(|_| {}).await;
    let (id, token, _) = create(&app).await;
    let r = send(
        &app.router,
        authed("DELETE", &format!("/api/v1/sessions/{id}"), &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(app.runtime.is_empty(), "{:?}", app.runtime.snapshot());
    let r = send(
        &app.router,
        authed("GET", &format!("/api/v1/sessions/{id}"), &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.sessions.live_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn sessions_expire_on_time_and_extend_is_bounded() {
    let store = Arc::new(MemoryStore::new());
    let app = app_with(store.clone(), |s| {
        s.session_seconds = Some(40);
        s.max_session_minutes = Some(1);
    })
    .await;
    tokio::spawn(app.sessions.clone().run_expiry());
    let (id, token, r) = create(&app).await;
    let created =
        chrono::DateTime::parse_from_rfc3339(r.json()["expires_at"].as_str().unwrap()).unwrap();
    let live = app.sessions.authorize(&id, &token).unwrap();
    let mut ended = app.sessions.instance_ended(&live, "node1").unwrap();

    tokio::time::sleep(Duration::from_secs(30)).await;
    let r = send(
        &app.router,
        authed("POST", &format!("/api/v1/sessions/{id}/extend"), &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let extended =
        chrono::DateTime::parse_from_rfc3339(r.json()["expires_at"].as_str().unwrap()).unwrap();
    // min(now + 40 s, created + 60 s) = created + 60 s = first expiry + 20 s.
    assert_eq!((extended - created).num_seconds(), 20);

    tokio::time::sleep(Duration::from_secs(29)).await;
    assert!(!app.runtime.is_empty(), "still alive before expires_at");
    assert!(ended.borrow().is_none());

    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::time::timeout(Duration::from_secs(1), ended.changed())
        .await
        .ok();
    assert_eq!(ended.borrow().as_deref(), Some("session expired"));
    assert!(app.runtime.is_empty(), "{:?}", app.runtime.snapshot());
    let r = send(
        &app.router,
        authed("GET", &format!("/api/v1/sessions/{id}"), &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let row = store.get_session(&id).await.unwrap().unwrap();
    assert_eq!(row.state, "expired");
    let kinds: Vec<String> = store
        .events(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&"extended".to_owned()) && kinds.contains(&"expired".to_owned()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn reconcile_adopts_live_sessions_and_removes_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("drydock.db");
    let runtime = Arc::new(FakeRuntime::default());
    let (id, token) = {
        let store = Arc::new(SqliteStore::open(&db).await.unwrap());
        let (router, _sessions) = drydock::build(config(|_| {}), store, runtime.clone());
        let app = App {
            router,
            sessions: _sessions,
            runtime: runtime.clone(),
        };
        let (id, token, _) = create(&app).await;
        (id, token)
    };
    // An orphan the store does not know about.
    runtime.create_network("feedfacefeedface").await.unwrap();
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    let (router, sessions) = drydock::build(config(|_| {}), store, runtime.clone());
    let report = sessions.reconcile().await.unwrap();
    assert_eq!(report.adopted, vec![id.clone()]);
    assert_eq!(report.orphans_removed, vec!["feedfacefeedface".to_owned()]);
    let r = send(
        &router,
        authed("GET", &format!("/api/v1/sessions/{id}"), &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        runtime.snapshot().networks.into_iter().collect::<Vec<_>>(),
        vec![id]
    );
}

use drydock::runtime::Runtime as _;
