//! The adapter to the `memkind-bpf` crate: attach, events and snapshots, in model types.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use memkind_bpf as mb;
use memkind_bpf::records::{extent_op, kind_op, MkpCounters, MkpExtent, MkpKind};

use super::{Event, Scope};
use crate::model::{Call, Counters, ExtentEvent, ExtentOp, Key, KindEvent, KindOp, Snapshot};

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
}

/// An attached probe.
pub struct Backend {
    probe: mb::Probe,
    start_ns: u64,
    flavor: mb::Flavor,
}

fn scope(s: &Scope) -> mb::Scope {
    match s {
        Scope::Pids(p) => mb::Scope::Pids(p.clone()),
        Scope::Tree(p) => mb::Scope::Tree(*p),
        Scope::All => mb::Scope::All,
    }
}

fn counters(c: &MkpCounters) -> Counters {
    Counters {
        allocs: c.allocs,
        frees: c.frees,
        reallocs: c.reallocs,
        bytes_requested: c.bytes_requested,
        bytes_allocated: c.bytes_allocated,
        bytes_freed: c.bytes_freed,
        size_buckets: c.size_buckets,
    }
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `struct mkp_kind` → model (None for an unknown op).
pub fn kind_event(r: &MkpKind) -> Option<KindEvent> {
    let op = match r.op {
        kind_op::CREATE => KindOp::Create,
        kind_op::DESTROY => KindOp::Destroy,
        kind_op::ANNOUNCE => KindOp::Announce,
        _ => return None,
    };
    Some(KindEvent {
        op,
        kind: r.kind,
        backing: r.backing,
        mbind_mode: r.mbind_mode,
        nodemask: r.nodemask,
        name: c_str(&r.name),
        dir: c_str(&r.dir),
    })
}

/// `struct mkp_extent` → model (None for an unknown op).
pub fn extent_event(r: &MkpExtent) -> Option<ExtentEvent> {
    let op = match r.op {
        extent_op::ALLOC => ExtentOp::Alloc,
        extent_op::DESTROY => ExtentOp::Destroy,
        extent_op::PURGE => ExtentOp::Purge,
        extent_op::SPLIT => ExtentOp::Split,
        extent_op::MERGE => ExtentOp::Merge,
        extent_op::UNMAP => ExtentOp::Unmap,
        extent_op::ANNOUNCE => ExtentOp::Announce,
        _ => return None,
    };
    Some(ExtentEvent {
        op,
        addr: r.addr,
        size: r.size,
        addr2: r.addr2,
        size2: r.size2,
        kind: r.kind,
        arena: r.arena,
        mbind_mode: r.mbind_mode,
        backing: r.backing,
        page_size: r.page_size,
        nodemask: r.nodemask,
    })
}

/// A wait status as the kernel keeps it (`(code << 8) | signal`) → the shell's exit code.
pub fn exit_code(status: i32) -> i32 {
    let sig = status & 0x7f;
    if sig == 0 {
        (status >> 8) & 0xff
    } else {
        128 + sig
    }
}

fn call(c: &mb::CallEvent, start_ns: u64, flavor: mb::Flavor) -> Call {
    use mb::Call as C;
    let alloc = matches!(
        c.call,
        C::Malloc
            | C::Calloc
            | C::PmemCalloc
            | C::PosixMemalign
            | C::Realloc
            | C::ReallocWithKindDetect
    );
    let takes_ptr = matches!(
        c.call,
        C::Realloc | C::ReallocWithKindDetect | C::Free | C::FreeWithKindDetect
    );
    let size = match c.call {
        C::Calloc | C::PmemCalloc => Some(c.num.saturating_mul(c.size)),
        C::Free | C::FreeWithKindDetect => None,
        _ => Some(c.size),
    };
    Call {
        ts_ns: c.ts_ns.saturating_sub(start_ns),
        tgid: c.tgid,
        tid: c.tid,
        call: c.call.symbol(flavor).unwrap_or(c.call.name()),
        kind: c.kind_id,
        arena: None,
        size,
        ptr: takes_ptr.then_some(c.ptr),
        result: alloc.then_some(c.result),
        ret: matches!(c.call, C::PosixMemalign).then_some(c.ret),
        latency_ns: c.latency_ns,
    }
}

impl Backend {
    /// Attach; event timestamps are made relative to `start_ns` (CLOCK_MONOTONIC).
    pub fn attach(opts: &Options, start_ns: u64) -> Result<Backend> {
        let probe = mb::Probe::attach(&mb::Options {
            library: opts.library.clone(),
            scope: scope(&opts.scope),
            cgroup: opts.cgroup.clone(),
            trace: opts.trace,
            // The recording keeps periodic snapshots, not every flush: no per-flush copies.
            record: false,
        })?;
        let flavor = probe.library().flavor();
        Ok(Backend {
            probe,
            start_ns,
            flavor,
        })
    }

    /// Wait up to `timeout` for events, hand each to `f` (counter flushes are not events here:
    /// the counters come from [`Backend::snapshot`]).
    pub fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(Event)) -> Result<()> {
        let (t0, flavor) = (self.start_ns, self.flavor);
        let rel = |ts: u64| ts.saturating_sub(t0);
        self.probe.poll(timeout, |e| {
            let ev = match e {
                mb::Event::Flush { .. } => None,
                mb::Event::Extent { ts_ns, tgid, rec } => {
                    extent_event(&rec).map(|ev| Event::Extent {
                        ts_ns: rel(ts_ns),
                        tgid,
                        ev,
                    })
                }
                mb::Event::Kind { ts_ns, tgid, rec } => kind_event(&rec).map(|ev| Event::Kind {
                    ts_ns: rel(ts_ns),
                    tgid,
                    ev,
                }),
                mb::Event::Call(c) => Some(Event::Call(call(&c, t0, flavor))),
                mb::Event::Exit { ts_ns, tgid, code } => Some(Event::Exit {
                    ts_ns: rel(ts_ns),
                    tgid,
                    code: exit_code(code),
                }),
            };
            if let Some(ev) = ev {
                f(ev);
            }
        })?;
        Ok(())
    }

    /// The cumulative counters (process faults and timestamp are filled by the caller). Lost
    /// events: records the ring buffer could not take, counter updates a full map could not
    /// keep, and records the probe could not read from the process.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let s = self.probe.snapshot()?;
        let key = |k: &mb::Key| Key {
            tgid: k.tgid,
            kind: k.kind,
            arena: k.arena,
        };
        Ok(Snapshot {
            ts_ns: 0,
            counters: s
                .counters
                .iter()
                .map(|(k, c)| (key(k), counters(c)))
                .collect(),
            faults: s.faults.iter().map(|(k, v)| (key(k), *v)).collect(),
            other_faults: s.other_faults.clone(),
            process_faults: Default::default(),
            lost_events: s.lost_events + s.map_full + s.read_faults,
        })
    }

    /// BPF run-time statistics (`BPF_ENABLE_STATS`) on while the guard lives.
    pub fn enable_run_stats(&self) -> Result<RunStats> {
        Ok(RunStats {
            _guard: self.probe.enable_run_stats()?,
        })
    }

    /// (name, run count, run time ns) of every loaded program.
    pub fn prog_stats(&self) -> Vec<(String, u64, u64)> {
        self.probe
            .prog_stats()
            .into_iter()
            .map(|p| (p.name, p.run_cnt, p.run_time_ns))
            .collect()
    }
}

/// Keeps BPF run-time statistics on while alive.
pub struct RunStats {
    _guard: mb::RunStatsGuard,
}

#[cfg(test)]
mod tests {
    use super::*;
    use memkind_bpf::records::MKP_NONE;

    #[test]
    fn decoding() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(9), 137);
        let mut k = MkpKind {
            op: kind_op::CREATE,
            kind: 30,
            backing: 2,
            ..Default::default()
        };
        k.name[..6].copy_from_slice(b"PMEM:/");
        k.dir[..4].copy_from_slice(b"/mnt");
        let e = kind_event(&k).unwrap();
        assert_eq!(
            (e.name.as_str(), e.dir.as_str(), e.op),
            ("PMEM:/", "/mnt", KindOp::Create)
        );
        k.op = 99;
        assert!(kind_event(&k).is_none());
        let x = MkpExtent {
            op: extent_op::ANNOUNCE,
            addr: 1,
            size: 2,
            kind: 3,
            arena: MKP_NONE,
            ..Default::default()
        };
        assert_eq!(extent_event(&x).unwrap().op, ExtentOp::Announce);
    }
}
