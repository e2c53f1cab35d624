//! The embedded SQLite [`Store`] (WAL, foreign keys, migrations embedded in the binary).

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::{EventRow, InstanceRow, ProgressRow, SessionRow, Store, StoreError};

pub struct SqliteStore {
    pool: SqlitePool,
}

fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { op, source }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let shown = path.display().to_string();
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        Self::connect(opts, &shown).await
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|source| StoreError::Open {
                path: ":memory:".into(),
                source,
            })?
            .foreign_keys(true);
        Self::connect(opts, ":memory:").await
    }

    async fn connect(opts: SqliteConnectOptions, shown: &str) -> Result<SqliteStore, StoreError> {
        let memory = shown == ":memory:";
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 4 })
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                path: shown.to_owned(),
                source,
            })?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: shown.to_owned(),
                source,
            })?;
        Ok(SqliteStore { pool })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, template, lesson, lang, created_at, expires_at, state)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.token_hash)
        .bind(&s.template)
        .bind(&s.lesson)
        .bind(&s.lang)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(&s.state)
        .execute(&self.pool)
        .await
        .map_err(db("insert session"))?;
        Ok(())
    }

    async fn get_session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        sqlx::query_as::<_, SessionRow>("SELECT * FROM sessions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("get session"))
    }

    async fn sessions_in_state(&self, state: &str) -> Result<Vec<SessionRow>, StoreError> {
        sqlx::query_as::<_, SessionRow>(
            "SELECT * FROM sessions WHERE state = ? ORDER BY created_at",
        )
        .bind(state)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list sessions"))
    }

    async fn set_session_state(&self, id: &str, state: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET state = ? WHERE id = ?")
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("set session state"))?;
        Ok(())
    }

    async fn set_session_expiry(&self, id: &str, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET expires_at = ? WHERE id = ?")
            .bind(expires_at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("set session expiry"))?;
        Ok(())
    }

    async fn put_instance(&self, i: &InstanceRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO instances
               (session_id, name, container_id, agent_addr, agent_secret, state, reason, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&i.session_id)
        .bind(&i.name)
        .bind(&i.container_id)
        .bind(&i.agent_addr)
        .bind(&i.agent_secret)
        .bind(&i.state)
        .bind(&i.reason)
        .bind(i.created_at)
        .execute(&self.pool)
        .await
        .map_err(db("put instance"))?;
        Ok(())
    }

    async fn instances(&self, session_id: &str) -> Result<Vec<InstanceRow>, StoreError> {
        sqlx::query_as::<_, InstanceRow>(
            "SELECT * FROM instances WHERE session_id = ? ORDER BY created_at, name",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list instances"))
    }

    async fn delete_instance(&self, session_id: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM instances WHERE session_id = ? AND name = ?")
            .bind(session_id)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("delete instance"))?;
        Ok(())
    }

    async fn delete_instances(&self, session_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM instances WHERE session_id = ?")
            .bind(session_id)
            .execute(&self.pool)
            .await
            .map_err(db("delete instances"))?;
        Ok(())
    }

    async fn add_event(
        &self,
        session_id: &str,
        at: i64,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO events (session_id, at, kind, detail) VALUES (?, ?, ?, ?)")
            .bind(session_id)
            .bind(at)
            .bind(kind)
            .bind(detail)
            .execute(&self.pool)
            .await
            .map_err(db("add event"))?;
        Ok(())
    }

    async fn events(&self, session_id: &str) -> Result<Vec<EventRow>, StoreError> {
        sqlx::query_as::<_, EventRow>(
            "SELECT session_id, at, kind, detail FROM events WHERE session_id = ? ORDER BY id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list events"))
    }

    async fn record_check(&self, p: &ProgressRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO lesson_progress (session_id, step, passed, message, checked_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (session_id, step) DO UPDATE SET
               passed = excluded.passed, message = excluded.message, checked_at = excluded.checked_at
             WHERE lesson_progress.passed = 0",
        )
        .bind(&p.session_id)
        .bind(p.step)
        .bind(p.passed)
        .bind(&p.message)
        .bind(p.checked_at)
        .execute(&self.pool)
        .await
        .map_err(db("record check"))?;
        Ok(())
    }

    async fn progress(&self, session_id: &str) -> Result<Vec<ProgressRow>, StoreError> {
        sqlx::query_as::<_, ProgressRow>(
            "SELECT session_id, step, passed, message, checked_at FROM lesson_progress
             WHERE session_id = ? ORDER BY step",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list progress"))
    }

    async fn insert_admin_session(&self, a: &super::AdminSessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_sessions (id_hash, owner, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&a.id_hash)
        .bind(&a.owner)
        .bind(a.created_at)
        .bind(a.expires_at)
        .execute(&self.pool)
        .await
        .map_err(db("insert admin session"))?;
        Ok(())
    }

    async fn get_admin_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<super::AdminSessionRow>, StoreError> {
        sqlx::query_as::<_, super::AdminSessionRow>(
            "SELECT id_hash, owner, created_at, expires_at FROM admin_sessions WHERE id_hash = ?",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("get admin session"))
    }

    async fn delete_admin_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(db("delete admin session"))?;
        Ok(())
    }

    async fn delete_expired_admin_sessions(&self, now: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db("delete expired admin sessions"))?;
        Ok(())
    }

    async fn insert_workshop(&self, w: &super::WorkshopRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workshops (id, code, owner, title, lesson, lang, seats, duration_minutes,
               warm_pool, opens_at, closes_at, created_at, ended_at, state)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&w.id)
        .bind(&w.code)
        .bind(&w.owner)
        .bind(&w.title)
        .bind(&w.lesson)
        .bind(&w.lang)
        .bind(w.seats)
        .bind(w.duration_minutes)
        .bind(w.warm_pool)
        .bind(w.opens_at)
        .bind(w.closes_at)
        .bind(w.created_at)
        .bind(w.ended_at)
        .bind(&w.state)
        .execute(&self.pool)
        .await
        .map_err(db("insert workshop"))?;
        Ok(())
    }

    async fn get_workshop(&self, id: &str) -> Result<Option<super::WorkshopRow>, StoreError> {
        sqlx::query_as::<_, super::WorkshopRow>("SELECT * FROM workshops WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("get workshop"))
    }

    async fn workshop_by_code(&self, code: &str) -> Result<Option<super::WorkshopRow>, StoreError> {
        sqlx::query_as::<_, super::WorkshopRow>("SELECT * FROM workshops WHERE code = ?")
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("find workshop by code"))
    }

    async fn workshops_of(&self, owner: &str) -> Result<Vec<super::WorkshopRow>, StoreError> {
        sqlx::query_as::<_, super::WorkshopRow>(
            "SELECT * FROM workshops WHERE owner = ? ORDER BY created_at DESC",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list workshops"))
    }

    async fn workshops_in_state(&self, state: &str) -> Result<Vec<super::WorkshopRow>, StoreError> {
        sqlx::query_as::<_, super::WorkshopRow>(
            "SELECT * FROM workshops WHERE state = ? ORDER BY created_at",
        )
        .bind(state)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list workshops by state"))
    }

    async fn set_workshop_state(
        &self,
        id: &str,
        state: &str,
        ended_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE workshops SET state = ?, ended_at = ? WHERE id = ?")
            .bind(state)
            .bind(ended_at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("set workshop state"))?;
        Ok(())
    }

    async fn insert_participant(&self, p: &super::ParticipantRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workshop_participants (workshop_id, session_id, name, joined_at)
             VALUES (?, ?, ?, ?)",
        )
        .bind(&p.workshop_id)
        .bind(&p.session_id)
        .bind(&p.name)
        .bind(p.joined_at)
        .execute(&self.pool)
        .await
        .map_err(db("insert workshop participant"))?;
        Ok(())
    }

    async fn participants(
        &self,
        workshop_id: &str,
    ) -> Result<Vec<super::ParticipantRow>, StoreError> {
        sqlx::query_as::<_, super::ParticipantRow>(
            "SELECT workshop_id, session_id, name, joined_at FROM workshop_participants
             WHERE workshop_id = ? ORDER BY joined_at, session_id",
        )
        .bind(workshop_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list workshop participants"))
    }

    async fn participant_by_session(
        &self,
        session_id: &str,
    ) -> Result<Option<super::ParticipantRow>, StoreError> {
        sqlx::query_as::<_, super::ParticipantRow>(
            "SELECT workshop_id, session_id, name, joined_at FROM workshop_participants
             WHERE session_id = ?",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("find workshop participant"))
    }
}
