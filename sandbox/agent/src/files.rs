//! `GET`/`PUT /v1/files?path=P`: moves files in and out of the instance. Paths must be
//! absolute, free of `..`, and resolve (symlinks followed) inside the files root; sizes are
//! capped; uploads stream into a temporary file that is renamed into place.

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// Why a file request failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("path {path:?} is not allowed: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("path {path:?} is outside the files root {root}")]
    Outside { path: String, root: String },
    #[error("{path:?} does not exist")]
    NotFound { path: String },
    #[error("{path:?} is not a regular file")]
    NotAFile { path: String },
    #[error("{path:?} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("upload to {path:?} exceeds the {limit}-byte limit")]
    UploadTooLarge { path: String, limit: u64 },
    #[error("files root {root} is unusable: {source}")]
    Root {
        root: String,
        source: std::io::Error,
    },
    #[error("{op} {path:?} failed: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("reading the upload body for {path:?} failed: {reason}")]
    Body { path: String, reason: String },
}

impl FilesError {
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode as S;
        match self {
            Self::BadPath { .. } | Self::Outside { .. } | Self::NotAFile { .. } => S::BAD_REQUEST,
            Self::NotFound { .. } => S::NOT_FOUND,
            Self::TooLarge { .. } | Self::UploadTooLarge { .. } => S::PAYLOAD_TOO_LARGE,
            Self::Body { .. } => S::BAD_REQUEST,
            Self::Root { .. } | Self::Io { .. } => S::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Lexical checks: absolute, no `..`, no NUL, not the root itself.
pub fn check_lexical(path: &str) -> Result<PathBuf, FilesError> {
    let bad = |reason| FilesError::BadPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("it is empty"));
    }
    if path.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(bad("it must be absolute"));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(bad("it must not contain `..`"));
    }
    if p.file_name().is_none() {
        return Err(bad("it names no file"));
    }
    Ok(p.components().collect())
}

fn canonical_root(root: &Path) -> Result<PathBuf, FilesError> {
    root.canonicalize().map_err(|source| FilesError::Root {
        root: root.display().to_string(),
        source,
    })
}

fn inside(path: &Path, root: &Path, shown: &str) -> Result<(), FilesError> {
    if path.starts_with(root) {
        Ok(())
    } else {
        Err(FilesError::Outside {
            path: shown.to_string(),
            root: root.display().to_string(),
        })
    }
}

/// Resolves a path for reading: the file itself (symlinks followed) must be inside `root`.
pub fn resolve_existing(raw: &str, root: &Path) -> Result<PathBuf, FilesError> {
    let lexical = check_lexical(raw)?;
    let root = canonical_root(root)?;
    let real = lexical.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FilesError::NotFound { path: raw.into() },
        _ => FilesError::Io {
            op: "resolving",
            path: raw.into(),
            source: e,
        },
    })?;
    inside(&real, &root, raw)?;
    Ok(real)
}

/// Resolves a path for writing: its parent (created if missing) must resolve inside `root`;
/// the file name itself is replaced by the rename, so a symlink there is not followed.
pub fn resolve_for_write(raw: &str, root: &Path) -> Result<PathBuf, FilesError> {
    let lexical = check_lexical(raw)?;
    let root = canonical_root(root)?;
    let parent = lexical.parent().unwrap_or(Path::new("/"));
    // The deepest existing ancestor must already resolve inside the root before anything
    // is created.
    let mut existing = parent;
    while !existing.exists() {
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
    let real_existing = existing.canonicalize().map_err(|source| FilesError::Io {
        op: "resolving",
        path: existing.display().to_string(),
        source,
    })?;
    inside(&real_existing, &root, raw)?;
    std::fs::create_dir_all(parent).map_err(|source| FilesError::Io {
        op: "creating the directories of",
        path: raw.into(),
        source,
    })?;
    let real_parent = parent.canonicalize().map_err(|source| FilesError::Io {
        op: "resolving the directory of",
        path: raw.into(),
        source,
    })?;
    inside(&real_parent, &root, raw)?;
    if !real_parent.is_dir() {
        return Err(FilesError::NotAFile { path: raw.into() });
    }
    let name = lexical.file_name().expect("checked by check_lexical");
    let target = real_parent.join(name);
    if target.is_dir() {
        return Err(FilesError::NotAFile { path: raw.into() });
    }
    Ok(target)
}

/// Opens a file for download, checking its size against `limit`.
pub async fn open_for_download(
    raw: &str,
    root: &Path,
    limit: u64,
) -> Result<(tokio::fs::File, u64), FilesError> {
    let path = resolve_existing(raw, root)?;
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|source| FilesError::Io {
            op: "inspecting",
            path: raw.into(),
            source,
        })?;
    if !meta.is_file() {
        return Err(FilesError::NotAFile { path: raw.into() });
    }
    if meta.len() > limit {
        return Err(FilesError::TooLarge {
            path: raw.into(),
            size: meta.len(),
            limit,
        });
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|source| FilesError::Io {
            op: "opening",
            path: raw.into(),
            source,
        })?;
    Ok((file, meta.len()))
}

/// Streams `body` into a temporary file next to the target and renames it into place.
pub async fn upload(raw: &str, root: &Path, limit: u64, body: Body) -> Result<u64, FilesError> {
    let target = resolve_for_write(raw, root)?;
    let dir = target.parent().unwrap_or(Path::new("/"));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{name}.drydock-upload-{}-{nonce}",
        std::process::id()
    ));
    let result = write_temp(raw, &tmp, limit, body).await;
    let written = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    if let Err(source) = tokio::fs::rename(&tmp, &target).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(FilesError::Io {
            op: "renaming the upload into",
            path: raw.into(),
            source,
        });
    }
    Ok(written)
}

async fn write_temp(raw: &str, tmp: &Path, limit: u64, body: Body) -> Result<u64, FilesError> {
    let io = |op| {
        move |source| FilesError::Io {
            op,
            path: raw.to_string(),
            source,
        }
    };
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(io("creating a temporary file for"))?;
    let mut stream = body.into_data_stream();
    let mut written: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FilesError::Body {
            path: raw.into(),
            reason: e.to_string(),
        })?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(FilesError::UploadTooLarge {
                path: raw.into(),
                limit,
            });
        }
        file.write_all(&chunk).await.map_err(io("writing"))?;
    }
    file.flush().await.map_err(io("flushing"))?;
    file.sync_all().await.map_err(io("syncing"))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical() {
        assert!(check_lexical("/root/a.txt").is_ok());
        assert!(check_lexical("root/a.txt").is_err());
        assert!(check_lexical("/root/../etc/passwd").is_err());
        assert!(check_lexical("").is_err());
        assert!(check_lexical("/").is_err());
        assert!(check_lexical("/root/a\0b").is_err());
    }

    #[test]
    fn symlink_escape_is_rejected() {
        let base = std::env::temp_dir().join(format!("drydock-files-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let r = root.display();
        assert!(matches!(
            resolve_existing(&format!("{r}/etc/hostname"), &root),
            Err(FilesError::Outside { .. })
        ));
        assert!(matches!(
            resolve_for_write(&format!("{r}/etc/x"), &root),
            Err(FilesError::Outside { .. })
        ));
        assert!(matches!(
            resolve_existing("/etc/hostname", &root),
            Err(FilesError::Outside { .. })
        ));
        assert!(resolve_for_write(&format!("{r}/new/dir/f"), &root).is_ok());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
