//! Library start-up: hook jemalloc's automatic arenas (DEFAULT) before anything is allocated.
//! Runs from an ELF constructor when the .so is loaded, and lazily from the first call that
//! needs it (Rust users of the rlib).

use core::cell::Cell;
use core::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

use crate::kind::{default_kind, ArenaCount, Placement, Runtime, INIT_LOCK};

static READY: AtomicBool = AtomicBool::new(false);
static ONCE: Once = Once::new();

thread_local! {
    /// This thread is running `init` (it may re-enter the library: its own allocations go to
    /// `malloc`, which an interposer such as memkind's libmemtier.so.0 sends back to
    /// `memkind_malloc`).
    static RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// Make sure start-up ran. Returns at once when called again from inside start-up on the same
/// thread (waiting on the `Once` there would deadlock); the caller then works with what is set
/// up so far (DEFAULT allocations go to arena 0).
#[inline]
pub fn ensure() {
    if !READY.load(Ordering::Acquire) && !RUNNING.with(Cell::get) {
        ONCE.call_once(init);
    }
}

fn init() {
    RUNNING.with(|r| r.set(true));
    let _running = Running;
    let _reentry = super::thread::InitGuard::enter();
    // The environment first (parsed without allocating).
    crate::env::get();
    let _g = INIT_LOCK.lock();
    // Nothing here may allocate until our hooks are on arena 0 (an allocation re-entering
    // through an interposed `malloc` would be carved from memory the extent map cannot see).
    static PLACEMENT: OnceLock<Placement> = OnceLock::new();
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    let default = default_kind();
    default.publish_static(
        PLACEMENT.get_or_init(|| Placement {
            arenas: ArenaCount::Automatic,
            ..Placement::anon()
        }),
        // An empty boxed slice does not allocate.
        RUNTIME.get_or_init(|| Runtime::new(Box::new([]))),
    );
    if let Err(e) = super::hook_automatic_arenas(default) {
        crate::env::debug_log!("installing hooks on automatic arenas failed: {e}");
    }
    super::default::set_oversize(crate::jemalloc::oversize_threshold().unwrap_or(0));
    super::magazine::Classes::get();
    super::fork::register_fork_handlers();
    apply_background_thread_limit();
    READY.store(true, Ordering::Release);
    // Last: from here DEFAULT's fast paths (memkind_malloc / memkind_free) skip the checks
    // above.
    crate::probe::set_default_key((default as *const crate::kind::Kind).cast());
}

/// Clears [`RUNNING`] when `init` returns.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(false));
    }
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
            String::from_utf8_lossy(crate::env::lookup("MEMKIND_BACKGROUND_THREAD_LIMIT").unwrap_or_default())
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
