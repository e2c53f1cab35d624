//! Signal helpers: sending signals to processes and process groups, and waiting for the
//! agent's own termination signals (SIGTERM, SIGINT).

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use super::reaper::alive;

/// Sends `sig` to one process, ignoring a process that is already gone.
pub fn signal_pid(pid: u32, sig: Signal) {
    if let Err(e) = kill(Pid::from_raw(pid as i32), sig) {
        if e != nix::errno::Errno::ESRCH {
            tracing::warn!("kill({pid}, {sig}) failed: {e}");
        }
    }
}

/// Sends `sig` to the process group led by `pgid`, ignoring a group that is already gone.
pub fn signal_group(pgid: u32, sig: Signal) {
    if let Err(e) = killpg(Pid::from_raw(pgid as i32), sig) {
        if e != nix::errno::Errno::ESRCH {
            tracing::warn!("killpg({pgid}, {sig}) failed: {e}");
        }
    }
}

/// Waits until none of `pids` is alive or `limit` has passed; returns those still alive.
pub async fn wait_gone(pids: &[u32], limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resolves when the agent receives SIGTERM or SIGINT.
pub async fn termination() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
