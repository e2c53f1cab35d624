//! Helpers for the end-to-end tests (`tests/e2e.rs`, `tests/proxy.rs`): the real `drydock`
//! binary against the real dockerd and the real instance image (`drydock/instance:latest`).
//!
//! Tests call [`e2e`] first: without `DRYDOCK_E2E` set they are skipped (loudly); with it set
//! (scripts/test does), a missing dockerd or image fails them. They run one at a time (hold
//! [`SERIAL`]): each server reconciles at start-up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use drydock_protocol::frame::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

pub const IMAGE: &str = "drydock/instance:latest";

pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn docker(args: &[&str]) -> (bool, String) {
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
pub fn e2e(test: &str) -> bool {
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
pub fn labelled(label: &str) -> (usize, usize, usize) {
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

pub fn remove_labelled(label: &str) {
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
pub struct Cleanup(pub Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in &self.0 {
            remove_labelled(&format!("drydock.session={id}"));
        }
    }
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    /// Spawns `drydock serve` on `bind:<free port>` with `dir` as its data dir and `env`,
    /// without waiting for it; `base` is always the loopback address of that port.
    pub fn spawn(dir: &Path, bind: &str, env: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind(format!("{bind}:0"))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("server-{port}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drydock"));
        cmd.args(["serve", "--listen", &format!("{bind}:{port}")])
            .arg("--data-dir")
            .arg(dir)
            .env("DRYDOCK_CREATE_PER_MINUTE", "1000")
            .env("RUST_LOG", "info,drydock=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server {
            child: cmd.spawn().expect("start drydock"),
            base: format!("http://127.0.0.1:{port}"),
            port,
            log,
        }
    }

    /// Spawns the server on loopback and waits until `/healthz` answers 200.
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut s = Server::spawn(dir, "127.0.0.1", env);
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

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; waits for the process to exit.
    pub async fn terminate(&mut self, within: Duration) {
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn create(&self) -> (String, String) {
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

    pub async fn get(&self, id: &str, token: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(self.url(&format!("/api/v1/sessions/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn wait_ready(&self, id: &str, token: &str, within: Duration) -> Value {
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

    pub async fn delete(&self, id: &str, token: &str) {
        let r = reqwest::Client::new()
            .delete(self.url(&format!("/api/v1/sessions/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
    }

    pub async fn terminal(&self, id: &str, token: &str) -> Term {
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

pub struct Term {
    pub ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Everything the terminal printed so far.
    pub screen: String,
    pub replay_done: bool,
}

impl Term {
    pub async fn send(&mut self, f: ClientFrame) {
        self.ws.send(Message::Binary(f.encode())).await.unwrap();
    }

    pub async fn type_line(&mut self, line: &str) {
        self.send(ClientFrame::Input(Bytes::from(format!("{line}\r"))))
            .await;
    }

    /// Reads until the output contains `needle` (after `from`), acknowledging output.
    pub async fn expect(&mut self, needle: &str, within: Duration) -> String {
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

    pub async fn frame(&mut self, b: &[u8]) {
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
    pub async fn replay(&mut self, within: Duration) -> String {
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
    pub async fn closed(&mut self, within: Duration) -> (u16, String) {
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

pub fn container_ip(id: &str) -> String {
    let (ok, out) = docker(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &format!("drydock-{id}-node1"),
    ]);
    assert!(ok, "{out}");
    out.trim().to_owned()
}

pub const SHORT: Duration = Duration::from_secs(20);
