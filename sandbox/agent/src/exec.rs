//! `POST /v1/exec`: runs a script with `bash -c` in its own process group, with the learner's
//! clean environment, combined stdout+stderr captured up to a limit, and a timeout that kills
//! the whole group. The exit status comes from the reaper. Also used for engine health checks.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drydock_protocol::agent::{ExecRequest, ExecResult};
use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use crate::config::{shell_path, Config};
use crate::process::reaper::Reaper;
use crate::process::signals::signal_group;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024;
pub const MAX_OUTPUT: usize = 1024 * 1024;
/// How long output is still collected after the command exits (background children may
/// hold the pipe open; they are not waited for).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("could not create the output pipe for {program}: {source}")]
    Pipe {
        program: String,
        source: std::io::Error,
    },
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("lost track of {program} (pid {pid}): its exit status never arrived")]
    Lost { program: String, pid: u32 },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// `Some`: exactly this environment. `None`: the agent's own.
    pub env: Option<Vec<(String, String)>>,
    pub cwd: PathBuf,
    pub timeout: Duration,
    pub max_output: usize,
}

#[derive(Default)]
struct Collected {
    buf: Vec<u8>,
    truncated: bool,
}

/// Runs the request the way learners' shells would.
pub async fn exec(config: &Config, req: &ExecRequest) -> Result<ExecResult, ExecError> {
    let timeout = req
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(MAX_TIMEOUT);
    let max_output = req.max_output.unwrap_or(DEFAULT_MAX_OUTPUT).min(MAX_OUTPUT);
    let cwd = if config.home.is_dir() {
        config.home.clone()
    } else {
        PathBuf::from("/")
    };
    run(Job {
        program: shell_path(),
        args: vec!["-c".into(), req.script.clone().into()],
        env: Some(config.shell_env()),
        cwd,
        timeout,
        max_output,
    })
    .await
}

/// Runs a job to completion (or timeout) and collects its output.
pub async fn run(job: Job) -> Result<ExecResult, ExecError> {
    let program = job.program.display().to_string();
    let started = Instant::now();
    let (reader, writer) = std::io::pipe().map_err(|source| ExecError::Pipe {
        program: program.clone(),
        source,
    })?;
    let spawn_err = |source| ExecError::Spawn {
        program: program.clone(),
        source,
    };
    let ((), pid, exit_rx) = Reaper::global().spawn(|| {
        let mut cmd = Command::new(&job.program);
        cmd.args(&job.args)
            .current_dir(&job.cwd)
            .stdin(Stdio::null())
            .stdout(writer.try_clone().map_err(spawn_err)?)
            .stderr(writer)
            .process_group(0);
        if let Some(env) = &job.env {
            cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        }
        cmd.env_remove(drydock_protocol::agent::SECRET_ENV);
        // `cmd` (holding our copies of the pipe's write end) is dropped on return, so the
        // reader sees EOF once the command and its children are done.
        let child = cmd.spawn().map_err(spawn_err)?;
        Ok::<_, ExecError>(((), child.id()))
    })?;

    let collected = Arc::new(Mutex::new(Collected::default()));
    let (eof_tx, mut eof_rx) = oneshot::channel::<()>();
    {
        let collected = collected.clone();
        let max = job.max_output;
        std::thread::Builder::new()
            .name(format!("exec-{pid}"))
            .spawn(move || drain(reader, &collected, max, eof_tx))
            .map_err(spawn_err)?;
    }

    let deadline = tokio::time::Instant::now() + job.timeout;
    let mut exit_rx = exit_rx;
    let (status, timed_out) = tokio::select! {
        s = &mut exit_rx => (s, false),
        _ = tokio::time::sleep_until(deadline) => {
            signal_group(pid, Signal::SIGKILL);
            (exit_rx.await, true)
        }
    };
    let status = status.map_err(|_| ExecError::Lost {
        program: program.clone(),
        pid,
    })?;
    let _ = tokio::time::timeout(DRAIN_GRACE, &mut eof_rx).await;

    let c = collected.lock().unwrap_or_else(|e| e.into_inner());
    Ok(ExecResult {
        exit_code: status.code(),
        signal: status.signal(),
        output: String::from_utf8_lossy(&c.buf).into_owned(),
        truncated: c.truncated,
        timed_out,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Reads the pipe to EOF, keeping the first `max` bytes and counting the rest as truncated.
fn drain(
    mut reader: impl Read,
    collected: &Mutex<Collected>,
    max: usize,
    eof: oneshot::Sender<()>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let mut c = collected.lock().unwrap_or_else(|e| e.into_inner());
                let room = max.saturating_sub(c.buf.len());
                let keep = room.min(n);
                c.buf.extend_from_slice(&buf[..keep]);
                if keep < n {
                    c.truncated = true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = eof.send(());
}

/// Convenience for internal checks: runs `program args` with the agent's environment.
pub async fn run_simple(
    program: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<ExecResult, ExecError> {
    run(Job {
        program: program.to_path_buf(),
        args: args.iter().map(OsString::from).collect(),
        env: None,
        cwd: PathBuf::from("/"),
        timeout,
        max_output: DEFAULT_MAX_OUTPUT,
    })
    .await
}
