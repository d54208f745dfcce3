//! Per-thread state: for every kind, the mallocx flags (arena + explicit tcache) this thread
//! uses, and the thread-exit clean-up of its caches.
#![allow(
    unsafe_code,
    reason = "pthread key registration for thread-exit clean-up"
)]

use core::cell::Cell;
use core::sync::atomic::Ordering;
use std::sync::OnceLock;

use tikv_jemalloc_sys::{MALLOCX_ARENA, MALLOCX_TCACHE, MALLOCX_TCACHE_NONE};

use super::{owner_tag, TCACHE_LIMIT, TCACHE_OWNER};
use crate::error::Error;
use crate::jemalloc;
use crate::kind::{Kind, MAX_KINDS};

thread_local! {
    /// `generation << 32 | flags` per kind id; 0 = not set up in this thread.
    static SLOTS: [Cell<u64>; MAX_KINDS] = const { [const { Cell::new(0) }; MAX_KINDS] };
    /// Set once the thread-exit destructor ran: later calls get no cache.
    static EXITING: Cell<bool> = const { Cell::new(false) };
    /// The pthread key is set for this thread.
    static KEYED: Cell<bool> = const { Cell::new(false) };
}

/// The mallocx flags for `kind` in this thread (arena + tcache), setting them up on first use.
#[inline(always)]
pub fn flags(kind: &'static Kind) -> Result<i32, Error> {
    let id = kind.id() as usize;
    let e = SLOTS.with(|s| s[id].get());
    if (e >> 32) as u32 == kind.generation() {
        return Ok(e as u32 as i32);
    }
    flags_slow(kind)
}

/// Flags for freeing into `kind`'s cache: only the tcache bits matter to dallocx.
#[inline(always)]
pub fn free_flags(kind: &'static Kind) -> i32 {
    flags(kind).unwrap_or(MALLOCX_TCACHE_NONE)
}

fn thread_hash() -> u64 {
    // SAFETY: pthread_self has no preconditions.
    let t = unsafe { libc::pthread_self() } as u64;
    // Fibonacci hashing spreads the (aligned) pthread_t values.
    t.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
}

#[cold]
fn flags_slow(kind: &'static Kind) -> Result<i32, Error> {
    let rt = kind.runtime()?;
    if rt.arenas.is_empty() {
        // DEFAULT: automatic arenas and the automatic tcache.
        return Ok(0);
    }
    let arena = rt.arenas[(thread_hash() as usize) & (rt.arenas.len() - 1)];
    let tcache_flags = if EXITING.with(Cell::get) {
        MALLOCX_TCACHE_NONE
    } else {
        match jemalloc::tcache_create() {
            Ok(t) if (t as usize) < TCACHE_LIMIT => {
                TCACHE_OWNER[t as usize].store(owner_tag(kind), Ordering::Release);
                register_exit();
                MALLOCX_TCACHE(t as usize)
            }
            Ok(t) => {
                let _ = jemalloc::tcache_destroy(t);
                MALLOCX_TCACHE_NONE
            }
            // jemalloc's 4095 explicit caches are in use: run uncached rather than fail.
            Err(_) => MALLOCX_TCACHE_NONE,
        }
    };
    let flags = MALLOCX_ARENA(arena as usize) | tcache_flags;
    let entry = ((kind.generation() as u64) << 32) | flags as u32 as u64;
    SLOTS.with(|s| s[kind.id() as usize].set(entry));
    Ok(flags)
}

fn tcache_of(flags: i32) -> Option<u32> {
    let t = ((flags as u32) >> 8) & 0xfff;
    (t >= 2).then(|| t - 2)
}

static KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();

fn register_exit() {
    if KEYED.with(Cell::get) {
        return;
    }
    let key = *KEY.get_or_init(|| {
        let mut k: libc::pthread_key_t = 0;
        // SAFETY: pthread_key_create writes the key; `on_thread_exit` is a valid destructor
        // that never unwinds.
        unsafe { libc::pthread_key_create(&mut k, Some(on_thread_exit)) };
        k
    });
    // SAFETY: a non-null value makes the destructor run at thread exit; the value is unused.
    unsafe { libc::pthread_setspecific(key, core::ptr::dangling::<libc::c_void>()) };
    KEYED.with(|k| k.set(true));
}

/// pthread key destructor: give back this thread's caches (the ones no kind destroy took).
unsafe extern "C" fn on_thread_exit(_: *mut libc::c_void) {
    EXITING.with(|e| e.set(true));
    KEYED.with(|k| k.set(false));
    SLOTS.with(|slots| {
        for (id, slot) in slots.iter().enumerate() {
            let e = slot.replace(0);
            if e == 0 {
                continue;
            }
            let Some(t) = tcache_of(e as u32 as i32) else {
                continue;
            };
            let tag = ((id as u64 + 1) << 32) | (e >> 32);
            if TCACHE_OWNER[t as usize]
                .compare_exchange(tag, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let _ = jemalloc::tcache_destroy(t);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcache_decoding() {
        assert_eq!(tcache_of(MALLOCX_TCACHE(0)), Some(0));
        assert_eq!(
            tcache_of(MALLOCX_TCACHE(4093) | MALLOCX_ARENA(17)),
            Some(4093)
        );
        assert_eq!(tcache_of(MALLOCX_TCACHE_NONE), None);
        assert_eq!(tcache_of(0), None);
        assert_eq!(
            super::super::arena_of_flags(MALLOCX_ARENA(17) | MALLOCX_TCACHE(3)),
            Some(17)
        );
        assert_eq!(super::super::arena_of_flags(0), None);
    }
}

thread_local! {
    /// Depth of library initialisation running on this thread (kind set-up, start-up).
    static IN_INIT: Cell<u32> = const { Cell::new(0) };
}

/// Marks this thread as initialising the library until dropped. While it lives, the Rust
/// allocator API serves the library's own allocations from the system allocator, so a program
/// that uses a kind as its `#[global_allocator]` does not re-enter a kind being set up.
pub struct InitGuard(());

impl InitGuard {
    /// Enter.
    pub fn enter() -> InitGuard {
        IN_INIT.with(|d| d.set(d.get() + 1));
        InitGuard(())
    }
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        IN_INIT.with(|d| d.set(d.get() - 1));
    }
}

/// True while this thread is inside library initialisation.
#[inline(always)]
pub fn in_init() -> bool {
    IN_INIT.with(Cell::get) != 0
}
