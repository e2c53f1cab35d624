//! Supervisor of the instance's engines: dockerd (and k3s where the image has it). Starts
//! each with its log file, polls readiness (every 20 ms for the first seconds, so an instance
//! is ready as soon as its dockerd answers), and restarts it with backoff (1 s, 2 s, 4 s, …
//! 10 s) when it dies, counting restarts. Exit statuses come from the reaper. Every state
//! change wakes [`Supervisor::wait_ready`] (the long-polled `/v1/health?wait_ms=`).
//!
//! With `DRYDOCK_DOCKERD_ON_DEMAND=1` dockerd starts only when something first connects to
//! its socket: the agent binds the socket itself, reports dockerd as `standby` (which counts
//! as ready), and at the first pending connection starts dockerd with the listening socket
//! as fd 3 (`--host fd://`, systemd's socket-activation convention), so that connection is
//! answered by dockerd once it is up. An idle instance then costs no dockerd or containerd.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drydock_protocol::agent::{EngineState, EngineStatus, SECRET_ENV};
use nix::sys::signal::Signal;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::process::reaper::Reaper;
use crate::process::signals::signal_pid;

const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// After running this long, a crash starts the backoff from 1 s again.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Readiness polls: fast while an engine is just starting, slower if it takes long.
const READY_POLL_FAST: Duration = Duration::from_millis(20);
const READY_POLL_SLOW: Duration = Duration::from_millis(250);
const FAST_POLL_FOR: Duration = Duration::from_secs(5);
/// k3s takes tens of seconds and each probe runs `k3s kubectl`: poll it less often.
const K3S_READY_POLL: Duration = Duration::from_secs(1);
/// How long a list of NodePorts is reused before `k3s kubectl` is asked again.
const NODE_PORTS_TTL: Duration = Duration::from_secs(5);
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("opening log file {path} for {engine} failed: {source}")]
    Log {
        engine: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("starting {engine} ({bin}) failed: {source}")]
    Spawn {
        engine: &'static str,
        bin: String,
        source: std::io::Error,
    },
    #[error("binding {engine}'s socket {path} for on-demand start failed: {source}")]
    Bind {
        engine: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// How an engine shows it is ready.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// `GET /_ping` on the Docker API socket answers 200 OK.
    DockerPing(PathBuf),
    /// `k3s kubectl get nodes` lists a Ready node and the default service account exists
    /// (until it does, creating a pod fails).
    K3sNodes(PathBuf),
}

/// What to run for one engine.
#[derive(Debug, Clone)]
pub struct EngineSpec {
    pub name: &'static str,
    pub bin: PathBuf,
    pub args: Vec<OsString>,
    pub log: PathBuf,
    pub readiness: Readiness,
    /// A listening socket handed to the engine as fd 3 with `LISTEN_FDS=1` (on-demand start).
    pub listen_fd: Option<Arc<OwnedFd>>,
}

/// One supervised engine's live state.
pub struct Engine {
    pub name: &'static str,
    status: Mutex<EngineStatus>,
    pid: Mutex<Option<u32>>,
    /// Shared by every engine of a supervisor: woken on each state change.
    changed: Arc<Notify>,
}

impl Engine {
    fn new(name: &'static str, present: bool, changed: Arc<Notify>) -> Arc<Self> {
        Arc::new(Engine {
            name,
            changed,
            status: Mutex::new(EngineStatus {
                state: if present {
                    EngineState::Starting
                } else {
                    EngineState::Absent
                },
                restarts: 0,
                message: None,
            }),
            pid: Mutex::new(None),
        })
    }

    pub fn status(&self) -> EngineStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, f: impl FnOnce(&mut EngineStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_waiters();
    }

    fn set_pid(&self, pid: Option<u32>) {
        *self.pid.lock().unwrap_or_else(|e| e.into_inner()) = pid;
    }

    pub fn pid(&self) -> Option<u32> {
        *self.pid.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Supervisor {
    pub dockerd: Arc<Engine>,
    pub k3s: Arc<Engine>,
    changed: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    k3s_bin: PathBuf,
    /// NodePorts of the k3s services and when they were read.
    node_ports: tokio::sync::Mutex<Option<(Instant, Vec<u16>)>>,
}

/// dockerd's command line from the configuration; `fd://` instead of the socket path when
/// it is started on demand with the agent's listening socket.
pub fn dockerd_args(config: &Config, socket_activated: bool) -> Vec<OsString> {
    let host = if socket_activated {
        "fd://".to_owned()
    } else {
        format!("unix://{}", config.dockerd_socket.display())
    };
    let mut args: Vec<OsString> = vec![
        "--host".into(),
        host.into(),
        "--shutdown-timeout".into(),
        "3".into(),
    ];
    for m in &config.registry_mirrors {
        args.push("--registry-mirror".into());
        args.push(m.into());
    }
    for r in &config.insecure_registries {
        args.push("--insecure-registry".into());
        args.push(r.into());
    }
    args
}

/// Binds `path` as a listening unix socket (replacing a stale socket file), mode 0660 and
/// group `docker` like dockerd's own.
fn bind_socket(path: &Path) -> Result<std::os::unix::net::UnixListener, std::io::Error> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    // As dockerd does with its own socket: group `docker` where the image has it.
    if let Ok(Some(g)) = nix::unistd::Group::from_name("docker") {
        nix::unistd::chown(path, None, Some(g.gid)).map_err(std::io::Error::from)?;
    }
    // Left blocking: O_NONBLOCK belongs to the open file, which the engine inherits, and an
    // engine that accepts in blocking mode would get EAGAIN. Waiting for the first
    // connection (epoll through AsyncFd) does not need it: the agent never accepts.
    Ok(listener)
}

impl Supervisor {
    /// Starts every engine the configuration enables.
    pub fn start(config: &Config) -> Arc<Self> {
        let (shutdown, _) = watch::channel(false);
        let changed = Arc::new(Notify::new());
        let sup = Arc::new(Supervisor {
            dockerd: Engine::new("dockerd", config.dockerd.enabled, changed.clone()),
            k3s: Engine::new("k3s", config.k3s.enabled, changed.clone()),
            changed,
            shutdown,
            k3s_bin: config.k3s.bin.clone(),
            node_ports: tokio::sync::Mutex::new(None),
        });
        if config.dockerd.enabled {
            let listener = if config.dockerd_on_demand {
                match bind_socket(&config.dockerd_socket) {
                    Ok(l) => Some(l),
                    Err(source) => {
                        let e = SpawnError::Bind {
                            engine: "dockerd",
                            path: config.dockerd_socket.display().to_string(),
                            source,
                        };
                        tracing::warn!("{e}; starting dockerd now instead");
                        None
                    }
                }
            } else {
                None
            };
            let spec = EngineSpec {
                name: "dockerd",
                bin: config.dockerd.bin.clone(),
                args: dockerd_args(config, listener.is_some()),
                log: config.dockerd.log.clone(),
                readiness: Readiness::DockerPing(config.dockerd_socket.clone()),
                listen_fd: None,
            };
            let (engine, stop) = (sup.dockerd.clone(), sup.shutdown.subscribe());
            match listener {
                Some(l) => {
                    tokio::spawn(run_on_demand(engine, spec, l, stop));
                }
                None => {
                    tokio::spawn(run(engine, spec, stop));
                }
            }
        }
        if config.k3s.enabled {
            let spec = EngineSpec {
                name: "k3s",
                bin: config.k3s.bin.clone(),
                args: vec![
                    "server".into(),
                    "--write-kubeconfig-mode".into(),
                    "644".into(),
                ],
                log: config.k3s.log.clone(),
                readiness: Readiness::K3sNodes(config.k3s.bin.clone()),
                listen_fd: None,
            };
            tokio::spawn(run(sup.k3s.clone(), spec, sup.shutdown.subscribe()));
        }
        sup
    }

    /// Waits until [`Self::ready`] or `max` has passed; returns whether it is ready.
    pub async fn wait_ready(&self, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.ready() {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.ready();
            }
        }
    }

    /// True when every engine the image has is ready.
    pub fn ready(&self) -> bool {
        [&self.dockerd, &self.k3s].iter().all(|e| {
            matches!(
                e.status().state,
                EngineState::Absent | EngineState::Ready | EngineState::Standby
            )
        })
    }

    /// The NodePorts of k3s' services while k3s is ready (nothing is listening on them: the
    /// kube-proxy forwards them with iptables, so `/v1/ports` adds them to what it reads from
    /// /proc). Read with `k3s kubectl`, reused for a few seconds.
    pub async fn node_ports(&self) -> Vec<u16> {
        if self.k3s.status().state != EngineState::Ready {
            return Vec::new();
        }
        let mut cached = self.node_ports.lock().await;
        if let Some((at, ports)) = cached.as_ref() {
            if at.elapsed() < NODE_PORTS_TTL {
                return ports.clone();
            }
        }
        let ports = match crate::exec::run_simple(
            &self.k3s_bin,
            &[
                "kubectl",
                "get",
                "services",
                "--all-namespaces",
                "-o",
                "jsonpath={.items[*].spec.ports[*].nodePort}",
            ],
            Duration::from_secs(5),
        )
        .await
        {
            Ok(res) if res.exit_code == Some(0) => parse_node_ports(&res.output),
            _ => Vec::new(),
        };
        *cached = Some((Instant::now(), ports.clone()));
        ports
    }

    /// Stops restarting and SIGTERMs every running engine; returns their pids.
    pub fn terminate(&self) -> Vec<u32> {
        let _ = self.shutdown.send(true);
        let pids: Vec<u32> = [&self.dockerd, &self.k3s]
            .iter()
            .filter_map(|e| e.pid())
            .collect();
        for pid in &pids {
            signal_pid(*pid, Signal::SIGTERM);
        }
        pids
    }
}

fn spawn_engine(
    spec: &EngineSpec,
) -> Result<(u32, crate::process::reaper::ExitReceiver), SpawnError> {
    if let Some(dir) = spec.log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let log = File::create(&spec.log).map_err(|source| SpawnError::Log {
        engine: spec.name,
        path: spec.log.display().to_string(),
        source,
    })?;
    let log2 = log.try_clone().map_err(|source| SpawnError::Log {
        engine: spec.name,
        path: spec.log.display().to_string(),
        source,
    })?;
    let ((), pid, rx) = Reaper::global().spawn(|| {
        let mut cmd = match &spec.listen_fd {
            None => Command::new(&spec.bin),
            Some(fd) => {
                // systemd's convention: LISTEN_FDS sockets from fd 3 on, for the process
                // LISTEN_PID, which is only known in the child: the shell exports its own
                // pid and execs the engine, which keeps it.
                let mut c = Command::new("/bin/sh");
                c.arg("-c")
                    .arg("export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\"")
                    .arg(&spec.bin);
                let raw = fd.as_raw_fd();
                // SAFETY: runs in the forked child before exec; dup2 and fcntl are
                // async-signal-safe and touch only this process's descriptor table.
                unsafe {
                    c.pre_exec(move || pass_as_fd3(raw));
                }
                c
            }
        };
        cmd.args(&spec.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .env_remove(SECRET_ENV)
            .current_dir("/")
            .process_group(0);
        if std::env::var_os("PATH").is_none() {
            cmd.env("PATH", DEFAULT_PATH);
        }
        let child = cmd.spawn().map_err(|source| SpawnError::Spawn {
            engine: spec.name,
            bin: spec.bin.display().to_string(),
            source,
        })?;
        Ok::<_, SpawnError>(((), child.id()))
    })?;
    Ok((pid, rx))
}

/// Makes `fd` the child's fd 3 without close-on-exec (in a forked child, before exec).
fn pass_as_fd3(fd: RawFd) -> std::io::Result<()> {
    if fd == 3 {
        // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )?;
    } else {
        // SAFETY: dup2 only changes this (child) process's descriptor table.
        if unsafe { libc::dup2(fd, 3) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// On-demand start: reports `standby` until something connects to the socket, then runs
/// the engine with the socket as fd 3 (and keeps restarting it like [`run`]).
async fn run_on_demand(
    engine: Arc<Engine>,
    mut spec: EngineSpec,
    listener: std::os::unix::net::UnixListener,
    mut shutdown: watch::Receiver<bool>,
) {
    engine.set(|s| s.state = EngineState::Standby);
    // SAFETY: the AsyncFd owns the listener, so its fd stays open for as long as it is
    // registered; `into_inner` deregisters it before the fd is handed on.
    let registered = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) };
    let listener = match registered {
        Ok(fd) => {
            tokio::select! {
                r = fd.readable() => {
                    if let Err(e) = r {
                        tracing::warn!("waiting on {}'s socket failed: {e}; starting it now", spec.name);
                    }
                }
                _ = shutdown.changed() => return,
            }
            fd.into_inner()
        }
        Err(e) => {
            let (listener, e) = e.into_parts();
            tracing::warn!("cannot watch {}'s socket: {e}; starting it now", spec.name);
            listener
        }
    };
    tracing::info!("first connection to {}'s socket: starting it", spec.name);
    spec.listen_fd = Some(Arc::new(OwnedFd::from(listener)));
    run(engine, spec, shutdown).await;
}

async fn is_ready(r: &Readiness) -> bool {
    match r {
        Readiness::DockerPing(sock) => docker_ping(sock).await,
        Readiness::K3sNodes(bin) => {
            match crate::exec::run_simple(
                bin,
                &["kubectl", "get", "nodes", "--no-headers"],
                Duration::from_secs(10),
            )
            .await
            {
                Ok(res) if res.exit_code == Some(0) && nodes_ready(&res.output) => {}
                _ => return false,
            }
            matches!(
                crate::exec::run_simple(
                    bin,
                    &["kubectl", "get", "serviceaccount", "default", "-o", "name"],
                    Duration::from_secs(10),
                )
                .await,
                Ok(res) if res.exit_code == Some(0)
            )
        }
    }
}

/// The port numbers in `kubectl get services -o jsonpath={...nodePort}` output.
pub fn parse_node_ports(output: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = output
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| *p != 0)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Whether `kubectl get nodes --no-headers` output lists a Ready node.
pub fn nodes_ready(output: &str) -> bool {
    output.lines().any(|l| {
        l.split_whitespace()
            .nth(1)
            .is_some_and(|s| s.split(',').any(|x| x == "Ready"))
    })
}

/// `GET /_ping` over the Docker API unix socket.
pub async fn docker_ping(sock: &Path) -> bool {
    let attempt = async {
        let mut s = tokio::net::UnixStream::connect(sock).await.ok()?;
        s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(ping_ok(&buf))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Whether a raw HTTP response is `200` with body `OK`.
pub fn ping_ok(resp: &[u8]) -> bool {
    let text = String::from_utf8_lossy(resp);
    let status_ok = text
        .lines()
        .next()
        .is_some_and(|l| l.starts_with("HTTP/1.") && l.split_whitespace().nth(1) == Some("200"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .unwrap_or("");
    status_ok && body == "OK"
}

/// How long to wait before the next readiness poll of an engine started `since` ago.
fn poll_interval(r: &Readiness, since: Duration) -> Duration {
    match r {
        Readiness::K3sNodes(_) => K3S_READY_POLL,
        Readiness::DockerPing(_) if since < FAST_POLL_FOR => READY_POLL_FAST,
        Readiness::DockerPing(_) => READY_POLL_SLOW,
    }
}

async fn run(engine: Arc<Engine>, spec: EngineSpec, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    let mut first = true;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if !first {
            engine.set(|s| s.restarts += 1);
        }
        first = false;
        engine.set(|s| s.state = EngineState::Starting);
        let started = Instant::now();
        let failure = match spawn_engine(&spec) {
            Err(e) => e.to_string(),
            Ok((pid, mut exit_rx)) => {
                engine.set_pid(Some(pid));
                tracing::info!(
                    "{} started (pid {pid}), log {}",
                    spec.name,
                    spec.log.display()
                );
                let mut ready = false;
                let mut next_poll = tokio::time::Instant::now();
                let status = loop {
                    tokio::select! {
                        s = &mut exit_rx => break s,
                        _ = tokio::time::sleep_until(next_poll), if !ready => {
                            if is_ready(&spec.readiness).await {
                                ready = true;
                                tracing::info!("{} is ready after {:?}", spec.name, started.elapsed());
                                engine.set(|s| s.state = EngineState::Ready);
                            }
                            next_poll = tokio::time::Instant::now()
                                + poll_interval(&spec.readiness, started.elapsed());
                        }
                        _ = shutdown.changed() => {
                            // The shutdown path signals and waits for the process itself.
                            return;
                        }
                    }
                };
                engine.set_pid(None);
                match status {
                    Ok(st) => format!(
                        "{} ({}) exited: {st}; see {}",
                        spec.name,
                        spec.bin.display(),
                        spec.log.display()
                    ),
                    Err(_) => format!("{} exit status was lost", spec.name),
                }
            }
        };
        if *shutdown.borrow() {
            return;
        }
        tracing::warn!("{failure}; restarting in {backoff:?}");
        engine.set(|s| {
            s.state = EngineState::Failed;
            s.message = Some(failure);
        });
        if started.elapsed() > STABLE_AFTER {
            backoff = Duration::from_secs(1);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_response() {
        assert!(ping_ok(
            b"HTTP/1.0 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 2\r\n\r\nOK"
        ));
        assert!(!ping_ok(b"HTTP/1.0 500 Internal Server Error\r\n\r\nOK"));
        assert!(!ping_ok(b"HTTP/1.0 200 OK\r\n\r\nnope"));
        assert!(!ping_ok(b""));
    }

    #[test]
    fn k3s_nodes() {
        assert!(nodes_ready(
            "node1   Ready    control-plane,master   1m   v1.30.0+k3s1\n"
        ));
        assert!(!nodes_ready(
            "node1   NotReady    control-plane   1m   v1.30.0\n"
        ));
        assert!(!nodes_ready(""));
    }

    #[test]
    fn node_ports_from_jsonpath() {
        assert_eq!(parse_node_ports("30080 31000 30080\n"), vec![30080, 31000]);
        assert!(parse_node_ports("").is_empty());
        assert_eq!(parse_node_ports("x 0 30001"), vec![30001]);
    }
}
