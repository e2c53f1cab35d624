//! One terminal: a shell on a PTY, its scrollback, its attached clients and flow control.
//!
//! A blocking reader thread per terminal reads up to 64 KiB at a time, appends to the
//! scrollback and queues the bytes to every client, counting them as unacknowledged. It
//! stops reading while any client has more than [`HIGH_WATER`] unacknowledged bytes and is
//! woken (condvar) by an ack that brings a client back under it, and by detaches. The
//! client's WebSocket writer merges queued chunks into larger frames (`ws.rs`). Input goes through a bounded channel to a writer
//! thread, so large pastes arrive whole and in order and a slow shell pushes back on clients.
//! Attaching snapshots the scrollback and registers the client under the same lock as the
//! reader's append, so a client sees every byte exactly once.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use drydock_protocol::agent::TerminalInfo;
use drydock_protocol::frame::ServerFrame;
use nix::sys::signal::Signal;
use portable_pty::{CommandBuilder, MasterPty, PtySize};
use tokio::sync::mpsc;

use super::scrollback::{Scrollback, SCROLLBACK_BYTES};
use crate::config::{shell_is_bash, shell_path, Config};
use crate::process::reaper::{ExitStatus, Reaper};
use crate::process::signals::signal_group;

/// Largest read from the PTY, and largest Output frame sent.
pub const CHUNK: usize = 64 * 1024;
/// The reader pauses while a client has more than this many bytes unacknowledged.
pub const HIGH_WATER: u64 = 256 * 1024;
/// Input frames queued towards the PTY before clients are pushed back.
const INPUT_QUEUE: usize = 64;
/// How long the final output of an exited shell may take to drain before clients are told.
const EXIT_DRAIN: Duration = Duration::from_secs(1);

pub const DEFAULT_COLS: u16 = 80;
pub const DEFAULT_ROWS: u16 = 24;

/// What a client's WebSocket task is asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Frame(ServerFrame),
    /// Send a close frame with this code and reason, then stop sending.
    Close(u16, String),
}

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("opening a PTY for terminal {name:?} failed: {reason}")]
    Pty { name: String, reason: String },
    #[error("starting {shell} for terminal {name:?} failed: {reason}")]
    Spawn {
        name: String,
        shell: String,
        reason: String,
    },
    #[error("terminal {name:?} has exited")]
    Exited { name: String },
    #[error("resizing terminal {name:?} to {cols}x{rows} failed: {reason}")]
    Resize {
        name: String,
        cols: u16,
        rows: u16,
        reason: String,
    },
    #[error("starting a thread for terminal {name:?} failed: {source}")]
    Thread {
        name: String,
        source: std::io::Error,
    },
}

struct Client {
    tx: mpsc::UnboundedSender<Outgoing>,
    unacked: u64,
}

struct State {
    scrollback: Scrollback,
    cols: u16,
    rows: u16,
    clients: HashMap<u64, Client>,
    /// The shell exited and clients were told; nobody may attach any more.
    closed: bool,
    /// The reader saw the end of the PTY's output.
    eof: bool,
}

impl State {
    fn over_high_water(&self) -> bool {
        self.clients.values().any(|c| c.unacked > HIGH_WATER)
    }

    fn broadcast(&mut self, out: Outgoing) {
        self.clients.retain(|_, c| c.tx.send(out.clone()).is_ok());
    }
}

pub struct Terminal {
    pub name: String,
    pub pid: u32,
    master: Mutex<Box<dyn MasterPty + Send>>,
    input: mpsc::Sender<Bytes>,
    state: Mutex<State>,
    wake: Condvar,
    next_client: AtomicU64,
}

impl Terminal {
    /// Starts a login shell on a new PTY. `on_exit` runs once the shell has exited and every
    /// client was told.
    pub fn spawn(
        name: &str,
        config: &Config,
        cols: u16,
        rows: u16,
        on_exit: impl FnOnce(&Arc<Terminal>) + Send + 'static,
    ) -> Result<Arc<Terminal>, TerminalError> {
        let pty_err = |e: anyhow::Error| TerminalError::Pty {
            name: name.into(),
            reason: format!("{e:#}"),
        };
        let pair = portable_pty::native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(pty_err)?;
        let shell = shell_path();
        let mut cmd = CommandBuilder::new(&shell);
        if shell_is_bash() {
            cmd.arg("-l");
        }
        cmd.env_clear();
        for (k, v) in config.shell_env() {
            cmd.env(k, v);
        }
        cmd.cwd(if config.home.is_dir() {
            config.home.clone()
        } else {
            "/".into()
        });
        let spawned = Reaper::global().spawn(|| {
            let child = pair.slave.spawn_command(cmd)?;
            let pid = child
                .process_id()
                .ok_or_else(|| anyhow::anyhow!("the shell has no pid"))?;
            // The child handle is dropped without waiting: the reaper owns the exit status.
            drop(child);
            Ok::<_, anyhow::Error>(((), pid))
        });
        let ((), pid, exit_rx) = spawned.map_err(|e| TerminalError::Spawn {
            name: name.into(),
            shell: shell.display().to_string(),
            reason: format!("{e:#}"),
        })?;
        drop(pair.slave);
        let reader = pair.master.try_clone_reader().map_err(pty_err)?;
        let writer = pair.master.take_writer().map_err(pty_err)?;
        let (input, input_rx) = mpsc::channel(INPUT_QUEUE);
        let term = Arc::new(Terminal {
            name: name.to_string(),
            pid,
            master: Mutex::new(pair.master),
            input,
            state: Mutex::new(State {
                scrollback: Scrollback::new(SCROLLBACK_BYTES),
                cols,
                rows,
                clients: HashMap::new(),
                closed: false,
                eof: false,
            }),
            wake: Condvar::new(),
            next_client: AtomicU64::new(1),
        });
        let thread_err = |source| TerminalError::Thread {
            name: name.into(),
            source,
        };
        {
            let term = term.clone();
            std::thread::Builder::new()
                .name(format!("pty-read-{name}"))
                .spawn(move || term.read_loop(reader))
                .map_err(thread_err)?;
        }
        std::thread::Builder::new()
            .name(format!("pty-write-{name}"))
            .spawn(move || write_loop(writer, input_rx))
            .map_err(thread_err)?;
        {
            let term = term.clone();
            tokio::spawn(async move {
                let status = exit_rx.await.unwrap_or(ExitStatus::Exited(-1));
                tracing::info!(
                    "terminal {:?} (pid {}) ended: {status}",
                    term.name,
                    term.pid
                );
                // Let the last output reach the clients before telling them.
                let drained = tokio::time::Instant::now() + EXIT_DRAIN;
                while !term.lock().eof && tokio::time::Instant::now() < drained {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                term.finish(status);
                // Stray members of the shell's process group go with it.
                signal_group(term.pid, Signal::SIGHUP);
                on_exit(&term);
            });
        }
        tracing::info!(
            "terminal {name:?} started: {} (pid {pid}), {cols}x{rows}",
            shell.display()
        );
        Ok(term)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_loop(self: Arc<Self>, mut reader: Box<dyn Read + Send>) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            {
                let mut st = self.lock();
                while !st.closed && st.over_high_water() {
                    st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.closed {
                    break;
                }
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO: every slave fd is closed.
                Err(_) => break,
            };
            let chunk = Bytes::copy_from_slice(&buf[..n]);
            let mut st = self.lock();
            st.scrollback.push(&chunk);
            st.clients.retain(|_, c| {
                let ok =
                    c.tx.send(Outgoing::Frame(ServerFrame::Output(chunk.clone())))
                        .is_ok();
                c.unacked += n as u64;
                ok
            });
        }
        self.lock().eof = true;
    }

    /// Tells every client the shell exited and closes them.
    fn finish(&self, status: ExitStatus) {
        let mut st = self.lock();
        st.closed = true;
        for (_, c) in st.clients.drain() {
            let _ = c.tx.send(Outgoing::Frame(ServerFrame::Exited(
                status.as_shell_status(),
            )));
            let _ = c.tx.send(Outgoing::Close(
                super::ws::CLOSE_NORMAL,
                format!("shell exited ({status})"),
            ));
        }
        self.wake.notify_all();
    }

    /// Attaches a client: queues the scrollback replay, the size and ReplayEnd, then every
    /// later output. Fails if the shell has exited.
    pub fn attach(self: &Arc<Self>, view: bool) -> Result<ClientHandle, TerminalError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        let mut st = self.lock();
        if st.closed {
            return Err(TerminalError::Exited {
                name: self.name.clone(),
            });
        }
        let mut replayed = 0u64;
        for chunk in st.scrollback.chunks(CHUNK) {
            replayed += chunk.len() as u64;
            let _ = tx.send(Outgoing::Frame(ServerFrame::Output(chunk.into())));
        }
        let _ = tx.send(Outgoing::Frame(ServerFrame::Size {
            cols: st.cols,
            rows: st.rows,
        }));
        let _ = tx.send(Outgoing::Frame(ServerFrame::ReplayEnd));
        st.clients.insert(
            id,
            Client {
                tx: tx.clone(),
                unacked: replayed,
            },
        );
        drop(st);
        Ok(ClientHandle {
            id,
            view,
            terminal: self.clone(),
            tx,
            rx: Some(rx),
        })
    }

    fn detach(&self, id: u64) {
        self.lock().clients.remove(&id);
        self.wake.notify_all();
    }

    fn ack(&self, id: u64, n: u32) {
        let mut st = self.lock();
        let Some(c) = st.clients.get_mut(&id) else {
            return;
        };
        let was_over = c.unacked > HIGH_WATER;
        c.unacked = c.unacked.saturating_sub(u64::from(n));
        // Only a client coming back under the mark can unpause the reader.
        if was_over && c.unacked <= HIGH_WATER {
            drop(st);
            self.wake.notify_all();
        }
    }

    /// Resizes the PTY and tells every client the new size.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), TerminalError> {
        self.master
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| TerminalError::Resize {
                name: self.name.clone(),
                cols,
                rows,
                reason: format!("{e:#}"),
            })?;
        let mut st = self.lock();
        st.cols = cols;
        st.rows = rows;
        st.broadcast(Outgoing::Frame(ServerFrame::Size { cols, rows }));
        Ok(())
    }

    /// Shows `bytes` to every client as if the shell had printed them (and keeps them in the
    /// scrollback); flow control counts them like shell output.
    pub fn inject(&self, bytes: &[u8]) {
        let chunk = Bytes::copy_from_slice(bytes);
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.scrollback.push(&chunk);
        let n = chunk.len() as u64;
        st.clients.retain(|_, c| {
            let ok =
                c.tx.send(Outgoing::Frame(ServerFrame::Output(chunk.clone())))
                    .is_ok();
            c.unacked += n;
            ok
        });
    }

    /// Sends SIGHUP to the shell's process group.
    pub fn hangup(&self) {
        signal_group(self.pid, Signal::SIGHUP);
    }

    /// Kills the shell's process group.
    pub fn kill(&self) {
        signal_group(self.pid, Signal::SIGKILL);
    }

    pub fn info(&self) -> TerminalInfo {
        let st = self.lock();
        TerminalInfo {
            name: self.name.clone(),
            cols: st.cols,
            rows: st.rows,
            clients: st.clients.len(),
            pid: Some(self.pid),
        }
    }
}

fn write_loop(mut writer: Box<dyn Write + Send>, mut input: mpsc::Receiver<Bytes>) {
    while let Some(data) = input.blocking_recv() {
        if writer
            .write_all(&data)
            .and_then(|()| writer.flush())
            .is_err()
        {
            break;
        }
    }
}

/// One attached client. Dropping it detaches the client (and wakes a paused reader).
pub struct ClientHandle {
    id: u64,
    view: bool,
    terminal: Arc<Terminal>,
    tx: mpsc::UnboundedSender<Outgoing>,
    rx: Option<mpsc::UnboundedReceiver<Outgoing>>,
}

impl ClientHandle {
    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.terminal
    }

    pub fn is_view(&self) -> bool {
        self.view
    }

    /// The queue of frames for this client; taken once by the WebSocket writer.
    pub fn take_receiver(&mut self) -> Option<mpsc::UnboundedReceiver<Outgoing>> {
        self.rx.take()
    }

    /// Asks the WebSocket writer to close the connection.
    pub fn close(&self, code: u16, reason: String) {
        let _ = self.tx.send(Outgoing::Close(code, reason));
    }

    /// Types into the terminal (ignored for view-only clients). Waits while the input
    /// queue is full.
    pub async fn input(&self, data: Bytes) {
        if !self.view && !data.is_empty() {
            let _ = self.terminal.input.send(data).await;
        }
    }

    /// Resizes the terminal (ignored for view-only clients).
    pub fn resize(&self, cols: u16, rows: u16) {
        if !self.view {
            if let Err(e) = self.terminal.resize(cols, rows) {
                tracing::warn!("{e}");
            }
        }
    }

    pub fn ack(&self, n: u32) {
        self.terminal.ack(self.id, n);
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.terminal.detach(self.id);
    }
}
