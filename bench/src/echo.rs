//! Keystroke echo round trip at an idle shell prompt, through the full path (client →
//! server → agent → PTY → readline and back): the time from sending one Input frame to the
//! first Output frame carrying its echo. Keys alternate between `x` (echo `x`) and
//! Backspace (echo contains `\b`), so the line never grows.
//!
//! With `--direct-agent` the same is measured straight against the instance's agent (its
//! address and secret read with `docker inspect`), which splits the server relay's share.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use drydock_protocol::frame::ServerFrame;
use serde_json::json;

use crate::client::{Finder, Terminal};
use crate::report::{Report, Row, Target};
use crate::{docker, progress, Ctx};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Milliseconds between keystrokes (output is read and acked meanwhile).
    #[arg(long, default_value_t = 20)]
    pub interval_ms: u64,
    /// Keystrokes before measuring (not recorded).
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Also measure straight to the agent (bypassing the server) to split the relay's cost.
    #[arg(long)]
    pub direct_agent: bool,
}

/// Types `n` keystrokes, one every `interval`, and returns each echo round trip in ms.
pub async fn keystrokes(term: &mut Terminal, n: usize, interval: Duration) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (key, echo): (&[u8], &[u8]) = if i % 2 == 0 {
            (b"x", b"x")
        } else {
            (b"\x7f", b"\x08")
        };
        let mut f = Finder::new(echo);
        term.send_input(key).await?;
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(10);
        loop {
            match term.next_frame(deadline).await? {
                ServerFrame::Output(d) if f.feed(&d) => break,
                ServerFrame::Exited(s) => bail!("{}: shell exited ({s})", term.what()),
                _ => {}
            }
        }
        out.push(t0.elapsed().as_secs_f64() * 1e3);
        if !interval.is_zero() {
            term.pump(Instant::now() + interval).await?;
        }
    }
    // An odd count leaves an `x` on the line.
    if n % 2 == 1 {
        term.send_input(b"\x7f").await?;
        term.pump(Instant::now() + Duration::from_millis(50))
            .await?;
    }
    Ok(out)
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<Report> {
    let n = ctx.runs_or(200);
    let interval = Duration::from_millis(args.interval_ms);
    let opened = ctx.open_session().await?;
    let s = opened.session.clone();
    let result = async {
        let mut term = ctx.prompt(&s, "node1", "bench").await?;
        keystrokes(&mut term, args.warmup, interval).await?;
        let samples = keystrokes(&mut term, n, interval).await?;
        let acks = term.acks_sent;
        term.close().await;
        let mut direct = None;
        if args.direct_agent {
            let (url, secret) =
                docker::direct_agent_terminal(&s.id, "node1", "bench-direct").await?;
            let mut t =
                Terminal::connect(&url, Some(&secret), format!("agent terminal {url}")).await?;
            t.set_prompt("direct", Duration::from_secs(30)).await?;
            keystrokes(&mut t, args.warmup, interval).await?;
            direct = Some(keystrokes(&mut t, n, interval).await?);
            t.close().await;
        }
        anyhow::Ok((samples, acks, direct))
    }
    .await;
    ctx.close(&s).await;
    let (samples, acks, direct) = result?;
    let mut rows = vec![Row::new(
        "keystroke echo round trip (client → server → agent → PTY → back)",
        "ms",
        &samples,
    )
    .target(Target::median_at_most(1.0))];
    if let Some(d) = &direct {
        rows.push(
            Row::new("keystroke echo straight to the agent (no server)", "ms", d)
                .note("profiling split"),
        );
    }
    let summary = crate::stats::summarize(&samples);
    progress!(
        "echo: {n} keystrokes, median {:.3} ms, p95 {:.3} ms",
        summary.map(|s| s.median).unwrap_or(f64::NAN),
        summary.map(|s| s.p95).unwrap_or(f64::NAN)
    );
    Ok(Report {
        measurement: "echo".into(),
        rows,
        details: json!({
            "keystrokes": n, "interval_ms": args.interval_ms, "acks_sent": acks,
            "summary_ms": summary, "direct_agent_summary_ms": direct.as_deref().and_then(crate::stats::summarize),
        }),
    })
}
