//! Abuse controls and robustness of the HTTP API, on the fake runtime (no Docker): the invite
//! token, the per-IP session limit, idle culling (paused time, like the expiry test), the
//! full-disk refusal, and bounded, seeded property tests ("fuzzing") of the terminal frame
//! decoder and of the JSON API with garbage input: no panic, no 5xx, no other session's data.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::FakeRuntime;
use drydock::config::{Config, Settings};
use drydock::sessions::Sessions;
use drydock::store::{MemoryStore, Store};
use drydock_protocol::frame::{ClientFrame, ServerFrame, MAX_FRAME_LEN};
use http_body_util::BodyExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Cases per property test.
const CASES: usize = 256;

struct App {
    router: Router,
    sessions: Arc<Sessions>,
    runtime: Arc<FakeRuntime>,
    store: Arc<MemoryStore>,
}

fn app(f: impl FnOnce(&mut Settings)) -> App {
    let mut s = Settings {
        listen: Some("127.0.0.1:8080".parse().unwrap()),
        create_per_minute: Some(100_000),
        ..Default::default()
    };
    f(&mut s);
    let runtime = Arc::new(FakeRuntime::default());
    let store = Arc::new(MemoryStore::new());
    let (router, sessions) =
        drydock::build(Config::resolve(s).unwrap(), store.clone(), runtime.clone());
    App {
        router,
        sessions,
        runtime,
        store,
    }
}

struct Resp {
    status: StatusCode,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

async fn send(router: &Router, req: Request<Body>) -> Resp {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Resp { status, body }
}

fn create_req(from: Option<IpAddr>, body: &str, invite: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/api/v1/sessions").header("content-type", "application/json");
    if let Some(i) = invite {
        b = b.header("x-drydock-invite", i);
    }
    let mut req = b.body(Body::from(body.to_owned())).unwrap();
    if let Some(ip) = from {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 40000)));
    }
    req
}

async fn create_ok(app: &App, from: Option<IpAddr>) -> (String, String) {
    let r = send(
        &app.router,
        create_req(from, r#"{"template":"docker"}"#, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.error());
    let v = r.json();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

fn authed(method: &str, uri: &str, token: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn invite_token_is_required_when_configured() {
    let app = app(|s| s.invite_token = Some("open-sesame".into()));
    for (body, invite) in [
        (r#"{"template":"docker"}"#, None),
        (r#"{"template":"docker","invite":""}"#, None),
    ] {
        let r = send(&app.router, create_req(None, body, invite)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.error().contains("X-Drydock-Invite"), "{}", r.error());
    }
    let r = send(
        &app.router,
        create_req(None, r#"{"template":"docker"}"#, Some("guess")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.error().contains("not valid"), "{}", r.error());
    assert!(app.runtime.is_empty(), "nothing was created");

    let r = send(
        &app.router,
        create_req(None, r#"{"template":"docker"}"#, Some("open-sesame")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.error());
    let r = send(
        &app.router,
        create_req(
            None,
            r#"{"template":"docker","invite":"open-sesame"}"#,
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.error());
    // Without a configured token nobody needs one.
    let open = self::app(|_| {});
    create_ok(&open, None).await;
}

#[tokio::test]
async fn per_ip_limit_counts_live_sessions() {
    let app = app(|s| s.max_sessions_per_ip = Some(2));
    let a: IpAddr = "203.0.113.10".parse().unwrap();
    let b: IpAddr = "203.0.113.11".parse().unwrap();
    let (id1, t1) = create_ok(&app, Some(a)).await;
    create_ok(&app, Some(a)).await;
    let r = send(
        &app.router,
        create_req(Some(a), r#"{"template":"docker"}"#, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.error()
            .contains("203.0.113.10 already has 2 live sessions"),
        "{}",
        r.error()
    );
    // Another address, and loopback (the operator, a proxy without X-Forwarded-For), are
    // not affected.
    create_ok(&app, Some(b)).await;
    for _ in 0..3 {
        create_ok(&app, Some("127.0.0.1".parse().unwrap())).await;
    }
    // Ending a session frees its slot.
    let r = send(
        &app.router,
        authed("DELETE", &format!("/api/v1/sessions/{id1}"), &t1),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    create_ok(&app, Some(a)).await;
    // A refused create (bad input) does not hold a slot.
    let r = send(
        &app.router,
        create_req(Some(b), r#"{"template":"podman"}"#, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    create_ok(&app, Some(b)).await;
}

#[test]
fn behind_a_local_reverse_proxy_the_forwarded_address_counts() {
    use axum::http::HeaderMap;
    use drydock::api::client_ip;
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let remote: IpAddr = "198.51.100.9".parse().unwrap();
    let mut h = HeaderMap::new();
    assert_eq!(client_ip(lo, &h), lo);
    h.insert("x-forwarded-for", "10.9.9.9, 203.0.113.5".parse().unwrap());
    // The proxy appends the address it saw: the last entry (a client can forge the others).
    assert_eq!(client_ip(lo, &h), "203.0.113.5".parse::<IpAddr>().unwrap());
    // Only a local proxy is believed.
    assert_eq!(client_ip(remote, &h), remote);
    h.insert("x-forwarded-for", "garbage".parse().unwrap());
    assert_eq!(client_ip(lo, &h), lo);
}

#[tokio::test]
async fn nearly_full_host_disk_refuses_new_sessions_with_507() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(|s| {
        s.data_dir = Some(dir.path().to_owned());
        s.min_free_disk_mb = Some(u64::MAX / (4 << 20));
    });
    let r = send(
        &app.router,
        create_req(None, r#"{"template":"docker"}"#, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE);
    assert!(r.error().contains("nearly full"), "{}", r.error());
    assert!(r.error().contains("running sessions are not affected"));
    assert!(app.runtime.is_empty());
}

#[tokio::test(start_paused = true)]
async fn idle_sessions_are_warned_then_ended() {
    let app = app(|s| {
        s.idle_minutes = Some(10);
        s.idle_grace_minutes = Some(2);
    });
    tokio::spawn(drydock::sessions::idle::run(app.sessions.clone()));
    let (id, token) = create_ok(&app, None).await;
    let live = app.sessions.authorize(&id, &token).unwrap();
    let mut ended = app.sessions.instance_ended(&live, "node1").unwrap();

    // Activity at minute 9 moves the deadline: still alive at minute 20 (9 + 10 + 2 = 21).
    tokio::time::sleep(Duration::from_secs(9 * 60)).await;
    live.activity.input(app.sessions.clock().now_ms());
    tokio::time::sleep(Duration::from_secs(11 * 60)).await;
    assert!(ended.borrow().is_none(), "ended while within idle + grace");
    assert!(!app.runtime.is_empty());
    // Output alone (a long build printing) keeps it alive too.
    live.activity.output(app.sessions.clock().now_ms());
    tokio::time::sleep(Duration::from_secs(11 * 60)).await;
    assert!(ended.borrow().is_none());

    // Nothing for idle + grace: ended, everything removed.
    tokio::time::sleep(Duration::from_secs(2 * 60)).await;
    tokio::time::timeout(Duration::from_secs(60), ended.changed())
        .await
        .ok();
    assert_eq!(
        ended.borrow().as_deref(),
        Some("session ended: idle for too long")
    );
    assert!(app.runtime.is_empty(), "{:?}", app.runtime.snapshot());
    let r = send(
        &app.router,
        authed("GET", &format!("/api/v1/sessions/{id}"), &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.store.get_session(&id).await.unwrap().unwrap().state,
        "expired"
    );
}

/// An agent that is ready and records notices.
async fn notice_agent() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = seen.clone();
    let app = Router::new()
        .route(
            "/v1/health",
            get(|| async {
                Json(json!({
                    "version": "fake", "ready": true,
                    "dockerd": {"state": "ready", "restarts": 0, "message": null},
                    "k3s": {"state": "absent", "restarts": 0, "message": null},
                    "terminals": 1
                }))
            }),
        )
        .route(
            "/v1/notice",
            post(
                move |Json(n): Json<drydock_protocol::agent::Notice>| async move {
                    s2.lock().unwrap().push(n.text);
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test]
async fn idle_warning_is_written_into_the_terminals_once() {
    let (agent, seen) = notice_agent().await;
    let app = app(|s| {
        s.idle_seconds = Some(1);
        s.idle_grace_seconds = Some(3);
    });
    *app.runtime.agent_addr.lock().unwrap() = Some(agent);
    tokio::spawn(drydock::sessions::idle::run(app.sessions.clone()));
    let (id, token) = create_ok(&app, None).await;
    let live = app.sessions.authorize(&id, &token).unwrap();
    let mut ended = app.sessions.instance_ended(&live, "node1").unwrap();
    // Ready first (the warning goes to ready instances only).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.sessions.agent_target(&live, "node1").is_err() {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    live.activity.input(app.sessions.clock().now_ms());
    tokio::time::timeout(Duration::from_secs(15), ended.changed())
        .await
        .expect("ended within idle + grace + a tick")
        .unwrap();
    let notices = seen.lock().unwrap().clone();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("idle"), "{notices:?}");
    assert!(notices[0].contains("ends in 1 minute"), "{notices:?}");
}

/// Random bytes, sometimes shaped like a frame.
fn random_frame(rng: &mut StdRng) -> Vec<u8> {
    let len = match rng.gen_range(0..10) {
        0 => 0,
        1..=6 => rng.gen_range(1..16),
        7 | 8 => rng.gen_range(16..4096),
        _ => MAX_FRAME_LEN + rng.gen_range(0..3),
    };
    let mut v: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    if !v.is_empty() && rng.gen_bool(0.7) {
        v[0] = rng.gen_range(0..5);
    }
    v
}

#[test]
fn frame_decoders_never_panic_and_round_trip() {
    let mut rng = StdRng::seed_from_u64(0xd0c4);
    for _ in 0..CASES * 4 {
        let b = random_frame(&mut rng);
        if let Ok(f) = ClientFrame::decode(&b) {
            assert!(b.len() <= MAX_FRAME_LEN);
            assert_eq!(ClientFrame::decode(&f.encode()).unwrap(), f, "{b:?}");
        }
        if let Ok(f) = ServerFrame::decode(&b) {
            assert_eq!(ServerFrame::decode(&f.encode()).unwrap(), f);
        }
    }
}

fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    match rng.gen_range(0..if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => {
            json!(["docker", "kubernetes", "", "../x", "en", "zh", "ZZ", "é"][rng.gen_range(0..8)])
        }
        4 => json!((0..rng.gen_range(0..40))
            .map(|_| rng.gen::<char>())
            .collect::<String>()),
        5 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "template", "lesson", "lang", "invite", "name", "seats", "x", "",
            ];
            Value::Object(
                (0..rng.gen_range(0..5))
                    .map(|_| {
                        (
                            keys[rng.gen_range(0..keys.len())].to_owned(),
                            random_json(rng, depth + 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

#[tokio::test]
async fn garbage_requests_never_5xx_and_never_show_another_session() {
    let app = app(|s| s.max_sessions = Some(CASES * 2));
    // The victim: its id and token must never appear in an answer to anyone else.
    let (victim, victim_token) = create_ok(&app, None).await;
    let (mine, my_token) = create_ok(&app, None).await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let paths = [
        "/api/v1/sessions".to_owned(),
        format!("/api/v1/sessions/{mine}"),
        format!("/api/v1/sessions/{mine}/extend"),
        format!("/api/v1/sessions/{mine}/instances"),
        format!("/api/v1/sessions/{mine}/instances/node1"),
        format!("/api/v1/sessions/{mine}/instances/node1/ports"),
        format!("/api/v1/sessions/{victim}"),
        format!("/api/v1/sessions/{victim}/instances"),
        "/api/v1/sessions/../../etc/passwd".to_owned(),
        "/api/v1/sessions/%00".to_owned(),
        "/api/v1/lessons".to_owned(),
        "/healthz".to_owned(),
        "/nope".to_owned(),
    ];
    let methods = ["GET", "POST", "DELETE", "PUT", "PATCH"];
    for case in 0..CASES {
        let path = &paths[rng.gen_range(0..paths.len())];
        let method = methods[rng.gen_range(0..methods.len())];
        let body: Vec<u8> = match rng.gen_range(0..4) {
            0 => Vec::new(),
            1 => (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect(),
            _ => serde_json::to_vec(&random_json(&mut rng, 0)).unwrap(),
        };
        let mut b = Request::builder()
            .method(method)
            .uri(path.as_str())
            .header("content-type", "application/json");
        // My token, a wrong one, or none: never the victim's.
        match rng.gen_range(0..3) {
            0 => b = b.header("authorization", format!("Bearer {my_token}")),
            1 => b = b.header("authorization", "Bearer garbage"),
            _ => {}
        }
        let r = send(&app.router, b.body(Body::from(body.clone())).unwrap()).await;
        let text = String::from_utf8_lossy(&r.body);
        assert!(
            !r.status.is_server_error(),
            "case {case}: {method} {path} {:?} → {} {text}",
            String::from_utf8_lossy(&body),
            r.status
        );
        let leaked = text.contains(&victim_token)
            || (text.contains(&victim) && r.status.is_success() && !path.contains(&victim));
        assert!(
            !leaked,
            "case {case}: {method} {path} showed the victim's data: {text}"
        );
        if path.contains(&victim) {
            assert!(
                !r.status.is_success(),
                "case {case}: {method} {path} acted on the victim's session: {text}"
            );
        }
    }
    // The victim is untouched.
    let r = send(
        &app.router,
        authed("GET", &format!("/api/v1/sessions/{victim}"), &victim_token),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}
