//! The server's owner id: generated once, kept in `<data_dir>/server-id`, and put on every
//! container, network and volume the server creates as the label `drydock.server=<id>`.
//!
//! Several servers (or several test runs) may share one dockerd. Start-up reconciliation
//! removes only resources that carry *this* server's id and belong to no live session of its
//! store; resources of other servers are never touched. Resources with no `drydock.server`
//! label at all (made before server ids existed) are adopted when this server's store knows
//! their session, and otherwise left alone with a warning: nothing can tell which server made
//! them, and removing another server's running session is worse than leaving a leak for the
//! operator to remove by hand.

use std::io::Write;
use std::path::Path;

use rand::RngCore;

/// Label carrying the owner id.
pub const LABEL_SERVER: &str = "drydock.server";
/// File in the data directory that holds the id.
pub const SERVER_ID_FILE: &str = "server-id";

/// Whether `id` looks like a server id: 1-64 characters of `[a-z0-9-]`.
pub fn valid_server_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Reads `<data_dir>/server-id`, or creates it with 16 random hex characters.
pub fn load_or_create(data_dir: &Path) -> Result<String, std::io::Error> {
    let path = data_dir.join(SERVER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_owned();
            if valid_server_id(&id) {
                Ok(id)
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} holds {id:?}, not a server id (1-64 characters of [a-z0-9-]); \
                         fix or remove it",
                        path.display()
                    ),
                ))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = [0u8; 8];
            rand::thread_rng().fill_bytes(&mut b);
            let id = hex::encode(b);
            // Written to a temporary file and renamed, so a crash never leaves half an id.
            let tmp = data_dir.join(format!("{SERVER_ID_FILE}.tmp"));
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "{id}")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        assert_eq!(a.len(), 16);
        assert!(valid_server_id(&a));
        assert_eq!(load_or_create(dir.path()).unwrap(), a);
        std::fs::write(dir.path().join(SERVER_ID_FILE), "Not An Id\n").unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(e.to_string().contains("not a server id"), "{e}");
    }
}
