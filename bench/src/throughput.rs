//! Terminal output throughput: a command printing `--bytes` (default 100 MB) at a prompt,
//! timed from Enter to the next prompt while the client acks output in batches (flow control
//! on, as in the UI). The ceiling is the same command's raw PTY throughput under
//! `script -qc CMD /dev/null > /dev/null`, both inside the instance (same CPU limit; timed
//! with `date +%s%N` there) and on this machine. MB are 10^6 bytes of the command's output.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use crate::client::Terminal;
use crate::report::{Report, Row, Target};
use crate::stats::summarize;
use crate::{docker, progress, Ctx};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Bytes the command prints.
    #[arg(long, default_value_t = 100_000_000)]
    pub bytes: u64,
    /// Skip the raw PTY ceiling measured inside the instance.
    #[arg(long)]
    pub no_raw_instance: bool,
    /// Skip the raw PTY ceiling measured on this machine.
    #[arg(long)]
    pub no_raw_local: bool,
    /// Also measure straight to the agent (bypassing the server) to split the relay's cost.
    #[arg(long)]
    pub direct_agent: bool,
}

const LINE: &str =
    "drydock-bench-throughput-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST";

/// The command whose output is measured (no quotes, so it nests in `script -qc '…'`).
pub fn command(bytes: u64) -> String {
    format!("yes {LINE} | head -c {bytes}")
}

/// The line that times `command` under `script` inside the instance and prints `ddb-ns=N`.
pub fn raw_instance_command(bytes: u64) -> String {
    format!(
        "s=$(date +%s%N); script -qc '{}' /dev/null >/dev/null </dev/null; e=$(date +%s%N); echo ddb-ns=$((e-s))",
        command(bytes)
    )
}

/// The nanoseconds printed as `ddb-ns=N` (the echoed command has `ddb-ns=$((`, not digits).
pub fn parse_ns(out: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(out);
    text.match_indices("ddb-ns=").find_map(|(i, m)| {
        let digits: String = text[i + m.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

struct Runs {
    mbps: Vec<f64>,
    frames: u64,
    wire_bytes: u64,
    acks: u64,
}

async fn terminal_runs(term: &mut Terminal, bytes: u64, runs: usize, label: &str) -> Result<Runs> {
    let cmd = command(bytes);
    // Warm-up: page cache, binaries, allocator.
    term.run(&command(bytes.min(1_000_000)), Duration::from_secs(60))
        .await?;
    let mut r = Runs {
        mbps: vec![],
        frames: 0,
        wire_bytes: 0,
        acks: 0,
    };
    let timeout = Duration::from_secs(600);
    for i in 0..runs {
        let acks0 = term.acks_sent;
        let (got, took) = term.run(&cmd, timeout).await?;
        if got.bytes < bytes {
            bail!(
                "{}: received {} bytes, fewer than the {bytes} printed",
                term.what(),
                got.bytes
            );
        }
        let v = mb_per_s(bytes, took);
        progress!(
            "throughput {label} run {}/{runs}: {v:.1} MB/s ({} bytes in {} frames, mean {} B/frame, {} acks, {:.2} s)",
            i + 1,
            got.bytes,
            got.frames,
            got.bytes / got.frames.max(1),
            term.acks_sent - acks0,
            took.as_secs_f64()
        );
        r.mbps.push(v);
        r.frames += got.frames;
        r.wire_bytes += got.bytes;
        r.acks += term.acks_sent - acks0;
    }
    Ok(r)
}

async fn raw_in_instance(term: &mut Terminal, bytes: u64, runs: usize) -> Result<Vec<f64>> {
    let mut out = vec![];
    for i in 0..runs {
        term.captured.clear();
        term.capture = true;
        let r = term
            .run(&raw_instance_command(bytes), Duration::from_secs(600))
            .await;
        term.capture = false;
        r?;
        let ns = parse_ns(&term.captured)
            .ok_or_else(|| anyhow!("{}: no ddb-ns=… in the output", term.what()))?;
        let v = mb_per_s(bytes, Duration::from_nanos(ns));
        progress!("raw PTY in the instance run {}/{runs}: {v:.1} MB/s", i + 1);
        out.push(v);
    }
    Ok(out)
}

/// Times `script -qc CMD /dev/null > /dev/null` on this machine.
pub async fn raw_local(bytes: u64, runs: usize) -> Result<Vec<f64>> {
    let mut out = vec![];
    for i in 0..runs {
        let t0 = Instant::now();
        let status = tokio::process::Command::new("script")
            .args(["-qc", &command(bytes), "/dev/null"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .context("running script(1) (util-linux) locally")?;
        let took = t0.elapsed();
        if !status.success() {
            bail!("script -qc … exited with {status}");
        }
        let v = mb_per_s(bytes, took);
        progress!("raw PTY on this machine run {}/{runs}: {v:.1} MB/s", i + 1);
        out.push(v);
    }
    Ok(out)
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<Report> {
    let runs = ctx.runs_or(3);
    let opened = ctx.open_session().await?;
    let s = opened.session.clone();
    let result = async {
        let mut term = ctx.prompt(&s, "node1", "bench").await?;
        let through = terminal_runs(&mut term, args.bytes, runs, "via server").await?;
        let raw_inst = if args.no_raw_instance {
            vec![]
        } else {
            raw_in_instance(&mut term, args.bytes, runs).await?
        };
        term.close().await;
        let direct = if args.direct_agent {
            let (url, secret) =
                docker::direct_agent_terminal(&s.id, "node1", "bench-direct").await?;
            let mut t =
                Terminal::connect(&url, Some(&secret), format!("agent terminal {url}")).await?;
            t.set_prompt("direct", Duration::from_secs(30)).await?;
            let r = terminal_runs(&mut t, args.bytes, runs, "straight to the agent").await?;
            t.close().await;
            Some(r)
        } else {
            None
        };
        anyhow::Ok((through, raw_inst, direct))
    }
    .await;
    ctx.close(&s).await;
    let (through, raw_inst, direct) = result?;
    let raw_loc = if args.no_raw_local {
        vec![]
    } else {
        raw_local(args.bytes, runs).await?
    };
    let mb = args.bytes as f64 / 1e6;
    let mut rows = vec![];
    let ceiling = summarize(&raw_inst)
        .or_else(|| summarize(&raw_loc))
        .map(|s| s.median);
    let mut row = Row::new(
        format!("terminal throughput, {mb:.0} MB, flow control on (via server)"),
        "MB/s",
        &through.mbps,
    );
    if let (Some(c), Some(t)) = (ceiling, summarize(&through.mbps)) {
        row = row.target(Target::median_at_least(0.8 * c)).note(format!(
            "{:.0} % of the raw PTY median",
            100.0 * t.median / c
        ));
    }
    rows.push(row);
    if let Some(d) = &direct {
        rows.push(
            Row::new(
                "terminal throughput straight to the agent (no server)",
                "MB/s",
                &d.mbps,
            )
            .note("profiling split"),
        );
    }
    if !raw_inst.is_empty() {
        rows.push(Row::new(
            "raw PTY ceiling: `script` inside the instance (same CPU limit)",
            "MB/s",
            &raw_inst,
        ));
    }
    if !raw_loc.is_empty() {
        rows.push(Row::new(
            "raw PTY ceiling: `script` on the host",
            "MB/s",
            &raw_loc,
        ));
    }
    let per = |r: &Runs| {
        json!({
            "mb_per_s": r.mbps, "frames": r.frames, "wire_bytes": r.wire_bytes,
            "mean_frame_bytes": r.wire_bytes / r.frames.max(1), "acks": r.acks,
            "mean_bytes_per_ack": r.wire_bytes / r.acks.max(1),
        })
    };
    Ok(Report {
        measurement: "throughput".into(),
        rows,
        details: json!({
            "command": command(args.bytes), "runs": runs,
            "via_server": per(&through),
            "direct_agent": direct.as_ref().map(per),
            "raw_instance_mb_per_s": raw_inst, "raw_local_mb_per_s": raw_loc,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_is_parsed_from_output_not_from_the_echo() {
        let out = b"$ s=$(date +%s%N); ...; echo ddb-ns=$((e-s))\r\nddb-ns=1234567\r\n[ddb-x]$ ";
        assert_eq!(parse_ns(out), Some(1_234_567));
        assert_eq!(parse_ns(b"echo ddb-ns=$((e-s))"), None);
    }

    #[test]
    fn the_command_nests_in_single_quotes() {
        let c = raw_instance_command(1000);
        assert!(!command(1000).contains('\''));
        assert!(c.contains("script -qc 'yes drydock-bench-throughput-"));
        assert!(c.contains("head -c 1000'"));
    }

    #[test]
    fn rates_are_decimal_megabytes() {
        assert_eq!(mb_per_s(100_000_000, Duration::from_secs(2)), 50.0);
    }
}
