//! The HTTP router: every endpoint of the agent API (see `drydock_protocol::agent`), the
//! auth layer in front of all of them, and the mapping of errors to `{"error": "..."}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State, WebSocketUpgrade};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use drydock_protocol::agent::{valid_terminal_name, ApiError, ExecRequest, Health};
use tokio_util::io::ReaderStream;

use crate::config::Config;
use crate::process::supervisor::Supervisor;
use crate::terminal::{ws, Registry};
use crate::{auth, exec, files, ports, stats};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub terminals: Arc<Registry>,
    pub supervisor: Arc<Supervisor>,
    pub started: Instant,
    /// The port the agent itself listens on (left out of `/v1/ports`).
    pub own_port: u16,
    /// The disk quota watcher (`disk_exceeded` in `/v1/health`).
    pub disk: Arc<crate::disk::DiskWatch>,
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
pub struct Failure(pub StatusCode, pub String);

impl Failure {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError { error: self.1 })).into_response()
    }
}

impl From<files::FilesError> for Failure {
    fn from(e: files::FilesError) -> Self {
        Self(e.status(), e.to_string())
    }
}

impl From<exec::ExecError> for Failure {
    fn from(e: exec::ExecError) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<crate::terminal::TerminalError> for Failure {
    fn from(e: crate::terminal::TerminalError) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

pub fn router(state: AppState) -> Router {
    let secret: Arc<str> = state.config.secret.clone().into();
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/terminals", get(list_terminals))
        .route("/v1/terminals/{name}", get(attach_terminal))
        .route("/v1/exec", post(run_exec))
        .route("/v1/ports", get(list_ports))
        .route("/v1/stats", get(get_stats))
        .route("/v1/notice", post(post_notice))
        .route(
            "/v1/files",
            get(download).put(upload).layer(DefaultBodyLimit::disable()),
        )
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn_with_state(secret, auth::require_secret))
}

async fn not_found(method: Method, uri: Uri) -> Failure {
    Failure(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {method} {}", uri.path()),
    )
}

/// Longest `wait_ms` of `/v1/health`.
const MAX_HEALTH_WAIT_MS: u64 = 10_000;

/// `GET /v1/health[?wait_ms=N]`: with `wait_ms`, answers once every engine is ready or after
/// N ms (at most 10 s), so the server learns of readiness at once instead of polling.
async fn health(
    State(st): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Health>, Failure> {
    let Query(q) = query.map_err(|e| Failure::bad_request(e.body_text()))?;
    if let Some(v) = q.get("wait_ms") {
        let ms = v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_HEALTH_WAIT_MS)
            .ok_or_else(|| {
                Failure::bad_request(format!(
                    "query parameter wait_ms={v:?} must be a number in 0..={MAX_HEALTH_WAIT_MS}"
                ))
            })?;
        st.supervisor
            .wait_ready(std::time::Duration::from_millis(ms))
            .await;
    }
    Ok(Json(Health {
        version: env!("CARGO_PKG_VERSION").to_string(),
        ready: st.supervisor.ready(),
        dockerd: st.supervisor.dockerd.status(),
        k3s: st.supervisor.k3s.status(),
        terminals: st.terminals.len(),
        disk_exceeded: st.disk.exceeded(),
        disk: st.disk.quota(),
    }))
}

async fn list_terminals(State(st): State<AppState>) -> Response {
    Json(st.terminals.list()).into_response()
}

fn parse_dim(q: &HashMap<String, String>, key: &str) -> Result<Option<u16>, Failure> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .map(Some)
            .ok_or_else(|| {
                Failure::bad_request(format!(
                    "query parameter {key}={v:?} must be a number in 1..=1000"
                ))
            }),
    }
}

async fn attach_terminal(
    State(st): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Failure> {
    if !valid_terminal_name(&name) {
        return Err(Failure::bad_request(format!(
            "terminal name {name:?} is invalid: it must match [a-z0-9-]{{1,32}}"
        )));
    }
    let Query(q) = query.map_err(|e| Failure::bad_request(format!("bad query string: {e}")))?;
    let view = match q.get("mode").map(String::as_str) {
        None | Some("") | Some("interactive") => false,
        Some("view") => true,
        Some(other) => {
            return Err(Failure::bad_request(format!(
                "mode={other:?} is not a terminal mode (use mode=view or leave it out)"
            )))
        }
    };
    let size = match (parse_dim(&q, "cols")?, parse_dim(&q, "rows")?) {
        (Some(c), Some(r)) => Some((c, r)),
        (None, None) => None,
        _ => return Err(Failure::bad_request("give both cols and rows, or neither")),
    };
    let upgrade = upgrade.map_err(|e| {
        Failure::bad_request(format!(
            "GET /v1/terminals/{name} needs a WebSocket upgrade: {e}"
        ))
    })?;
    let handle = st.terminals.attach(&name, size, view)?;
    Ok(upgrade
        .max_message_size(ws::WS_HARD_LIMIT)
        .max_frame_size(ws::WS_HARD_LIMIT)
        .on_upgrade(move |socket| ws::serve(socket, handle))
        .into_response())
}

async fn run_exec(
    State(st): State<AppState>,
    req: Result<Json<ExecRequest>, JsonRejection>,
) -> Result<Response, Failure> {
    let Json(req) =
        req.map_err(|e| Failure::bad_request(format!("invalid exec request: {}", e.body_text())))?;
    let result = exec::exec(&st.config, &req).await?;
    Ok(Json(result).into_response())
}

async fn post_notice(
    State(st): State<AppState>,
    req: Result<Json<drydock_protocol::agent::Notice>, JsonRejection>,
) -> Result<Response, Failure> {
    let Json(n) =
        req.map_err(|e| Failure::bad_request(format!("invalid notice: {}", e.body_text())))?;
    if n.text.len() > drydock_protocol::agent::MAX_NOTICE {
        return Err(Failure::bad_request(format!(
            "notice of {} bytes is longer than {}",
            n.text.len(),
            drydock_protocol::agent::MAX_NOTICE
        )));
    }
    // Only printable text: a notice cannot move the cursor or retitle the terminal.
    let text: String = n
        .text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    st.terminals.notice(&text);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_ports(State(st): State<AppState>) -> Response {
    let mut list = ports::listening_ports(st.own_port);
    // k3s NodePorts have no listening socket; port preview reaches them all the same.
    for port in st.supervisor.node_ports().await {
        if !list.iter().any(|p| p.port == port) {
            list.push(drydock_protocol::agent::ListeningPort { port });
        }
    }
    list.sort_by_key(|p| p.port);
    Json(list).into_response()
}

async fn get_stats(State(st): State<AppState>) -> Response {
    let root = st.config.cgroup_root.clone();
    let started = st.started;
    match tokio::task::spawn_blocking(move || stats::collect(&root, started)).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("collecting stats failed: {e}"),
        )
        .into_response(),
    }
}

fn path_param(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<String, Failure> {
    let Query(q) = q.map_err(|e| Failure::bad_request(format!("bad query string: {e}")))?;
    q.get("path")
        .cloned()
        .ok_or_else(|| Failure::bad_request("missing query parameter path (an absolute path)"))
}

async fn download(
    State(st): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, Failure> {
    let path = path_param(query)?;
    let (file, len) =
        files::open_for_download(&path, &st.config.files_root, st.config.max_file).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response())
}

async fn upload(
    State(st): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let path = path_param(query)?;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > st.config.max_file {
            return Err(files::FilesError::UploadTooLarge {
                path,
                limit: st.config.max_file,
            }
            .into());
        }
    }
    files::upload(&path, &st.config.files_root, st.config.max_file, body).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
