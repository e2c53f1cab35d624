//! Process plumbing of PID 1: the single child reaper, the engine supervisor, the cgroup and
//! mount setup done before dockerd starts, and signal helpers.

pub mod cgroups;
pub mod oom;
pub mod reaper;
pub mod signals;
pub mod supervisor;
