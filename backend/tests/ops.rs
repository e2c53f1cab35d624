//! The operator commands: `drydock backup` (online copy, restore) and `drydock doctor`.
//! Tests that need dockerd and the instance image are gated by `DRYDOCK_E2E` (see
//! tests/common/e2e.rs).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::e2e::*;
use drydock::runtime::owner;
use drydock::store::{SessionRow, SqliteStore, Store};

fn drydock(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drydock"));
    cmd.args(args).env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run drydock")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `drydock backup DEST` with `data` as the data directory.
fn backup(data: &Path, dest: &Path) -> Output {
    drydock(
        &["backup", dest.to_str().unwrap()],
        &[("DRYDOCK_DATA_DIR", data.to_str().unwrap())],
    )
}

/// Copies the backup `dest` (and its server id) into the fresh data directory `to`.
fn restore(dest: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(dest, to.join("drydock.db")).unwrap();
    let id = format!("{}.server-id", dest.display());
    std::fs::copy(&id, to.join(owner::SERVER_ID_FILE)).unwrap();
}

fn session(id: &str) -> SessionRow {
    let now = chrono::Utc::now().timestamp_millis();
    SessionRow {
        id: id.into(),
        token_hash: "ab".repeat(32),
        template: "docker".into(),
        lesson: None,
        lang: Some("en".into()),
        created_at: now,
        expires_at: now + 3_600_000,
        state: "running".into(),
    }
}

#[tokio::test]
async fn backup_while_open_then_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server_id = owner::load_or_create(&data).unwrap();
    // The store stays open (WAL, like a running server) while the backup runs.
    let store = SqliteStore::open(&data.join("drydock.db")).await.unwrap();
    let row = session("s-backup-1");
    store.insert_session(&row).await.unwrap();

    let dest = tmp.path().join("backups").join("b.db");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(format!("{}.tmp", dest.display()), b"stale partial").unwrap();
    let o = backup(&data, &dest);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(dest.to_str().unwrap()));
    assert!(!Path::new(&format!("{}.tmp", dest.display())).exists());
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "backup mode {mode:o}");
    let copied_id = std::fs::read_to_string(format!("{}.server-id", dest.display())).unwrap();
    assert_eq!(copied_id.trim(), server_id);

    // A session written after the backup is not in it.
    store.insert_session(&session("s-after")).await.unwrap();

    let restored = tmp.path().join("restored");
    restore(&dest, &restored);
    let back = SqliteStore::open(&restored.join("drydock.db"))
        .await
        .unwrap();
    assert_eq!(back.get_session(&row.id).await.unwrap(), Some(row));
    assert_eq!(back.get_session("s-after").await.unwrap(), None);
    assert_eq!(owner::load_or_create(&restored).unwrap(), server_id);
}

#[tokio::test]
async fn backup_failures_name_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = backup(&empty, &tmp.path().join("x.db"));
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&empty.join("drydock.db").display().to_string()),
        "{}",
        text(&o)
    );

    // An unwritable destination.
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    drop(SqliteStore::open(&data.join("drydock.db")).await.unwrap());
    let dest = tmp.path().join("no-such-dir").join("b.db");
    let o = backup(&data, &dest);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&dest.display().to_string()),
        "{}",
        text(&o)
    );
}

#[test]
fn doctor_without_docker_fails_naming_docker() {
    let tmp = tempfile::tempdir().unwrap();
    let o = drydock(
        &["doctor"],
        &[
            ("DRYDOCK_DATA_DIR", tmp.path().to_str().unwrap()),
            (
                "DOCKER_HOST",
                "unix:///nonexistent/drydock-test/docker.sock",
            ),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let docker = out
        .lines()
        .find(|l| l.starts_with("FAIL docker:"))
        .unwrap_or_else(|| panic!("no FAIL docker line: {}", text(&o)));
    assert!(docker.contains("docker group"), "{docker}");
    assert!(
        out.lines().any(|l| l.starts_with("ok   data dir:")),
        "{}",
        text(&o)
    );
    for l in out.lines() {
        assert!(
            l.starts_with("ok   ") || l.starts_with("warn ") || l.starts_with("FAIL "),
            "{l}"
        );
    }
}

#[test]
fn doctor_names_an_unknown_config_key() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("drydock.toml");
    std::fs::write(&conf, "data_dir = \"/tmp\"\nbogus_key = 1\n").unwrap();
    let o = drydock(
        &["doctor", "--config", conf.to_str().unwrap()],
        &[(
            "DOCKER_HOST",
            "unix:///nonexistent/drydock-test/docker.sock",
        )],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("FAIL config:"), "{}", text(&o));
    assert!(out.contains("bogus_key"), "{}", text(&o));
}

#[test]
fn doctor_with_the_real_engine() {
    if !e2e("doctor_with_the_real_engine") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let o = drydock(
        &["doctor"],
        &[("DRYDOCK_DATA_DIR", tmp.path().to_str().unwrap())],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().any(|l| l.starts_with("ok   docker:")),
        "{}",
        text(&o)
    );
    assert!(
        out.lines().any(|l| l.starts_with("ok   instance image:")),
        "{}",
        text(&o)
    );
}

/// A backup taken while the server runs a session, restored into a new data directory: the
/// server started there adopts the session and answers for it.
#[tokio::test]
async fn backup_of_a_running_server_restores_and_serves() {
    if !e2e("backup_of_a_running_server_restores_and_serves") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut server = Server::start(&data, &[]).await;
    let (id, token) = server.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    server
        .wait_ready(&id, &token, Duration::from_secs(60))
        .await;

    let dest = tmp.path().join("b.db");
    let o = backup(&data, &dest);
    assert!(o.status.success(), "{}", text(&o));
    server.terminate(Duration::from_secs(10)).await;

    let restored = tmp.path().join("restored");
    restore(&dest, &restored);
    let server = Server::start(&restored, &[]).await;
    let (status, v) = server.get(&id, &token).await;
    assert_eq!(status, 200, "{v}\n{}", server.log_text());
    assert_eq!(v["id"], id.as_str(), "{v}");
    server
        .wait_ready(&id, &token, Duration::from_secs(30))
        .await;
    server.delete(&id, &token).await;
}

/// deploy/drydock.toml with its placeholders filled in and every commented-out setting
/// (`# key = value`, `#? key = value`) switched on: each key must be one the server knows,
/// each value one it accepts, so the installer never writes (or suggests) a setting the
/// server refuses.
#[test]
fn the_shipped_config_template_is_valid_with_every_setting_on() {
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/drydock.toml"),
    )
    .unwrap();
    let key_line = |l: &str| {
        let l = l.trim_start_matches("#?").trim_start_matches('#').trim();
        let (k, _) = l.split_once(" = ")?;
        k.bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
            .then_some(l.to_owned())
    };
    let mut on = String::new();
    let mut keys = 0;
    for line in template.lines() {
        if let Some(l) = key_line(line) {
            keys += 1;
            on.push_str(&l.replace("…", "an-invite"));
            on.push('\n');
        }
    }
    let on = on
        .replace("@LISTEN@", "127.0.0.1:8080")
        .replace("@ADMIN_TOKEN@", "0123456789abcdef")
        .replace("@PUBLIC_ORIGIN@", "https://learn.example.org")
        .replace("@CREATE_PER_MINUTE@", "10");
    assert!(keys >= 35, "only {keys} settings in the template:\n{on}");
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("drydock.toml");
    std::fs::write(&conf, &on).unwrap();
    let settings =
        drydock::config::Settings::from_toml_file(&conf).unwrap_or_else(|e| panic!("{e}\n{on}"));
    let config = drydock::config::Config::resolve(settings).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.dockerd_on_demand);
    assert_eq!(config.network_pool.unwrap().capacity(), 4096);
}
