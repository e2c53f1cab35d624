//! `drydock-bench`: measures a running Drydock server through its public API and terminal
//! protocol, the way a browser uses them (no browser needed): session ready time, keystroke
//! echo, terminal throughput, memory, and scale. Results print as Markdown table rows for
//! docs/benchmarks.md, or as JSON.
//!
//! Traffic goes only to the loopback server given by `--url` (and, with `--direct-agent`,
//! to the benchmark's own instance containers on the local Docker bridge). Every session the
//! tool creates is deleted at the end, on error, and on Ctrl-C.

mod client;
mod docker;
mod echo;
mod memory;
mod ready;
mod report;
mod scale;
mod stats;
mod throughput;

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};

use client::{Api, Session, Terminal};
use report::{Machine, Report};

#[derive(Parser, Debug)]
#[command(
    name = "drydock-bench",
    version,
    about = "Benchmarks a running Drydock server (loopback only) through its public API"
)]
struct Cli {
    /// The server, e.g. http://127.0.0.1:8080 (must be a loopback address).
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8080",
        env = "DRYDOCK_BENCH_URL"
    )]
    url: String,
    /// Repetitions (sessions for `ready`, keystrokes for `echo`, commands for `throughput`,
    /// sessions for `memory`) [default: per measurement].
    #[arg(long, global = true)]
    runs: Option<usize>,
    /// Print the results as JSON instead of text and Markdown rows.
    #[arg(long, global = true)]
    json: bool,
    /// The server's process id (for memory figures) [default: the process listening on the
    /// --url port].
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Session template.
    #[arg(long, global = true, default_value = "docker")]
    template: String,
    /// Seconds an instance may take to become ready.
    #[arg(long, global = true, default_value_t = 120)]
    ready_timeout_secs: u64,
    /// WebSocket read buffer of this client in bytes [default: tungstenite's 128 KiB]
    /// (profiling: tungstenite zero-fills it before each read).
    #[arg(long, global = true)]
    ws_read_buffer: Option<usize>,
    /// Output bytes pending before an ack is sent [default: 32768, as the UI] (profiling: 1
    /// acks every output frame at once, which also carries the TCP ACK at once).
    #[arg(long, global = true)]
    ack_threshold: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Session ready time (POST → shell prompt), cold; adding an instance.
    Ready(ready::Args),
    /// Keystroke echo round trip at a shell prompt.
    Echo(echo::Args),
    /// Terminal output throughput with flow control, against the raw PTY ceiling.
    Throughput(throughput::Args),
    /// Server RSS per session and per terminal; an idle instance's footprint.
    Memory(memory::Args),
    /// Concurrent sessions under the echo p95 limit; many terminals streaming at once.
    Scale(scale::Args),
    /// Everything above in one run (memory first, on a fresh server; scale kept small).
    All(AllArgs),
}

#[derive(clap::Args, Debug)]
struct AllArgs {
    /// Sessions measured by `memory` (it runs first, on the server as it is).
    #[arg(long, default_value_t = 5)]
    memory_sessions: usize,
    /// Sessions created by `ready`.
    #[arg(long, default_value_t = 5)]
    ready_runs: usize,
    /// Keystrokes typed by `echo`.
    #[arg(long, default_value_t = 200)]
    echo_keystrokes: usize,
    /// Commands timed by `throughput`.
    #[arg(long, default_value_t = 3)]
    throughput_runs: usize,
    /// Also measure echo and throughput straight to the agent (profiling split).
    #[arg(long)]
    direct_agent: bool,
    /// Skip the scale measurement (the slowest).
    #[arg(long)]
    skip_scale: bool,
    /// Sessions at most in the scale ramp.
    #[arg(long, default_value_t = 20)]
    max_sessions: usize,
    /// Terminals streaming at once in the scale measurement.
    #[arg(long, default_value_t = 100)]
    terminals: usize,
}

/// What every measurement needs.
pub struct Ctx {
    pub api: Api,
    pub template: String,
    pub ready_timeout: Duration,
    pub runs: Option<usize>,
    pub server_pid: Option<u32>,
}

/// A session whose first instance is ready, with the time each step took.
pub struct Opened {
    pub session: Session,
    /// POST answered.
    pub created: Duration,
    /// node1 reported `ready` (from the POST).
    pub ready: Duration,
    /// node1 came from the server's warm pool.
    pub warm: bool,
}

impl Ctx {
    /// The same context with `--runs` replaced.
    pub fn with_runs(&self, runs: Option<usize>) -> Ctx {
        Ctx {
            api: self.api.clone(),
            template: self.template.clone(),
            ready_timeout: self.ready_timeout,
            runs,
            server_pid: self.server_pid,
        }
    }

    pub fn runs_or(&self, default: usize) -> usize {
        self.runs.unwrap_or(default).max(1)
    }

    /// Creates a session and waits until node1 is ready.
    pub async fn open_session(&self) -> Result<Opened> {
        let adopted_before = self.api.warm_adopted().await;
        let t0 = Instant::now();
        let info = self.api.create_session(&self.template).await?;
        let created = t0.elapsed();
        let session = Session::from(&info);
        let ready_in_answer = info
            .instances
            .iter()
            .any(|i| i.name == "node1" && i.state == "ready");
        if !ready_in_answer {
            self.api
                .wait_ready(&session, "node1", self.ready_timeout)
                .await?;
        }
        let ready = t0.elapsed();
        // Warm: the server counted an adoption (an instance that starts fast can already be
        // ready in a cold POST's answer); servers without the counter: ready in the answer.
        let warm = match (adopted_before, self.api.warm_adopted().await) {
            (Some(before), Some(after)) => after > before,
            _ => ready_in_answer,
        };
        Ok(Opened {
            session,
            created,
            ready,
            warm,
        })
    }

    /// Attaches terminal `term` of `node` and sets the prompt marker.
    pub async fn prompt(&self, s: &Session, node: &str, term: &str) -> Result<Terminal> {
        let mut t = self.api.terminal(s, node, term).await?;
        t.set_prompt(term, Duration::from_secs(30)).await?;
        Ok(t)
    }

    /// Deletes a session, logging (not failing) on error; the cleanup retries later.
    pub async fn close(&self, s: &Session) {
        if let Err(e) = self.api.delete_session(s).await {
            eprintln!("warning: {e:#}");
        }
    }
}

/// Progress lines go to stderr so stdout stays clean for --json.
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => { eprintln!("[drydock-bench] {}", format!($($arg)*)) };
}

async fn run(cli: &Cli, ctx: &Ctx) -> Result<Vec<Report>> {
    let health =
        ctx.api.healthz().await.with_context(|| {
            format!("the server at {} does not answer /healthz", ctx.api.base())
        })?;
    progress!("server {} healthy: {health}", ctx.api.base());
    let mut reports = Vec::new();
    match &cli.command {
        Command::Ready(a) => reports.push(ready::run(ctx, a).await?),
        Command::Echo(a) => reports.push(echo::run(ctx, a).await?),
        Command::Throughput(a) => reports.push(throughput::run(ctx, a).await?),
        Command::Memory(a) => reports.push(memory::run(ctx, a).await?),
        Command::Scale(a) => reports.push(scale::run(ctx, a).await?),
        Command::All(a) => {
            let parse = |args: &[&str]| -> Result<Command> {
                let mut argv = vec!["drydock-bench"];
                argv.extend_from_slice(args);
                Ok(Cli::try_parse_from(argv)?.command)
            };
            let max = a.max_sessions.to_string();
            let terms = a.terminals.to_string();
            let direct: &[&str] = if a.direct_agent {
                &["--direct-agent"]
            } else {
                &[]
            };
            // (measurement, its --runs); memory first, while the server's RSS is fresh.
            let mut plan = vec![
                (parse(&["memory"])?, Some(a.memory_sessions)),
                (parse(&["ready"])?, Some(a.ready_runs)),
                (
                    parse(&[&["echo"], direct].concat())?,
                    Some(a.echo_keystrokes),
                ),
                (
                    parse(&[&["throughput"], direct].concat())?,
                    Some(a.throughput_runs),
                ),
            ];
            if !a.skip_scale {
                plan.push((
                    parse(&["scale", "--max-sessions", &max, "--terminals", &terms])?,
                    None,
                ));
            }
            for (cmd, runs) in plan {
                let ctx = &ctx.with_runs(runs);
                let r = match &cmd {
                    Command::Ready(a) => ready::run(ctx, a).await,
                    Command::Echo(a) => echo::run(ctx, a).await,
                    Command::Throughput(a) => throughput::run(ctx, a).await,
                    Command::Memory(a) => memory::run(ctx, a).await,
                    Command::Scale(a) => scale::run(ctx, a).await,
                    Command::All(_) => unreachable!("all is not nested"),
                };
                match r {
                    Ok(r) => reports.push(r),
                    Err(e) => {
                        progress!("{cmd:?} failed: {e:#}");
                        reports.push(Report {
                            measurement: format!("{cmd:?}"),
                            rows: vec![report::Row::missing(
                                format!("{cmd:?}").split('(').next().unwrap_or("?"),
                                &format!("failed: {e:#}"),
                            )],
                            details: serde_json::Value::Null,
                        });
                    }
                }
                // Anything a failed measurement left behind goes before the next one.
                ctx.api.cleanup().await;
            }
        }
    }
    Ok(reports)
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut s) = signal(SignalKind::terminate()) {
            s.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let url = client::loopback_url(&cli.url)?;
    if let Some(n) = cli.ack_threshold {
        client::set_ack_threshold(n);
    }
    if let Some(n) = cli.ws_read_buffer {
        client::set_ws_read_buffer(n);
    }
    let machine = Machine::describe();
    let ctx = Ctx {
        api: Api::new(url)?,
        template: cli.template.clone(),
        ready_timeout: Duration::from_secs(cli.ready_timeout_secs),
        runs: cli.runs,
        server_pid: cli.server_pid,
    };
    let result = tokio::select! {
        r = run(&cli, &ctx) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted (Ctrl-C)")),
        _ = terminated() => Err(anyhow!("terminated (SIGTERM)")),
    };
    let left = ctx.api.owned_count();
    if left > 0 {
        progress!("deleting {left} session(s) left behind");
        ctx.api.cleanup().await;
    }
    let reports = result?;
    if cli.json {
        let out = serde_json::json!({ "machine": machine, "reports": reports });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}\n", machine.markdown());
        println!("{}", report::markdown(&reports));
        for r in &reports {
            if !r.details.is_null() {
                println!(
                    "\n<details><summary>{} details</summary>\n\n```json\n{}\n```\n</details>",
                    r.measurement,
                    serde_json::to_string_pretty(&r.details)?
                );
            }
        }
    }
    Ok(())
}
