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
    READY.store(true, Ordering::Release);
}

extern "C" fn constructor() {
    ensure();
}

#[allow(unsafe_code, reason = "ELF constructor registration")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;
