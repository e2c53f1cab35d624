//! Looks at the instances the server created, through the local `docker` CLI and the host's
//! cgroup files: memory footprint, per-process RSS, and (for profiling only) the agent's
//! address and secret so a measurement can bypass the server and split the relay's cost.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{anyhow, bail, Context, Result};

/// The container of instance `node` of session `session` (the docker runtime's naming).
pub fn container_name(session: &str, node: &str) -> String {
    format!("drydock-{session}-{node}")
}

async fn docker(args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .output()
        .await
        .with_context(|| format!("running docker {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `docker inspect` tells about an instance container.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    /// The container's init process on the host (0 when not running).
    pub pid: u32,
    pub ip: Option<IpAddr>,
    pub agent_secret: Option<String>,
}

pub async fn inspect(name: &str) -> Result<Container> {
    let text = docker(&["inspect", "--type", "container", name]).await?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("docker inspect {name}: not JSON"))?;
    let c = v
        .get(0)
        .ok_or_else(|| anyhow!("docker inspect {name}: empty answer"))?;
    let id = c["Id"].as_str().unwrap_or_default().to_owned();
    let ip = c["NetworkSettings"]["Networks"]
        .as_object()
        .and_then(|nets| {
            nets.values()
                .find_map(|n| n["IPAddress"].as_str().filter(|s| !s.is_empty()))
        })
        .and_then(|s| s.parse().ok());
    let agent_secret = c["Config"]["Env"].as_array().and_then(|env| {
        env.iter().find_map(|e| {
            e.as_str()?
                .strip_prefix(&format!("{}=", drydock_protocol::agent::SECRET_ENV))
                .map(str::to_owned)
        })
    });
    let pid = c["State"]["Pid"].as_u64().unwrap_or(0) as u32;
    Ok(Container {
        id,
        pid,
        ip,
        agent_secret,
    })
}

/// Whether `ip` can be a container on a local Docker bridge network (private ranges only),
/// so a direct agent connection never leaves the machine.
pub fn is_local_container_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(_) => false,
    }
}

/// The agent's terminal WebSocket URL and secret for instance `node` of `session`.
pub async fn direct_agent_terminal(
    session: &str,
    node: &str,
    term: &str,
) -> Result<(String, String)> {
    let name = container_name(session, node);
    let c = inspect(&name).await?;
    let ip =
        c.ip.ok_or_else(|| anyhow!("container {name} has no IP address"))?;
    if !is_local_container_ip(ip) {
        bail!("container {name} has IP {ip}, not a local bridge address; refusing to connect");
    }
    let secret = c
        .agent_secret
        .ok_or_else(|| anyhow!("container {name} has no agent secret in its environment"))?;
    let url = format!(
        "ws://{ip}:{}/v1/terminals/{term}",
        drydock_protocol::agent::DEFAULT_PORT
    );
    Ok((url, secret))
}

/// `docker stats --no-stream` memory usage of each named container, in bytes.
pub async fn stats_memory(names: &[String]) -> Result<BTreeMap<String, u64>> {
    let mut args = vec![
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}\t{{.MemUsage}}",
    ];
    args.extend(names.iter().map(String::as_str));
    let text = docker(&args).await?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split('\t');
        let (Some(name), Some(usage)) = (parts.next(), parts.next()) else {
            continue;
        };
        let used = usage.split('/').next().unwrap_or("").trim();
        if let Some(b) = parse_size(used) {
            out.insert(name.to_owned(), b);
        }
    }
    Ok(out)
}

/// Parses docker's human sizes: `123.4MiB`, `1.2GiB`, `512KiB`, `900B`, `1.5kB`, `3MB`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "B" | "" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0_f64.powi(4),
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return None,
    };
    Some((num * mult).round() as u64)
}

/// RSS in KiB of the container's processes, summed by command name.
pub async fn process_rss(name: &str) -> Result<BTreeMap<String, u64>> {
    // docker top needs a PID column.
    let text = docker(&["top", name, "-eo", "pid,rss,comm"]).await?;
    Ok(parse_top(&text))
}

pub fn parse_top(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1) {
        let mut it = line.split_whitespace().skip(1);
        let (Some(rss), Some(comm)) = (it.next(), it.next()) else {
            continue;
        };
        if let Ok(kib) = rss.parse::<u64>() {
            *out.entry(comm.to_owned()).or_insert(0) += kib;
        }
    }
    out
}

/// RSS in KiB of the host process that parents the container's init (containerd-shim),
/// which lives outside the container's cgroup but exists once per instance.
pub fn shim_rss_kib(init_pid: u32) -> Option<u64> {
    if init_pid == 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{init_pid}/status")).ok()?;
    let ppid = crate::report::parse_kib_field(&status, "PPid")?;
    let parent = std::fs::read_to_string(format!("/proc/{ppid}/status")).ok()?;
    parent
        .lines()
        .next()
        .filter(|l| l.contains("containerd-shim"))?;
    crate::report::parse_kib_field(&parent, "VmRSS")
}

/// The container's cgroup memory: (usage, rss, cache) in bytes; cgroup v1 or v2.
pub fn cgroup_memory(container_id: &str) -> Option<(u64, u64, u64)> {
    let read = |p: String| std::fs::read_to_string(p).ok();
    let stat_field = |stat: &str, key: &str| {
        stat.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse::<u64>().ok()).flatten()
        })
    };
    let v1 = format!("/sys/fs/cgroup/memory/docker/{container_id}");
    if let Some(usage) = read(format!("{v1}/memory.usage_in_bytes")) {
        let usage = usage.trim().parse().ok()?;
        let stat = read(format!("{v1}/memory.stat")).unwrap_or_default();
        let rss = stat_field(&stat, "total_rss").or_else(|| stat_field(&stat, "rss"))?;
        let cache = stat_field(&stat, "total_cache")
            .or_else(|| stat_field(&stat, "cache"))
            .unwrap_or(0);
        return Some((usage, rss, cache));
    }
    for v2 in [
        format!("/sys/fs/cgroup/system.slice/docker-{container_id}.scope"),
        format!("/sys/fs/cgroup/docker/{container_id}"),
    ] {
        if let Some(usage) = read(format!("{v2}/memory.current")) {
            let usage = usage.trim().parse().ok()?;
            let stat = read(format!("{v2}/memory.stat")).unwrap_or_default();
            let anon = stat_field(&stat, "anon").unwrap_or(0);
            let file = stat_field(&stat, "file").unwrap_or(0);
            return Some((usage, anon, file));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("123.5MiB"), Some(129_499_136));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("900B"), Some(900));
        assert_eq!(parse_size("1.5kB"), Some(1500));
        assert_eq!(parse_size("12XB"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn top_sums_by_command() {
        let t = "PID RSS COMMAND\n1 5000 drydock-agent\n20 40000 dockerd\n30 30000 containerd\n40 3000 bash\n41 3100 bash\n";
        let m = parse_top(t);
        assert_eq!(m["bash"], 6100);
        assert_eq!(m["dockerd"], 40000);
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn only_private_container_addresses() {
        assert!(is_local_container_ip("172.18.0.2".parse().unwrap()));
        assert!(is_local_container_ip("10.1.2.3".parse().unwrap()));
        assert!(!is_local_container_ip("8.8.8.8".parse().unwrap()));
        assert!(!is_local_container_ip("::1".parse().unwrap()));
    }
}
