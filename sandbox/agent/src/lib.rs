//! `drydock-agent`: the process inside every Drydock instance. It runs as PID 1 (reaping
//! every child, supervising dockerd and k3s), owns the learners' terminals, runs checks,
//! reports ports and resource use, and moves files — all behind one authenticated HTTP API.

pub mod api;
pub mod auth;
pub mod config;
pub mod disk;
pub mod exec;
pub mod files;
pub mod ports;
pub mod process;
pub mod stats;
pub mod terminal;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::config::Config;
use crate::process::reaper::Reaper;
use crate::process::signals::{signal_pid, termination, wait_gone};
use crate::process::supervisor::Supervisor;
use crate::terminal::Registry;

/// How long engines and shells get to stop after SIGTERM/SIGHUP before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(8);

/// Runs the agent until SIGTERM/SIGINT, then stops everything it started and returns.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    Reaper::start().map_err(|e| anyhow::anyhow!("installing the SIGCHLD handler failed: {e}"))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding {} failed: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    tracing::info!(
        "drydock-agent {} listening on {addr}",
        env!("CARGO_PKG_VERSION")
    );

    let config = Arc::new(config);
    let supervisor = Supervisor::start(&config);
    let terminals = Registry::new(config.clone());
    let disk = disk::DiskWatch::new(disk::DiskConfig::from_env());
    tokio::spawn(disk.clone().run(
        config.clone(),
        terminals.clone(),
        supervisor.dockerd.clone(),
    ));
    let app = api::router(api::AppState {
        config: config.clone(),
        terminals: terminals.clone(),
        supervisor: supervisor.clone(),
        started,
        own_port: addr.port(),
        disk,
    });

    // Keystrokes and their echoes are tiny writes: without TCP_NODELAY, Nagle holds them
    // back behind unacknowledged output for tens of milliseconds.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("setting TCP_NODELAY on a connection failed: {e}");
        }
    });
    let serve = axum::serve(listener, app);
    tokio::select! {
        r = serve => r.map_err(|e| anyhow::anyhow!("the HTTP server failed: {e}"))?,
        sig = termination() => {
            let sig = sig.map_err(|e| anyhow::anyhow!("installing signal handlers failed: {e}"))?;
            tracing::info!("{sig}: stopping terminals and engines");
        }
    }

    let mut pids = terminals.hangup_all();
    let engines = supervisor.terminate();
    pids.extend(&engines);
    let left = wait_gone(&pids, STOP_GRACE).await;
    if !left.is_empty() {
        tracing::warn!("still running after {STOP_GRACE:?}, killing: {left:?}");
        terminals.kill_all();
        for pid in engines {
            signal_pid(pid, Signal::SIGKILL);
        }
    }
    Ok(())
}
