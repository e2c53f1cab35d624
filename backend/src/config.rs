//! Server configuration: a TOML file, overridden by `DRYDOCK_*` environment variables,
//! overridden by command-line flags. [`Config`] is the resolved result everything else reads.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::runtime::subnets::SubnetPool;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("environment variable {name}={value:?} is not valid: {reason}")]
    Env {
        name: String,
        value: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The OCI runtime instances run with (Docker's `HostConfig.Runtime`); see docs/security.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciRuntime {
    /// Plain runc: namespaces, Docker's default capabilities plus SYS_ADMIN and NET_ADMIN,
    /// seccomp unconfined. Not a strong boundary.
    Runc,
    /// Sysbox: a user namespace per instance, Docker-in-Docker without extra capabilities.
    SysboxRunc,
    /// gVisor: a user-space kernel between the instance and the host.
    Runsc,
}

impl OciRuntime {
    pub fn parse(s: &str) -> Option<OciRuntime> {
        match s {
            "runc" => Some(OciRuntime::Runc),
            "sysbox-runc" => Some(OciRuntime::SysboxRunc),
            "runsc" => Some(OciRuntime::Runsc),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            OciRuntime::Runc => "runc",
            OciRuntime::SysboxRunc => "sysbox-runc",
            OciRuntime::Runsc => "runsc",
        }
    }
}

/// What instances may reach beyond the registry mirror (never the metadata address, other
/// sessions, the host's other services or SMTP); see docs/security.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Nothing outside the host but the registry mirror.
    Off,
    /// DNS (53) and HTTP(S) (80, 443) only.
    Http,
    /// Everything not denied above (lessons run apt-get and pull images).
    All,
}

impl Egress {
    pub fn parse(s: &str) -> Option<Egress> {
        match s {
            "off" => Some(Egress::Off),
            "http" => Some(Egress::Http),
            "all" => Some(Egress::All),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Egress::Off => "off",
            Egress::Http => "http",
            Egress::All => "all",
        }
    }
}

/// Every setting, as it may appear in the TOML file (all optional). The same names, upper-cased
/// and prefixed with `DRYDOCK_`, are the environment variables.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub admin_token: Option<String>,
    pub public_origin: Option<String>,
    pub session_minutes: Option<u64>,
    pub max_session_minutes: Option<u64>,
    /// Session length in seconds; overrides `session_minutes` (meant for tests).
    pub session_seconds: Option<u64>,
    pub max_instances_per_session: Option<usize>,
    pub max_sessions: Option<usize>,
    pub instance_image: Option<String>,
    /// Instance image of the `kubernetes` template (drydock/instance plus k3s).
    pub kubernetes_image: Option<String>,
    pub cpus: Option<f64>,
    pub memory_mb: Option<u64>,
    pub pids: Option<i64>,
    /// Relative CPU weight of an instance against the others (Docker cpu shares).
    pub cpu_shares: Option<i64>,
    /// Open files per process in an instance (`ulimit -n`, soft and hard).
    pub nofile: Option<u64>,
    /// The instance container's own log (json-file): MiB per file, and files kept.
    pub log_max_mb: Option<u64>,
    pub log_max_files: Option<u64>,
    /// Disk an instance may fill (nested Docker data plus files it writes), MiB; 0: no quota.
    pub disk_quota_mb: Option<u64>,
    /// How often each instance's agent measures its disk use, in seconds.
    pub disk_check_seconds: Option<u64>,
    /// New sessions are refused while the data directory's or Docker's disk has less free
    /// space than this, in MiB.
    pub min_free_disk_mb: Option<u64>,
    /// OCI runtime of the instances: `runc`, `sysbox-runc` or `runsc`.
    pub runtime: Option<String>,
    /// What instances may reach outside: `off`, `http` (80/443 and DNS) or `all`.
    pub egress: Option<String>,
    /// Whether the server installs its host firewall rules (iptables).
    pub netpolicy: Option<bool>,
    /// Outbound bandwidth of each instance in Mbit/s (tc on the host side); 0: unlimited.
    pub egress_mbit: Option<u64>,
    /// Concurrent sessions one client IP may hold; 0: no limit.
    pub max_sessions_per_ip: Option<usize>,
    /// When set, creating a session needs this token (`X-Drydock-Invite` or `"invite"`).
    pub invite_token: Option<String>,
    /// Minutes without terminal input or output before a session is warned, then ended
    /// `idle_grace_minutes` later; 0: never.
    pub idle_minutes: Option<u64>,
    pub idle_grace_minutes: Option<u64>,
    /// Idle limits in seconds; override the minutes (meant for tests).
    pub idle_seconds: Option<u64>,
    pub idle_grace_seconds: Option<u64>,
    /// Whether a graceful shutdown also ends every session (default: they keep running).
    pub stop_sessions_on_exit: Option<bool>,
    pub registry_mirror: Option<String>,
    /// Session creations allowed per client IP per minute.
    pub create_per_minute: Option<u32>,
    /// How long an instance may take to report ready, in seconds.
    pub ready_timeout_seconds: Option<u64>,
    /// A lessons directory: its lessons replace the embedded ones of the same id, new ids
    /// are added.
    pub lessons_dir: Option<PathBuf>,
    /// Free-playground (docker) instances kept started ahead of sessions; 0: none.
    pub playground_warm_pool: Option<usize>,
    /// Wildcard domain for host-based port previews: `{port}-{instance}-{session}.<domain>`
    /// (optionally with `:port`). Unset: previews are path-based only (`/p/…`).
    pub preview_domain: Option<String>,
    /// IPv4 range session networks get their subnets from (`"docker"`: Docker's default
    /// address pools, which hold only ~30 networks).
    pub network_pool: Option<String>,
    /// Prefix length of each session network's subnet (28: 13 addresses for instances).
    pub network_prefix: Option<u8>,
    /// Start an instance's dockerd only when the learner first uses docker (the agent holds
    /// its socket): idle instances cost less and are ready sooner; the first docker command
    /// waits for dockerd's start instead.
    pub dockerd_on_demand: Option<bool>,
}

macro_rules! merge_fields {
    ($dst:ident, $src:ident; $($f:ident),*) => { $( if $src.$f.is_some() { $dst.$f = $src.$f.clone(); } )* };
}

impl Settings {
    /// Overlays every field that `other` sets.
    pub fn overlay(&mut self, other: &Settings) {
        merge_fields!(self, other; cpu_shares, nofile, log_max_mb, log_max_files, disk_quota_mb,
            disk_check_seconds, min_free_disk_mb, runtime, egress, netpolicy, egress_mbit,
            max_sessions_per_ip, invite_token, idle_minutes, idle_grace_minutes, idle_seconds,
            idle_grace_seconds, stop_sessions_on_exit);
        merge_fields!(self, other; listen, data_dir, admin_token, public_origin, session_minutes,
            max_session_minutes, session_seconds, max_instances_per_session, max_sessions,
            instance_image, kubernetes_image, cpus, memory_mb, pids, registry_mirror, create_per_minute,
            ready_timeout_seconds);
        merge_fields!(self, other; lessons_dir);
        merge_fields!(self, other; playground_warm_pool);
        merge_fields!(self, other; preview_domain, network_pool, network_prefix, dockerd_on_demand);
    }

    pub fn from_toml_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Reads `DRYDOCK_<FIELD>` variables through `get` (normally `std::env::var`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        fn parse<T: std::str::FromStr>(
            get: &impl Fn(&str) -> Option<String>,
            name: &str,
        ) -> Result<Option<T>, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            match get(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|e: T::Err| ConfigError::Env {
                        name: name.to_owned(),
                        value: v.clone(),
                        reason: e.to_string(),
                    }),
            }
        }
        Ok(Settings {
            listen: parse(&get, "DRYDOCK_LISTEN")?,
            data_dir: parse(&get, "DRYDOCK_DATA_DIR")?,
            admin_token: parse(&get, "DRYDOCK_ADMIN_TOKEN")?,
            public_origin: parse(&get, "DRYDOCK_PUBLIC_ORIGIN")?,
            session_minutes: parse(&get, "DRYDOCK_SESSION_MINUTES")?,
            max_session_minutes: parse(&get, "DRYDOCK_MAX_SESSION_MINUTES")?,
            session_seconds: parse(&get, "DRYDOCK_SESSION_SECONDS")?,
            max_instances_per_session: parse(&get, "DRYDOCK_MAX_INSTANCES_PER_SESSION")?,
            max_sessions: parse(&get, "DRYDOCK_MAX_SESSIONS")?,
            instance_image: parse(&get, "DRYDOCK_INSTANCE_IMAGE")?,
            kubernetes_image: parse(&get, "DRYDOCK_KUBERNETES_IMAGE")?,
            cpus: parse(&get, "DRYDOCK_CPUS")?,
            memory_mb: parse(&get, "DRYDOCK_MEMORY_MB")?,
            pids: parse(&get, "DRYDOCK_PIDS")?,
            cpu_shares: parse(&get, "DRYDOCK_CPU_SHARES")?,
            nofile: parse(&get, "DRYDOCK_NOFILE")?,
            log_max_mb: parse(&get, "DRYDOCK_LOG_MAX_MB")?,
            log_max_files: parse(&get, "DRYDOCK_LOG_MAX_FILES")?,
            disk_quota_mb: parse(&get, "DRYDOCK_DISK_QUOTA_MB")?,
            disk_check_seconds: parse(&get, "DRYDOCK_DISK_CHECK_SECONDS")?,
            min_free_disk_mb: parse(&get, "DRYDOCK_MIN_FREE_DISK_MB")?,
            runtime: parse(&get, "DRYDOCK_RUNTIME")?,
            egress: parse(&get, "DRYDOCK_EGRESS")?,
            netpolicy: parse(&get, "DRYDOCK_NETPOLICY")?,
            egress_mbit: parse(&get, "DRYDOCK_EGRESS_MBIT")?,
            max_sessions_per_ip: parse(&get, "DRYDOCK_MAX_SESSIONS_PER_IP")?,
            invite_token: parse(&get, "DRYDOCK_INVITE_TOKEN")?,
            idle_minutes: parse(&get, "DRYDOCK_IDLE_MINUTES")?,
            idle_grace_minutes: parse(&get, "DRYDOCK_IDLE_GRACE_MINUTES")?,
            idle_seconds: parse(&get, "DRYDOCK_IDLE_SECONDS")?,
            idle_grace_seconds: parse(&get, "DRYDOCK_IDLE_GRACE_SECONDS")?,
            stop_sessions_on_exit: parse(&get, "DRYDOCK_STOP_SESSIONS_ON_EXIT")?,
            registry_mirror: parse(&get, "DRYDOCK_REGISTRY_MIRROR")?,
            create_per_minute: parse(&get, "DRYDOCK_CREATE_PER_MINUTE")?,
            ready_timeout_seconds: parse(&get, "DRYDOCK_READY_TIMEOUT_SECONDS")?,
            lessons_dir: parse(&get, "DRYDOCK_LESSONS_DIR")?,
            playground_warm_pool: parse(&get, "DRYDOCK_PLAYGROUND_WARM_POOL")?,
            preview_domain: parse(&get, "DRYDOCK_PREVIEW_DOMAIN")?,
            network_pool: parse(&get, "DRYDOCK_NETWORK_POOL")?,
            network_prefix: parse(&get, "DRYDOCK_NETWORK_PREFIX")?,
            dockerd_on_demand: parse(&get, "DRYDOCK_DOCKERD_ON_DEMAND")?,
        })
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub admin_token: Option<String>,
    /// The configured public origin, if any.
    pub public_origin: Option<String>,
    /// Origins a browser WebSocket may come from (the configured public origin, or the ones
    /// derived from the listening address).
    pub allowed_origins: Vec<String>,
    pub session_length: Duration,
    pub max_session_length: Duration,
    pub max_instances_per_session: usize,
    pub max_sessions: usize,
    pub instance_image: String,
    /// Instance image of the `kubernetes` template; the template is available while it exists.
    pub kubernetes_image: String,
    pub cpus: f64,
    pub memory_mb: u64,
    pub pids: i64,
    pub cpu_shares: i64,
    pub nofile: u64,
    pub log_max_mb: u64,
    pub log_max_files: u64,
    /// 0: no disk quota.
    pub disk_quota_mb: u64,
    pub disk_check: Duration,
    pub min_free_disk_mb: u64,
    pub runtime: OciRuntime,
    pub egress: Egress,
    pub netpolicy: bool,
    /// 0: unlimited.
    pub egress_mbit: u64,
    /// 0: no limit.
    pub max_sessions_per_ip: usize,
    pub invite_token: Option<String>,
    /// Zero: idle sessions are never ended.
    pub idle_after: Duration,
    pub idle_grace: Duration,
    pub stop_sessions_on_exit: bool,
    pub registry_mirror: Option<String>,
    pub create_per_minute: u32,
    pub ready_timeout: Duration,
    /// Lessons replacing or adding to the embedded ones.
    pub lessons_dir: Option<PathBuf>,
    /// Free-playground instances kept started ahead of sessions (sessions/warm.rs).
    pub playground_warm_pool: usize,
    /// Host-based previews' domain, normalised (lower case, no `*.`), maybe with `:port`.
    pub preview_domain: Option<String>,
    /// Where session networks get their subnets; `None`: Docker's default address pools.
    pub network_pool: Option<SubnetPool>,
    /// Instances start dockerd at the first connection to its socket.
    pub dockerd_on_demand: bool,
}

/// The default `network_pool` and `network_prefix`.
pub const DEFAULT_NETWORK_POOL: &str = "10.200.0.0/16";
pub const DEFAULT_NETWORK_PREFIX: u8 = 28;

/// `10.200.0.0/16` in /28s: 4096 session networks.
pub fn default_network_pool() -> SubnetPool {
    let range = DEFAULT_NETWORK_POOL
        .parse()
        .expect("the default pool parses");
    SubnetPool::new(range, DEFAULT_NETWORK_PREFIX, 5).expect("the default pool fits")
}

impl Config {
    /// Resolves settings (already layered file < env < flags) into a configuration.
    pub fn resolve(s: Settings) -> Result<Config, ConfigError> {
        let listen = s
            .listen
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080));
        let session_length = match s.session_seconds {
            Some(secs) => Duration::from_secs(secs),
            None => Duration::from_secs(60 * s.session_minutes.unwrap_or(60)),
        };
        if session_length.is_zero() {
            return Err(ConfigError::Invalid(
                "session length must be positive".into(),
            ));
        }
        let max_session_length =
            Duration::from_secs(60 * s.max_session_minutes.unwrap_or(240)).max(session_length);
        let allowed_origins = match &s.public_origin {
            Some(o) => vec![o.trim_end_matches('/').to_owned()],
            None => derived_origins(listen),
        };
        let runtime = match s.runtime.as_deref().map(str::trim) {
            None | Some("") => OciRuntime::Runc,
            Some(r) => OciRuntime::parse(r).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "runtime = {r:?} is not known: expected \"runc\", \"sysbox-runc\" or \"runsc\""
                ))
            })?,
        };
        let egress = match s.egress.as_deref().map(str::trim) {
            None | Some("") => Egress::All,
            Some(e) => Egress::parse(e).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "egress = {e:?} is not known: expected \"off\", \"http\" or \"all\""
                ))
            })?,
        };
        let idle_after = match s.idle_seconds {
            Some(secs) => Duration::from_secs(secs),
            None => Duration::from_secs(60 * s.idle_minutes.unwrap_or(30)),
        };
        let idle_grace = match s.idle_grace_seconds {
            Some(secs) => Duration::from_secs(secs),
            None => Duration::from_secs(60 * s.idle_grace_minutes.unwrap_or(5)),
        };
        let cpus = s.cpus.unwrap_or(1.0);
        if !(cpus > 0.0 && cpus <= 1024.0) {
            return Err(ConfigError::Invalid(format!(
                "cpus = {cpus} is out of range (0, 1024]"
            )));
        }
        let max_instances_per_session = s.max_instances_per_session.unwrap_or(5);
        if max_instances_per_session == 0 {
            return Err(ConfigError::Invalid(
                "max_instances_per_session must be at least 1".into(),
            ));
        }
        let preview_domain = match s.preview_domain.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) => Some(normalize_preview_domain(d).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "preview_domain = {d:?} is not a domain: expected something like \
                     \"preview.example.com\" (a wildcard DNS name *.preview.example.com \
                     pointing at this server), optionally with \":port\""
                ))
            })?),
        };
        let network_pool = match s.network_pool.as_deref().map(str::trim) {
            Some("docker") => None,
            pool => {
                let range = pool
                    .filter(|p| !p.is_empty())
                    .unwrap_or(DEFAULT_NETWORK_POOL)
                    .parse()
                    .map_err(|e| ConfigError::Invalid(format!("network_pool: {e}")))?;
                let prefix = s.network_prefix.unwrap_or(DEFAULT_NETWORK_PREFIX);
                Some(
                    SubnetPool::new(range, prefix, max_instances_per_session)
                        .map_err(|e| ConfigError::Invalid(e.to_string()))?,
                )
            }
        };
        Ok(Config {
            listen,
            data_dir: s.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            admin_token: s.admin_token.filter(|t| !t.is_empty()),
            public_origin: s.public_origin.clone(),
            allowed_origins,
            session_length,
            max_session_length,
            max_instances_per_session,
            max_sessions: s.max_sessions.unwrap_or(50),
            instance_image: s
                .instance_image
                .unwrap_or_else(|| "drydock/instance:latest".to_owned()),
            kubernetes_image: s
                .kubernetes_image
                .unwrap_or_else(|| "drydock/instance-k3s:latest".to_owned()),
            cpus,
            memory_mb: s.memory_mb.unwrap_or(2048),
            pids: s.pids.unwrap_or(1024),
            cpu_shares: s.cpu_shares.unwrap_or(512),
            nofile: s.nofile.unwrap_or(65536),
            log_max_mb: s.log_max_mb.unwrap_or(10).max(1),
            log_max_files: s.log_max_files.unwrap_or(2).max(1),
            disk_quota_mb: s.disk_quota_mb.unwrap_or(10240),
            disk_check: Duration::from_secs(s.disk_check_seconds.unwrap_or(15).max(1)),
            min_free_disk_mb: s.min_free_disk_mb.unwrap_or(4096),
            runtime,
            egress,
            netpolicy: s.netpolicy.unwrap_or(true),
            egress_mbit: s.egress_mbit.unwrap_or(0),
            max_sessions_per_ip: s.max_sessions_per_ip.unwrap_or(10),
            invite_token: s.invite_token.filter(|t| !t.is_empty()),
            idle_after,
            idle_grace,
            stop_sessions_on_exit: s.stop_sessions_on_exit.unwrap_or(false),
            registry_mirror: s.registry_mirror.filter(|m| !m.is_empty()),
            create_per_minute: s.create_per_minute.unwrap_or(10),
            ready_timeout: Duration::from_secs(s.ready_timeout_seconds.unwrap_or(60)),
            lessons_dir: s.lessons_dir,
            playground_warm_pool: s.playground_warm_pool.unwrap_or(0),
            preview_domain,
            network_pool,
            dockerd_on_demand: s.dockerd_on_demand.unwrap_or(true),
        })
    }

    /// The port of the registry mirror on the host (from `registry_mirror`, default 5000):
    /// the one host port instances may reach.
    pub fn registry_mirror_port(&self) -> u16 {
        self.registry_mirror
            .as_deref()
            .and_then(|m| m.split("://").nth(1))
            .and_then(|rest| rest.split('/').next())
            .and_then(|hostport| hostport.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(5000)
    }

    /// Whether a browser `Origin` header value is one this server serves.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// `*.Preview.Example.com.` → `preview.example.com`; `None` unless it is dot-separated labels
/// of `[a-z0-9-]`, optionally followed by `:port`.
pub fn normalize_preview_domain(d: &str) -> Option<String> {
    let d = d.trim().to_ascii_lowercase();
    let d = d.strip_prefix("*.").unwrap_or(&d).trim_start_matches('.');
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let host = host.trim_end_matches('.');
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.is_empty() || host.len() > 200 || !host.split('.').all(label_ok) {
        return None;
    }
    match port {
        None => Some(host.to_owned()),
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(|p| format!("{host}:{p}")),
    }
}

/// The origins a browser uses for a server listening on `listen` (no public origin set).
pub fn derived_origins(listen: SocketAddr) -> Vec<String> {
    let port = listen.port();
    let ip = listen.ip();
    let mut out = Vec::new();
    if ip.is_unspecified() || ip.is_loopback() {
        out.push(format!("http://localhost:{port}"));
        out.push(format!("http://127.0.0.1:{port}"));
        out.push(format!("http://[::1]:{port}"));
    } else {
        out.push(format!("http://{listen}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order() {
        let mut s: Settings =
            toml::from_str("listen = \"0.0.0.0:9000\"\nmax_sessions = 3\ncpus = 2.0").unwrap();
        let env = Settings::from_env(|k| match k {
            "DRYDOCK_MAX_SESSIONS" => Some("7".into()),
            _ => None,
        })
        .unwrap();
        s.overlay(&env);
        s.overlay(&Settings {
            cpus: Some(0.5),
            ..Default::default()
        });
        let c = Config::resolve(s).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.max_sessions, 7);
        assert_eq!(c.cpus, 0.5);
        assert!(c.origin_allowed("http://localhost:9000"));
        assert!(!c.origin_allowed("http://evil.example"));
    }

    #[test]
    fn preview_domain_is_normalised_and_checked() {
        let resolve = |d: &str| {
            Config::resolve(Settings {
                preview_domain: Some(d.into()),
                ..Default::default()
            })
        };
        let c = resolve("*.Preview.Example.com.").unwrap();
        assert_eq!(c.preview_domain.as_deref(), Some("preview.example.com"));
        let c = resolve("localhost:8080").unwrap();
        assert_eq!(c.preview_domain.as_deref(), Some("localhost:8080"));
        assert_eq!(resolve("").unwrap().preview_domain, None);
        for bad in [
            "http://x.example",
            "a..b",
            "x.example:0",
            "under_score.example",
        ] {
            let e = resolve(bad).unwrap_err().to_string();
            assert!(e.contains("preview_domain"), "{bad}: {e}");
        }
    }

    #[test]
    fn network_pool_defaults_parses_and_can_be_dockers() {
        let resolve = |pool: Option<&str>, prefix: Option<u8>| {
            Config::resolve(Settings {
                network_pool: pool.map(Into::into),
                network_prefix: prefix,
                ..Default::default()
            })
        };
        let c = resolve(None, None).unwrap();
        let pool = c.network_pool.unwrap();
        assert_eq!(pool.range.to_string(), "10.200.0.0/16");
        assert_eq!((pool.prefix, pool.capacity()), (28, 4096));
        let c = resolve(Some("10.99.0.0/20"), Some(27)).unwrap();
        assert_eq!(c.network_pool.unwrap().capacity(), 128);
        assert!(resolve(Some("docker"), None)
            .unwrap()
            .network_pool
            .is_none());
        let e = resolve(Some("10.99.0.0"), None).unwrap_err().to_string();
        assert!(e.contains("network_pool") && e.contains("10.99.0.0"), "{e}");
        let e = resolve(None, Some(8)).unwrap_err().to_string();
        assert!(e.contains("network_prefix /8"), "{e}");
    }

    #[test]
    fn bad_env_names_the_variable() {
        let e = Settings::from_env(|k| (k == "DRYDOCK_PIDS").then(|| "many".into())).unwrap_err();
        assert!(e.to_string().contains("DRYDOCK_PIDS"), "{e}");
    }
}
