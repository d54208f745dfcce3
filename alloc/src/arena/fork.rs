//! The `pthread_atfork` handlers, next to the state they guard: the kind set-up lock
//! ([`crate::kind::INIT_LOCK`]), the list of per-thread records ([`super::thread::LIST`]), the
//! probe's list of per-thread counters and the PMEM kinds' files.
//!
//! The handlers take both locks before a fork and, in both processes, release them after, so the
//! child starts with consistent, unlocked state (jemalloc does the same for its own locks). The
//! same handlers give a child's PMEM kinds their own files ([`crate::kind::pmem::fork_prepare`]).
#![allow(unsafe_code, reason = "pthread_atfork registration")]

extern "C" fn prepare() {
    crate::kind::INIT_LOCK.acquire();
    // With kinds frozen: copy every PMEM kind's data into a fresh file for the child.
    crate::kind::pmem::fork_prepare();
    super::thread::LIST.acquire();
    crate::counters::thread::LIST.acquire();
}

extern "C" fn parent() {
    crate::counters::thread::LIST.release();
    super::thread::LIST.release();
    crate::kind::pmem::fork_parent();
    crate::kind::INIT_LOCK.release();
}

extern "C" fn child() {
    // The prepare handler holds the counters' list; the child has only this thread.
    crate::counters::thread::fork_child_locked(&mut crate::counters::thread::LIST.held());
    crate::counters::thread::LIST.release();
    super::thread::fork_child_locked(&mut super::thread::LIST.held());
    super::thread::LIST.release();
    // Move every PMEM kind onto its own file, so parent and child never share file blocks.
    crate::kind::pmem::fork_child();
    crate::probe::fork_child();
    crate::kind::INIT_LOCK.release();
}

/// Register the fork handlers (once, at start-up).
pub(crate) fn register_fork_handlers() {
    // SAFETY: the handlers are plain functions that flip the two locks and move PMEM kinds onto
    // fresh files (syscalls and the system allocator only, never jemalloc).
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}
