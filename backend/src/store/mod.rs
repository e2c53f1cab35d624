//! Persistent state behind the [`Store`] trait: sessions, their instances and an event log.
//! [`sqlite::SqliteStore`] is the embedded default; [`memory::MemoryStore`] serves tests, and a
//! shared database can implement the same trait later.

pub mod memory;
pub mod sqlite;

use async_trait::async_trait;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {op} failed: {source}")]
    Db {
        op: &'static str,
        source: sqlx::Error,
    },
    #[error("store: migrating {path} failed: {source}")]
    Migrate {
        path: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("store: cannot open {path}: {source}")]
    Open { path: String, source: sqlx::Error },
}

/// Session states as stored.
pub mod session_state {
    pub const ACTIVE: &str = "active";
    pub const CLOSED: &str = "closed";
    pub const EXPIRED: &str = "expired";
}

/// Instance states as stored (and shown by the API).
pub mod instance_state {
    pub const STARTING: &str = "starting";
    pub const READY: &str = "ready";
    pub const FAILED: &str = "failed";
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    /// sha256 of the token, lower-case hex.
    pub token_hash: String,
    pub template: String,
    pub lesson: Option<String>,
    pub lang: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstanceRow {
    pub session_id: String,
    pub name: String,
    pub container_id: Option<String>,
    /// `ip:port` of the agent.
    pub agent_addr: Option<String>,
    pub agent_secret: String,
    pub state: String,
    pub reason: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub session_id: String,
    pub at: i64,
    pub kind: String,
    pub detail: String,
}

/// A session's result for one lesson step (`lesson_progress`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProgressRow {
    pub session_id: String,
    /// Counts from 0, like the check endpoint.
    pub step: i64,
    pub passed: bool,
    /// The check's feedback.
    pub message: String,
    /// Unix milliseconds.
    pub checked_at: i64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError>;
    async fn get_session(&self, id: &str) -> Result<Option<SessionRow>, StoreError>;
    /// Sessions in a given state.
    async fn sessions_in_state(&self, state: &str) -> Result<Vec<SessionRow>, StoreError>;
    async fn set_session_state(&self, id: &str, state: &str) -> Result<(), StoreError>;
    async fn set_session_expiry(&self, id: &str, expires_at: i64) -> Result<(), StoreError>;

    /// Inserts or replaces an instance row.
    async fn put_instance(&self, i: &InstanceRow) -> Result<(), StoreError>;
    async fn instances(&self, session_id: &str) -> Result<Vec<InstanceRow>, StoreError>;
    async fn delete_instance(&self, session_id: &str, name: &str) -> Result<(), StoreError>;
    /// Drops every instance row of a session.
    async fn delete_instances(&self, session_id: &str) -> Result<(), StoreError>;

    async fn add_event(
        &self,
        session_id: &str,
        at: i64,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError>;
    async fn events(&self, session_id: &str) -> Result<Vec<EventRow>, StoreError>;

    /// Records a step check. A step that passed stays passed (its first pass is kept); until
    /// then each check replaces the previous result.
    async fn record_check(&self, p: &ProgressRow) -> Result<(), StoreError>;
    /// A session's step results, by step.
    async fn progress(&self, session_id: &str) -> Result<Vec<ProgressRow>, StoreError>;
}
