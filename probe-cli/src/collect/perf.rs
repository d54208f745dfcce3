//! Process-wide page faults from perf software counters (`PAGE_FAULTS_MIN` / `_MAJ`), user faults
//! only (as the probe's `page_fault_user` tracepoint sees them), so kind shares add up.

use anyhow::{Context as _, Result};
use perf_event::events::Software;
use perf_event::{Builder, Counter};

use super::procfs::Proc;
use crate::model::ProcessFaults;

/// The counters of one process: one per thread (a perf counter observes one thread; `inherit`
/// extends it to the threads and children that thread creates afterwards).
pub struct Faults {
    counters: Vec<(Counter, Counter)>,
}

fn open(tid: u32) -> std::io::Result<(Counter, Counter)> {
    let mk = |ev: Software| -> std::io::Result<Counter> {
        let mut c = Builder::new(ev)
            .observe_pid(tid as i32)
            .any_cpu()
            .inherit(true)
            .build()?;
        c.enable()?;
        Ok(c)
    };
    Ok((
        mk(Software::PAGE_FAULTS_MIN)?,
        mk(Software::PAGE_FAULTS_MAJ)?,
    ))
}

impl Faults {
    /// Counters for a child held before exec: one pair, inherited by everything it starts.
    pub fn for_child(pid: u32) -> Result<Faults> {
        let pair = open(pid).with_context(|| format!("cannot open page-fault counters for process {pid} (perf_event_open; needs CAP_PERFMON)"))?;
        Ok(Faults {
            counters: vec![pair],
        })
    }

    /// Counters for a running process: a pair per existing thread. Threads that end between the
    /// listing and the open are skipped.
    pub fn for_pid(proc: &Proc, pid: u32) -> Result<Faults> {
        let tids = proc
            .tasks(pid)
            .with_context(|| format!("cannot list the threads of process {pid}"))?;
        let mut counters = Vec::with_capacity(tids.len());
        let mut last_err = None;
        for t in tids {
            match open(t) {
                Ok(p) => counters.push(p),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => last_err = Some(e),
            }
        }
        if counters.is_empty() {
            if let Some(e) = last_err {
                return Err(e).with_context(|| format!("cannot open page-fault counters for process {pid} (perf_event_open; needs CAP_PERFMON)"));
            }
        }
        Ok(Faults { counters })
    }

    /// Faults counted since the counters were opened.
    pub fn read(&mut self) -> ProcessFaults {
        let mut f = ProcessFaults::default();
        for (min, maj) in &mut self.counters {
            f.minor += min.read().unwrap_or(0);
            f.major += maj.read().unwrap_or(0);
        }
        f
    }
}
