//! Agent configuration: everything read from the environment at start-up, validated once.

use std::net::SocketAddr;
use std::path::PathBuf;

use drydock_protocol::agent::{DEFAULT_PORT, SECRET_ENV};

/// Largest file moved through `/v1/files` unless `DRYDOCK_AGENT_MAX_FILE` says otherwise.
pub const DEFAULT_MAX_FILE: u64 = 64 * 1024 * 1024;

/// Why the configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{SECRET_ENV} is not set or empty: the agent refuses to start without a secret")]
    MissingSecret,
    #[error("DRYDOCK_AGENT_LISTEN={value:?} is not a socket address (expected e.g. 0.0.0.0:4200)")]
    BadListen { value: String },
    #[error("{var}={value:?} is not a positive number of bytes")]
    BadNumber { var: &'static str, value: String },
}

/// One supervised engine binary (dockerd, k3s).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// False when the engine is disabled by the environment, or no path was configured
    /// and the default binary is missing.
    pub enabled: bool,
    pub bin: PathBuf,
    pub log: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub secret: String,
    /// HOME and working directory of shells and exec commands.
    pub home: PathBuf,
    /// Every path of `/v1/files` must resolve inside this directory.
    pub files_root: PathBuf,
    pub max_file: u64,
    pub dockerd: EngineConfig,
    /// Unix socket dockerd listens on (`--host unix://…`) and readiness polls.
    pub dockerd_socket: PathBuf,
    /// Start dockerd only when something first connects to its socket
    /// (`DRYDOCK_DOCKERD_ON_DEMAND=1`): the agent holds the socket and hands it to dockerd.
    pub dockerd_on_demand: bool,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub k3s: EngineConfig,
    /// Directory the resource statistics are read from.
    pub cgroup_root: PathBuf,
    /// Whether to rebuild /sys/fs/cgroup when running as PID 1.
    pub cgroup_setup: bool,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn list(name: &str) -> Vec<String> {
    var(name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn engine(
    switch: &str,
    bin_var: &str,
    default_bins: &[&str],
    log_var: &str,
    default_log: &str,
) -> EngineConfig {
    // Without an explicit path, the first default that exists (Debian's docker.io has
    // /usr/sbin/dockerd, upstream packages /usr/bin/dockerd).
    let explicit = var(bin_var);
    let bin = explicit.clone().map(PathBuf::from).unwrap_or_else(|| {
        default_bins
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(default_bins[0]))
    });
    let switched_on = var(switch).as_deref() != Some("0");
    EngineConfig {
        // An explicitly configured binary that is missing shows up as `failed`, not `absent`.
        enabled: switched_on && (explicit.is_some() || bin.exists()),
        bin,
        log: PathBuf::from(var(log_var).unwrap_or_else(|| default_log.to_string())),
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let secret = var(SECRET_ENV).ok_or(ConfigError::MissingSecret)?;
        let listen_raw =
            var("DRYDOCK_AGENT_LISTEN").unwrap_or_else(|| format!("0.0.0.0:{DEFAULT_PORT}"));
        let listen = listen_raw.parse().map_err(|_| ConfigError::BadListen {
            value: listen_raw.clone(),
        })?;
        let home = var("DRYDOCK_AGENT_HOME")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/root")).filter(|p| p.is_dir()))
            .or_else(|| var("HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/"));
        let files_root =
            PathBuf::from(var("DRYDOCK_AGENT_FILES_ROOT").unwrap_or_else(|| "/root".into()));
        let max_file = match var("DRYDOCK_AGENT_MAX_FILE") {
            None => DEFAULT_MAX_FILE,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::BadNumber {
                    var: "DRYDOCK_AGENT_MAX_FILE",
                    value: v,
                })?,
        };
        Ok(Config {
            listen,
            secret,
            home,
            files_root,
            max_file,
            dockerd: engine(
                "DRYDOCK_DOCKERD",
                "DRYDOCK_DOCKERD_BIN",
                &["/usr/bin/dockerd", "/usr/sbin/dockerd"],
                "DRYDOCK_DOCKERD_LOG",
                "/var/log/dockerd.log",
            ),
            dockerd_socket: PathBuf::from(
                var("DRYDOCK_DOCKERD_SOCKET").unwrap_or_else(|| "/var/run/docker.sock".into()),
            ),
            dockerd_on_demand: var("DRYDOCK_DOCKERD_ON_DEMAND").as_deref() == Some("1"),
            registry_mirrors: list("DRYDOCK_REGISTRY_MIRROR"),
            insecure_registries: list("DRYDOCK_INSECURE_REGISTRIES"),
            k3s: engine(
                "DRYDOCK_K3S",
                "DRYDOCK_K3S_BIN",
                &["/usr/local/bin/k3s"],
                "DRYDOCK_K3S_LOG",
                "/var/log/k3s.log",
            ),
            cgroup_root: PathBuf::from(
                var("DRYDOCK_AGENT_CGROUP_ROOT").unwrap_or_else(|| "/sys/fs/cgroup".into()),
            ),
            cgroup_setup: var("DRYDOCK_CGROUP_SETUP").as_deref() != Some("0"),
        })
    }

    /// The environment shells and exec commands get: built from scratch so nothing of the
    /// agent's own environment (the secret above all) reaches a learner.
    pub fn shell_env(&self) -> Vec<(String, String)> {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        let user = if nix::unistd::geteuid().is_root() {
            "root".to_string()
        } else {
            var("USER").unwrap_or_else(|| "root".into())
        };
        vec![
            ("HOME".into(), self.home.display().to_string()),
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("TERM".into(), "xterm-256color".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("LC_ALL".into(), "C.UTF-8".into()),
            ("SHELL".into(), shell_path().display().to_string()),
            ("USER".into(), user),
            ("HOSTNAME".into(), hostname),
        ]
    }
}

/// The shell learners get: bash when the image has it, /bin/sh otherwise.
pub fn shell_path() -> PathBuf {
    ["/bin/bash", "/usr/bin/bash"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/bin/sh"))
}

/// Whether [`shell_path`] is bash (which takes `-l`).
pub fn shell_is_bash() -> bool {
    shell_path().ends_with("bash")
}
