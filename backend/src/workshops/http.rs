//! The workshop endpoints. Instructor ones need [`super::admin`] credentials (the
//! `drydock_admin` cookie or `Authorization: Bearer <admin token>`) and only reach the
//! instructor's own workshops (another's answer 404):
//!
//! - `POST /api/v1/admin/login` `{"token"}` → `{"owner","expires_at"}` and the cookie ·
//!   `POST /api/v1/admin/logout` (204) · `GET /api/v1/admin/me` → `{"owner"}`;
//! - `POST /api/v1/workshops` `{"title","lesson","seats","duration_minutes","warm_pool"?,
//!   "opens_at"?,"closes_at"?,"lang"?}` → 201 `{"id","code","join_url",…}` ·
//!   `GET /api/v1/workshops` (mine, newest first);
//! - `GET /api/v1/workshops/{id}` → the dashboard: the workshop, the lesson's steps, warm
//!   instances, participants (name, session, instances, expires_at, seconds_left, progress:
//!   `[{"step","passed","checked_at"}]`);
//! - `GET /api/v1/workshops/{id}/events` → server-sent events: `snapshot` (the dashboard) on
//!   connect, then `join`, `check`, `extend`, `end`, `participant` (instance state) with
//!   `{"participant"}`, and `workshop` (`{"action":"extend"|"end"}`); `: keep-alive` every
//!   15 s;
//! - `POST …/{id}/participants/{session}/extend` `{"minutes"?}` · `POST …/{id}/participants/
//!   {session}/end` · `POST …/{id}/extend` `{"minutes"?}` · `POST …/{id}/end` (every session
//!   and container removed) · `GET …/{id}/results.csv`.
//!
//! Public: `GET /api/v1/workshops/{code}/join` (what the join page shows) and
//! `POST /api/v1/workshops/{code}/join` `{"name","lang"?}` → 201 a session as
//! `POST /api/v1/sessions` answers (200 and the same session on a rejoin from the browser
//! holding the `drydock_ws_<code>` cookie).
//!
//! Also here: [`view_session`], the instructor's read-only way into a participant's terminal,
//! and [`observe_checks`], which tells dashboards about step checks.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::admin::{self, Admin};
use super::{rejoin_cookie_name, CreateWorkshop, Workshops};
use crate::api::{parse_json, AppState, ClientIp};
use crate::error::Error;
use crate::sessions::{rfc3339, valid_session_id, Live};

/// How often an idle event stream gets a `: keep-alive` comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/login", post(login))
        .route("/api/v1/admin/logout", post(logout))
        .route("/api/v1/admin/me", get(me))
        .route("/api/v1/workshops", get(list).post(create))
        .route("/api/v1/workshops/{id}", get(dashboard))
        .route("/api/v1/workshops/{id}/join", get(join_info).post(join))
        .route("/api/v1/workshops/{id}/events", get(events))
        .route("/api/v1/workshops/{id}/extend", post(extend_all))
        .route("/api/v1/workshops/{id}/end", post(end_all))
        .route("/api/v1/workshops/{id}/results.csv", get(results))
        .route(
            "/api/v1/workshops/{id}/participants/{session}/extend",
            post(extend_one),
        )
        .route(
            "/api/v1/workshops/{id}/participants/{session}/end",
            post(end_one),
        )
}

async fn instructor(st: &AppState, headers: &HeaderMap) -> Result<Admin, Error> {
    admin::authenticate(&st.sessions, headers).await
}

fn https(st: &AppState) -> bool {
    st.sessions
        .config()
        .public_origin
        .as_deref()
        .is_some_and(|o| o.starts_with("https://"))
}

/// Where join links point: the configured public origin, else the origin the request came
/// to (its Host, and `X-Forwarded-Proto` behind a proxy), else the listening address.
pub fn origin(st: &AppState, headers: &HeaderMap) -> String {
    let config = st.sessions.config();
    if let Some(o) = &config.public_origin {
        return o.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    match host {
        Some(h) => {
            let proto = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .filter(|p| *p == "https")
                .unwrap_or("http");
            format!("{proto}://{h}")
        }
        None => config
            .allowed_origins
            .first()
            .cloned()
            .unwrap_or_else(|| format!("http://{}", config.listen)),
    }
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

async fn login(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> Result<Response, Error> {
    if st.sessions.config().admin_token.is_none() {
        return Err(admin::disabled());
    }
    st.workshops.login_failures.check(ip)?;
    let req: Login = parse_json(&body, r#"{"token":"<admin token>"}"#)?;
    match admin::login(&st.sessions, &req.token).await {
        Err(e) => {
            if matches!(e, Error::Unauthorized(_)) {
                st.workshops.login_failures.failed(ip);
                tracing::warn!(%ip, "instructor sign-in with a wrong admin token");
            }
            Err(e)
        }
        Ok((value, row)) => {
            tracing::info!(%ip, owner = %row.owner, "instructor signed in");
            Ok((
                [(header::SET_COOKIE, admin::set_cookie(&value, https(&st)))],
                Json(serde_json::json!({
                    "owner": row.owner,
                    "expires_at": rfc3339(row.expires_at),
                })),
            )
                .into_response())
        }
    }
}

async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, Error> {
    if let Some(v) = admin::cookie_value(&headers) {
        st.sessions
            .store()
            .delete_admin_session(&crate::sessions::hash_token(&v))
            .await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, admin::clear_cookie())],
    )
        .into_response())
}

async fn me(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, Error> {
    let a = instructor(&st, &headers).await?;
    Ok(Json(serde_json::json!({
        "owner": a.owner,
        "via": if a.session.is_some() { "cookie" } else { "token" },
    }))
    .into_response())
}

async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let a = instructor(&st, &headers).await?;
    let req: CreateWorkshop = parse_json(
        &body,
        r#"{"title":"Docker 101","lesson":"whalesay","seats":20,"duration_minutes":90}"#,
    )?;
    let v = st
        .workshops
        .create(&a.owner, req, &origin(&st, &headers))
        .await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, Error> {
    let a = instructor(&st, &headers).await?;
    Ok(Json(st.workshops.list(&a.owner, &origin(&st, &headers)).await?).into_response())
}

async fn dashboard(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let a = instructor(&st, &headers).await?;
    let w = st.workshops.owned(&a.owner, &id).await?;
    Ok(Json(st.workshops.dashboard(&w, &origin(&st, &headers)).await?).into_response())
}

struct Feed {
    rx: broadcast::Receiver<Arc<super::FeedEvent>>,
    workshops: Arc<Workshops>,
    id: String,
    origin: String,
}

async fn snapshot_event(f: &Feed) -> Option<Event> {
    let w = f
        .workshops
        .sessions()
        .store()
        .get_workshop(&f.id)
        .await
        .ok()??;
    let d = f.workshops.dashboard(&w, &f.origin).await.ok()?;
    Event::default().event("snapshot").json_data(&d).ok()
}

async fn events(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let a = instructor(&st, &headers).await?;
    let w = st.workshops.owned(&a.owner, &id).await?;
    let feed = Feed {
        // Subscribed before the snapshot is taken, so nothing falls in between.
        rx: st.workshops.subscribe(),
        workshops: st.workshops.clone(),
        id: w.id.clone(),
        origin: origin(&st, &headers),
    };
    let first = snapshot_event(&feed)
        .await
        .ok_or_else(|| Error::Internal(format!("cannot build the dashboard of workshop {id}")))?;
    let rest = futures_util::stream::unfold(feed, |mut f| async move {
        loop {
            match f.rx.recv().await {
                Ok(ev) if ev.workshop == f.id => {
                    let e = Event::default().event(ev.kind).json_data(&ev.data).ok()?;
                    return Some((Ok::<_, Infallible>(e), f));
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let e = snapshot_event(&f).await?;
                    return Some((Ok(e), f));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(first) })
        .chain(rest)
        .take_until(st.sessions.shutdown_token().clone().cancelled_owned());
    Ok((
        [("x-accel-buffering", "no")],
        Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Extend {
    #[serde(default)]
    minutes: Option<i64>,
}

fn extend_body(body: &Bytes) -> Result<Extend, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Extend::default());
    }
    parse_json(body, r#"{"minutes":15}"#)
}

async fn extend_all(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let a = instructor(&st, &headers).await?;
    let w = st.workshops.owned(&a.owner, &id).await?;
    let n = st
        .workshops
        .extend_all(&w, extend_body(&body)?.minutes)
        .await?;
    Ok(Json(serde_json::json!({ "extended": n })).into_response())
}

async fn end_all(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let a = instructor(&st, &headers).await?;
    let w = st.workshops.owned(&a.owner, &id).await?;
    let n = st.workshops.end_workshop(&w).await?;
    Ok(Json(serde_json::json!({ "ended": n })).into_response())
}

async fn extend_one(
    State(st): State<AppState>,
    Path((id, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let a = instructor(&st, &headers).await?;
    let w = st.workshops.owned(&a.owner, &id).await?;
    let v = st
        .workshops
        .extend_participant(&w, &session, extend_body(&body)?.minutes)
        .await?;
    Ok(Json(v).into_response())
}

async fn end_one(
    State(st): State<AppState>,
    Path((id, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let a = instructor(&st, &headers).await?;
    let w = st.workshops.owned(&a.owner, &id).await?;
    st.workshops.end_participant(&w, &session).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn results(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let a = instructor(&st, &headers).await?;
    let w = st.workshops.owned(&a.owner, &id).await?;
    // A byte-order mark, so spreadsheets read the UTF-8 (Chinese names) right.
    let csv = format!("\u{feff}{}", st.workshops.results_csv(&w).await?);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"workshop-{}-results.csv\"", w.code),
            ),
        ],
        csv,
    )
        .into_response())
}

async fn join_info(
    State(st): State<AppState>,
    Path(code): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, Error> {
    st.workshops.code_misses.check(ip)?;
    let code = code.trim().to_ascii_uppercase();
    let cookie = admin::cookie(&headers, &rejoin_cookie_name(&code));
    match st.workshops.join_info(&code, cookie.as_deref()).await {
        Err(e @ Error::NotFound(_)) => {
            st.workshops.code_misses.failed(ip);
            Err(e)
        }
        r => Ok(Json(r?).into_response()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    lang: Option<String>,
}

async fn join(
    State(st): State<AppState>,
    Path(code): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    st.workshops.code_misses.check(ip)?;
    let req: JoinRequest = parse_json(&body, r#"{"name":"Ada"}"#)?;
    let code = code.trim().to_ascii_uppercase();
    let cookie_name = rejoin_cookie_name(&code);
    let cookie = admin::cookie(&headers, &cookie_name);
    let (joined, w) = match st
        .workshops
        .join(&code, &req.name, req.lang, cookie.as_deref())
        .await
    {
        Err(e @ Error::NotFound(_)) => {
            st.workshops.code_misses.failed(ip);
            return Err(e);
        }
        r => r?,
    };
    let id = &joined.created.session.id;
    let token = &joined.created.token;
    let rejoin = format!(
        "{cookie_name}={id}.{token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{}",
        w.duration_minutes * 60 + 24 * 3600,
        if https(&st) { "; Secure" } else { "" }
    );
    let status = if joined.rejoined {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        AppendHeaders([
            (
                header::SET_COOKIE,
                crate::api::auth::session_cookie(id, token),
            ),
            (header::SET_COOKIE, rejoin),
        ]),
        Json(joined),
    )
        .into_response())
}

/// An instructor's read-only way into a participant's terminal. The terminal endpoint calls
/// this when the session token did not fit (`not_found`): with instructor credentials and
/// `mode=view`, a live participant of one of the instructor's workshops; with instructor
/// credentials but another mode, 403; otherwise `not_found` unchanged. A participant's token
/// never reaches here for another session with more than `not_found`.
pub async fn view_session(
    st: &AppState,
    id: &str,
    headers: &HeaderMap,
    mode: Option<&str>,
    not_found: Error,
) -> Result<Arc<Live>, Error> {
    if st.sessions.config().admin_token.is_none()
        || !admin::offered(headers)
        || !valid_session_id(id)
    {
        return Err(not_found);
    }
    let Ok(a) = admin::authenticate(&st.sessions, headers).await else {
        return Err(not_found);
    };
    if mode != Some("view") {
        return Err(Error::Forbidden(
            "instructors open participants' terminals read-only: add ?mode=view to the \
             terminal URL"
                .into(),
        ));
    }
    let store = st.sessions.store();
    let Some(p) = store.participant_by_session(id).await? else {
        return Err(not_found);
    };
    match store.get_workshop(&p.workshop_id).await? {
        Some(w) if w.owner == a.owner => {}
        _ => return Err(not_found),
    }
    let live = st.sessions.live(id).ok_or(not_found)?;
    tracing::info!(session = id, owner = %a.owner, "instructor viewing a participant's terminal");
    Ok(live)
}

/// The session of a `POST /api/v1/sessions/{id}/lesson/steps/{n}/check` path.
fn check_session(method: &Method, path: &str) -> Option<String> {
    if method != Method::POST {
        return None;
    }
    let rest = path.strip_prefix("/api/v1/sessions/")?;
    let (id, rest) = rest.split_once('/')?;
    let n = rest.strip_prefix("lesson/steps/")?.strip_suffix("/check")?;
    (valid_session_id(id) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| id.to_owned())
}

/// Middleware: after a step check answered (its result is recorded by then), the
/// participant's workshop dashboards get a `check` event with the new progress.
pub async fn observe_checks(State(w): State<Arc<Workshops>>, req: Request, next: Next) -> Response {
    let session = check_session(req.method(), req.uri().path());
    let resp = next.run(req).await;
    if let Some(s) = session {
        if resp.status().is_success() {
            w.on_check(s);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_paths() {
        let p = "/api/v1/sessions/0123456789abcdef/lesson/steps/0/check";
        assert_eq!(
            check_session(&Method::POST, p).as_deref(),
            Some("0123456789abcdef")
        );
        assert_eq!(check_session(&Method::GET, p), None);
        assert_eq!(
            check_session(&Method::POST, "/api/v1/sessions/x/lesson/steps/0/check"),
            None
        );
        assert_eq!(
            check_session(
                &Method::POST,
                "/api/v1/sessions/0123456789abcdef/lesson/steps/a/check"
            ),
            None
        );
    }
}
