//! The agent's HTTP API against the real binary: auth, health, exec, files, ports, stats.

mod common;

use std::time::Duration;

use common::Agent;
use drydock_protocol::agent::{EngineState, ExecResult, Health, ListeningPort, Stats};
use serde_json::json;

#[tokio::test]
async fn everything_needs_the_secret() {
    let agent = Agent::start();
    let client = agent.http();
    for path in [
        "/v1/health",
        "/v1/terminals",
        "/v1/ports",
        "/v1/stats",
        "/nope",
        "/",
    ] {
        let r = client.get(agent.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a secret");
        assert!(r.bytes().await.unwrap().is_empty());
        let r = client
            .get(agent.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong secret");
        let r = client
            .get(agent.url(path))
            .header("authorization", &agent.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} without Bearer");
    }
    let r = client
        .post(agent.url("/v1/exec"))
        .json(&json!({"script": "true"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = agent.get("/nope").send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("/nope"));
}

#[test]
fn refuses_to_start_without_a_secret() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drydock-agent"))
        .env_remove("DRYDOCK_AGENT_SECRET")
        .env("DRYDOCK_AGENT_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DRYDOCK_AGENT_SECRET"));
}

#[tokio::test]
async fn health_without_engines_is_ready() {
    let agent = Agent::start();
    let h: Health = agent
        .get("/v1/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(h.ready);
    assert_eq!(h.dockerd.state, EngineState::Absent);
    assert_eq!(h.k3s.state, EngineState::Absent);
    assert_eq!(h.terminals, 0);
}

#[tokio::test]
async fn a_dying_dockerd_is_failed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("dockerd");
    let log = dir.path().join("dockerd.log");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"fake dockerd $*\"\nenv | grep -c DRYDOCK_AGENT_SECRET\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let agent = Agent::start_with(&[
        ("DRYDOCK_DOCKERD", "1"),
        ("DRYDOCK_DOCKERD_BIN", fake.to_str().unwrap()),
        ("DRYDOCK_DOCKERD_LOG", log.to_str().unwrap()),
        (
            "DRYDOCK_DOCKERD_SOCKET",
            dir.path().join("docker.sock").to_str().unwrap(),
        ),
        ("DRYDOCK_REGISTRY_MIRROR", "http://10.0.0.1:5000"),
        ("DRYDOCK_INSECURE_REGISTRIES", "10.0.0.1:5000,reg:5001"),
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let h = loop {
        let h: Health = agent
            .get("/v1/health")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if h.dockerd.restarts >= 1 && h.dockerd.state == EngineState::Failed {
            break h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never failed/restarted: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!h.ready);
    assert!(h.dockerd.message.unwrap().contains("exit status 3"));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("--shutdown-timeout 3"), "{logged}");
    assert!(
        logged.contains("--registry-mirror http://10.0.0.1:5000"),
        "{logged}"
    );
    assert!(
        logged.contains("--insecure-registry 10.0.0.1:5000 --insecure-registry reg:5001"),
        "{logged}"
    );
    assert!(
        logged.contains("\n0\n"),
        "the secret reached dockerd: {logged}"
    );
}

#[tokio::test]
async fn a_missing_configured_dockerd_is_failed_not_absent() {
    let agent = Agent::start_with(&[
        ("DRYDOCK_DOCKERD", "1"),
        ("DRYDOCK_DOCKERD_BIN", "/nonexistent/dockerd"),
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let h: Health = agent
            .get("/v1/health")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if h.dockerd.state == EngineState::Failed {
            assert!(!h.ready);
            assert!(h.dockerd.message.unwrap().contains("/nonexistent/dockerd"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never failed: {h:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_dockerd_answering_ping_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let fake = write_fake_dockerd(dir.path(), PING_ON_HOST, "0");
    let agent = start_with_fake_dockerd(dir.path(), &fake, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let h: Health = agent
            .get("/v1/health")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if h.ready {
            assert_eq!(h.dockerd.state, EngineState::Ready);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {h:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exec(agent: &Agent, body: serde_json::Value) -> ExecResult {
    let r = agent.post("/v1/exec").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn exec_reports_output_status_timeout_and_truncation() {
    let agent = Agent::start();
    let r = exec(&agent, json!({"script": "echo out; echo err >&2; exit 3"})).await;
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.signal, None);
    assert!(
        r.output.contains("out\n") && r.output.contains("err\n"),
        "{r:?}"
    );
    assert!(!r.truncated && !r.timed_out);

    let r = exec(&agent, json!({"script": "echo 你好; pwd"})).await;
    assert_eq!(r.exit_code, Some(0));
    assert!(r.output.starts_with("你好\n"));
    assert!(r.output.contains(&agent.home.path().display().to_string()));

    let r = exec(&agent, json!({"script": "kill -9 $$"})).await;
    assert_eq!(r.exit_code, None);
    assert_eq!(r.signal, Some(9));

    let started = std::time::Instant::now();
    let r = exec(
        &agent,
        json!({"script": "sleep 30 & echo started; sleep 30", "timeout_ms": 500}),
    )
    .await;
    assert!(r.timed_out, "{r:?}");
    assert_eq!(r.signal, Some(9));
    assert!(r.output.contains("started"));
    assert!(started.elapsed() < Duration::from_secs(5));

    let r = exec(&agent, json!({"script": "head -c 300000 /dev/zero | tr '\\0' x; echo; echo done >&2", "max_output": 1000})).await;
    assert!(r.truncated);
    assert_eq!(r.output.len(), 1000);
    assert_eq!(r.exit_code, Some(0));

    // Background children holding the pipe do not hold the answer.
    let started = std::time::Instant::now();
    let r = exec(&agent, json!({"script": "sleep 3 & echo quick"})).await;
    assert_eq!(r.exit_code, Some(0));
    assert!(r.output.contains("quick"));
    assert!(started.elapsed() < Duration::from_secs(5));

    let r = agent
        .post("/v1/exec")
        .json(&json!({"nope": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("script"), "{body}");
}

#[tokio::test]
async fn exec_does_not_see_the_secret() {
    let agent = Agent::start();
    let r = exec(
        &agent,
        json!({"script": format!("env | grep -c -e SECRET -e {}", agent.secret)}),
    )
    .await;
    assert_eq!(r.output.trim(), "0", "{r:?}");
    let r = exec(&agent, json!({"script": "echo $TERM $LANG $HOME"})).await;
    assert_eq!(
        r.output.trim(),
        format!("xterm-256color C.UTF-8 {}", agent.home.path().display())
    );
}

#[tokio::test]
async fn files_round_trip_and_escapes_are_rejected() {
    let agent = Agent::start_with(&[("DRYDOCK_AGENT_MAX_FILE", "100000")]);
    let home = agent.home.path().display().to_string();
    let path = format!("{home}/app/sub/Dockerfile");
    let content = "FROM debian\nRUN echo 你好\n".repeat(100);
    let r = agent
        .put(&format!("/v1/files?path={path}"))
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = agent
        .get(&format!("/v1/files?path={path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), content);
    // Overwrite.
    let r = agent
        .put(&format!("/v1/files?path={path}"))
        .body("v2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "v2");

    std::os::unix::fs::symlink("/etc", agent.home.path().join("etc")).unwrap();
    for (bad, status) in [
        (format!("{home}/../etc/passwd"), 400),
        ("relative/file".to_string(), 400),
        ("/etc/passwd".to_string(), 400),
        (format!("{home}/etc/passwd"), 400),
        (format!("{home}/missing.txt"), 404),
        (format!("{home}/app"), 400),
    ] {
        let r = agent
            .get(&format!("/v1/files?path={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "GET {bad}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
    for bad in [
        format!("{home}/../x"),
        format!("{home}/etc/evil"),
        "/tmp/evil".to_string(),
    ] {
        let r = agent
            .put(&format!("/v1/files?path={bad}"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "PUT {bad}");
    }
    assert!(!std::path::Path::new("/etc/evil").exists());
    let r = agent.get("/v1/files").send().await.unwrap();
    assert_eq!(r.status(), 400);

    // Size limits, both ways.
    let big = vec![b'x'; 100_001];
    let r = agent
        .put(&format!("/v1/files?path={home}/big"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(!agent.home.path().join("big").exists());
    // Streamed (chunked, no Content-Length): cut off while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(10_000).map(|c| Ok(c.to_vec())).collect();
    let r = agent
        .put(&format!("/v1/files?path={home}/big"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(!agent.home.path().join("big").exists());
    std::fs::write(agent.home.path().join("big"), &big).unwrap();
    let r = agent
        .get(&format!("/v1/files?path={home}/big"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(agent.home.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("drydock-upload"))
        .collect();
    assert!(leftovers.is_empty());
}

#[tokio::test]
async fn ports_lists_a_listener_but_not_the_agent() {
    let agent = Agent::start();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let agent_port: u16 = agent.addr.rsplit(':').next().unwrap().parse().unwrap();
    let ports: Vec<ListeningPort> = agent
        .get("/v1/ports")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        ports.contains(&ListeningPort { port }),
        "{port} not in {ports:?}"
    );
    assert!(!ports.contains(&ListeningPort { port: agent_port }));
    let mut sorted = ports.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ports);
}

#[tokio::test]
async fn stats_answer() {
    let agent = Agent::start();
    let s: Stats = agent
        .get("/v1/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(s.disks.iter().any(|d| d.path == "/" && d.total_bytes > 0));
    let s2: Stats = agent
        .get("/v1/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(s2.uptime_ms >= s.uptime_ms);
}

/// A stand-in for dockerd: binds the unix socket given by `--host unix://…` after `{delay}`
/// seconds and answers `GET /_ping` on it.
const PING_ON_HOST: &str = r#"#!/usr/bin/env python3
import socket, sys, time
path = sys.argv[sys.argv.index("--host") + 1][len("unix://"):]
time.sleep({delay})
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(8)
while True:
    c, _ = s.accept(); c.recv(4096)
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK"); c.close()
"#;

/// A stand-in for dockerd started with `--host fd://`: checks systemd's socket-activation
/// variables, then answers `GET /_ping` on fd 3 (after `{delay}` seconds).
const PING_ON_FD3: &str = r#"#!/usr/bin/env python3
import os, socket, sys, time
print("args", " ".join(sys.argv[1:]), flush=True)
assert os.environ.get("LISTEN_FDS") == "1", os.environ.get("LISTEN_FDS")
assert os.environ.get("LISTEN_PID") == str(os.getpid()), (os.environ.get("LISTEN_PID"), os.getpid())
time.sleep({delay})
s = socket.socket(fileno=3)
print("serving on", s.getsockname(), flush=True)
while True:
    c, _ = s.accept(); c.recv(4096)
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK"); c.close()
"#;

/// Writes `script` (with `{delay}` filled in) as an executable `dir/dockerd`.
fn write_fake_dockerd(dir: &std::path::Path, script: &str, delay: &str) -> std::path::PathBuf {
    let fake = dir.join("dockerd");
    std::fs::write(&fake, script.replace("{delay}", delay)).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fake
}

/// Starts the agent supervising `fake` as dockerd, with its socket at `dir/docker.sock`, its
/// log at `dir/dockerd.log` and python3 on the PATH, plus `extra` settings.
fn start_with_fake_dockerd(
    dir: &std::path::Path,
    fake: &std::path::Path,
    extra: &[(&str, &str)],
) -> Agent {
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        std::env::var("PATH").unwrap_or_default()
    );
    let sock = dir.join("docker.sock");
    let log = dir.join("dockerd.log");
    let mut env = vec![
        ("DRYDOCK_DOCKERD", "1"),
        ("DRYDOCK_DOCKERD_BIN", fake.to_str().unwrap()),
        ("DRYDOCK_DOCKERD_LOG", log.to_str().unwrap()),
        ("DRYDOCK_DOCKERD_SOCKET", sock.to_str().unwrap()),
        ("PATH", &path),
    ];
    env.extend_from_slice(extra);
    Agent::start_with(&env)
}

async fn health(agent: &Agent, query: &str) -> Health {
    let r = agent
        .get(&format!("/v1/health{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "/v1/health{query}");
    r.json().await.unwrap()
}

/// Sends `GET /_ping` to a unix socket and returns the raw answer.
async fn ping(sock: &std::path::Path) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(sock).await.unwrap();
    s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the on-demand dockerd answered within 10 s")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn an_on_demand_dockerd_starts_at_the_first_connection_to_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    let log = dir.path().join("dockerd.log");
    let fake = write_fake_dockerd(dir.path(), PING_ON_FD3, "0.3");
    let agent = start_with_fake_dockerd(dir.path(), &fake, &[("DRYDOCK_DOCKERD_ON_DEMAND", "1")]);
    // Ready at once, with nothing started.
    let h = health(&agent, "").await;
    assert!(h.ready, "{h:?}");
    assert_eq!(h.dockerd.state, EngineState::Standby);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!log.exists(), "dockerd started before anyone used it");
    assert!(sock.exists(), "the agent holds the socket");

    // The first connection waits in the socket's backlog until dockerd answers it.
    let started = std::time::Instant::now();
    let answer = ping(&sock).await;
    assert!(answer.ends_with("OK"), "{answer:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("--host fd://"), "{logged}");
    assert!(logged.contains("serving on"), "{logged}");
    let h = health(&agent, "?wait_ms=5000").await;
    assert!(h.ready);
    assert_eq!(h.dockerd.state, EngineState::Ready, "{h:?}");
    assert_eq!(h.dockerd.restarts, 0);
    // The same dockerd keeps serving: the socket it inherited is a plain blocking one.
    for _ in 0..3 {
        assert!(ping(&sock).await.ends_with("OK"));
    }
    let h = health(&agent, "").await;
    assert_eq!(
        (h.dockerd.state, h.dockerd.restarts),
        (EngineState::Ready, 0),
        "{h:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[tokio::test]
async fn health_can_wait_for_ready() {
    let dir = tempfile::tempdir().unwrap();
    // Becomes ready after ~1 s: binds the socket given by --host then.
    let fake = write_fake_dockerd(dir.path(), PING_ON_HOST, "1");
    let agent = start_with_fake_dockerd(dir.path(), &fake, &[]);
    let h = health(&agent, "?wait_ms=0").await;
    assert!(!h.ready, "{h:?}");
    assert_eq!(h.dockerd.state, EngineState::Starting);
    // A short wait answers not ready, after about the wait.
    let asked = std::time::Instant::now();
    let h = health(&agent, "?wait_ms=200").await;
    let took = asked.elapsed();
    assert!(!h.ready, "{h:?}");
    assert!(took >= Duration::from_millis(190), "{took:?}");
    // A long one answers as soon as dockerd does (polls every 20 ms), well before the wait.
    let asked = std::time::Instant::now();
    let h = health(&agent, "?wait_ms=10000").await;
    let took = asked.elapsed();
    assert!(h.ready, "{h:?}");
    assert_eq!(h.dockerd.state, EngineState::Ready);
    assert!(took < Duration::from_secs(5), "{took:?}");
    for bad in ["?wait_ms=10001", "?wait_ms=soon", "?wait_ms=-1"] {
        let r = agent.get(&format!("/v1/health{bad}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("wait_ms"),
            "{body}"
        );
    }
}
