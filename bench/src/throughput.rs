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
    /// CPU seconds per run, by process.
    cpu: Vec<Cpu>,
}

/// CPU seconds used (user + system) since some start, by who used them.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Cpu {
    pub server: f64,
    pub agent: f64,
    /// Everything in the instance's cgroup (agent, shell, the command).
    pub instance: f64,
    /// Time the instance's cgroup was throttled by its CPU quota.
    pub instance_throttled: f64,
    pub bench: f64,
}

/// Who to watch: host pids and the instance's container id.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    pub server_pid: Option<u32>,
    pub agent_pid: Option<u32>,
    pub container_id: Option<String>,
}

/// utime + stime of a process, in seconds.
pub fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&stat)
}

/// Fields 14 and 15 of /proc/PID/stat (after the parenthesised command) at 100 Hz.
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

impl Watch {
    pub fn snapshot(&self) -> Cpu {
        let read = |p: String| std::fs::read_to_string(p).ok();
        let (mut instance, mut throttled) = (0.0, 0.0);
        if let Some(id) = &self.container_id {
            if let Some(ns) = read(format!("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage"))
                .and_then(|t| t.trim().parse::<f64>().ok())
            {
                instance = ns / 1e9;
            }
            if let Some(stat) = read(format!("/sys/fs/cgroup/cpu/docker/{id}/cpu.stat")) {
                throttled = stat
                    .lines()
                    .find_map(|l| l.strip_prefix("throttled_time "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .map(|ns| ns / 1e9)
                    .unwrap_or(0.0);
            }
        }
        Cpu {
            server: self.server_pid.and_then(process_cpu).unwrap_or(0.0),
            agent: self.agent_pid.and_then(process_cpu).unwrap_or(0.0),
            instance,
            instance_throttled: throttled,
            bench: process_cpu(std::process::id()).unwrap_or(0.0),
        }
    }
}

impl Cpu {
    fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            server: self.server - before.server,
            agent: self.agent - before.agent,
            instance: self.instance - before.instance,
            instance_throttled: self.instance_throttled - before.instance_throttled,
            bench: self.bench - before.bench,
        }
    }
}

async fn terminal_runs(
    term: &mut Terminal,
    bytes: u64,
    runs: usize,
    label: &str,
    watch: &Watch,
) -> Result<Runs> {
    let cmd = command(bytes);
    // Warm-up: page cache, binaries, allocator.
    term.run(&command(bytes.min(1_000_000)), Duration::from_secs(60))
        .await?;
    let mut r = Runs {
        mbps: vec![],
        frames: 0,
        wire_bytes: 0,
        acks: 0,
        cpu: vec![],
    };
    let timeout = Duration::from_secs(600);
    for i in 0..runs {
        let acks0 = term.acks_sent;
        let cpu0 = watch.snapshot();
        let (got, took) = term.run(&cmd, timeout).await?;
        let cpu = watch.snapshot().since(&cpu0);
        if got.bytes < bytes {
            bail!(
                "{}: received {} bytes, fewer than the {bytes} printed",
                term.what(),
                got.bytes
            );
        }
        let v = mb_per_s(bytes, took);
        progress!(
            "throughput {label} run {}/{runs}: {v:.1} MB/s ({} bytes in {} frames, mean {} B/frame, {} acks, {:.2} s; CPU s: server {:.2}, agent {:.2}, instance {:.2} (throttled {:.2}), bench {:.2})",
            i + 1,
            got.bytes,
            got.frames,
            got.bytes / got.frames.max(1),
            term.acks_sent - acks0,
            took.as_secs_f64(),
            cpu.server,
            cpu.agent,
            cpu.instance,
            cpu.instance_throttled,
            cpu.bench
        );
        r.cpu.push(cpu);
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
        let mut watch = Watch {
            server_pid: crate::memory::server_pid(ctx).ok(),
            ..Default::default()
        };
        if let Ok(c) = docker::inspect(&docker::container_name(&s.id, "node1")).await {
            watch.agent_pid = (c.pid != 0).then_some(c.pid);
            watch.container_id = Some(c.id);
        }
        let mut term = ctx.prompt(&s, "node1", "bench").await?;
        let through = terminal_runs(&mut term, args.bytes, runs, "via server", &watch).await?;
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
            let r =
                terminal_runs(&mut t, args.bytes, runs, "straight to the agent", &watch).await?;
            t.close().await;
            Some(r)
        } else {
            None
        };
        anyhow::Ok((through, raw_inst, direct, watch))
    }
    .await;
    ctx.close(&s).await;
    let (through, raw_inst, direct, _watch) = result?;
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
    let per_100mb = |f: fn(&Cpu) -> f64| -> Vec<f64> {
        through
            .cpu
            .iter()
            .map(|c| f(c) * 1e8 / args.bytes as f64)
            .collect()
    };
    if through.cpu.iter().any(|c| c.server > 0.0) {
        rows.push(
            Row::new(
                "… CPU of the server per 100 MB",
                "s",
                &per_100mb(|c| c.server),
            )
            .note("profiling"),
        );
    }
    if through.cpu.iter().any(|c| c.instance > 0.0) {
        rows.push(
            Row::new(
                "… CPU of the agent per 100 MB",
                "s",
                &per_100mb(|c| c.agent),
            )
            .note("profiling"),
        );
        rows.push(
            Row::new(
                "… CPU of the whole instance per 100 MB (agent + command)",
                "s",
                &per_100mb(|c| c.instance),
            )
            .note("profiling"),
        );
    }
    rows.push(
        Row::new(
            "… CPU of this client per 100 MB",
            "s",
            &per_100mb(|c| c.bench),
        )
        .note("profiling"),
    );
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
            "mean_bytes_per_ack": r.wire_bytes / r.acks.max(1), "cpu_s": r.cpu,
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
    fn cpu_from_proc_stat() {
        let stat =
            "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1000 0 0";
        assert_eq!(parse_stat_cpu(stat), Some(3.0));
        assert!(process_cpu(std::process::id()).is_some());
    }

    #[test]
    fn rates_are_decimal_megabytes() {
        assert_eq!(mb_per_s(100_000_000, Duration::from_secs(2)), 50.0);
    }
}
