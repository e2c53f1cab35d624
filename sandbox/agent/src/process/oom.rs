//! The agent's own OOM score. The server starts instances with `oom_score_adj = -1000`
//! (written by the host's runc with CAP_SYS_RESOURCE, which also lets this process go back
//! down to -1000 later), so the kernel's OOM killer never picks PID 1 when a learner's memory
//! bomb fills the instance's memory cgroup. Children must not inherit that: every child is
//! spawned with the agent's score raised to 0 for the moment of the fork, then lowered again
//! (under the reaper's lock, so spawns never overlap), and learners' processes are ordinary
//! OOM victims.
//!
//! Without CAP_SYS_RESOURCE and without a -1000 from the runtime, lowering fails (EACCES); the
//! agent logs it and runs with whatever score it got.

use std::sync::atomic::{AtomicBool, Ordering};

const PATH: &str = "/proc/self/oom_score_adj";
/// The agent's score once [`protect_self`] succeeded.
pub const AGENT_SCORE: i32 = -1000;

static PROTECTED: AtomicBool = AtomicBool::new(false);

fn write(score: i32) -> std::io::Result<()> {
    std::fs::write(PATH, format!("{score}\n"))
}

/// The current `oom_score_adj` of this process.
pub fn current() -> Option<i32> {
    std::fs::read_to_string(PATH).ok()?.trim().parse().ok()
}

/// Sets this process's score to -1000 (PID 1 only). Logs and carries on when not allowed.
pub fn protect_self() {
    match write(AGENT_SCORE) {
        Ok(()) => {
            PROTECTED.store(true, Ordering::SeqCst);
            tracing::info!("oom_score_adj set to {AGENT_SCORE}: the OOM killer spares the agent");
        }
        Err(e) => tracing::warn!(
            "cannot set oom_score_adj to {AGENT_SCORE} ({e}): without CAP_SYS_RESOURCE only the \
             container runtime can (the server asks Docker for it); running with {:?}",
            current()
        ),
    }
}

/// Runs `spawn` (which forks) with this process's score at 0, so the child starts with 0;
/// then goes back to -1000. A no-op wrapper when [`protect_self`] did not succeed.
pub fn with_child_score<T>(spawn: impl FnOnce() -> T) -> T {
    if !PROTECTED.load(Ordering::SeqCst) {
        return spawn();
    }
    if let Err(e) = write(0) {
        tracing::warn!("cannot raise oom_score_adj to 0 for a child: {e}");
        return spawn();
    }
    let out = spawn();
    if let Err(e) = write(AGENT_SCORE) {
        tracing::warn!("cannot lower oom_score_adj back to {AGENT_SCORE}: {e}");
        PROTECTED.store(false, Ordering::SeqCst);
    }
    out
}
