//! The terminal relay: passes binary frames unchanged between a browser WebSocket and the
//! agent's terminal WebSocket (so the agent's flow control works end to end), counts bytes,
//! and closes the browser socket with a reason when the session or instance ends. Output the
//! agent has already sent is forwarded in batches with one flush each.
//!
//! [`relay`] is generic over `Sink`/`Stream` halves so tests can drive it with channels.

use std::pin::Pin;

use axum::extract::ws::{CloseFrame as BrowserClose, Message as BrowserMsg};
use drydock_protocol::frame::MAX_FRAME_LEN;
use futures_util::stream::Peekable;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as AgentClose;
use tokio_tungstenite::tungstenite::Message as AgentMsg;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Close code sent to the browser when its session or instance ended ("session expired",
/// "session closed", "instance removed").
pub const CLOSE_ENDED: u16 = 4000;
/// Close code sent when the agent connection broke.
pub const CLOSE_AGENT_LOST: u16 = 1011;
/// Close code sent when the server shuts down.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// How a relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEnd {
    BrowserClosed,
    AgentClosed,
    /// The session or instance ended, with this reason.
    Ended(String),
    Shutdown,
    AgentLost(String),
    BadFrame(String),
}

async fn wait_ended(rx: &mut watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(r) = rx.borrow_and_update().clone() {
            return r;
        }
        if rx.changed().await.is_err() {
            return rx
                .borrow()
                .clone()
                .unwrap_or_else(|| "session closed".to_owned());
        }
    }
}

fn browser_close(code: u16, reason: &str) -> BrowserMsg {
    BrowserMsg::Close(Some(BrowserClose {
        code,
        reason: reason.to_owned().into(),
    }))
}

fn agent_close(code: CloseCode, reason: &str) -> AgentMsg {
    AgentMsg::Close(Some(AgentClose {
        code,
        reason: reason.to_owned().into(),
    }))
}

/// Most agent messages forwarded to the browser before one flush.
const FORWARD_BATCH: usize = 16;

/// Forwards one output message and every further binary message the agent has already sent
/// (up to [`FORWARD_BATCH`]), then flushes once: one write to the browser per batch instead
/// of one per frame. Anything else the agent sent stays queued for the main loop.
async fn forward_output<BW, AR>(
    first: bytes::Bytes,
    agent_rx: &mut Peekable<AR>,
    browser_tx: &mut BW,
    metrics: &Metrics,
) -> Result<(), BW::Error>
where
    BW: Sink<BrowserMsg> + Unpin,
    AR: Stream<Item = Result<AgentMsg, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    Metrics::add(&metrics.bytes_to_browser, first.len() as u64);
    browser_tx.feed(BrowserMsg::Binary(first)).await?;
    for _ in 1..FORWARD_BATCH {
        let ready_binary = matches!(
            Pin::new(&mut *agent_rx).peek().now_or_never(),
            Some(Some(Ok(AgentMsg::Binary(_))))
        );
        if !ready_binary {
            break;
        }
        let Some(Some(Ok(AgentMsg::Binary(b)))) = agent_rx.next().now_or_never() else {
            break;
        };
        Metrics::add(&metrics.bytes_to_browser, b.len() as u64);
        browser_tx.feed(BrowserMsg::Binary(b)).await?;
    }
    browser_tx.flush().await
}

/// Relays until either side closes, the session/instance ends (`ended` turns `Some(reason)`)
/// or `shutdown` fires. Both sockets get a close frame on the way out.
#[allow(clippy::too_many_arguments)]
pub async fn relay<BW, BR, AW, AR>(
    mut browser_tx: BW,
    mut browser_rx: BR,
    mut agent_tx: AW,
    agent_rx: AR,
    mut ended: watch::Receiver<Option<String>>,
    shutdown: CancellationToken,
    metrics: &Metrics,
) -> RelayEnd
where
    BW: Sink<BrowserMsg> + Unpin,
    BR: Stream<Item = Result<BrowserMsg, axum::Error>> + Unpin,
    AW: Sink<AgentMsg> + Unpin,
    AR: Stream<Item = Result<AgentMsg, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut agent_rx = agent_rx.peekable();
    let end = loop {
        tokio::select! {
            biased;
            reason = wait_ended(&mut ended) => {
                let _ = agent_tx.send(agent_close(CloseCode::Normal, &reason)).await;
                let _ = browser_tx.send(browser_close(CLOSE_ENDED, &reason)).await;
                break RelayEnd::Ended(reason);
            }
            _ = shutdown.cancelled() => {
                let _ = agent_tx.send(agent_close(CloseCode::Away, "server restarting")).await;
                let _ = browser_tx.send(browser_close(CLOSE_GOING_AWAY, "server restarting")).await;
                break RelayEnd::Shutdown;
            }
            msg = browser_rx.next() => match msg {
                Some(Ok(BrowserMsg::Binary(b))) => {
                    if b.len() > MAX_FRAME_LEN {
                        let why = format!("frame of {} bytes exceeds the {MAX_FRAME_LEN}-byte limit", b.len());
                        let _ = browser_tx.send(browser_close(1009, &why)).await;
                        let _ = agent_tx.send(agent_close(CloseCode::Normal, "browser left")).await;
                        break RelayEnd::BadFrame(why);
                    }
                    Metrics::add(&metrics.bytes_to_agent, b.len() as u64);
                    if agent_tx.send(AgentMsg::Binary(b)).await.is_err() {
                        let _ = browser_tx.send(browser_close(CLOSE_AGENT_LOST, "terminal connection lost")).await;
                        break RelayEnd::AgentLost("sending to the agent failed".into());
                    }
                }
                Some(Ok(BrowserMsg::Text(_))) => {
                    let why = "terminal frames must be binary WebSocket messages";
                    let _ = browser_tx.send(browser_close(1003, why)).await;
                    let _ = agent_tx.send(agent_close(CloseCode::Normal, "browser left")).await;
                    break RelayEnd::BadFrame(why.into());
                }
                Some(Ok(BrowserMsg::Ping(_) | BrowserMsg::Pong(_))) => {}
                Some(Ok(BrowserMsg::Close(_))) | Some(Err(_)) | None => {
                    let _ = agent_tx.send(agent_close(CloseCode::Normal, "browser left")).await;
                    break RelayEnd::BrowserClosed;
                }
            },
            msg = agent_rx.next() => match msg {
                Some(Ok(AgentMsg::Binary(b))) => {
                    if forward_output(b, &mut agent_rx, &mut browser_tx, metrics).await.is_err() {
                        let _ = agent_tx.send(agent_close(CloseCode::Normal, "browser left")).await;
                        break RelayEnd::BrowserClosed;
                    }
                }
                Some(Ok(AgentMsg::Close(frame))) => {
                    let (code, reason) = match frame {
                        Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                        None => (1000, String::new()),
                    };
                    // 1005/1006/1015 may not be sent on the wire.
                    let code = if matches!(code, 1005 | 1006 | 1015) { 1000 } else { code };
                    let _ = browser_tx.send(browser_close(code, &reason)).await;
                    break RelayEnd::AgentClosed;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = browser_tx.send(browser_close(CLOSE_AGENT_LOST, "terminal connection lost")).await;
                    break RelayEnd::AgentLost(e.to_string());
                }
                None => {
                    let _ = browser_tx.send(browser_close(CLOSE_AGENT_LOST, "terminal connection lost")).await;
                    break RelayEnd::AgentLost("agent closed the connection".into());
                }
            },
        }
    };
    let _ = browser_tx.close().await;
    let _ = agent_tx.close().await;
    end
}
