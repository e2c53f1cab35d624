//! The terminal relay driven through channels (no sockets): frames pass unchanged both ways,
//! bytes are counted, and the browser gets a close frame with the reason when the session ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::Message as B;
use bytes::Bytes;
use drydock::metrics::Metrics;
use drydock::relay::{relay, RelayEnd, CLOSE_ENDED};
use drydock_protocol::frame::{ClientFrame, ServerFrame};
use futures_util::{Sink, Stream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as A;
use tokio_util::sync::CancellationToken;

fn sink<T: Send + 'static>(tx: mpsc::UnboundedSender<T>) -> impl Sink<T> + Unpin {
    Box::pin(futures_util::sink::unfold(tx, |tx, m: T| async move {
        tx.send(m).map_err(|_| ())?;
        Ok::<_, ()>(tx)
    }))
}

fn stream<T: Send + 'static, E>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = Result<T, E>> + Unpin {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|m| (Ok(m), rx))
    }))
}

struct Harness {
    to_relay_from_browser: mpsc::UnboundedSender<B>,
    browser_got: mpsc::UnboundedReceiver<B>,
    to_relay_from_agent: mpsc::UnboundedSender<A>,
    agent_got: mpsc::UnboundedReceiver<A>,
    ended: watch::Sender<Option<String>>,
    metrics: Arc<Metrics>,
    task: tokio::task::JoinHandle<RelayEnd>,
}

fn start() -> Harness {
    let (btx_in, brx_in) = mpsc::unbounded_channel::<B>();
    let (btx_out, brx_out) = mpsc::unbounded_channel::<B>();
    let (atx_in, arx_in) = mpsc::unbounded_channel::<A>();
    let (atx_out, arx_out) = mpsc::unbounded_channel::<A>();
    let (ended, ended_rx) = watch::channel(None);
    let metrics = Arc::new(Metrics::default());
    let m = metrics.clone();
    let task = tokio::spawn(async move {
        relay(
            sink(btx_out),
            stream::<_, axum::Error>(brx_in),
            sink(atx_out),
            stream::<_, tokio_tungstenite::tungstenite::Error>(arx_in),
            ended_rx,
            CancellationToken::new(),
            &m,
        )
        .await
    });
    Harness {
        to_relay_from_browser: btx_in,
        browser_got: brx_out,
        to_relay_from_agent: atx_in,
        agent_got: arx_out,
        ended,
        metrics,
        task,
    }
}

#[tokio::test]
async fn frames_pass_unchanged_both_ways_and_are_counted() {
    let mut h = start();
    let input = ClientFrame::Input(Bytes::from_static("echo 你好\r".as_bytes())).encode();
    let resize = ClientFrame::Resize {
        cols: 100,
        rows: 30,
    }
    .encode();
    let ack = ClientFrame::Ack(4096).encode();
    for f in [&input, &resize, &ack] {
        h.to_relay_from_browser.send(B::Binary(f.clone())).unwrap();
        match h.agent_got.recv().await.unwrap() {
            A::Binary(b) => assert_eq!(&b, f),
            other => panic!("agent got {other:?}"),
        }
    }
    let out = ServerFrame::Output(Bytes::from_static(b"42\r\n")).encode();
    let end = ServerFrame::ReplayEnd.encode();
    for f in [&out, &end] {
        h.to_relay_from_agent.send(A::Binary(f.clone())).unwrap();
        match h.browser_got.recv().await.unwrap() {
            B::Binary(b) => assert_eq!(&b, f),
            other => panic!("browser got {other:?}"),
        }
    }
    assert_eq!(
        h.metrics.bytes_to_agent.load(Ordering::Relaxed) as usize,
        input.len() + resize.len() + ack.len()
    );
    assert_eq!(
        h.metrics.bytes_to_browser.load(Ordering::Relaxed) as usize,
        out.len() + end.len()
    );
    h.to_relay_from_browser.send(B::Close(None)).unwrap();
    assert_eq!(h.task.await.unwrap(), RelayEnd::BrowserClosed);
    assert!(matches!(h.agent_got.recv().await, Some(A::Close(_))));
}

#[tokio::test]
async fn session_end_closes_the_browser_with_the_reason() {
    let mut h = start();
    h.ended.send(Some("session expired".into())).unwrap();
    match h.browser_got.recv().await.unwrap() {
        B::Close(Some(f)) => {
            assert_eq!(f.code, CLOSE_ENDED);
            assert_eq!(f.reason.as_str(), "session expired");
        }
        other => panic!("browser got {other:?}"),
    }
    assert!(matches!(h.agent_got.recv().await, Some(A::Close(_))));
    assert_eq!(
        h.task.await.unwrap(),
        RelayEnd::Ended("session expired".into())
    );
}

#[tokio::test]
async fn agent_close_and_text_frames_end_the_relay() {
    let mut h = start();
    h.to_relay_from_agent.send(A::Close(None)).unwrap();
    assert!(matches!(h.browser_got.recv().await, Some(B::Close(Some(f))) if f.code == 1000));
    assert_eq!(h.task.await.unwrap(), RelayEnd::AgentClosed);

    let mut h = start();
    h.to_relay_from_browser
        .send(B::Text("ls\r".into()))
        .unwrap();
    assert!(matches!(h.browser_got.recv().await, Some(B::Close(Some(f))) if f.code == 1003));
    assert!(matches!(h.task.await.unwrap(), RelayEnd::BadFrame(_)));

    let mut h = start();
    drop(h.to_relay_from_agent);
    assert!(matches!(h.browser_got.recv().await, Some(B::Close(Some(f))) if f.code == 1011));
    assert!(matches!(h.task.await.unwrap(), RelayEnd::AgentLost(_)));
}

/// A browser sink that records every message and every flush (as `None`).
struct Recording(Arc<std::sync::Mutex<Vec<Option<B>>>>);

impl Sink<B> for Recording {
    type Error = ();
    fn poll_ready(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), ()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn start_send(self: std::pin::Pin<&mut Self>, m: B) -> Result<(), ()> {
        self.0.lock().unwrap().push(Some(m));
        Ok(())
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), ()>> {
        let mut log = self.0.lock().unwrap();
        if matches!(log.last(), Some(Some(_))) {
            log.push(None);
        }
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), ()>> {
        self.poll_flush(cx)
    }
}

#[tokio::test]
async fn output_the_agent_already_sent_is_forwarded_in_batches_in_order() {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (_btx_in, brx_in) = mpsc::unbounded_channel::<B>();
    let (atx_in, arx_in) = mpsc::unbounded_channel::<A>();
    let (atx_out, _arx_out) = mpsc::unbounded_channel::<A>();
    let (_ended, ended_rx) = watch::channel(None);
    let metrics = Metrics::default();
    // 40 output frames and a close are waiting before the relay starts.
    for i in 0..40u8 {
        let f = ServerFrame::Output(Bytes::from(vec![i; 100])).encode();
        atx_in.send(A::Binary(f)).unwrap();
    }
    atx_in.send(A::Close(None)).unwrap();
    let end = relay(
        Recording(log.clone()),
        stream::<_, axum::Error>(brx_in),
        sink(atx_out),
        stream::<_, tokio_tungstenite::tungstenite::Error>(arx_in),
        ended_rx,
        CancellationToken::new(),
        &metrics,
    )
    .await;
    assert_eq!(end, RelayEnd::AgentClosed);
    let log = log.lock().unwrap();
    let outputs: Vec<u8> = log
        .iter()
        .flatten()
        .filter_map(|m| match m {
            B::Binary(b) => match ServerFrame::decode(b).unwrap() {
                ServerFrame::Output(d) => Some(d[0]),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        outputs,
        (0..40).collect::<Vec<u8>>(),
        "every frame, in order"
    );
    assert!(
        matches!(log.iter().flatten().last(), Some(B::Close(_))),
        "the agent's close comes last"
    );
    let flushes = log.iter().filter(|m| m.is_none()).count();
    // 16 frames per flush: 3 batches of output, and the close.
    assert!(flushes <= 4, "{flushes} flushes for 40 frames");
    assert_eq!(metrics.bytes_to_browser.load(Ordering::Relaxed), 40 * 101);
}
