//! The WebSocket side of a terminal client: decodes [`ClientFrame`]s, enforces the frame
//! rules with close codes (1003 malformed or text, 1009 too large, 1000 shell exited) and
//! sends the client's queued frames.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use drydock_protocol::frame::{ClientFrame, FrameError, MAX_FRAME_LEN};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::oneshot;

use super::session::{ClientHandle, Outgoing};

/// Hard cap configured on the WebSocket itself. Messages between [`MAX_FRAME_LEN`] and this
/// are read whole and answered with a clean 1009 close; past it the connection is cut.
pub const WS_HARD_LIMIT: usize = 4 * MAX_FRAME_LEN;

pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_UNSUPPORTED: u16 = 1003;
pub const CLOSE_TOO_BIG: u16 = 1009;
/// How long the peer gets to answer our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

fn reason(text: &str) -> String {
    // A close reason is at most 123 bytes.
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Serves one attached client until either side closes.
pub async fn serve(socket: WebSocket, mut handle: ClientHandle) {
    let Some(mut queue) = handle.take_receiver() else {
        return;
    };
    let (mut sink, mut stream) = socket.split();
    let (closed_tx, mut closed_rx) = oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        while let Some(out) = queue.recv().await {
            match out {
                Outgoing::Frame(f) => {
                    if sink.send(Message::Binary(f.encode())).await.is_err() {
                        break;
                    }
                }
                Outgoing::Close(code, why) => {
                    let frame = CloseFrame {
                        code,
                        reason: reason(&why).into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
            }
        }
        let _ = closed_tx.send(());
    });

    let name = handle.terminal().name.clone();
    let mut closing: Option<tokio::time::Instant> = None;
    let mut writer_done = false;
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = &mut closed_rx, if !writer_done => {
                writer_done = true;
                closing.get_or_insert(tokio::time::Instant::now() + CLOSE_GRACE);
                continue;
            }
            _ = tokio::time::sleep_until(closing.unwrap_or_else(tokio::time::Instant::now)), if closing.is_some() => break,
        };
        let msg = match msg {
            None => break,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                if closing.is_none() && format!("{e}").contains("Space limit exceeded") {
                    handle.close(
                        CLOSE_TOO_BIG,
                        format!("message exceeds the {WS_HARD_LIMIT}-byte limit"),
                    );
                    // The stream is no longer usable; wait for the close frame to go out.
                    let _ = tokio::time::timeout(CLOSE_GRACE, &mut closed_rx).await;
                }
                tracing::debug!("terminal {name:?}: websocket error: {e}");
                break;
            }
        };
        if closing.is_some() {
            // Waiting for the peer's close; everything else is ignored.
            // (After the peer's Close, polling once more flushes our reply.)
            continue;
        }
        match msg {
            Message::Binary(data) => {
                if data.len() > MAX_FRAME_LEN {
                    let e = FrameError::TooLarge(data.len());
                    handle.close(CLOSE_TOO_BIG, e.to_string());
                    closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                    continue;
                }
                match ClientFrame::decode(&data) {
                    Ok(ClientFrame::Input(bytes)) => handle.input(bytes).await,
                    Ok(ClientFrame::Resize { cols, rows }) => handle.resize(cols, rows),
                    Ok(ClientFrame::Ack(n)) => handle.ack(n),
                    Err(e) => {
                        let code = if matches!(e, FrameError::TooLarge(_)) {
                            CLOSE_TOO_BIG
                        } else {
                            CLOSE_UNSUPPORTED
                        };
                        handle.close(code, e.to_string());
                        closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                    }
                }
            }
            Message::Text(_) => {
                handle.close(
                    CLOSE_UNSUPPORTED,
                    "text messages are not part of the terminal protocol; send binary frames"
                        .into(),
                );
                closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
            }
            Message::Close(_) => {
                // The peer closes: the close reply goes out on the next poll.
                closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
            }
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    // Detach first (wakes a reader paused on our unacknowledged bytes), then let the writer
    // finish sending a pending close frame.
    drop(handle);
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_millis(500), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}
