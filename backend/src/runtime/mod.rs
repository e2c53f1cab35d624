//! The instance runtime: creates and destroys a session's private network and its instances,
//! and lists what it owns. [`Runtime`] is the only way the rest of the server touches the
//! engine; [`docker::DockerRuntime`] is the first implementation. Nothing outside this module
//! knows which engine runs the instances.

pub mod docker;
pub mod netpolicy;
pub mod owner;
pub mod subnets;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;

pub use docker::DockerRuntime;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container engine: {op} failed: {message}")]
    Engine { op: String, message: String },
    #[error("container engine is not reachable: {0}")]
    Unreachable(String),
    #[error("instance image {0} is not present: build it first (sandbox/build)")]
    ImageMissing(String),
    #[error("{0}")]
    Capabilities(String),
    #[error("{what} not found")]
    NotFound { what: String },
    /// A resource the engine needs per session ran out (the network pool's subnets).
    #[error("{0}")]
    Exhausted(String),
}

/// What the server asks for when it starts an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    pub session: String,
    /// `node1`, `node2`, …: also the hostname.
    pub name: String,
    /// Environment handed to the agent (its secret, the registry mirror, …).
    pub env: BTreeMap<String, String>,
    /// The image to run (the `kubernetes` template's); `None`: the runtime's instance image.
    pub image: Option<String>,
}

/// A started instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceHandle {
    pub container_id: String,
    /// Where the agent listens (`ip:4200`).
    pub agent_addr: SocketAddr,
}

/// A session's private network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub name: String,
    /// The host side of the network: where instances reach services on the host.
    pub gateway: Option<IpAddr>,
}

/// An instance found by [`Runtime::list_owned`] or [`Runtime::inspect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedInstance {
    pub session: String,
    pub name: String,
    pub container_id: String,
    pub running: bool,
    pub agent_addr: Option<SocketAddr>,
}

/// Everything carrying the Drydock labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    pub instances: Vec<OwnedInstance>,
    /// Sessions that have a network.
    pub networks: Vec<String>,
    /// (session, instance) of each instance's storage.
    pub volumes: Vec<(String, String)>,
}

impl Owned {
    /// Every session id anything belongs to.
    pub fn sessions(&self) -> std::collections::BTreeSet<String> {
        self.instances
            .iter()
            .map(|i| i.session.clone())
            .chain(self.networks.iter().cloned())
            .chain(self.volumes.iter().map(|(s, _)| s.clone()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Whether instances can be created right now (engine answers, image present, …).
    async fn check(&self) -> Result<(), RuntimeError>;
    /// Whether `image` is present, so that instances can be made from it (a runtime that
    /// cannot tell answers true and fails at creation instead).
    async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        let _ = image;
        Ok(true)
    }
    /// Creates (or finds) the session's private network.
    async fn create_network(&self, session: &str) -> Result<NetworkInfo, RuntimeError>;
    /// Removes the session's network; absent is fine.
    async fn remove_network(&self, session: &str) -> Result<(), RuntimeError>;
    /// Creates and starts an instance on the session's network.
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceHandle, RuntimeError>;
    /// Removes an instance and its storage; absent is fine.
    async fn remove_instance(&self, session: &str, name: &str) -> Result<(), RuntimeError>;
    /// Everything this runtime owns.
    async fn list_owned(&self) -> Result<Owned, RuntimeError>;
    /// One instance, if it exists.
    async fn inspect(
        &self,
        session: &str,
        name: &str,
    ) -> Result<Option<OwnedInstance>, RuntimeError>;

    /// Sessions that have resources with the Drydock labels but no owner (`drydock.server`)
    /// label: made by a server from before owner ids. [`Runtime::list_owned`] includes them
    /// (so this server adopts the ones its store knows); start-up reconciliation never
    /// removes them as orphans (see [`owner`]).
    async fn legacy_sessions(&self) -> Result<std::collections::BTreeSet<String>, RuntimeError> {
        Ok(Default::default())
    }

    /// Starts instance `name` again if its container exists but stopped (the engine
    /// restarted), and answers what it found. Runtimes that cannot start a stopped instance
    /// only look.
    async fn restart_instance(
        &self,
        session: &str,
        name: &str,
    ) -> Result<Option<OwnedInstance>, RuntimeError> {
        self.inspect(session, name).await
    }

    /// Host directories whose filesystems hold instance data (checked for free space before
    /// a session is created); empty when the runtime cannot tell.
    async fn storage_paths(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// Removes everything a session owns: instances, their storage, its network.
    async fn remove_session(&self, session: &str) -> Result<(), RuntimeError> {
        let owned = self.list_owned().await?;
        let mut names: std::collections::BTreeSet<String> = owned
            .instances
            .iter()
            .filter(|i| i.session == session)
            .map(|i| i.name.clone())
            .collect();
        names.extend(
            owned
                .volumes
                .iter()
                .filter(|(s, _)| s == session)
                .map(|(_, n)| n.clone()),
        );
        let results =
            futures_util::future::join_all(names.iter().map(|n| self.remove_instance(session, n)))
                .await;
        for r in results {
            r?;
        }
        self.remove_network(session).await
    }
}
