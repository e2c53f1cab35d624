//! Acceptance test of the lesson engine: the real `drydock` binary, the real dockerd, the
//! instance image and the registry mirror (127.0.0.1:5000, seeded by `sandbox/build --only
//! lessons`). For each of the lessons `whalesay` and `dockerfile`, in a session of that lesson:
//! every step's check fails on the fresh session (through the HTTP check endpoint); then, step
//! by step, the step's runnable commands are typed verbatim over the terminal WebSocket (`vi
//! Dockerfile` with the keystrokes a learner makes), what the book shows is on the screen, and
//! the step's check passes; the session's progress lists every step passed.
//!
//! Skipped without `DRYDOCK_E2E` (prints `SKIPPED: ...`); with it, a missing dockerd, image
//! or registry mirror fails the test.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::e2e::{e2e, Cleanup, Server, Term, SERIAL};
use drydock_protocol::frame::ClientFrame;
use serde_json::{json, Value};

/// The end of the instance shell's prompt (`...\[\e[0m\]\$ ` as root).
const PROMPT: &str = "\u{1b}[0m# ";
const MIRROR: &str = "http://127.0.0.1:5000";

/// Fails (with what to do) unless the registry mirror serves docker/whalesay:latest.
async fn require_mirror() {
    let url = format!("{MIRROR}/v2/docker/whalesay/tags/list");
    let body = match reqwest::get(&url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => panic!(
            "DRYDOCK_E2E is set but the registry mirror does not answer at {url}: {e}\n\
             start it (scripts/lib/host.sh ensure_registry) and seed it (sandbox/build --only lessons)"
        ),
    };
    assert!(
        body.contains("\"latest\""),
        "the registry mirror has no docker/whalesay:latest ({body}): run sandbox/build --only lessons"
    );
}

struct Lesson {
    steps: Vec<Value>,
}

async fn lesson(server: &Server, id: &str) -> Lesson {
    let r = reqwest::get(server.url(&format!("/api/v1/lessons/{id}?lang=en")))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    Lesson {
        steps: v["steps"].as_array().unwrap().clone(),
    }
}

impl Lesson {
    fn commands(&self, step: usize) -> Vec<String> {
        self.steps[step]["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    }
}

async fn create(server: &Server, lesson: &str) -> (String, String) {
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/sessions"))
        .json(&json!({"template": "docker", "lesson": lesson, "lang": "en"}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "create: {v}\n{}", server.log_text());
    assert_eq!(v["lesson"], lesson);
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

async fn check(server: &Server, id: &str, token: &str, step: usize) -> Value {
    let t0 = Instant::now();
    let r = reqwest::Client::new()
        .post(server.url(&format!("/api/v1/sessions/{id}/lesson/steps/{step}/check")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "check {step}: {v}\n{}", server.log_text());
    eprintln!(
        "    check {step}: passed={} in {:?}: {}",
        v["passed"],
        t0.elapsed(),
        v["message"]
            .as_str()
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
    );
    v
}

async fn assert_check(server: &Server, id: &str, token: &str, step: usize, passed: bool) {
    let v = check(server, id, token, step).await;
    assert_eq!(
        v["passed"],
        passed,
        "step {step} check should have {}: {}",
        if passed { "passed" } else { "failed" },
        v["message"]
    );
}

/// Types `cmd` and Enter, waits for the next prompt; returns what the terminal printed.
async fn run(t: &mut Term, cmd: &str, within: Duration) -> String {
    let t0 = Instant::now();
    t.type_line(cmd).await;
    let out = t.expect(PROMPT, within).await;
    eprintln!("    $ {cmd}   ({:?})", t0.elapsed());
    out
}

async fn keys(t: &mut Term, k: &str) {
    t.send(ClientFrame::Input(Bytes::from(k.to_owned()))).await;
}

/// The speech bubble's text lines of a cowsay output (between ` ___` and ` ---`).
fn bubble(out: &str) -> String {
    // Without the terminal's escape sequences (bracketed paste, prompt colours) and CRs.
    let plain = drydock::lessons::checks::clean(out);
    let lines: Vec<&str> = plain.lines().collect();
    let top = lines.iter().position(|l| l.starts_with(" _"));
    let bottom = lines.iter().position(|l| l.starts_with(" -"));
    match (top, bottom) {
        (Some(a), Some(b)) if a < b => lines[a + 1..b].join("\n"),
        _ => panic!("no speech bubble in:\n{out}"),
    }
}

async fn open_terminal(server: &Server, id: &str, token: &str) -> Term {
    let mut t = server.terminal(id, token).await;
    t.send(ClientFrame::Resize {
        cols: 120,
        rows: 40,
    })
    .await;
    t.expect(PROMPT, Duration::from_secs(20)).await;
    // The instance's dockerd uses the registry mirror through the session network's gateway.
    let out = run(
        &mut t,
        "docker info --format 'MIRRORS={{json .RegistryConfig.Mirrors}}'",
        Duration::from_secs(20),
    )
    .await;
    assert!(
        out.contains("MIRRORS=[\"http://"),
        "no registry mirror: {out}"
    );
    t
}

async fn progress_all_passed(server: &Server, id: &str, token: &str, steps: usize) {
    let (status, v) = server.get(id, token).await;
    assert_eq!(status, 200);
    let p = v["progress"]
        .as_array()
        .unwrap_or_else(|| panic!("no progress: {v}"));
    assert_eq!(p.len(), steps, "{v}");
    for (i, s) in p.iter().enumerate() {
        assert_eq!(s["step"], i, "{v}");
        assert_eq!(s["passed"], true, "{v}");
        assert!(s["checked_at"].as_str().is_some(), "{v}");
    }
}

#[tokio::test]
async fn whalesay_lesson_end_to_end() {
    if !e2e("whalesay_lesson_end_to_end") {
        return;
    }
    require_mirror().await;
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let lesson = lesson(&server, "whalesay").await;
    assert_eq!(lesson.steps.len(), 4);
    let (id, token) = create(&server, "whalesay").await;
    let _cleanup = Cleanup(vec![id.clone()]);
    server
        .wait_ready(&id, &token, Duration::from_secs(60))
        .await;

    eprintln!("whalesay: fresh session, every check fails");
    for step in 0..4 {
        assert_check(&server, &id, &token, step, false).await;
    }
    let mut t = open_terminal(&server, &id, &token).await;

    eprintln!("whalesay step 1: pull");
    assert_eq!(lesson.commands(0), ["docker pull docker/whalesay"]);
    let t0 = Instant::now();
    let out = run(
        &mut t,
        "docker pull docker/whalesay",
        Duration::from_secs(180),
    )
    .await;
    assert!(
        out.contains("Downloaded newer image for docker/whalesay:latest")
            || out.contains("Image is up to date for docker/whalesay:latest"),
        "{out}"
    );
    eprintln!("  pull through the mirror took {:?}", t0.elapsed());
    assert_check(&server, &id, &token, 0, true).await;

    eprintln!("whalesay step 2: images");
    assert_eq!(lesson.commands(1), ["docker images"]);
    let out = run(&mut t, "docker images", Duration::from_secs(30)).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("docker/whalesay") && l.contains("latest")),
        "{out}"
    );
    assert_check(&server, &id, &token, 1, true).await;

    eprintln!("whalesay step 3: run");
    assert_eq!(
        lesson.commands(2),
        ["docker run docker/whalesay cowsay boo"]
    );
    let out = run(
        &mut t,
        "docker run docker/whalesay cowsay boo",
        Duration::from_secs(60),
    )
    .await;
    assert!(out.contains("< boo >"), "{out}");
    assert_eq!(bubble(&out), "< boo >");
    assert_check(&server, &id, &token, 2, true).await;

    eprintln!("whalesay step 4: containers");
    let cmds = lesson.commands(3);
    assert_eq!(cmds.len(), 3, "{cmds:?}");
    for cmd in &cmds {
        let out = run(&mut t, cmd, Duration::from_secs(60)).await;
        if cmd.starts_with("docker run") {
            // cowsay wraps the sentence over two lines of the bubble.
            let said = bubble(&out);
            assert!(
                said.contains("Images are templates") && said.contains("instances"),
                "{out}"
            );
        }
    }
    assert_check(&server, &id, &token, 3, true).await;
    progress_all_passed(&server, &id, &token, 4).await;

    server.delete(&id, &token).await;
    eprintln!("whalesay lesson end to end: {:?}", started.elapsed());
}

#[tokio::test]
async fn dockerfile_lesson_end_to_end() {
    if !e2e("dockerfile_lesson_end_to_end") {
        return;
    }
    require_mirror().await;
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let lesson = lesson(&server, "dockerfile").await;
    assert_eq!(lesson.steps.len(), 4);
    let (id, token) = create(&server, "dockerfile").await;
    let _cleanup = Cleanup(vec![id.clone()]);
    server
        .wait_ready(&id, &token, Duration::from_secs(60))
        .await;

    eprintln!("dockerfile: fresh session, every check fails");
    for step in 0..4 {
        assert_check(&server, &id, &token, step, false).await;
    }
    let mut t = open_terminal(&server, &id, &token).await;

    eprintln!("dockerfile step 1: write the Dockerfile with vi");
    assert_eq!(lesson.commands(0), ["vi Dockerfile", "cat Dockerfile"]);
    let html = lesson.steps[0]["html"].as_str().unwrap();
    let block = html
        .split("<pre><code class=\"language-dockerfile\">")
        .nth(1)
        .and_then(|r| r.split("</code></pre>").next())
        .expect("the step shows the Dockerfile");
    let lines: Vec<String> = block.lines().map(|l| l.replace("&amp;", "&")).collect();
    assert_eq!(
        lines,
        [
            "FROM docker/whalesay:latest",
            "RUN apt-get -y -qq update",
            "RUN apt-get install -qq -y fortunes",
            "CMD /usr/games/fortune -a | cowsay",
        ]
    );
    t.type_line("vi Dockerfile").await;
    t.expect("[New", Duration::from_secs(20)).await;
    keys(&mut t, "i").await;
    t.expect("-- INSERT --", Duration::from_secs(10)).await;
    for line in &lines {
        keys(&mut t, &format!("{line}\r")).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    keys(&mut t, "\u{1b}").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    keys(&mut t, ":wq!\r").await;
    t.expect(PROMPT, Duration::from_secs(20)).await;
    let out = run(&mut t, "cat Dockerfile", Duration::from_secs(10)).await;
    for line in &lines {
        assert!(
            out.contains(&format!("{line}\r\n")),
            "{line} missing:\n{out}"
        );
    }
    assert_check(&server, &id, &token, 0, true).await;

    eprintln!("dockerfile step 2: build");
    assert_eq!(
        lesson.commands(1),
        ["docker build -t smartwhale .", "docker images"]
    );
    let t0 = Instant::now();
    let out = run(
        &mut t,
        "docker build -t smartwhale .",
        Duration::from_secs(900),
    )
    .await;
    assert!(
        out.contains("Successfully tagged smartwhale:latest")
            || out.contains("naming to docker.io/library/smartwhale"),
        "build failed:\n{out}"
    );
    eprintln!("  build took {:?}", t0.elapsed());
    let out = run(&mut t, "docker images", Duration::from_secs(30)).await;
    assert!(out.lines().any(|l| l.starts_with("smartwhale ")), "{out}");
    assert_check(&server, &id, &token, 1, true).await;

    eprintln!("dockerfile step 3: run");
    let cmds = lesson.commands(2);
    assert_eq!(
        cmds,
        [
            "docker run smartwhale",
            "docker run smartwhale",
            "docker run smartwhale cowsay \"I am a smart whale\"",
            "docker ps -a --filter ancestor=smartwhale",
        ]
    );
    let mut quotes = Vec::new();
    for cmd in &cmds {
        let out = run(&mut t, cmd, Duration::from_secs(60)).await;
        if cmd == "docker run smartwhale" {
            quotes.push(bubble(&out));
        }
    }
    // A third time, as the step suggests ("Run it a few more times").
    let out = run(&mut t, "docker run smartwhale", Duration::from_secs(60)).await;
    quotes.push(bubble(&out));
    let distinct: BTreeSet<&String> = quotes.iter().collect();
    assert!(distinct.len() >= 2, "three runs, one quote: {quotes:#?}");
    eprintln!("  {} different quotes out of 3 runs", distinct.len());
    assert_check(&server, &id, &token, 2, true).await;

    eprintln!("dockerfile step 4: layers");
    assert_eq!(lesson.commands(3), ["docker history smartwhale"]);
    let out = run(&mut t, "docker history smartwhale", Duration::from_secs(30)).await;
    assert!(out.contains("apt-get install -qq"), "{out}");
    assert_check(&server, &id, &token, 3, true).await;
    progress_all_passed(&server, &id, &token, 4).await;

    server.delete(&id, &token).await;
    eprintln!("dockerfile lesson end to end: {:?}", started.elapsed());
}
