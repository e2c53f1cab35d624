//! The client side of Drydock's public API, as a browser would use it: the HTTP session API
//! and the terminal WebSocket (binary frames of `drydock_protocol::frame`, output acked with
//! `0x02` frames in batches like the UI does), plus prompt detection (PS1 set to a unique
//! marker) and the pure helpers the measurements share.
//!
//! Every session created through [`Api`] is recorded in its tracker until deleted, so
//! [`Api::cleanup`] can delete whatever is left after an error or Ctrl-C.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use drydock_protocol::frame::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Output bytes acknowledged at once past this many pending (the UI's threshold).
pub const ACK_THRESHOLD: u32 = 32 * 1024;
/// Pending output bytes are acknowledged after this long without reaching the threshold.
pub const ACK_IDLE: Duration = Duration::from_millis(30);
/// How often `wait_ready` asks for the session's state.
pub const READY_POLL: Duration = Duration::from_millis(10);

/// Checks that `url` is `http://` on a loopback address and returns it with `localhost`
/// replaced by 127.0.0.1 (no name lookups). The tool never sends traffic anywhere else.
/// The value of an unlabelled metric in Prometheus text.
pub fn metric_value(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

pub fn loopback_url(url: &str) -> Result<Url> {
    let mut u = Url::parse(url).with_context(|| format!("invalid --url {url:?}"))?;
    if u.scheme() != "http" {
        bail!("--url {url:?}: only http:// is supported (the server is benchmarked on loopback)");
    }
    let host = u.host_str().unwrap_or_default().to_owned();
    let loopback = if host.eq_ignore_ascii_case("localhost") {
        u.set_host(Some("127.0.0.1"))
            .map_err(|e| anyhow!("rewriting localhost in {url:?}: {e}"))?;
        true
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    };
    if !loopback {
        bail!("--url {url:?} is not a loopback address: drydock-bench only talks to 127.0.0.0/8 or ::1");
    }
    if u.port_or_known_default().is_none() {
        bail!("--url {url:?} has no port");
    }
    Ok(u)
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstanceInfo {
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub instances: Vec<InstanceInfo>,
}

/// A created session: what the measurements need to address it.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub token: String,
}

/// The HTTP API client, with the set of sessions it still owns.
#[derive(Clone)]
pub struct Api {
    base: Url,
    http: reqwest::Client,
    owned: Arc<Mutex<HashMap<String, String>>>,
}

async fn error_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let msg = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or(body);
    format!("{status}: {msg}")
}

impl Api {
    pub fn new(base: Url) -> Result<Api> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            base,
            http,
            owned: Arc::default(),
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        u.set_path(path);
        u
    }

    pub async fn healthz(&self) -> Result<serde_json::Value> {
        let resp = self
            .http
            .get(self.url("/healthz"))
            .send()
            .await
            .with_context(|| format!("GET {}healthz", self.base))?;
        if !resp.status().is_success() {
            bail!("GET /healthz: {}", error_text(resp).await);
        }
        Ok(resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn metrics(&self) -> Result<String> {
        let resp = self.http.get(self.url("/metrics")).send().await?;
        Ok(resp.text().await?)
    }

    /// `POST /api/v1/sessions` for `template`; the session is tracked until deleted.
    /// `drydock_warm_adopted_total` from `/metrics`, if the server has it.
    pub async fn warm_adopted(&self) -> Option<u64> {
        let text = self.metrics().await.ok()?;
        metric_value(&text, "drydock_warm_adopted_total")
    }

    pub async fn create_session(&self, template: &str) -> Result<SessionInfo> {
        let resp = self
            .http
            .post(self.url("/api/v1/sessions"))
            .json(&serde_json::json!({ "template": template }))
            .send()
            .await
            .context("POST /api/v1/sessions")?;
        let status = resp.status();
        if status != StatusCode::CREATED {
            let text = error_text(resp).await;
            let hint = match status {
                StatusCode::TOO_MANY_REQUESTS => {
                    " (raise the server's limits for the benchmark, e.g. \
                     DRYDOCK_CREATE_PER_MINUTE=1000 DRYDOCK_MAX_SESSIONS_PER_IP=200)"
                }
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::CONFLICT => {
                    " (is max_sessions high enough? e.g. DRYDOCK_MAX_SESSIONS=200)"
                }
                _ => "",
            };
            bail!("POST /api/v1/sessions: {text}{hint}");
        }
        let info: SessionInfo = resp
            .json()
            .await
            .context("POST /api/v1/sessions: reading the JSON answer")?;
        lock(&self.owned).insert(info.id.clone(), info.token.clone());
        Ok(info)
    }

    pub async fn get_session(&self, s: &Session) -> Result<SessionInfo> {
        let resp = self
            .http
            .get(self.url(&format!("/api/v1/sessions/{}", s.id)))
            .bearer_auth(&s.token)
            .send()
            .await
            .with_context(|| format!("GET session {}", s.id))?;
        if !resp.status().is_success() {
            bail!("GET session {}: {}", s.id, error_text(resp).await);
        }
        Ok(resp.json().await?)
    }

    /// `DELETE /api/v1/sessions/{id}` (a 404 counts as deleted).
    pub async fn delete_session(&self, s: &Session) -> Result<()> {
        let resp = self
            .http
            .delete(self.url(&format!("/api/v1/sessions/{}", s.id)))
            .bearer_auth(&s.token)
            .send()
            .await
            .with_context(|| format!("DELETE session {}", s.id))?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            lock(&self.owned).remove(&s.id);
            Ok(())
        } else {
            bail!("DELETE session {}: {}", s.id, error_text(resp).await)
        }
    }

    /// `POST /api/v1/sessions/{id}/instances`: the new instance's name.
    pub async fn add_instance(&self, s: &Session) -> Result<InstanceInfo> {
        let resp = self
            .http
            .post(self.url(&format!("/api/v1/sessions/{}/instances", s.id)))
            .bearer_auth(&s.token)
            .send()
            .await
            .with_context(|| format!("POST instances of session {}", s.id))?;
        if !resp.status().is_success() {
            bail!(
                "POST instances of session {}: {}",
                s.id,
                error_text(resp).await
            );
        }
        Ok(resp.json().await?)
    }

    /// Polls the session until instance `name` is `ready` (error when `failed` or at the
    /// deadline).
    pub async fn wait_ready(&self, s: &Session, name: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let info = self.get_session(s).await?;
            match info.instances.iter().find(|i| i.name == name) {
                Some(i) if i.state == "ready" => return Ok(()),
                Some(i) if i.state == "failed" => bail!(
                    "instance {name} of session {} failed: {}",
                    s.id,
                    i.reason.as_deref().unwrap_or("no reason given")
                ),
                Some(_) => {}
                None => bail!("session {} has no instance {name}", s.id),
            }
            if Instant::now() >= deadline {
                bail!(
                    "instance {name} of session {} not ready after {timeout:?}",
                    s.id
                );
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// Opens terminal `term` of instance `name` (the public WebSocket, token in the query).
    pub async fn terminal(&self, s: &Session, name: &str, term: &str) -> Result<Terminal> {
        let mut u = self.base.clone();
        u.set_scheme("ws")
            .map_err(|_| anyhow!("cannot make a ws:// URL of {}", self.base))?;
        u.set_path(&format!(
            "/api/v1/sessions/{}/instances/{name}/terminals/{term}",
            s.id
        ));
        u.set_query(Some(&format!("token={}", s.token)));
        let what = format!("terminal {term} of {name} in session {}", s.id);
        Terminal::connect(u.as_str(), None, what).await
    }

    /// Deletes every session this client created and has not deleted yet.
    pub async fn cleanup(&self) -> usize {
        let left: Vec<Session> = lock(&self.owned)
            .iter()
            .map(|(id, token)| Session {
                id: id.clone(),
                token: token.clone(),
            })
            .collect();
        let n = left.len();
        let deletes = left.iter().map(|s| async move {
            match tokio::time::timeout(Duration::from_secs(60), self.delete_session(s)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("cleanup: {e:#}"),
                Err(_) => eprintln!("cleanup: deleting session {} timed out", s.id),
            }
        });
        futures_util::future::join_all(deletes).await;
        n
    }

    pub fn owned_count(&self) -> usize {
        lock(&self.owned).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl From<&SessionInfo> for Session {
    fn from(i: &SessionInfo) -> Session {
        Session {
            id: i.id.clone(),
            token: i.token.clone(),
        }
    }
}

/// Flow-control ack batching, as the UI does it: output bytes are acknowledged once
/// [`ACK_THRESHOLD`] (or the threshold given) are pending, or [`ACK_IDLE`] after the first
/// pending byte.
#[derive(Debug)]
pub struct AckBatcher {
    pending: u64,
    since: Option<Instant>,
    threshold: u64,
}

impl Default for AckBatcher {
    fn default() -> Self {
        AckBatcher::with_threshold(ACK_THRESHOLD)
    }
}

/// The ack threshold new terminals use (profiling: 1 acks every output frame at once).
static ACK_THRESHOLD_NOW: std::sync::atomic::AtomicU32 =
    std::sync::atomic::AtomicU32::new(ACK_THRESHOLD);

pub fn set_ack_threshold(bytes: u32) {
    ACK_THRESHOLD_NOW.store(bytes.max(1), std::sync::atomic::Ordering::Relaxed);
}

impl AckBatcher {
    pub fn with_threshold(threshold: u32) -> AckBatcher {
        AckBatcher {
            pending: 0,
            since: None,
            threshold: u64::from(threshold.max(1)),
        }
    }

    /// Records `n` processed output bytes; returns the count to ack now, if any.
    pub fn processed(&mut self, n: usize, now: Instant) -> Option<u32> {
        if n == 0 {
            return None;
        }
        self.pending += n as u64;
        self.since.get_or_insert(now);
        if self.pending >= self.threshold {
            self.flush()
        } else {
            None
        }
    }

    /// When the pending bytes must be acked at the latest.
    pub fn due(&self) -> Option<Instant> {
        self.since.map(|t| t + ACK_IDLE)
    }

    /// Everything pending (at most one u32's worth; the rest stays pending).
    pub fn flush(&mut self) -> Option<u32> {
        if self.pending == 0 {
            return None;
        }
        let n = self.pending.min(u64::from(u32::MAX));
        self.pending -= n;
        if self.pending == 0 {
            self.since = None;
        }
        Some(n as u32)
    }

    #[cfg(test)]
    pub fn pending(&self) -> u64 {
        self.pending
    }
}

/// Finds a needle in a byte stream fed in arbitrary pieces (a match may span pieces).
#[derive(Debug, Clone)]
pub struct Finder {
    needle: Vec<u8>,
    tail: Vec<u8>,
}

impl Finder {
    pub fn new(needle: &[u8]) -> Finder {
        assert!(!needle.is_empty(), "a Finder needs a non-empty needle");
        Finder {
            needle: needle.to_vec(),
            tail: Vec::new(),
        }
    }

    /// Feeds the next piece; true once the needle has been seen (in this piece or across
    /// the boundary with earlier ones). Resets itself after a match.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        let k = self.needle.len() - 1;
        // Across the boundary: the old tail plus the first k bytes of data.
        if !self.tail.is_empty() {
            let mut joint = std::mem::take(&mut self.tail);
            joint.extend_from_slice(&data[..data.len().min(k)]);
            if find(&joint, &self.needle).is_some() {
                return true;
            }
            // Keep the tail growing when data was shorter than k.
            if data.len() < k {
                let start = joint.len().saturating_sub(k);
                self.tail = joint[start..].to_vec();
                return false;
            }
        }
        if find(data, &self.needle).is_some() {
            return true;
        }
        let start = data.len().saturating_sub(k);
        self.tail = data[start..].to_vec();
        false
    }

    pub fn reset(&mut self) {
        self.tail.clear();
    }
}

/// The first position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// A prompt marker unique to this process and terminal, and the shell line that sets it.
/// The line is typed with the marker split by `''`, so the echoed command never contains
/// the marker itself — only a printed prompt does.
pub fn prompt_marker(tag: &str) -> (String, String) {
    let nonce = std::process::id() as u64 * 1_000_003
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    let marker = format!("[ddb-{tag}-{:x}]$ ", nonce % 0xffff_ffff);
    let (a, b) = marker.split_at(5);
    let line = format!(
        "unset PROMPT_COMMAND HISTFILE; bind 'set enable-bracketed-paste off' 2>/dev/null; PS2=''; PS1='{a}''{b}'\r"
    );
    (marker, line)
}

/// What a terminal received while waiting for something.
#[derive(Debug, Default, Clone, Copy)]
pub struct Received {
    /// Output payload bytes.
    pub bytes: u64,
    /// Output frames.
    pub frames: u64,
}

/// The client's WebSocket read buffer size in bytes (0: tungstenite's default, 128 KiB).
/// tungstenite zero-fills the free part of this buffer before every read, so its size is
/// both memory per socket and CPU per read; the flag lets a run show the difference.
static WS_READ_BUFFER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn set_ws_read_buffer(bytes: usize) {
    WS_READ_BUFFER.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

fn ws_config() -> Option<tokio_tungstenite::tungstenite::protocol::WebSocketConfig> {
    match WS_READ_BUFFER.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        n => Some(
            tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(n),
        ),
    }
}

/// One terminal WebSocket (through the server's public API, or straight to an agent).
pub struct Terminal {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    acks: AckBatcher,
    what: String,
    marker: Option<Vec<u8>>,
    /// Every output payload byte and frame received so far.
    pub total: Received,
    /// Ack frames sent so far.
    pub acks_sent: u64,
    /// Keep a copy of output in `captured` (off unless asked).
    pub capture: bool,
    pub captured: Vec<u8>,
}

impl Terminal {
    /// Connects (TCP_NODELAY on, like browsers) and reads up to the end of the replay.
    pub async fn connect(url: &str, bearer: Option<&str>, what: String) -> Result<Terminal> {
        let mut req = url
            .into_client_request()
            .with_context(|| format!("{what}: bad URL"))?;
        if let Some(b) = bearer {
            req.headers_mut().insert(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {b}"))?,
            );
        }
        let connect = tokio_tungstenite::connect_async_with_config(req, ws_config(), true);
        let (ws, _) = tokio::time::timeout(Duration::from_secs(30), connect)
            .await
            .map_err(|_| anyhow!("{what}: WebSocket connect timed out"))?
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(resp) => {
                    let body = resp
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    anyhow!("{what}: upgrade refused with {}: {body}", resp.status())
                }
                e => anyhow!("{what}: WebSocket connect failed: {e}"),
            })?;
        let mut t = Terminal {
            ws,
            acks: AckBatcher::with_threshold(
                ACK_THRESHOLD_NOW.load(std::sync::atomic::Ordering::Relaxed),
            ),
            what,
            marker: None,
            total: Received::default(),
            acks_sent: 0,
            capture: false,
            captured: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let ServerFrame::ReplayEnd = t.next_frame(deadline).await? {
                break;
            }
        }
        Ok(t)
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    async fn send(&mut self, f: ClientFrame) -> Result<()> {
        self.ws
            .send(Message::Binary(f.encode()))
            .await
            .with_context(|| format!("{}: sending a frame", self.what))
    }

    pub async fn send_input(&mut self, data: &[u8]) -> Result<()> {
        self.flush_due_acks().await?;
        self.send(ClientFrame::Input(Bytes::copy_from_slice(data)))
            .await
    }

    /// Sends input and returns the instant just before it was handed to the socket (due
    /// acks go out first, outside the timed span). Time round trips from this instant:
    /// on loopback and veth the write itself can run much of the peer's receive path, so
    /// the answer may already be waiting when the send returns.
    pub async fn send_input_timed(&mut self, data: &[u8]) -> Result<Instant> {
        self.flush_due_acks().await?;
        let t0 = Instant::now();
        self.send(ClientFrame::Input(Bytes::copy_from_slice(data)))
            .await?;
        Ok(t0)
    }

    pub async fn resize(&mut self, cols: u16, rows: u16) -> Result<()> {
        self.send(ClientFrame::Resize { cols, rows }).await
    }

    async fn flush_due_acks(&mut self) -> Result<()> {
        if self.acks.due().is_some_and(|t| t <= Instant::now()) {
            self.flush_acks().await?;
        }
        Ok(())
    }

    /// Acks every processed byte now.
    pub async fn flush_acks(&mut self) -> Result<()> {
        while let Some(n) = self.acks.flush() {
            self.acks_sent += 1;
            self.send(ClientFrame::Ack(n)).await?;
        }
        Ok(())
    }

    /// The next frame before `deadline`. Output is counted (and acked per [`AckBatcher`]
    /// once the caller got it, i.e. as processed); a close or an error is an error.
    pub async fn next_frame(&mut self, deadline: Instant) -> Result<ServerFrame> {
        loop {
            let wake = match self.acks.due() {
                Some(due) if due < deadline => due,
                _ => deadline,
            };
            let msg = match tokio::time::timeout_at(wake.into(), self.ws.next()).await {
                Err(_) if wake < deadline => {
                    self.flush_acks().await?;
                    continue;
                }
                Err(_) => bail!("{}: timed out waiting for output", self.what),
                Ok(None) => bail!("{}: connection closed", self.what),
                Ok(Some(Err(e))) => bail!("{}: {e}", self.what),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Binary(b) => {
                    let f = ServerFrame::decode(&b)
                        .with_context(|| format!("{}: bad frame from the server", self.what))?;
                    if let ServerFrame::Output(data) = &f {
                        self.total.bytes += data.len() as u64;
                        self.total.frames += 1;
                        if self.capture {
                            self.captured.extend_from_slice(data);
                        }
                        if let Some(n) = self.acks.processed(data.len(), Instant::now()) {
                            self.acks_sent += 1;
                            self.send(ClientFrame::Ack(n)).await?;
                        }
                    }
                    return Ok(f);
                }
                Message::Close(c) => {
                    let why = c
                        .map(|c| format!("{} {}", u16::from(c.code), c.reason))
                        .unwrap_or_else(|| "no close frame".into());
                    bail!("{}: closed by the server ({why})", self.what)
                }
                Message::Text(_) => bail!("{}: unexpected text message", self.what),
                _ => {}
            }
        }
    }

    /// Reads output until `finder` matches; what was received meanwhile.
    pub async fn read_until(&mut self, finder: &mut Finder, deadline: Instant) -> Result<Received> {
        self.read_until_with(finder, deadline, |_| {}).await
    }

    /// [`Terminal::read_until`], handing every output payload to `on_data` first.
    pub async fn read_until_with(
        &mut self,
        finder: &mut Finder,
        deadline: Instant,
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<Received> {
        let mut got = Received::default();
        loop {
            match self.next_frame(deadline).await? {
                ServerFrame::Output(data) => {
                    got.bytes += data.len() as u64;
                    got.frames += 1;
                    on_data(&data);
                    if finder.feed(&data) {
                        return Ok(got);
                    }
                }
                ServerFrame::Exited(status) => {
                    bail!("{}: the shell exited with status {status}", self.what)
                }
                _ => {}
            }
        }
    }

    /// Reads (and acks) whatever arrives until `until`.
    pub async fn pump(&mut self, until: Instant) -> Result<()> {
        loop {
            if Instant::now() >= until {
                return Ok(());
            }
            match self.next_frame(until).await {
                Ok(ServerFrame::Exited(s)) => bail!("{}: shell exited ({s})", self.what),
                Ok(_) => {}
                Err(_) if Instant::now() >= until => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets PS1 to a unique marker and waits for the first such prompt.
    pub async fn set_prompt(&mut self, tag: &str, timeout: Duration) -> Result<()> {
        let (marker, line) = prompt_marker(tag);
        self.send_input(line.as_bytes()).await?;
        let mut f = Finder::new(marker.as_bytes());
        self.read_until(&mut f, Instant::now() + timeout)
            .await
            .with_context(|| format!("{}: waiting for the prompt marker", self.what))?;
        self.marker = Some(marker.into_bytes());
        Ok(())
    }

    /// Types `cmd` and Enter, and reads until the next prompt: bytes received and the time
    /// from Enter to the prompt. Needs [`Terminal::set_prompt`] first.
    pub async fn run(&mut self, cmd: &str, timeout: Duration) -> Result<(Received, Duration)> {
        self.run_with(cmd, timeout, |_| {}).await
    }

    /// [`Terminal::run`], handing every output payload to `on_data`.
    pub async fn run_with(
        &mut self,
        cmd: &str,
        timeout: Duration,
        on_data: impl FnMut(&[u8]),
    ) -> Result<(Received, Duration)> {
        let marker = self
            .marker
            .clone()
            .ok_or_else(|| anyhow!("{}: run() before set_prompt()", self.what))?;
        let mut f = Finder::new(&marker);
        let t0 = self.send_input_timed(format!("{cmd}\r").as_bytes()).await?;
        let got = self
            .read_until_with(&mut f, t0 + timeout, on_data)
            .await
            .with_context(|| format!("{}: running {cmd:?}", self.what))?;
        Ok((got, t0.elapsed()))
    }

    /// Sends a close frame and waits briefly for the server's.
    pub async fn close(mut self) {
        let _ = self.flush_acks().await;
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// Checks a stream of `seq 1 N` output (lines `1`..`N`, CRLF) for gaps, whatever the
/// framing. Lines that are not numbers (the echoed command, prompts) are skipped.
#[derive(Debug, Default, Clone)]
pub struct SeqChecker {
    line: Vec<u8>,
    /// The last number seen (0 before the first).
    pub last: u64,
    /// Numbers that were not the previous one plus one.
    pub gaps: u64,
}

impl SeqChecker {
    pub fn feed(&mut self, data: &[u8]) {
        for &b in data {
            match b {
                b'\n' => {
                    let line = std::mem::take(&mut self.line);
                    let t = line.strip_suffix(b"\r").unwrap_or(&line);
                    if !t.is_empty() && t.len() <= 19 && t.iter().all(u8::is_ascii_digit) {
                        let n: u64 = std::str::from_utf8(t)
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        if n != self.last + 1 {
                            self.gaps += 1;
                        }
                        self.last = n;
                    }
                }
                _ if self.line.len() < 64 => self.line.push(b),
                _ => {}
            }
        }
    }

    /// Starts a new run (the next number expected is 1).
    pub fn restart(&mut self) {
        self.line.clear();
        self.last = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_by_name() {
        let text = "# TYPE drydock_warm_adopted_total counter\ndrydock_warm_adopted_total 7\n\
                    drydock_warm_adopted_total_other 9\n";
        assert_eq!(metric_value(text, "drydock_warm_adopted_total"), Some(7));
        assert_eq!(metric_value(text, "drydock_nothing"), None);
    }

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert_eq!(
            loopback_url("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert!(loopback_url("http://127.1.2.3:9").is_ok());
        assert!(loopback_url("http://[::1]:9000/").is_ok());
        assert_eq!(
            loopback_url("http://localhost:7000").unwrap().as_str(),
            "http://127.0.0.1:7000/"
        );
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com:80",
            "https://127.0.0.1:8443",
            "http://0.0.0.0:8080",
            "http://[::]:8080",
            "not a url",
        ] {
            assert!(loopback_url(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn acks_batch_at_threshold_and_idle() {
        let t0 = Instant::now();
        let mut a = AckBatcher::default();
        assert_eq!(a.processed(0, t0), None);
        assert_eq!(a.due(), None);
        assert_eq!(a.processed(1000, t0), None);
        assert_eq!(a.due(), Some(t0 + ACK_IDLE));
        assert_eq!(
            a.processed(ACK_THRESHOLD as usize, t0),
            Some(ACK_THRESHOLD + 1000)
        );
        assert_eq!((a.pending(), a.due()), (0, None));
        assert_eq!(a.processed(5, t0), None);
        assert_eq!(a.flush(), Some(5));
        assert_eq!(a.flush(), None);
        let mut every = AckBatcher::with_threshold(1);
        assert_eq!(every.processed(3, t0), Some(3));
    }

    #[test]
    fn ack_frames_carry_big_endian_counts() {
        let f = ClientFrame::Ack(0x0102_0304).encode();
        assert_eq!(&f[..], &[0x02, 1, 2, 3, 4]);
        let i = ClientFrame::Input(Bytes::from_static(b"x")).encode();
        assert_eq!(&i[..], &[0x00, b'x']);
        assert_eq!(
            ServerFrame::decode(&[0x03, 0, 0, 0, 130]).unwrap(),
            ServerFrame::Exited(130)
        );
        assert_eq!(
            ServerFrame::decode(&[0x02]).unwrap(),
            ServerFrame::ReplayEnd
        );
        assert!(ServerFrame::decode(&[0x09]).is_err());
    }

    #[test]
    fn finder_matches_within_and_across_pieces() {
        let mut f = Finder::new(b"[ddb]$ ");
        assert!(!f.feed(b"hello "));
        assert!(f.feed(b"x[ddb]$ y"));
        f.reset();
        // Split at every position.
        let text = b"output\r\n[ddb]$ ";
        for cut in 0..text.len() {
            let mut f = Finder::new(b"[ddb]$ ");
            let (a, b) = text.split_at(cut);
            let hit = f.feed(a) || f.feed(b);
            assert!(hit, "missed when split at {cut}");
        }
        // Byte by byte.
        let mut f = Finder::new(b"[ddb]$ ");
        let hits = text.iter().filter(|&&b| f.feed(&[b])).count();
        assert_eq!(hits, 1);
        // A near miss.
        let mut f = Finder::new(b"[ddb]$ ");
        assert!(!f.feed(b"[ddb"));
        assert!(!f.feed(b"]$"));
        assert!(!f.feed(b"x"));
    }

    #[test]
    fn find_positions() {
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"aaa", b"a"), Some(0));
        assert_eq!(find(b"xyz", b"q"), None);
    }

    #[test]
    fn typed_prompt_line_does_not_contain_the_marker() {
        let (marker, line) = prompt_marker("t1");
        assert!(marker.starts_with("[ddb-t1-"));
        assert!(!line.contains(&marker));
        assert!(line.ends_with('\r'));
        // What bash prints as the prompt is the two quoted halves joined.
        let ps1 = line.split("PS1=").nth(1).unwrap().trim_end_matches('\r');
        assert_eq!(ps1.replace("''", "").trim_matches('\''), marker);
    }

    #[test]
    fn seq_checker_finds_gaps_across_frames() {
        let out = b"seq 1 5\r\n1\r\n2\r\n3\r\n4\r\n5\r\n[ddb]$ ";
        for cut in 0..out.len() {
            let mut c = SeqChecker::default();
            let (a, b) = out.split_at(cut);
            c.feed(a);
            c.feed(b);
            assert_eq!((c.last, c.gaps), (5, 0), "split at {cut}");
        }
        let mut c = SeqChecker::default();
        c.feed(b"1\r\n2\r\n4\r\n5\r\n");
        assert_eq!((c.last, c.gaps), (5, 1));
        c.restart();
        c.feed(b"1\r\n2\r\n");
        assert_eq!((c.last, c.gaps), (2, 1));
    }
}
