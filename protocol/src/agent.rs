//! JSON types of the agent's HTTP API (served by `drydock-agent` inside every instance,
//! called by the server's runtime). Every request carries `Authorization: Bearer <secret>`;
//! without it the agent answers 401 and nothing else.
//!
//! | method + path                 | body → answer                                   |
//! |-------------------------------|-------------------------------------------------|
//! | `GET /v1/health?wait_ms=N`    | → [`Health`]; `wait_ms` (≤ 10000) waits for ready first |
//! | `GET /v1/terminals`           | → `[`[`TerminalInfo`]`]`                        |
//! | `GET /v1/terminals/{name}`    | WebSocket upgrade, [`crate::frame`] protocol; `?mode=view` is read-only |
//! | `POST /v1/exec`               | [`ExecRequest`] → [`ExecResult`]                |
//! | `GET /v1/ports`               | → `[`[`ListeningPort`]`]`                       |
//! | `GET /v1/stats`               | → [`Stats`]                                     |
//! | `GET /v1/files?path=P`        | → the file's bytes                              |
//! | `PUT /v1/files?path=P`        | the file's bytes → 204                          |
//! | `POST /v1/notice`             | [`Notice`] → 204 (written into every terminal)  |
//!
//! Errors are `{"error": "<message>"}` ([`ApiError`]).

use serde::{Deserialize, Serialize};

/// Port the agent listens on inside an instance unless configured otherwise.
pub const DEFAULT_PORT: u16 = 4200;

/// Environment variable carrying the per-instance secret into the agent.
pub const SECRET_ENV: &str = "DRYDOCK_AGENT_SECRET";

/// Header the server sends on every call.
pub const AUTH_HEADER: &str = "authorization";

/// Longest terminal name accepted (`[a-z0-9-]{1,32}`).
pub const MAX_TERMINAL_NAME: usize = 32;

/// Whether `name` is a valid terminal name: `[a-z0-9-]{1,32}`.
pub fn valid_terminal_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TERMINAL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineState {
    /// The image does not have this engine.
    Absent,
    Starting,
    Ready,
    /// It died and is being restarted, or could not start at all.
    Failed,
    /// Not started yet: the agent holds its socket and starts it at the first connection
    /// (counts as ready).
    Standby,
}

/// A supervised engine (dockerd, k3s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStatus {
    pub state: EngineState,
    /// How many times the supervisor restarted it.
    pub restarts: u32,
    /// Last reason it failed, if any.
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub version: String,
    /// True when every engine the image has is ready: the instance can be handed out.
    pub ready: bool,
    pub dockerd: EngineStatus,
    pub k3s: EngineStatus,
    pub terminals: usize,
    /// The instance filled its disk quota: nested containers are paused until it frees
    /// space (older agents do not send it: false).
    #[serde(default)]
    pub disk_exceeded: bool,
    /// Disk use counted against the quota, when the instance has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskQuota>,
}

/// A message from the server (idle warning, …) written into every terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Plain text, at most [`MAX_NOTICE`] bytes.
    pub text: String,
}

/// Longest notice accepted.
pub const MAX_NOTICE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskQuota {
    pub used_bytes: u64,
    pub quota_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalInfo {
    pub name: String,
    pub cols: u16,
    pub rows: u16,
    pub clients: usize,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Run with `bash -c` as root in the shell environment learners get.
    pub script: String,
    /// Killed (with its whole process group) after this long. Default 10 s, at most 300 s.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Combined stdout+stderr kept, in bytes. Default 64 KiB, at most 1 MiB.
    #[serde(default)]
    pub max_output: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    /// Exit status; `None` when killed by a signal.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Combined stdout and stderr, lossily decoded as UTF-8.
    pub output: String,
    /// More output was produced than `max_output`.
    pub truncated: bool,
    pub timed_out: bool,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct ListeningPort {
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUsage {
    pub path: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub avail_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time used by the instance's cgroup (or the agent's process tree), nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub pids: Option<u64>,
    pub disks: Vec<DiskUsage>,
    pub uptime_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_names() {
        assert!(valid_terminal_name("main"));
        assert!(valid_terminal_name("tab-2"));
        assert!(!valid_terminal_name(""));
        assert!(!valid_terminal_name("Main"));
        assert!(!valid_terminal_name("../x"));
        assert!(!valid_terminal_name(&"a".repeat(33)));
    }
}
