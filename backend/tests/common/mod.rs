//! Shared test helpers: a fake [`Runtime`] for tests that need no Docker, and (`e2e`) the
//! real server against the real dockerd.
#![allow(dead_code)]

pub mod e2e;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Mutex;

use async_trait::async_trait;
use drydock::runtime::{
    InstanceHandle, InstanceSpec, NetworkInfo, Owned, OwnedInstance, Runtime, RuntimeError,
};

/// Keeps "containers" and "networks" in memory; agents never answer (port 9 is refused)
/// unless `agent_addr` points at a fake agent.
#[derive(Default)]
pub struct FakeRuntime {
    pub state: Mutex<FakeState>,
    /// Where every instance's "agent" is (default 127.0.0.1:9, which refuses).
    pub agent_addr: Mutex<Option<SocketAddr>>,
}

#[derive(Default, Debug, Clone)]
pub struct FakeState {
    pub networks: BTreeSet<String>,
    /// (session, name) → spec
    pub instances: BTreeMap<(String, String), InstanceSpec>,
    pub created: usize,
}

impl FakeRuntime {
    pub fn snapshot(&self) -> FakeState {
        self.state.lock().unwrap().clone()
    }
    fn agent(&self) -> SocketAddr {
        self.agent_addr
            .lock()
            .unwrap()
            .unwrap_or_else(|| "127.0.0.1:9".parse().unwrap())
    }
    pub fn is_empty(&self) -> bool {
        let s = self.state.lock().unwrap();
        s.networks.is_empty() && s.instances.is_empty()
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn check(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn create_network(&self, session: &str) -> Result<NetworkInfo, RuntimeError> {
        self.state
            .lock()
            .unwrap()
            .networks
            .insert(session.to_owned());
        Ok(NetworkInfo {
            name: format!("fake-{session}"),
            gateway: None,
        })
    }
    async fn remove_network(&self, session: &str) -> Result<(), RuntimeError> {
        self.state.lock().unwrap().networks.remove(session);
        Ok(())
    }
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceHandle, RuntimeError> {
        let mut s = self.state.lock().unwrap();
        s.created += 1;
        s.instances
            .insert((spec.session.clone(), spec.name.clone()), spec.clone());
        Ok(InstanceHandle {
            container_id: format!("fake-{}", s.created),
            agent_addr: self.agent(),
        })
    }
    async fn remove_instance(&self, session: &str, name: &str) -> Result<(), RuntimeError> {
        self.state
            .lock()
            .unwrap()
            .instances
            .remove(&(session.to_owned(), name.to_owned()));
        Ok(())
    }
    async fn list_owned(&self) -> Result<Owned, RuntimeError> {
        let s = self.state.lock().unwrap();
        Ok(Owned {
            instances: s
                .instances
                .keys()
                .map(|(session, name)| OwnedInstance {
                    session: session.clone(),
                    name: name.clone(),
                    container_id: format!("fake-{session}-{name}"),
                    running: true,
                    agent_addr: Some(self.agent()),
                })
                .collect(),
            networks: s.networks.iter().cloned().collect(),
            volumes: vec![],
        })
    }
    async fn inspect(
        &self,
        session: &str,
        name: &str,
    ) -> Result<Option<OwnedInstance>, RuntimeError> {
        let s = self.state.lock().unwrap();
        Ok(s.instances
            .contains_key(&(session.to_owned(), name.to_owned()))
            .then(|| OwnedInstance {
                session: session.to_owned(),
                name: name.to_owned(),
                container_id: format!("fake-{session}-{name}"),
                running: true,
                agent_addr: Some(self.agent()),
            }))
    }
}
