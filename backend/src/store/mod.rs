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

/// Workshop states as stored.
pub mod workshop_state {
    pub const ACTIVE: &str = "active";
    pub const ENDED: &str = "ended";
}

/// A signed-in instructor (`admin_sessions`): only the SHA-256 of the cookie value is kept.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminSessionRow {
    pub id_hash: String,
    /// Who signed in (see [`WorkshopRow::owner`]).
    pub owner: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
}

/// A workshop (`workshops`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkshopRow {
    pub id: String,
    /// The join code (upper case).
    pub code: String,
    /// The instructor it belongs to (today the admin token's fingerprint).
    pub owner: String,
    pub title: String,
    pub lesson: String,
    pub lang: Option<String>,
    pub seats: i64,
    pub duration_minutes: i64,
    pub warm_pool: i64,
    /// Unix milliseconds; `None`: open from creation / never closes.
    pub opens_at: Option<i64>,
    pub closes_at: Option<i64>,
    pub created_at: i64,
    pub ended_at: Option<i64>,
    /// [`workshop_state`].
    pub state: String,
}

/// A participant of a workshop (`workshop_participants`): one per session made by a join.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ParticipantRow {
    pub workshop_id: String,
    pub session_id: String,
    pub name: String,
    /// Unix milliseconds.
    pub joined_at: i64,
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

    // Workshops (src/workshops/).
    async fn insert_admin_session(&self, a: &AdminSessionRow) -> Result<(), StoreError>;
    async fn get_admin_session(&self, id_hash: &str)
        -> Result<Option<AdminSessionRow>, StoreError>;
    async fn delete_admin_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Drops admin sessions that expired at or before `now`.
    async fn delete_expired_admin_sessions(&self, now: i64) -> Result<(), StoreError>;
    async fn insert_workshop(&self, w: &WorkshopRow) -> Result<(), StoreError>;
    async fn get_workshop(&self, id: &str) -> Result<Option<WorkshopRow>, StoreError>;
    /// The workshop with join code `code` (upper case).
    async fn workshop_by_code(&self, code: &str) -> Result<Option<WorkshopRow>, StoreError>;
    /// An owner's workshops, newest first.
    async fn workshops_of(&self, owner: &str) -> Result<Vec<WorkshopRow>, StoreError>;
    async fn workshops_in_state(&self, state: &str) -> Result<Vec<WorkshopRow>, StoreError>;
    async fn set_workshop_state(
        &self,
        id: &str,
        state: &str,
        ended_at: Option<i64>,
    ) -> Result<(), StoreError>;
    async fn insert_participant(&self, p: &ParticipantRow) -> Result<(), StoreError>;
    /// A workshop's participants, in the order they joined.
    async fn participants(&self, workshop_id: &str) -> Result<Vec<ParticipantRow>, StoreError>;
    /// The participant whose session is `session_id`, if any.
    async fn participant_by_session(
        &self,
        session_id: &str,
    ) -> Result<Option<ParticipantRow>, StoreError>;
}
