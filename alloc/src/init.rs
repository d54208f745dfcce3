//! Library start-up: hook jemalloc's automatic arenas (DEFAULT) before anything is allocated.
//! Runs from an ELF constructor when the .so is loaded, and lazily from the first call that
//! needs it (Rust users of the rlib).

use core::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::kind::{default_kind, ArenaCount, Placement, Runtime, INIT_LOCK};

static READY: AtomicBool = AtomicBool::new(false);
static ONCE: Once = Once::new();

/// Make sure start-up ran.
#[inline]
pub fn ensure() {
    if !READY.load(Ordering::Acquire) {
        ONCE.call_once(init);
    }
}

fn init() {
    let _reentry = crate::arena::thread::InitGuard::enter();
    let _g = INIT_LOCK.lock();
    let default = default_kind();
    default.publish(
        Placement {
            arenas: ArenaCount::Automatic,
            ..Placement::anon()
        },
        Runtime::new(Box::new([])),
    );
    if let Err(e) = crate::arena::hook_automatic_arenas(default) {
        crate::env::debug_log!("installing hooks on automatic arenas failed: {e}");
    }
    crate::kind::default::set_oversize(crate::jemalloc::oversize_threshold().unwrap_or(0));
    crate::arena::magazine::Classes::get();
    crate::sync::register_fork_handlers();
    apply_background_thread_limit();
    READY.store(true, Ordering::Release);
}

/// `MEMKIND_BACKGROUND_THREAD_LIMIT=N` (N > 0) caps jemalloc's background threads, as in 1.14
/// (0 keeps jemalloc's default; the threads start with `memkind_set_bg_threads(true)`). A
/// malformed value is reported on stderr and ignored here (1.14 aborts the process);
/// `memkind_set_bg_threads` then returns MEMKIND_ERROR_ENVIRON.
fn apply_background_thread_limit() {
    match crate::env::get().background_thread_limit {
        Ok(Some(n)) if n > 0 => {
            if let Err(e) = crate::jemalloc::set_max_background_threads(n as usize) {
                crate::env::debug_log!("setting max_background_threads to {n} failed: {e}");
            }
        }
        Ok(_) => {}
        Err(_) => eprintln!(
            "MEMKIND_ERROR: wrong value of MEMKIND_BACKGROUND_THREAD_LIMIT={:?} (expected 0..4294967295); ignored",
            crate::env::secure_getenv("MEMKIND_BACKGROUND_THREAD_LIMIT").unwrap_or_default()
        ),
    }
}

extern "C" fn constructor() {
    ensure();
}

#[allow(unsafe_code, reason = "ELF constructor registration")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;
