//! Whether a new workshop fits the server, checked when it is created (409 with why and by
//! how much otherwise):
//!
//! - **sessions**: its seats must fit in `max_sessions` minus what is in use — live sessions,
//!   the playground's warm instances, and the seats other open workshops have not filled yet
//!   (kept for them). A workshop's own warm instances are its future participants' sessions,
//!   so its warm pool (at most its seats) needs no room beyond the seats.
//! - **memory**: seats × `memory_mb` (each instance's memory limit) must not exceed the
//!   host's memory (`MemTotal` of /proc/meminfo; skipped where it cannot be read).

use super::Workshops;
use crate::error::Error;
use crate::sessions::warm::playground_pool;
use crate::store::workshop_state;

/// `MemTotal` from a /proc/meminfo text, in MiB.
pub fn mem_total_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// The host's memory in MiB, if known.
pub fn host_memory_mb() -> Option<u64> {
    mem_total_mb(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// What is using the server's session capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub max_sessions: usize,
    pub live: usize,
    pub playground_warm: usize,
    /// Seats other open workshops have not filled.
    pub reserved: usize,
}

impl Usage {
    pub fn free(&self) -> usize {
        self.max_sessions
            .saturating_sub(self.live + self.playground_warm + self.reserved)
    }
}

pub async fn usage(w: &Workshops) -> Result<Usage, Error> {
    let sessions = w.sessions();
    let store = sessions.store();
    let now = sessions.clock().now_ms();
    let mut reserved = 0usize;
    for row in store.workshops_in_state(workshop_state::ACTIVE).await? {
        if row.closes_at.is_some_and(|t| now >= t) {
            continue;
        }
        let taken = w.taken(&store.participants(&row.id).await?);
        reserved += (row.seats - taken).max(0) as usize;
    }
    let pw = sessions.warm_pool_count(&playground_pool(crate::templates::DOCKER));
    Ok(Usage {
        max_sessions: sessions.config().max_sessions,
        live: sessions.live_count(),
        playground_warm: pw.ready + pw.starting,
        reserved,
    })
}

/// Refuses (409) a workshop of `seats` that does not fit, saying why and by how much.
pub async fn check(w: &Workshops, seats: usize) -> Result<(), Error> {
    let u = usage(w).await?;
    let free = u.free();
    if seats > free {
        return Err(Error::Conflict(format!(
            "not enough capacity for {seats} seats: this server runs at most {} sessions \
             (max_sessions) and {} are in use or kept ({} live sessions, {} warm playground \
             instances, {} seats not yet taken in other open workshops), so {free} are free: \
             {} seats too many",
            u.max_sessions,
            u.max_sessions - free,
            u.live,
            u.playground_warm,
            u.reserved,
            seats - free
        )));
    }
    let memory_mb = w.sessions().config().memory_mb;
    if let Some(total) = host_memory_mb() {
        let need = seats as u64 * memory_mb;
        if need > total {
            return Err(Error::Conflict(format!(
                "not enough memory for {seats} seats: {seats} × {memory_mb} MB (memory_mb, \
                 each instance's limit) = {need} MB, but this host has {total} MB \
                 (MemTotal): {} MB too much; at most {} seats fit",
                need - total,
                total / memory_mb.max(1)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_free() {
        let m = "MemTotal:       24684096 kB\nMemFree:  1 kB\n";
        assert_eq!(mem_total_mb(m), Some(24105));
        assert_eq!(mem_total_mb("nothing"), None);
        let u = Usage {
            max_sessions: 10,
            live: 3,
            playground_warm: 2,
            reserved: 7,
        };
        assert_eq!(u.free(), 0);
    }
}
