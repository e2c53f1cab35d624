//! Warm pools: instances created and started ahead of any session, so that a new session gets
//! a machine that is already up (a workshop participant's join answers with a ready `node1`).
//!
//! **How a warm instance becomes a session's.** A warm instance is made exactly as a new
//! session's `node1` would be, under a session id generated in advance: its own private
//! network `drydock-<id>` (with its host firewall rules), the container `drydock-<id>-node1`
//! with the labels of session `<id>`, and a fresh agent secret. No session row exists yet.
//! Taking it creates the session *with that id*, so the network, the container, its labels,
//! its address and its secret already are the session's: nothing is renamed, reconnected or
//! restarted. (Connecting a pooled container to a new session network instead would leave
//! its first network behind, change its address and need the runtime to move labels.)
//!
//! **Pools and targets.** Pools are keyed: `playground:<template>` (the free playground,
//! `playground_warm_pool` instances of the docker template) and `workshop:<id>` (a
//! workshop's `warm_pool`, asked for by a [`WarmTargets`] source: the workshops). A background
//! task, [`Sessions::run_warm_pools`], starts one instance at a time while a pool is below its
//! target and live sessions plus warm instances stay below `max_sessions`, and removes warm
//! instances beyond a pool's target or beyond that capacity (starting ones first, newest
//! first): real sessions always go first. A pool whose start failed waits [`RETRY_AFTER`].
//!
//! **Lifetime.** Warm instances live only in memory (their agent secrets are never stored).
//! A workshop's pool is removed when it ends ([`Sessions::remove_warm_pool`]); at start-up,
//! reconciliation finds their resources belong to no session and removes them as orphans,
//! and the pools refill.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{lock, random_hex, ready_retry, runtime_error, Live, Sessions, HEALTH_WAIT};
use crate::agent_client::AgentTarget;
use crate::error::Error;
use crate::runtime::InstanceSpec;
use crate::store::{instance_state, InstanceRow};

/// The instance a warm instance becomes.
pub const WARM_INSTANCE: &str = "node1";
/// How long a pool waits after a failed start before it tries again.
pub const RETRY_AFTER: Duration = Duration::from_secs(15);
/// How often targets are looked at again without a wake-up (a workshop closing by time).
pub const RECHECK: Duration = Duration::from_secs(5);

/// The pool of the free playground of `template`.
pub fn playground_pool(template: &str) -> String {
    format!("playground:{template}")
}

/// The pool of workshop `id`.
pub fn workshop_pool(id: &str) -> String {
    format!("workshop:{id}")
}

/// How many warm instances of which template a pool wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmTarget {
    pub pool: String,
    pub template: String,
    pub count: usize,
}

/// Where pool targets beyond the playground's come from (the workshops).
#[async_trait]
pub trait WarmTargets: Send + Sync + 'static {
    async fn warm_targets(&self) -> Vec<WarmTarget>;
}

/// A warm instance taken from its pool for a new session.
pub struct WarmInstance {
    /// The session id it was made for.
    pub id: String,
    template: String,
    secret: String,
    container_id: String,
    agent_addr: SocketAddr,
    gateway: Option<IpAddr>,
    created_at: i64,
    started: Instant,
    ready: bool,
}

impl WarmInstance {
    pub fn is_ready(&self) -> bool {
        self.ready
    }
}

struct Entry {
    inst: WarmInstance,
    ready: Arc<AtomicBool>,
    /// Stops the readiness watch (taken, removed or shut down).
    cancel: CancellationToken,
}

impl Entry {
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// The warm instances of every pool.
#[derive(Default)]
pub struct Pools {
    entries: Mutex<HashMap<String, Vec<Entry>>>,
    source: Mutex<Option<Weak<dyn WarmTargets>>>,
    wake: Notify,
    /// Held while an instance is being started, so that removing a pool waits for it.
    fill: tokio::sync::Mutex<()>,
    failed: Mutex<HashMap<String, Instant>>,
}

/// Counts of one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolCount {
    pub ready: usize,
    pub starting: usize,
}

impl Sessions {
    /// Where pool targets beyond the playground's come from.
    pub fn set_warm_source(&self, source: Weak<dyn WarmTargets>) {
        *lock(&self.warm.source) = Some(source);
        self.warm.wake.notify_one();
    }

    /// Asks the pool task to look at the targets now.
    pub fn warm_wake(&self) {
        self.warm.wake.notify_one();
    }

    /// Warm instances in every pool (they hold capacity like sessions).
    pub fn warm_count(&self) -> usize {
        lock(&self.warm.entries).values().map(Vec::len).sum()
    }

    /// Warm instances of one pool.
    pub fn warm_pool_count(&self, pool: &str) -> PoolCount {
        let map = lock(&self.warm.entries);
        let mut c = PoolCount::default();
        for e in map.get(pool).into_iter().flatten() {
            if e.is_ready() {
                c.ready += 1;
            } else {
                c.starting += 1;
            }
        }
        c
    }

    /// Every pool's target: the source's, then the playground's.
    pub async fn warm_targets(&self) -> Vec<WarmTarget> {
        let source = lock(&self.warm.source).as_ref().and_then(Weak::upgrade);
        let mut out = match source {
            Some(s) => s.warm_targets().await,
            None => Vec::new(),
        };
        if self.config.playground_warm_pool > 0 {
            out.push(WarmTarget {
                pool: playground_pool(crate::templates::DOCKER),
                template: crate::templates::DOCKER.to_owned(),
                count: self.config.playground_warm_pool,
            });
        }
        out
    }

    /// Takes a warm instance of `template` from `pool` (a ready one if there is one).
    pub(super) fn take_warm(&self, pool: &str, template: &str) -> Option<WarmInstance> {
        let entry = {
            let mut map = lock(&self.warm.entries);
            let v = map.get_mut(pool)?;
            let i = v
                .iter()
                .position(|e| e.is_ready() && e.inst.template == template)
                .or_else(|| v.iter().position(|e| e.inst.template == template))?;
            v.remove(i)
        };
        entry.cancel.cancel();
        let mut inst = entry.inst;
        inst.ready = entry.ready.load(Ordering::Acquire);
        self.warm.wake.notify_one();
        Some(inst)
    }

    /// Puts back a warm instance that could not be used (the server was full).
    pub(super) fn return_warm(self: &Arc<Self>, pool: &str, inst: WarmInstance) {
        self.insert_warm(pool, inst);
    }

    fn insert_warm(self: &Arc<Self>, pool: &str, inst: WarmInstance) {
        let ready = Arc::new(AtomicBool::new(inst.ready));
        let cancel = self.shutdown.child_token();
        if !inst.ready {
            self.spawn_warm_watch(pool, &inst, ready.clone(), cancel.clone());
        }
        lock(&self.warm.entries)
            .entry(pool.to_owned())
            .or_default()
            .push(Entry {
                inst,
                ready,
                cancel,
            });
    }

    /// Makes `inst` the `node1` of the new session `live` (its id is the instance's).
    pub(super) async fn adopt_warm(
        self: &Arc<Self>,
        live: &Arc<Live>,
        pool: &str,
        inst: WarmInstance,
    ) -> Result<(), Error> {
        let id = live.id();
        *lock(&live.gateway) = inst.gateway;
        let row = InstanceRow {
            session_id: id.clone(),
            name: WARM_INSTANCE.to_owned(),
            container_id: Some(inst.container_id.clone()),
            agent_addr: Some(inst.agent_addr.to_string()),
            agent_secret: inst.secret.clone(),
            state: if inst.ready {
                instance_state::READY
            } else {
                instance_state::STARTING
            }
            .to_owned(),
            reason: None,
            created_at: inst.created_at,
        };
        live.insert_instance(row.clone());
        self.store.put_instance(&row).await?;
        self.event(
            &id,
            "instance_created",
            &format!(
                "{WARM_INSTANCE} container={} agent={} (warm, pool {pool}, started {} ms ago)",
                inst.container_id,
                inst.agent_addr,
                inst.started.elapsed().as_millis()
            ),
        )
        .await;
        if inst.ready {
            self.event(
                &id,
                "instance_ready",
                &format!("{WARM_INSTANCE} (warm, pool {pool})"),
            )
            .await;
        } else {
            let target = AgentTarget {
                addr: inst.agent_addr,
                secret: inst.secret.clone(),
            };
            self.spawn_ready_watch(live, WARM_INSTANCE, target, inst.started);
        }
        crate::metrics::Metrics::add(&self.metrics.warm_adopted, 1);
        tracing::info!(session = %id, pool, ready = inst.ready, "session took a warm instance");
        Ok(())
    }

    /// Removes every warm instance of `pool` (a workshop ended), waiting for one being
    /// started. The caller has made the pool's target 0 first.
    pub async fn remove_warm_pool(&self, pool: &str) {
        let _fill = self.warm.fill.lock().await;
        let entries = lock(&self.warm.entries).remove(pool).unwrap_or_default();
        self.remove_entries(entries).await;
    }

    async fn remove_entries(&self, entries: Vec<Entry>) {
        let removals = entries.into_iter().map(|e| async move {
            e.cancel.cancel();
            if let Err(e2) = self.runtime.remove_session(&e.inst.id).await {
                tracing::warn!(warm = %e.inst.id, error = %e2, "removing a warm instance");
            } else {
                tracing::info!(warm = %e.inst.id, "removed a warm instance");
            }
        });
        futures_util::future::join_all(removals).await;
    }

    /// Keeps the pools at their targets within capacity; runs until shutdown. Start it after
    /// [`Sessions::reconcile`] (which removes the warm instances of a previous run).
    pub async fn run_warm_pools(self: Arc<Self>) {
        loop {
            let busy = self.warm_step().await;
            if self.shutdown.is_cancelled() {
                return;
            }
            if !busy {
                tokio::select! {
                    _ = self.warm.wake.notified() => {}
                    _ = tokio::time::sleep(RECHECK) => {}
                    _ = self.shutdown.cancelled() => return,
                }
            }
        }
    }

    /// One round: trims pools beyond their target or the capacity, then starts at most one
    /// instance. Whether there may be more to do at once.
    async fn warm_step(self: &Arc<Self>) -> bool {
        let targets = self.warm_targets().await;
        let want = |pool: &str| {
            targets
                .iter()
                .filter(|t| t.pool == pool)
                .map(|t| t.count)
                .sum::<usize>()
        };
        let live = self.live_count();
        let max = self.config.max_sessions;
        let trim = {
            let mut map = lock(&self.warm.entries);
            let mut trim = Vec::new();
            for (pool, v) in map.iter_mut() {
                while v.len() > want(pool) {
                    trim.push(pop_least_ready(v));
                }
            }
            // Beyond capacity: the playground's first, then the others.
            let mut total: usize = map.values().map(Vec::len).sum();
            let mut pools: Vec<String> = map.keys().cloned().collect();
            pools.sort_by_key(|p| !p.starts_with("playground:"));
            for pool in pools {
                let v = map.get_mut(&pool).expect("listed");
                while live + total > max && !v.is_empty() {
                    trim.push(pop_least_ready(v));
                    total -= 1;
                }
            }
            map.retain(|_, v| !v.is_empty());
            trim
        };
        if !trim.is_empty() {
            tracing::info!(count = trim.len(), "removing warm instances beyond targets");
            self.remove_entries(trim).await;
        }
        if live + self.warm_count() >= max {
            return false;
        }
        for t in &targets {
            if self.warm_pool_len(&t.pool) >= t.count {
                continue;
            }
            let recently_failed = lock(&self.warm.failed)
                .get(&t.pool)
                .is_some_and(|at| at.elapsed() < RETRY_AFTER);
            if recently_failed {
                continue;
            }
            let _fill = self.warm.fill.lock().await;
            // The pool may have been removed while this waited.
            let still = self
                .warm_targets()
                .await
                .iter()
                .any(|n| n.pool == t.pool && n.count > self.warm_pool_len(&t.pool));
            if !still || self.live_count() + self.warm_count() >= max {
                return true;
            }
            if let Err(e) = self.start_warm(&t.pool, &t.template).await {
                tracing::warn!(pool = %t.pool, error = %e, "could not start a warm instance; retrying in {} s", RETRY_AFTER.as_secs());
                lock(&self.warm.failed).insert(t.pool.clone(), Instant::now());
            }
            return true;
        }
        false
    }

    fn warm_pool_len(&self, pool: &str) -> usize {
        lock(&self.warm.entries).get(pool).map_or(0, Vec::len)
    }

    /// Starts one warm instance for `pool`: a network and a `node1` under a new session id.
    async fn start_warm(self: &Arc<Self>, pool: &str, template: &str) -> Result<(), Error> {
        crate::templates::require_available(&self.config, self.runtime.as_ref(), template).await?;
        let mut disks = vec![self.config.data_dir.clone()];
        disks.extend(self.runtime.storage_paths().await);
        super::guard::check_disk(&disks, self.config.min_free_disk_mb)?;
        let id = random_hex(8);
        let secret = random_hex(32);
        let started = Instant::now();
        let made = async {
            let net = self
                .runtime
                .create_network(&id)
                .await
                .map_err(runtime_error)?;
            let mirror = self.registry_mirror(net.gateway).await;
            let spec = InstanceSpec {
                session: id.clone(),
                name: WARM_INSTANCE.to_owned(),
                env: self.agent_env(&secret, mirror.as_deref()),
                image: crate::templates::instance_image(&self.config, template),
            };
            let handle = self
                .runtime
                .create_instance(&spec)
                .await
                .map_err(runtime_error)?;
            Ok::<_, Error>((net.gateway, handle))
        }
        .await;
        let (gateway, handle) = match made {
            Ok(m) => m,
            Err(e) => {
                let _ = self.runtime.remove_session(&id).await;
                return Err(e);
            }
        };
        tracing::info!(pool, warm = %id, container = %handle.container_id, "started a warm instance");
        self.insert_warm(
            pool,
            WarmInstance {
                id,
                template: template.to_owned(),
                secret,
                container_id: handle.container_id,
                agent_addr: handle.agent_addr,
                gateway,
                created_at: self.clock.now_ms(),
                started,
                ready: false,
            },
        );
        Ok(())
    }

    /// Long-polls a warm instance's agent until it is ready; one that does not become ready in
    /// time is removed.
    fn spawn_warm_watch(
        self: &Arc<Self>,
        pool: &str,
        inst: &WarmInstance,
        ready: Arc<AtomicBool>,
        cancel: CancellationToken,
    ) {
        let this = self.clone();
        let (pool, id, started) = (pool.to_owned(), inst.id.clone(), inst.started);
        let target = AgentTarget {
            addr: inst.agent_addr,
            secret: inst.secret.clone(),
        };
        let timeout = crate::templates::ready_timeout(&self.config, &inst.template);
        tokio::spawn(async move {
            let deadline = started + timeout;
            let became_ready = async {
                loop {
                    let wait = HEALTH_WAIT.min(deadline.saturating_duration_since(Instant::now()));
                    if let Ok(h) = this.agent.health_wait(&target, wait).await {
                        if h.ready {
                            return true;
                        }
                    }
                    if Instant::now() >= deadline {
                        return false;
                    }
                    tokio::time::sleep(ready_retry(started.elapsed())).await;
                }
            };
            let ok = tokio::select! {
                _ = cancel.cancelled() => return,
                ok = became_ready => ok,
            };
            if ok {
                ready.store(true, Ordering::Release);
                tracing::info!(pool = %pool, warm = %id, ms = started.elapsed().as_millis() as u64, "warm instance ready");
                return;
            }
            let entry = {
                let mut map = lock(&this.warm.entries);
                map.get_mut(&pool)
                    .and_then(|v| v.iter().position(|e| e.inst.id == id).map(|i| v.remove(i)))
            };
            if let Some(e) = entry {
                tracing::warn!(pool = %pool, warm = %id, "warm instance not ready within {} s; removing it", timeout.as_secs());
                lock(&this.warm.failed).insert(pool.clone(), Instant::now());
                this.remove_entries(vec![e]).await;
            }
        });
    }
}

/// Removes the entry least worth keeping: the newest starting one, else the newest.
fn pop_least_ready(v: &mut Vec<Entry>) -> Entry {
    match v.iter().rposition(|e| !e.is_ready()) {
        Some(i) => v.remove(i),
        None => v.pop().expect("not empty"),
    }
}
