//! The tables that validate builder and memory handles from C.

#![allow(
    unsafe_code,
    reason = "the handle tables hand out references to boxes they own"
)]

use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};

use super::*;

/// A table of objects handed to C as opaque pointers: the handle is the address of a slot, so a
/// pointer from C is validated by a range check and a load, never dereferenced before it is
/// known to be one of ours. `N` bounds how many objects may be live at once.
///
/// Slots are taken next-fit from a rotating cursor: a freed slot is handed out again only once
/// the cursor has gone round the whole table, so a deleted handle does not become valid again
/// (as another object) at the next creation, but after about `N` of them at the earliest
/// (sooner only when nearly all `N` slots are live).
pub struct Handles<T, const N: usize> {
    pub(super) slots: [AtomicPtr<T>; N],
    /// Where the search for a free slot starts (the slot after the last one taken).
    pub(super) cursor: AtomicUsize,
}

/// Move `v` to the heap; `Err(v)` when the allocation fails (`Box::new` would abort).
pub(super) fn try_box<T>(v: T) -> Result<*mut T, T> {
    let layout = std::alloc::Layout::new::<T>();
    if layout.size() == 0 {
        let p = core::ptr::NonNull::<T>::dangling().as_ptr();
        // SAFETY: a dangling, aligned pointer is valid for zero-sized writes.
        unsafe { p.write(v) };
        return Ok(p);
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc(layout) }.cast::<T>();
    if p.is_null() {
        return Err(v);
    }
    // SAFETY: fresh, non-null, allocated with T's layout.
    unsafe { p.write(v) };
    // `Box::from_raw` may take it back: the global allocator with `Layout::new::<T>()`.
    Ok(p)
}

impl<T: Send + Sync, const N: usize> Handles<T, N> {
    /// An empty table.
    pub const fn new() -> Self {
        Handles {
            slots: [const { AtomicPtr::new(core::ptr::null_mut()) }; N],
            cursor: AtomicUsize::new(0),
        }
    }

    /// Store `v`; its handle, or `None` when all `N` slots are taken or there is no memory.
    pub fn insert(&self, v: T) -> Option<*mut c_void> {
        let b = try_box(v).ok()?;
        let start = self.cursor.load(Ordering::Relaxed);
        for k in 0..N {
            let i = (start % N + k) % N;
            let Some(s) = self.slots.get(i) else {
                continue;
            };
            if s.load(Ordering::Relaxed).is_null()
                && s.compare_exchange(
                    core::ptr::null_mut(),
                    b,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                // Racing inserts may move the cursor back by a slot or two: harmless, the
                // next search skips live slots.
                self.cursor.store((i + 1) % N, Ordering::Relaxed);
                return Some(s as *const AtomicPtr<T> as *mut c_void);
            }
        }
        // SAFETY: `b` was never published: this thread owns it (allocated as a Box would be).
        drop(unsafe { Box::from_raw(b) });
        None
    }

    fn slot(&self, h: *const c_void) -> Option<&AtomicPtr<T>> {
        let sz = core::mem::size_of::<AtomicPtr<T>>();
        let off = (h as usize).wrapping_sub(self.slots.as_ptr() as usize);
        if off < N * sz && off.is_multiple_of(sz) {
            self.slots.get(off / sz)
        } else {
            None
        }
    }

    /// The object behind handle `h`; `None` for NULL, foreign pointers and deleted handles.
    ///
    /// # Safety
    /// The object must not be removed while the reference is used (C's contract: a handle is
    /// not used concurrently with or after its deletion).
    pub unsafe fn get(&self, h: *const c_void) -> Option<&T> {
        let p = self.slot(h)?.load(Ordering::Acquire);
        // SAFETY: a non-null slot holds a live box until `remove`; the caller keeps it alive.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Take the object behind `h` out of the table (`None` for anything not live).
    pub fn remove(&self, h: *const c_void) -> Option<Box<T>> {
        let p = self.slot(h)?.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: the slot owned this box; swapping it out transfers ownership to us.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
    }

    /// Number of live objects.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !s.load(Ordering::Relaxed).is_null())
            .count()
    }
}

impl<T: Send + Sync, const N: usize> Default for Handles<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// How many builders, and how many memories, may be live at once (1.14 has no limit; beyond
/// this, `memtier_builder_new` and `memtier_builder_construct_memtier_memory` return NULL).
pub const MAX_HANDLES: usize = 4096;

/// A live builder, as its handle's table holds it.
///
/// A builder is changed by add_tier and ctl_set and read by construct; each call takes the
/// builder out (under a lock held for that move only, with `try_lock`), works on it without any
/// lock (its allocations included), and puts it back. A call that finds the lock held, or the
/// builder out, fails instead of waiting: two calls on one builder at the same time break the
/// C contract anyway, and a builder out (or its lock held) when another thread forks stays
/// unusable in the child (its calls fail) rather than deadlocking it.
pub struct BuilderSlot(pub(super) Mutex<Option<Builder>>);

impl BuilderSlot {
    /// A slot holding `b`.
    pub fn new(b: Builder) -> BuilderSlot {
        BuilderSlot(Mutex::new(Some(b)))
    }

    /// Run `f` on the builder; `None` when it is in use by another call.
    pub fn with<R>(&self, f: impl FnOnce(&mut Builder) -> R) -> Option<R> {
        let mut b = match self.0.try_lock() {
            Ok(mut g) => g.take(),
            Err(TryLockError::Poisoned(e)) => e.into_inner().take(),
            Err(TryLockError::WouldBlock) => None,
        }?;
        let r = f(&mut b);
        // Held only by another call's `take` attempt (a move), so never for long.
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(b);
        Some(r)
    }
}

/// Live builders.
pub static BUILDERS: Handles<BuilderSlot, MAX_HANDLES> = Handles::new();
/// Live memories.
pub static MEMORIES: Handles<Memory, MAX_HANDLES> = Handles::new();
