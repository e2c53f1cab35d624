//! Isolation and limits, end to end: the real `drydock` binary, the real dockerd and the real
//! instance image. Each test attacks from inside an instance (through its terminal, like a
//! learner) and checks that the attack is contained, the agent survives and the server stays
//! healthy.
//!
//! Gated like the other e2e tests: skipped (loudly) without `DRYDOCK_E2E`; with it, a missing
//! dockerd or image fails. Network probes go only to this machine: the project's own
//! containers and the host side of a session network. The metadata address and SMTP rules are
//! checked by reading the installed iptables rules, never by sending a packet there.

mod common;

use std::time::Duration;

use common::e2e::*;

async fn assert_healthy(s: &Server) {
    let r = reqwest::get(s.url("/healthz")).await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, 200, "healthz: {body}\n{}", s.log_text());
}

/// Runs `cmd` in the terminal and returns what it printed between two markers.
async fn run(t: &mut Term, n: &mut u32, cmd: &str, within: Duration) -> String {
    *n += 1;
    // The markers are computed by the shell, so the echoed command line never matches them.
    let (a, b) = (*n * 2, *n * 2 + 1);
    t.type_line(&format!(
        "echo BEGIN-$(({a}+0)); {cmd}; echo END-$(({b}+0))"
    ))
    .await;
    t.expect(&format!("BEGIN-{a}"), within).await;
    let out = t.expect(&format!("END-{b}"), within).await;
    out.trim_end_matches(&format!("END-{b}")).to_owned()
}

#[tokio::test]
async fn least_privilege_inside_an_instance() {
    if !e2e("least_privilege_inside_an_instance") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let (id, token) = server.create().await;
    let _cleanup = Cleanup(vec![id.clone()]);
    server.wait_ready(&id, &token, SHORT).await;
    let mut t = server.terminal(&id, &token).await;
    let mut n = 0;
    let long = Duration::from_secs(30);

    // No CAP_SYS_MODULE: init_module(2) (syscall 175 on x86_64) is refused by the kernel with
    // EPERM before it even looks at the module.
    let out = run(
        &mut t,
        &mut n,
        "python3 -c 'import ctypes; l=ctypes.CDLL(None, use_errno=True); \
         print(\"INITMOD\", l.syscall(175, None, 0, b\"\"), ctypes.get_errno())'; \
         modprobe -q dummy 2>/dev/null; echo MODPROBE-rc-$?; \
         echo CAPMOD-$(( (0x$(awk '/^CapEff/{print $2}' /proc/self/status) >> 16) & 1 ))",
        long,
    )
    .await;
    // EPERM; ENOSYS (38) on kernels built without module support, like the dev VM's, where
    // the missing capability (checked below) is what holds.
    assert!(
        out.contains("INITMOD -1 1\r") || out.contains("INITMOD -1 38\r"),
        "init_module not refused: {out}"
    );
    assert!(!out.contains("MODPROBE-rc-0"), "modprobe succeeded: {out}");
    assert!(out.contains("CAPMOD-0"), "CAP_SYS_MODULE held: {out}");

    // No host block devices in /dev, and a device node made for the host's disk can be
    // neither read nor mounted (devices cgroup).
    let out = run(
        &mut t,
        &mut n,
        "echo DEVS-$(ls /dev | grep -cE '^(vd|sd|hd|nvme|xvd|mmcblk|loop|dm-|mem$|kmem$|port$)')",
        long,
    )
    .await;
    assert!(out.contains("DEVS-0"), "host devices visible: {out}");
    let disk = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(4) == Some(&"/")).then(|| f[2].to_owned())
        })
        .unwrap_or_else(|| "253:0".into());
    let (major, minor) = disk.split_once(':').unwrap();
    let out = run(
        &mut t,
        &mut n,
        &format!(
            "mknod /root/hostdisk b {major} {minor}; \
             head -c 512 /root/hostdisk >/dev/null 2>&1; echo READ-rc-$?; \
             mkdir -p /mnt/h; mount /root/hostdisk /mnt/h 2>&1; echo MOUNT-rc-$?; \
             rm -f /root/hostdisk"
        ),
        long,
    )
    .await;
    assert!(!out.contains("READ-rc-0"), "host disk readable: {out}");
    assert!(!out.contains("MOUNT-rc-0"), "host disk mounted: {out}");

    // Nothing of the host's filesystem is mounted in but Docker's own per-container files and
    // the instance's volume; PID 1 is the agent; the Docker socket is the instance's own.
    let out = run(
        &mut t,
        &mut n,
        "awk '$4 != \"/\" {print \"ROOT:\" $4}' /proc/self/mountinfo | sort -u; \
         echo PID1-$(cat /proc/1/comm); echo OOM1=$(cat /proc/1/oom_score_adj); \
         echo OOMSELF=$(cat /proc/self/oom_score_adj); \
         docker info --format 'ENGINE-{{.Name}}'",
        long,
    )
    .await;
    for line in out.lines().filter_map(|l| l.trim().strip_prefix("ROOT:")) {
        assert!(
            line.starts_with("/var/lib/docker/containers/")
                || line.starts_with("/var/lib/docker/volumes/")
                || !line.starts_with('/')
                // The instance's own nested mounts (its dockerd's overlay layers, the
                // shared /var/lib/docker volume's own paths).
                || line.starts_with("/overlay2/")
                || line.starts_with("/containers/"),
            "a host path is mounted into the instance: {line}\n{out}"
        );
    }
    assert!(out.contains("PID1-drydock-agent"), "{out}");
    // The OOM killer prefers the shell to the agent: -1000 / 0 where the host grants
    // CAP_SYS_RESOURCE, else 0 / 500 (sandbox/agent/src/process/oom.rs).
    assert!(
        (out.contains("OOM1=-1000") && out.contains("OOMSELF=0"))
            || (out.contains("OOM1=0") && out.contains("OOMSELF=500")),
        "the agent is not OOM-protected against its children: {out}"
    );
    assert!(out.contains("ENGINE-node1"), "not the instance's own engine: {out}");

    assert_healthy(&server).await;
    server.delete(&id, &token).await;
}
