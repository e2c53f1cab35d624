//! Wire formats shared by the Drydock server (`backend/`) and the in-instance agent
//! (`sandbox/agent/`).
//!
//! This crate owns two things and nothing else:
//! - [`frame`]: the binary terminal frame protocol of the design brief, spoken by the
//!   browser, relayed by the server and terminated by the agent;
//! - [`agent`]: the JSON types of the agent's HTTP API, so the server and the agent cannot
//!   drift apart.
//!
//! It does no I/O.

pub mod agent;
pub mod frame;
