//! [`Runtime`] on the local Docker engine (bollard over /var/run/docker.sock).
//!
//! Per session: a private bridge network `drydock-<session>`. Per instance: a container
//! `drydock-<session>-<node>` (hostname `<node>`) from the instance image with Docker's default
//! capabilities plus SYS_ADMIN and NET_ADMIN (never `--privileged`), seccomp/apparmor/systempaths
//! unconfined, a private cgroup namespace, CPU/memory/pids limits, tmpfs on /run and /tmp and a
//! named volume `drydock-<session>-<node>-docker` at /var/lib/docker. Everything carries the
//! labels `drydock.managed=true`, `drydock.server` (this server's owner id, see
//! [`super::owner`]), `drydock.session`, `drydock.instance`. Only resources with this server's
//! id (or, from before owner ids, none) are listed as owned.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum,
    HostConfigLogConfig, Ipam, IpamConfig, NetworkCreateRequest, NetworkingConfig,
    ResourcesUlimits, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, InspectNetworkOptions, ListContainersOptions,
    ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StartContainerOptions,
};
use bollard::Docker;

use super::owner::LABEL_SERVER;
use super::subnets::{Ipv4Net, SubnetPool};
use super::{
    InstanceHandle, InstanceSpec, NetworkInfo, Owned, OwnedInstance, Runtime, RuntimeError,
};

pub const LABEL_MANAGED: &str = "drydock.managed";
pub const LABEL_SESSION: &str = "drydock.session";
pub const LABEL_INSTANCE: &str = "drydock.instance";

/// Linux capability numbers the instances need on top of Docker's defaults.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;

/// `want` open files, at most this process's hard limit (the engine on the same host runs
/// with the same or a higher one); `None` for 0 (the engine's default).
pub fn capped_nofile(want: u64) -> Option<u64> {
    if want == 0 {
        return None;
    }
    let hard = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(4))
                .and_then(|v| v.parse::<u64>().ok())
        });
    Some(hard.map_or(want, |h| want.min(h)))
}

/// Whether capability `bit` is in this process's bounding set (the engine on the same host
/// has the same set): without CAP_SYS_RESOURCE runc cannot give a container a negative OOM
/// score and the container fails to start.
pub fn host_has_capability(bit: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1u64 << bit) != 0)
}

/// Resource limits and image of every instance.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    pub image: String,
    pub cpus: f64,
    pub memory_mb: u64,
    pub pids: i64,
    /// Port the agent listens on inside the instance.
    pub agent_port: u16,
    /// This server's owner id (label `drydock.server`).
    pub server_id: String,
    /// Relative CPU weight (cpu shares).
    pub cpu_shares: i64,
    /// `ulimit -n` (soft and hard) of the instance's processes.
    pub nofile: u64,
    /// json-file log rotation of the instance container: MiB per file, files kept.
    pub log_max_mb: u64,
    pub log_max_files: u64,
    /// OCI runtime (`HostConfig.Runtime`): `runc`, `sysbox-runc` or `runsc`.
    pub oci_runtime: String,
    /// Where session networks get their subnets; `None`: Docker's default address pools.
    pub network_pool: Option<SubnetPool>,
}

impl DockerSettings {
    /// The settings `config` asks for, with this server's owner id.
    pub fn from_config(config: &crate::config::Config, server_id: String) -> DockerSettings {
        DockerSettings {
            image: config.instance_image.clone(),
            cpus: config.cpus,
            memory_mb: config.memory_mb,
            pids: config.pids,
            agent_port: drydock_protocol::agent::DEFAULT_PORT,
            server_id,
            cpu_shares: config.cpu_shares,
            nofile: config.nofile,
            log_max_mb: config.log_max_mb,
            log_max_files: config.log_max_files,
            oci_runtime: config.runtime.as_str().to_owned(),
            network_pool: config.network_pool,
        }
    }

    /// Settings with the defaults of [`crate::config::Config`] (for tests and tools).
    pub fn new(image: &str, server_id: &str) -> DockerSettings {
        DockerSettings {
            image: image.to_owned(),
            cpus: 1.0,
            memory_mb: 2048,
            pids: 1024,
            agent_port: drydock_protocol::agent::DEFAULT_PORT,
            server_id: server_id.to_owned(),
            cpu_shares: 512,
            nofile: 65536,
            log_max_mb: 10,
            log_max_files: 2,
            oci_runtime: "runc".to_owned(),
            network_pool: Some(crate::config::default_network_pool()),
        }
    }
}

pub struct DockerRuntime {
    docker: Docker,
    settings: DockerSettings,
    /// The host firewall (see [`super::netpolicy`]); `None` when switched off.
    netpolicy: Option<std::sync::Arc<super::netpolicy::NetPolicy>>,
    /// Held while a subnet is picked and its network created, so two sessions never pick
    /// the same one.
    subnet_lock: tokio::sync::Mutex<()>,
}

pub fn network_name(session: &str) -> String {
    format!("drydock-{session}")
}

pub fn container_name(session: &str, node: &str) -> String {
    format!("drydock-{session}-{node}")
}

pub fn volume_name(session: &str, node: &str) -> String {
    format!("drydock-{session}-{node}-docker")
}

fn engine(op: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> RuntimeError {
    let op = op.into();
    move |e| RuntimeError::Engine {
        op,
        message: engine_message(&e),
    }
}

fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        other => other.to_string(),
    }
}

fn is_status(e: &bollard::errors::Error, code: u16) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == code)
}

fn labels(server: &str, session: &str, instance: Option<&str>) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_SERVER.to_owned(), server.to_owned()),
        (LABEL_SESSION.to_owned(), session.to_owned()),
    ]);
    if let Some(i) = instance {
        l.insert(LABEL_INSTANCE.to_owned(), i.to_owned());
    }
    l
}

fn label_filter(extra: &[String]) -> HashMap<String, Vec<String>> {
    let mut v = vec![format!("{LABEL_MANAGED}=true")];
    v.extend_from_slice(extra);
    HashMap::from([("label".to_owned(), v)])
}

/// Checks, from a `/proc/self/status` text, that the capabilities the instances need are in
/// this process's bounding set (dockerd runs with the same set on the same host).
pub fn check_capabilities(proc_status: &str) -> Result<(), RuntimeError> {
    let bnd = proc_status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(str::trim)
        .ok_or_else(|| {
            RuntimeError::Capabilities("cannot find CapBnd in /proc/self/status".into())
        })?;
    let mask = u64::from_str_radix(bnd, 16)
        .map_err(|e| RuntimeError::Capabilities(format!("cannot parse CapBnd {bnd:?}: {e}")))?;
    let missing: Vec<&str> = [(CAP_SYS_ADMIN, "SYS_ADMIN"), (CAP_NET_ADMIN, "NET_ADMIN")]
        .into_iter()
        .filter(|(bit, _)| mask & (1u64 << bit) == 0)
        .map(|(_, n)| n)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::Capabilities(format!(
            "this host does not grant {} (CapBnd {bnd}); instances need Docker's default \
             capabilities plus SYS_ADMIN and NET_ADMIN to run a nested Docker engine",
            missing.join(" and ")
        )))
    }
}

/// How often a network create is retried with the next subnet when the engine reports an
/// overlap (another server or tool took the subnet after it was listed).
const SUBNET_ATTEMPTS: usize = 8;

impl DockerRuntime {
    /// IPv4 subnets of every network on the engine, Drydock's or not.
    async fn used_subnets(&self) -> Result<Vec<Ipv4Net>, RuntimeError> {
        let networks = self
            .docker
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(engine("list networks"))?;
        Ok(networks
            .into_iter()
            .filter_map(|n| n.ipam.and_then(|i| i.config))
            .flatten()
            .filter_map(|c| c.subnet.and_then(|s| s.parse::<Ipv4Net>().ok()))
            .collect())
    }

    /// How many of the pool's subnets are taken, and how many it has (`None` without a
    /// pool), for `drydock doctor`.
    pub async fn subnet_usage(&self) -> Result<Option<(u64, u64)>, RuntimeError> {
        let Some(pool) = self.settings.network_pool else {
            return Ok(None);
        };
        let used = self.used_subnets().await?;
        Ok(Some((pool.in_use(&used), pool.capacity())))
    }

    /// Creates `req` on the first free subnet of `pool`; returns the network id.
    async fn create_in_pool(
        &self,
        mut req: NetworkCreateRequest,
        pool: SubnetPool,
    ) -> Result<String, RuntimeError> {
        let _guard = self.subnet_lock.lock().await;
        let mut used = self.used_subnets().await?;
        let mut last = String::new();
        for _ in 0..SUBNET_ATTEMPTS {
            let Some(subnet) = pool.first_free(&used) else {
                return Err(RuntimeError::Exhausted(format!(
                    "no free /{} subnet left in network_pool {} for network {}: {} of {} \
                     in use; end sessions or widen network_pool",
                    pool.prefix,
                    pool.range,
                    req.name,
                    pool.in_use(&used),
                    pool.capacity()
                )));
            };
            req.ipam = Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(subnet.gateway().to_string()),
                    ..Default::default()
                }]),
                options: None,
            });
            match self.docker.create_network(req.clone()).await {
                Ok(created) => return Ok(created.id),
                Err(e) if engine_message(&e).to_lowercase().contains("overlap") => {
                    last = engine_message(&e);
                    used.push(subnet);
                }
                Err(e) => {
                    return Err(engine(format!("create network {} on {subnet}", req.name))(
                        e,
                    ))
                }
            }
        }
        Err(RuntimeError::Engine {
            op: format!("create network {}", req.name),
            message: format!(
                "{SUBNET_ATTEMPTS} subnets of {} overlapped: {last}",
                pool.range
            ),
        })
    }

    /// Connects to the local engine and agrees on an API version.
    pub async fn connect(settings: DockerSettings) -> Result<DockerRuntime, RuntimeError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| RuntimeError::Unreachable(engine_message(&e)))?
            .negotiate_version()
            .await
            .map_err(|e| RuntimeError::Unreachable(engine_message(&e)))?;
        Ok(DockerRuntime {
            docker,
            settings,
            netpolicy: None,
            subnet_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Applies `policy` to every session network this runtime creates or finds (the
    /// caller has installed its global rules).
    pub fn with_netpolicy(mut self, policy: std::sync::Arc<super::netpolicy::NetPolicy>) -> Self {
        self.netpolicy = Some(policy);
        self
    }

    /// Ids of the networks labelled with `session`.
    async fn session_networks(&self, session: &str) -> Result<Vec<String>, RuntimeError> {
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(label_filter(&[format!("{LABEL_SESSION}={session}")])),
            }))
            .await
            .map_err(engine(format!("list networks of session {session}")))?;
        Ok(networks.into_iter().filter_map(|n| n.id).collect())
    }

    fn agent_addr(&self, ip: &str) -> Option<SocketAddr> {
        ip.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.settings.agent_port))
    }

    /// Everything with the Drydock labels whose labels satisfy `keep`.
    async fn list_where(
        &self,
        keep: impl Fn(&HashMap<String, String>) -> bool,
    ) -> Result<Owned, RuntimeError> {
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(label_filter(&[])),
                ..Default::default()
            }))
            .await
            .map_err(engine("list containers"))?;
        let mut owned = Owned::default();
        for c in containers {
            let labels = c.labels.clone().unwrap_or_default();
            if !keep(&labels) {
                continue;
            }
            let (Some(session), Some(name)) =
                (labels.get(LABEL_SESSION), labels.get(LABEL_INSTANCE))
            else {
                continue;
            };
            let ip = c
                .network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref())
                .and_then(|n| n.get(&network_name(session)))
                .and_then(|e| e.ip_address.clone())
                .unwrap_or_default();
            owned.instances.push(OwnedInstance {
                session: session.clone(),
                name: name.clone(),
                container_id: c.id.clone().unwrap_or_default(),
                running: matches!(
                    c.state,
                    Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
                ),
                agent_addr: self.agent_addr(&ip),
            });
        }
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(label_filter(&[])),
            }))
            .await
            .map_err(engine("list networks"))?;
        owned.networks = networks
            .into_iter()
            .filter_map(|n| n.labels)
            .filter(|l| keep(l))
            .filter_map(|l| l.get(LABEL_SESSION).cloned())
            .collect();
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(label_filter(&[])),
            }))
            .await
            .map_err(engine("list volumes"))?;
        owned.volumes = volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| keep(&v.labels))
            .filter_map(|v| {
                Some((
                    v.labels.get(LABEL_SESSION)?.clone(),
                    v.labels.get(LABEL_INSTANCE)?.clone(),
                ))
            })
            .collect();
        Ok(owned)
    }

    /// Applies the network policy's bandwidth limit to a started container.
    async fn limit_bandwidth(
        &self,
        session: &str,
        c: &bollard::models::ContainerInspectResponse,
    ) -> Result<(), RuntimeError> {
        let Some(np) = &self.netpolicy else {
            return Ok(());
        };
        let pid = c.state.as_ref().and_then(|s| s.pid).unwrap_or(0);
        np.limit_instance(pid)
            .await
            .map(|_| ())
            .map_err(|e| RuntimeError::Engine {
                op: format!("limiting the bandwidth of a container of session {session}"),
                message: e.to_string(),
            })
    }

    fn owned_from_inspect(
        &self,
        session: &str,
        name: &str,
        c: &bollard::models::ContainerInspectResponse,
    ) -> OwnedInstance {
        let net = network_name(session);
        let ip = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| n.get(&net))
            .and_then(|e| e.ip_address.clone())
            .unwrap_or_default();
        OwnedInstance {
            session: session.to_owned(),
            name: name.to_owned(),
            container_id: c.id.clone().unwrap_or_default(),
            running: c.state.as_ref().and_then(|s| s.running).unwrap_or(false),
            agent_addr: self.agent_addr(&ip),
        }
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn check(&self) -> Result<(), RuntimeError> {
        self.docker
            .ping()
            .await
            .map_err(|e| RuntimeError::Unreachable(engine_message(&e)))?;
        match self.docker.inspect_image(&self.settings.image).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {
                return Err(RuntimeError::ImageMissing(self.settings.image.clone()))
            }
            Err(e) => return Err(engine(format!("inspect image {}", self.settings.image))(e)),
        }
        if self.settings.oci_runtime != "runc" {
            let info = self
                .docker
                .info()
                .await
                .map_err(|e| RuntimeError::Unreachable(engine_message(&e)))?;
            let known = info.runtimes.unwrap_or_default();
            if !known.contains_key(&self.settings.oci_runtime) {
                return Err(RuntimeError::Capabilities(format!(
                    "runtime = {:?} is configured but this Docker engine does not have it \
                     (it has: {}); install it and register it in /etc/docker/daemon.json, \
                     or set runtime = \"runc\"",
                    self.settings.oci_runtime,
                    known.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let status = std::fs::read_to_string("/proc/self/status").map_err(|e| {
            RuntimeError::Capabilities(format!("cannot read /proc/self/status: {e}"))
        })?;
        check_capabilities(&status)
    }

    async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 404) => Ok(false),
            Err(e) => Err(engine(format!("inspect image {image}"))(e)),
        }
    }

    async fn create_network(&self, session: &str) -> Result<NetworkInfo, RuntimeError> {
        let name = network_name(session);
        // Docker (before API 1.44) happily creates a second network of the same name, so look
        // first; the caller serialises operations on one session.
        let mut ids = self.session_networks(session).await?;
        if ids.is_empty() {
            let req = NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                labels: Some(labels(&self.settings.server_id, session, None)),
                options: Some(HashMap::from([
                    (
                        "com.docker.network.bridge.enable_icc".to_owned(),
                        "true".to_owned(),
                    ),
                    // `dd-<session>`: the host firewall matches instances' traffic by it.
                    (
                        "com.docker.network.bridge.name".to_owned(),
                        super::netpolicy::bridge_name(session),
                    ),
                ])),
                ..Default::default()
            };
            let id = match self.settings.network_pool {
                Some(pool) => self.create_in_pool(req, pool).await?,
                None => {
                    self.docker
                        .create_network(req)
                        .await
                        .map_err(engine(format!("create network {name}")))?
                        .id
                }
            };
            ids.push(id);
        }
        if let Some(np) = &self.netpolicy {
            // Before any instance starts on it.
            np.add_session(session)
                .await
                .map_err(|e| RuntimeError::Engine {
                    op: format!("firewall rules of network {name}"),
                    message: e.to_string(),
                })?;
        }
        let inspect = self
            .docker
            .inspect_network(&ids[0], None::<InspectNetworkOptions>)
            .await
            .map_err(engine(format!("inspect network {name}")))?;
        let gateway = inspect
            .ipam
            .and_then(|i| i.config)
            .into_iter()
            .flatten()
            .filter_map(|c| c.gateway)
            .find_map(|g| g.parse::<IpAddr>().ok());
        Ok(NetworkInfo { name, gateway })
    }

    async fn remove_network(&self, session: &str) -> Result<(), RuntimeError> {
        let name = network_name(session);
        for id in self.session_networks(session).await? {
            match self.docker.remove_network(&id).await {
                Ok(()) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(engine(format!("remove network {name} ({id})"))(e)),
            }
        }
        if let Some(np) = &self.netpolicy {
            np.remove_session(session)
                .await
                .map_err(|e| RuntimeError::Engine {
                    op: format!("removing the firewall rules of network {name}"),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }

    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceHandle, RuntimeError> {
        let status = std::fs::read_to_string("/proc/self/status").map_err(|e| {
            RuntimeError::Capabilities(format!("cannot read /proc/self/status: {e}"))
        })?;
        check_capabilities(&status)?;

        let (session, node) = (spec.session.as_str(), spec.name.as_str());
        let cname = container_name(session, node);
        let vname = volume_name(session, node);
        let net = network_name(session);

        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(vname.clone()),
                labels: Some(labels(&self.settings.server_id, session, Some(node))),
                ..Default::default()
            })
            .await
            .map_err(engine(format!("create volume {vname}")))?;

        let s = &self.settings;
        let image = spec.image.clone().unwrap_or_else(|| s.image.clone());
        let memory = (s.memory_mb as i64).saturating_mul(1024 * 1024);
        let host_config = HostConfig {
            nano_cpus: Some((s.cpus * 1e9) as i64),
            cpu_shares: Some(s.cpu_shares),
            // Memory and memory+swap equal: no swap, so a memory bomb is OOM-killed inside
            // the instance's cgroup. Where the host grants CAP_SYS_RESOURCE the agent (PID 1)
            // gets -1000 (and its children 0); elsewhere runc cannot set a negative score and
            // the agent raises its children to +500 instead (sandbox/agent process/oom.rs).
            memory: Some(memory),
            memory_swap: Some(memory),
            oom_score_adj: host_has_capability(CAP_SYS_RESOURCE).then_some(-1000),
            pids_limit: Some(s.pids),
            // Capped at this host's own hard limit: raising a hard limit needs
            // CAP_SYS_RESOURCE, and runc fails the start when it cannot.
            ulimits: capped_nofile(s.nofile).map(|n| {
                vec![ResourcesUlimits {
                    name: Some("nofile".into()),
                    soft: Some(n as i64),
                    hard: Some(n as i64),
                }]
            }),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([
                    ("max-size".to_owned(), format!("{}m", s.log_max_mb)),
                    ("max-file".to_owned(), s.log_max_files.to_string()),
                ])),
            }),
            runtime: Some(s.oci_runtime.clone()),
            // Sysbox gives nested Docker what it needs inside a user namespace; runc and
            // runsc need the two capabilities and no seccomp filter (sandbox/images/README.md).
            cap_add: (s.oci_runtime != "sysbox-runc")
                .then(|| vec!["SYS_ADMIN".into(), "NET_ADMIN".into()]),
            security_opt: Some(if s.oci_runtime == "sysbox-runc" {
                vec![]
            } else {
                vec!["seccomp=unconfined".into(), "apparmor=unconfined".into()]
            }),
            // `--security-opt systempaths=unconfined` is a CLI spelling of these two.
            masked_paths: Some(vec![]),
            readonly_paths: Some(vec![]),
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
            binds: Some(vec![format!("{vname}:/var/lib/docker")]),
            tmpfs: Some(HashMap::from([
                ("/run".to_owned(), "rw,exec,mode=755".to_owned()),
                ("/tmp".to_owned(), "rw,exec,mode=1777".to_owned()),
            ])),
            network_mode: Some(net.clone()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            hostname: Some(node.to_owned()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels(&self.settings.server_id, session, Some(node))),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    net.clone(),
                    EndpointSettings {
                        aliases: Some(vec![node.to_owned()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(cname.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| {
                if is_status(&e, 404) {
                    RuntimeError::ImageMissing(image.clone())
                } else {
                    engine(format!("create container {cname}"))(e)
                }
            })?;
        self.docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
            .map_err(engine(format!("start container {cname}")))?;
        let c = self
            .docker
            .inspect_container(&created.id, None::<InspectContainerOptions>)
            .await
            .map_err(engine(format!("inspect container {cname}")))?;
        let owned = self.owned_from_inspect(session, node, &c);
        self.limit_bandwidth(session, &c).await?;
        let agent_addr = owned.agent_addr.ok_or_else(|| RuntimeError::Engine {
            op: format!("start container {cname}"),
            message: format!("it has no IP address on network {net}"),
        })?;
        Ok(InstanceHandle {
            container_id: created.id,
            agent_addr,
        })
    }

    async fn remove_instance(&self, session: &str, name: &str) -> Result<(), RuntimeError> {
        let cname = container_name(session, name);
        match self
            .docker
            .remove_container(
                &cname,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(engine(format!("remove container {cname}"))(e)),
        }
        let vname = volume_name(session, name);
        // The engine may still be releasing the container's mounts for a moment.
        let mut tries = 0;
        loop {
            match self
                .docker
                .remove_volume(&vname, Some(RemoveVolumeOptions { force: true }))
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if is_status(&e, 404) => return Ok(()),
                Err(e) if is_status(&e, 409) && tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(engine(format!("remove volume {vname}"))(e)),
            }
        }
    }

    async fn list_owned(&self) -> Result<Owned, RuntimeError> {
        let me = self.settings.server_id.clone();
        self.list_where(move |l| l.get(LABEL_SERVER).is_none_or(|s| *s == me))
            .await
    }

    async fn restart_instance(
        &self,
        session: &str,
        name: &str,
    ) -> Result<Option<OwnedInstance>, RuntimeError> {
        match self.inspect(session, name).await? {
            None => Ok(None),
            Some(i) if i.running => Ok(Some(i)),
            Some(_) => {
                let cname = container_name(session, name);
                match self
                    .docker
                    .start_container(&cname, None::<StartContainerOptions>)
                    .await
                {
                    Ok(()) => {}
                    // 304: already started.
                    Err(e) if is_status(&e, 304) => {}
                    Err(e) => return Err(engine(format!("start container {cname}"))(e)),
                }
                // A new start is a new veth: limit it again.
                if let Ok(c) = self
                    .docker
                    .inspect_container(&cname, None::<InspectContainerOptions>)
                    .await
                {
                    self.limit_bandwidth(session, &c).await?;
                }
                self.inspect(session, name).await
            }
        }
    }

    async fn storage_paths(&self) -> Vec<std::path::PathBuf> {
        match self.docker.info().await {
            Ok(info) => info
                .docker_root_dir
                .map(std::path::PathBuf::from)
                .into_iter()
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    async fn legacy_sessions(&self) -> Result<std::collections::BTreeSet<String>, RuntimeError> {
        Ok(self
            .list_where(|l| !l.contains_key(LABEL_SERVER))
            .await?
            .sessions())
    }

    async fn inspect(
        &self,
        session: &str,
        name: &str,
    ) -> Result<Option<OwnedInstance>, RuntimeError> {
        let cname = container_name(session, name);
        match self
            .docker
            .inspect_container(&cname, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Ok(Some(self.owned_from_inspect(session, name, &c))),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(engine(format!("inspect container {cname}"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_proc_status() {
        assert!(check_capabilities("Name:\tx\nCapBnd:\t000001fffeffffff\n").is_ok());
        // Everything except SYS_ADMIN (bit 21).
        let e = check_capabilities("CapBnd:\t000001ffffdfffff\n").unwrap_err();
        assert!(e.to_string().contains("SYS_ADMIN"), "{e}");
        assert!(e.to_string().contains("grant SYS_ADMIN ("), "{e}");
    }
}
