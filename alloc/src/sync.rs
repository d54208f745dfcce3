//! A small lock that survives fork(2).
//!
//! The library's two locks (kind set-up, the list of per-thread records) are taken rarely, but a
//! `fork` in one thread while another holds one would leave the child with a lock nobody will
//! release. `pthread_atfork` handlers take both locks before a fork and, in both processes,
//! release them after, so the child starts with consistent, unlocked state (jemalloc does the
//! same for its own locks). The same handlers give a child's PMEM kinds their own files
//! ([`crate::kind::pmem::fork_prepare`]).
#![allow(
    unsafe_code,
    reason = "lock guarding data via UnsafeCell; pthread_atfork registration"
)]

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// A test-and-set lock with yielding back-off, for short, rare critical sections.
pub struct ForkLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `locked` (acquire on lock, release on unlock).
unsafe impl<T: Send> Sync for ForkLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for ForkLock<T> {}

/// Holds the lock until dropped.
pub struct Guard<'a, T> {
    lock: &'a ForkLock<T>,
}

impl<T> ForkLock<T> {
    /// An unlocked lock.
    pub const fn new(value: T) -> Self {
        ForkLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub(crate) fn acquire(&self) {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
        }
    }

    pub(crate) fn release(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// The value while this thread holds the lock through [`ForkLock::acquire`] (the fork
    /// handlers lock in `prepare` and release in `parent` / `child`); see [`Held`].
    pub(crate) fn held(&self) -> Held<'_, T> {
        Held { lock: self }
    }

    /// Lock.
    pub fn lock(&self) -> Guard<'_, T> {
        self.acquire();
        Guard { lock: self }
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

/// Access to a value whose lock this thread holds through [`ForkLock::acquire`]; releases
/// nothing when dropped.
pub(crate) struct Held<'a, T> {
    lock: &'a ForkLock<T>,
}

impl<T> Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the caller holds the lock (acquired and not yet released).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.lock.release();
    }
}

extern "C" fn prepare() {
    crate::kind::INIT_LOCK.acquire();
    // With kinds frozen: copy every PMEM kind's data into a fresh file for the child.
    crate::kind::pmem::fork_prepare();
    crate::arena::thread::LIST.acquire();
    crate::probe::counters::LIST.acquire();
}

extern "C" fn parent() {
    crate::probe::counters::LIST.release();
    crate::arena::thread::LIST.release();
    crate::kind::pmem::fork_parent();
    crate::kind::INIT_LOCK.release();
}

extern "C" fn child() {
    // The prepare handler holds the counters' list; the child has only this thread.
    crate::probe::counters::fork_child_locked(&mut crate::probe::counters::LIST.held());
    crate::probe::counters::LIST.release();
    crate::arena::thread::LIST.release();
    // Move every PMEM kind onto its own file, so parent and child never share file blocks.
    crate::kind::pmem::fork_child();
    crate::kind::INIT_LOCK.release();
}

/// Register the fork handlers (once, at start-up).
pub(crate) fn register_fork_handlers() {
    // SAFETY: the handlers are plain functions that flip the two locks and move PMEM kinds onto
    // fresh files (syscalls and the system allocator only, never jemalloc).
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_and_releases() {
        static L: ForkLock<u64> = ForkLock::new(0);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..10_000 {
                        *L.lock() += 1;
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(*L.lock(), 40_000);
    }
}
