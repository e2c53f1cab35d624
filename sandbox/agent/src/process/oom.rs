//! OOM scores: when a learner's memory bomb fills the instance's memory cgroup, the kernel's
//! OOM killer must pick the bomb, never PID 1 (the agent).
//!
//! - Where the host grants CAP_SYS_RESOURCE, the server starts instances with
//!   `oom_score_adj = -1000` (runc writes it with that capability, which also lets this
//!   process go back down to -1000 later). The agent keeps -1000 and its children get 0.
//! - Elsewhere (like hosts that refuse CAP_SYS_RESOURCE) a negative score is impossible, so
//!   [`protect_self`]'s write fails and is logged; the agent stays at 0 and its children get
//!   +500 instead, which makes every learner process a far likelier victim than the agent.
//!   (A learner may lower their own process back to 0, never below: then the biggest process
//!   is picked, which is theirs.)
//!
//! Each child gets its score by inheritance: the agent sets its own score to the children's
//! for the moment of the fork, then back (under the reaper's lock, so spawns never overlap).

use std::sync::atomic::{AtomicI32, Ordering};

const PATH: &str = "/proc/self/oom_score_adj";
/// The agent's score when the runtime allows it.
pub const AGENT_SCORE: i32 = -1000;
/// Children's score when the agent could not go below 0.
pub const CHILD_SCORE_UNPROTECTED: i32 = 500;

/// (agent's own score, children's score), set by [`protect_self`].
static AGENT: AtomicI32 = AtomicI32::new(0);
static CHILD: AtomicI32 = AtomicI32::new(0);

fn write(score: i32) -> std::io::Result<()> {
    std::fs::write(PATH, format!("{score}\n"))
}

/// The current `oom_score_adj` of this process.
pub fn current() -> Option<i32> {
    std::fs::read_to_string(PATH).ok()?.trim().parse().ok()
}

/// Sets this process's score to -1000 (PID 1 only), or arranges for children to get +500
/// when that is not allowed.
pub fn protect_self() {
    match write(AGENT_SCORE) {
        Ok(()) => {
            AGENT.store(AGENT_SCORE, Ordering::SeqCst);
            CHILD.store(0, Ordering::SeqCst);
            tracing::info!("oom_score_adj {AGENT_SCORE}: the OOM killer spares the agent");
        }
        Err(e) => {
            let own = current().unwrap_or(0);
            AGENT.store(own, Ordering::SeqCst);
            CHILD.store(CHILD_SCORE_UNPROTECTED.max(own), Ordering::SeqCst);
            tracing::warn!(
                "cannot set oom_score_adj to {AGENT_SCORE} ({e}; it needs CAP_SYS_RESOURCE, \
                 or the runtime setting it): the agent keeps {own} and its children get \
                 {CHILD_SCORE_UNPROTECTED}, so the OOM killer picks them first"
            );
        }
    }
}

/// Runs `spawn` (which forks) with this process's score set to the children's, then sets
/// it back. A plain call when both scores are the same (not PID 1).
pub fn with_child_score<T>(spawn: impl FnOnce() -> T) -> T {
    let (agent, child) = (AGENT.load(Ordering::SeqCst), CHILD.load(Ordering::SeqCst));
    if agent == child {
        return spawn();
    }
    if let Err(e) = write(child) {
        tracing::warn!("cannot set oom_score_adj to {child} for a child: {e}");
        return spawn();
    }
    let out = spawn();
    if let Err(e) = write(agent) {
        tracing::warn!("cannot set oom_score_adj back to {agent}: {e}");
        AGENT.store(child, Ordering::SeqCst);
    }
    out
}
