//! Idle culling. A session is active while bytes flow through any of its terminals (input
//! from a browser or output to one) or its owner extends it. After `idle_after` without
//! either, every terminal of every instance gets a warning (through the agent, so it is also
//! in the scrollback); after `idle_grace` more, the session ends with the reason "session
//! ended: idle for too long". Activity in between cancels the warning.
//!
//! Output that the warning itself causes (the agent echoes it to attached browsers) is not
//! activity: output seen within [`NOTICE_ECHO`] after a warning is ignored.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{EndReason, Sessions};

/// Output seen this soon after a warning is the warning's own echo.
pub const NOTICE_ECHO: Duration = Duration::from_secs(3);

/// Last activity of one session (unix ms, from the session clock).
#[derive(Debug)]
pub struct Activity {
    last: AtomicI64,
    warned_at: AtomicI64,
    warned: AtomicBool,
}

impl Activity {
    pub fn new(now_ms: i64) -> Activity {
        Activity {
            last: AtomicI64::new(now_ms),
            warned_at: AtomicI64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    /// Input from a browser, or an explicit action (extend).
    pub fn input(&self, now_ms: i64) {
        self.last.fetch_max(now_ms, Ordering::Relaxed);
        self.warned.store(false, Ordering::Relaxed);
    }

    /// Output towards a browser.
    pub fn output(&self, now_ms: i64) {
        if self.warned.load(Ordering::Relaxed)
            && now_ms - self.warned_at.load(Ordering::Relaxed) < NOTICE_ECHO.as_millis() as i64
        {
            return;
        }
        self.input(now_ms);
    }

    pub fn last_ms(&self) -> i64 {
        self.last.load(Ordering::Relaxed)
    }

    /// Marks the session warned; false if it already was.
    fn warn(&self, now_ms: i64) -> bool {
        if self.warned.load(Ordering::Relaxed) {
            return false;
        }
        self.warned_at.store(now_ms, Ordering::Relaxed);
        self.warned.store(true, Ordering::Relaxed);
        true
    }
}

/// The warning written into the terminals.
pub fn warning(grace: Duration) -> String {
    let mins = grace.as_secs().div_ceil(60).max(1);
    format!(
        "drydock: this session has been idle for a while and ends in {mins} minute{} unless \
         you type something.",
        if mins == 1 { "" } else { "s" }
    )
}

/// Warns and ends idle sessions; runs until shutdown. Does nothing when idling is allowed
/// forever (`idle_after` zero).
pub async fn run(sessions: Arc<Sessions>) {
    let after = sessions.config().idle_after;
    let grace = sessions.config().idle_grace;
    if after.is_zero() {
        return;
    }
    let tick = (after.min(grace.max(Duration::from_secs(1))) / 4)
        .clamp(Duration::from_millis(250), Duration::from_secs(30));
    let shutdown = sessions.shutdown_token().clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.cancelled() => return,
        }
        let now = sessions.clock().now_ms();
        for live in sessions.live_sessions() {
            if live.activity.last_ms() == 0 {
                // Adopted or just created: idle from now on.
                live.activity.input(now);
                continue;
            }
            let idle = Duration::from_millis((now - live.activity.last_ms()).max(0) as u64);
            if idle >= after + grace {
                let id = live.id();
                tracing::info!(session = %id, idle_s = idle.as_secs(), "ending idle session");
                if let Err(e) = sessions.end(&id, EndReason::Idle).await {
                    tracing::warn!(session = %id, error = %e, "ending idle session");
                }
            } else if idle >= after && live.activity.warn(now) {
                let id = live.id();
                tracing::info!(session = %id, idle_s = idle.as_secs(), "warning idle session");
                sessions.notice_all(&live, &warning(grace)).await;
            }
        }
    }
}
