//! Workshops: router tests on the fake runtime with a fake agent (instructor sign-in,
//! validation, seats, join window, capacity refusals, rejoin, the live feed, checks reaching
//! the dashboard, CSV, warm pools, the read-only terminal's access rules), then the
//! acceptance test against the real dockerd and instance image (`DRYDOCK_E2E=1`, like
//! tests/e2e.rs).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::FakeRuntime;
use drydock::config::{Config, Settings};
use drydock::sessions::Sessions;
use drydock::store::{SqliteStore, Store, WorkshopRow};
use drydock_protocol::agent::{ExecRequest, ExecResult};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "s3cret-admin-token";

/// A fake agent: healthy at once; every check script "passes" unless it mentions `fail`.
async fn fake_agent() -> SocketAddr {
    let app = Router::new()
        .route(
            "/v1/health",
            get(|| async {
                Json(json!({
                    "version": "fake", "ready": true,
                    "dockerd": {"state": "ready", "restarts": 0, "message": null},
                    "k3s": {"state": "absent", "restarts": 0, "message": null},
                    "terminals": 0
                }))
            }),
        )
        .route(
            "/v1/exec",
            post(|Json(req): Json<ExecRequest>| async move {
                let pass = !req.script.contains("fail");
                Json(ExecResult {
                    exit_code: Some(if pass { 0 } else { 1 }),
                    signal: None,
                    output: if pass { "well done" } else { "not yet" }.into(),
                    truncated: false,
                    timed_out: false,
                    duration_ms: 1,
                })
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct App {
    router: Router,
    sessions: Arc<Sessions>,
    runtime: Arc<FakeRuntime>,
    store: Arc<dyn Store>,
}

async fn app_on(store: Arc<dyn Store>, f: impl FnOnce(&mut Settings)) -> App {
    let runtime = Arc::new(FakeRuntime::default());
    *runtime.agent_addr.lock().unwrap() = Some(fake_agent().await);
    let mut s = Settings {
        listen: Some("127.0.0.1:8080".parse().unwrap()),
        admin_token: Some(ADMIN.into()),
        ..Default::default()
    };
    f(&mut s);
    let (router, sessions) =
        drydock::build(Config::resolve(s).unwrap(), store.clone(), runtime.clone());
    App {
        router,
        sessions,
        runtime,
        store,
    }
}

async fn app(f: impl FnOnce(&mut Settings)) -> App {
    app_on(Arc::new(SqliteStore::in_memory().await.unwrap()), f).await
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
    /// `name=value` of the cookie `name` this response sets.
    fn cookie(&self, name: &str) -> String {
        self.cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie in {:?}", self.cookies()))
            .split(';')
            .next()
            .unwrap()
            .to_owned()
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

/// A request with a JSON body (or none) and extra headers.
fn req(method: &str, uri: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

const BEARER: (&str, &str) = ("authorization", "Bearer s3cret-admin-token");

async fn create_workshop(app: &App, body: Value) -> Value {
    let r = send(
        &app.router,
        req("POST", "/api/v1/workshops", Some(body), &[BEARER]),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

async fn join(app: &App, code: &str, name: &str, cookie: Option<&str>) -> Resp {
    let mut h = vec![];
    if let Some(c) = cookie {
        h.push(("cookie", c));
    }
    send(
        &app.router,
        req(
            "POST",
            &format!("/api/v1/workshops/{code}/join"),
            Some(json!({ "name": name })),
            &h,
        ),
    )
    .await
}

async fn dashboard(app: &App, id: &str) -> Value {
    let r = send(
        &app.router,
        req("GET", &format!("/api/v1/workshops/{id}"), None, &[BEARER]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error());
    r.json()
}

async fn wait_ready(app: &App, id: &str, token: &str) {
    for _ in 0..200 {
        let r = send(
            &app.router,
            req(
                "GET",
                &format!("/api/v1/sessions/{id}"),
                None,
                &[("authorization", &format!("Bearer {token}"))],
            ),
        )
        .await;
        if r.json()["instances"][0]["state"] == "ready" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("session {id} never became ready");
}

fn whalesay(seats: i64) -> Value {
    json!({"title": "Docker 101", "lesson": "whalesay", "seats": seats, "duration_minutes": 30})
}

#[tokio::test]
async fn instructor_features_are_disabled_without_an_admin_token() {
    let app = app(|s| s.admin_token = None).await;
    let r = send(
        &app.router,
        req(
            "POST",
            "/api/v1/admin/login",
            Some(json!({"token": "x"})),
            &[],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.error().contains("instructor features are disabled"),
        "{}",
        r.error()
    );
    assert!(r.error().contains("DRYDOCK_ADMIN_TOKEN"), "{}", r.error());
    let r = send(
        &app.router,
        req("GET", "/api/v1/workshops", None, &[BEARER]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.error());
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_logout_ends_it() {
    let app = app(|_| {}).await;
    let r = send(&app.router, req("GET", "/api/v1/workshops", None, &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.error().contains("sign in at /admin"), "{}", r.error());

    let r = send(
        &app.router,
        req(
            "POST",
            "/api/v1/admin/login",
            Some(json!({"token": "wrong"})),
            &[],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.error(),
        "wrong admin token: it does not match this server's admin_token"
    );
    assert!(r.cookies().is_empty());

    let r = send(
        &app.router,
        req(
            "POST",
            "/api/v1/admin/login",
            Some(json!({"token": ADMIN})),
            &[],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error());
    let set = r.cookies().join("\n");
    for want in [
        "drydock_admin=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(set.contains(want), "{want} missing: {set}");
    }
    assert!(!set.contains(ADMIN), "the token itself is never the cookie");
    let cookie = r.cookie("drydock_admin");

    let me = send(
        &app.router,
        req("GET", "/api/v1/admin/me", None, &[("cookie", &cookie)]),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["via"], "cookie");
    let me = send(&app.router, req("GET", "/api/v1/admin/me", None, &[BEARER])).await;
    assert_eq!(me.json()["via"], "token");
    // The store keeps only a hash of the cookie.
    let value = cookie.split_once('=').unwrap().1;
    assert!(app.store.get_admin_session(value).await.unwrap().is_none());

    let out = send(
        &app.router,
        req("POST", "/api/v1/admin/logout", None, &[("cookie", &cookie)]),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.cookie("drydock_admin") == "drydock_admin=");
    let r = send(
        &app.router,
        req("GET", "/api/v1/workshops", None, &[("cookie", &cookie)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "logged out");
}

#[tokio::test]
async fn repeated_wrong_tokens_are_slowed_down() {
    let app = app(|_| {}).await;
    let mut last = StatusCode::OK;
    for _ in 0..12 {
        last = send(
            &app.router,
            req(
                "POST",
                "/api/v1/admin/login",
                Some(json!({"token": "guess"})),
                &[],
            ),
        )
        .await
        .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn workshop_requests_are_validated_with_clear_messages() {
    let app = app(|_| {}).await;
    let cases = [
        (
            json!({"title": "", "lesson": "whalesay", "seats": 3, "duration_minutes": 30}),
            "title must be 1 to 100",
        ),
        (
            json!({"title": "T", "lesson": "nope", "seats": 3, "duration_minutes": 30}),
            "no lesson 'nope' (lessons: ",
        ),
        (
            json!({"title": "T", "lesson": "whalesay", "seats": 0, "duration_minutes": 30}),
            "seats must be between 1 and",
        ),
        (
            json!({"title": "T", "lesson": "whalesay", "seats": 3, "duration_minutes": 0}),
            "duration_minutes must be between 1",
        ),
        (
            json!({"title": "T", "lesson": "whalesay", "seats": 3, "duration_minutes": 30, "warm_pool": 4}),
            "warm_pool must be between 0 and the seats (3)",
        ),
        (
            json!({"title": "T", "lesson": "whalesay", "seats": 3, "duration_minutes": 30, "opens_at": "tomorrow"}),
            "opens_at \"tomorrow\" is not an RFC 3339 time",
        ),
        (
            json!({"title": "T", "lesson": "whalesay", "seats": 3, "duration_minutes": 30, "closes_at": "2001-01-01T00:00:00Z"}),
            "closes_at 2001-01-01T00:00:00.000Z is in the past",
        ),
        (
            json!({"title": "T", "lesson": "whalesay", "seats": 3, "duration_minutes": 30, "closes_at": "2999-01-01T00:00:00Z", "opens_at": "2999-02-01T00:00:00Z"}),
            "is not after opens_at",
        ),
        (
            json!({"title": "T", "lesson": "whalesay", "seats": 3}),
            "missing field `duration_minutes`",
        ),
        (
            json!({"title": "T", "lesson": "whalesay", "seats": 3, "duration_minutes": 30, "colour": 1}),
            "unknown field `colour`",
        ),
    ];
    for (body, want) in cases {
        let r = send(
            &app.router,
            req("POST", "/api/v1/workshops", Some(body.clone()), &[BEARER]),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.error());
        assert!(
            r.error().contains(want),
            "{body}: {:?} lacks {want:?}",
            r.error()
        );
    }
}

#[tokio::test]
async fn seats_rejoin_and_the_join_rules() {
    let app = app(|_| {}).await;
    let w = create_workshop(&app, whalesay(2)).await;
    let (id, code) = (w["id"].as_str().unwrap(), w["code"].as_str().unwrap());
    assert_eq!(code.len(), 6, "{w}");
    assert!(
        code.bytes()
            .all(|b| b"23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(&b)),
        "{code}"
    );
    assert_eq!(
        w["join_url"],
        format!("http://localhost:8080/w/{code}"),
        "{w}"
    );
    assert_eq!(w["status"], "open");

    let info = send(
        &app.router,
        req("GET", &format!("/api/v1/workshops/{code}/join"), None, &[]),
    )
    .await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(info.json()["title"], "Docker 101");
    assert_eq!(info.json()["refusal"], Value::Null);

    for (name, want) in [
        ("   ", "enter your name"),
        (&"x".repeat(41)[..], "at most 40"),
    ] {
        let r = join(&app, code, name, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.error());
        assert!(r.error().contains(want), "{}", r.error());
    }

    let ada = join(&app, code, "  Ada Lovelace ", None).await;
    assert_eq!(ada.status, StatusCode::CREATED, "{}", ada.error());
    let a = ada.json();
    assert_eq!(a["lesson"], "whalesay");
    assert_eq!(a["template"], "docker");
    assert!(a["token"].as_str().is_some(), "{a}");
    assert_eq!(a["rejoined"], false);
    assert_eq!(a["name"], "Ada Lovelace");
    let rejoin_cookie = ada.cookie(&format!("drydock_ws_{code}"));
    assert!(ada
        .cookie("drydock_session")
        .starts_with("drydock_session="));
    // The session lasts the workshop's 30 minutes.
    let created = chrono::DateTime::parse_from_rfc3339(a["created_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(a["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_minutes(), 30);

    // Rejoining from the same browser (any case of the code) returns the same session.
    let again = join(&app, &code.to_lowercase(), "Ada", Some(&rejoin_cookie)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.error());
    assert_eq!(again.json()["id"], a["id"]);
    assert_eq!(again.json()["rejoined"], true);
    let info = send(
        &app.router,
        req(
            "GET",
            &format!("/api/v1/workshops/{code}/join"),
            None,
            &[("cookie", &rejoin_cookie)],
        ),
    )
    .await;
    assert_eq!(info.json()["session"], a["id"]);

    let bob = join(&app, code, "Bob", None).await;
    assert_eq!(bob.status, StatusCode::CREATED, "{}", bob.error());
    let cy = join(&app, code, "Cy", None).await;
    assert_eq!(cy.status, StatusCode::CONFLICT);
    assert_eq!(
        cy.error(),
        "workshop 'Docker 101' is full: 2 of 2 seats taken"
    );

    let r = join(&app, "ZZZZZZ", "Cy", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.error().contains("no workshop with join code 'ZZZZZZ'"),
        "{}",
        r.error()
    );

    let d = dashboard(&app, id).await;
    let names: Vec<&str> = d["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada Lovelace", "Bob"]);
    assert_eq!(d["taken"], 2);
    assert_eq!(d["steps"].as_array().unwrap().len(), 4, "{d}");
    let p0 = &d["participants"][0];
    assert!(p0["seconds_left"].as_i64().unwrap() > 29 * 60, "{p0}");
    assert_eq!(p0["instances"][0]["name"], "node1");

    // Ending Bob's session frees the seat.
    let bob_id = bob.json()["id"].as_str().unwrap().to_owned();
    let r = send(
        &app.router,
        req(
            "POST",
            &format!("/api/v1/workshops/{id}/participants/{bob_id}/end"),
            None,
            &[BEARER],
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let cy = join(&app, code, "Cy", None).await;
    assert_eq!(cy.status, StatusCode::CREATED, "{}", cy.error());
    let d = dashboard(&app, id).await;
    assert_eq!(d["participants"].as_array().unwrap().len(), 3);
    assert_eq!(d["participants"][1]["active"], false);
    assert_eq!(d["participants"][1]["state"], "closed");

    // Extend one, then all; end all removes everything.
    let ada_id = a["id"].as_str().unwrap();
    let before = d["participants"][0]["seconds_left"].as_i64().unwrap();
    let r = send(
        &app.router,
        req(
            "POST",
            &format!("/api/v1/workshops/{id}/participants/{ada_id}/extend"),
            Some(json!({"minutes": 10})),
            &[BEARER],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error());
    assert!(
        r.json()["seconds_left"].as_i64().unwrap() >= before + 590,
        "{}",
        r.json()
    );
    let r = send(
        &app.router,
        req(
            "POST",
            &format!("/api/v1/workshops/{id}/extend"),
            None,
            &[BEARER],
        ),
    )
    .await;
    assert_eq!(r.json()["extended"], 2);
    let r = send(
        &app.router,
        req(
            "POST",
            &format!("/api/v1/workshops/{id}/end"),
            None,
            &[BEARER],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error());
    assert_eq!(r.json()["ended"], 2);
    assert!(app.runtime.is_empty(), "{:?}", app.runtime.snapshot());
    assert_eq!(app.sessions.live_count(), 0);
    let r = join(&app, code, "Dee", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.error()
            .starts_with("workshop 'Docker 101' has ended (at "),
        "{}",
        r.error()
    );
    // A rejoin cookie of an ended workshop does not bring anyone back.
    let r = join(&app, code, "Ada", Some(&rejoin_cookie)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_join_window_is_enforced_with_its_times() {
    let app = app(|_| {}).await;
    let w = create_workshop(
        &app,
        json!({"title": "Later", "lesson": "whalesay", "seats": 3, "duration_minutes": 30,
               "opens_at": "2999-01-01T09:00:00+08:00"}),
    )
    .await;
    assert_eq!(w["status"], "scheduled");
    let r = join(&app, w["code"].as_str().unwrap(), "Ada", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.error(),
        "workshop 'Later' is not open yet: it opens at 2999-01-01T01:00:00.000Z"
    );
    // A workshop whose window is over.
    let now = app.sessions.clock().now_ms();
    app.store
        .insert_workshop(&WorkshopRow {
            id: "00000000000000aa".into(),
            code: "PASTXX".into(),
            owner: "someone".into(),
            title: "Earlier".into(),
            lesson: "whalesay".into(),
            lang: None,
            seats: 3,
            duration_minutes: 30,
            warm_pool: 0,
            opens_at: None,
            closes_at: Some(now - 1000),
            created_at: now - 10_000,
            ended_at: None,
            state: "active".into(),
        })
        .await
        .unwrap();
    let r = join(&app, "PASTXX", "Ada", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.error()
            .starts_with("workshop 'Earlier' is closed: joining ended at "),
        "{}",
        r.error()
    );
}

#[tokio::test]
async fn workshops_that_do_not_fit_are_refused_with_how_much() {
    let small = app(|s| s.max_sessions = Some(3)).await;
    let r = send(
        &small.router,
        req("POST", "/api/v1/workshops", Some(whalesay(5)), &[BEARER]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.error()
            .starts_with("not enough capacity for 5 seats: this server runs at most 3 sessions"),
        "{}",
        r.error()
    );
    assert!(
        r.error().ends_with("so 3 are free: 2 seats too many"),
        "{}",
        r.error()
    );
    // Seats another open workshop has not filled are kept for it.
    create_workshop(&small, whalesay(2)).await;
    let r = send(
        &small.router,
        req("POST", "/api/v1/workshops", Some(whalesay(2)), &[BEARER]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.error()
            .contains("2 seats not yet taken in other open workshops"),
        "{}",
        r.error()
    );
    assert!(
        r.error().ends_with("so 1 are free: 1 seats too many"),
        "{}",
        r.error()
    );

    let big = app(|s| s.memory_mb = Some(100_000_000)).await;
    let r = send(
        &big.router,
        req("POST", "/api/v1/workshops", Some(whalesay(3)), &[BEARER]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error().starts_with("not enough memory for 3 seats: 3 × 100000000 MB (memory_mb, each instance's limit) = 300000000 MB, but this host has "), "{}", r.error());
    assert!(
        r.error().contains("MB too much; at most 0 seats fit"),
        "{}",
        r.error()
    );
}

#[tokio::test]
async fn instructors_only_see_their_own_workshops() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
    let a = app_on(store.clone(), |_| {}).await;
    let b = app_on(store, |s| s.admin_token = Some("other-token".into())).await;
    let w = create_workshop(&a, whalesay(2)).await;
    let id = w["id"].as_str().unwrap();
    let list = send(&a.router, req("GET", "/api/v1/workshops", None, &[BEARER])).await;
    assert_eq!(list.json().as_array().unwrap().len(), 1);
    let other = ("authorization", "Bearer other-token");
    let list = send(&b.router, req("GET", "/api/v1/workshops", None, &[other])).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json().as_array().unwrap().len(), 0);
    let r = send(
        &b.router,
        req("GET", &format!("/api/v1/workshops/{id}"), None, &[other]),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(
        &b.router,
        req(
            "POST",
            &format!("/api/v1/workshops/{id}/end"),
            None,
            &[other],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Reads server-sent events from a streaming body until one named `name` arrives.
async fn next_event(body: &mut Body, buf: &mut String, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut ev = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    ev = e;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if ev == name {
                return serde_json::from_str(&data).unwrap();
            }
        }
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no {name} event; have {buf:?}"))
            .expect("stream ended")
            .unwrap();
        if let Ok(d) = frame.into_data() {
            buf.push_str(&String::from_utf8_lossy(&d));
        }
    }
}

#[tokio::test]
async fn the_live_feed_progress_and_results_csv() {
    let app = app(|_| {}).await;
    let w = create_workshop(&app, whalesay(3)).await;
    let (id, code) = (w["id"].as_str().unwrap(), w["code"].as_str().unwrap());

    let resp = app
        .router
        .clone()
        .oneshot(req(
            "GET",
            &format!("/api/v1/workshops/{id}/events"),
            None,
            &[BEARER],
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut buf = String::new();
    let snap = next_event(&mut body, &mut buf, "snapshot").await;
    assert_eq!(snap["participants"], json!([]));
    assert_eq!(snap["code"], code);

    let ada = join(&app, code, "Ada", None).await.json();
    let (sid, token) = (ada["id"].as_str().unwrap(), ada["token"].as_str().unwrap());
    let ev = next_event(&mut body, &mut buf, "join").await;
    assert_eq!(ev["participant"]["name"], "Ada");
    assert_eq!(ev["participant"]["session"], sid);
    wait_ready(&app, sid, token).await;

    let r = send(
        &app.router,
        req(
            "POST",
            &format!("/api/v1/sessions/{sid}/lesson/steps/0/check"),
            None,
            &[("authorization", &format!("Bearer {token}"))],
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["passed"], true);
    let ev = next_event(&mut body, &mut buf, "check").await;
    assert_eq!(ev["participant"]["progress"][0]["step"], 0);
    assert_eq!(ev["participant"]["progress"][0]["passed"], true);
    assert_eq!(ev["participant"]["passed"], 1);

    let r = send(
        &app.router,
        req(
            "POST",
            &format!("/api/v1/workshops/{id}/participants/{sid}/extend"),
            None,
            &[BEARER],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error());
    let ev = next_event(&mut body, &mut buf, "extend").await;
    assert_eq!(ev["participant"]["session"], sid);

    let d = dashboard(&app, id).await;
    assert_eq!(d["participants"][0]["progress"][0]["passed"], true);
    assert!(d["participants"][0]["progress"][0]["checked_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    let r = send(
        &app.router,
        req(
            "GET",
            &format!("/api/v1/workshops/{id}/results.csv"),
            None,
            &[BEARER],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert!(r.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&format!("workshop-{code}-results.csv")));
    let csv = String::from_utf8(r.body).unwrap();
    let csv = csv.trim_start_matches('\u{feff}');
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[0].starts_with("name,joined_at,step 1 pull passed,step 1 pull at,step 2 "),
        "{}",
        lines[0]
    );
    let cells: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(cells[0], "Ada");
    assert_eq!(cells[2], "yes");
    assert!(cells[3].ends_with('Z'), "{}", lines[1]);
    assert_eq!(cells[4], "no");

    let r = send(
        &app.router,
        req(
            "POST",
            &format!("/api/v1/workshops/{id}/end"),
            None,
            &[BEARER],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let ev = next_event(&mut body, &mut buf, "workshop").await;
    assert_eq!(ev["action"], "end");
}

#[tokio::test]
async fn a_warm_pool_hands_out_ready_instances_and_ends_with_the_workshop() {
    let app = app(|s| s.max_sessions = Some(4)).await;
    tokio::spawn(app.sessions.clone().run_warm_pools());
    let w = create_workshop(
        &app,
        json!({"title": "Warm", "lesson": "whalesay", "seats": 3, "duration_minutes": 30, "warm_pool": 2}),
    )
    .await;
    let (id, code) = (w["id"].as_str().unwrap(), w["code"].as_str().unwrap());
    let t0 = Instant::now();
    loop {
        let d = dashboard(&app, id).await;
        if d["warm"]["ready"] == 2 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "pool never filled: {}",
            d["warm"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let warm_sessions: Vec<String> = app
        .runtime
        .snapshot()
        .instances
        .keys()
        .map(|(s, _)| s.clone())
        .collect();
    let ada = join(&app, code, "Ada", None).await;
    assert_eq!(ada.status, StatusCode::CREATED, "{}", ada.error());
    let a = ada.json();
    assert_eq!(
        a["instances"][0]["state"], "ready",
        "a warm instance is ready at once: {a}"
    );
    assert!(
        warm_sessions.contains(&a["id"].as_str().unwrap().to_owned()),
        "the session took a warm instance's id"
    );
    // The pool refills to min(warm_pool, free seats) = 2, then shrinks as seats fill.
    let bob = join(&app, code, "Bob", None).await.json();
    assert_eq!(bob["instances"][0]["state"], "ready", "{bob}");
    let t0 = Instant::now();
    loop {
        let d = dashboard(&app, id).await;
        let warm = d["warm"]["ready"].as_u64().unwrap() + d["warm"]["starting"].as_u64().unwrap();
        // 2 live + 1 free seat: the pool wants 1.
        if warm == 1 && app.runtime.snapshot().instances.len() == 3 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "pool not at 1: {}",
            d["warm"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = send(
        &app.router,
        req(
            "POST",
            &format!("/api/v1/workshops/{id}/end"),
            None,
            &[BEARER],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error());
    assert!(app.runtime.is_empty(), "{:?}", app.runtime.snapshot());
    assert_eq!(app.sessions.warm_count(), 0);
}

#[tokio::test]
async fn the_playground_warm_pool_serves_plain_sessions() {
    let app = app(|s| s.playground_warm_pool = Some(1)).await;
    tokio::spawn(app.sessions.clone().run_warm_pools());
    let t0 = Instant::now();
    while app.sessions.warm_pool_count("playground:docker").ready < 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "playground pool never filled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = send(
        &app.router,
        req(
            "POST",
            "/api/v1/sessions",
            Some(json!({"template": "docker"})),
            &[],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["instances"][0]["state"], "ready");
}

#[tokio::test]
async fn only_instructors_with_mode_view_open_participants_terminals() {
    let app = app(|_| {}).await;
    let w = create_workshop(&app, whalesay(3)).await;
    let code = w["code"].as_str().unwrap();
    let ada = join(&app, code, "Ada", None).await.json();
    let bob = join(&app, code, "Bob", None).await.json();
    let (sid, token) = (ada["id"].as_str().unwrap(), ada["token"].as_str().unwrap());
    wait_ready(&app, sid, token).await;
    let term = |s: &str, q: &str| format!("/api/v1/sessions/{s}/instances/node1/terminals/main{q}");
    // Past authorization, a plain GET (no upgrade) is refused by the WebSocket extractor.
    let upgrade_refused =
        |r: &Resp| r.status != StatusCode::NOT_FOUND && r.status != StatusCode::FORBIDDEN;

    let r = send(
        &app.router,
        req("GET", &term(sid, "?mode=view"), None, &[BEARER]),
    )
    .await;
    assert!(
        upgrade_refused(&r),
        "admin with mode=view is let through: {}",
        r.status
    );
    let r = send(&app.router, req("GET", &term(sid, ""), None, &[BEARER])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.error().contains("read-only: add ?mode=view"),
        "{}",
        r.error()
    );
    // A participant's token never opens another participant's terminal, view or not.
    let bob_token = format!("Bearer {}", bob["token"].as_str().unwrap());
    for q in ["", "?mode=view"] {
        let r = send(
            &app.router,
            req("GET", &term(sid, q), None, &[("authorization", &bob_token)]),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{q}");
    }
    // Nor does a wrong admin token, and a playground session is not an instructor's to view.
    let r = send(
        &app.router,
        req(
            "GET",
            &term(sid, "?mode=view"),
            None,
            &[("authorization", "Bearer nope")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let p = send(
        &app.router,
        req(
            "POST",
            "/api/v1/sessions",
            Some(json!({"template": "docker"})),
            &[],
        ),
    )
    .await
    .json();
    let r = send(
        &app.router,
        req(
            "GET",
            &term(p["id"].as_str().unwrap(), "?mode=view"),
            None,
            &[BEARER],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

// ---- Acceptance test against the real dockerd (DRYDOCK_E2E=1) ----

mod real {
    use super::ADMIN;
    use crate::common::e2e::{docker, e2e, labelled, Server, Term, SERIAL};
    use bytes::Bytes;
    use drydock_protocol::frame::ClientFrame;
    use serde_json::{json, Value};
    use std::time::{Duration, Instant};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    const MIRROR: &str = "http://127.0.0.1:5000";

    async fn require_mirror() {
        let url = format!("{MIRROR}/v2/docker/whalesay/tags/list");
        let body = match reqwest::get(&url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => panic!(
                "DRYDOCK_E2E is set but the registry mirror does not answer at {url}: {e}\n\
                 start it (scripts/lib/host.sh) and seed it (sandbox/build --only lessons)"
            ),
        };
        assert!(
            body.contains("\"latest\""),
            "the registry mirror has no docker/whalesay:latest ({body})"
        );
    }

    /// Reads the workshop's event stream in the background: (event, data) pairs.
    fn follow_events(
        server: &Server,
        id: &str,
    ) -> tokio::sync::mpsc::UnboundedReceiver<(String, Value)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let url = server.url(&format!("/api/v1/workshops/{id}/events"));
        tokio::spawn(async move {
            let mut resp = reqwest::Client::new()
                .get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let mut buf = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let (mut ev, mut data) = (String::new(), String::new());
                    for line in block.lines() {
                        if let Some(e) = line.strip_prefix("event: ") {
                            ev = e.to_owned();
                        } else if let Some(d) = line.strip_prefix("data: ") {
                            data.push_str(d);
                        } else if line.starts_with(':') {
                            ev = "comment".into();
                        }
                    }
                    let v = serde_json::from_str(&data).unwrap_or(Value::Null);
                    if tx.send((ev, v)).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }

    async fn wait_event(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
        name: &str,
        pred: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> (Value, Duration) {
        let t0 = Instant::now();
        loop {
            let left = within.saturating_sub(t0.elapsed());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some((ev, v))) if ev == name && pred(&v) => return (v, t0.elapsed()),
                Ok(Some(_)) => {}
                Ok(None) => panic!("event stream ended waiting for {name}"),
                Err(_) => panic!("no {name} event within {within:?}"),
            }
        }
    }

    async fn api(
        server: &Server,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = reqwest::Client::new()
            .request(method, server.url(path))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn view_socket(server: &Server, id: &str, mode: &str) -> Result<Term, String> {
        let url = format!(
            "ws://127.0.0.1:{}/api/v1/sessions/{id}/instances/node1/terminals/main{mode}",
            server.port
        );
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(Term {
                ws,
                screen: String::new(),
                replay_done: false,
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn workshop_end_to_end() {
        if !e2e("workshop_end_to_end") {
            return;
        }
        require_mirror().await;
        let _serial = SERIAL.lock().await;
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), &[("DRYDOCK_ADMIN_TOKEN", ADMIN)]).await;
        let server_id = std::fs::read_to_string(dir.path().join("server-id"))
            .unwrap()
            .trim()
            .to_owned();
        let owned = format!("drydock.server={server_id}");
        struct RemoveOwned(String);
        impl Drop for RemoveOwned {
            fn drop(&mut self) {
                crate::common::e2e::remove_labelled(&self.0);
            }
        }
        let _owned = RemoveOwned(owned.clone());

        // The instructor signs in (cookie) and makes a workshop: 3 seats, 2 warm.
        let login = reqwest::Client::new()
            .post(server.url("/api/v1/admin/login"))
            .json(&json!({"token": ADMIN}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200);
        let cookie = login.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let r = reqwest::Client::new()
            .post(server.url("/api/v1/workshops"))
            .header("cookie", &cookie)
            .json(
                &json!({"title": "E2E workshop", "lesson": "whalesay", "seats": 3,
                          "duration_minutes": 20, "warm_pool": 2}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let w: Value = r.json().await.unwrap();
        let (wid, code) = (
            w["id"].as_str().unwrap().to_owned(),
            w["code"].as_str().unwrap().to_owned(),
        );
        assert!(w["join_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/w/{code}")));
        let mut events = follow_events(&server, &wid);
        let (snap, _) = wait_event(&mut events, "snapshot", |_| true, Duration::from_secs(5)).await;
        assert_eq!(snap["participants"], json!([]));

        // The warm pool fills.
        let t0 = Instant::now();
        loop {
            let (_, d) = api(
                &server,
                reqwest::Method::GET,
                &format!("/api/v1/workshops/{wid}"),
                None,
            )
            .await;
            if d["warm"]["ready"] == 2 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "warm pool: {}\n{}",
                d["warm"],
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let fill = t0.elapsed();
        let (c, _, _) = labelled(&owned);
        assert_eq!(c, 2, "two warm containers before anyone joined");

        // Three participants join; the first two take warm instances.
        let mut people: Vec<(String, String, String)> = Vec::new();
        let mut timings = Vec::new();
        for name in ["Ada", "Grace", "Linus"] {
            let t0 = Instant::now();
            let r = reqwest::Client::new()
                .post(server.url(&format!("/api/v1/workshops/{code}/join")))
                .json(&json!({"name": name}))
                .send()
                .await
                .unwrap();
            let answered = t0.elapsed();
            assert_eq!(r.status(), 201, "{}", server.log_text());
            let v: Value = r.json().await.unwrap();
            let (id, token) = (
                v["id"].as_str().unwrap().to_owned(),
                v["token"].as_str().unwrap().to_owned(),
            );
            let warm = v["instances"][0]["state"] == "ready";
            if !warm {
                server
                    .wait_ready(&id, &token, Duration::from_secs(60))
                    .await;
            }
            let ready = t0.elapsed();
            eprintln!(
                "join {name}: answered in {} ms, ready after {} ms ({})",
                answered.as_millis(),
                ready.as_millis(),
                if warm {
                    "warm instance, ready in the answer"
                } else {
                    "no ready warm instance"
                }
            );
            timings.push((name, answered, ready, warm));
            let _ = wait_event(
                &mut events,
                "join",
                |v| v["participant"]["name"] == name,
                Duration::from_secs(10),
            )
            .await;
            people.push((name.to_owned(), id, token));
        }
        for (name, _, ready, warm) in &timings[..2] {
            assert!(*warm, "{name} did not get a warm instance");
            assert!(
                *ready < Duration::from_secs(1),
                "{name}: join→ready took {ready:?}"
            );
        }

        // A fourth is refused clearly.
        let r = reqwest::Client::new()
            .post(server.url(&format!("/api/v1/workshops/{code}/join")))
            .json(&json!({"name": "Dennis"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["error"],
            "workshop 'E2E workshop' is full: 3 of 3 seats taken"
        );

        // The instructor watches Ada's terminal read-only.
        let (_, ada, ada_token) = people[0].clone();
        let refused = view_socket(&server, &ada, "")
            .await
            .err()
            .unwrap_or_default();
        assert!(
            refused.contains("403"),
            "admin without mode=view: {refused}"
        );
        let mut view = view_socket(&server, &ada, "?mode=view")
            .await
            .expect("view socket");
        view.replay(Duration::from_secs(10)).await;
        let mut t = server.terminal(&ada, &ada_token).await;
        t.replay(Duration::from_secs(10)).await;
        t.type_line("echo seen-by-$((6*7))").await;
        t.expect("seen-by-42", Duration::from_secs(20)).await;
        view.expect("seen-by-42", Duration::from_secs(20)).await;
        // What the view types never runs.
        view.send(ClientFrame::Input(Bytes::from_static(
            b"touch /tmp/viewer-typed\r",
        )))
        .await;
        view.send(ClientFrame::Resize { cols: 20, rows: 5 }).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        t.type_line(
            "test -e /tmp/viewer-typed && echo VIEWER-RAN || echo viewer-$((2*21))-ignored",
        )
        .await;
        t.expect("viewer-42-ignored", Duration::from_secs(20)).await;
        assert!(!t.screen.contains("VIEWER-RAN\r"), "{}", t.screen);
        // Grace's token does not open Ada's terminal.
        let url = format!(
            "ws://127.0.0.1:{}/api/v1/sessions/{ada}/instances/node1/terminals/main?token={}&mode=view",
            server.port, people[1].2
        );
        let e = tokio_tungstenite::connect_async(url)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("404"), "another participant's token: {e}");

        // Ada passes step 1 (docker pull docker/whalesay) and the dashboard sees it.
        let check = |id: String, token: String| {
            let url = server.url(&format!("/api/v1/sessions/{id}/lesson/steps/0/check"));
            async move {
                let r = reqwest::Client::new()
                    .post(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()
            }
        };
        assert_eq!(check(ada.clone(), ada_token.clone()).await["passed"], false);
        t.type_line("docker pull docker/whalesay; echo pulled-$((40+2))")
            .await;
        let out = t.expect("pulled-42", Duration::from_secs(180)).await;
        assert!(
            out.contains("Downloaded newer image for docker/whalesay:latest")
                || out.contains("Image is up to date for docker/whalesay:latest"),
            "{out}"
        );
        view.expect("pulled-42", Duration::from_secs(20)).await;
        let v = check(ada.clone(), ada_token.clone()).await;
        assert_eq!(v["passed"], true, "{v}");
        let (ev, took) = wait_event(
            &mut events,
            "check",
            |v| v["participant"]["session"] == ada.as_str() && v["participant"]["passed"] == 1,
            Duration::from_secs(10),
        )
        .await;
        eprintln!(
            "check event on the live feed {} ms after the check answered",
            took.as_millis()
        );
        assert_eq!(ev["participant"]["progress"][0]["step"], 0);
        let (_, d) = api(
            &server,
            reqwest::Method::GET,
            &format!("/api/v1/workshops/{wid}"),
            None,
        )
        .await;
        let parts = d["participants"].as_array().unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0]["name"], "Ada");
        assert_eq!(parts[0]["progress"][0]["passed"], true, "{d}");
        assert_eq!(parts[1]["passed"], 0);
        let csv = reqwest::Client::new()
            .get(server.url(&format!("/api/v1/workshops/{wid}/results.csv")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let ada_row = csv
            .lines()
            .find(|l| l.starts_with("Ada,"))
            .expect("Ada in the CSV");
        assert_eq!(ada_row.split(',').nth(2), Some("yes"), "{csv}");

        // Ending the workshop removes every session and container.
        let t0 = Instant::now();
        let (status, v) = api(
            &server,
            reqwest::Method::POST,
            &format!("/api/v1/workshops/{wid}/end"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["ended"], 3);
        let end_took = t0.elapsed();
        let (c, vols, nets) = labelled(&owned);
        assert_eq!(
            (c, vols, nets),
            (0, 0, 0),
            "left behind after the end: {}",
            docker(&["ps", "-a", "--filter", &format!("label={owned}")]).1
        );
        for (_, id, token) in &people {
            assert_eq!(server.get(id, token).await.0, 404, "session {id} is gone");
        }
        let (code_, _) = t.closed(Duration::from_secs(10)).await;
        assert_eq!(code_, 4000);
        let _ = wait_event(
            &mut events,
            "workshop",
            |v| v["action"] == "end",
            Duration::from_secs(10),
        )
        .await;

        eprintln!(
            "WORKSHOP E2E: warm pool of 2 filled in {} ms",
            fill.as_millis()
        );
        for (name, answered, ready, warm) in &timings {
            eprintln!(
                "WORKSHOP E2E: join {name}: answer {} ms, join→ready {} ms, warm={warm}",
                answered.as_millis(),
                ready.as_millis()
            );
        }
        eprintln!(
            "WORKSHOP E2E: end of the workshop (3 sessions) took {} ms",
            end_took.as_millis()
        );
        eprintln!("workshop end to end: {:?}", started.elapsed());
    }

    fn warm_names(owned: &str) -> Vec<String> {
        let (ok, out) = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label={owned}"),
            "--format",
            "{{.Names}}",
        ]);
        assert!(ok, "{out}");
        let mut v: Vec<String> = out
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect();
        v.sort();
        v
    }

    async fn wait_warm(server: &Server, wid: &str, n: u64) -> Duration {
        let t0 = Instant::now();
        loop {
            let (_, d) = api(
                server,
                reqwest::Method::GET,
                &format!("/api/v1/workshops/{wid}"),
                None,
            )
            .await;
            if d["warm"]["ready"] == n {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "warm pool: {}\n{}",
                d["warm"],
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn warm_pools_are_reconciled_after_a_restart() {
        if !e2e("warm_pools_are_reconciled_after_a_restart") {
            return;
        }
        let _serial = SERIAL.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let env = [("DRYDOCK_ADMIN_TOKEN", ADMIN)];
        let mut first = Server::start(dir.path(), &env).await;
        let server_id = std::fs::read_to_string(dir.path().join("server-id"))
            .unwrap()
            .trim()
            .to_owned();
        let owned = format!("drydock.server={server_id}");
        struct RemoveOwned(String);
        impl Drop for RemoveOwned {
            fn drop(&mut self) {
                crate::common::e2e::remove_labelled(&self.0);
            }
        }
        let _owned = RemoveOwned(owned.clone());
        let (status, w) = api(
            &first,
            reqwest::Method::POST,
            "/api/v1/workshops",
            Some(json!({"title": "Restart", "lesson": "whalesay", "seats": 2, "duration_minutes": 10, "warm_pool": 2})),
        )
        .await;
        assert_eq!(status, 201, "{w}");
        let wid = w["id"].as_str().unwrap().to_owned();
        let code = w["code"].as_str().unwrap().to_owned();
        wait_warm(&first, &wid, 2).await;
        let before = warm_names(&owned);
        assert_eq!(before.len(), 2, "{before:?}");

        // A crash: the warm instances' secrets are gone with the process.
        first.kill9();
        let second = Server::start(dir.path(), &env).await;
        let refill = wait_warm(&second, &wid, 2).await;
        let after = warm_names(&owned);
        assert_eq!(
            after.len(),
            2,
            "only the new warm instances remain: {after:?}"
        );
        assert!(
            after.iter().all(|n| !before.contains(n)),
            "old {before:?}, now {after:?}"
        );
        assert!(
            second.log_text().contains("removed orphaned resources"),
            "{}",
            second.log_text()
        );
        eprintln!(
            "WORKSHOP E2E: after a restart the pool of 2 was refilled in {} ms",
            refill.as_millis()
        );

        let t0 = Instant::now();
        let r = reqwest::Client::new()
            .post(second.url(&format!("/api/v1/workshops/{code}/join")))
            .json(&json!({"name": "Ada"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["instances"][0]["state"], "ready", "{v}");
        eprintln!(
            "WORKSHOP E2E: join after the restart ready in {} ms",
            t0.elapsed().as_millis()
        );
        let (status, v) = api(
            &second,
            reqwest::Method::POST,
            &format!("/api/v1/workshops/{wid}/end"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(labelled(&owned), (0, 0, 0));
    }
}
