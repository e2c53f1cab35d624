//! Wall-clock time that follows tokio's clock, so expiry can be tested with paused time.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use tokio::time::Instant;

/// Unix milliseconds derived from a wall-clock reading taken once plus tokio's monotonic time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall0_ms: i64,
    t0: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            wall0_ms: Utc::now().timestamp_millis(),
            t0: Instant::now(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.wall0_ms + self.t0.elapsed().as_millis() as i64
    }

    /// The tokio instant at which the wall clock reads `ms` (now, if that is in the past).
    pub fn instant_at(&self, ms: i64) -> Instant {
        let now = self.now_ms();
        Instant::now() + Duration::from_millis(ms.saturating_sub(now).max(0) as u64)
    }
}

/// RFC 3339 with millisecond precision and `Z`.
pub fn rfc3339(ms: i64) -> String {
    let dt: DateTime<Utc> = Utc
        .timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now);
    dt.to_rfc3339_opts(SecondsFormat::Millis, true)
}
