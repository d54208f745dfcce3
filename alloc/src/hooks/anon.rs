//! Hooks for anonymous memory (DEFAULT, REGULAR, INTERLEAVE, HBW, DAX_KMEM, capacity / latency /
//! bandwidth kinds): mmap, then mbind to the kind's nodes for the CPU that grows the arena.
#![allow(unsafe_code, reason = "extern \"C\" hook table handed to jemalloc")]

use core::ffi::c_void;

use super::shims;
use crate::jemalloc::ExtentHooks;

/// jemalloc contract (alloc): "returns a pointer to size bytes of mapped memory on behalf of
/// arena arena_ind such that the extent's base address is a multiple of alignment, as well as
/// setting *zero to indicate whether the extent is zeroed and *commit to indicate whether the
/// extent is committed. Upon error the function returns NULL and leaves *zero and *commit
/// unmodified." We never honour a non-NULL new_addr.
pub(super) unsafe extern "C" fn alloc(
    _hooks: *mut ExtentHooks,
    new_addr: *mut c_void,
    size: usize,
    alignment: usize,
    zero: *mut bool,
    commit: *mut bool,
    arena_ind: u32,
) -> *mut c_void {
    shims::alloc(new_addr, size, alignment, zero, commit, arena_ind)
}

/// jemalloc contract (dalloc): "If the function returns true, this indicates opt-out from
/// deallocation; the virtual memory mapping associated with the extent remains mapped, in the
/// same commit state, and available for future use." We opt out: jemalloc retains the extent and
/// purges it instead; the mapping goes back to the OS only through destroy.
pub(super) unsafe extern "C" fn dalloc(
    _h: *mut ExtentHooks,
    _addr: *mut c_void,
    _size: usize,
    _committed: bool,
    _arena_ind: u32,
) -> bool {
    true
}

/// jemalloc contract (destroy): "unconditionally destroys an extent ... This function may be
/// called to destroy retained extents during arena destruction."
pub(super) unsafe extern "C" fn destroy(
    _h: *mut ExtentHooks,
    addr: *mut c_void,
    size: usize,
    _committed: bool,
    arena_ind: u32,
) {
    shims::destroy(addr, size, arena_ind)
}

/// jemalloc contract (commit): "returns false upon success." Our memory is always committed.
pub(super) unsafe extern "C" fn commit(
    _h: *mut ExtentHooks,
    _a: *mut c_void,
    _s: usize,
    _o: usize,
    _l: usize,
    _i: u32,
) -> bool {
    false
}

/// jemalloc contract (decommit): "If the function returns true, this indicates opt-out from
/// decommit; the memory remains committed." We opt out and rely on purge.
pub(super) unsafe extern "C" fn decommit(
    _h: *mut ExtentHooks,
    _a: *mut c_void,
    _s: usize,
    _o: usize,
    _l: usize,
    _i: u32,
) -> bool {
    true
}

/// jemalloc contract (purge_lazy): "discards physical pages within the virtual memory mapping
/// ... returns false if pages within the purged virtual memory range will be lazily purged."
/// MADV_FREE.
unsafe extern "C" fn purge_lazy(
    _h: *mut ExtentHooks,
    addr: *mut c_void,
    _s: usize,
    offset: usize,
    length: usize,
    arena_ind: u32,
) -> bool {
    shims::purge(addr, offset, length, arena_ind, libc::MADV_FREE)
}

/// jemalloc contract (purge_forced): "returns false if pages within the purged virtual memory
/// range will be immediately purged (zero-filled on next access)." MADV_DONTNEED.
unsafe extern "C" fn purge_forced(
    _h: *mut ExtentHooks,
    addr: *mut c_void,
    _s: usize,
    offset: usize,
    length: usize,
    arena_ind: u32,
) -> bool {
    shims::purge(addr, offset, length, arena_ind, libc::MADV_DONTNEED)
}

/// jemalloc contract (split): "returns false upon success". Splitting is bookkeeping only.
pub(super) unsafe extern "C" fn split(
    _h: *mut ExtentHooks,
    a: *mut c_void,
    s: usize,
    sa: usize,
    sb: usize,
    _c: bool,
    i: u32,
) -> bool {
    // jemalloc registered both sides of the split point in its page map (for `usable_size`).
    let at = (a as usize).wrapping_add(sa);
    crate::extent_map::MAP.note_je_leaf(at.wrapping_sub(1));
    crate::extent_map::MAP.note_je_leaf(at);
    if crate::probe::on() {
        super::note2(
            crate::probe::records::extent_op::SPLIT,
            a as usize,
            s,
            (a as usize).wrapping_add(sa),
            sb,
            i,
        );
    }
    false
}

/// jemalloc contract (merge): "returns false upon success". Ownership is per granule in the
/// extent map, so merging adjacent extents of one arena needs no work.
pub(super) unsafe extern "C" fn merge(
    _h: *mut ExtentHooks,
    a: *mut c_void,
    sa: usize,
    b: *mut c_void,
    sb: usize,
    _c: bool,
    i: u32,
) -> bool {
    if crate::probe::on() {
        super::note2(
            crate::probe::records::extent_op::MERGE,
            a as usize,
            sa,
            b as usize,
            sb,
            i,
        );
    }
    false
}

/// The table for anonymous-memory arenas.
pub static HOOKS: ExtentHooks = ExtentHooks {
    alloc: Some(alloc),
    dalloc: Some(dalloc),
    destroy: Some(destroy),
    commit: Some(commit),
    decommit: Some(decommit),
    purge_lazy: Some(purge_lazy),
    purge_forced: Some(purge_forced),
    split: Some(split),
    merge: Some(merge),
};
