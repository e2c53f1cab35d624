//! Resilience: the engine going away and coming back (fake runtime, no Docker), and end to end
//! (gated like the other e2e tests): a graceful stop that ends every session when asked to, and
//! a nearly full disk that refuses new sessions while existing ones keep working.
//! (kill -9 and adoption are covered by e2e.rs `restart_adopts_sessions_and_replays_the_screen`.)

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use common::e2e::*;
use common::FakeRuntime;
use drydock::config::{Config, Settings};
use drydock::runtime::{
    InstanceHandle, InstanceSpec, NetworkInfo, Owned, OwnedInstance, Runtime, RuntimeError,
};
use drydock::store::MemoryStore;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The fake runtime, with an engine that can be switched off.
struct Flaky {
    inner: FakeRuntime,
    down: AtomicBool,
    restarts: AtomicUsize,
}

impl Flaky {
    fn gate(&self) -> Result<(), RuntimeError> {
        if self.down.load(Ordering::SeqCst) {
            Err(RuntimeError::Unreachable(
                "error trying to connect: No such file or directory".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Runtime for Flaky {
    async fn check(&self) -> Result<(), RuntimeError> {
        self.gate()
    }
    async fn create_network(&self, session: &str) -> Result<NetworkInfo, RuntimeError> {
        self.gate()?;
        self.inner.create_network(session).await
    }
    async fn remove_network(&self, session: &str) -> Result<(), RuntimeError> {
        self.gate()?;
        self.inner.remove_network(session).await
    }
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceHandle, RuntimeError> {
        self.gate()?;
        self.inner.create_instance(spec).await
    }
    async fn remove_instance(&self, session: &str, name: &str) -> Result<(), RuntimeError> {
        self.gate()?;
        self.inner.remove_instance(session, name).await
    }
    async fn list_owned(&self) -> Result<Owned, RuntimeError> {
        self.gate()?;
        self.inner.list_owned().await
    }
    async fn inspect(
        &self,
        session: &str,
        name: &str,
    ) -> Result<Option<OwnedInstance>, RuntimeError> {
        self.gate()?;
        self.inner.inspect(session, name).await
    }
    async fn restart_instance(
        &self,
        session: &str,
        name: &str,
    ) -> Result<Option<OwnedInstance>, RuntimeError> {
        self.gate()?;
        self.restarts.fetch_add(1, Ordering::SeqCst);
        self.inner.inspect(session, name).await
    }
}

async fn ready_agent() -> SocketAddr {
    let app = Router::new().route(
        "/v1/health",
        get(|| async {
            Json(json!({
                "version": "fake", "ready": true,
                "dockerd": {"state": "ready", "restarts": 0, "message": null},
                "k3s": {"state": "absent", "restarts": 0, "message": null},
                "terminals": 0
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn get_json(router: &Router, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut b = Request::get(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let resp = router
        .clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn until(what: &str, within: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "not {what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn engine_outage_is_reported_and_instances_recover() {
    let flaky = Arc::new(Flaky {
        inner: FakeRuntime::default(),
        down: AtomicBool::new(false),
        restarts: AtomicUsize::new(0),
    });
    *flaky.inner.agent_addr.lock().unwrap() = Some(ready_agent().await);
    let config = Config::resolve(Settings {
        listen: Some("127.0.0.1:8080".parse().unwrap()),
        min_free_disk_mb: Some(0),
        ..Default::default()
    })
    .unwrap();
    let (router, sessions) = drydock::build(config, Arc::new(MemoryStore::new()), flaky.clone());
    tokio::spawn(drydock::sessions::engine::run(sessions.clone()));
    let created = sessions.create(Default::default()).await;
    assert!(created.is_err(), "an empty template is refused");
    let created = sessions
        .create(drydock::sessions::CreateRequest {
            template: "docker".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (id, token) = (created.session.id.clone(), created.token.clone());
    let uri = format!("/api/v1/sessions/{id}");
    let state = |v: &Value| v["instances"][0]["state"].as_str().unwrap_or("").to_owned();
    until("ready", Duration::from_secs(10), async || {
        state(&get_json(&router, &uri, Some(&token)).await.1) == "ready"
    })
    .await;

    // The engine goes away: /healthz says why, the instance waits with the reason.
    flaky.down.store(true, Ordering::SeqCst);
    until("marked", Duration::from_secs(10), async || {
        let v = get_json(&router, &uri, Some(&token)).await.1;
        state(&v) == "starting"
            && v["instances"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("container engine is unavailable"))
    })
    .await;
    let (status, v) = get_json(&router, "/healthz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        v["error"].as_str().unwrap().contains("not reachable"),
        "{v}"
    );
    // The server itself keeps answering.
    assert_eq!(
        get_json(&router, &uri, Some(&token)).await.0,
        StatusCode::OK
    );

    // It comes back: the instance is restarted (or found) and ready again.
    flaky.down.store(false, Ordering::SeqCst);
    until("recovered", Duration::from_secs(10), async || {
        state(&get_json(&router, &uri, Some(&token)).await.1) == "ready"
    })
    .await;
    assert!(flaky.restarts.load(Ordering::SeqCst) >= 1);
    assert_eq!(get_json(&router, "/healthz", None).await.0, StatusCode::OK);
}

/// Starts the server without insisting on a healthy /healthz.
async fn start_any(dir: &Path, env: &[(&str, &str)]) -> Server {
    let s = Server::spawn(dir, "127.0.0.1", env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(s.url("/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "no answer:\n{}", s.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s
}

#[tokio::test]
async fn graceful_stop_ends_sessions_when_asked() {
    if !e2e("graceful_stop_ends_sessions_when_asked") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[("DRYDOCK_STOP_SESSIONS_ON_EXIT", "true")]).await;
    let (id, token) = server.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    server.wait_ready(&id, &token, SHORT).await;
    let mut t = server.terminal(&id, &token).await;
    t.type_line("echo UP-$((1+1))").await;
    t.expect("UP-2", SHORT).await;
    server.terminate(Duration::from_secs(30)).await;
    let (code, reason) = t.closed(Duration::from_secs(5)).await;
    assert_eq!(
        (code, reason.as_str()),
        (4000, "session ended: the server stopped")
    );
    assert_eq!(labelled(&format!("drydock.session={id}")), (0, 0, 0));
}

fn free_mib(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1M"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn full_disk_refuses_new_sessions_and_keeps_old_ones() {
    if !e2e("full_disk_refuses_new_sessions_and_keeps_old_ones") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::start(dir.path(), &[]).await;
    let (id, token) = first.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    first.wait_ready(&id, &token, SHORT).await;
    first.kill9();

    // The same server restarted on a "nearly full" disk: ask for more free space than there
    // is (nothing is actually filled).
    let need = (free_mib(dir.path()) + 100_000).to_string();
    let server = start_any(dir.path(), &[("DRYDOCK_MIN_FREE_DISK_MB", &need)]).await;
    let r = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("nearly full"), "{v}");
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/sessions"))
        .json(&json!({"template": "docker"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 507);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("no new sessions"),
        "{v}"
    );
    // The existing session was adopted and works.
    let (status, v) = server.get(&id, &token).await;
    assert_eq!(status, 200, "{v}");
    let mut t = server.terminal(&id, &token).await;
    t.type_line("echo STILL-$((40+2))").await;
    t.expect("STILL-42", SHORT).await;
    drop(t);
    server.delete(&id, &token).await;
    assert_eq!(labelled(&format!("drydock.session={id}")), (0, 0, 0));
}

/// A dockerd of the test's own (own socket, data root and exec root, its own default bridge
/// and no iptables rules of its own), so that restarting it stops no one else's containers.
struct PrivateDockerd {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PrivateDockerd {
    fn socket(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.path().display())
    }

    /// The private engine's default bridge. Not `--bridge none`: a dockerd started with it
    /// deletes the host's `docker0`, breaking the host engine's default network.
    const BRIDGE: &'static str = "ddtest0";

    fn ip(args: &[&str]) {
        let _ = Command::new("ip").args(args).stderr(Stdio::null()).status();
    }

    fn start(&mut self) {
        Self::ip(&["link", "add", Self::BRIDGE, "type", "bridge"]);
        Self::ip(&["addr", "replace", "10.213.77.1/24", "dev", Self::BRIDGE]);
        Self::ip(&["link", "set", Self::BRIDGE, "up"]);
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("dockerd.log"))
            .unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args(["-H", &self.socket()])
            .args([
                "--bridge",
                Self::BRIDGE,
                "--iptables=false",
                "--ip-masq=false",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("DRYDOCK_E2E is set but dockerd cannot be started");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.docker(&["info", "--format", "{{.ServerVersion}}"]).0 {
            assert!(
                Instant::now() < deadline,
                "private dockerd did not start:\n{}",
                std::fs::read_to_string(d.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM and wait: like `systemctl stop docker` without live-restore, every container
    /// of this engine stops.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn docker(&self, args: &[&str]) -> (bool, String) {
        let o = Command::new("docker")
            .args(["-H", &self.socket()])
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            for id in self
                .docker(&["ps", "-aq", "--filter", "label=drydock.managed=true"])
                .1
                .split_whitespace()
            {
                self.docker(&["rm", "-f", "-v", id]);
            }
            self.docker(&["network", "prune", "-f"]);
            self.docker(&["volume", "prune", "-f"]);
        }
        self.stop();
        Self::ip(&["link", "del", Self::BRIDGE]);
    }
}

#[tokio::test]
async fn dockerd_restart_is_survived() {
    if !e2e("dockerd_restart_is_survived") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let mut engine = PrivateDockerd {
        dir: tempfile::tempdir().unwrap(),
        child: None,
    };
    engine.start();
    // The instance image, copied into the private engine (~25 s for 560 MB).
    let copy = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker save {IMAGE} | docker -H {} load",
            engine.socket()
        ))
        .output()
        .unwrap();
    assert!(copy.status.success(), "{copy:?}");

    let dir = tempfile::tempdir().unwrap();
    let socket = engine.socket();
    let server = Server::start(
        dir.path(),
        &[
            ("DOCKER_HOST", &socket),
            ("DRYDOCK_PLAYGROUND_WARM_POOL", "0"),
        ],
    )
    .await;
    let (id, token) = server.create().await;
    server.wait_ready(&id, &token, SHORT).await;
    let mut t = server.terminal(&id, &token).await;
    t.type_line("echo UP-$((1+1))").await;
    t.expect("UP-2", SHORT).await;
    // Something in the nested engine's storage, to find again after the restart.
    t.type_line("docker volume create kept >/dev/null && echo VOL-$((2+1))")
        .await;
    t.expect("VOL-3", Duration::from_secs(30)).await;

    // The engine goes away: the server stays up, /healthz says why, the instance waits.
    engine.stop();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = reqwest::get(server.url("/healthz")).await.unwrap();
        let (status, v) = server.get(&id, &token).await;
        assert_eq!(status, 200, "the server answers while the engine is away");
        if r.status() == 503
            && v["instances"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("container engine is unavailable"))
        {
            let body: Value = r.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains("not reachable"),
                "{body}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "outage not reported: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // It comes back: the stopped instance is started again and usable; its volume (and so
    // the nested engine's data) survived.
    engine.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = server.get(&id, &token).await;
        if v["instances"][0]["state"] == "ready" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered: {v}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
    let mut t = server.terminal(&id, &token).await;
    t.type_line("docker volume ls -q | grep -c '^kept$' | sed 's/^/KEPT-/'")
        .await;
    t.expect("KEPT-1", Duration::from_secs(30)).await;
    server.delete(&id, &token).await;
}
