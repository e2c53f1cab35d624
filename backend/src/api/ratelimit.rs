//! Per-client-IP limit on session creation (a sliding one-minute window).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

const WINDOW: Duration = Duration::from_secs(60);

pub struct RateLimiter {
    per_minute: u32,
    hits: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one creation from `ip`, or refuses it with 429.
    pub fn check(&self, ip: IpAddr) -> Result<(), Error> {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() > 10_000 {
            hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let q = hits.entry(ip).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.len() >= self.per_minute as usize {
            let wait = q
                .front()
                .map(|t| WINDOW.saturating_sub(now.duration_since(*t)).as_secs() + 1)
                .unwrap_or(60);
            return Err(Error::RateLimited(format!(
                "too many sessions created from {ip}: at most {} per minute, try again in {wait} s",
                self.per_minute
            )));
        }
        q.push_back(now);
        Ok(())
    }
}
