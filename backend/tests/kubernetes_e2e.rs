//! End-to-end test of the `kubernetes` template: the real `drydock` binary, the real dockerd
//! and the k3s instance image. For each Kubernetes lesson (pods, deployments, services) in a
//! fresh session: every step's check fails at first; then, step by step, the step's
//! `sh run` commands (from en.md) run in the instance and its check passes. Checks run the
//! way the server runs them: their text through the agent's `/v1/exec`. The session's
//! ready time (k3s node Ready, default service account present) is printed.
//!
//! It runs only with `DRYDOCK_E2E` set and when `drydock/instance-k3s:latest` exists
//! (`sandbox/build` makes it only where it can get a k3s binary); otherwise it prints a
//! `SKIPPED: kubernetes e2e: <reason>` line and passes without testing anything.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::e2e::*;
use serde_json::{json, Value};

const K3S_IMAGE: &str = "drydock/instance-k3s:latest";
const LESSONS: [&str; 3] = ["pods", "deployments", "services"];
/// How long a step's check may take to pass after its commands (Pods starting, rollouts).
const CHECK_WITHIN: Duration = Duration::from_secs(120);

fn skipped(reason: &str) {
    use std::io::Write;
    // To stdout and stderr themselves, not through println!/eprintln!, which the test
    // harness captures (and hides for a passing test): the line shows in `cargo test` output.
    let line = format!("SKIPPED: kubernetes e2e: {reason}\n");
    let _ = std::io::stdout().write_all(line.as_bytes());
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Why the test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if std::env::var_os("DRYDOCK_E2E").is_none() {
        return Some(format!(
            "set DRYDOCK_E2E=1 to run it against the real dockerd and {K3S_IMAGE}"
        ));
    }
    let (ok, out) = docker(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(ok, "DRYDOCK_E2E is set but dockerd does not answer: {out}");
    let (ok, _) = docker(&["image", "inspect", "--format", "{{.Id}}", K3S_IMAGE]);
    if !ok {
        return Some(format!(
            "k3s is unavailable: the image {K3S_IMAGE} does not exist (k3s is not packaged by \
             Debian; sandbox/build makes the image from K3S_BINARY=/path/to/k3s or the pinned \
             release when it can download it — see its `k3s: unavailable (...)` line)"
        ));
    }
    None
}

fn lessons_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lessons")
}

/// The `sh run` blocks of a step's Markdown, in order.
fn runnable_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line == "```sh run" => current = Some(Vec::new()),
            None => {}
            Some(b) if line == "```" => {
                blocks.push(b.join("\n"));
                current = None;
            }
            Some(b) => b.push(line),
        }
    }
    blocks
}

/// The step folders of a lesson, in order.
fn steps(lesson: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lessons_dir().join(lesson).join("steps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The agent of a session's node1: address and secret, from its container.
struct Agent {
    url: String,
    secret: String,
    http: reqwest::Client,
}

impl Agent {
    fn of(session: &str) -> Agent {
        let (ok, env) = docker(&[
            "inspect",
            "--format",
            "{{range .Config.Env}}{{println .}}{{end}}",
            &format!("drydock-{session}-node1"),
        ]);
        assert!(ok, "{env}");
        let secret = env
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{}=", drydock_protocol::agent::SECRET_ENV)))
            .expect("the agent secret in the container's environment")
            .to_owned();
        Agent {
            url: format!("http://{}:4200", container_ip(session)),
            secret,
            http: reqwest::Client::new(),
        }
    }

    /// Runs `script` like the server runs a check; (passed, output).
    async fn exec(&self, script: &str, timeout: Duration) -> (bool, String) {
        let r = self
            .http
            .post(format!("{}/v1/exec", self.url))
            .bearer_auth(&self.secret)
            .json(&json!({"script": script, "timeout_ms": timeout.as_millis() as u64}))
            .timeout(timeout + Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        (
            v["exit_code"] == 0,
            v["output"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

async fn create(server: &Server, lesson: &str) -> (String, String) {
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/sessions"))
        .json(&json!({"template": "kubernetes", "lesson": lesson, "lang": "en"}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "create: {v}\n{}", server.log_text());
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn kubernetes_lessons_fail_fresh_and_pass_after_their_commands() {
    if let Some(reason) = unavailable() {
        skipped(&reason);
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;

    let templates: Value = reqwest::get(server.url("/api/v1/templates"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        templates[1],
        json!({"id": "kubernetes", "available": true, "reason": null}),
        "{templates}"
    );

    for lesson in LESSONS {
        let t0 = Instant::now();
        let (id, token) = create(&server, lesson).await;
        let _cleanup = Cleanup(vec![id.clone()]);
        server
            .wait_ready(&id, &token, Duration::from_secs(300))
            .await;
        println!(
            "kubernetes session for {lesson} ready after {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let agent = Agent::of(&id);
        let steps = steps(lesson);
        assert!(!steps.is_empty(), "lesson {lesson} has no steps");

        for step in &steps {
            let check = std::fs::read_to_string(step.join("check.sh")).unwrap();
            let (passed, out) = agent.exec(&check, Duration::from_secs(10)).await;
            assert!(
                !passed,
                "{lesson}/{step:?} passed in a fresh session:\n{out}"
            );
        }
        for step in &steps {
            let name = step.file_name().unwrap().to_string_lossy().into_owned();
            let md = std::fs::read_to_string(step.join("en.md")).unwrap();
            for cmd in runnable_blocks(&md) {
                let (ok, out) = agent.exec(&cmd, Duration::from_secs(240)).await;
                assert!(ok, "{lesson}/{name}: `{cmd}` failed:\n{out}");
            }
            let check = std::fs::read_to_string(step.join("check.sh")).unwrap();
            let started = Instant::now();
            loop {
                let (passed, out) = agent.exec(&check, Duration::from_secs(10)).await;
                if passed {
                    println!("ok {lesson}/{name}: {}", out.lines().next().unwrap_or(""));
                    break;
                }
                assert!(
                    started.elapsed() < CHECK_WITHIN,
                    "{lesson}/{name}: check still fails {CHECK_WITHIN:?} after its commands:\n{out}"
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        server.delete(&id, &token).await;
    }
}

#[test]
fn runnable_blocks_are_read_from_markdown() {
    let md = "# T\n\n```sh run\nkubectl get pods\n```\n\n```sh\nnot runnable\n```\n\n\
              ```sh run\nkubectl apply -f - <<'EOF'\nkind: Pod\nEOF\n```\n";
    assert_eq!(
        runnable_blocks(md),
        [
            "kubectl get pods",
            "kubectl apply -f - <<'EOF'\nkind: Pod\nEOF"
        ]
    );
    for lesson in LESSONS {
        for step in steps(lesson) {
            let md = std::fs::read_to_string(step.join("en.md")).unwrap();
            assert!(
                !runnable_blocks(&md).is_empty(),
                "{step:?} has no runnable command"
            );
            assert!(step.join("check.sh").is_file(), "{step:?} has no check");
        }
    }
}
