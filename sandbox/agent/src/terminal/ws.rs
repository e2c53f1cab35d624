//! The WebSocket side of a terminal client: decodes [`ClientFrame`]s, enforces the frame
//! rules with close codes (1003 malformed or text, 1009 too large, 1000 shell exited) and
//! sends the client's queued frames, merging queued output into large frames (streaming
//! output lingers 1 ms first; small output such as an echo goes out at once).

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::{BufMut, BytesMut};
use drydock_protocol::frame::{server_op, ClientFrame, FrameError, ServerFrame, MAX_FRAME_LEN};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::session::{ClientHandle, Outgoing, CHUNK};

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

/// Most output bytes merged into one Output frame.
pub const MERGE_LIMIT: usize = CHUNK;
/// Most bytes one batch takes from the queue before it is flushed.
const BATCH_BYTES: usize = 4 * CHUNK;

/// Output chunks at least this large mean a command is streaming (an echo or a prompt is a
/// few bytes; a PTY read under load is ~4 KiB).
const BULK_CHUNK: usize = 1024;
/// How long the writer lets streaming output queue up before sending it.
const BULK_LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// Whether `out` is a large output chunk, which the writer sends after [`BULK_LINGER`].
fn is_bulk(out: &Outgoing) -> bool {
    matches!(out, Outgoing::Frame(ServerFrame::Output(d)) if d.len() >= BULK_CHUNK)
}

/// Turns `first` and whatever else is already queued into the messages of one batch:
/// consecutive Output chunks become one frame of at most [`MERGE_LIMIT`] payload bytes (a PTY
/// hands out ~4 KiB per read, so under load this sends ~16× fewer frames), other frames and a
/// close keep their order. Stops after a close or about [`BATCH_BYTES`] bytes.
pub fn collect_batch(
    first: Outgoing,
    queue: &mut mpsc::UnboundedReceiver<Outgoing>,
    batch: &mut Vec<Message>,
) {
    let mut output = BytesMut::new();
    let flush_output = |output: &mut BytesMut, batch: &mut Vec<Message>| {
        if output.len() > 1 {
            batch.push(Message::Binary(output.split().freeze()));
        }
        output.clear();
    };
    let mut taken = 0usize;
    let mut next = Some(first);
    while let Some(out) = next.take() {
        match out {
            Outgoing::Frame(ServerFrame::Output(data)) => {
                taken += data.len();
                if output.len() > 1 && output.len() - 1 + data.len() > MERGE_LIMIT {
                    flush_output(&mut output, batch);
                }
                if output.is_empty() {
                    output.reserve(1 + data.len().max(MERGE_LIMIT.min(4 * data.len())));
                    output.put_u8(server_op::OUTPUT);
                }
                output.put_slice(&data);
            }
            Outgoing::Frame(f) => {
                flush_output(&mut output, batch);
                batch.push(Message::Binary(f.encode()));
            }
            Outgoing::Close(code, why) => {
                flush_output(&mut output, batch);
                batch.push(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason(&why).into(),
                })));
                return;
            }
        }
        if taken < BATCH_BYTES {
            next = queue.try_recv().ok();
        }
    }
    flush_output(&mut output, batch);
}

/// Serves one attached client until either side closes.
pub async fn serve(socket: WebSocket, mut handle: ClientHandle) {
    let Some(mut queue) = handle.take_receiver() else {
        return;
    };
    let (mut sink, mut stream) = socket.split();
    let (closed_tx, mut closed_rx) = oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let mut batch = Vec::new();
        'send: while let Some(first) = queue.recv().await {
            if is_bulk(&first) {
                // Streaming output: let a little more queue up so it leaves in large
                // frames (the PTY hands out ≤ 4 KiB per read, far below MERGE_LIMIT).
                tokio::time::sleep(BULK_LINGER).await;
            }
            collect_batch(first, &mut queue, &mut batch);
            for msg in batch.drain(..) {
                let last = matches!(msg, Message::Close(_));
                if sink.feed(msg).await.is_err() {
                    break 'send;
                }
                if last {
                    let _ = sink.flush().await;
                    break 'send;
                }
            }
            if sink.flush().await.is_err() {
                break;
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn output(n: usize, byte: u8) -> Outgoing {
        Outgoing::Frame(ServerFrame::Output(Bytes::from(vec![byte; n])))
    }

    fn decode(batch: &[Message]) -> Vec<ServerFrame> {
        batch
            .iter()
            .filter_map(|m| match m {
                Message::Binary(b) => Some(ServerFrame::decode(b).unwrap()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn queued_output_is_merged_up_to_the_limit_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        // 40 PTY-sized chunks (160 KiB), a size change, then more output.
        for i in 0..40u8 {
            tx.send(output(4096, i)).unwrap();
        }
        tx.send(Outgoing::Frame(ServerFrame::Size { cols: 90, rows: 30 }))
            .unwrap();
        tx.send(output(10, 0xee)).unwrap();
        let first = rx.recv().await.unwrap();
        let mut batch = Vec::new();
        collect_batch(first, &mut rx, &mut batch);
        let frames = decode(&batch);
        let sizes: Vec<usize> = frames
            .iter()
            .map(|f| match f {
                ServerFrame::Output(d) => d.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, vec![65536, 65536, 32768, 0, 10]);
        // Bytes keep their order across the merged frames.
        let mut all = Vec::new();
        for f in &frames[..3] {
            let ServerFrame::Output(d) = f else { panic!() };
            all.extend_from_slice(d);
        }
        for (i, chunk) in all.chunks(4096).enumerate() {
            assert!(chunk.iter().all(|b| *b == i as u8), "chunk {i}");
        }
        assert_eq!(frames[3], ServerFrame::Size { cols: 90, rows: 30 });
        assert!(rx.try_recv().is_err(), "everything queued was taken");
    }

    #[test]
    fn only_large_output_lingers() {
        assert!(is_bulk(&output(4095, b'y')));
        assert!(!is_bulk(&output(3, b'x')), "an echo goes out at once");
        assert!(!is_bulk(&Outgoing::Frame(ServerFrame::ReplayEnd)));
        assert!(!is_bulk(&Outgoing::Close(CLOSE_NORMAL, String::new())));
    }

    #[tokio::test]
    async fn a_batch_stops_at_a_close_and_at_its_byte_budget() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(output(5, b'a')).unwrap();
        tx.send(Outgoing::Close(CLOSE_NORMAL, "shell exited".into()))
            .unwrap();
        tx.send(output(5, b'b')).unwrap();
        let mut batch = Vec::new();
        collect_batch(rx.recv().await.unwrap(), &mut rx, &mut batch);
        assert_eq!(batch.len(), 2);
        assert!(matches!(&batch[1], Message::Close(Some(c)) if c.code == CLOSE_NORMAL));
        assert!(rx.try_recv().is_ok(), "what follows the close stays queued");

        // A single small chunk goes out alone, unchanged.
        tx.send(output(1, b'x')).unwrap();
        batch.clear();
        collect_batch(rx.recv().await.unwrap(), &mut rx, &mut batch);
        assert_eq!(
            decode(&batch),
            vec![ServerFrame::Output(Bytes::from_static(b"x"))]
        );

        // Past the budget, the rest waits for the next batch.
        for _ in 0..100 {
            tx.send(output(CHUNK, b'z')).unwrap();
        }
        batch.clear();
        collect_batch(rx.recv().await.unwrap(), &mut rx, &mut batch);
        let taken: usize = batch.iter().map(|m| m.clone().into_data().len() - 1).sum();
        assert_eq!(taken, BATCH_BYTES);
        assert!(rx.try_recv().is_ok());
    }
}
