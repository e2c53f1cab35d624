//! Test helpers: start the real agent binary on 127.0.0.1:0 with a temporary HOME, and a
//! terminal client that reads frames until a predicate holds, acking the output it reads.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use drydock_protocol::frame::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(10);
/// Prompt set by [`Term::ready`]; typed as `'DD''PROMPT> '` so the echo does not match.
pub const PROMPT: &str = "DDPROMPT> ";

pub struct Agent {
    child: Child,
    pub addr: String,
    pub secret: String,
    pub home: tempfile::TempDir,
}

impl Agent {
    pub fn start() -> Agent {
        Self::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Agent {
        let home = tempfile::tempdir().expect("temp home");
        let secret = format!("test-secret-{}-{}", std::process::id(), rand_suffix());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drydock-agent"));
        cmd.env("DRYDOCK_AGENT_SECRET", &secret)
            .env("DRYDOCK_AGENT_LISTEN", "127.0.0.1:0")
            .env("DRYDOCK_AGENT_HOME", home.path())
            .env("DRYDOCK_AGENT_FILES_ROOT", home.path())
            .env("DRYDOCK_DOCKERD", "0")
            .env("DRYDOCK_K3S", "0")
            .env("RUST_LOG", "drydock_agent=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start drydock-agent");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Agent {
            child,
            addr,
            secret,
            home,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http().get(self.url(path)).bearer_auth(&self.secret)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.http().put(self.url(path)).bearer_auth(&self.secret)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http().post(self.url(path)).bearer_auth(&self.secret)
    }

    /// Opens a terminal WebSocket with the right secret.
    pub async fn connect(&self, path: &str) -> Term {
        Term::connect(&self.addr, path, Some(&self.secret))
            .await
            .unwrap_or_else(|e| panic!("connecting to {path}: {e}"))
    }

    /// Waits for the agent to exit after SIGTERM; returns its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub struct Term {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every Output byte received, replay included.
    pub output: Vec<u8>,
    /// Every frame received, in order.
    pub frames: Vec<ServerFrame>,
    pub replay_done: bool,
    /// Output bytes received before ReplayEnd.
    pub replay_len: usize,
    pub close: Option<Option<CloseFrame>>,
    pub auto_ack: bool,
}

impl Term {
    pub async fn connect(addr: &str, path: &str, secret: Option<&str>) -> Result<Term, String> {
        let mut req = format!("ws://{addr}{path}")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        if let Some(s) = secret {
            req.headers_mut()
                .insert("authorization", format!("Bearer {s}").parse().unwrap());
        }
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), false)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Term {
            ws,
            output: Vec::new(),
            frames: Vec::new(),
            replay_done: false,
            replay_len: 0,
            close: None,
            auto_ack: true,
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    pub fn text_from(&self, mark: usize) -> String {
        String::from_utf8_lossy(&self.output[mark.min(self.output.len())..]).into_owned()
    }

    pub fn mark(&self) -> usize {
        self.output.len()
    }

    pub async fn send(&mut self, frame: ClientFrame) {
        self.ws
            .send(Message::Binary(frame.encode()))
            .await
            .expect("send frame");
    }

    pub async fn send_raw(&mut self, msg: Message) -> Result<(), String> {
        self.ws.send(msg).await.map_err(|e| e.to_string())
    }

    pub async fn input(&mut self, text: &str) {
        self.send(ClientFrame::Input(Bytes::copy_from_slice(text.as_bytes())))
            .await;
    }

    /// Reads one message; false when the connection ended (or `limit` passed).
    pub async fn read_one(&mut self, limit: Duration) -> bool {
        let msg = match tokio::time::timeout(limit, self.ws.next()).await {
            Err(_) => return true,
            Ok(None) => return false,
            Ok(Some(Err(_))) => return false,
            Ok(Some(Ok(m))) => m,
        };
        match msg {
            Message::Binary(b) => {
                let f = ServerFrame::decode(&b).expect("agent sent a malformed frame");
                match &f {
                    ServerFrame::Output(d) => {
                        self.output.extend_from_slice(d);
                        if !self.replay_done {
                            self.replay_len += d.len();
                        }
                        if self.auto_ack {
                            let n = d.len() as u32;
                            let _ = self
                                .ws
                                .send(Message::Binary(ClientFrame::Ack(n).encode()))
                                .await;
                        }
                    }
                    ServerFrame::ReplayEnd => self.replay_done = true,
                    _ => {}
                }
                self.frames.push(f);
                true
            }
            Message::Close(c) => {
                self.close = Some(c);
                true
            }
            _ => true,
        }
    }

    /// Reads until `pred` holds; panics with what was seen after `limit`.
    pub async fn until(&mut self, what: &str, limit: Duration, pred: impl Fn(&Term) -> bool) {
        let deadline = Instant::now() + limit;
        while !pred(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out after {limit:?} waiting for {what}; output so far: {:?}",
                    tail(&self.text())
                );
            }
            if !self.read_one(left.min(Duration::from_millis(200))).await && !pred(self) {
                panic!(
                    "connection ended while waiting for {what}; close {:?}; output: {:?}",
                    self.close,
                    tail(&self.text())
                );
            }
        }
    }

    /// Waits until the output after `mark` contains `needle`.
    pub async fn wait_for(&mut self, mark: usize, needle: &str) {
        self.until(&format!("{needle:?}"), WAIT, |t| {
            t.text_from(mark).contains(needle)
        })
        .await;
    }

    /// Waits for the end of the replay, turns bracketed paste off (its escapes would sit
    /// between echoed lines), sets the test prompt and waits for it.
    pub async fn ready(&mut self) {
        self.until("ReplayEnd", WAIT, |t| t.replay_done).await;
        let mark = self.mark();
        self.input("bind 'set enable-bracketed-paste off' 2>/dev/null; PS1='DD''PROMPT> '\r")
            .await;
        self.wait_for(mark, PROMPT).await;
    }

    /// Runs a command line and waits for its output to contain `needle` and the next prompt.
    pub async fn run(&mut self, line: &str, needle: &str) -> String {
        let mark = self.mark();
        self.input(&format!("{line}\r")).await;
        self.until(&format!("{needle:?} then a prompt"), WAIT, |t| {
            let s = t.text_from(mark);
            s.find(needle)
                .is_some_and(|i| s[i + needle.len()..].contains(PROMPT))
        })
        .await;
        self.text_from(mark)
    }

    /// Reads until the connection ends; returns the close frame.
    pub async fn wait_closed(&mut self) -> Option<CloseFrame> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if !self.read_one(Duration::from_millis(200)).await {
                break;
            }
        }
        self.close.clone().flatten()
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && self.read_one(Duration::from_millis(100)).await {
            if self.close.is_some() {
                break;
            }
        }
    }
}

fn tail(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(600)..].iter().collect()
}
