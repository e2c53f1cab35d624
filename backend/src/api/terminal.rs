//! `GET /api/v1/sessions/{id}/instances/{name}/terminals/{term}`: checks the Origin and the
//! session token, opens the agent's terminal, upgrades and hands both sockets to
//! [`crate::relay::relay`].

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use drydock_protocol::agent::valid_terminal_name;
use drydock_protocol::frame::MAX_FRAME_LEN;
use futures_util::StreamExt;

use super::{auth, authorize, check_instance_name, AppState};
use crate::error::Error;
use crate::metrics::Metrics;

pub async fn attach(
    State(st): State<AppState>,
    Path((id, name, term)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("<not UTF-8>");
        if !st.sessions.config().origin_allowed(origin) {
            return Err(Error::Forbidden(format!(
                "WebSocket from origin {origin:?} refused: this server serves {}",
                st.sessions.config().allowed_origins.join(", ")
            )));
        }
    }
    if !valid_terminal_name(&term) {
        return Err(Error::BadRequest(format!(
            "invalid terminal name {term:?}: expected 1-32 characters of [a-z0-9-]"
        )));
    }
    let mode = auth::query_get(q.as_deref(), "mode");
    if let Some(m) = &mode {
        if m != "view" {
            return Err(Error::BadRequest(format!(
                "invalid mode {m:?}: the only mode is \"view\""
            )));
        }
    }
    // The session's token, or an instructor's credentials with mode=view (read-only).
    let live = match authorize(&st, &id, &headers, q.as_deref()) {
        Ok(live) => live,
        Err(e) => {
            crate::workshops::http::view_session(&st, &id, &headers, mode.as_deref(), e).await?
        }
    };
    check_instance_name(&name)?;
    let view_only = mode.as_deref() == Some("view");
    let target = st.sessions.agent_target(&live, &name)?;
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let Some(ended) = st.sessions.instance_ended(&live, &name) else {
        return Err(Error::NotFound(format!(
            "instance {name:?} not found in session {id}"
        )));
    };
    let agent = st
        .sessions
        .agent()
        .terminal(&target, &term, mode.as_deref())
        .await?;
    let sessions = st.sessions.clone();
    Ok(ws
        .max_message_size(MAX_FRAME_LEN)
        .max_frame_size(MAX_FRAME_LEN)
        .on_upgrade(move |socket| async move {
            let metrics = sessions.metrics().clone();
            Metrics::add(&metrics.terminals_open, 1);
            let (btx, brx) = socket.split();
            // Read-only: the agent ignores a viewer's input and resizes; drop them here too.
            let brx = brx.filter(move |m| {
                let keep = !(view_only
                    && matches!(m, Ok(axum::extract::ws::Message::Binary(b))
                        if matches!(b.first(), Some(0x00 | 0x01))));
                std::future::ready(keep)
            });
            let (atx, arx) = agent.split();
            // Bytes either way are activity (idle culling, sessions::idle).
            let (clock, act_in, act_out) = (*sessions.clock(), live.clone(), live.clone());
            let brx = brx.inspect(move |m| {
                if matches!(m, Ok(axum::extract::ws::Message::Binary(_))) {
                    act_in.activity.input(clock.now_ms());
                }
            });
            let arx = arx.inspect(move |m| {
                if matches!(
                    m,
                    Ok(tokio_tungstenite::tungstenite::Message::Binary(_))
                ) {
                    act_out.activity.output(clock.now_ms());
                }
            });
            let end = crate::relay::relay(
                btx,
                brx,
                atx,
                arx,
                ended,
                sessions.shutdown_token().clone(),
                &metrics,
            )
            .await;
            metrics
                .terminals_open
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(session = %id, instance = %name, terminal = %term, ?end, "terminal relay ended");
        }))
}
