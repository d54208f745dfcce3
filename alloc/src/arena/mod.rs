//! The arena layer (memkind_arena(3)): a kind's jemalloc arenas, the thread → arena choice and
//! the per-thread, per-kind explicit thread caches.
//!
//! Every kind but DEFAULT gets its own explicit jemalloc tcache in every thread that uses it.
//! jemalloc's tcache bins do not know arenas, so a cache must only ever hold memory of one kind:
//! we fill it only through that kind's arenas, and a free goes to the cache of the kind that owns
//! the pointer (found in the extent map), whatever kind the caller named. DEFAULT alone uses
//! jemalloc's automatic tcache.
//!
//! The per-thread state is one thread-local array, indexed by kind id, of
//! `generation << 32 | mallocx flags` (arena + tcache). A dynamic kind that is destroyed and whose
//! slot is reused gets a new generation, so stale entries are never used. Caches are destroyed at
//! thread exit (a pthread key destructor) or when their kind is destroyed, exactly once, arbitrated
//! by [`TCACHE_OWNER`].

pub mod default;
mod fork;
pub mod heap;
pub mod init;
pub mod lifecycle;
pub mod magazine;
pub mod thread;

use core::sync::atomic::{AtomicU64, Ordering};

pub use lifecycle::{
    bijective_arena, create_fixed, create_pmem, destroy_arenas_of, destroy_kind, runtime,
    set_usage_policy,
};

use crate::counters::take_outstanding;
use crate::error::Error;
use crate::jemalloc::{self, ExtentHooks};
use crate::kind::{set_arena_kind, set_pending, ArenaCount, HookSet, Kind, Placement};
/// jemalloc's limit on explicit tcaches (MALLOCX_TCACHE_MAX + 1).
pub const TCACHE_LIMIT: usize = 4096;

/// tcache index → `(kind id + 1) << 32 | generation` of the kind it caches, 0 when free.
pub(crate) static TCACHE_OWNER: [AtomicU64; TCACHE_LIMIT] =
    [const { AtomicU64::new(0) }; TCACHE_LIMIT];

/// The hooks layer's extent hook table of `set`.
fn hook_table(set: HookSet) -> &'static ExtentHooks {
    match set {
        HookSet::Anon => &crate::hooks::anon::HOOKS,
        HookSet::Hugetlb => &crate::hooks::hugetlb::HOOKS,
        HookSet::File => &crate::hooks::file::HOOKS,
        HookSet::Fixed => &crate::hooks::fixed::HOOKS,
    }
}

/// Default number of arenas per kind: 4 per CPU, a power of two, at most 256 (memkind 1.14).
pub fn default_arenas_per_kind() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    (cpus.saturating_mul(4))
        .next_power_of_two()
        .min(crate::env::MAX_ARENAS_PER_KIND)
}

/// Create the arenas of `kind` (caller holds `INIT_LOCK`). DEFAULT uses the automatic arenas,
/// hooked at start-up, and gets none.
pub(crate) fn create_arenas(
    kind: &'static Kind,
    placement: &Placement,
    hooks: HookSet,
) -> Result<Box<[u32]>, Error> {
    let hooks = hook_table(hooks);
    let n = match placement.arenas {
        ArenaCount::Automatic => return Ok(Box::new([])),
        ArenaCount::Single => 1,
        ArenaCount::PerThread => crate::env::get()
            .arenas_per_kind?
            .unwrap_or_else(default_arenas_per_kind),
        ArenaCount::PerThreadUpTo(max) => crate::env::get()
            .arenas_per_kind?
            .unwrap_or_else(default_arenas_per_kind)
            .min(max),
    };
    let mut out = Vec::with_capacity(n as usize);
    set_pending(Some(kind));
    let result = (|| {
        for _ in 0..n {
            let ind = match jemalloc::arena_create(hooks) {
                Ok(ind) => ind,
                // jemalloc's arena limit: a kind that may share arenas goes on with fewer.
                Err(_) if placement.arenas.may_degrade() && !out.is_empty() => break,
                Err(_) => return Err(Error::ArenasCreate),
            };
            set_arena_kind(ind, Some(kind));
            out.push(ind);
            if matches!(placement.backing, crate::sys::Backing::File { .. }) {
                // File memory is expensive to purge and refault (a hole punched, blocks
                // reallocated): freed extents follow the decay (10 s by default, the
                // CONSERVATIVE policy sets 0) even when they coalesce past jemalloc's 8 MiB
                // oversize threshold.
                let _ = jemalloc::arena_set_oversize_threshold(ind, usize::MAX);
            }
        }
        Ok(())
    })();
    set_pending(None);
    if let Err(e) = result {
        for &ind in &out {
            let _ = jemalloc::arena_destroy(ind);
            set_arena_kind(ind, None);
        }
        return Err(e);
    }
    Ok(out.into_boxed_slice())
}

/// Install our hooks on jemalloc's automatic arenas (DEFAULT) at start-up.
pub(crate) fn hook_automatic_arenas(default: &'static Kind) -> Result<(), Error> {
    let n = jemalloc::narenas_auto().map_err(|_| Error::Runtime)?;
    for ind in 0..n {
        set_arena_kind(ind, Some(default));
        jemalloc::arena_set_hooks(ind, &crate::hooks::anon::HOOKS).map_err(|_| Error::Runtime)?;
    }
    seal_arena0_prefix();
    Ok(())
}

/// jemalloc's very first allocation in the process (the calling thread's tcache stack, made
/// while jemalloc initialises, before any hook can be installed) grows arena 0 by one region
/// through jemalloc's default hooks. What is left of that region sits in arena 0's retained set
/// and would later be carved into DEFAULT allocations the extent map cannot see. Take all of it
/// now and keep it (virtual memory only, never touched): large allocations for the bulk (each
/// costs its size class plus one page, jemalloc's cache-oblivious offset), then 8-byte objects,
/// whose slabs are one page, until an allocation comes from our own hook.
fn seal_arena0_prefix() {
    use crate::extent_map::MAP;
    use crate::sys::PAGE_SIZE;
    const LARGE_MIN: usize = 16 * 1024;
    let flags = jemalloc::ARENA0_UNCACHED;
    let retained = || {
        jemalloc::refresh_stats()
            .and_then(|()| jemalloc::read_size(c"stats.arenas.0.retained"))
            .unwrap_or(0)
    };
    for _ in 0..64 {
        let r = retained();
        let mut s = r.saturating_sub(PAGE_SIZE) & !(PAGE_SIZE - 1);
        while s >= LARGE_MIN && jemalloc::nallocx(s, flags) + PAGE_SIZE > r {
            s -= PAGE_SIZE;
        }
        if s < LARGE_MIN {
            break;
        }
        let Some(p) = jemalloc::mallocx(s, flags) else {
            return;
        };
        if MAP.lookup(p as usize).is_some() {
            jemalloc::dallocx(p, flags);
            break;
        }
    }
    for _ in 0..(16 * 512) {
        let Some(p) = jemalloc::mallocx(8, flags) else {
            return;
        };
        if MAP.lookup(p as usize).is_some() {
            jemalloc::dallocx(p, flags);
            break;
        }
    }
}

/// Destroy the arenas of a dynamic kind: flush and destroy every thread's cache of it first, so
/// no cache keeps pointers into a destroyed arena.
pub(crate) fn destroy_arenas(kind: &Kind, arenas: &[u32]) -> Result<(), Error> {
    thread::drain_kind(kind);
    let me = owner_tag(kind);
    for (t, owner) in TCACHE_OWNER.iter().enumerate() {
        if owner
            .compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let _ = jemalloc::tcache_destroy(t as u32);
        }
    }
    // After the drain, what is still outstanding is held by the program (a realloc moves a block
    // within the kind, so it needs no count).
    if take_outstanding(kind.id()) > 0 {
        kind.detach_mappings();
    }
    let mut result = Ok(());
    for &ind in arenas {
        if jemalloc::arena_destroy(ind).is_err() {
            result = Err(Error::OperationFailed);
        }
        set_arena_kind(ind, None);
    }
    result
}

pub(crate) fn owner_tag(kind: &Kind) -> u64 {
    ((kind.id() as u64 + 1) << 32) | kind.generation() as u64
}

/// Explicit thread caches alive right now (diagnostics and tests).
pub fn live_thread_caches() -> usize {
    TCACHE_OWNER
        .iter()
        .filter(|o| o.load(Ordering::Relaxed) != 0)
        .count()
}

/// `memkind_thread_get_arena`: the arena of `kind` for this thread (kinds hand their arenas to threads in turn).
pub fn thread_arena(kind: &'static Kind) -> Result<u32, Error> {
    if kind.is_default() {
        return Ok(0);
    }
    let flags = thread::flags(kind)?;
    Ok(arena_of_flags(flags).unwrap_or(0))
}

/// The arena index encoded in mallocx flags.
pub fn arena_of_flags(flags: i32) -> Option<u32> {
    let a = (flags as u32) >> 20;
    (a != 0).then(|| a - 1)
}
