//! Terminal frames: one WebSocket binary message is one frame; its first byte is the opcode.
//!
//! To the agent (from the browser, through the server):
//! - `0x00` input bytes
//! - `0x01` resize: cols, rows as big-endian u16
//! - `0x02` flow-control ack: big-endian u32 count of output bytes processed
//!
//! From the agent (to the browser, through the server):
//! - `0x00` output bytes
//! - `0x01` current size: cols, rows as big-endian u16
//! - `0x02` end of scrollback replay
//! - `0x03` shell exited: big-endian i32 status

use bytes::{BufMut, Bytes, BytesMut};

/// Largest frame either side accepts, opcode included. A paste larger than this must be
/// split by the sender; anything larger closes the connection with code 1009.
pub const MAX_FRAME_LEN: usize = 256 * 1024;

/// Opcodes of frames sent to the agent.
pub mod client_op {
    pub const INPUT: u8 = 0x00;
    pub const RESIZE: u8 = 0x01;
    pub const ACK: u8 = 0x02;
}

/// Opcodes of frames sent by the agent.
pub mod server_op {
    pub const OUTPUT: u8 = 0x00;
    pub const SIZE: u8 = 0x01;
    pub const REPLAY_END: u8 = 0x02;
    pub const EXITED: u8 = 0x03;
}

/// A frame sent towards the terminal (browser → server → agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    Input(Bytes),
    Resize { cols: u16, rows: u16 },
    Ack(u32),
}

/// A frame sent from the terminal (agent → server → browser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    Output(Bytes),
    Size { cols: u16, rows: u16 },
    ReplayEnd,
    Exited(i32),
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame: a frame needs at least an opcode byte")]
    Empty,
    #[error("unknown opcode 0x{0:02x}")]
    UnknownOpcode(u8),
    #[error("frame with opcode 0x{opcode:02x} has a {got}-byte payload, expected {expected}")]
    BadLength {
        opcode: u8,
        expected: usize,
        got: usize,
    },
    #[error("terminal size {cols}x{rows} is out of range (1..=1000 columns, 1..=1000 rows)")]
    BadSize { cols: u16, rows: u16 },
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
}

fn be_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn check_len(opcode: u8, payload: &[u8], expected: usize) -> Result<(), FrameError> {
    if payload.len() != expected {
        return Err(FrameError::BadLength {
            opcode,
            expected,
            got: payload.len(),
        });
    }
    Ok(())
}

fn check_size(cols: u16, rows: u16) -> Result<(), FrameError> {
    if cols == 0 || rows == 0 || cols > 1000 || rows > 1000 {
        return Err(FrameError::BadSize { cols, rows });
    }
    Ok(())
}

impl ClientFrame {
    /// Decodes one WebSocket binary message.
    pub fn decode(msg: &[u8]) -> Result<Self, FrameError> {
        if msg.len() > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge(msg.len()));
        }
        let (&op, payload) = msg.split_first().ok_or(FrameError::Empty)?;
        match op {
            client_op::INPUT => Ok(Self::Input(Bytes::copy_from_slice(payload))),
            client_op::RESIZE => {
                check_len(op, payload, 4)?;
                let (cols, rows) = (be_u16(&payload[0..2]), be_u16(&payload[2..4]));
                check_size(cols, rows)?;
                Ok(Self::Resize { cols, rows })
            }
            client_op::ACK => {
                check_len(op, payload, 4)?;
                Ok(Self::Ack(u32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ])))
            }
            other => Err(FrameError::UnknownOpcode(other)),
        }
    }

    pub fn encode(&self) -> Bytes {
        match self {
            Self::Input(data) => with_opcode(client_op::INPUT, data),
            Self::Resize { cols, rows } => size_frame(client_op::RESIZE, *cols, *rows),
            Self::Ack(n) => with_opcode(client_op::ACK, &n.to_be_bytes()),
        }
    }
}

impl ServerFrame {
    /// Decodes one WebSocket binary message.
    pub fn decode(msg: &[u8]) -> Result<Self, FrameError> {
        let (&op, payload) = msg.split_first().ok_or(FrameError::Empty)?;
        match op {
            server_op::OUTPUT => Ok(Self::Output(Bytes::copy_from_slice(payload))),
            server_op::SIZE => {
                check_len(op, payload, 4)?;
                Ok(Self::Size {
                    cols: be_u16(&payload[0..2]),
                    rows: be_u16(&payload[2..4]),
                })
            }
            server_op::REPLAY_END => {
                check_len(op, payload, 0)?;
                Ok(Self::ReplayEnd)
            }
            server_op::EXITED => {
                check_len(op, payload, 4)?;
                Ok(Self::Exited(i32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ])))
            }
            other => Err(FrameError::UnknownOpcode(other)),
        }
    }

    pub fn encode(&self) -> Bytes {
        match self {
            Self::Output(data) => with_opcode(server_op::OUTPUT, data),
            Self::Size { cols, rows } => size_frame(server_op::SIZE, *cols, *rows),
            Self::ReplayEnd => Bytes::from_static(&[server_op::REPLAY_END]),
            Self::Exited(status) => with_opcode(server_op::EXITED, &status.to_be_bytes()),
        }
    }
}

fn with_opcode(op: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(1 + payload.len());
    buf.put_u8(op);
    buf.put_slice(payload);
    buf.freeze()
}

fn size_frame(op: u8, cols: u16, rows: u16) -> Bytes {
    let mut buf = BytesMut::with_capacity(5);
    buf.put_u8(op);
    buf.put_u16(cols);
    buf.put_u16(rows);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_round_trip() {
        for f in [
            ClientFrame::Input(Bytes::from_static("echo 你好\r".as_bytes())),
            ClientFrame::Resize { cols: 80, rows: 24 },
            ClientFrame::Ack(1 << 20),
        ] {
            assert_eq!(ClientFrame::decode(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn server_frames_round_trip() {
        for f in [
            ServerFrame::Output(Bytes::from_static(b"hello")),
            ServerFrame::Size {
                cols: 132,
                rows: 43,
            },
            ServerFrame::ReplayEnd,
            ServerFrame::Exited(-1),
        ] {
            assert_eq!(ServerFrame::decode(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn malformed_frames_are_rejected_with_a_reason() {
        assert_eq!(ClientFrame::decode(&[]), Err(FrameError::Empty));
        assert_eq!(
            ClientFrame::decode(&[0x07, 1]),
            Err(FrameError::UnknownOpcode(7))
        );
        assert_eq!(
            ClientFrame::decode(&[0x01, 0, 80]),
            Err(FrameError::BadLength {
                opcode: 1,
                expected: 4,
                got: 2
            })
        );
        assert_eq!(
            ClientFrame::decode(&[0x01, 0, 0, 0, 24]),
            Err(FrameError::BadSize { cols: 0, rows: 24 })
        );
        let huge = vec![0u8; MAX_FRAME_LEN + 1];
        assert_eq!(
            ClientFrame::decode(&huge),
            Err(FrameError::TooLarge(MAX_FRAME_LEN + 1))
        );
        let msg = ClientFrame::decode(&[0x02, 1]).unwrap_err().to_string();
        assert_eq!(
            msg,
            "frame with opcode 0x02 has a 1-byte payload, expected 4"
        );
    }
}
