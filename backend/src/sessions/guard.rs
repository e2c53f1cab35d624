//! Admission checks before a session is created, besides the global cap: free space on the
//! host disks (the data directory and the engine's storage), concurrent sessions per client
//! IP, and the invite token of public servers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Bytes available to unprivileged writers on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64, String> {
    let s =
        nix::sys::statvfs::statvfs(path).map_err(|e| format!("statvfs {}: {e}", path.display()))?;
    Ok(s.blocks_available() as u64 * s.fragment_size() as u64)
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// Refuses (507) when any of `paths` has less than `min_free_mb` MiB free. Paths that cannot
/// be measured (not on this host, e.g. a remote engine's storage) are skipped with a warning.
pub fn check_disk(paths: &[PathBuf], min_free_mb: u64) -> Result<(), Error> {
    if min_free_mb == 0 {
        return Ok(());
    }
    let need = min_free_mb.saturating_mul(1024 * 1024);
    for p in paths {
        match free_bytes(p) {
            Ok(free) if free < need => {
                return Err(Error::InsufficientStorage(format!(
                    "the server's disk is nearly full ({} has {} free, new sessions need at \
                     least {}): no new sessions until the operator frees space; running \
                     sessions are not affected",
                    p.display(),
                    mib(free),
                    mib(need)
                )))
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot measure free space"),
        }
    }
    Ok(())
}

/// Whether an IP counts against the per-IP limit: direct loopback clients (the operator, the
/// tests, a reverse proxy that does not say who its client is) do not.
pub fn limited_ip(ip: IpAddr) -> bool {
    !(ip.is_loopback() || ip.is_unspecified())
}

/// Refuses (429) a new session from `ip` when it already holds `max` live sessions.
pub fn check_per_ip(counts: &HashMap<IpAddr, usize>, ip: IpAddr, max: usize) -> Result<(), Error> {
    if max == 0 || !limited_ip(ip) {
        return Ok(());
    }
    let have = counts.get(&ip).copied().unwrap_or(0);
    if have >= max {
        return Err(Error::RateLimited(format!(
            "{ip} already has {have} live sessions, the most one address may hold at once \
             ({max}): close one (or let it expire) first"
        )));
    }
    Ok(())
}

/// Live sessions per client IP (sessions adopted at start-up are not counted: the IP is not
/// stored).
#[derive(Default)]
pub struct PerIp {
    inner: std::sync::Mutex<PerIpState>,
}

#[derive(Default)]
struct PerIpState {
    counts: HashMap<IpAddr, usize>,
    by_session: HashMap<String, IpAddr>,
}

impl PerIp {
    fn lock(&self) -> std::sync::MutexGuard<'_, PerIpState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more session for `ip`, or refuses (429) when it holds `max` already.
    pub fn reserve(&self, ip: IpAddr, max: usize) -> Result<(), Error> {
        let mut st = self.lock();
        check_per_ip(&st.counts, ip, max)?;
        *st.counts.entry(ip).or_default() += 1;
        Ok(())
    }

    /// Gives back a reservation that did not become a session.
    pub fn release(&self, ip: IpAddr) {
        let mut st = self.lock();
        if let Some(n) = st.counts.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.counts.remove(&ip);
            }
        }
    }

    /// The reservation of `ip` became session `id`.
    pub fn bind(&self, id: &str, ip: IpAddr) {
        self.lock().by_session.insert(id.to_owned(), ip);
    }

    /// Session `id` ended.
    pub fn ended(&self, id: &str) {
        let ip = self.lock().by_session.remove(id);
        if let Some(ip) = ip {
            self.release(ip);
        }
    }

    pub fn count(&self, ip: IpAddr) -> usize {
        self.lock().counts.get(&ip).copied().unwrap_or(0)
    }
}

/// Checks the invite of a create request against the configured token (if any), in constant
/// time. 403 with a message that says what is missing.
pub fn check_invite(configured: Option<&str>, offered: Option<&str>) -> Result<(), Error> {
    use subtle::ConstantTimeEq;
    let Some(want) = configured else {
        return Ok(());
    };
    match offered {
        None | Some("") => Err(Error::Forbidden(
            "this server needs an invite to create sessions: send the header \
             X-Drydock-Invite: <token> or the JSON field \"invite\" (ask the operator for it)"
                .into(),
        )),
        Some(got) => {
            // Compare hashes so that the length of the token does not leak either.
            let a = crate::sessions::hash_token(got);
            let b = crate::sessions::hash_token(want);
            if bool::from(a.as_bytes().ct_eq(b.as_bytes())) {
                Ok(())
            } else {
                Err(Error::Forbidden(
                    "the invite token is not valid for this server".into(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_check_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_disk(&[dir.path().to_owned()], 1).is_ok());
        let e = check_disk(&[dir.path().to_owned()], u64::MAX / (2 << 20)).unwrap_err();
        assert_eq!(e.status().as_u16(), 507);
        assert!(e.to_string().contains("nearly full"), "{e}");
        assert!(check_disk(&[PathBuf::from("/nonexistent/x")], 1).is_ok());
    }

    #[test]
    fn per_ip_and_invite() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let counts = HashMap::from([(ip, 2)]);
        assert!(check_per_ip(&counts, ip, 3).is_ok());
        let e = check_per_ip(&counts, ip, 2).unwrap_err();
        assert_eq!(e.status().as_u16(), 429);
        assert!(check_per_ip(&counts, "127.0.0.1".parse().unwrap(), 1).is_ok());
        assert!(check_per_ip(&counts, ip, 0).is_ok());
        assert!(check_invite(None, None).is_ok());
        assert!(check_invite(Some("s3cret"), Some("s3cret")).is_ok());
        assert_eq!(
            check_invite(Some("s3cret"), None)
                .unwrap_err()
                .status()
                .as_u16(),
            403
        );
        let e = check_invite(Some("s3cret"), Some("guess")).unwrap_err();
        assert!(e.to_string().contains("not valid"), "{e}");
    }
}
