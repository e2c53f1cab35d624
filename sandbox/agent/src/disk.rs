//! The instance's disk quota. The host (overlay2 on ext4) cannot enforce a size limit per
//! container (`--storage-opt size` needs XFS project quotas), so the agent measures and acts:
//!
//! - every `DRYDOCK_DISK_CHECK_SECONDS` (default 15) it walks the instance's root filesystem
//!   and its `/var/lib/docker` volume, each without crossing into other filesystems (so
//!   /proc, tmpfs mounts and nested overlay mounts are not counted twice), summing allocated
//!   blocks (hard links once). The root's own image content is a baseline measured at the
//!   first start and kept in `DRYDOCK_DISK_BASELINE_FILE` (default
//!   `/etc/drydock/disk-baseline`); what counts is root − baseline + the volume;
//! - at 90 % of `DRYDOCK_DISK_QUOTA_MB` every terminal gets a warning (once, again after use
//!   dropped below 85 %);
//! - at 100 % it refuses to grow further: every running nested container (including the
//!   classic builder's `docker build` steps) is `docker pause`d, the process that wrote the
//!   most since the last check is SIGKILLed (never PID 1 or the engines), every terminal says
//!   so, and `/v1/health` reports `disk_exceeded`. Below 95 % the containers it paused are
//!   unpaused.
//!
//! This is a guardrail against accidents (a runaway build, a loop of pulls, `yes > file`), not
//! a boundary against a learner who is root in the instance and could edit the baseline file
//! or write faster than a check interval. Writes done by dockerd itself (`docker pull`) are
//! not stopped, only counted. See docs/security.md.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drydock_protocol::agent::{DiskQuota, ExecRequest};
use nix::sys::signal::Signal;

use crate::config::Config;
use crate::process::signals::signal_pid;
use crate::process::supervisor::Engine;
use crate::terminal::Registry;

/// Entries visited per walk at most (a pathological tree does not pin the CPU).
const MAX_ENTRIES: u64 = 5_000_000;
/// Processes named like this are never killed as the biggest writer.
const PROTECTED_COMMS: [&str; 6] = [
    "dockerd",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "k3s",
    "drydock-agent",
];

#[derive(Debug, Clone)]
pub struct DiskConfig {
    /// Bytes; 0 means no quota (and no watching).
    pub quota: u64,
    pub interval: Duration,
    pub root: PathBuf,
    pub docker_dir: PathBuf,
    pub baseline_file: PathBuf,
}

impl DiskConfig {
    pub fn from_env() -> DiskConfig {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let quota_mb = var("DRYDOCK_DISK_QUOTA_MB")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let secs = var("DRYDOCK_DISK_CHECK_SECONDS")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(15)
            .max(1);
        DiskConfig {
            quota: quota_mb.saturating_mul(1024 * 1024),
            interval: Duration::from_secs(secs),
            root: var("DRYDOCK_DISK_ROOT").map_or_else(|| "/".into(), PathBuf::from),
            docker_dir: var("DRYDOCK_DISK_DOCKER_DIR")
                .map_or_else(|| "/var/lib/docker".into(), PathBuf::from),
            baseline_file: var("DRYDOCK_DISK_BASELINE_FILE")
                .map_or_else(|| "/etc/drydock/disk-baseline".into(), PathBuf::from),
        }
    }
}

/// What `/v1/health` reports.
#[derive(Debug, Clone, Default)]
struct State {
    used: Option<u64>,
    exceeded: bool,
    warned: bool,
    /// Nested containers this watcher paused.
    paused: Vec<String>,
    /// write_bytes per pid at the last check.
    writes: HashMap<i32, u64>,
}

pub struct DiskWatch {
    pub config: DiskConfig,
    state: Mutex<State>,
}

/// Bytes allocated below `root` on `root`'s filesystem (hard links once).
pub fn usage(root: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return 0;
    };
    let dev = meta.dev();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut total = meta.blocks() * 512;
    let mut stack = vec![root.to_path_buf()];
    let mut visited = 0u64;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            visited += 1;
            if visited > MAX_ENTRIES {
                return total;
            }
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

fn mib(b: u64) -> u64 {
    b / (1024 * 1024)
}

fn write_bytes(io_file: &Path) -> Option<u64> {
    std::fs::read_to_string(io_file)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Bytes each process wrote itself: the sum of its threads' `write_bytes`
/// (/proc/<pid>/task/<tid>/io). Not /proc/<pid>/io, which also counts the children it reaped:
/// a shell whose writer was just killed would look like the biggest writer.
fn process_writes() -> HashMap<i32, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(tasks) = std::fs::read_dir(e.path().join("task")) else {
            continue;
        };
        let total: u64 = tasks
            .flatten()
            .filter_map(|t| write_bytes(&t.path().join("io")))
            .sum();
        out.insert(pid, total);
    }
    out
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

impl DiskWatch {
    pub fn new(config: DiskConfig) -> Arc<DiskWatch> {
        Arc::new(DiskWatch {
            config,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `/v1/health` shows: `None` without a quota or before the first check.
    pub fn quota(&self) -> Option<DiskQuota> {
        if self.config.quota == 0 {
            return None;
        }
        let st = self.lock();
        Some(DiskQuota {
            used_bytes: st.used?,
            quota_bytes: self.config.quota,
        })
    }

    pub fn exceeded(&self) -> bool {
        self.lock().exceeded
    }

    /// The root's baseline: read from the baseline file, or measured now and written there.
    fn baseline(&self) -> u64 {
        if let Some(b) = std::fs::read_to_string(&self.config.baseline_file)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            return b;
        }
        let b = usage(&self.config.root);
        if let Some(parent) = self.config.baseline_file.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(e) = std::fs::write(&self.config.baseline_file, format!("{b}\n")) {
            tracing::warn!(
                "cannot keep the disk baseline in {}: {e}",
                self.config.baseline_file.display()
            );
        }
        tracing::info!(
            "disk baseline of {}: {} MiB",
            self.config.root.display(),
            mib(b)
        );
        b
    }

    /// Measures now: root above its baseline plus the Docker volume.
    pub fn measure(&self, baseline: u64) -> u64 {
        let root = usage(&self.config.root);
        let docker = if self.config.docker_dir.exists() {
            usage(&self.config.docker_dir)
        } else {
            0
        };
        root.saturating_sub(baseline) + docker
    }

    /// Runs the watcher until the process ends (no quota: returns at once).
    pub async fn run(
        self: Arc<Self>,
        config: Arc<Config>,
        terminals: Arc<Registry>,
        dockerd: Arc<Engine>,
    ) {
        if self.config.quota == 0 {
            return;
        }
        let me = self.clone();
        let Ok(baseline) = tokio::task::spawn_blocking(move || me.baseline()).await else {
            return;
        };
        tracing::info!(
            "disk quota {} MiB, checked every {:?}",
            mib(self.config.quota),
            self.config.interval
        );
        loop {
            let me = self.clone();
            let Ok(used) = tokio::task::spawn_blocking(move || me.measure(baseline)).await else {
                return;
            };
            self.check(used, &config, &terminals, &dockerd).await;
            tokio::time::sleep(self.config.interval).await;
        }
    }

    /// Acts on one measurement.
    pub async fn check(&self, used: u64, config: &Config, terminals: &Registry, dockerd: &Engine) {
        let quota = self.config.quota;
        let writes = process_writes();
        let (over, was_exceeded, warn, recovered, biggest) = {
            let mut st = self.lock();
            st.used = Some(used);
            let over = used >= quota;
            let warn = !over && !st.warned && used >= quota / 10 * 9;
            if warn {
                st.warned = true;
            }
            if used < quota / 100 * 85 {
                st.warned = false;
            }
            let was = st.exceeded;
            let recovered = was && used < quota / 100 * 95;
            if over {
                st.exceeded = true;
            } else if recovered {
                st.exceeded = false;
            }
            // The process that wrote the most since the last check.
            let biggest = writes
                .iter()
                .filter(|(pid, _)| **pid > 1 && *pid != &(std::process::id() as i32))
                .map(|(pid, w)| (*pid, w.saturating_sub(*st.writes.get(pid).unwrap_or(w))))
                .filter(|(_, d)| *d >= 1024 * 1024)
                .max_by_key(|(_, d)| *d);
            st.writes = writes;
            (over, was, warn, recovered, biggest)
        };
        if warn {
            terminals.notice(&format!(
                "drydock: this instance uses {} MiB of its {} MiB disk quota (90 %). Free space \
                 (docker system prune, rm) before it is full: at 100 % containers are paused.",
                mib(used),
                mib(quota)
            ));
        }
        if over {
            let mut killed = None;
            if let Some((pid, delta)) = biggest {
                let name = comm(pid);
                if !PROTECTED_COMMS.contains(&name.as_str()) {
                    signal_pid(pid as u32, Signal::SIGKILL);
                    killed = Some(format!("{name} (pid {pid}, wrote {} MiB)", mib(delta)));
                }
            }
            let paused = self.pause_containers(config, dockerd).await;
            if !was_exceeded || killed.is_some() || !paused.is_empty() {
                tracing::warn!(
                    used = mib(used),
                    quota = mib(quota),
                    ?killed,
                    ?paused,
                    "disk quota exceeded"
                );
                terminals.notice(&format!(
                    "drydock: disk quota exceeded: {} MiB used of {} MiB. Nested containers are \
                     paused{}. Delete files or images (docker system prune -a, rm) to continue; \
                     paused containers resume below 95 %.",
                    mib(used),
                    mib(quota),
                    killed
                        .map(|k| format!(" and {k} was killed"))
                        .unwrap_or_default()
                ));
            }
        } else if recovered {
            let ids = std::mem::take(&mut self.lock().paused);
            if !ids.is_empty() {
                let script = format!("docker unpause {}", ids.join(" "));
                let _ = self.run_script(config, &script).await;
            }
            tracing::info!(used = mib(used), "back under the disk quota");
            terminals.notice(&format!(
                "drydock: disk use is back to {} MiB of {} MiB; paused containers resumed.",
                mib(used),
                mib(quota)
            ));
        }
    }

    async fn run_script(&self, config: &Config, script: &str) -> Option<String> {
        let req = ExecRequest {
            script: script.to_owned(),
            timeout_ms: Some(20_000),
            max_output: Some(64 * 1024),
        };
        match crate::exec::exec(config, &req).await {
            Ok(r) if r.exit_code == Some(0) => Some(r.output),
            Ok(r) => {
                tracing::warn!("{script:?} failed: {:?} {}", r.exit_code, r.output.trim());
                None
            }
            Err(e) => {
                tracing::warn!("{script:?}: {e}");
                None
            }
        }
    }

    /// Pauses every running nested container; returns the ids it paused now. Without a
    /// running dockerd there are none (and asking would start an on-demand one).
    async fn pause_containers(&self, config: &Config, dockerd: &Engine) -> Vec<String> {
        if !config.dockerd.enabled || dockerd.pid().is_none() {
            return Vec::new();
        }
        let Some(out) = self
            .run_script(config, "docker ps -q --filter status=running")
            .await
        else {
            return Vec::new();
        };
        let ids: Vec<String> = out.split_whitespace().map(String::from).collect();
        if ids.is_empty() {
            return ids;
        }
        let _ = self
            .run_script(config, &format!("docker pause {}", ids.join(" ")))
            .await;
        self.lock().paused.extend(ids.iter().cloned());
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_blocks_once_per_inode() {
        let dir = tempfile::tempdir().unwrap();
        let empty = usage(dir.path());
        std::fs::write(dir.path().join("a"), vec![1u8; 1 << 20]).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("d/b")).unwrap();
        let used = usage(dir.path()) - empty;
        assert!(
            ((1 << 20)..(1 << 20) + 64 * 1024).contains(&used),
            "1 MiB file linked twice counted once: {used}"
        );
    }
}
