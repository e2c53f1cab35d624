//! Engine watch: the container engine may go away (dockerd restarted or crashed) while the
//! server runs. Every [`ENGINE_POLL`] the runtime is checked; when it stops answering, every
//! instance of every live session is marked `starting` with the reason (so the UI says so
//! instead of showing dead terminals) and `/healthz` answers 503 with the same reason. When
//! the engine answers again each instance is recovered: a container that survived (Docker
//! with `live-restore`) is simply watched until its agent is ready again; a container the
//! restart stopped (Docker's default) is started again — same volume, so nested images and
//! containers are still there, but the shells and their scrollback are new; a container that
//! is gone fails the instance with a reason.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{lock, AgentTarget, Live, Sessions};
use crate::runtime::RuntimeError;
use crate::store::instance_state;

/// How often the engine is checked.
pub const ENGINE_POLL: Duration = Duration::from_secs(2);

/// Watches the engine until shutdown.
pub async fn run(sessions: Arc<Sessions>) {
    let shutdown = sessions.shutdown_token().clone();
    let mut down = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ENGINE_POLL) => {}
            _ = shutdown.cancelled() => return,
        }
        match sessions.runtime().check().await {
            Err(RuntimeError::Unreachable(msg)) => {
                if !down {
                    down = true;
                    tracing::warn!(error = %msg, "container engine unreachable: instances wait for it");
                    mark_all(&sessions, &msg).await;
                }
            }
            _ => {
                if down {
                    down = false;
                    tracing::info!("container engine is back: recovering instances");
                    recover_all(&sessions).await;
                }
            }
        }
    }
}

/// Marks every instance `starting` with the engine's error as the reason.
pub async fn mark_all(sessions: &Sessions, msg: &str) {
    let reason = format!("the container engine is unavailable ({msg}); waiting for it to return");
    for live in sessions.live_sessions() {
        let names: Vec<String> = lock(&live.instances).keys().cloned().collect();
        for name in names {
            if let Some(row) = live.update_instance(&name, |r| {
                r.state = instance_state::STARTING.to_owned();
                r.reason = Some(reason.clone());
            }) {
                let _ = sessions.store.put_instance(&row).await;
            }
        }
        sessions.event(&live.id(), "engine_down", &reason).await;
    }
}

/// Brings every instance back after the engine returned.
pub async fn recover_all(sessions: &Arc<Sessions>) {
    for live in sessions.live_sessions() {
        let names: Vec<String> = lock(&live.instances).keys().cloned().collect();
        for name in names {
            recover(sessions, &live, &name).await;
        }
    }
}

async fn recover(sessions: &Arc<Sessions>, live: &Arc<Live>, name: &str) {
    let id = live.id();
    let _g = live.ops.lock().await;
    if live.is_ended() {
        return;
    }
    let found = match sessions.runtime().restart_instance(&id, name).await {
        Ok(found) => found,
        Err(e) => {
            sessions
                .fail_instance(
                    live,
                    name,
                    format!("restarting after the engine returned: {e}"),
                )
                .await;
            return;
        }
    };
    let Some(inst) = found.filter(|i| i.running) else {
        sessions
            .fail_instance(
                live,
                name,
                "the instance's container is gone after the engine restarted".into(),
            )
            .await;
        return;
    };
    let Some(addr) = inst.agent_addr else {
        sessions
            .fail_instance(live, name, "the restarted instance has no address".into())
            .await;
        return;
    };
    // A new watch replaces any earlier one (it could fail the instance on its old deadline).
    {
        let mut map = lock(&live.instances);
        if let Some(i) = map.get_mut(name) {
            i.cancel.cancel();
            i.cancel = live.cancel.child_token();
        }
    }
    let Some(row) = live.update_instance(name, |r| {
        r.state = instance_state::STARTING.to_owned();
        r.reason = Some("restarting after the container engine returned".into());
        r.agent_addr = Some(addr.to_string());
        r.container_id = Some(inst.container_id.clone());
    }) else {
        return;
    };
    let _ = sessions.store.put_instance(&row).await;
    sessions
        .event(&id, "engine_recovered", &format!("{name} agent={addr}"))
        .await;
    sessions.spawn_ready_watch(
        live,
        name,
        AgentTarget {
            addr,
            secret: row.agent_secret.clone(),
        },
        Instant::now(),
    );
}
