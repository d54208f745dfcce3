//! The adapter to the `memkind-bpf` crate: attach, events, snapshots, in model types.
//!
//! Placeholder until `memkind-bpf` is merged: every attach fails with a clear message, so the
//! rest of the CLI (argument checks, target and library resolution, error paths) works and is
//! tested without it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use super::{Event, Scope};
use crate::model::Snapshot;

/// What to attach to.
#[derive(Clone, Debug)]
pub struct Options {
    /// The library (or executable) to probe.
    pub library: PathBuf,
    /// Which processes.
    pub scope: Scope,
    /// Only processes of this cgroup (v2).
    pub cgroup: Option<PathBuf>,
    /// Per-call uprobes (`trace`).
    pub trace: bool,
    /// Keep every extent / kind event (`record`).
    pub record: bool,
}

/// An attached probe.
pub struct Backend {
    _opts: Options,
}

impl Backend {
    /// Attach.
    pub fn attach(_opts: &Options, _start_ns: u64) -> Result<Backend> {
        bail!("this memkind-probe was built without its BPF programs (the memkind-bpf crate)")
    }

    /// Wait up to `timeout` for events, hand each to `f`.
    pub fn poll(&mut self, timeout: Duration, _f: &mut dyn FnMut(Event)) -> Result<()> {
        std::thread::sleep(timeout);
        Ok(())
    }

    /// The cumulative counters (process faults and timestamp are filled by the caller).
    pub fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot::default())
    }
}
