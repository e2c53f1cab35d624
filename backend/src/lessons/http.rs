//! The lesson endpoints of the External API and the per-session progress:
//!
//! - `GET /api/v1/lessons?lang=` → `[{"id","title","summary","template","minutes","steps"}]`
//!   (`steps` is the number of steps);
//! - `GET /api/v1/lessons/{id}?lang=` → the lesson with its steps
//!   (`{"id","title","html","has_check","commands"}` each, `html` rendered);
//! - `POST /api/v1/sessions/{id}/lesson/steps/{n}/check` (n from 0) → `{"passed","message"}`,
//!   run on the session's `node1` and recorded as the session's progress;
//! - `progress` in `GET /api/v1/sessions/{id}`: `[{"step","passed","checked_at"}]`.
//!
//! `lang` is `en` (the default) or `zh` (a regional tag such as `zh-CN` picks its language);
//! anything else is a 400. An unknown lesson is a 404 `no lesson 'x'`, a step out of range a
//! 404, a check in a session without a lesson a 409.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::checks::{self, CheckError, CheckOutcome};
use super::{Lang, Lesson, LessonError, StepProgress, Template};
use crate::api::{authorize, AppState};
use crate::error::Error;
use crate::sessions::{rfc3339, CreateRequest, SessionView};
use crate::store::ProgressRow;

/// The instance a step's check runs on.
pub const CHECK_INSTANCE: &str = "node1";

impl From<LessonError> for Error {
    fn from(e: LessonError) -> Error {
        match e {
            LessonError::NotFound(_) | LessonError::NoStep { .. } => Error::NotFound(e.to_string()),
            LessonError::UnknownLang(_) => Error::BadRequest(e.to_string()),
            LessonError::ReadDir { .. } | LessonError::Invalid { .. } => {
                Error::Internal(e.to_string())
            }
        }
    }
}

impl From<CheckError> for Error {
    fn from(e: CheckError) -> Error {
        tracing::warn!(error = %e, "lesson check failed to run");
        match e {
            CheckError::Agent { source, .. } => Error::Agent(source),
        }
    }
}

/// The lesson routes (merged into the API router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/lessons", get(list))
        .route("/api/v1/lessons/{id}", get(detail))
        .route("/api/v1/sessions/{id}/lesson/steps/{n}/check", post(check))
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    #[serde(default)]
    pub lang: Option<String>,
}

fn lang_of(q: Result<Query<LangQuery>, QueryRejection>) -> Result<Lang, Error> {
    let q = q.map_err(|e| Error::BadRequest(format!("invalid query string: {e}")))?;
    Ok(Lang::from_query(q.lang.as_deref())?)
}

/// An entry of `GET /api/v1/lessons`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LessonSummary {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub template: Template,
    pub minutes: u32,
    /// Number of steps.
    pub steps: usize,
}

/// `GET /api/v1/lessons/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LessonView {
    pub id: String,
    pub lang: Lang,
    pub title: String,
    pub summary: String,
    pub template: Template,
    pub minutes: u32,
    pub images: Vec<String>,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepView {
    pub id: String,
    pub title: String,
    /// The step's Markdown as HTML (its `# ` title included).
    pub html: String,
    /// Whether the step has a check (the Check button).
    pub has_check: bool,
    /// The runnable commands, in order: what a click types.
    pub commands: Vec<String>,
}

pub fn summary(l: &Lesson, lang: Lang) -> LessonSummary {
    LessonSummary {
        id: l.id.clone(),
        title: l.title.get(lang).clone(),
        summary: l.summary.get(lang).clone(),
        template: l.template,
        minutes: l.minutes,
        steps: l.steps.len(),
    }
}

pub fn view(l: &Lesson, lang: Lang) -> LessonView {
    LessonView {
        id: l.id.clone(),
        lang,
        title: l.title.get(lang).clone(),
        summary: l.summary.get(lang).clone(),
        template: l.template,
        minutes: l.minutes,
        images: l.images.clone(),
        steps: l
            .steps
            .iter()
            .map(|s| StepView {
                id: s.id.clone(),
                title: s.title.get(lang).clone(),
                html: s.html.get(lang).clone(),
                has_check: s.check.is_some(),
                commands: s.commands.clone(),
            })
            .collect(),
    }
}

async fn list(
    State(st): State<AppState>,
    q: Result<Query<LangQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let lang = lang_of(q)?;
    let all: Vec<LessonSummary> = st
        .lessons
        .lessons()
        .iter()
        .map(|l| summary(l, lang))
        .collect();
    Ok(Json(all).into_response())
}

async fn detail(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<LangQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let lang = lang_of(q)?;
    let lesson = st.lessons.lesson(&id)?;
    Ok(Json(view(lesson, lang)).into_response())
}

async fn check(
    State(st): State<AppState>,
    Path((id, n)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, Error> {
    let live = authorize(&st, &id, &headers, q.as_deref())?;
    let Some(lesson_id) = live.view().lesson else {
        return Err(Error::Conflict(format!(
            "session {id} has no lesson, so there is nothing to check: start a session with \
             {{\"lesson\": \"<id>\"}} to follow a lesson"
        )));
    };
    let lesson: Arc<Lesson> = st.lessons.lesson(&lesson_id)?.clone();
    let no_step = || LessonError::NoStep {
        lesson: lesson.id.clone(),
        step: n.clone(),
        count: lesson.steps.len(),
    };
    let step_no: usize = n.parse().map_err(|_| no_step())?;
    let step = lesson.steps.get(step_no).ok_or_else(no_step)?;
    let outcome = match &step.check {
        None => CheckOutcome {
            passed: true,
            message: "This step has no check: go on when you are ready.".into(),
        },
        Some(c) => {
            let target = st.sessions.agent_target(&live, CHECK_INSTANCE)?;
            checks::run(st.sessions.agent(), &target, &lesson.id, step_no, c).await?
        }
    };
    let row = ProgressRow {
        session_id: id.clone(),
        step: step_no as i64,
        passed: outcome.passed,
        message: outcome.message.clone(),
        checked_at: st.sessions.clock().now_ms(),
    };
    if let Err(e) = st.sessions.store().record_check(&row).await {
        tracing::warn!(session = %id, step = step_no, error = %e, "could not record a check");
    }
    tracing::info!(
        session = %id,
        lesson = %lesson.id,
        step = step_no,
        passed = outcome.passed,
        "lesson check"
    );
    Ok(Json(outcome).into_response())
}

/// `GET /api/v1/sessions/{id}`: the session plus its lesson progress.
#[derive(Debug, Clone, Serialize)]
pub struct SessionWithProgress {
    #[serde(flatten)]
    pub session: SessionView,
    pub progress: Vec<StepProgress>,
}

/// The session view with its recorded step results.
pub async fn with_progress(
    st: &AppState,
    session: SessionView,
) -> Result<SessionWithProgress, Error> {
    let progress = st
        .sessions
        .store()
        .progress(&session.id)
        .await?
        .into_iter()
        .map(|p| StepProgress {
            step: p.step.max(0) as usize,
            passed: p.passed,
            checked_at: rfc3339(p.checked_at),
        })
        .collect();
    Ok(SessionWithProgress { session, progress })
}

/// Refuses a session for a lesson this server does not serve, or of the wrong template.
pub fn validate_create(st: &AppState, req: &CreateRequest) -> Result<(), Error> {
    let Some(id) = &req.lesson else { return Ok(()) };
    let Some(lesson) = st.lessons.get(id) else {
        let known: Vec<&str> = st.lessons.lessons().iter().map(|l| l.id.as_str()).collect();
        return Err(Error::BadRequest(format!(
            "no lesson '{id}' (lessons: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    };
    if lesson.template.as_str() != req.template {
        return Err(Error::BadRequest(format!(
            "lesson '{id}' runs in a {} session, not {}",
            lesson.template.as_str(),
            req.template
        )));
    }
    Ok(())
}
