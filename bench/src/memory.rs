//! Memory: the server's RSS (VmRSS of /proc/<pid>/status) added by each open session and by
//! each open terminal, and an idle instance's footprint (`docker stats`, the container's
//! cgroup, and per-process RSS of agent, dockerd, containerd). The server's pid is given or
//! found as the process listening on the `--url` port.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use crate::client::{Session, Terminal};
use crate::report::{meminfo_kib, parse_kib_field, Report, Row, Target};
use crate::stats::summarize;
use crate::{docker, progress, Ctx};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Terminals opened per session.
    #[arg(long, default_value_t = 4)]
    pub terminals: usize,
    /// Seconds to let the instances settle before reading their footprint.
    #[arg(long, default_value_t = 10)]
    pub settle_secs: u64,
    /// RAM the extrapolation assumes, in GiB (the 24 GiB VM).
    #[arg(long, default_value_t = 24.0)]
    pub vm_gib: f64,
    /// RAM kept for the host, the server and the page cache in the extrapolation, in GiB.
    #[arg(long, default_value_t = 2.0)]
    pub reserve_gib: f64,
}

/// VmRSS of a process in KiB.
pub fn vm_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (is the server's pid right?)"))?;
    parse_kib_field(&status, "VmRSS").ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// Socket inodes listening on `port` in a /proc/net/tcp{,6} table.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local = f.get(1)?;
            let p = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (p == port && *f.get(3)? == "0A")
                .then(|| f.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// The pid of the process listening on TCP `port`.
pub fn find_listener(port: u16) -> Result<u32> {
    let mut inodes = vec![];
    for t in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(t) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        bail!("nothing listens on port {port} in this network namespace; pass --server-pid");
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if wanted.iter().any(|w| target.as_os_str() == w.as_str()) {
                    return Ok(pid);
                }
            }
        }
    }
    bail!("no process owns the socket listening on port {port}; pass --server-pid")
}

pub fn server_pid(ctx: &Ctx) -> Result<u32> {
    match ctx.server_pid {
        Some(p) => Ok(p),
        None => {
            let port = ctx
                .api
                .base()
                .port_or_known_default()
                .ok_or_else(|| anyhow!("--url has no port"))?;
            find_listener(port)
        }
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Memory figures of a set of instances, one value per instance (MiB).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Footprint {
    pub docker_stats: Vec<f64>,
    pub cgroup_usage: Vec<f64>,
    pub cgroup_rss: Vec<f64>,
    pub cgroup_cache: Vec<f64>,
    pub shim_rss: Vec<f64>,
    pub process_rss_sum: Vec<f64>,
    pub process_rss: BTreeMap<String, Vec<f64>>,
}

/// Reads the footprint of the named instance containers.
pub async fn footprint(names: &[String]) -> Result<Footprint> {
    let mut f = Footprint {
        docker_stats: docker::stats_memory(names)
            .await?
            .values()
            .map(|b| *b as f64 / 1048576.0)
            .collect(),
        ..Default::default()
    };
    for name in names {
        if let Ok(c) = docker::inspect(name).await {
            if let Some((u, r, cache)) = docker::cgroup_memory(&c.id) {
                f.cgroup_usage.push(u as f64 / 1048576.0);
                f.cgroup_rss.push(r as f64 / 1048576.0);
                f.cgroup_cache.push(cache as f64 / 1048576.0);
            }
            if let Some(k) = docker::shim_rss_kib(c.pid) {
                f.shim_rss.push(mib(k));
            }
        }
        match docker::process_rss(name).await {
            Ok(m) => {
                f.process_rss_sum.push(mib(m.values().sum()));
                for (comm, kib) in m {
                    f.process_rss.entry(comm).or_default().push(mib(kib));
                }
            }
            Err(e) => progress!("docker top {name}: {e:#}"),
        }
    }
    Ok(f)
}

struct Measured {
    rss: [u64; 3],
    per_session: Vec<f64>,
    per_terminal: Vec<f64>,
    idle: Footprint,
    with_terminals: Footprint,
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<Report> {
    let n = ctx.runs_or(5);
    let pid = server_pid(ctx)?;
    progress!(
        "memory: server pid {pid}, {n} sessions × {} terminals",
        args.terminals
    );
    // Warm-up: one session and terminal, so one-time allocations are not charged to the
    // first measured session.
    {
        let o = ctx.open_session().await?;
        let r = ctx.prompt(&o.session, "node1", "warmup").await;
        if let Ok(t) = r {
            t.close().await;
        }
        ctx.close(&o.session).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut sessions: Vec<Session> = vec![];
    let mut terms: Vec<Terminal> = vec![];
    let settle = Duration::from_secs(args.settle_secs);
    let result = async {
        let rss0 = vm_rss_kib(pid)?;
        let mut per_session = vec![];
        let mut last = rss0;
        for _ in 0..n {
            let o = ctx.open_session().await?;
            sessions.push(o.session);
            let now = vm_rss_kib(pid)?;
            per_session.push(mib(now) - mib(last));
            last = now;
        }
        let rss1 = last;
        let names: Vec<String> = sessions
            .iter()
            .map(|s| docker::container_name(&s.id, "node1"))
            .collect();
        // The idle instance: ready, no terminal open yet.
        tokio::time::sleep(settle).await;
        let idle = footprint(&names).await?;
        let mut per_terminal = vec![];
        last = vm_rss_kib(pid)?;
        for s in &sessions {
            for t in 0..args.terminals {
                terms.push(ctx.prompt(s, "node1", &format!("mem-{t}")).await?);
                let now = vm_rss_kib(pid)?;
                per_terminal.push(mib(now) - mib(last));
                last = now;
            }
        }
        let rss2 = last;
        progress!(
            "server RSS: {:.1} MiB idle, {:.1} MiB with {n} sessions, {:.1} MiB with {} terminals",
            mib(rss0),
            mib(rss1),
            mib(rss2),
            terms.len()
        );
        for t in terms.iter_mut() {
            t.flush_acks().await?;
        }
        tokio::time::sleep(settle.min(Duration::from_secs(3))).await;
        for t in terms.iter_mut() {
            t.pump(std::time::Instant::now() + Duration::from_millis(5))
                .await?;
        }
        let with_terminals = footprint(&names).await?;
        anyhow::Ok(Measured {
            rss: [rss0, rss1, rss2],
            per_session,
            per_terminal,
            idle,
            with_terminals,
        })
    }
    .await;
    let nterms = terms.len();
    for t in terms {
        t.close().await;
    }
    for s in &sessions {
        ctx.close(s).await;
    }
    let m = result?;
    let [rss0, rss1, rss2] = m.rss;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = vm_rss_kib(pid).ok();
    let avg_session = (mib(rss1) - mib(rss0)) / n as f64;
    let avg_terminal = (mib(rss2) - mib(rss1)) / nterms.max(1) as f64;
    let med = |v: &[f64]| summarize(v).map(|s| s.median);
    let idle = &m.idle;
    // What one more terminal costs inside an instance: cgroup growth per terminal.
    let per_term_instance: Vec<f64> = m
        .with_terminals
        .cgroup_usage
        .iter()
        .zip(&idle.cgroup_usage)
        .map(|(b, a)| (b - a) / args.terminals.max(1) as f64)
        .collect();
    let mut rows = vec![
        Row::new(
            "server RSS per open session (VmRSS delta)",
            "MiB",
            &m.per_session,
        )
        .note(format!("mean {avg_session:.2} MiB")),
        Row::new(
            "server RSS per open terminal (VmRSS delta)",
            "MiB",
            &m.per_terminal,
        )
        .note(format!("mean {avg_terminal:.3} MiB")),
        Row::new(
            "idle instance (no terminal): `docker stats` memory",
            "MiB",
            &idle.docker_stats,
        ),
        Row::new(
            "idle instance: cgroup memory.usage (incl. page cache)",
            "MiB",
            &idle.cgroup_usage,
        ),
        Row::new(
            "idle instance: cgroup RSS (anonymous)",
            "MiB",
            &idle.cgroup_rss,
        ),
    ];
    for comm in ["drydock-agent", "dockerd", "containerd"] {
        if let Some(v) = idle.process_rss.get(comm) {
            rows.push(Row::new(
                format!("idle instance: {comm} RSS (incl. shared file pages)"),
                "MiB",
                v,
            ));
        }
    }
    rows.push(Row::new(
        "idle instance: sum of its processes' RSS (incl. shared file pages)",
        "MiB",
        &idle.process_rss_sum,
    ));
    rows.push(Row::new(
        "idle instance: containerd-shim RSS on the host (outside the cgroup)",
        "MiB",
        &idle.shim_rss,
    ));
    rows.push(Row::new(
        "instance cgroup growth per open terminal (bash + agent)",
        "MiB",
        &per_term_instance,
    ));
    // Extrapolation to the target VM: the instance's cgroup charge (what the kernel
    // attributes to it; binaries' pages are shared between instances) plus its shim, one
    // terminal and the server's share; and a conservative figure counting every process's
    // full RSS.
    let server_share = avg_session.max(0.0) + avg_terminal.max(0.0);
    let shim_m = med(&idle.shim_rss).unwrap_or(0.0);
    let term_m = med(&per_term_instance).unwrap_or(0.0).max(0.0);
    if let Some(inst) = med(&idle.cgroup_usage).or(med(&idle.docker_stats)) {
        let usable = (args.vm_gib - args.reserve_gib) * 1024.0;
        let per = inst + term_m + shim_m + server_share;
        let conservative = med(&idle.process_rss_sum).map(|p| {
            let per = p + term_m + shim_m + server_share;
            ((usable / per).floor(), per)
        });
        rows.push(
            Row::new(
                format!(
                    "idle sessions (one terminal each) that fit in {:.0} GiB (extrapolated)",
                    args.vm_gib
                ),
                "sessions",
                &[(usable / per).floor()],
            )
            .target(Target::median_at_least(100.0))
            .note(format!(
                "({:.0} − {:.0} GiB reserve) / {per:.0} MiB per session (cgroup + terminal + shim + server){}; memory only, not measured",
                args.vm_gib,
                args.reserve_gib,
                conservative
                    .map(|(f, p)| format!("; counting full process RSS: {p:.0} MiB → {f:.0}"))
                    .unwrap_or_default()
            )),
        );
    }
    Ok(Report {
        measurement: "memory".into(),
        rows,
        details: json!({
            "server_pid": pid, "sessions": n, "terminals": nterms,
            "server_rss_mib": {"idle": mib(rss0), "with_sessions": mib(rss1),
                "with_terminals": mib(rss2), "after_delete": rss_after.map(mib)},
            "per_session_mib": m.per_session, "per_terminal_mib": m.per_terminal,
            "instance_idle": m.idle, "instance_with_terminals": m.with_terminals,
            "instance_cgroup_per_terminal_mib": per_term_instance,
            "host_mem_available_mib": meminfo_kib("MemAvailable").map(mib),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_by_port() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 12399 1 0000000000000000 20 4 30 10 -1\n\
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(t, 8080), vec![12345]);
        assert_eq!(listening_inodes(t, 22), vec![999]);
        assert!(listening_inodes(t, 9).is_empty());
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(vm_rss_kib(std::process::id()).unwrap() > 0);
    }
}
