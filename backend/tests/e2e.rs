//! End-to-end tests: the real `drydock` binary against the real dockerd and the real
//! instance image (`drydock/instance:latest`).
//!
//! Without `DRYDOCK_E2E` set they are skipped (loudly); with it set (scripts/test does), a
//! missing dockerd or image fails them. They run one at a time (each server reconciles at
//! start-up; it removes only its own orphans, but the counts the tests check are global).

mod common;

use std::time::{Duration, Instant};

use common::e2e::*;
use drydock_protocol::frame::ClientFrame;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn session_terminal_and_delete() {
    if !e2e("session_terminal_and_delete") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // dockerd started with the instance (the on-demand default has its own test below).
    let server = Server::start(dir.path(), &[("DRYDOCK_DOCKERD_ON_DEMAND", "false")]).await;
    let (id, token) = server.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    server.wait_ready(&id, &token, SHORT).await;
    let running = instance_processes(&id);
    assert!(
        running.contains("dockerd") && running.contains("unix:///var/run/docker.sock"),
        "an eager dockerd runs once the instance is ready:\n{running}"
    );

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

    // The session network is a /28 of the default network pool, not one of Docker's pools.
    let (ok, subnet) = docker(&[
        "network",
        "inspect",
        &format!("drydock-{id}"),
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
    ]);
    assert!(ok, "{subnet}");
    let (net, gateway) = subnet.trim().split_once(' ').unwrap();
    assert!(
        net.starts_with("10.200.") && net.ends_with("/28"),
        "{subnet}"
    );
    assert!(gateway.starts_with("10.200."), "{subnet}");

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
    // The server's owner id is fixed before it starts; only resources with that id (and no
    // live session) are orphans. Another server's resources, and resources without an owner
    // label, are left alone.
    let dir = tempfile::tempdir().unwrap();
    let server_id = "e2e-orphan-test";
    std::fs::write(dir.path().join("server-id"), format!("{server_id}\n")).unwrap();
    let orphan = "0000000000000e2e";
    let foreign = "00000000000f0e2e";
    let unowned = "0000000000000a2e";
    for (session, owner) in [(foreign, Some("another-server")), (unowned, None)] {
        let mut args = vec![
            "network".to_owned(),
            "create".to_owned(),
            "--label".to_owned(),
            "drydock.managed=true".to_owned(),
            "--label".to_owned(),
            format!("drydock.session={session}"),
        ];
        if let Some(o) = owner {
            args.extend(["--label".to_owned(), format!("drydock.server={o}")]);
        }
        args.push(format!("drydock-{session}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = docker(&args);
        assert!(ok, "{out}");
    }
    let _cleanup_others = Cleanup(vec![foreign.to_owned(), unowned.to_owned()]);
    let labels = [
        "--label",
        "drydock.managed=true",
        "--label",
        &format!("drydock.server={server_id}"),
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

    let server = Server::start(dir.path(), &[]).await;
    assert_eq!(
        labelled(&format!("drydock.session={orphan}")),
        (0, 0, 0),
        "{}",
        server.log_text()
    );
    assert_eq!(labelled(&format!("drydock.session={foreign}")), (0, 0, 1));
    assert_eq!(labelled(&format!("drydock.session={unowned}")), (0, 0, 1));
    assert!(
        server.log_text().contains("no drydock.server owner label"),
        "{}",
        server.log_text()
    );

    let (id, token) = server.create().await;
    let _cleanup2 = Cleanup(vec![id.clone()]);
    server.wait_ready(&id, &token, SHORT).await;
    assert_eq!(
        labelled(&format!("drydock.server={server_id}")),
        (1, 1, 1),
        "the new session's container, volume and network carry the owner id"
    );
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
    // Where no k3s image was built, the kubernetes template is refused with the reason.
    let templates: Value = http
        .get(server.url("/api/v1/templates"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let k8s = templates
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "kubernetes")
        .expect("the kubernetes template is listed");
    if k8s["available"] == false {
        let r = http
            .post(server.url("/api/v1/sessions"))
            .json(&serde_json::json!({"template": "kubernetes"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        let e: Value = r.json().await.unwrap();
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .starts_with("template kubernetes is unavailable: "),
            "{e}"
        );
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

/// The processes running in an instance container (`docker top`), one command line each.
fn instance_processes(id: &str) -> String {
    let (ok, out) = docker(&["top", &format!("drydock-{id}-node1"), "-eo", "pid,args"]);
    assert!(ok, "docker top: {out}");
    out
}

#[tokio::test]
async fn by_default_dockerd_starts_at_the_first_docker_command() {
    if !e2e("by_default_dockerd_starts_at_the_first_docker_command") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // The default: dockerd_on_demand = true.
    let server = Server::start(dir.path(), &[]).await;
    let (id, token) = server.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    let ready = server.wait_ready(&id, &token, SHORT).await;
    assert_eq!(ready["instances"][0]["state"], "ready", "{ready}");
    let mut t = server.terminal(&id, &token).await;
    t.type_line("echo $((6*7))").await;
    t.expect("42\r\n", SHORT).await;
    let before = instance_processes(&id);
    assert!(
        !before.contains("dockerd") && !before.contains("containerd"),
        "nothing of Docker runs before it is used:\n{before}"
    );
    // The learner's first docker command waits for dockerd, then works like any other.
    t.type_line("docker run --rm docker/whalesay cowsay on-demand-$((1+1)) | grep -c on-demand-2")
        .await;
    t.expect("1\r\n", Duration::from_secs(60)).await;
    let after = instance_processes(&id);
    assert!(
        after.contains("dockerd") && after.contains("fd://") && after.contains("containerd"),
        "{after}"
    );
    t.type_line("docker info --format 'running={{.ContainersRunning}}'")
        .await;
    t.expect("running=0", SHORT).await;
    server.delete(&id, &token).await;
    assert_eq!(labelled(&format!("drydock.session={id}")), (0, 0, 0));
}

#[tokio::test]
async fn a_full_network_pool_refuses_new_sessions_cleanly() {
    if !e2e("a_full_network_pool_refuses_new_sessions_cleanly") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // Room for exactly one session network (a /28 pool in /28s), in a range of its own.
    let server = Server::start(
        dir.path(),
        &[
            ("DRYDOCK_NETWORK_POOL", "10.201.77.0/28"),
            ("DRYDOCK_NETWORK_PREFIX", "28"),
        ],
    )
    .await;
    let owner = std::fs::read_to_string(dir.path().join("server-id")).unwrap();
    let owner_label = format!("drydock.server={}", owner.trim());
    let (id, token) = server.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    server.wait_ready(&id, &token, SHORT).await;
    let before = labelled(&owner_label);

    let r = reqwest::Client::new()
        .post(server.url("/api/v1/sessions"))
        .json(&serde_json::json!({"template": "docker"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("network_pool 10.201.77.0/28") && msg.contains("1 of 1 in use"),
        "{msg}"
    );
    assert_eq!(
        labelled(&owner_label),
        before,
        "the refusal left nothing behind"
    );
    // The session that has the subnet is unaffected; once it ends, the subnet is free again.
    let mut t = server.terminal(&id, &token).await;
    t.type_line("echo $((6*7))").await;
    t.expect("42\r\n", SHORT).await;
    server.delete(&id, &token).await;
    let (id2, token2) = server.create().await;
    let _cleanup2 = Cleanup(vec![id2.clone()]);
    server.wait_ready(&id2, &token2, SHORT).await;
    server.delete(&id2, &token2).await;
}
