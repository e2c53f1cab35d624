//! Router tests of the lesson endpoints (no Docker): the embedded lessons plus the fixture
//! lesson `demo` (tests/fixtures/lessons-ok), sessions on the fake runtime whose "agent" is a
//! small HTTP server here that runs check scripts with the local bash in a temporary folder.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::FakeRuntime;
use drydock::config::{Config, Settings};
use drydock::lessons::Catalog;
use drydock::store::{MemoryStore, ProgressRow, SessionRow, SqliteStore, Store};
use drydock_protocol::agent::{ExecRequest, ExecResult};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fake agent: healthy, and `/v1/exec` runs the script with bash in `dir`.
struct FakeAgent {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    requests: Arc<Mutex<Vec<ExecRequest>>>,
}

async fn fake_agent() -> FakeAgent {
    let dir = tempfile::tempdir().unwrap();
    let requests: Arc<Mutex<Vec<ExecRequest>>> = Arc::default();
    let (cwd, seen) = (dir.path().to_owned(), requests.clone());
    let app = Router::new()
        .route(
            "/v1/health",
            // JSON rather than the struct, so that fields added to Health with a default
            // do not break this fake.
            get(|| async {
                Json(json!({
                    "version": "fake",
                    "ready": true,
                    "dockerd": {"state": "ready", "restarts": 0, "message": null},
                    "k3s": {"state": "absent", "restarts": 0, "message": null},
                    "terminals": 0
                }))
            }),
        )
        .route(
            "/v1/exec",
            post(
                move |headers: axum::http::HeaderMap, Json(req): Json<ExecRequest>| async move {
                    assert!(
                        headers
                            .get("authorization")
                            .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer ")),
                        "the server sends the agent secret"
                    );
                    seen.lock().unwrap().push(req.clone());
                    let out = tokio::process::Command::new("bash")
                        .arg("-c")
                        .arg(format!("exec 2>&1\n{}", req.script))
                        .current_dir(&cwd)
                        .stdin(std::process::Stdio::null())
                        .output()
                        .await
                        .unwrap();
                    Json(ExecResult {
                        exit_code: out.status.code(),
                        signal: None,
                        output: String::from_utf8_lossy(&out.stdout).into_owned(),
                        truncated: false,
                        timed_out: false,
                        duration_ms: 1,
                    })
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeAgent {
        addr,
        dir,
        requests,
    }
}

struct App {
    router: Router,
    agent: FakeAgent,
}

async fn app() -> App {
    let agent = fake_agent().await;
    let runtime = Arc::new(FakeRuntime::default());
    *runtime.agent_addr.lock().unwrap() = Some(agent.addr);
    let config = Config::resolve(Settings {
        listen: Some("127.0.0.1:8080".parse().unwrap()),
        ..Default::default()
    })
    .unwrap();
    let lessons = Catalog::load(Some(&fixtures().join("lessons-ok"))).unwrap();
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let (router, _sessions) =
        drydock::build_with_lessons(config, store, runtime, Arc::new(lessons));
    App { router, agent }
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)))
    };
    (status, v)
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn authed(method: &str, uri: &str, token: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

async fn create(app: &App, body: Value) -> (String, String) {
    let req = Request::post("/api/v1/sessions")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, v) = send(&app.router, req).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (id, token) = (v["id"].as_str().unwrap(), v["token"].as_str().unwrap());
    // Wait for the fake agent to be seen ready.
    for _ in 0..100 {
        let (_, s) = send(
            &app.router,
            authed("GET", &format!("/api/v1/sessions/{id}"), token),
        )
        .await;
        if s["instances"][0]["state"] == "ready" {
            return (id.to_owned(), token.to_owned());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("instance of session {id} never became ready");
}

async fn check(app: &App, id: &str, token: &str, step: &str) -> (StatusCode, Value) {
    send(
        &app.router,
        authed(
            "POST",
            &format!("/api/v1/sessions/{id}/lesson/steps/{step}/check"),
            token,
        ),
    )
    .await
}

#[tokio::test]
async fn lists_lessons_in_both_languages() {
    let app = app().await;
    let (status, v) = send(&app.router, get_req("/api/v1/lessons")).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    // The course order first, then any other lesson (the fixture) by id.
    assert_eq!(ids[..2], ["whalesay", "dockerfile"]);
    assert_eq!(ids.last(), Some(&"demo"));
    assert_eq!(
        v[0],
        json!({
            "id": "whalesay",
            "title": "Containers and images: a whale that talks",
            "summary": v[0]["summary"],
            "template": "docker",
            "minutes": 15,
            "steps": 4
        })
    );
    assert!(v[0]["summary"]
        .as_str()
        .unwrap()
        .starts_with("Pull your first image"));

    let (_, zh) = send(&app.router, get_req("/api/v1/lessons?lang=zh")).await;
    assert_eq!(zh[0]["title"], "容器与镜像：会说话的鲸鱼");
    let (_, zh) = send(&app.router, get_req("/api/v1/lessons?lang=zh-CN")).await;
    assert_eq!(zh[0]["title"], "容器与镜像：会说话的鲸鱼");

    let (status, e) = send(&app.router, get_req("/api/v1/lessons?lang=fr")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        e,
        json!({"error": "unknown lang \"fr\": expected \"en\" or \"zh\""})
    );
}

#[tokio::test]
async fn one_lesson_with_rendered_steps() {
    let app = app().await;
    let (status, v) = send(&app.router, get_req("/api/v1/lessons/whalesay?lang=zh")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], "whalesay");
    assert_eq!(v["lang"], "zh");
    assert_eq!(v["template"], "docker");
    assert_eq!(v["images"], json!(["docker/whalesay:latest"]));
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[0]["id"], "pull");
    assert_eq!(steps[0]["title"], "拉取你的第一个镜像");
    assert_eq!(steps[0]["has_check"], true);
    assert_eq!(steps[0]["commands"], json!(["docker pull docker/whalesay"]));
    let html = steps[0]["html"].as_str().unwrap();
    assert!(html.starts_with("<h1>拉取你的第一个镜像</h1>"), "{html}");
    assert!(html.contains(
        "<pre><code class=\"language-sh runnable\">docker pull docker/whalesay</code></pre>"
    ));
    assert!(
        html.contains("<pre><code class=\"language-text\">"),
        "{html}"
    );

    let (_, en) = send(&app.router, get_req("/api/v1/lessons/demo")).await;
    assert_eq!(en["lang"], "en");
    assert_eq!(en["steps"][0]["title"], "Say hello");
    assert_eq!(en["steps"][1]["has_check"], false);

    let (status, e) = send(&app.router, get_req("/api/v1/lessons/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e, json!({"error": "no lesson 'nope'"}));
    let (status, _) = send(&app.router, get_req("/api/v1/lessons/whalesay?lang=xx")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sessions_need_a_served_lesson() {
    let app = app().await;
    let req = Request::post("/api/v1/sessions")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"template":"docker","lesson":"nope"}"#))
        .unwrap();
    let (status, e) = send(&app.router, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = e["error"].as_str().unwrap();
    assert!(
        e.starts_with("no lesson 'nope' (lessons: whalesay, dockerfile, ") && e.ends_with("demo)"),
        "{e}"
    );
}

#[tokio::test]
async fn checks_run_on_the_agent_and_progress_is_kept() {
    let app = app().await;
    let (id, token) = create(&app, json!({"template": "docker", "lesson": "demo"})).await;

    let (_, s) = send(
        &app.router,
        authed("GET", &format!("/api/v1/sessions/{id}"), &token),
    )
    .await;
    assert_eq!(s["lesson"], "demo");
    assert_eq!(s["progress"], json!([]));

    // Fresh: the check fails and says what to do.
    let (status, v) = check(&app, &id, &token, "0").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"passed": false, "message": "No marker yet. Run: touch marker"})
    );
    let (_, s) = send(
        &app.router,
        authed("GET", &format!("/api/v1/sessions/{id}"), &token),
    )
    .await;
    assert_eq!(s["progress"][0]["step"], 0);
    assert_eq!(s["progress"][0]["passed"], false);

    // The step's command, then the check passes.
    std::fs::write(app.agent.dir.path().join("marker"), "").unwrap();
    let (_, v) = check(&app, &id, &token, "0").await;
    assert_eq!(v, json!({"passed": true, "message": "Found the marker."}));
    let (_, s) = send(
        &app.router,
        authed("GET", &format!("/api/v1/sessions/{id}"), &token),
    )
    .await;
    let p = &s["progress"];
    assert_eq!(p.as_array().unwrap().len(), 1, "{s}");
    assert_eq!(p[0]["passed"], true);
    let passed_at = p[0]["checked_at"].as_str().unwrap().to_owned();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&passed_at).is_ok(),
        "{passed_at}"
    );

    // A later failing check does not undo the pass.
    std::fs::remove_file(app.agent.dir.path().join("marker")).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (_, v) = check(&app, &id, &token, "0").await;
    assert_eq!(v["passed"], false);
    let (_, s) = send(
        &app.router,
        authed("GET", &format!("/api/v1/sessions/{id}"), &token),
    )
    .await;
    assert_eq!(s["progress"][0]["passed"], true);
    assert_eq!(s["progress"][0]["checked_at"], passed_at.as_str());

    // The request carried the limits: 10 s, 4 KiB.
    let reqs = app.agent.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 3);
    assert_eq!(
        (reqs[0].timeout_ms, reqs[0].max_output),
        (Some(10_000), Some(4096))
    );
    assert!(reqs[0]
        .script
        .starts_with("#!/usr/bin/env bash\n# The file \"marker\""));

    // A step without a check passes and is recorded.
    let (_, v) = check(&app, &id, &token, "1").await;
    assert_eq!(v["passed"], true);
    let (_, s) = send(
        &app.router,
        authed("GET", &format!("/api/v1/sessions/{id}"), &token),
    )
    .await;
    assert_eq!(s["progress"][1]["step"], 1);

    // Out of range, not a number.
    for step in ["2", "x", "-1"] {
        let (status, e) = check(&app, &id, &token, step).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{step}: {e}");
        assert_eq!(
            e["error"],
            format!("lesson 'demo' has 2 steps (0 to 1); there is no step {step}")
        );
    }
    // Wrong token, unknown session: the usual 404.
    let (status, _) = check(&app, &id, "wrong", "0").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = check(&app, "0123456789abcdef", &token, "0").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_session_without_a_lesson_has_nothing_to_check() {
    let app = app().await;
    let (id, token) = create(&app, json!({"template": "docker"})).await;
    let (status, e) = check(&app, &id, &token, "0").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("session {id} has no lesson")),
        "{e}"
    );
    assert!(app.agent.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_check_on_an_instance_that_is_not_ready_is_a_conflict() {
    // The default fake runtime's agent never answers: node1 stays "starting".
    let runtime = Arc::new(FakeRuntime::default());
    let config = Config::resolve(Settings::default()).unwrap();
    let (router, _) = drydock::build(config, Arc::new(MemoryStore::new()), runtime);
    let req = Request::post("/api/v1/sessions")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"template":"docker","lesson":"whalesay"}"#))
        .unwrap();
    let (_, v) = send(&router, req).await;
    let (id, token) = (v["id"].as_str().unwrap(), v["token"].as_str().unwrap());
    let (status, e) = send(
        &router,
        authed(
            "POST",
            &format!("/api/v1/sessions/{id}/lesson/steps/0/check"),
            token,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert!(e["error"].as_str().unwrap().contains("node1"), "{e}");
}

async fn progress_rules(store: &dyn Store) {
    store
        .insert_session(&SessionRow {
            id: "s1".into(),
            token_hash: "h".into(),
            template: "docker".into(),
            lesson: Some("demo".into()),
            lang: None,
            created_at: 0,
            expires_at: 1,
            state: "active".into(),
        })
        .await
        .unwrap();
    let row = |step, passed, at| ProgressRow {
        session_id: "s1".into(),
        step,
        passed,
        message: format!("at {at}"),
        checked_at: at,
    };
    store.record_check(&row(1, false, 10)).await.unwrap();
    store.record_check(&row(0, false, 11)).await.unwrap();
    store.record_check(&row(0, true, 12)).await.unwrap();
    store.record_check(&row(0, false, 13)).await.unwrap();
    store.record_check(&row(0, true, 14)).await.unwrap();
    store.record_check(&row(1, false, 15)).await.unwrap();
    assert_eq!(
        store.progress("s1").await.unwrap(),
        vec![row(0, true, 12), row(1, false, 15)]
    );
    assert!(store.progress("other").await.unwrap().is_empty());
}

#[tokio::test]
async fn the_stores_keep_the_first_pass() {
    progress_rules(&SqliteStore::in_memory().await.unwrap()).await;
    progress_rules(&MemoryStore::new()).await;
}
