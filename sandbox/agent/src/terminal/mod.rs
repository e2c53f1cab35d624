//! Terminals: named shells on PTYs that outlive their clients. The registry creates a
//! terminal on first attach and forgets it when its shell exits (the next attach starts a
//! fresh one).

pub mod scrollback;
pub mod session;
pub mod ws;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use drydock_protocol::agent::TerminalInfo;

pub use session::{ClientHandle, Outgoing, Terminal, TerminalError};

use crate::config::Config;

pub struct Registry {
    config: Arc<Config>,
    terminals: Mutex<HashMap<String, Arc<Terminal>>>,
    me: Weak<Registry>,
}

impl Registry {
    pub fn new(config: Arc<Config>) -> Arc<Self> {
        Arc::new_cyclic(|me| Registry {
            config,
            terminals: Mutex::new(HashMap::new()),
            me: me.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Terminal>>> {
        self.terminals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches to terminal `name`, starting it (at `size`, or 80x24) if it does not exist.
    pub fn attach(
        &self,
        name: &str,
        size: Option<(u16, u16)>,
        view: bool,
    ) -> Result<ClientHandle, TerminalError> {
        let mut map = self.lock();
        if let Some(t) = map.get(name) {
            match t.attach(view) {
                Ok(h) => return Ok(h),
                // Exited but not yet forgotten: replace it.
                Err(TerminalError::Exited { .. }) => {
                    map.remove(name);
                }
                Err(e) => return Err(e),
            }
        }
        let (cols, rows) = size.unwrap_or((session::DEFAULT_COLS, session::DEFAULT_ROWS));
        let me = self.me.clone();
        let term = Terminal::spawn(name, &self.config, cols, rows, move |t| {
            if let Some(reg) = me.upgrade() {
                reg.forget(t);
            }
        })?;
        map.insert(name.to_string(), term.clone());
        term.attach(view)
    }

    fn forget(&self, term: &Arc<Terminal>) {
        let mut map = self.lock();
        if map.get(&term.name).is_some_and(|t| Arc::ptr_eq(t, term)) {
            map.remove(&term.name);
        }
    }

    pub fn list(&self) -> Vec<TerminalInfo> {
        let terms: Vec<Arc<Terminal>> = self.lock().values().cloned().collect();
        let mut out: Vec<TerminalInfo> = terms.iter().map(|t| t.info()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes a notice (the agent speaking, not the shell) into every terminal: shown to
    /// attached clients and kept in the scrollback.
    pub fn notice(&self, text: &str) {
        let bytes = format!("\r\n\x1b[1;33m{text}\x1b[0m\r\n");
        let terms: Vec<Arc<Terminal>> = self.lock().values().cloned().collect();
        for t in terms {
            t.inject(bytes.as_bytes());
        }
    }

    /// SIGHUPs every shell's process group; returns their pids.
    pub fn hangup_all(&self) -> Vec<u32> {
        let terms: Vec<Arc<Terminal>> = self.lock().values().cloned().collect();
        for t in &terms {
            t.hangup();
        }
        terms.iter().map(|t| t.pid).collect()
    }

    /// SIGKILLs every shell's process group.
    pub fn kill_all(&self) {
        for t in self.lock().values() {
            t.kill();
        }
    }
}
