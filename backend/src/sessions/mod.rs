//! Session lifecycle: create (network plus instances started in parallel), readiness
//! (`starting` → `ready` when the agent says so, or `failed` with a reason), extend, expiry
//! (a background task that wakes at the next `expires_at`), close, adding and removing
//! instances, and reconciling the store with what the runtime owns at start-up.
//!
//! [`Sessions`] keeps the live sessions in memory and writes every change through to the
//! [`Store`]; it talks to instances only through the [`Runtime`] and the [`AgentClient`].

pub mod clock;
pub mod engine;
pub mod guard;
pub mod idle;
pub mod warm;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::agent_client::{AgentClient, AgentTarget};
use crate::config::Config;
use crate::error::Error;
use crate::metrics::{Gauges, Metrics};
use crate::runtime::{InstanceSpec, Runtime, RuntimeError};
use crate::store::{instance_state, session_state, InstanceRow, SessionRow, Store};
pub use clock::{rfc3339, Clock};

/// Templates the server knows about.
pub const TEMPLATES: [&str; 2] = ["docker", "kubernetes"];
/// Languages lessons ship in.
pub const LANGS: [&str; 2] = ["en", "zh"];
/// How long one `/v1/health?wait_ms=` call lets the agent wait for readiness: it answers
/// the moment its engines are ready, so the server learns of it at once.
pub const HEALTH_WAIT: Duration = Duration::from_secs(5);
/// How often the container of an instance that is not ready yet is inspected (did it stop?).
const INSPECT_EVERY: Duration = Duration::from_secs(2);

/// The pause before asking a starting instance's agent again, after an answer that was not
/// ready or no answer (its agent is not listening yet): short in the first seconds, when an
/// instance usually becomes ready, longer after.
pub fn ready_retry(since_start: Duration) -> Duration {
    if since_start < Duration::from_secs(5) {
        Duration::from_millis(20)
    } else {
        Duration::from_millis(250)
    }
}

/// Why a session ended; the text is what terminal clients see in the close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Expired,
    Closed,
    /// No terminal activity for the configured idle time plus grace.
    Idle,
    /// The server stopped with `stop_sessions_on_exit`.
    ServerStopped,
}

impl EndReason {
    pub fn message(self) -> &'static str {
        match self {
            EndReason::Expired => "session expired",
            EndReason::Closed => "session closed",
            EndReason::Idle => "session ended: idle for too long",
            EndReason::ServerStopped => "session ended: the server stopped",
        }
    }
    fn state(self) -> &'static str {
        match self {
            EndReason::Expired | EndReason::Idle => session_state::EXPIRED,
            EndReason::Closed | EndReason::ServerStopped => session_state::CLOSED,
        }
    }
}

/// `POST /api/v1/sessions` body.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CreateRequest {
    pub template: String,
    #[serde(default)]
    pub lesson: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
}

/// How [`Sessions::create_with`] makes a session beyond its request (workshops).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The session's length instead of `session_length`.
    pub length: Option<Duration>,
    /// The warm pool to take an instance from instead of the template's playground pool.
    pub pool: Option<String>,
}

/// A session event as recorded in the event log (`created`, `instance_ready`, `extended`,
/// `closed`, `expired`, …), broadcast by [`Sessions::subscribe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    pub session: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct InstanceView {
    pub name: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SessionView {
    pub id: String,
    pub template: String,
    pub lesson: Option<String>,
    pub lang: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub instances: Vec<InstanceView>,
}

/// A created session: its view plus the token, shown exactly once.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub token: String,
    #[serde(flatten)]
    pub session: SessionView,
}

struct LiveInstance {
    row: InstanceRow,
    ended: watch::Sender<Option<String>>,
    cancel: CancellationToken,
}

/// A session the server is running.
pub struct Live {
    row: Mutex<SessionRow>,
    /// Serialises lifecycle operations (create, add/remove instance, close) of one session.
    ops: tokio::sync::Mutex<()>,
    ended: watch::Sender<Option<String>>,
    cancel: CancellationToken,
    gateway: Mutex<Option<IpAddr>>,
    /// Terminal activity, for idle culling.
    pub activity: idle::Activity,
    instances: Mutex<BTreeMap<String, LiveInstance>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Live {
    fn new(row: SessionRow, parent: &CancellationToken) -> Live {
        Live {
            row: Mutex::new(row),
            ops: tokio::sync::Mutex::new(()),
            ended: watch::channel(None).0,
            cancel: parent.child_token(),
            gateway: Mutex::new(None),
            activity: idle::Activity::new(0),
            instances: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn id(&self) -> String {
        lock(&self.row).id.clone()
    }

    fn expires_at(&self) -> i64 {
        lock(&self.row).expires_at
    }

    /// When the session expires, Unix milliseconds.
    pub fn expires_at_ms(&self) -> i64 {
        self.expires_at()
    }

    fn is_ended(&self) -> bool {
        self.ended.borrow().is_some()
    }

    fn insert_instance(&self, row: InstanceRow) {
        let cancel = self.cancel.child_token();
        lock(&self.instances).insert(
            row.name.clone(),
            LiveInstance {
                row,
                ended: watch::channel(None).0,
                cancel,
            },
        );
    }

    fn update_instance(&self, name: &str, f: impl FnOnce(&mut InstanceRow)) -> Option<InstanceRow> {
        let mut map = lock(&self.instances);
        let i = map.get_mut(name)?;
        f(&mut i.row);
        Some(i.row.clone())
    }

    pub fn view(&self) -> SessionView {
        let r = lock(&self.row).clone();
        let instances = lock(&self.instances)
            .values()
            .map(|i| InstanceView {
                name: i.row.name.clone(),
                state: i.row.state.clone(),
                reason: i.row.reason.clone(),
            })
            .collect();
        SessionView {
            id: r.id,
            template: r.template,
            lesson: r.lesson,
            lang: r.lang,
            created_at: rfc3339(r.created_at),
            expires_at: rfc3339(r.expires_at),
            instances,
        }
    }

    /// Aggregate state for metrics: `failed` if any instance failed, `starting` if any is
    /// starting, else `ready`.
    fn aggregate_state(&self) -> &'static str {
        let map = lock(&self.instances);
        if map.values().any(|i| i.row.state == instance_state::FAILED) {
            "failed"
        } else if map
            .values()
            .any(|i| i.row.state == instance_state::STARTING)
        {
            "starting"
        } else {
            "ready"
        }
    }
}

/// Lower-case hex sha256.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn random_token() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Session ids: 16 lower-case hex characters.
pub fn valid_session_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Instance names: `node<N>`.
pub fn valid_instance_name(name: &str) -> bool {
    name.strip_prefix("node").is_some_and(|n| {
        !n.is_empty()
            && n.len() <= 3
            && n.bytes().all(|b| b.is_ascii_digit())
            && !n.starts_with('0')
    })
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks a create request; answers what is wrong with which input.
pub fn validate(req: &CreateRequest) -> Result<(), Error> {
    if !crate::templates::is_known(&req.template) {
        return Err(crate::templates::unknown(&req.template));
    }
    if let Some(l) = &req.lesson {
        if !valid_slug(l) {
            return Err(Error::BadRequest(format!(
                "invalid lesson {l:?}: expected 1-64 characters of [a-z0-9-]"
            )));
        }
    }
    if let Some(l) = &req.lang {
        if !LANGS.contains(&l.as_str()) {
            return Err(Error::BadRequest(format!(
                "invalid lang {l:?}: expected \"en\" or \"zh\""
            )));
        }
    }
    Ok(())
}

/// Why an agent is not ready yet: the state of each engine its image has.
fn not_ready_message(h: &drydock_protocol::agent::Health) -> String {
    let engines: Vec<String> = [("dockerd", &h.dockerd), ("k3s", &h.k3s)]
        .into_iter()
        .filter(|(_, e)| e.state != drydock_protocol::agent::EngineState::Absent)
        .map(|(name, e)| {
            let why = e.message.as_ref().map(|m| format!(" ({m})"));
            format!("{name} {:?}{}", e.state, why.unwrap_or_default())
        })
        .collect();
    format!("agent not ready: {}", engines.join(", "))
}

fn runtime_error(e: RuntimeError) -> Error {
    match e {
        RuntimeError::ImageMissing(_)
        | RuntimeError::Unreachable(_)
        | RuntimeError::Capabilities(_) => Error::Unavailable(e.to_string()),
        other => Error::Runtime(other),
    }
}

pub struct Sessions {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
    agent: AgentClient,
    metrics: Arc<Metrics>,
    clock: Clock,
    /// Live sessions per client IP.
    per_ip: guard::PerIp,
    live: Mutex<HashMap<String, Arc<Live>>>,
    wake: Notify,
    shutdown: CancellationToken,
    /// Instances started ahead of sessions ([`warm`]).
    warm: warm::Pools,
    /// Every recorded session event, for listeners (workshop dashboards).
    events: tokio::sync::broadcast::Sender<SessionEvent>,
}

impl Sessions {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        runtime: Arc<dyn Runtime>,
        metrics: Arc<Metrics>,
    ) -> Arc<Sessions> {
        Arc::new(Sessions {
            config,
            store,
            runtime,
            agent: AgentClient::new(),
            metrics,
            clock: Clock::new(),
            per_ip: guard::PerIp::default(),
            live: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            shutdown: CancellationToken::new(),
            warm: warm::Pools::default(),
            events: tokio::sync::broadcast::channel(1024).0,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }
    pub fn agent(&self) -> &AgentClient {
        &self.agent
    }
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
    /// Fires when the server shuts down (relays close, background tasks stop; instances
    /// keep running for the next start to adopt).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    pub fn live_count(&self) -> usize {
        lock(&self.live).len()
    }

    pub fn gauges(&self) -> Gauges {
        let live: Vec<Arc<Live>> = lock(&self.live).values().cloned().collect();
        let mut sessions: BTreeMap<&'static str, u64> =
            [("starting", 0), ("ready", 0), ("failed", 0)].into();
        let mut instances: BTreeMap<&'static str, u64> =
            [("starting", 0), ("ready", 0), ("failed", 0)].into();
        for l in &live {
            *sessions.entry(l.aggregate_state()).or_default() += 1;
            for i in lock(&l.instances).values() {
                let k = match i.row.state.as_str() {
                    instance_state::READY => "ready",
                    instance_state::FAILED => "failed",
                    _ => "starting",
                };
                *instances.entry(k).or_default() += 1;
            }
        }
        Gauges {
            sessions: sessions.into_iter().collect(),
            instances: instances.into_iter().collect(),
        }
    }

    async fn event(&self, session: &str, kind: &str, detail: &str) {
        let _ = self.events.send(SessionEvent {
            session: session.to_owned(),
            kind: kind.to_owned(),
            detail: detail.to_owned(),
        });
        if let Err(e) = self
            .store
            .add_event(session, self.clock.now_ms(), kind, detail)
            .await
        {
            tracing::warn!(session, kind, error = %e, "could not record event");
        }
    }

    /// The live session `id` if `token` is its token; otherwise [`Error::SessionNotFound`]
    /// (the same answer for an unknown id and a wrong token).
    pub fn authorize(&self, id: &str, token: &str) -> Result<Arc<Live>, Error> {
        let live = lock(&self.live).get(id).cloned();
        let Some(live) = live else {
            // Spend the same hashing work as for a known id.
            let _ = hash_token(token);
            return Err(Error::SessionNotFound);
        };
        let want = lock(&live.row).token_hash.clone();
        let got = hash_token(token);
        if bool::from(got.as_bytes().ct_eq(want.as_bytes())) && !live.is_ended() {
            Ok(live)
        } else {
            Err(Error::SessionNotFound)
        }
    }

    /// [`Sessions::create`] for a client at `ip`: refused (429) while that address holds
    /// `max_sessions_per_ip` live sessions (loopback clients are not counted).
    pub async fn create_for(
        self: &Arc<Self>,
        ip: IpAddr,
        req: CreateRequest,
    ) -> Result<Created, Error> {
        self.per_ip.reserve(ip, self.config.max_sessions_per_ip)?;
        match self.create(req).await {
            Ok(c) => {
                self.per_ip.bind(&c.session.id, ip);
                Ok(c)
            }
            Err(e) => {
                self.per_ip.release(ip);
                Err(e)
            }
        }
    }

    /// Every live session.
    pub fn live_sessions(&self) -> Vec<Arc<Live>> {
        lock(&self.live).values().cloned().collect()
    }

    /// Writes `text` into every terminal of every ready instance of `live` (best effort).
    pub async fn notice_all(&self, live: &Arc<Live>, text: &str) {
        let targets: Vec<(String, AgentTarget)> = {
            let names: Vec<String> = lock(&live.instances).keys().cloned().collect();
            names
                .into_iter()
                .filter_map(|n| self.agent_target(live, &n).ok().map(|t| (n, t)))
                .collect()
        };
        for (name, t) in targets {
            if let Err(e) = self.agent.notice(&t, text).await {
                tracing::debug!(session = %live.id(), instance = %name, error = %e, "notice");
            }
        }
    }

    /// Ends every live session (a graceful stop with `stop_sessions_on_exit`).
    pub async fn stop_all(&self) {
        for live in self.live_sessions() {
            let id = live.id();
            if let Err(e) = self.end(&id, EndReason::ServerStopped).await {
                tracing::warn!(session = %id, error = %e, "ending session at shutdown");
            }
        }
    }

    pub async fn create(self: &Arc<Self>, req: CreateRequest) -> Result<Created, Error> {
        self.create_with(req, CreateOptions::default()).await
    }

    /// [`Sessions::create`] with a length and warm pool of its own. A warm instance of the
    /// pool (by default the template's playground pool), when there is one, becomes the
    /// session's `node1`: the session takes its id ([`warm`] explains why).
    pub async fn create_with(
        self: &Arc<Self>,
        req: CreateRequest,
        opts: CreateOptions,
    ) -> Result<Created, Error> {
        validate(&req)?;
        let mut disks = vec![self.config.data_dir.clone()];
        disks.extend(self.runtime.storage_paths().await);
        guard::check_disk(&disks, self.config.min_free_disk_mb)?;
        crate::templates::require_available(&self.config, self.runtime.as_ref(), &req.template)
            .await?;
        let pool = opts
            .pool
            .clone()
            .unwrap_or_else(|| warm::playground_pool(&req.template));
        let warm = self.take_warm(&pool, &req.template);
        let id = warm
            .as_ref()
            .map(|w| w.id.clone())
            .unwrap_or_else(|| random_hex(8));
        let token = random_token();
        let now = self.clock.now_ms();
        let length = opts.length.unwrap_or(self.config.session_length);
        let row = SessionRow {
            id: id.clone(),
            token_hash: hash_token(&token),
            template: req.template.clone(),
            lesson: req.lesson.clone(),
            lang: req.lang.clone(),
            created_at: now,
            expires_at: now + length.as_millis() as i64,
            state: session_state::ACTIVE.to_owned(),
        };
        let live = Arc::new(Live::new(row.clone(), &self.shutdown));
        let full = {
            let mut map = lock(&self.live);
            if map.len() >= self.config.max_sessions {
                Some(Error::Full {
                    used: map.len(),
                    max: self.config.max_sessions,
                })
            } else {
                map.insert(id.clone(), live.clone());
                None
            }
        };
        if let Some(e) = full {
            if let Some(w) = warm {
                self.return_warm(&pool, w);
            }
            return Err(e);
        }
        let guard = live.ops.lock().await;
        let result = async {
            self.store.insert_session(&row).await?;
            if let Some(w) = warm {
                return self.adopt_warm(&live, &pool, w).await;
            }
            let net = self
                .runtime
                .create_network(&id)
                .await
                .map_err(runtime_error)?;
            *lock(&live.gateway) = net.gateway;
            self.start_instances(&live, &["node1".to_owned()]).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(session = %id, error = %e, "session creation failed, cleaning up");
            drop(guard);
            let _ = self.end(&id, EndReason::Closed).await;
            return Err(e);
        }
        drop(guard);
        Metrics::add(&self.metrics.sessions_created, 1);
        self.event(
            &id,
            "created",
            &format!(
                "template={} lesson={:?} lang={:?}",
                row.template, row.lesson, row.lang
            ),
        )
        .await;
        tracing::info!(session = %id, template = %row.template, "session created");
        self.wake.notify_one();
        Ok(Created {
            token,
            session: live.view(),
        })
    }

    async fn registry_mirror(&self, gateway: Option<IpAddr>) -> Option<String> {
        if let Some(m) = &self.config.registry_mirror {
            return Some(m.clone());
        }
        let gw = gateway?;
        let probe = tokio::net::TcpStream::connect(("127.0.0.1", 5000));
        match tokio::time::timeout(Duration::from_millis(300), probe).await {
            Ok(Ok(_)) => Some(format!("http://{gw}:5000")),
            _ => None,
        }
    }

    /// The environment of an instance's agent: its secret, the disk quota, the registry
    /// mirror, whether dockerd starts on demand.
    fn agent_env(&self, secret: &str, mirror: Option<&str>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([(
            drydock_protocol::agent::SECRET_ENV.to_owned(),
            secret.to_owned(),
        )]);
        if self.config.disk_quota_mb > 0 {
            env.insert(
                "DRYDOCK_DISK_QUOTA_MB".into(),
                self.config.disk_quota_mb.to_string(),
            );
            env.insert(
                "DRYDOCK_DISK_CHECK_SECONDS".into(),
                self.config.disk_check.as_secs().to_string(),
            );
        }
        if self.config.dockerd_on_demand {
            env.insert("DRYDOCK_DOCKERD_ON_DEMAND".into(), "1".into());
        }
        if let Some(m) = mirror {
            env.insert("DRYDOCK_REGISTRY_MIRROR".into(), m.to_owned());
            if let Some(hostport) = m.strip_prefix("http://") {
                env.insert(
                    "DRYDOCK_INSECURE_REGISTRIES".into(),
                    hostport.trim_end_matches('/').to_owned(),
                );
            }
        }
        env
    }

    /// Creates and starts the named instances in parallel (caller holds `live.ops`); each then
    /// becomes ready in the background. Fails if any could not be created.
    async fn start_instances(
        self: &Arc<Self>,
        live: &Arc<Live>,
        names: &[String],
    ) -> Result<(), Error> {
        let id = live.id();
        let gateway = *lock(&live.gateway);
        let mirror = self.registry_mirror(gateway).await;
        let image = crate::templates::instance_image(&self.config, &lock(&live.row).template);
        let starts = names.iter().map(|name| {
            let (id, mirror, image) = (id.clone(), mirror.clone(), image.clone());
            async move {
                let secret = random_hex(32);
                let row = InstanceRow {
                    session_id: id.clone(),
                    name: name.clone(),
                    container_id: None,
                    agent_addr: None,
                    agent_secret: secret.clone(),
                    state: instance_state::STARTING.to_owned(),
                    reason: None,
                    created_at: self.clock.now_ms(),
                };
                live.insert_instance(row.clone());
                self.store.put_instance(&row).await?;
                let env = self.agent_env(&secret, mirror.as_deref());
                let spec = InstanceSpec {
                    session: id.clone(),
                    name: name.clone(),
                    env,
                    image,
                };
                let started = Instant::now();
                let handle = match self.runtime.create_instance(&spec).await {
                    Ok(h) => h,
                    Err(e) => {
                        live.update_instance(name, |r| {
                            r.state = instance_state::FAILED.to_owned();
                            r.reason = Some(e.to_string());
                        });
                        return Err(runtime_error(e));
                    }
                };
                let row = live
                    .update_instance(name, |r| {
                        r.container_id = Some(handle.container_id.clone());
                        r.agent_addr = Some(handle.agent_addr.to_string());
                    })
                    .unwrap_or(row);
                self.store.put_instance(&row).await?;
                self.event(
                    &id,
                    "instance_created",
                    &format!(
                        "{name} container={} agent={}",
                        handle.container_id, handle.agent_addr
                    ),
                )
                .await;
                let target = AgentTarget {
                    addr: handle.agent_addr,
                    secret,
                };
                self.spawn_ready_watch(live, name, target, started);
                Ok::<(), Error>(())
            }
        });
        let results = futures_util::future::join_all(starts).await;
        results.into_iter().collect::<Result<Vec<()>, Error>>()?;
        Ok(())
    }

    fn spawn_ready_watch(
        self: &Arc<Self>,
        live: &Arc<Live>,
        name: &str,
        target: AgentTarget,
        started: Instant,
    ) {
        let Some(cancel) = lock(&live.instances).get(name).map(|i| i.cancel.clone()) else {
            return;
        };
        let (this, live, name) = (self.clone(), live.clone(), name.to_owned());
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = this.watch_ready(&live, &name, &target, started) => {}
            }
        });
    }

    async fn watch_ready(
        &self,
        live: &Arc<Live>,
        name: &str,
        target: &AgentTarget,
        started: Instant,
    ) {
        let id = live.id();
        let timeout = crate::templates::ready_timeout(&self.config, &lock(&live.row).template);
        let deadline = started + timeout;
        let mut next_inspect = Instant::now() + INSPECT_EVERY;
        loop {
            let wait = HEALTH_WAIT.min(deadline.saturating_duration_since(Instant::now()));
            let last = match self.agent.health_wait(target, wait).await {
                Ok(h) if h.ready => {
                    let took = started.elapsed();
                    self.metrics.observe_start(took);
                    if let Some(row) = live.update_instance(name, |r| {
                        r.state = instance_state::READY.to_owned();
                        r.reason = None;
                    }) {
                        if let Err(e) = self.store.put_instance(&row).await {
                            tracing::warn!(session = %id, instance = name, error = %e, "store");
                        }
                    }
                    tracing::info!(session = %id, instance = name, secs = took.as_secs_f64(), "instance ready");
                    self.event(
                        &id,
                        "instance_ready",
                        &format!("{name} after {} ms", took.as_millis()),
                    )
                    .await;
                    return;
                }
                Ok(h) => not_ready_message(&h),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= next_inspect {
                next_inspect = Instant::now() + INSPECT_EVERY;
                if let Ok(found) = self.runtime.inspect(&id, name).await {
                    if !found.as_ref().is_some_and(|i| i.running) {
                        self.fail_instance(
                            live,
                            name,
                            "the instance's container stopped before its agent was ready".into(),
                        )
                        .await;
                        return;
                    }
                }
            }
            if Instant::now() >= deadline {
                let why = format!(
                    "agent did not report ready within {} s: {last}",
                    timeout.as_secs()
                );
                self.fail_instance(live, name, why).await;
                return;
            }
            tokio::time::sleep(ready_retry(started.elapsed())).await;
        }
    }

    async fn fail_instance(&self, live: &Arc<Live>, name: &str, reason: String) {
        let id = live.id();
        tracing::warn!(session = %id, instance = name, %reason, "instance failed");
        Metrics::add(&self.metrics.instances_failed, 1);
        if let Some(row) = live.update_instance(name, |r| {
            r.state = instance_state::FAILED.to_owned();
            r.reason = Some(reason.clone());
        }) {
            let _ = self.store.put_instance(&row).await;
        }
        self.event(&id, "instance_failed", &format!("{name}: {reason}"))
            .await;
    }

    /// Moves `expires_at` to `min(now + session length, created_at + max length)`.
    pub async fn extend(&self, live: &Arc<Live>) -> Result<SessionView, Error> {
        live.activity.input(self.clock.now_ms());
        let _g = live.ops.lock().await;
        if live.is_ended() {
            return Err(Error::SessionNotFound);
        }
        let (id, new) = {
            let mut r = lock(&live.row);
            let cap = r.created_at + self.config.max_session_length.as_millis() as i64;
            let want = self.clock.now_ms() + self.config.session_length.as_millis() as i64;
            r.expires_at = want.min(cap).max(r.expires_at);
            (r.id.clone(), r.expires_at)
        };
        self.store.set_session_expiry(&id, new).await?;
        self.event(&id, "extended", &format!("expires_at={}", rfc3339(new)))
            .await;
        self.wake.notify_one();
        Ok(live.view())
    }

    /// Moves `expires_at` to `max(expires_at, now) + by` (an instructor's extension: no cap
    /// but what the caller allows).
    pub async fn extend_by(&self, live: &Arc<Live>, by: Duration) -> Result<SessionView, Error> {
        let _g = live.ops.lock().await;
        if live.is_ended() {
            return Err(Error::SessionNotFound);
        }
        // An instructor extending a participant is activity, like the owner's extend.
        live.activity.input(self.clock.now_ms());
        let (id, new) = {
            let mut r = lock(&live.row);
            r.expires_at = r.expires_at.max(self.clock.now_ms()) + by.as_millis() as i64;
            (r.id.clone(), r.expires_at)
        };
        self.store.set_session_expiry(&id, new).await?;
        self.event(&id, "extended", &format!("expires_at={}", rfc3339(new)))
            .await;
        self.wake.notify_one();
        Ok(live.view())
    }

    /// The live session `id` (no token needed: for the server's own callers, such as an
    /// instructor's view of a participant).
    pub fn live(&self, id: &str) -> Option<Arc<Live>> {
        lock(&self.live).get(id).filter(|l| !l.is_ended()).cloned()
    }

    /// Session events as they are recorded.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    /// Adds the next free `nodeN` (up to the per-session maximum).
    pub async fn add_instance(self: &Arc<Self>, live: &Arc<Live>) -> Result<InstanceView, Error> {
        let _g = live.ops.lock().await;
        if live.is_ended() {
            return Err(Error::SessionNotFound);
        }
        let id = live.id();
        let max = self.config.max_instances_per_session;
        let name = {
            let map = lock(&live.instances);
            if map.len() >= max {
                return Err(Error::Conflict(format!(
                    "session {id} already has {} of {max} instances",
                    map.len()
                )));
            }
            (1..=max)
                .map(|n| format!("node{n}"))
                .find(|n| !map.contains_key(n))
                .ok_or_else(|| Error::Conflict(format!("session {id} has no free instance name")))?
        };
        if let Err(e) = self
            .start_instances(live, std::slice::from_ref(&name))
            .await
        {
            let _ = self.runtime.remove_instance(&id, &name).await;
            lock(&live.instances).remove(&name);
            let _ = self.store.delete_instance(&id, &name).await;
            return Err(e);
        }
        let view = lock(&live.instances)
            .get(&name)
            .map(|i| InstanceView {
                name: i.row.name.clone(),
                state: i.row.state.clone(),
                reason: i.row.reason.clone(),
            })
            .ok_or_else(|| Error::Internal(format!("instance {name} vanished")))?;
        Ok(view)
    }

    pub async fn remove_instance(&self, live: &Arc<Live>, name: &str) -> Result<(), Error> {
        let _g = live.ops.lock().await;
        if live.is_ended() {
            return Err(Error::SessionNotFound);
        }
        let id = live.id();
        let inst = lock(&live.instances).remove(name);
        let Some(inst) = inst else {
            return Err(Error::NotFound(format!(
                "instance {name:?} not found in session {id}"
            )));
        };
        inst.cancel.cancel();
        let _ = inst.ended.send_replace(Some("instance removed".into()));
        self.runtime
            .remove_instance(&id, name)
            .await
            .map_err(runtime_error)?;
        self.store.delete_instance(&id, name).await?;
        self.event(&id, "instance_removed", name).await;
        Ok(())
    }

    /// Where to reach the agent of a ready instance.
    pub fn agent_target(&self, live: &Arc<Live>, name: &str) -> Result<AgentTarget, Error> {
        let id = live.id();
        let map = lock(&live.instances);
        let inst = map.get(name).ok_or_else(|| {
            Error::NotFound(format!("instance {name:?} not found in session {id}"))
        })?;
        if inst.row.state != instance_state::READY {
            return Err(Error::Conflict(format!(
                "instance {name} of session {id} is {}{}",
                inst.row.state,
                inst.row
                    .reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_else(|| ", not ready yet".into())
            )));
        }
        let addr = inst
            .row
            .agent_addr
            .as_deref()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| Error::Internal(format!("instance {name} has no agent address")))?;
        Ok(AgentTarget {
            addr,
            secret: inst.row.agent_secret.clone(),
        })
    }

    /// The state (`starting`, `ready`, `failed`) and failure reason of instance `name`, or
    /// `None` if the session has no such instance.
    pub fn instance_state(&self, live: &Arc<Live>, name: &str) -> Option<(String, Option<String>)> {
        lock(&live.instances)
            .get(name)
            .map(|i| (i.row.state.clone(), i.row.reason.clone()))
    }

    /// A receiver that turns `Some(reason)` when the instance or its session ends.
    pub fn instance_ended(
        &self,
        live: &Arc<Live>,
        name: &str,
    ) -> Option<watch::Receiver<Option<String>>> {
        lock(&live.instances).get(name).map(|i| i.ended.subscribe())
    }

    /// Closes a session for good: terminals get a close frame with the reason, then every
    /// container, volume and the network are removed before this returns.
    pub async fn end(&self, id: &str, reason: EndReason) -> Result<(), Error> {
        let live = lock(&self.live).get(id).cloned();
        let Some(live) = live else { return Ok(()) };
        let _g = live.ops.lock().await;
        if live.is_ended() {
            return Ok(());
        }
        let msg = reason.message();
        live.cancel.cancel();
        let _ = live.ended.send_replace(Some(msg.to_owned()));
        for i in lock(&live.instances).values() {
            let _ = i.ended.send_replace(Some(msg.to_owned()));
        }
        let mut result = Ok(());
        for attempt in 0..3 {
            match self.runtime.remove_session(id).await {
                Ok(()) => {
                    result = Ok(());
                    break;
                }
                Err(e) => {
                    tracing::warn!(session = id, attempt, error = %e, "removing session resources failed");
                    result = Err(runtime_error(e));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        lock(&self.live).remove(id);
        self.per_ip.ended(id);
        let _ = self.store.set_session_state(id, reason.state()).await;
        let _ = self.store.delete_instances(id).await;
        match reason {
            EndReason::Expired | EndReason::Idle => Metrics::add(&self.metrics.sessions_expired, 1),
            EndReason::Closed | EndReason::ServerStopped => {
                Metrics::add(&self.metrics.sessions_closed, 1)
            }
        }
        self.event(id, reason.state(), msg).await;
        tracing::info!(session = id, reason = msg, "session ended");
        self.wake.notify_one();
        result
    }

    /// Ends sessions as they expire; runs until shutdown.
    pub async fn run_expiry(self: Arc<Self>) {
        loop {
            let now = self.clock.now_ms();
            let live: Vec<Arc<Live>> = lock(&self.live).values().cloned().collect();
            let mut next: Option<i64> = None;
            for l in live {
                let at = l.expires_at();
                if at <= now {
                    let id = l.id();
                    if let Err(e) = self.end(&id, EndReason::Expired).await {
                        tracing::warn!(session = %id, error = %e, "expiring session");
                    }
                } else {
                    next = Some(next.map_or(at, |n: i64| n.min(at)));
                }
            }
            let until = match next {
                Some(at) => self.clock.instant_at(at),
                None => Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = self.wake.notified() => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Brings the store and the runtime into agreement at start-up: live sessions whose
    /// containers run are adopted, expired ones and ones whose containers are gone are cleaned
    /// up, and resources with this server's owner label that belong to no live session are
    /// removed (other servers' resources are never listed; unlabelled ones are left).
    pub async fn reconcile(self: &Arc<Self>) -> Result<ReconcileReport, Error> {
        let mut report = ReconcileReport::default();
        let owned = self.runtime.list_owned().await.map_err(runtime_error)?;
        let now = self.clock.now_ms();
        for row in self.store.sessions_in_state(session_state::ACTIVE).await? {
            let id = row.id.clone();
            let rows = self.store.instances(&id).await?;
            let present: HashMap<&str, &crate::runtime::OwnedInstance> = owned
                .instances
                .iter()
                .filter(|i| i.session == id)
                .map(|i| (i.name.as_str(), i))
                .collect();
            let any_running = rows
                .iter()
                .any(|r| present.get(r.name.as_str()).is_some_and(|i| i.running));
            if row.expires_at <= now || !any_running {
                let (state, why) = if row.expires_at <= now {
                    (session_state::EXPIRED, "expired while the server was down")
                } else {
                    (session_state::CLOSED, "its containers are gone")
                };
                if let Err(e) = self.runtime.remove_session(&id).await {
                    tracing::warn!(session = %id, error = %e, "cleaning up session");
                }
                self.store.set_session_state(&id, state).await?;
                self.store.delete_instances(&id).await?;
                self.event(&id, state, &format!("cleaned up at start-up: {why}"))
                    .await;
                tracing::info!(session = %id, why, "cleaned up session at start-up");
                report.cleaned.push(id);
                continue;
            }
            let live = Arc::new(Live::new(row.clone(), &self.shutdown));
            match self.runtime.create_network(&id).await {
                Ok(n) => *lock(&live.gateway) = n.gateway,
                Err(e) => tracing::warn!(session = %id, error = %e, "finding the session network"),
            }
            let mut watches = Vec::new();
            for mut r in rows {
                match present.get(r.name.as_str()) {
                    Some(i) if i.running => {
                        if let Some(a) = i.agent_addr {
                            r.agent_addr = Some(a.to_string());
                        }
                        r.container_id = Some(i.container_id.clone());
                        if r.state == instance_state::STARTING {
                            if let Some(addr) = r.agent_addr.as_deref().and_then(|a| a.parse().ok())
                            {
                                watches.push((
                                    r.name.clone(),
                                    AgentTarget {
                                        addr,
                                        secret: r.agent_secret.clone(),
                                    },
                                ));
                            }
                        }
                    }
                    _ => {
                        r.state = instance_state::FAILED.to_owned();
                        r.reason = Some(
                            "the instance's container is gone (found at server start-up)".into(),
                        );
                        let _ = self.runtime.remove_instance(&id, &r.name).await;
                    }
                }
                self.store.put_instance(&r).await?;
                live.insert_instance(r);
            }
            // Containers of this session that the store does not know.
            for (name, _) in present
                .iter()
                .filter(|(n, _)| !lock(&live.instances).contains_key(**n))
            {
                let _ = self.runtime.remove_instance(&id, name).await;
            }
            lock(&self.live).insert(id.clone(), live.clone());
            for (name, target) in watches {
                self.spawn_ready_watch(&live, &name, target, Instant::now());
            }
            self.event(&id, "adopted", "adopted at server start-up")
                .await;
            tracing::info!(session = %id, "adopted session");
            report.adopted.push(id);
        }
        let live_ids: Vec<String> = lock(&self.live).keys().cloned().collect();
        // Resources without an owner label may belong to another server on this engine:
        // never removed here (see runtime::owner).
        let legacy = match self.runtime.legacy_sessions().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing resources without an owner label");
                owned.sessions()
            }
        };
        for s in owned.sessions() {
            if !live_ids.contains(&s) && legacy.contains(&s) {
                tracing::warn!(
                    session = %s,
                    "leaving resources of session {s}: they carry no drydock.server owner \
                     label (made before owner ids), so they may belong to another server; \
                     remove them by hand (label drydock.session={s}) if no server uses them"
                );
                report.unowned_left.push(s);
                continue;
            }
            if !live_ids.contains(&s) {
                if let Err(e) = self.runtime.remove_session(&s).await {
                    tracing::warn!(session = %s, error = %e, "removing orphaned resources");
                } else {
                    tracing::info!(session = %s, "removed orphaned resources");
                }
                report.orphans_removed.push(s);
            }
        }
        self.wake.notify_one();
        Ok(report)
    }
}

/// What [`Sessions::reconcile`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub adopted: Vec<String>,
    pub cleaned: Vec<String>,
    pub orphans_removed: Vec<String>,
    /// Sessions whose resources carry no owner label and were left alone.
    pub unowned_left: Vec<String>,
}
