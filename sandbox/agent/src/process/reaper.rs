//! The one place children are reaped. A SIGCHLD-driven task calls `waitpid(-1, WNOHANG)` until
//! nothing is left and hands each managed child's status to whoever registered its pid.
//!
//! Nothing else in the agent may wait for a child (std, tokio and portable-pty `wait()` would
//! race us and get ECHILD). Managed children are spawned through [`Reaper::spawn`], which holds
//! the reaper's lock while forking and registering: the reaper takes the same lock around
//! `waitpid`, so a child that exits instantly is still reaped only after its pid is registered.
//! Statuses of unregistered pids (orphans that re-parented to us) are simply dropped; there is
//! no "exited before registration" table that could hand a stale status to a reused pid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::sync::oneshot;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    pub fn code(self) -> Option<i32> {
        match self {
            Self::Exited(c) => Some(c),
            Self::Signaled(_) => None,
        }
    }

    pub fn signal(self) -> Option<i32> {
        match self {
            Self::Exited(_) => None,
            Self::Signaled(s) => Some(s),
        }
    }

    /// Shell convention: the exit code, or 128 + the signal number.
    pub fn as_shell_status(self) -> i32 {
        match self {
            Self::Exited(c) => c,
            Self::Signaled(s) => 128 + s,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(c) => write!(f, "exit status {c}"),
            Self::Signaled(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Receives the exit status of one managed child.
pub type ExitReceiver = oneshot::Receiver<ExitStatus>;

#[derive(Default)]
pub struct Reaper {
    waiters: Mutex<HashMap<i32, oneshot::Sender<ExitStatus>>>,
}

static GLOBAL: OnceLock<Arc<Reaper>> = OnceLock::new();

impl Reaper {
    /// The process-wide reaper. [`Reaper::start`] must have run before children are spawned.
    pub fn global() -> Arc<Reaper> {
        GLOBAL.get_or_init(|| Arc::new(Reaper::default())).clone()
    }

    /// Becomes the subreaper (when not PID 1) and starts the SIGCHLD-driven reaping task.
    /// Must be called inside the tokio runtime, before any child is spawned.
    pub fn start() -> std::io::Result<Arc<Reaper>> {
        let reaper = Self::global();
        if std::process::id() != 1 {
            // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag on this process.
            let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            if rc != 0 {
                tracing::warn!(
                    "prctl(PR_SET_CHILD_SUBREAPER) failed: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
        let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
        let r = reaper.clone();
        tokio::spawn(async move {
            // A periodic sweep as well, in case a child exited before the handler existed.
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = sigchld.recv() => {}
                    _ = tick.tick() => {}
                }
                r.reap_all();
            }
        });
        Ok(reaper)
    }

    /// Spawns a managed child: `spawn` runs under the reaper lock and returns the pid;
    /// the receiver yields its exit status.
    pub fn spawn<T, E>(
        &self,
        spawn: impl FnOnce() -> Result<(T, u32), E>,
    ) -> Result<(T, u32, ExitReceiver), E> {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        // Children start with an OOM score of 0, not the agent's -1000 (process::oom).
        let (value, pid) = super::oom::with_child_score(spawn)?;
        let (tx, rx) = oneshot::channel();
        waiters.insert(pid as i32, tx);
        Ok((value, pid, rx))
    }

    /// Reaps every child that has exited.
    pub fn reap_all(&self) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Exited(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, ExitStatus::Signaled(sig as i32)),
                Ok(WaitStatus::StillAlive) => return,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => return,
                Err(e) => {
                    tracing::warn!("waitpid(-1) failed: {e}");
                    return;
                }
            };
            let (pid, status) = status;
            match waiters.remove(&pid.as_raw()) {
                Some(tx) => {
                    tracing::debug!("child {pid} ended: {status}");
                    let _ = tx.send(status);
                }
                None => tracing::trace!("reaped orphan {pid}: {status}"),
            }
        }
    }
}

/// Whether a process still exists (a reaped child no longer does).
pub fn alive(pid: u32) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid as i32), None).is_ok()
}
