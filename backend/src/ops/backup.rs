//! `drydock backup DEST`: an online, consistent copy of the store with SQLite's
//! `VACUUM INTO` (safe while the server runs: WAL readers do not block the writer), checked
//! with `PRAGMA integrity_check`, mode 0600, plus the server's id beside it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::runtime::owner::SERVER_ID_FILE;

/// What [`run`] wrote.
#[derive(Debug)]
pub struct Written {
    pub db: PathBuf,
    pub server_id: Option<PathBuf>,
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Copies `<data_dir>/drydock.db` to `dest` (through `dest.tmp`) and `<data_dir>/server-id`
/// to `dest.server-id` if it exists.
pub async fn run(data_dir: &Path, dest: &Path) -> anyhow::Result<Written> {
    let src = data_dir.join(super::DB_FILE);
    if !src.is_file() {
        bail!(
            "there is no store at {} (has the server run with this data_dir?)",
            src.display()
        );
    }
    let dest_str = dest
        .to_str()
        .with_context(|| format!("the backup path {} is not UTF-8", dest.display()))?;
    let tmp = with_suffix(dest, ".tmp");
    let tmp_str = format!("{dest_str}.tmp");
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
    let result = copy(&src, &tmp, &tmp_str).await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    std::fs::rename(&tmp, dest)
        .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
    let server_id = data_dir.join(SERVER_ID_FILE);
    let server_id = if server_id.is_file() {
        let to = with_suffix(dest, ".server-id");
        let to_tmp = with_suffix(dest, ".server-id.tmp");
        std::fs::copy(&server_id, &to_tmp)
            .with_context(|| format!("copying {} to {}", server_id.display(), to_tmp.display()))?;
        std::fs::set_permissions(&to_tmp, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 0600 {}", to_tmp.display()))?;
        std::fs::rename(&to_tmp, &to)
            .with_context(|| format!("renaming {} to {}", to_tmp.display(), to.display()))?;
        Some(to)
    } else {
        None
    };
    Ok(Written {
        db: dest.to_owned(),
        server_id,
    })
}

/// `VACUUM INTO tmp`, chmod 0600, integrity check of the copy.
async fn copy(src: &Path, tmp: &Path, tmp_str: &str) -> anyhow::Result<()> {
    let mut conn = SqliteConnectOptions::new()
        .filename(src)
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("opening the store {}", src.display()))?;
    sqlx::query("VACUUM INTO ?")
        .bind(tmp_str)
        .execute(&mut conn)
        .await
        .with_context(|| format!("VACUUM INTO {} from {}", tmp.display(), src.display()))?;
    conn.close().await.ok();
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", tmp.display()))?;
    let mut copy = SqliteConnectOptions::new()
        .filename(tmp)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("opening the copy {}", tmp.display()))?;
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&mut copy)
        .await
        .with_context(|| format!("PRAGMA integrity_check on {}", tmp.display()))?;
    copy.close().await.ok();
    let report: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    if report != ["ok"] {
        bail!(
            "the copy {} fails PRAGMA integrity_check: {}",
            tmp.display(),
            report.join("; ")
        );
    }
    Ok(())
}
