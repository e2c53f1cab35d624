//! `drydock doctor`: a read-only check of the host, one line per check (`ok   …`,
//! `warn …`, `FAIL …` with what to fix). The caller exits 1 when any check failed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, Settings};
use crate::runtime::docker::{check_capabilities, DockerSettings};
use crate::runtime::subnets::Ipv4Net;
use crate::runtime::{DockerRuntime, Runtime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// Writes the report lines and counts the failures.
pub struct Report<'a> {
    out: &'a mut dyn Write,
    pub failures: usize,
    pub warnings: usize,
}

impl Report<'_> {
    fn line(&mut self, level: Level, check: &str, msg: impl AsRef<str>) {
        let tag = match level {
            Level::Ok => "ok  ",
            Level::Warn => {
                self.warnings += 1;
                "warn"
            }
            Level::Fail => {
                self.failures += 1;
                "FAIL"
            }
        };
        let _ = writeln!(self.out, "{tag} {check}: {}", msg.as_ref());
    }
}

/// 2026-01-01T00:00:00Z: this binary was built after it, so a clock before it is wrong.
const BUILD_YEAR_START: i64 = 1_767_225_600;
/// The free space checked when the configuration has no `min_free_disk_mb` (4 GiB).
const DEFAULT_MIN_FREE_MB: u64 = 4096;

/// Runs every check with the configuration from `config_file` (layered like `serve`:
/// file < `DRYDOCK_*` environment), writing one line per check to `out`. Returns whether no
/// check failed.
pub async fn run(config_file: Option<&Path>, out: &mut dyn Write) -> bool {
    let mut r = Report {
        out,
        failures: 0,
        warnings: 0,
    };
    let shown = config_file
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<data dir>/drydock.toml if present, DRYDOCK_* environment".into());
    let config = match super::load_config(config_file, &Settings::default()) {
        Ok(c) => {
            r.line(Level::Ok, "config", format!("{shown} parses"));
            c
        }
        Err(e) => {
            r.line(
                Level::Fail,
                "config",
                format!("{e} (fix or remove that key; the other checks use the defaults)"),
            );
            match Config::resolve(Settings::default()) {
                Ok(c) => c,
                Err(e) => {
                    r.line(
                        Level::Fail,
                        "config",
                        format!("the defaults do not resolve: {e}"),
                    );
                    return false;
                }
            }
        }
    };
    check_data_dir(&mut r, &config.data_dir);
    if config.admin_token.is_some() {
        r.line(Level::Ok, "admin token", "set");
    } else {
        r.line(
            Level::Warn,
            "admin token",
            "not set: the instructor pages and the admin API are disabled (set admin_token \
             in the config or DRYDOCK_ADMIN_TOKEN)",
        );
    }
    check_docker(&mut r, &config).await;
    check_registry(&mut r, config.registry_mirror.as_deref()).await;
    check_cgroup(&mut r);
    match std::fs::read_to_string("/proc/self/status") {
        Ok(status) => match check_capabilities(&status) {
            Ok(()) => r.line(
                Level::Ok,
                "capabilities",
                "CAP_SYS_ADMIN and CAP_NET_ADMIN are in the bounding set",
            ),
            Err(e) => r.line(
                Level::Fail,
                "capabilities",
                format!("{e} (run on a VM or a privileged host, not in a restricted container)"),
            ),
        },
        Err(e) => r.line(
            Level::Fail,
            "capabilities",
            format!("cannot read /proc/self/status: {e}"),
        ),
    }
    let min_mb = if config.min_free_disk_mb == 0 {
        DEFAULT_MIN_FREE_MB
    } else {
        config.min_free_disk_mb
    };
    for p in [config.data_dir.clone(), PathBuf::from("/var/lib/docker")] {
        check_disk(&mut r, &p, min_mb);
    }
    check_clock(&mut r);
    r.failures == 0
}

fn check_data_dir(r: &mut Report<'_>, dir: &Path) {
    let name = "data dir";
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            match nix::unistd::access(
                dir,
                nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
            ) {
                Ok(()) => r.line(
                    Level::Ok,
                    name,
                    format!("{} exists and is writable", dir.display()),
                ),
                Err(e) => r.line(
                    Level::Fail,
                    name,
                    format!(
                        "{} is not writable by this user ({e}): chown it to the server's user \
                         (chown -R drydock: {})",
                        dir.display(),
                        dir.display()
                    ),
                ),
            }
        }
        Ok(_) => r.line(
            Level::Fail,
            name,
            format!(
                "{} is not a directory: set data_dir to a directory",
                dir.display()
            ),
        ),
        Err(e) => r.line(
            Level::Fail,
            name,
            format!(
                "{} does not exist ({e}): create it (install -d -o drydock -m 0700 {}) or set \
                 data_dir",
                dir.display(),
                dir.display()
            ),
        ),
    }
}

async fn check_docker(r: &mut Report<'_>, config: &Config) {
    let endpoint =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let server_id =
        std::fs::read_to_string(config.data_dir.join(crate::runtime::owner::SERVER_ID_FILE))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "doctor".into());
    let unreachable = |r: &mut Report<'_>, e: &dyn std::fmt::Display| {
        r.line(
            Level::Fail,
            "docker",
            format!(
                "cannot reach the Docker engine at {endpoint}: {e} (is dockerd running? is \
                 this user in the docker group: usermod -aG docker drydock, then log in again)"
            ),
        )
    };
    let runtime = match DockerRuntime::connect(DockerSettings::from_config(config, server_id)).await
    {
        Ok(rt) => rt,
        Err(e) => {
            unreachable(r, &e);
            r.line(
                Level::Fail,
                "instance image",
                "not checked: Docker is unreachable",
            );
            r.line(
                Level::Warn,
                "kubernetes image",
                "not checked: Docker is unreachable",
            );
            return;
        }
    };
    match runtime.image_exists(&config.instance_image).await {
        Ok(found) => {
            r.line(
                Level::Ok,
                "docker",
                format!("the engine at {endpoint} answers"),
            );
            if found {
                r.line(
                    Level::Ok,
                    "instance image",
                    format!("{} present", config.instance_image),
                );
            } else {
                r.line(
                    Level::Fail,
                    "instance image",
                    format!(
                        "{} is missing: run sandbox/build (no session can start without it)",
                        config.instance_image
                    ),
                );
            }
        }
        Err(e) => {
            unreachable(r, &e);
            r.line(
                Level::Fail,
                "instance image",
                "not checked: Docker is unreachable",
            );
            r.line(
                Level::Warn,
                "kubernetes image",
                "not checked: Docker is unreachable",
            );
            return;
        }
    }
    match runtime.image_exists(&config.kubernetes_image).await {
        Ok(true) => r.line(
            Level::Ok,
            "kubernetes image",
            format!("{} present", config.kubernetes_image),
        ),
        Ok(false) => r.line(
            Level::Warn,
            "kubernetes image",
            format!(
                "{} is missing: the kubernetes template cannot start until sandbox/build \
                 builds it (other templates work)",
                config.kubernetes_image
            ),
        ),
        Err(e) => r.line(
            Level::Warn,
            "kubernetes image",
            format!("cannot inspect {}: {e}", config.kubernetes_image),
        ),
    }
    check_network_pool(r, config, &runtime).await;
}

/// Routes of `/proc/net/route` (not the default route, not Drydock's own `dd-*` bridges)
/// whose network overlaps `pool`: as `(interface, network)`.
pub fn foreign_routes_in(route_table: &str, pool: &Ipv4Net) -> Vec<(String, Ipv4Net)> {
    route_table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (iface, dest, mask) = (f.first()?, f.get(1)?, f.get(7)?);
            // Little-endian hex, as the kernel prints it.
            let dest = u32::from_str_radix(dest, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(mask, 16).ok()?.swap_bytes();
            let net = Ipv4Net::new(dest.into(), mask.count_ones() as u8)?;
            (net.prefix() > 0 && !iface.starts_with("dd-") && net.overlaps(pool))
                .then(|| (iface.to_string(), net))
        })
        .collect()
}

async fn check_network_pool(r: &mut Report<'_>, config: &Config, runtime: &DockerRuntime) {
    let Some(pool) = config.network_pool else {
        r.line(
            Level::Warn,
            "network pool",
            "network_pool = \"docker\": Docker's default address pools hold only ~30 session \
             networks; set a range such as 10.200.0.0/16",
        );
        return;
    };
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let clashes = foreign_routes_in(&routes, &pool.range);
    if !clashes.is_empty() {
        let list: Vec<String> = clashes.iter().map(|(i, n)| format!("{n} on {i}")).collect();
        r.line(
            Level::Warn,
            "network pool",
            format!(
                "network_pool {} overlaps this host's routes ({}): instances could not reach \
                 those addresses; choose a free range (network_pool)",
                pool.range,
                list.join(", ")
            ),
        );
        return;
    }
    match runtime.subnet_usage().await {
        Ok(Some((used, cap))) => r.line(
            Level::Ok,
            "network pool",
            format!(
                "{} in /{}s: {used} of {cap} session networks in use",
                pool.range, pool.prefix
            ),
        ),
        Ok(None) => {}
        Err(e) => r.line(
            Level::Warn,
            "network pool",
            format!("cannot list networks: {e}"),
        ),
    }
}

/// `scheme://host:port` of the configured mirror, else the host's registry on port 5000.
fn registry_base(mirror: Option<&str>) -> String {
    mirror
        .and_then(|m| {
            let (scheme, rest) = m.split_once("://")?;
            let host = rest.split('/').next()?;
            Some(format!("{scheme}://{host}"))
        })
        .unwrap_or_else(|| "http://127.0.0.1:5000".into())
}

async fn check_registry(r: &mut Report<'_>, mirror: Option<&str>) {
    let base = registry_base(mirror);
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            r.line(
                Level::Warn,
                "registry",
                format!("cannot build an HTTP client: {e}"),
            );
            return;
        }
    };
    match client.get(format!("{base}/v2/")).send().await {
        Ok(resp) if resp.status().is_success() => {
            r.line(Level::Ok, "registry", format!("{base}/v2/ answers"))
        }
        Ok(resp) => {
            r.line(
                Level::Warn,
                "registry",
                format!(
                    "{base}/v2/ answers {}: instances pull from Docker Hub directly (rate \
                     limits); check drydock-registry",
                    resp.status()
                ),
            );
            return;
        }
        Err(e) => {
            r.line(
                Level::Warn,
                "registry",
                format!(
                    "{base}/v2/ does not answer ({e}): instances pull from Docker Hub directly \
                     (rate limits); start drydock-registry (systemctl start drydock-registry)"
                ),
            );
            return;
        }
    }
    let url = format!("{base}/v2/docker/whalesay/tags/list");
    match client.get(&url).send().await {
        Ok(resp) if resp.status().is_success() => {
            r.line(Level::Ok, "registry content", "docker/whalesay is there")
        }
        Ok(resp) => r.line(
            Level::Warn,
            "registry content",
            format!(
                "{url} answers {}: the lesson images are missing (run sandbox/build --only \
                 lessons)",
                resp.status()
            ),
        ),
        Err(e) => r.line(
            Level::Warn,
            "registry content",
            format!("{url}: {e} (run sandbox/build --only lessons)"),
        ),
    }
}

/// The filesystem type mounted at /sys/fs/cgroup, from a /proc/self/mounts text.
pub fn cgroup_fs_type(mounts: &str) -> Option<&str> {
    mounts.lines().rev().find_map(|l| {
        let mut f = l.split_whitespace();
        let _dev = f.next()?;
        let at = f.next()?;
        let fstype = f.next()?;
        (at == "/sys/fs/cgroup").then_some(fstype)
    })
}

fn check_cgroup(r: &mut Report<'_>) {
    match std::fs::read_to_string("/proc/self/mounts") {
        Ok(m) => match cgroup_fs_type(&m) {
            Some("cgroup2") => r.line(Level::Ok, "cgroup", "v2 (unified)"),
            Some("tmpfs") => r.line(
                Level::Ok,
                "cgroup",
                "v1 (works; v2 gives instances better resource accounting)",
            ),
            Some(other) => r.line(
                Level::Warn,
                "cgroup",
                format!("/sys/fs/cgroup is a {other} mount: unknown cgroup layout"),
            ),
            None => r.line(
                Level::Warn,
                "cgroup",
                "nothing is mounted at /sys/fs/cgroup: dockerd needs cgroups",
            ),
        },
        Err(e) => r.line(
            Level::Warn,
            "cgroup",
            format!("cannot read /proc/self/mounts: {e}"),
        ),
    }
}

fn check_disk(r: &mut Report<'_>, path: &Path, min_mb: u64) {
    let name = format!("disk {}", path.display());
    match crate::sessions::guard::free_bytes(path) {
        Ok(free) => {
            let free_mb = free / (1024 * 1024);
            if free_mb < min_mb {
                r.line(
                    Level::Warn,
                    &name,
                    format!(
                        "{free_mb} MiB free, below {min_mb} MiB: new sessions are refused \
                         until space is freed (docker system prune, old backups)"
                    ),
                )
            } else {
                r.line(Level::Ok, &name, format!("{free_mb} MiB free"))
            }
        }
        Err(e) => r.line(Level::Warn, &name, format!("cannot measure: {e}")),
    }
}

fn check_clock(r: &mut Report<'_>) {
    let now = chrono::Utc::now();
    let shown = now.format("%Y-%m-%dT%H:%M:%SZ");
    if now.timestamp() < BUILD_YEAR_START {
        r.line(
            Level::Fail,
            "clock",
            format!(
                "the system time {shown} is before this binary was built (2026): fix the \
                 clock (timedatectl set-ntp true); tokens and session expiry depend on it"
            ),
        );
        return;
    }
    match std::process::Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .output()
    {
        Ok(o) if o.status.success() => match String::from_utf8_lossy(&o.stdout).trim() {
            "yes" => r.line(Level::Ok, "clock", format!("{shown} UTC, NTP-synchronized")),
            "no" => r.line(
                Level::Warn,
                "clock",
                format!("{shown} UTC, not NTP-synchronized (timedatectl set-ntp true)"),
            ),
            _ => r.line(Level::Ok, "clock", format!("{shown} UTC")),
        },
        _ => r.line(Level::Ok, "clock", format!("{shown} UTC")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_overlapping_the_pool() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t0000C80A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            dd-abc\t1000C80A\t00000000\t0001\t0\t0\t0\tF0FFFFFF\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let pool: Ipv4Net = "10.200.0.0/16".parse().unwrap();
        let found = foreign_routes_in(table, &pool);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "eth0");
        assert_eq!(found[0].1.to_string(), "10.200.0.0/16");
        let other: Ipv4Net = "10.99.0.0/16".parse().unwrap();
        assert!(foreign_routes_in(table, &other).is_empty());
    }

    #[test]
    fn cgroup_type_and_registry_base() {
        let m = "sysfs /sys sysfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n";
        assert_eq!(cgroup_fs_type(m), Some("cgroup2"));
        assert_eq!(
            cgroup_fs_type("tmpfs /sys/fs/cgroup tmpfs ro 0 0"),
            Some("tmpfs")
        );
        assert_eq!(cgroup_fs_type("proc /proc proc rw 0 0"), None);
        assert_eq!(registry_base(None), "http://127.0.0.1:5000");
        assert_eq!(
            registry_base(Some("http://172.17.0.1:5000/")),
            "http://172.17.0.1:5000"
        );
    }
}
