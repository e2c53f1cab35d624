//! The terminal protocol against the real agent binary.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Agent, Term, PROMPT, WAIT};
use drydock_protocol::frame::{ClientFrame, ServerFrame, MAX_FRAME_LEN};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn runs_a_command() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/main").await;
    t.ready().await;
    let out = t.run("echo $((6*7))", "\r\n42\r\n").await;
    assert!(out.contains("42"));
    // The shell starts in HOME.
    let home = agent.home.path().display().to_string();
    t.run("pwd", &format!("\r\n{home}\r\n")).await;
}

#[tokio::test]
async fn resize_reaches_the_shell_and_every_client() {
    let agent = Agent::start();
    let mut a = agent.connect("/v1/terminals/main?cols=90&rows=30").await;
    a.ready().await;
    assert!(a.frames.contains(&ServerFrame::Size { cols: 90, rows: 30 }));
    a.run("stty size", "\r\n30 90\r\n").await;
    let mut b = agent.connect("/v1/terminals/main").await;
    b.until("ReplayEnd", WAIT, |t| t.replay_done).await;
    assert!(b.frames.contains(&ServerFrame::Size { cols: 90, rows: 30 }));
    a.send(ClientFrame::Resize {
        cols: 100,
        rows: 40,
    })
    .await;
    b.until("Size 100x40 broadcast", WAIT, |t| {
        t.frames.ends_with(&[ServerFrame::Size {
            cols: 100,
            rows: 40,
        }]) || t.frames.contains(&ServerFrame::Size {
            cols: 100,
            rows: 40,
        })
    })
    .await;
    a.run("stty size", "\r\n40 100\r\n").await;
}

#[tokio::test]
async fn scrollback_is_replayed_after_reconnect() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/main").await;
    t.ready().await;
    t.run("echo replay-$((40+2))", "replay-42\r\n").await;
    t.close().await;
    let mut t = agent.connect("/v1/terminals/main").await;
    t.until("ReplayEnd", WAIT, |t| t.replay_done).await;
    let replay = String::from_utf8_lossy(&t.output[..t.replay_len]).into_owned();
    assert!(replay.contains("replay-42"), "replay: {replay:?}");
    // Replay order: output, then Size, then ReplayEnd.
    let end = t
        .frames
        .iter()
        .position(|f| *f == ServerFrame::ReplayEnd)
        .unwrap();
    assert!(matches!(t.frames[end - 1], ServerFrame::Size { .. }));
    // Still the same shell, still interactive.
    t.run("echo again-$((1+1))", "again-2\r\n").await;
}

#[tokio::test]
async fn two_clients_see_the_same_output_and_viewers_cannot_type() {
    let agent = Agent::start();
    let mut a = agent.connect("/v1/terminals/shared").await;
    a.ready().await;
    let mut v = agent.connect("/v1/terminals/shared?mode=view").await;
    v.until("ReplayEnd", WAIT, |t| t.replay_done).await;
    let mark_v = v.mark();
    a.run("echo both-$((3*3))", "both-9\r\n").await;
    v.wait_for(mark_v, "both-9\r\n").await;
    // The viewer's input and resize are ignored.
    let mark_a = a.mark();
    v.input("echo viewer-$((5*5))\r").await;
    v.send(ClientFrame::Resize { cols: 50, rows: 10 }).await;
    a.run("echo after-$((2*2))", "after-4\r\n").await;
    assert!(!a.text_from(mark_a).contains("viewer-25"));
    assert!(!a.text_from(mark_a).contains("viewer"));
    assert!(!a.frames.contains(&ServerFrame::Size { cols: 50, rows: 10 }));
    let list: Vec<drydock_protocol::agent::TerminalInfo> = agent
        .get("/v1/terminals")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "shared");
    assert_eq!(list[0].clients, 2);
}

#[tokio::test]
async fn terminal_survives_its_client() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/bg").await;
    t.ready().await;
    t.input("sleep 1; echo finished-$((7*6))\r").await;
    drop(t);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut t = agent.connect("/v1/terminals/bg").await;
    t.until("the output produced while nobody was attached", WAIT, |t| {
        t.text().contains("finished-42")
    })
    .await;
    t.run("echo still-$((1+2))", "still-3\r\n").await;
}

#[tokio::test]
async fn chinese_text_round_trips() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/main").await;
    t.ready().await;
    t.run("echo 你好世界", "\r\n你好世界\r\n").await;
    t.run("printf '%s\\n' 容器 | wc -c", "\r\n7\r\n").await;
}

#[tokio::test]
async fn ctrl_c_stops_yes_within_a_second() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/main").await;
    t.ready().await;
    let mark = t.mark();
    t.input("yes\r").await;
    // Let it flood well past the high-water mark, acking as we go.
    t.until("1 MiB of yes", WAIT, |t| t.output.len() - mark > 1 << 20)
        .await;
    let sent = Instant::now();
    let after = t.mark();
    t.input("\x03").await;
    t.until("a prompt after Ctrl-C", WAIT, |t| {
        t.text_from(after).contains(PROMPT)
    })
    .await;
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "prompt came back after {took:?}"
    );
    t.run("echo alive-$((2+3))", "alive-5\r\n").await;
}

#[tokio::test]
async fn a_client_that_does_not_ack_pauses_the_shell_until_it_leaves() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/main").await;
    t.ready().await;
    t.auto_ack = false;
    let mark = t.mark();
    t.input("yes\r").await;
    // Without acks the agent stops after the high-water mark plus one read.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if !t.read_one(Duration::from_millis(100)).await {
            break;
        }
    }
    let got = t.output.len() - mark;
    assert!(got < 1 << 20, "read {got} bytes without acking");
    drop(t);
    // The terminal still works for an acking client.
    let mut t = agent.connect("/v1/terminals/main").await;
    t.until("ReplayEnd", WAIT, |t| t.replay_done).await;
    let mark = t.mark();
    t.input("\x03").await;
    t.wait_for(mark, PROMPT).await;
    t.run("echo ok-$((4+4))", "ok-8\r\n").await;
}

async fn expect_close(agent: &Agent, msg: Message, code: u16) {
    let mut t = agent.connect("/v1/terminals/main").await;
    t.until("ReplayEnd", WAIT, |t| t.replay_done).await;
    t.send_raw(msg).await.expect("send");
    let close = t.wait_closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), code, "close {close:?}");
    assert!(!close.reason.is_empty());
}

#[tokio::test]
async fn malformed_and_oversized_frames_close_cleanly() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/main").await;
    t.ready().await;
    t.close().await;
    expect_close(&agent, Message::Binary(Bytes::new()), 1003).await;
    expect_close(
        &agent,
        Message::Binary(Bytes::from_static(&[0x07, 1])),
        1003,
    )
    .await;
    expect_close(
        &agent,
        Message::Binary(Bytes::from_static(&[0x01, 0, 80])),
        1003,
    )
    .await;
    expect_close(
        &agent,
        Message::Binary(Bytes::from_static(&[0x02, 1])),
        1003,
    )
    .await;
    expect_close(&agent, Message::Text("hello".into()), 1003).await;
    let mut huge = vec![b'x'; MAX_FRAME_LEN + 1];
    huge[0] = 0x00;
    expect_close(&agent, Message::Binary(huge.into()), 1009).await;
    // The terminal kept running: same shell, prompt still set.
    let mut t = agent.connect("/v1/terminals/main").await;
    t.until("ReplayEnd", WAIT, |t| t.replay_done).await;
    t.run("echo survived-$((9+1))", "survived-10\r\n").await;
}

#[tokio::test]
async fn a_large_paste_arrives_whole_and_in_order() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/main").await;
    t.ready().await;
    // Raw mode, so the line discipline neither limits line length nor echoes.
    let total = 3 * (MAX_FRAME_LEN - 1) + 1000;
    let mark = t.mark();
    t.input(&format!(
        "stty raw -echo; echo raw-$((0+1)); head -c {total} > big.txt; stty sane; echo done-$((1+1))\r"
    ))
    .await;
    t.wait_for(mark, "raw-1").await;
    // A pattern that shows any lost, repeated or reordered block.
    let data: Vec<u8> = (0..total)
        .map(|i| {
            if i % 997 == 0 {
                b'A' + (i / 997 % 26) as u8
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect();
    for chunk in data.chunks(MAX_FRAME_LEN - 1) {
        // Each frame is exactly at or under the limit.
        t.send(ClientFrame::Input(Bytes::copy_from_slice(chunk)))
            .await;
    }
    t.wait_for(mark, "done-2").await;
    let path = format!("{}/big.txt", agent.home.path().display());
    let got = agent
        .get(&format!("/v1/files?path={path}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.len(), data.len());
    assert!(
        got[..] == data[..],
        "the paste arrived altered or out of order"
    );
}

#[tokio::test]
async fn shell_exit_is_reported_and_the_next_attach_starts_fresh() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/once").await;
    t.ready().await;
    let pid1 = agent_terminal_pid(&agent, "once").await;
    t.input("exit 7\r").await;
    t.until("Exited", WAIT, |t| {
        t.frames.iter().any(|f| matches!(f, ServerFrame::Exited(_)))
    })
    .await;
    assert!(t.frames.contains(&ServerFrame::Exited(7)));
    let close = t.wait_closed().await.expect("close after exit");
    assert_eq!(u16::from(close.code), 1000);
    let mut t = agent.connect("/v1/terminals/once").await;
    t.ready().await;
    let pid2 = agent_terminal_pid(&agent, "once").await;
    assert_ne!(pid1, pid2);
    t.run("echo fresh-$((1+1))", "fresh-2\r\n").await;
}

async fn agent_terminal_pid(agent: &Agent, name: &str) -> u32 {
    let list: Vec<drydock_protocol::agent::TerminalInfo> = agent
        .get("/v1/terminals")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list.iter()
        .find(|t| t.name == name)
        .and_then(|t| t.pid)
        .expect("terminal listed")
}

#[tokio::test]
async fn websocket_needs_the_secret_and_a_valid_name() {
    let agent = Agent::start();
    let err = Term::connect(&agent.addr, "/v1/terminals/main", None)
        .await
        .err()
        .unwrap();
    assert!(err.contains("401"), "{err}");
    let err = Term::connect(&agent.addr, "/v1/terminals/main", Some("wrong"))
        .await
        .err()
        .unwrap();
    assert!(err.contains("401"), "{err}");
    let err = Term::connect(&agent.addr, "/v1/terminals/Bad_Name", Some(&agent.secret))
        .await
        .err()
        .unwrap();
    assert!(err.contains("400"), "{err}");
    let r = agent.get("/v1/terminals/UPPER").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("UPPER"));
}

#[tokio::test]
async fn the_secret_is_not_in_the_shell_environment() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/main").await;
    t.ready().await;
    let out = t.run("env | grep -c SECRET", "\r\n0\r\n").await;
    assert!(out.contains("\r\n0\r\n"));
    t.run(&format!("env | grep -c {}", agent.secret), "\r\n0\r\n")
        .await;
    t.run(
        "cat /proc/$$/environ | tr '\\0' '\\n' | grep -c DRYDOCK",
        "\r\n0\r\n",
    )
    .await;
    t.run("echo $TERM $LANG", "\r\nxterm-256color C.UTF-8\r\n")
        .await;
}

#[tokio::test]
async fn sigterm_hangs_up_shells_and_exits_zero() {
    let mut agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/main").await;
    t.ready().await;
    let pid = agent_terminal_pid(&agent, "main").await;
    assert_eq!(agent.terminate(), Some(0));
    let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.contains(") Z "));
    assert!(gone, "shell {pid} still running after the agent stopped");
}

#[tokio::test]
async fn a_message_past_the_websocket_hard_limit_is_closed_with_1009() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/main").await;
    t.ready().await;
    t.close().await;
    let mut t = agent.connect("/v1/terminals/main").await;
    t.until("ReplayEnd", WAIT, |t| t.replay_done).await;
    let huge = vec![0u8; 2 << 20];
    // The agent may cut the connection while this is still being written.
    let _ = t.send_raw(Message::Binary(huge.into())).await;
    let close = t.wait_closed().await;
    eprintln!("hard-limit close: {close:?}");
    if let Some(c) = close {
        assert_eq!(u16::from(c.code), 1009);
    }
    let mut t = agent.connect("/v1/terminals/main").await;
    t.until("ReplayEnd", WAIT, |t| t.replay_done).await;
    t.run("echo fine-$((2*4))", "fine-8\r\n").await;
}

#[tokio::test]
async fn bulk_output_arrives_in_merged_frames_without_loss() {
    let agent = Agent::start();
    let mut t = agent.connect("/v1/terminals/bulk").await;
    t.ready().await;
    let mark = t.mark();
    t.input("seq 1 300000; echo BULK-$((40+2))\r").await;
    // Not reading for a moment lets output queue up to the flow-control limit, as behind a
    // busy browser: the agent then sends it in large frames.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = t.frames.len();
    t.until("the end of seq", Duration::from_secs(30), |t| {
        t.text_from(mark).contains("BULK-42\r\n")
    })
    .await;
    let largest = t.frames[first..]
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Output(d) => Some(d.len()),
            _ => None,
        })
        .max()
        .unwrap();
    assert!(
        largest > 16 * 1024 && largest <= 64 * 1024,
        "largest output frame {largest} bytes"
    );
    let text = t.text_from(mark);
    let numbers: Vec<u32> = text
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').parse().ok())
        .collect();
    assert_eq!(numbers.len(), 300000, "every line once");
    assert!(numbers.iter().enumerate().all(|(i, n)| *n == i as u32 + 1));
}
