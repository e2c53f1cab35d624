//! Drydock server library: configuration, store, instance runtime, agent client, sessions,
//! HTTP API and terminal relay. The `drydock` binary (main.rs) only parses the command line
//! and calls into here.

pub mod agent_client;
pub mod api;
pub mod config;
pub mod error;
pub mod lessons;
pub mod metrics;
pub mod ops;
pub mod proxy;
pub mod relay;
pub mod runtime;
pub mod sessions;
pub mod store;
pub mod templates;
pub mod ui;
pub mod workshops;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use config::Config;
use metrics::Metrics;
use runtime::{DockerRuntime, Runtime};
use sessions::Sessions;
use store::{SqliteStore, Store};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot create or use the data directory ({path}): {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving HTTP failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error("start-up reconciliation failed: {0}")]
    Reconcile(error::Error),
    #[error(transparent)]
    Lessons(#[from] lessons::LessonError),
}

/// Builds the session manager and the router from parts (tests pass their own runtime and
/// store).
pub fn build(
    config: Config,
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
) -> (axum::Router, Arc<Sessions>) {
    let lessons = lessons::Catalog::embedded().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the embedded lessons are not valid; serving none");
        lessons::Catalog::default()
    });
    build_with_lessons(config, store, runtime, Arc::new(lessons))
}

/// [`build`] with the lessons to serve.
pub fn build_with_lessons(
    config: Config,
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
    lessons: Arc<lessons::Catalog>,
) -> (axum::Router, Arc<Sessions>) {
    let sessions = Sessions::new(
        Arc::new(config),
        store,
        runtime,
        Arc::new(Metrics::default()),
    );
    (api::router(sessions.clone(), lessons), sessions)
}

/// Runs the server until `shutdown` resolves: opens the store in the data directory, connects
/// to the local Docker engine, reconciles, starts the expiry task and serves HTTP. Sessions are
/// left running on shutdown so that the next start adopts them.
pub async fn run(
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let lessons = lessons::Catalog::load(config.lessons_dir.as_deref())?;
    for l in lessons.lessons() {
        tracing::info!(lesson = %l.id, from = %l.origin, steps = l.steps.len(), "lesson");
    }
    let store = SqliteStore::open(&config.data_dir.join("drydock.db")).await?;
    let server_id =
        runtime::owner::load_or_create(&config.data_dir).map_err(|source| ServeError::DataDir {
            path: config
                .data_dir
                .join(runtime::owner::SERVER_ID_FILE)
                .display()
                .to_string(),
            source,
        })?;
    tracing::info!(server_id = %server_id, "owner id of this server's containers");
    let runtime = DockerRuntime::connect(runtime::docker::DockerSettings::from_config(
        &config, server_id,
    ))
    .await?;
    let runtime = if config.netpolicy {
        let policy = Arc::new(
            runtime::netpolicy::NetPolicy::new(config.egress, config.registry_mirror_port())
                .with_egress_mbit(config.egress_mbit),
        );
        policy
            .install()
            .await
            .map_err(|e| runtime::RuntimeError::Engine {
                op: "installing the host firewall (netpolicy = false runs without it)".into(),
                message: e.to_string(),
            })?;
        tracing::info!(
            egress = config.egress.as_str(),
            "host firewall installed: DOCKER-USER → DRYDOCK-FWD, INPUT → DRYDOCK-IN"
        );
        runtime.with_netpolicy(policy)
    } else {
        tracing::warn!(
            "netpolicy = false: instances can reach the host's services, other Docker \
             networks, SMTP and the cloud metadata address"
        );
        runtime
    };
    if let Err(e) = runtime.check().await {
        tracing::warn!(error = %e, "sessions cannot be created until this is fixed");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(ServeError::Serve)?;
    if config.public_origin.is_none() {
        config.allowed_origins = config::derived_origins(bound);
    }
    let (router, sessions) = build_with_lessons(
        config,
        Arc::new(store),
        Arc::new(runtime),
        Arc::new(lessons),
    );
    let report = sessions.reconcile().await.map_err(ServeError::Reconcile)?;
    tracing::info!(
        adopted = report.adopted.len(),
        cleaned = report.cleaned.len(),
        orphans_removed = report.orphans_removed.len(),
        unowned_left = report.unowned_left.len(),
        "reconciled with the container engine"
    );
    tokio::spawn(sessions.clone().run_expiry());
    // After reconcile, which removed the warm instances of a previous run.
    tokio::spawn(sessions.clone().run_warm_pools());
    tokio::spawn(sessions::idle::run(sessions.clone()));
    tokio::spawn(sessions::engine::run(sessions.clone()));
    tracing::info!("drydock listening on http://{bound}");
    let token = sessions.shutdown_token().clone();
    let stopping = sessions.clone();
    let signal = async move {
        shutdown.await;
        if stopping.config().stop_sessions_on_exit {
            tracing::info!("shutting down; ending every session (stop_sessions_on_exit)");
            stopping.stop_all().await;
        } else {
            tracing::info!("shutting down; sessions keep running for the next start");
        }
        token.cancel();
    };
    // Terminal frames are small and latency-bound: no Nagle on browser connections.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("setting TCP_NODELAY on a connection failed: {e}");
        }
    });
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await;
    // Upgraded WebSockets are not connections graceful shutdown waits for: give the relays,
    // already cancelled, a moment to send their close frames before the process exits.
    let metrics = sessions.metrics();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while metrics
        .terminals_open
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    served.map_err(ServeError::Serve)
}
