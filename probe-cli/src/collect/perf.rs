//! Process-wide page faults from perf software counters, user faults only (perf-event2 excludes
//! the kernel by default, as the probe's `page_fault_user` tracepoint sees only user-mode faults),
//! so kind shares add up.
//!
//! Which counters: on memkind-rs's library only `PAGE_FAULTS_MAJ`
//! ([`Counted::Major`]); the process's total comes from the BPF fault program's own counts
//! ([`crate::model::Snapshot::set_process_faults`]). The kernel gates each software event id by
//! its own static key (`perf_sw_event()`: `static_key_false(&perf_swevent_enabled[event_id])`,
//! raised by every open counter of that id), and `mm_account_fault()` calls `perf_sw_event()`
//! with `_MIN` or `_MAJ` once per completed fault. With a `_MIN` counter open, every minor fault
//! of every process takes perf's software-event path (≈ 130 ns a fault on the test VM, most of
//! the probe's fault-path cost); with only `_MAJ` open, minor faults pass one patched-out jump
//! and only the rare major faults pay. On memkind 1.14 ([`Counted::MinorAndMajor`]) there is no
//! fault program, so both counters are opened.

use anyhow::{Context as _, Result};
use perf_event::events::Software;
use perf_event::{Builder, Counter};

use super::procfs::Proc;
use crate::model::ProcessFaults;

/// Which software counters to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// `PAGE_FAULTS_MAJ` only (the BPF program counts every fault).
    Major,
    /// `PAGE_FAULTS_MIN` and `PAGE_FAULTS_MAJ`.
    MinorAndMajor,
}

/// One thread's counters.
struct Set {
    minor: Option<Counter>,
    major: Counter,
}

/// The counters of one process: a set per thread (a perf counter observes one thread; `inherit`
/// extends it to the threads and children that thread creates afterwards).
pub struct Faults {
    sets: Vec<Set>,
}

fn open(tid: u32, what: Counted) -> std::io::Result<Set> {
    let mk = |ev: Software| -> std::io::Result<Counter> {
        let mut c = Builder::new(ev)
            .observe_pid(tid as i32)
            .any_cpu()
            .inherit(true)
            .build()?;
        c.enable()?;
        Ok(c)
    };
    Ok(Set {
        minor: match what {
            Counted::Major => None,
            Counted::MinorAndMajor => Some(mk(Software::PAGE_FAULTS_MIN)?),
        },
        major: mk(Software::PAGE_FAULTS_MAJ)?,
    })
}

impl Faults {
    /// Counters for a child held before exec: one set, inherited by everything it starts.
    pub fn for_child(pid: u32, what: Counted) -> Result<Faults> {
        let set = open(pid, what).with_context(|| format!("cannot open page-fault counters for process {pid} (perf_event_open; needs CAP_PERFMON)"))?;
        Ok(Faults { sets: vec![set] })
    }

    /// Counters for a running process: a set per existing thread. Threads that end between the
    /// listing and the open are skipped.
    pub fn for_pid(proc: &Proc, pid: u32, what: Counted) -> Result<Faults> {
        let tids = proc
            .tasks(pid)
            .with_context(|| format!("cannot list the threads of process {pid}"))?;
        let mut sets = Vec::with_capacity(tids.len());
        let mut last_err = None;
        for t in tids {
            match open(t, what) {
                Ok(s) => sets.push(s),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => last_err = Some(e),
            }
        }
        if sets.is_empty() {
            if let Some(e) = last_err {
                return Err(e).with_context(|| format!("cannot open page-fault counters for process {pid} (perf_event_open; needs CAP_PERFMON)"));
            }
        }
        Ok(Faults { sets })
    }

    /// Faults counted since the counters were opened (`minor` is 0 with [`Counted::Major`]).
    pub fn read(&mut self) -> ProcessFaults {
        let mut f = ProcessFaults::default();
        for s in &mut self.sets {
            if let Some(m) = &mut s.minor {
                f.minor += m.read().unwrap_or(0);
            }
            f.major += s.major.read().unwrap_or(0);
        }
        f
    }
}
