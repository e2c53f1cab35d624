//! Bounded scrollback: the last [`SCROLLBACK_BYTES`] of a terminal's output, replayed to
//! every client that attaches.

use std::collections::VecDeque;

/// How much output a terminal remembers.
pub const SCROLLBACK_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
pub struct Scrollback {
    buf: VecDeque<u8>,
    cap: usize,
}

impl Scrollback {
    pub fn new(cap: usize) -> Self {
        Self {
            buf: VecDeque::with_capacity(cap.min(64 * 1024)),
            cap,
        }
    }

    /// Appends output, forgetting the oldest bytes past the capacity.
    pub fn push(&mut self, data: &[u8]) {
        let data = if data.len() > self.cap {
            &data[data.len() - self.cap..]
        } else {
            data
        };
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The remembered output in chunks of at most `chunk` bytes, oldest first.
    pub fn chunks(&self, chunk: usize) -> Vec<Vec<u8>> {
        let (a, b) = self.buf.as_slices();
        let mut all = Vec::with_capacity(self.buf.len());
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        all.chunks(chunk.max(1)).map(<[u8]>::to_vec).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail() {
        let mut s = Scrollback::new(8);
        s.push(b"hello ");
        s.push(b"world");
        assert_eq!(s.len(), 8);
        assert_eq!(s.chunks(3).concat(), b"lo world");
        assert_eq!(s.chunks(3).len(), 3);
        s.push(b"0123456789ab");
        assert_eq!(s.chunks(100).concat(), b"456789ab");
    }

    #[test]
    fn empty() {
        let s = Scrollback::new(8);
        assert!(s.is_empty());
        assert!(s.chunks(4).is_empty());
    }
}
