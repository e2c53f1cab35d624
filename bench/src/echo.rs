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
    /// Also time this many empty commands (`true`, Enter → next prompt).
    #[arg(long, default_value_t = 50)]
    pub commands: usize,
    /// The timed command.
    #[arg(long, default_value = "true")]
    pub command: String,
    /// Print when each output frame of the timed commands arrived (for profiling).
    #[arg(long)]
    pub trace_frames: bool,
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
        let t0 = term.send_input_timed(key).await?;
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

/// Runs `cmd` `n` times and returns each Enter → prompt time in ms.
pub async fn commands(
    term: &mut Terminal,
    cmd: &str,
    n: usize,
    interval: Duration,
    trace: bool,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let mut frames = vec![];
        let (_, took) = term
            .run_with(cmd, Duration::from_secs(10), |d| {
                if trace {
                    frames.push(format!(
                        "{:.2}ms:{:?}",
                        t0.elapsed().as_secs_f64() * 1e3,
                        String::from_utf8_lossy(d)
                    ));
                }
            })
            .await?;
        if trace {
            progress!(
                "{}: `{cmd}` took {:.2} ms; frames {}",
                term.what(),
                took.as_secs_f64() * 1e3,
                frames.join(" ")
            );
        }
        out.push(took.as_secs_f64() * 1e3);
        term.pump(Instant::now() + interval).await?;
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
        let cmds = commands(
            &mut term,
            &args.command,
            args.commands,
            interval,
            args.trace_frames,
        )
        .await?;
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
            let keys = keystrokes(&mut t, n, interval).await?;
            let cmds = commands(
                &mut t,
                &args.command,
                args.commands,
                interval,
                args.trace_frames,
            )
            .await?;
            direct = Some((keys, cmds));
            t.close().await;
        }
        anyhow::Ok((samples, cmds, acks, direct))
    }
    .await;
    ctx.close(&s).await;
    let (samples, cmds, acks, direct) = result?;
    let mut rows = vec![Row::new(
        "keystroke echo round trip (client → server → agent → PTY → back)",
        "ms",
        &samples,
    )
    .target(Target::median_at_most(1.0))];
    if !cmds.is_empty() {
        rows.push(Row::new(
            format!(
                "command round trip (`{}` Enter → next prompt)",
                args.command
            ),
            "ms",
            &cmds,
        ));
    }
    if let Some((keys, c)) = &direct {
        rows.push(
            Row::new(
                "keystroke echo straight to the agent (no server)",
                "ms",
                keys,
            )
            .note("profiling split"),
        );
        if !c.is_empty() {
            rows.push(
                Row::new("command round trip straight to the agent", "ms", c)
                    .note("profiling split"),
            );
        }
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
            "summary_ms": summary, "commands_summary_ms": crate::stats::summarize(&cmds),
            "direct_agent_summary_ms": direct.as_ref().and_then(|d| crate::stats::summarize(&d.0)),
            "direct_agent_commands_summary_ms": direct.as_ref().and_then(|d| crate::stats::summarize(&d.1)),
        }),
    })
}
