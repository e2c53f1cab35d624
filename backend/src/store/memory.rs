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
    admin_sessions: Vec<super::AdminSessionRow>,
    workshops: Vec<super::WorkshopRow>,
    participants: Vec<super::ParticipantRow>,
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

    async fn insert_admin_session(&self, a: &super::AdminSessionRow) -> Result<(), StoreError> {
        self.with(|i| i.admin_sessions.push(a.clone()));
        Ok(())
    }

    async fn get_admin_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<super::AdminSessionRow>, StoreError> {
        Ok(self.with(|i| {
            i.admin_sessions
                .iter()
                .find(|a| a.id_hash == id_hash)
                .cloned()
        }))
    }

    async fn delete_admin_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.with(|i| i.admin_sessions.retain(|a| a.id_hash != id_hash));
        Ok(())
    }

    async fn delete_expired_admin_sessions(&self, now: i64) -> Result<(), StoreError> {
        self.with(|i| i.admin_sessions.retain(|a| a.expires_at > now));
        Ok(())
    }

    async fn insert_workshop(&self, w: &super::WorkshopRow) -> Result<(), StoreError> {
        self.with(|i| i.workshops.push(w.clone()));
        Ok(())
    }

    async fn get_workshop(&self, id: &str) -> Result<Option<super::WorkshopRow>, StoreError> {
        Ok(self.with(|i| i.workshops.iter().find(|w| w.id == id).cloned()))
    }

    async fn workshop_by_code(&self, code: &str) -> Result<Option<super::WorkshopRow>, StoreError> {
        Ok(self.with(|i| i.workshops.iter().find(|w| w.code == code).cloned()))
    }

    async fn workshops_of(&self, owner: &str) -> Result<Vec<super::WorkshopRow>, StoreError> {
        let mut rows: Vec<super::WorkshopRow> = self.with(|i| {
            i.workshops
                .iter()
                .filter(|w| w.owner == owner)
                .cloned()
                .collect()
        });
        rows.sort_by_key(|w| std::cmp::Reverse(w.created_at));
        Ok(rows)
    }

    async fn workshops_in_state(&self, state: &str) -> Result<Vec<super::WorkshopRow>, StoreError> {
        Ok(self.with(|i| {
            i.workshops
                .iter()
                .filter(|w| w.state == state)
                .cloned()
                .collect()
        }))
    }

    async fn set_workshop_state(
        &self,
        id: &str,
        state: &str,
        ended_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.with(|i| {
            i.workshops.iter_mut().filter(|w| w.id == id).for_each(|w| {
                w.state = state.to_owned();
                w.ended_at = ended_at;
            })
        });
        Ok(())
    }

    async fn insert_participant(&self, p: &super::ParticipantRow) -> Result<(), StoreError> {
        self.with(|i| i.participants.push(p.clone()));
        Ok(())
    }

    async fn participants(
        &self,
        workshop_id: &str,
    ) -> Result<Vec<super::ParticipantRow>, StoreError> {
        Ok(self.with(|i| {
            i.participants
                .iter()
                .filter(|p| p.workshop_id == workshop_id)
                .cloned()
                .collect()
        }))
    }

    async fn participant_by_session(
        &self,
        session_id: &str,
    ) -> Result<Option<super::ParticipantRow>, StoreError> {
        Ok(self.with(|i| {
            i.participants
                .iter()
                .find(|p| p.session_id == session_id)
                .cloned()
        }))
    }
}
