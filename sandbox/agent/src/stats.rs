//! `GET /v1/stats`: the instance's resource use from its cgroup (v1 or v2), disk usage of `/`
//! and `/var/lib/docker`, and the agent's uptime. Anything unreadable is `None`.

use std::path::Path;
use std::time::Instant;

use drydock_protocol::agent::{DiskUsage, Stats};

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `memory.max` and friends: a number, or `max` for no limit (→ None).
fn read_limit(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let t = text.trim();
    if t == "max" {
        return None;
    }
    let n: u64 = t.parse().ok()?;
    // cgroup v1 reports "no limit" as a huge page-aligned number.
    (n < (1u64 << 62)).then_some(n)
}

/// `usage_usec` from the text of cgroup v2's cpu.stat, in nanoseconds.
pub fn parse_cpu_stat_usage_ns(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|us| us * 1000)
}

/// Reads the statistics of the cgroup mounted at `root`.
pub fn collect(root: &Path, started: Instant) -> Stats {
    let v2 = root.join("cgroup.controllers").exists();
    let (cpu_usage_ns, memory_bytes, memory_limit_bytes, pids) = if v2 {
        (
            std::fs::read_to_string(root.join("cpu.stat"))
                .ok()
                .and_then(|t| parse_cpu_stat_usage_ns(&t)),
            read_u64(&root.join("memory.current")),
            read_limit(&root.join("memory.max")),
            read_u64(&root.join("pids.current")),
        )
    } else {
        let cpuacct = ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"]
            .iter()
            .find_map(|d| read_u64(&root.join(d).join("cpuacct.usage")));
        (
            cpuacct,
            read_u64(&root.join("memory/memory.usage_in_bytes")),
            read_limit(&root.join("memory/memory.limit_in_bytes")),
            read_u64(&root.join("pids/pids.current")),
        )
    };
    let disks = ["/", "/var/lib/docker"]
        .iter()
        .filter(|p| Path::new(p).exists())
        .filter_map(|p| disk_usage(p))
        .collect();
    Stats {
        cpu_usage_ns,
        memory_bytes,
        memory_limit_bytes,
        pids,
        disks,
        uptime_ms: started.elapsed().as_millis() as u64,
    }
}

fn disk_usage(path: &str) -> Option<DiskUsage> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let frsize = s.fragment_size() as u64;
    let total = s.blocks() as u64 * frsize;
    let free = s.blocks_free() as u64 * frsize;
    let avail = s.blocks_available() as u64 * frsize;
    Some(DiskUsage {
        path: path.to_string(),
        total_bytes: total,
        used_bytes: total.saturating_sub(free),
        avail_bytes: avail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_stat() {
        let t = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(parse_cpu_stat_usage_ns(t), Some(1_500_000));
        assert_eq!(parse_cpu_stat_usage_ns("nothing 1\n"), None);
    }

    #[test]
    fn v2_tree() {
        let dir = std::env::temp_dir().join(format!("drydock-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(dir.join("cpu.stat"), "usage_usec 7\n").unwrap();
        std::fs::write(dir.join("memory.current"), "1024\n").unwrap();
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        std::fs::write(dir.join("pids.current"), "3\n").unwrap();
        let s = collect(&dir, Instant::now());
        assert_eq!(s.cpu_usage_ns, Some(7000));
        assert_eq!(s.memory_bytes, Some(1024));
        assert_eq!(s.memory_limit_bytes, None);
        assert_eq!(s.pids, Some(3));
        assert!(s.disks.iter().any(|d| d.path == "/" && d.total_bytes > 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
