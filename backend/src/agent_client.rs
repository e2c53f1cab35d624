//! Client of the in-instance agent's HTTP API (`drydock_protocol::agent`): health, exec,
//! ports, stats over plain HTTP, and terminal WebSockets, each with the instance's Bearer
//! secret.

use std::net::SocketAddr;
use std::time::Duration;

use drydock_protocol::agent::{ExecRequest, ExecResult, Health, ListeningPort, Stats};
use drydock_protocol::frame::MAX_FRAME_LEN;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The agent's terminal WebSocket as the server holds it.
pub type AgentSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent at {addr}: {what} failed: {message}")]
    Request {
        addr: SocketAddr,
        what: String,
        message: String,
    },
    #[error("agent at {addr}: {what} answered HTTP {status}: {body}")]
    Status {
        addr: SocketAddr,
        what: String,
        status: u16,
        body: String,
    },
}

/// Where an agent is and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTarget {
    pub addr: SocketAddr,
    pub secret: String,
}

#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
}

impl Default for AgentClient {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentClient {
    pub fn new() -> AgentClient {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("building an HTTP client without TLS cannot fail");
        AgentClient { http }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        t: &AgentTarget,
        path: &str,
        timeout: Duration,
    ) -> Result<T, AgentError> {
        let req = self
            .http
            .get(format!("http://{}{path}", t.addr))
            .bearer_auth(&t.secret)
            .timeout(timeout);
        self.send(t, &format!("GET {path}"), req).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        t: &AgentTarget,
        what: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, AgentError> {
        let err = |message: String| AgentError::Request {
            addr: t.addr,
            what: what.to_owned(),
            message,
        };
        let resp = req.send().await.map_err(|e| err(error_chain(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(AgentError::Status {
                addr: t.addr,
                what: what.to_owned(),
                status: status.as_u16(),
                body: body.chars().take(500).collect(),
            });
        }
        resp.json::<T>()
            .await
            .map_err(|e| err(format!("bad answer: {}", error_chain(&e))))
    }

    pub async fn health(&self, t: &AgentTarget) -> Result<Health, AgentError> {
        self.get_json(t, "/v1/health", Duration::from_secs(3)).await
    }

    /// Health, after the agent waited up to `wait` for its engines to be ready (it answers
    /// as soon as they are; an agent without the long poll answers at once).
    pub async fn health_wait(&self, t: &AgentTarget, wait: Duration) -> Result<Health, AgentError> {
        let path = format!("/v1/health?wait_ms={}", wait.as_millis().min(10_000));
        self.get_json(t, &path, wait + Duration::from_secs(3)).await
    }

    pub async fn ports(&self, t: &AgentTarget) -> Result<Vec<ListeningPort>, AgentError> {
        self.get_json(t, "/v1/ports", Duration::from_secs(5)).await
    }

    /// Writes a notice into every terminal of the instance.
    pub async fn notice(&self, t: &AgentTarget, text: &str) -> Result<(), AgentError> {
        let what = "POST /v1/notice";
        let resp = self
            .http
            .post(format!("http://{}/v1/notice", t.addr))
            .bearer_auth(&t.secret)
            .json(&drydock_protocol::agent::Notice {
                text: text.to_owned(),
            })
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| AgentError::Request {
                addr: t.addr,
                what: what.to_owned(),
                message: error_chain(&e),
            })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(AgentError::Status {
                addr: t.addr,
                what: what.to_owned(),
                status: resp.status().as_u16(),
                body: resp
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(500)
                    .collect(),
            })
        }
    }

    pub async fn stats(&self, t: &AgentTarget) -> Result<Stats, AgentError> {
        self.get_json(t, "/v1/stats", Duration::from_secs(5)).await
    }

    pub async fn exec(&self, t: &AgentTarget, req: &ExecRequest) -> Result<ExecResult, AgentError> {
        let timeout =
            Duration::from_millis(req.timeout_ms.unwrap_or(10_000)) + Duration::from_secs(5);
        let r = self
            .http
            .post(format!("http://{}/v1/exec", t.addr))
            .bearer_auth(&t.secret)
            .json(req)
            .timeout(timeout);
        self.send(t, "POST /v1/exec", r).await
    }

    /// Opens the terminal `term` (created on first attach); `mode` is passed through
    /// (`view` = read-only).
    pub async fn terminal(
        &self,
        t: &AgentTarget,
        term: &str,
        mode: Option<&str>,
    ) -> Result<AgentSocket, AgentError> {
        let what = format!("open terminal {term}");
        let err = |message: String| AgentError::Request {
            addr: t.addr,
            what: what.clone(),
            message,
        };
        let mut url = format!("ws://{}/v1/terminals/{term}", t.addr);
        if let Some(m) = mode {
            url.push_str("?mode=");
            url.push_str(m);
        }
        let mut req = url.into_client_request().map_err(|e| err(e.to_string()))?;
        let auth = HeaderValue::from_str(&format!("Bearer {}", t.secret))
            .map_err(|e| err(format!("bad secret: {e}")))?;
        req.headers_mut().insert("authorization", auth);
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_LEN))
            .max_frame_size(Some(MAX_FRAME_LEN));
        let connect = tokio_tungstenite::connect_async_with_config(req, Some(config), true);
        match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Err(_) => Err(err("timed out after 5 s".into())),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err(AgentError::Status {
                    addr: t.addr,
                    what,
                    status: resp.status().as_u16(),
                    body,
                })
            }
            Ok(Err(e)) => Err(err(e.to_string())),
            Ok(Ok((ws, _))) => Ok(ws),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
