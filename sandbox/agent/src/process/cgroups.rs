//! Mount setup done once when the agent is PID 1 of an instance, before dockerd starts:
//! a writable cgroup tree of the instance's own (private cgroup namespace) and rshared `/`.
//!
//! cgroup v1 (`/sys/fs/cgroup` is a tmpfs): unmount it (lazily, with everything below) and
//! mount a fresh tmpfs plus every hierarchy listed in `/proc/self/cgroup`.
//! cgroup v2 (`/sys/fs/cgroup` is cgroup2fs): remount it read-write, move our processes into
//! an `init` child and enable every controller for the children, as nested dockerd needs.
//! Every failure is logged and skipped: a half-working instance beats no instance.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

const CGROUP: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// One v1 hierarchy from `/proc/self/cgroup` (`4:memory:/x`, `1:name=systemd:/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Directory name under /sys/fs/cgroup (`memory`, `cpu,cpuacct`, `systemd`).
    pub dir: String,
    /// Mount data (`memory`, `cpu,cpuacct`, `none,name=systemd`).
    pub options: String,
    /// Controllers co-mounted in this hierarchy that get a symlink (`cpu`, `cpuacct`).
    pub links: Vec<String>,
}

/// Parses `/proc/self/cgroup` into the v1 hierarchies to mount (the v2 `0::` line is skipped).
pub fn parse_proc_cgroup(text: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(_path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            continue;
        }
        if let Some(name) = controllers.strip_prefix("name=") {
            out.push(Hierarchy {
                dir: name.to_string(),
                options: format!("none,name={name}"),
                links: vec![],
            });
            continue;
        }
        let list: Vec<String> = controllers.split(',').map(String::from).collect();
        out.push(Hierarchy {
            dir: controllers.to_string(),
            options: controllers.to_string(),
            links: if list.len() > 1 { list } else { vec![] },
        });
    }
    out
}

/// Runs the whole setup. Only ever call this as PID 1 inside an instance.
pub fn setup() {
    let magic = match nix::sys::statfs::statfs(CGROUP) {
        // The field's width differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        Ok(s) => s.filesystem_type().0 as i64,
        Err(e) => {
            tracing::warn!("cgroup setup skipped: statfs({CGROUP}) failed: {e}");
            return;
        }
    };
    if magic == CGROUP2_SUPER_MAGIC {
        setup_v2();
    } else if magic == TMPFS_MAGIC {
        setup_v1();
    } else {
        tracing::warn!("cgroup setup skipped: {CGROUP} has unknown filesystem type {magic:#x}");
    }
}

/// Makes `/` rshared so mounts made by nested engines propagate (errors are only logged).
pub fn make_root_rshared() {
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SHARED,
        None::<&str>,
    ) {
        tracing::info!("could not make / rshared (continuing): {e}");
    }
}

fn setup_v1() {
    let text = match std::fs::read_to_string("/proc/self/cgroup") {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("cgroup v1 setup skipped: reading /proc/self/cgroup failed: {e}");
            return;
        }
    };
    let hierarchies = parse_proc_cgroup(&text);
    if let Err(e) = umount2(CGROUP, MntFlags::MNT_DETACH) {
        tracing::warn!("cgroup v1 setup: umount {CGROUP} failed: {e}; continuing");
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if let Err(e) = mount(
        Some("tmpfs"),
        CGROUP,
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    ) {
        tracing::warn!("cgroup v1 setup: mounting a tmpfs on {CGROUP} failed: {e}; giving up");
        return;
    }
    for h in hierarchies {
        let dir = Path::new(CGROUP).join(&h.dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!("cgroup v1 setup: mkdir {} failed: {e}", dir.display());
            continue;
        }
        match mount(
            Some("cgroup"),
            &dir,
            Some("cgroup"),
            flags,
            Some(h.options.as_str()),
        ) {
            Ok(()) => tracing::info!(
                "mounted cgroup hierarchy {} at {}",
                h.options,
                dir.display()
            ),
            Err(e) => {
                tracing::warn!(
                    "cgroup v1 setup: mounting {} at {} failed: {e}",
                    h.options,
                    dir.display()
                );
                continue;
            }
        }
        for link in &h.links {
            let at = Path::new(CGROUP).join(link);
            if !at.exists() {
                if let Err(e) = std::os::unix::fs::symlink(&h.dir, &at) {
                    tracing::warn!(
                        "cgroup v1 setup: symlink {} -> {} failed: {e}",
                        at.display(),
                        h.dir
                    );
                }
            }
        }
    }
}

fn setup_v2() {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if let Err(e) = mount(None::<&str>, CGROUP, None::<&str>, flags, None::<&str>) {
        tracing::warn!(
            "cgroup v2 setup: remounting {CGROUP} read-write failed: {e}; trying a fresh mount"
        );
        let _ = umount2(CGROUP, MntFlags::MNT_DETACH);
        let fresh = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if let Err(e) = mount(
            Some("cgroup2"),
            CGROUP,
            Some("cgroup2"),
            fresh,
            None::<&str>,
        ) {
            tracing::warn!("cgroup v2 setup: mounting cgroup2 on {CGROUP} failed: {e}; giving up");
            return;
        }
    }
    // Nested engines need controllers enabled in subtree_control, which the "no internal
    // processes" rule forbids while processes sit in this cgroup: move them to `init`.
    let root = Path::new(CGROUP);
    let init = root.join("init");
    if let Err(e) = std::fs::create_dir_all(&init) {
        tracing::warn!("cgroup v2 setup: mkdir {} failed: {e}", init.display());
        return;
    }
    if let Ok(procs) = std::fs::read_to_string(root.join("cgroup.procs")) {
        for pid in procs.lines().filter(|l| !l.is_empty()) {
            let _ = std::fs::write(init.join("cgroup.procs"), pid);
        }
    }
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    let enable: Vec<String> = controllers
        .split_whitespace()
        .map(|c| format!("+{c}"))
        .collect();
    if !enable.is_empty() {
        if let Err(e) = std::fs::write(root.join("cgroup.subtree_control"), enable.join(" ")) {
            tracing::warn!("cgroup v2 setup: enabling controllers {enable:?} failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_hierarchies() {
        let text = "9:name=systemd:/\n8:pids:/\n4:memory:/x/y\n2:cpu,cpuacct:/\n0::/\n";
        let h = parse_proc_cgroup(text);
        assert_eq!(h.len(), 4);
        assert_eq!(h[0].dir, "systemd");
        assert_eq!(h[0].options, "none,name=systemd");
        assert_eq!(h[1].options, "pids");
        assert_eq!(h[2].dir, "memory");
        assert_eq!(h[3].dir, "cpu,cpuacct");
        assert_eq!(h[3].links, vec!["cpu".to_string(), "cpuacct".to_string()]);
    }

    #[test]
    fn pure_v2_has_no_hierarchies() {
        assert!(parse_proc_cgroup("0::/\n").is_empty());
    }
}
