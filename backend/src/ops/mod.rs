//! Operator commands of the `drydock` binary besides `serve`: `backup` (an online copy of the
//! store) and `doctor` (a read-only check of the host), plus the configuration layering they
//! share with `serve`.

pub mod backup;
pub mod doctor;

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, Settings};

/// The store's file name in the data directory.
pub const DB_FILE: &str = "drydock.db";

/// The layered settings: the TOML file (`config`, else `<data dir>/drydock.toml` if present)
/// < `DRYDOCK_*` environment < `flags`.
pub fn load_settings(config: Option<&Path>, flags: &Settings) -> Result<Settings, ConfigError> {
    let env = Settings::from_env(|k| std::env::var(k).ok())?;
    let data_dir = flags
        .data_dir
        .clone()
        .or(env.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./data"));
    let file = match config {
        Some(p) => Settings::from_toml_file(p)?,
        None => {
            let p = data_dir.join("drydock.toml");
            if p.exists() {
                Settings::from_toml_file(&p)?
            } else {
                Settings::default()
            }
        }
    };
    let mut s = file;
    s.overlay(&env);
    s.overlay(flags);
    Ok(s)
}

/// [`load_settings`], resolved.
pub fn load_config(config: Option<&Path>, flags: &Settings) -> Result<Config, ConfigError> {
    Config::resolve(load_settings(config, flags)?)
}
