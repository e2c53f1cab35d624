//! An in-memory [`Store`] for tests (no I/O, so it behaves under paused tokio time).

use std::sync::Mutex;

use async_trait::async_trait;

use super::{EventRow, InstanceRow, ProgressRow, SessionRow, Store, StoreError};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    sessions: Vec<SessionRow>,
    instances: Vec<InstanceRow>,
    events: Vec<EventRow>,
    progress: Vec<ProgressRow>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        self.with(|i| i.sessions.push(s.clone()));
        Ok(())
    }

    async fn get_session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        Ok(self.with(|i| i.sessions.iter().find(|s| s.id == id).cloned()))
    }

    async fn sessions_in_state(&self, state: &str) -> Result<Vec<SessionRow>, StoreError> {
        Ok(self.with(|i| {
            i.sessions
                .iter()
                .filter(|s| s.state == state)
                .cloned()
                .collect()
        }))
    }

    async fn set_session_state(&self, id: &str, state: &str) -> Result<(), StoreError> {
        self.with(|i| {
            i.sessions
                .iter_mut()
                .filter(|s| s.id == id)
                .for_each(|s| s.state = state.to_owned())
        });
        Ok(())
    }

    async fn set_session_expiry(&self, id: &str, expires_at: i64) -> Result<(), StoreError> {
        self.with(|i| {
            i.sessions
                .iter_mut()
                .filter(|s| s.id == id)
                .for_each(|s| s.expires_at = expires_at)
        });
        Ok(())
    }

    async fn put_instance(&self, row: &InstanceRow) -> Result<(), StoreError> {
        self.with(|i| {
            i.instances
                .retain(|x| !(x.session_id == row.session_id && x.name == row.name));
            i.instances.push(row.clone());
        });
        Ok(())
    }

    async fn instances(&self, session_id: &str) -> Result<Vec<InstanceRow>, StoreError> {
        Ok(self.with(|i| {
            i.instances
                .iter()
                .filter(|x| x.session_id == session_id)
                .cloned()
                .collect()
        }))
    }

    async fn delete_instance(&self, session_id: &str, name: &str) -> Result<(), StoreError> {
        self.with(|i| {
            i.instances
                .retain(|x| !(x.session_id == session_id && x.name == name))
        });
        Ok(())
    }

    async fn delete_instances(&self, session_id: &str) -> Result<(), StoreError> {
        self.with(|i| i.instances.retain(|x| x.session_id != session_id));
        Ok(())
    }

    async fn add_event(
        &self,
        session_id: &str,
        at: i64,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.with(|i| {
            i.events.push(EventRow {
                session_id: session_id.to_owned(),
                at,
                kind: kind.to_owned(),
                detail: detail.to_owned(),
            })
        });
        Ok(())
    }

    async fn events(&self, session_id: &str) -> Result<Vec<EventRow>, StoreError> {
        Ok(self.with(|i| {
            i.events
                .iter()
                .filter(|e| e.session_id == session_id)
                .cloned()
                .collect()
        }))
    }

    async fn record_check(&self, p: &ProgressRow) -> Result<(), StoreError> {
        self.with(|i| {
            match i
                .progress
                .iter_mut()
                .find(|x| x.session_id == p.session_id && x.step == p.step)
            {
                Some(x) if x.passed => {}
                Some(x) => *x = p.clone(),
                None => i.progress.push(p.clone()),
            }
        });
        Ok(())
    }

    async fn progress(&self, session_id: &str) -> Result<Vec<ProgressRow>, StoreError> {
        let mut rows: Vec<ProgressRow> = self.with(|i| {
            i.progress
                .iter()
                .filter(|x| x.session_id == session_id)
                .cloned()
                .collect()
        });
        rows.sort_by_key(|r| r.step);
        Ok(rows)
    }
}
