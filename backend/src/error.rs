//! The server's typed errors and how each one maps onto an HTTP answer
//! (`{"error": "<message>"}` with a fitting status).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::agent_client::AgentError;
use crate::runtime::RuntimeError;
use crate::store::StoreError;

/// The body every "no such session / wrong token" answer carries, so that the two cannot be
/// told apart.
pub const SESSION_NOT_FOUND: &str = "session not found (unknown id or wrong token)";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    /// Unknown session or wrong token: always the same body.
    #[error("{SESSION_NOT_FOUND}")]
    SessionNotFound,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    /// Credentials missing or wrong (401), e.g. an instructor's.
    #[error("{0}")]
    Unauthorized(String),
    #[error("server is full: {used} of {max} sessions in use, try again later")]
    Full { used: usize, max: usize },
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Unavailable(String),
    /// The host's disk is too full for a new session (507).
    #[error("{0}")]
    InsufficientStorage(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::SessionNotFound | Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Full { .. }
            | Error::Unavailable(_)
            | Error::Runtime(RuntimeError::Exhausted(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Agent(_) => StatusCode::BAD_GATEWAY,
            Error::Runtime(_) | Error::Store(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// The JSON error body.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut resp = error_response(status, self.to_string());
        if let Error::RateLimited(_) = self {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("60"));
        }
        resp
    }
}
