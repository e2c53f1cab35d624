//! The HTTP API of the design brief's "External API": sessions, instances, ports, the
//! terminal WebSocket, `/healthz` and `/metrics`. Errors are `{"error": "..."}`. Port
//! previews (`/p/…` and preview hosts) are wired in here and live in [`crate::proxy`].

pub mod auth;
pub mod ratelimit;
pub mod terminal;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::error::{error_response, Error};
use crate::lessons::Catalog;
use crate::sessions::{valid_instance_name, valid_session_id, CreateRequest, Live, Sessions};
use ratelimit::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    pub sessions: Arc<Sessions>,
    pub limiter: Arc<RateLimiter>,
    pub lessons: Arc<Catalog>,
    pub workshops: Arc<crate::workshops::Workshops>,
}

/// The whole router.
pub fn router(sessions: Arc<Sessions>, lessons: Arc<Catalog>) -> Router {
    let limiter = Arc::new(RateLimiter::new(sessions.config().create_per_minute));
    let workshops = crate::workshops::Workshops::new(sessions.clone(), lessons.clone());
    let state = AppState {
        sessions,
        limiter,
        lessons,
        workshops: workshops.clone(),
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/templates", get(list_templates))
        .route("/api/v1/sessions", post(create_session))
        .route(
            "/api/v1/sessions/{id}",
            get(get_session).delete(delete_session),
        )
        .route("/api/v1/sessions/{id}/extend", post(extend_session))
        .route("/api/v1/sessions/{id}/instances", post(add_instance))
        .route(
            "/api/v1/sessions/{id}/instances/{name}",
            delete(remove_instance),
        )
        .route(
            "/api/v1/sessions/{id}/instances/{name}/ports",
            get(instance_ports),
        )
        .route(
            "/api/v1/sessions/{id}/instances/{name}/terminals/{term}",
            get(terminal::attach),
        )
        .merge(crate::lessons::http::routes())
        .merge(crate::workshops::http::routes())
        // Step checks reach the workshop dashboards (workshops::http::observe_checks).
        .route_layer(axum::middleware::from_fn_with_state(
            workshops,
            crate::workshops::http::observe_checks,
        ))
        .route("/p/{*rest}", any(crate::proxy::path::handle))
        .fallback(fallback)
        // Host-based previews are routed by the Host header, before the routes above.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::proxy::host::route,
        ))
        .with_state(state)
}

/// The client's IP (from the connection; `0.0.0.0` when unknown, e.g. in tests).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(peer))
    }
}

/// The client's address for admission limits: the connection's (`peer`, what [`ClientIp`]
/// holds), or, when the connection comes from a reverse proxy on this host (loopback), the
/// last `X-Forwarded-For` entry it added.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !peer.is_loopback() {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|last| {
            let last = last.trim();
            last.parse::<IpAddr>()
                .ok()
                .or_else(|| last.parse::<SocketAddr>().ok().map(|a| a.ip()))
        })
        .unwrap_or(peer)
}

async fn fallback(method: Method, uri: Uri) -> Response {
    if crate::ui::handles(&method, &uri) {
        return crate::ui::serve(&uri);
    }
    error_response(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {method} {}", uri.path()),
    )
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    sessions: usize,
    max_sessions: usize,
}

async fn healthz(State(st): State<AppState>) -> Response {
    let check = match st.sessions.runtime().check().await {
        Ok(()) => {
            // Sessions cannot be created on a nearly full disk either.
            let mut disks = vec![st.sessions.config().data_dir.clone()];
            disks.extend(st.sessions.runtime().storage_paths().await);
            crate::sessions::guard::check_disk(&disks, st.sessions.config().min_free_disk_mb)
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    match check {
        Ok(()) => Json(Health {
            status: "ok",
            sessions: st.sessions.live_count(),
            max_sessions: st.sessions.config().max_sessions,
        })
        .into_response(),
        Err(e) => error_response(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    let text = st.sessions.metrics().render(&st.sessions.gauges());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /api/v1/templates`: `[{"id", "available", "reason"}]`.
async fn list_templates(State(st): State<AppState>) -> Response {
    let runtime = st.sessions.runtime().clone();
    Json(crate::templates::list(st.sessions.config(), runtime.as_ref()).await).into_response()
}

/// Parses a JSON body whatever its content type, with serde's message on failure.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes, example: &str) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::BadRequest(format!(
            "request body is empty: expected JSON like {example}"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("invalid JSON in request body: {e}")))
}

/// The invite a create request offers: the `X-Drydock-Invite` header or the `"invite"` field.
fn offered_invite(headers: &HeaderMap, body: &Bytes) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Invite {
        #[serde(default)]
        invite: Option<String>,
    }
    headers
        .get("x-drydock-invite")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .or_else(|| {
            serde_json::from_slice::<Invite>(body)
                .ok()
                .and_then(|i| i.invite)
        })
}

async fn create_session(
    State(st): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    crate::sessions::guard::check_invite(
        st.sessions.config().invite_token.as_deref(),
        offered_invite(&headers, &body).as_deref(),
    )?;
    let ip = client_ip(peer, &headers);
    let req: CreateRequest = parse_json(&body, r#"{"template":"docker"}"#)?;
    crate::sessions::validate(&req)?;
    crate::lessons::http::validate_create(&st, &req)?;
    st.limiter.check(ip)?;
    let created = st.sessions.create_for(ip, req).await?;
    let cookie = auth::session_cookie(&created.session.id, &created.token);
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        Json(created),
    )
        .into_response())
}

/// Finds the live session `id` the request may act on.
pub fn authorize(
    st: &AppState,
    id: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Arc<Live>, Error> {
    if !valid_session_id(id) {
        return Err(Error::SessionNotFound);
    }
    let token = auth::token_for(id, headers, query).unwrap_or_default();
    st.sessions.authorize(id, &token)
}

fn check_instance_name(name: &str) -> Result<(), Error> {
    if valid_instance_name(name) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "invalid instance name {name:?}: expected node1, node2, …"
        )))
    }
}

async fn get_session(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, Error> {
    let live = authorize(&st, &id, &headers, q.as_deref())?;
    let view = crate::lessons::http::with_progress(&st, live.view()).await?;
    Ok(Json(view).into_response())
}

async fn delete_session(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, Error> {
    authorize(&st, &id, &headers, q.as_deref())?;
    st.sessions
        .end(&id, crate::sessions::EndReason::Closed)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn extend_session(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, Error> {
    let live = authorize(&st, &id, &headers, q.as_deref())?;
    Ok(Json(st.sessions.extend(&live).await?).into_response())
}

async fn add_instance(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, Error> {
    let live = authorize(&st, &id, &headers, q.as_deref())?;
    let view = st.sessions.add_instance(&live).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn remove_instance(
    State(st): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, Error> {
    let live = authorize(&st, &id, &headers, q.as_deref())?;
    check_instance_name(&name)?;
    st.sessions.remove_instance(&live, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn instance_ports(
    State(st): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, Error> {
    let live = authorize(&st, &id, &headers, q.as_deref())?;
    check_instance_name(&name)?;
    let target = st.sessions.agent_target(&live, &name)?;
    let ports = st.sessions.agent().ports(&target).await?;
    Ok(Json(ports).into_response())
}
