//! End-to-end tests: the real `drydock` binary against the real dockerd and the real
//! instance image (`drydock/instance:latest`).
//!
//! Without `DRYDOCK_E2E` set they are skipped (loudly); with it set (scripts/test does), a
//! missing dockerd or image fails them. They run one at a time: each server reconciles at
//! start-up and would remove the others' containers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use drydock_protocol::frame::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const IMAGE: &str = "drydock/instance:latest";

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn docker(args: &[&str]) -> (bool, String) {
    match Command::new("docker").args(args).output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, format!("cannot run docker: {e}")),
    }
}

/// Whether to run; panics when asked to run but dockerd or the image is missing.
fn e2e(test: &str) -> bool {
    if std::env::var_os("DRYDOCK_E2E").is_none() {
        eprintln!(
            "SKIPPED: {test}: set DRYDOCK_E2E=1 to run it against the real dockerd and {IMAGE}"
        );
        return false;
    }
    let (ok, out) = docker(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(ok, "DRYDOCK_E2E is set but dockerd does not answer: {out}");
    let (ok, out) = docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
    assert!(
        ok,
        "DRYDOCK_E2E is set but {IMAGE} is missing (run sandbox/build): {out}"
    );
    true
}

/// (containers, volumes, networks) carrying `label`.
fn labelled(label: &str) -> (usize, usize, usize) {
    let count = |args: &[&str]| {
        let (ok, out) = docker(args);
        assert!(ok, "docker {args:?}: {out}");
        out.lines().filter(|l| !l.trim().is_empty()).count()
    };
    let f = format!("label={label}");
    (
        count(&["ps", "-aq", "--filter", &f]),
        count(&["volume", "ls", "-q", "--filter", &f]),
        count(&["network", "ls", "-q", "--filter", &f]),
    )
}

fn remove_labelled(label: &str) {
    let f = format!("label={label}");
    for (list, rm) in [
        (vec!["ps", "-aq", "--filter", &f], vec!["rm", "-f", "-v"]),
        (
            vec!["volume", "ls", "-q", "--filter", &f],
            vec!["volume", "rm", "-f"],
        ),
        (
            vec!["network", "ls", "-q", "--filter", &f],
            vec!["network", "rm"],
        ),
    ] {
        let (_, out) = docker(&list);
        for id in out.split_whitespace() {
            let mut args = rm.clone();
            args.push(id);
            docker(&args);
        }
    }
}

/// Removes whatever a session left behind if a test fails half-way.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in &self.0 {
            remove_labelled(&format!("drydock.session={id}"));
        }
    }
}

struct Server {
    child: Child,
    base: String,
    port: u16,
    log: PathBuf,
}

impl Server {
    async fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("server-{port}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drydock"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir)
            .env("DRYDOCK_CREATE_PER_MINUTE", "1000")
            .env("RUST_LOG", "info,drydock=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start drydock");
        let mut s = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("drydock exited with {status}:\n{}", s.log_text());
            }
            if let Ok(r) = reqwest::get(format!("{}/healthz", s.base)).await {
                assert_eq!(
                    r.status(),
                    200,
                    "healthz: {}",
                    r.text().await.unwrap_or_default()
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "drydock did not come up:\n{}",
                s.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; waits for the process to exit.
    async fn terminate(&mut self, within: Duration) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + within;
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "drydock did not exit on SIGTERM:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn create(&self) -> (String, String) {
        let r = reqwest::Client::new()
            .post(self.url("/api/v1/sessions"))
            .json(&serde_json::json!({"template": "docker", "lang": "en"}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "create: {v}\n{}", self.log_text());
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    async fn get(&self, id: &str, token: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(self.url(&format!("/api/v1/sessions/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn wait_ready(&self, id: &str, token: &str, within: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            let (status, v) = self.get(id, token).await;
            assert_eq!(status, 200, "{v}");
            match v["instances"][0]["state"].as_str() {
                Some("ready") => {
                    eprintln!("session {id} ready after {:?}", t0.elapsed());
                    return v;
                }
                Some("failed") => panic!("instance failed: {v}\n{}", self.log_text()),
                _ => {}
            }
            assert!(
                t0.elapsed() < within,
                "not ready within {within:?}: {v}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn delete(&self, id: &str, token: &str) {
        let r = reqwest::Client::new()
            .delete(self.url(&format!("/api/v1/sessions/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
    }

    async fn terminal(&self, id: &str, token: &str) -> Term {
        let url = format!(
            "ws://127.0.0.1:{}/api/v1/sessions/{id}/instances/node1/terminals/main?token={token}",
            self.port
        );
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("terminal: {e}\n{}", self.log_text()));
        Term {
            ws,
            screen: String::new(),
            replay_done: false,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Term {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Everything the terminal printed so far.
    screen: String,
    replay_done: bool,
}

impl Term {
    async fn send(&mut self, f: ClientFrame) {
        self.ws.send(Message::Binary(f.encode())).await.unwrap();
    }

    async fn type_line(&mut self, line: &str) {
        self.send(ClientFrame::Input(Bytes::from(format!("{line}\r"))))
            .await;
    }

    /// Reads until the output contains `needle` (after `from`), acknowledging output.
    async fn expect(&mut self, needle: &str, within: Duration) -> String {
        let from = self.screen.len();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(i) = self.screen[from..].find(needle) {
                return self.screen[from..from + i + needle.len()].to_owned();
            }
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("no {needle:?} within {within:?}; screen:\n{}", self.screen)
                });
            match msg {
                Some(Ok(Message::Binary(b))) => self.frame(&b).await,
                Some(Ok(Message::Close(f))) => {
                    panic!("closed ({f:?}) waiting for {needle:?}:\n{}", self.screen)
                }
                Some(Ok(_)) => {}
                other => panic!(
                    "terminal ended ({other:?}) waiting for {needle:?}:\n{}",
                    self.screen
                ),
            }
        }
    }

    async fn frame(&mut self, b: &[u8]) {
        match ServerFrame::decode(b).unwrap() {
            ServerFrame::Output(o) => {
                self.screen.push_str(&String::from_utf8_lossy(&o));
                // Best effort: the server may be closing the connection.
                let ack = ClientFrame::Ack(o.len() as u32).encode();
                let _ = self.ws.send(Message::Binary(ack)).await;
            }
            ServerFrame::ReplayEnd => self.replay_done = true,
            _ => {}
        }
    }

    /// Reads until the end of the scrollback replay; returns what was replayed.
    async fn replay(&mut self, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        while !self.replay_done {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => self.frame(&b).await,
                Ok(Some(Ok(_))) => {}
                other => panic!("no end of replay: {other:?}\n{}", self.screen),
            }
        }
        self.screen.clone()
    }

    /// Waits for the server's close frame; returns (code, reason).
    async fn closed(&mut self, within: Duration) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("no close frame within {within:?}"),
                Ok(Some(Ok(Message::Close(Some(f))))) => {
                    return (f.code.into(), f.reason.to_string())
                }
                Ok(Some(Ok(Message::Close(None)))) => panic!("close frame without a reason"),
                Ok(Some(Ok(Message::Binary(b)))) => self.frame(&b).await,
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("connection ended without a close frame: {other:?}"),
            }
        }
    }
}

fn container_ip(id: &str) -> String {
    let (ok, out) = docker(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &format!("drydock-{id}-node1"),
    ]);
    assert!(ok, "{out}");
    out.trim().to_owned()
}

const SHORT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn session_terminal_and_delete() {
    if !e2e("session_terminal_and_delete") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let (id, token) = server.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    server.wait_ready(&id, &token, SHORT).await;

    let mut t = server.terminal(&id, &token).await;
    t.send(ClientFrame::Resize {
        cols: 100,
        rows: 30,
    })
    .await;
    t.type_line("echo $((6*7))").await;
    t.expect("42\r\n", SHORT).await;
    t.type_line("docker info --format '{{.ServerVersion}}' >/dev/null && echo DOCKER-$((1+1))-OK")
        .await;
    t.expect("DOCKER-2-OK", Duration::from_secs(30)).await;
    t.type_line("stty size").await;
    t.expect("30 100", SHORT).await;

    let ports = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/sessions/{id}/instances/node1/ports")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ports.status(), 200);
    assert!(ports.json::<Value>().await.unwrap().is_array());

    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("drydock_terminals_open 1"), "{metrics}");
    assert!(
        metrics.contains("drydock_instance_start_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("drydock_relay_bytes_total{direction=\"to_browser\"} 0\n"),
        "{metrics}"
    );

    server.delete(&id, &token).await;
    let (code, reason) = t.closed(Duration::from_secs(5)).await;
    assert_eq!((code, reason.as_str()), (4000, "session closed"));
    assert_eq!(labelled(&format!("drydock.session={id}")), (0, 0, 0));
    assert_eq!(server.get(&id, &token).await.0, 404);
}

#[tokio::test]
async fn sessions_are_isolated_from_each_other() {
    if !e2e("sessions_are_isolated_from_each_other") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let (a, ta) = server.create().await;
    let (b, tb) = server.create().await;
    let _cleanup = Cleanup(vec![a.clone(), b.clone()]);
    server.wait_ready(&a, &ta, SHORT).await;
    server.wait_ready(&b, &tb, SHORT).await;
    let (ip_a, ip_b) = (container_ip(&a), container_ip(&b));
    assert_ne!(ip_a, ip_b);

    let mut t = server.terminal(&a, &ta).await;
    // Its own engine: none of the host's (or session B's) containers.
    t.type_line("echo PS-$(docker ps -aq | wc -l)-END").await;
    t.expect("PS-0-END", Duration::from_secs(30)).await;
    // Its own agent port answers; session B's instance is unreachable.
    t.type_line(&format!(
        "timeout 3 bash -c '</dev/tcp/{ip_a}/4200' 2>/dev/null && echo SELF-$((1))-YES || echo SELF-$((0))-NO"
    ))
    .await;
    t.expect("SELF-1-YES", SHORT).await;
    t.type_line(&format!(
        "timeout 3 bash -c '</dev/tcp/{ip_b}/4200' 2>/dev/null && echo OTHER-$((1))-YES || echo OTHER-$((0))-NO"
    ))
    .await;
    let out = t.expect("-NO", SHORT).await;
    assert!(!out.contains("OTHER-1-YES"), "{out}");

    server.delete(&a, &ta).await;
    server.delete(&b, &tb).await;
    for id in [&a, &b] {
        assert_eq!(labelled(&format!("drydock.session={id}")), (0, 0, 0));
    }
}

#[tokio::test]
async fn expiry_closes_terminals_and_removes_everything() {
    if !e2e("expiry_closes_terminals_and_removes_everything") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("DRYDOCK_SESSION_SECONDS", "12")]).await;
    let (id, token) = server.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    let v = server.wait_ready(&id, &token, SHORT).await;
    let expires = chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    let mut t = server.terminal(&id, &token).await;
    t.type_line("echo $((6*7))").await;
    t.expect("42\r\n", SHORT).await;

    let (code, reason) = t.closed(Duration::from_secs(25)).await;
    let late = chrono::Utc::now().signed_duration_since(expires);
    assert_eq!((code, reason.as_str()), (4000, "session expired"));
    assert!(late.num_seconds() < 5, "closed {late} after expires_at");
    let deadline = Instant::now() + Duration::from_secs(10);
    while labelled(&format!("drydock.session={id}")) != (0, 0, 0) {
        assert!(
            Instant::now() < deadline,
            "resources left: {:?}",
            labelled(&format!("drydock.session={id}"))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.get(&id, &token).await.0, 404);
}

#[tokio::test]
async fn restart_adopts_sessions_and_replays_the_screen() {
    if !e2e("restart_adopts_sessions_and_replays_the_screen") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::start(dir.path(), &[]).await;
    let (id, token) = first.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    first.wait_ready(&id, &token, SHORT).await;
    let mut t = first.terminal(&id, &token).await;
    t.type_line("echo MARK-$((40+2))").await;
    t.expect("MARK-42", SHORT).await;
    drop(t);
    first.kill9();

    let second = Server::start(dir.path(), &[]).await;
    let (status, v) = second.get(&id, &token).await;
    assert_eq!(status, 200, "{v}\n{}", second.log_text());
    assert_eq!(v["instances"][0]["state"], "ready", "{v}");
    let mut t = second.terminal(&id, &token).await;
    let replay = t.replay(SHORT).await;
    assert!(replay.contains("MARK-42"), "replay:\n{replay}");
    t.type_line("echo AGAIN-$((1+1))").await;
    t.expect("AGAIN-2", SHORT).await;

    // A graceful stop closes terminals and leaves the session running for the next start.
    let mut second = second;
    second.terminate(Duration::from_secs(10)).await;
    let (code, reason) = t.closed(Duration::from_secs(1)).await;
    assert_eq!((code, reason.as_str()), (1001, "server restarting"));
    assert_eq!(labelled(&format!("drydock.session={id}")), (1, 1, 1));
    let third = Server::start(dir.path(), &[]).await;
    let (status, v) = third.get(&id, &token).await;
    assert_eq!(status, 200, "{v}");

    third.delete(&id, &token).await;
    assert_eq!(labelled(&format!("drydock.session={id}")), (0, 0, 0));
}

#[tokio::test]
async fn orphans_go_at_startup_and_bad_input_changes_nothing() {
    if !e2e("orphans_go_at_startup_and_bad_input_changes_nothing") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let orphan = "0000000000000e2e";
    let labels = [
        "--label",
        "drydock.managed=true",
        "--label",
        &format!("drydock.session={orphan}"),
    ]
    .map(String::from);
    let label_args: Vec<&str> = labels.iter().map(String::as_str).collect();
    let net = format!("drydock-{orphan}");
    let mut args = vec!["network", "create"];
    args.extend(&label_args);
    args.push(&net);
    assert!(docker(&args).0);
    let vol = format!("drydock-{orphan}-node1-docker");
    let mut args = vec!["volume", "create", "--label", "drydock.instance=node1"];
    args.extend(&label_args);
    args.push(&vol);
    assert!(docker(&args).0);
    let name = format!("drydock-{orphan}-node1");
    let mut args = vec![
        "create",
        "--name",
        &name,
        "--label",
        "drydock.instance=node1",
    ];
    args.extend(&label_args);
    args.extend(["--entrypoint", "sleep", IMAGE, "600"]);
    let (ok, out) = docker(&args);
    assert!(ok, "{out}");
    let _cleanup = Cleanup(vec![orphan.to_owned()]);
    assert_eq!(labelled(&format!("drydock.session={orphan}")), (1, 1, 1));

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    assert_eq!(
        labelled(&format!("drydock.session={orphan}")),
        (0, 0, 0),
        "{}",
        server.log_text()
    );

    let (id, token) = server.create().await;
    let _cleanup2 = Cleanup(vec![id.clone()]);
    server.wait_ready(&id, &token, SHORT).await;
    let before = labelled("drydock.managed=true");
    let http = reqwest::Client::new();

    let unknown = http
        .get(server.url("/api/v1/sessions/0123456789abcdef"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let unknown = unknown.text().await.unwrap();
    let wrong = http
        .delete(server.url(&format!("/api/v1/sessions/{id}")))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    assert_eq!(wrong.text().await.unwrap(), unknown);

    for (body, want) in [
        (r#"{"template":"#, "invalid JSON"),
        (r#"{"template":"docker-compose"}"#, "unknown template"),
        (r#"{"template":"kubernetes"}"#, "not available yet"),
    ] {
        let r = http
            .post(server.url("/api/v1/sessions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().contains(want), "{e}");
    }

    let mut req = format!(
        "ws://127.0.0.1:{}/api/v1/sessions/{id}/instances/node1/terminals/main?token={token}",
        server.port
    )
    .into_client_request()
    .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("foreign origin was not refused: {:?}", other.map(|_| ())),
    }

    assert_eq!(
        labelled("drydock.managed=true"),
        before,
        "bad input changed nothing"
    );
    assert_eq!(server.get(&id, &token).await.0, 200);
    server.delete(&id, &token).await;
    assert_eq!(labelled(&format!("drydock.session={id}")), (0, 0, 0));
}
