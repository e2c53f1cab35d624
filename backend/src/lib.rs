//! Drydock server library: configuration, store, instance runtime, agent client, sessions,
//! HTTP API and terminal relay. The `drydock` binary (main.rs) only parses the command line
//! and calls into here.

pub mod agent_client;
pub mod config;
pub mod error;
pub mod metrics;
pub mod relay;
pub mod runtime;
pub mod store;
