//! Workshops: an instructor makes a workshop (a lesson, seats, a session length, an optional
//! join window and warm pool), shares its join link `/w/{code}`, and follows every
//! participant's progress live.
//!
//! What this module owns:
//! - [`admin`]: instructor sign-in (the `drydock_admin` cookie or the admin token as Bearer);
//! - [`capacity`]: whether a workshop's seats fit the server (sessions and memory);
//! - [`http`]: the endpoints (`/api/v1/admin/…`, `/api/v1/workshops/…`), the server-sent
//!   event feed, the results CSV, and the instructor's read-only terminal access;
//! - here, [`Workshops`]: creating, joining (seats, window, rejoin), the dashboard views,
//!   extending and ending, the live feed, and the warm-pool targets.
//!
//! A participant's session is an ordinary session of the lesson's template (made through
//! [`Sessions::create_with`] with the workshop's length and its warm pool); the workshop only
//! records who joined (`workshop_participants`). A seat is taken while its session lives: a
//! participant whose session ended frees it. Nothing here knows how instances run.

pub mod admin;
pub mod capacity;
pub mod http;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::Error;
use crate::lessons::{Catalog, Lesson, StepProgress};
use crate::sessions::warm::{workshop_pool, PoolCount, WarmTarget, WarmTargets};
use crate::sessions::{
    rfc3339, CreateOptions, CreateRequest, Created, EndReason, InstanceView, Sessions, LANGS,
};
use crate::store::{session_state, workshop_state, ParticipantRow, WorkshopRow};

/// Join-code characters: no 0/O, 1/I/L.
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const CODE_LEN: usize = 6;
pub const MAX_TITLE: usize = 100;
pub const MAX_NAME: usize = 40;
pub const MAX_SEATS: i64 = 1000;
pub const MAX_DURATION_MINUTES: i64 = 24 * 60;
/// What an instructor's Extend adds when the request does not say.
pub const DEFAULT_EXTEND_MINUTES: i64 = 15;
pub const MAX_EXTEND_MINUTES: i64 = 8 * 60;

/// The rejoin cookie of workshop `code` (`<session id>.<token>`).
pub fn rejoin_cookie_name(code: &str) -> String {
    format!("drydock_ws_{code}")
}

/// Whether `code` looks like a join code (upper case).
pub fn valid_code(code: &str) -> bool {
    code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))
}

fn new_code() -> String {
    let mut rng = rand::thread_rng();
    (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// `POST /api/v1/workshops` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkshop {
    pub title: String,
    pub lesson: String,
    pub seats: i64,
    pub duration_minutes: i64,
    #[serde(default)]
    pub warm_pool: i64,
    /// RFC 3339; joins before it are refused.
    #[serde(default)]
    pub opens_at: Option<String>,
    /// RFC 3339; joins after it are refused.
    #[serde(default)]
    pub closes_at: Option<String>,
    /// The participants' lesson language unless they choose (`en`, `zh`).
    #[serde(default)]
    pub lang: Option<String>,
}

/// A workshop as listed (and as the create answer shows it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkshopView {
    pub id: String,
    pub code: String,
    pub join_url: String,
    pub title: String,
    pub lesson: String,
    pub lesson_title: String,
    pub template: String,
    pub lang: Option<String>,
    pub seats: i64,
    /// Seats whose sessions are live.
    pub taken: i64,
    pub duration_minutes: i64,
    pub warm_pool: i64,
    pub opens_at: Option<String>,
    pub closes_at: Option<String>,
    pub created_at: String,
    pub ended_at: Option<String>,
    /// `scheduled` (not open yet), `open`, `closed` (window over) or `ended`.
    pub status: String,
}

/// A lesson step as the dashboard heads its columns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepInfo {
    pub id: String,
    pub title: String,
    pub has_check: bool,
}

/// One participant on the dashboard.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ParticipantView {
    pub name: String,
    pub session: String,
    pub joined_at: String,
    /// Whether the session lives.
    pub active: bool,
    /// `active`, `closed` or `expired`.
    pub state: String,
    pub expires_at: String,
    pub seconds_left: i64,
    pub instances: Vec<InstanceView>,
    pub progress: Vec<StepProgress>,
    /// Steps passed.
    pub passed: usize,
}

/// `GET /api/v1/workshops/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dashboard {
    #[serde(flatten)]
    pub workshop: WorkshopView,
    pub steps: Vec<StepInfo>,
    /// Warm instances waiting for participants.
    pub warm: PoolCount,
    pub participants: Vec<ParticipantView>,
}

/// `GET /api/v1/workshops/{code}/join`: what the join page shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JoinInfo {
    pub code: String,
    pub title: String,
    pub lesson: String,
    pub lesson_title: String,
    pub seats: i64,
    pub taken: i64,
    pub duration_minutes: i64,
    pub opens_at: Option<String>,
    pub closes_at: Option<String>,
    pub status: String,
    /// Why a join would be refused now (full, closed, …), if it would.
    pub refusal: Option<String>,
    /// The session this browser already has in the workshop.
    pub session: Option<String>,
}

/// A join's answer: the session as the sessions API returns it, and whether it was one this
/// browser had already.
#[derive(Debug, Clone, Serialize)]
pub struct Joined {
    #[serde(flatten)]
    pub created: Created,
    pub rejoined: bool,
    pub workshop: String,
    pub name: String,
}

/// An event of a workshop's live feed.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub workshop: String,
    /// `join`, `check`, `extend`, `end`, `participant` (instance state) or `workshop`.
    pub kind: &'static str,
    pub data: serde_json::Value,
}

pub struct Workshops {
    sessions: Arc<Sessions>,
    lessons: Arc<Catalog>,
    feed: broadcast::Sender<Arc<FeedEvent>>,
    /// Serialises joins (and ends) of one workshop, so seats are counted right.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Wrong admin tokens per address.
    pub(crate) login_failures: admin::FailureLimiter,
    /// Unknown join codes per address.
    pub(crate) code_misses: admin::FailureLimiter,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn parse_time(field: &str, v: &Option<String>) -> Result<Option<i64>, Error> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|e| {
                Error::BadRequest(format!(
                    "{field} {s:?} is not an RFC 3339 time ({e}): expected e.g. \
                     \"2026-05-04T09:00:00+08:00\""
                ))
            }),
    }
}

/// A participant's display name: trimmed, 1–40 characters, no control characters.
pub fn clean_name(name: &str) -> Result<String, Error> {
    let n = name.trim();
    let count = n.chars().count();
    if count == 0 {
        return Err(Error::BadRequest(
            "enter your name: it is shown to the instructor (1 to 40 characters)".into(),
        ));
    }
    if count > MAX_NAME {
        return Err(Error::BadRequest(format!(
            "the name is {count} characters long: at most {MAX_NAME} please"
        )));
    }
    if n.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "the name contains control characters".into(),
        ));
    }
    Ok(n.to_owned())
}

fn status_of(w: &WorkshopRow, now: i64) -> &'static str {
    if w.state == workshop_state::ENDED {
        "ended"
    } else if w.opens_at.is_some_and(|t| now < t) {
        "scheduled"
    } else if w.closes_at.is_some_and(|t| now >= t) {
        "closed"
    } else {
        "open"
    }
}

impl Workshops {
    /// The workshops over `sessions`; registers as the source of the workshops' warm-pool
    /// targets and, inside a tokio runtime, starts forwarding session events to the feed.
    pub fn new(sessions: Arc<Sessions>, lessons: Arc<Catalog>) -> Arc<Workshops> {
        let w = Arc::new(Workshops {
            sessions,
            lessons,
            feed: broadcast::channel(1024).0,
            locks: Mutex::new(HashMap::new()),
            login_failures: admin::FailureLimiter::new(10, "failed instructor sign-ins"),
            code_misses: admin::FailureLimiter::new(30, "unknown workshop codes"),
        });
        let weak: Weak<dyn WarmTargets> = Arc::downgrade(&w) as Weak<dyn WarmTargets>;
        w.sessions.set_warm_source(weak);
        w.spawn_forwarder();
        w
    }

    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.locks).entry(id.to_owned()).or_default().clone()
    }

    fn lesson_of(&self, w: &WorkshopRow) -> Option<&Arc<Lesson>> {
        self.lessons.get(&w.lesson)
    }

    /// Subscribes to every workshop's feed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedEvent>> {
        self.feed.subscribe()
    }

    fn publish(&self, workshop: &str, kind: &'static str, data: serde_json::Value) {
        let _ = self.feed.send(Arc::new(FeedEvent {
            workshop: workshop.to_owned(),
            kind,
            data,
        }));
    }

    /// Seats whose sessions live.
    fn taken(&self, participants: &[ParticipantRow]) -> i64 {
        participants
            .iter()
            .filter(|p| self.sessions.live(&p.session_id).is_some())
            .count() as i64
    }

    pub async fn create(
        &self,
        owner: &str,
        req: CreateWorkshop,
        origin: &str,
    ) -> Result<WorkshopView, Error> {
        let title = req.title.trim().to_owned();
        let n = title.chars().count();
        if n == 0 || n > MAX_TITLE {
            return Err(Error::BadRequest(format!(
                "title must be 1 to {MAX_TITLE} characters (it has {n})"
            )));
        }
        let Some(lesson) = self.lessons.get(req.lesson.trim()).cloned() else {
            let known: Vec<&str> = self
                .lessons
                .lessons()
                .iter()
                .map(|l| l.id.as_str())
                .collect();
            return Err(Error::BadRequest(format!(
                "no lesson '{}' (lessons: {})",
                req.lesson.trim(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        };
        if !(1..=MAX_SEATS).contains(&req.seats) {
            return Err(Error::BadRequest(format!(
                "seats must be between 1 and {MAX_SEATS} (got {})",
                req.seats
            )));
        }
        if !(1..=MAX_DURATION_MINUTES).contains(&req.duration_minutes) {
            return Err(Error::BadRequest(format!(
                "duration_minutes must be between 1 and {MAX_DURATION_MINUTES} (got {})",
                req.duration_minutes
            )));
        }
        if !(0..=req.seats).contains(&req.warm_pool) {
            return Err(Error::BadRequest(format!(
                "warm_pool must be between 0 and the seats ({}) (got {}): warm instances \
                 become participants' sessions",
                req.seats, req.warm_pool
            )));
        }
        if let Some(l) = &req.lang {
            if !LANGS.contains(&l.as_str()) {
                return Err(Error::BadRequest(format!(
                    "invalid lang {l:?}: expected \"en\" or \"zh\""
                )));
            }
        }
        let now = self.sessions.clock().now_ms();
        let opens_at = parse_time("opens_at", &req.opens_at)?;
        let closes_at = parse_time("closes_at", &req.closes_at)?;
        if let Some(c) = closes_at {
            if c <= now {
                return Err(Error::BadRequest(format!(
                    "closes_at {} is in the past",
                    rfc3339(c)
                )));
            }
            if let Some(o) = opens_at.filter(|o| *o >= c) {
                return Err(Error::BadRequest(format!(
                    "closes_at {} is not after opens_at {}",
                    rfc3339(c),
                    rfc3339(o)
                )));
            }
        }
        let template = lesson.template.as_str();
        crate::templates::require_available(
            self.sessions.config(),
            self.sessions.runtime().as_ref(),
            template,
        )
        .await?;
        capacity::check(self, req.seats as usize).await?;
        let store = self.sessions.store();
        let mut code = new_code();
        while store.workshop_by_code(&code).await?.is_some() {
            code = new_code();
        }
        let row = WorkshopRow {
            id: hex::encode(rand::random::<[u8; 8]>()),
            code,
            owner: owner.to_owned(),
            title,
            lesson: lesson.id.clone(),
            lang: req.lang.clone(),
            seats: req.seats,
            duration_minutes: req.duration_minutes,
            warm_pool: req.warm_pool,
            opens_at,
            closes_at,
            created_at: now,
            ended_at: None,
            state: workshop_state::ACTIVE.to_owned(),
        };
        store.insert_workshop(&row).await?;
        tracing::info!(workshop = %row.id, code = %row.code, lesson = %row.lesson, seats = row.seats, warm_pool = row.warm_pool, "workshop created");
        self.sessions.warm_wake();
        Ok(self.view(&row, 0, origin))
    }

    fn view(&self, w: &WorkshopRow, taken: i64, origin: &str) -> WorkshopView {
        let lesson = self.lesson_of(w);
        WorkshopView {
            id: w.id.clone(),
            code: w.code.clone(),
            join_url: format!("{}/w/{}", origin.trim_end_matches('/'), w.code),
            title: w.title.clone(),
            lesson: w.lesson.clone(),
            lesson_title: lesson
                .map(|l| {
                    l.title
                        .get(
                            crate::lessons::Lang::from_query(w.lang.as_deref())
                                .unwrap_or(crate::lessons::Lang::En),
                        )
                        .clone()
                })
                .unwrap_or_else(|| w.lesson.clone()),
            template: lesson
                .map(|l| l.template.as_str().to_owned())
                .unwrap_or_else(|| crate::templates::DOCKER.to_owned()),
            lang: w.lang.clone(),
            seats: w.seats,
            taken,
            duration_minutes: w.duration_minutes,
            warm_pool: w.warm_pool,
            opens_at: w.opens_at.map(rfc3339),
            closes_at: w.closes_at.map(rfc3339),
            created_at: rfc3339(w.created_at),
            ended_at: w.ended_at.map(rfc3339),
            status: status_of(w, self.sessions.clock().now_ms()).to_owned(),
        }
    }

    /// The workshops of `owner`, newest first.
    pub async fn list(&self, owner: &str, origin: &str) -> Result<Vec<WorkshopView>, Error> {
        let store = self.sessions.store();
        let mut out = Vec::new();
        for w in store.workshops_of(owner).await? {
            let taken = self.taken(&store.participants(&w.id).await?);
            out.push(self.view(&w, taken, origin));
        }
        Ok(out)
    }

    /// Workshop `id` if `owner` owns it (404 otherwise, the same as an unknown id).
    pub async fn owned(&self, owner: &str, id: &str) -> Result<WorkshopRow, Error> {
        match self.sessions.store().get_workshop(id).await? {
            Some(w) if w.owner == owner => Ok(w),
            _ => Err(Error::NotFound(format!("no workshop {id:?}"))),
        }
    }

    pub async fn participant_view(&self, p: &ParticipantRow) -> Result<ParticipantView, Error> {
        let store = self.sessions.store();
        let now = self.sessions.clock().now_ms();
        let (active, state, expires_at, instances) = match self.sessions.live(&p.session_id) {
            Some(live) => {
                let v = live.view();
                (
                    true,
                    session_state::ACTIVE.to_owned(),
                    live.expires_at_ms(),
                    v.instances,
                )
            }
            None => {
                let row = store.get_session(&p.session_id).await?;
                let (state, exp) = row
                    .map(|r| {
                        let s = if r.state == session_state::ACTIVE {
                            session_state::CLOSED.to_owned()
                        } else {
                            r.state
                        };
                        (s, r.expires_at)
                    })
                    .unwrap_or_else(|| (session_state::CLOSED.to_owned(), p.joined_at));
                (false, state, exp, Vec::new())
            }
        };
        let progress: Vec<StepProgress> = store
            .progress(&p.session_id)
            .await?
            .into_iter()
            .map(|r| StepProgress {
                step: r.step.max(0) as usize,
                passed: r.passed,
                checked_at: rfc3339(r.checked_at),
            })
            .collect();
        Ok(ParticipantView {
            name: p.name.clone(),
            session: p.session_id.clone(),
            joined_at: rfc3339(p.joined_at),
            active,
            state,
            expires_at: rfc3339(expires_at),
            seconds_left: if active {
                (expires_at - now).max(0) / 1000
            } else {
                0
            },
            instances,
            passed: progress.iter().filter(|s| s.passed).count(),
            progress,
        })
    }

    pub async fn dashboard(&self, w: &WorkshopRow, origin: &str) -> Result<Dashboard, Error> {
        let participants = self.sessions.store().participants(&w.id).await?;
        let mut views = Vec::with_capacity(participants.len());
        for p in &participants {
            views.push(self.participant_view(p).await?);
        }
        let taken = views.iter().filter(|p| p.active).count() as i64;
        let lang =
            crate::lessons::Lang::from_query(w.lang.as_deref()).unwrap_or(crate::lessons::Lang::En);
        let steps = self
            .lesson_of(w)
            .map(|l| {
                l.steps
                    .iter()
                    .map(|s| StepInfo {
                        id: s.id.clone(),
                        title: s.title.get(lang).clone(),
                        has_check: s.check.is_some(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Dashboard {
            workshop: self.view(w, taken, origin),
            steps,
            warm: self.sessions.warm_pool_count(&workshop_pool(&w.id)),
            participants: views,
        })
    }

    /// The workshop with join code `code` (any case), or a 404 saying so.
    pub async fn by_code(&self, code: &str) -> Result<WorkshopRow, Error> {
        let code = code.trim().to_ascii_uppercase();
        let found = if valid_code(&code) {
            self.sessions.store().workshop_by_code(&code).await?
        } else {
            None
        };
        found.ok_or_else(|| {
            Error::NotFound(format!(
                "no workshop with join code '{code}': check the link or the code with your \
                 instructor"
            ))
        })
    }

    /// Why a new participant cannot join `w` now, if they cannot.
    fn refusal(&self, w: &WorkshopRow, taken: i64) -> Option<Error> {
        let now = self.sessions.clock().now_ms();
        match status_of(w, now) {
            "ended" => Some(Error::Forbidden(format!(
                "workshop '{}' has ended{}",
                w.title,
                w.ended_at
                    .map(|t| format!(" (at {})", rfc3339(t)))
                    .unwrap_or_default()
            ))),
            "scheduled" => Some(Error::Forbidden(format!(
                "workshop '{}' is not open yet: it opens at {}",
                w.title,
                rfc3339(w.opens_at.unwrap_or(now))
            ))),
            "closed" => Some(Error::Forbidden(format!(
                "workshop '{}' is closed: joining ended at {}",
                w.title,
                rfc3339(w.closes_at.unwrap_or(now))
            ))),
            _ if taken >= w.seats => Some(Error::Conflict(format!(
                "workshop '{}' is full: {taken} of {} seats taken",
                w.title, w.seats
            ))),
            _ => None,
        }
    }

    /// The live session a rejoin cookie `<id>.<token>` names, if it is one of `w`'s.
    async fn rejoin(&self, w: &WorkshopRow, cookie: Option<&str>) -> Option<(String, String)> {
        let (id, token) = cookie?.split_once('.')?;
        let live = self.sessions.authorize(id, token).ok()?;
        let p = self
            .sessions
            .store()
            .participant_by_session(id)
            .await
            .ok()??;
        (p.workshop_id == w.id).then(|| (live.id(), token.to_owned()))
    }

    pub async fn join_info(&self, code: &str, cookie: Option<&str>) -> Result<JoinInfo, Error> {
        let w = self.by_code(code).await?;
        let taken = self.taken(&self.sessions.store().participants(&w.id).await?);
        let session = self.rejoin(&w, cookie).await.map(|(id, _)| id);
        let v = self.view(&w, taken, "");
        Ok(JoinInfo {
            code: w.code.clone(),
            title: v.title,
            lesson: v.lesson,
            lesson_title: v.lesson_title,
            seats: w.seats,
            taken,
            duration_minutes: w.duration_minutes,
            opens_at: v.opens_at,
            closes_at: v.closes_at,
            status: v.status,
            refusal: self.refusal(&w, taken).map(|e| e.to_string()),
            session,
        })
    }

    /// Joins workshop `code` as `name`: the session this browser already has there
    /// (`cookie`), else a new one of the lesson, with the workshop's length, from its warm
    /// pool when it has one ready.
    pub async fn join(
        &self,
        code: &str,
        name: &str,
        lang: Option<String>,
        cookie: Option<&str>,
    ) -> Result<(Joined, WorkshopRow), Error> {
        let w = self.by_code(code).await?;
        let store = self.sessions.store();
        if w.state != workshop_state::ENDED {
            if let Some((id, token)) = self.rejoin(&w, cookie).await {
                let p = store.participant_by_session(&id).await?;
                let live = self.sessions.authorize(&id, &token)?;
                return Ok((
                    Joined {
                        created: Created {
                            token,
                            session: live.view(),
                        },
                        rejoined: true,
                        workshop: w.id.clone(),
                        name: p.map(|p| p.name).unwrap_or_default(),
                    },
                    w,
                ));
            }
        }
        let name = clean_name(name)?;
        if let Some(l) = &lang {
            if !LANGS.contains(&l.as_str()) {
                return Err(Error::BadRequest(format!(
                    "invalid lang {l:?}: expected \"en\" or \"zh\""
                )));
            }
        }
        let Some(lesson) = self.lesson_of(&w).cloned() else {
            return Err(Error::Unavailable(format!(
                "workshop '{}' follows lesson '{}', which this server no longer serves",
                w.title, w.lesson
            )));
        };
        let guard = self.lock_for(&w.id);
        let _g = guard.lock().await;
        // Read again under the lock: an end or another join may have happened.
        let w = store.get_workshop(&w.id).await?.unwrap_or(w);
        let taken = self.taken(&store.participants(&w.id).await?);
        if let Some(e) = self.refusal(&w, taken) {
            return Err(e);
        }
        let created = self
            .sessions
            .create_with(
                CreateRequest {
                    template: lesson.template.as_str().to_owned(),
                    lesson: Some(lesson.id.clone()),
                    lang: lang.or_else(|| w.lang.clone()),
                },
                CreateOptions {
                    length: Some(Duration::from_secs(60 * w.duration_minutes as u64)),
                    pool: Some(workshop_pool(&w.id)),
                },
            )
            .await?;
        let row = ParticipantRow {
            workshop_id: w.id.clone(),
            session_id: created.session.id.clone(),
            name: name.clone(),
            joined_at: self.sessions.clock().now_ms(),
        };
        if let Err(e) = store.insert_participant(&row).await {
            let _ = self.sessions.end(&row.session_id, EndReason::Closed).await;
            return Err(e.into());
        }
        drop(_g);
        tracing::info!(workshop = %w.id, session = %row.session_id, "participant joined");
        self.sessions.warm_wake();
        if let Ok(v) = self.participant_view(&row).await {
            self.publish(&w.id, "join", serde_json::json!({ "participant": v }));
        }
        Ok((
            Joined {
                created,
                rejoined: false,
                workshop: w.id.clone(),
                name,
            },
            w,
        ))
    }

    async fn participant_of(
        &self,
        w: &WorkshopRow,
        session: &str,
    ) -> Result<ParticipantRow, Error> {
        match self
            .sessions
            .store()
            .participant_by_session(session)
            .await?
        {
            Some(p) if p.workshop_id == w.id => Ok(p),
            _ => Err(Error::NotFound(format!(
                "session {session:?} is not a participant of workshop {}",
                w.id
            ))),
        }
    }

    fn extend_minutes(minutes: Option<i64>) -> Result<Duration, Error> {
        let m = minutes.unwrap_or(DEFAULT_EXTEND_MINUTES);
        if !(1..=MAX_EXTEND_MINUTES).contains(&m) {
            return Err(Error::BadRequest(format!(
                "minutes must be between 1 and {MAX_EXTEND_MINUTES} (got {m})"
            )));
        }
        Ok(Duration::from_secs(60 * m as u64))
    }

    /// Adds `minutes` (default 15) to one participant's session.
    pub async fn extend_participant(
        &self,
        w: &WorkshopRow,
        session: &str,
        minutes: Option<i64>,
    ) -> Result<ParticipantView, Error> {
        let by = Self::extend_minutes(minutes)?;
        let p = self.participant_of(w, session).await?;
        let live = self.sessions.live(session).ok_or_else(|| {
            Error::Conflict(format!(
                "the session of {} has ended: it cannot be extended",
                p.name
            ))
        })?;
        self.sessions.extend_by(&live, by).await?;
        self.participant_view(&p).await
    }

    /// Ends one participant's session (their seat is free again).
    pub async fn end_participant(&self, w: &WorkshopRow, session: &str) -> Result<(), Error> {
        let p = self.participant_of(w, session).await?;
        self.sessions.end(&p.session_id, EndReason::Closed).await?;
        self.sessions.warm_wake();
        Ok(())
    }

    /// Adds `minutes` to every live participant's session; how many.
    pub async fn extend_all(&self, w: &WorkshopRow, minutes: Option<i64>) -> Result<usize, Error> {
        let by = Self::extend_minutes(minutes)?;
        let mut n = 0;
        for p in self.sessions.store().participants(&w.id).await? {
            if let Some(live) = self.sessions.live(&p.session_id) {
                self.sessions.extend_by(&live, by).await?;
                n += 1;
            }
        }
        self.publish(
            &w.id,
            "workshop",
            serde_json::json!({ "action": "extend", "sessions": n, "minutes": by.as_secs() / 60 }),
        );
        Ok(n)
    }

    /// Ends the workshop: no more joins, its warm instances and every participant's session
    /// (containers, volumes, networks) are removed before this returns. How many sessions
    /// ended.
    pub async fn end_workshop(&self, w: &WorkshopRow) -> Result<usize, Error> {
        let guard = self.lock_for(&w.id);
        let _g = guard.lock().await;
        let store = self.sessions.store();
        let now = self.sessions.clock().now_ms();
        if w.state != workshop_state::ENDED {
            store
                .set_workshop_state(&w.id, workshop_state::ENDED, Some(now))
                .await?;
        }
        self.sessions.remove_warm_pool(&workshop_pool(&w.id)).await;
        let ids: Vec<String> = store
            .participants(&w.id)
            .await?
            .into_iter()
            .map(|p| p.session_id)
            .filter(|id| self.sessions.live(id).is_some())
            .collect();
        let ends = ids
            .iter()
            .map(|id| self.sessions.end(id, EndReason::Closed));
        let results = futures_util::future::join_all(ends).await;
        let failed: Vec<String> = results
            .into_iter()
            .zip(&ids)
            .filter_map(|(r, id)| r.err().map(|e| format!("{id}: {e}")))
            .collect();
        tracing::info!(workshop = %w.id, sessions = ids.len(), "workshop ended");
        self.publish(
            &w.id,
            "workshop",
            serde_json::json!({ "action": "end", "sessions": ids.len() }),
        );
        if !failed.is_empty() {
            return Err(Error::Internal(format!(
                "workshop {} ended, but removing some sessions failed: {}",
                w.id,
                failed.join("; ")
            )));
        }
        Ok(ids.len())
    }

    /// The results as CSV: `name,joined_at`, then per step `<n> <id> passed` and
    /// `<n> <id> at` (step numbers from 1, as the UI shows them).
    pub async fn results_csv(&self, w: &WorkshopRow) -> Result<String, Error> {
        let d = self.dashboard(w, "").await?;
        let mut out = String::new();
        let mut head = vec!["name".to_owned(), "joined_at".to_owned()];
        for (i, s) in d.steps.iter().enumerate() {
            head.push(format!("step {} {} passed", i + 1, s.id));
            head.push(format!("step {} {} at", i + 1, s.id));
        }
        push_csv_row(&mut out, &head);
        for p in &d.participants {
            let mut row = vec![p.name.clone(), p.joined_at.clone()];
            for i in 0..d.steps.len() {
                match p.progress.iter().find(|s| s.step == i) {
                    Some(s) if s.passed => {
                        row.push("yes".into());
                        row.push(s.checked_at.clone());
                    }
                    Some(s) => {
                        row.push("no".into());
                        row.push(s.checked_at.clone());
                    }
                    None => {
                        row.push("no".into());
                        row.push(String::new());
                    }
                }
            }
            push_csv_row(&mut out, &row);
        }
        Ok(out)
    }

    /// A check ran in session `session`: tells its workshop's dashboards.
    pub fn on_check(self: &Arc<Self>, session: String) {
        let this = self.clone();
        tokio::spawn(async move {
            this.publish_participant(&session, "check").await;
        });
    }

    async fn publish_participant(&self, session: &str, kind: &'static str) {
        if self.feed.receiver_count() == 0 {
            return;
        }
        let p = match self.sessions.store().participant_by_session(session).await {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(session, error = %e, "workshop feed");
                return;
            }
        };
        match self.participant_view(&p).await {
            Ok(v) => self.publish(
                &p.workshop_id,
                kind,
                serde_json::json!({ "participant": v }),
            ),
            Err(e) => tracing::warn!(session, error = %e, "workshop feed"),
        }
    }

    /// Session events (instance ready or failed, extended, ended) of participants go to their
    /// workshop's feed.
    fn spawn_forwarder(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        let mut rx = self.sessions.subscribe();
        let shutdown = self.sessions.shutdown_token().clone();
        handle.spawn(async move {
            loop {
                let ev = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    ev = rx.recv() => ev,
                };
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(this) = weak.upgrade() else { return };
                let kind = match ev.kind.as_str() {
                    "created" => continue,
                    "extended" => "extend",
                    "closed" | "expired" => {
                        this.sessions.warm_wake();
                        "end"
                    }
                    _ => "participant",
                };
                this.publish_participant(&ev.session, kind).await;
            }
        });
    }
}

#[async_trait]
impl WarmTargets for Workshops {
    /// Each open (or scheduled) workshop wants `min(warm_pool, free seats)` warm instances.
    async fn warm_targets(&self) -> Vec<WarmTarget> {
        let store = self.sessions.store();
        let rows = match store.workshops_in_state(workshop_state::ACTIVE).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "listing workshops for the warm pools");
                return Vec::new();
            }
        };
        let now = self.sessions.clock().now_ms();
        let mut out = Vec::new();
        for w in rows {
            if w.warm_pool <= 0 || w.closes_at.is_some_and(|t| now >= t) {
                continue;
            }
            let Some(lesson) = self.lesson_of(&w) else {
                continue;
            };
            let taken = match store.participants(&w.id).await {
                Ok(p) => self.taken(&p),
                Err(_) => continue,
            };
            let count = w.warm_pool.min(w.seats - taken).max(0) as usize;
            out.push(WarmTarget {
                pool: workshop_pool(&w.id),
                template: lesson.template.as_str().to_owned(),
                count,
            });
        }
        out
    }
}

/// Appends one CSV record (RFC 4180 quoting; cells starting like a formula get a `'`).
pub fn push_csv_row(out: &mut String, cells: &[String]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let c = if c.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{c}")
        } else {
            c.clone()
        };
        if c.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&c.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&c);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_names_and_csv() {
        for _ in 0..100 {
            let c = new_code();
            assert!(valid_code(&c), "{c}");
        }
        assert!(!valid_code("ABC10O") && !valid_code("abcdef") && !valid_code("ABCDEFG"));
        assert_eq!(clean_name("  Ada  ").unwrap(), "Ada");
        assert!(clean_name("   ").is_err());
        assert!(clean_name(&"x".repeat(41)).is_err());
        assert_eq!(clean_name(&"字".repeat(40)).unwrap().chars().count(), 40);
        assert!(clean_name("a\u{7}b").is_err());
        let mut s = String::new();
        push_csv_row(
            &mut s,
            &["a,b".into(), "say \"hi\"".into(), "=1+1".into(), "x".into()],
        );
        assert_eq!(s, "\"a,b\",\"say \"\"hi\"\"\",'=1+1,x\r\n");
    }
}
