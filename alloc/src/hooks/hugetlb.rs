//! Hooks for MAP_HUGETLB kinds (HUGETLB, HBW_*HUGETLB, GBTLB family).
//!
//! Differences from anonymous memory: no lazy purge (hugetlb pages cannot be MADV_FREEd) and a
//! forced purge only of ranges aligned to the huge page, so jemalloc's page-granular purges of
//! partial huge pages opt out instead of failing. That, and jemalloc's normal dirty decay, is what
//! keeps 1 MiB allocations from re-zeroing a 2 MiB page on every reuse (memkind 1.14's
//! 18-42 µs per pair).
#![allow(unsafe_code, reason = "extern \"C\" hook table handed to jemalloc")]

use core::ffi::c_void;

use super::{placement_of, shims};
use crate::jemalloc::ExtentHooks;

/// See `anon::alloc`; the kind's placement carries MAP_HUGETLB and the page size.
unsafe extern "C" fn alloc(
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

/// jemalloc contract (dalloc): returning true opts out; the mapping stays for reuse.
unsafe extern "C" fn dalloc(
    _h: *mut ExtentHooks,
    _addr: *mut c_void,
    _size: usize,
    _committed: bool,
    _arena_ind: u32,
) -> bool {
    true
}

/// jemalloc contract (destroy): unconditionally destroy (arena destruction).
unsafe extern "C" fn destroy(
    _h: *mut ExtentHooks,
    addr: *mut c_void,
    size: usize,
    _committed: bool,
    arena_ind: u32,
) {
    shims::destroy(addr, size, arena_ind)
}

/// jemalloc contract (commit): false = success; hugetlb memory is always committed.
unsafe extern "C" fn commit(
    _h: *mut ExtentHooks,
    _a: *mut c_void,
    _s: usize,
    _o: usize,
    _l: usize,
    _i: u32,
) -> bool {
    false
}

/// jemalloc contract (decommit): true = opt out.
unsafe extern "C" fn decommit(
    _h: *mut ExtentHooks,
    _a: *mut c_void,
    _s: usize,
    _o: usize,
    _l: usize,
    _i: u32,
) -> bool {
    true
}

/// jemalloc contract (purge_forced): false = purged. Only whole, aligned huge pages can be
/// dropped; anything else opts out (true).
unsafe extern "C" fn purge_forced(
    _h: *mut ExtentHooks,
    addr: *mut c_void,
    _s: usize,
    offset: usize,
    length: usize,
    arena_ind: u32,
) -> bool {
    let page = placement_of(arena_ind).map_or(crate::sys::HUGE_2M, |(_, p)| p.backing.page_size());
    let start = (addr as usize).wrapping_add(offset);
    if !start.is_multiple_of(page) || !length.is_multiple_of(page) {
        return true;
    }
    shims::purge(addr, offset, length, arena_ind, libc::MADV_DONTNEED)
}

/// jemalloc contract (split): false = success.
unsafe extern "C" fn split(
    _h: *mut ExtentHooks,
    _a: *mut c_void,
    _s: usize,
    _sa: usize,
    _sb: usize,
    _c: bool,
    _i: u32,
) -> bool {
    false
}

/// jemalloc contract (merge): false = success.
unsafe extern "C" fn merge(
    _h: *mut ExtentHooks,
    _a: *mut c_void,
    _sa: usize,
    _b: *mut c_void,
    _sb: usize,
    _c: bool,
    _i: u32,
) -> bool {
    false
}

/// The table for hugetlb arenas.
pub static HOOKS: ExtentHooks = ExtentHooks {
    alloc: Some(alloc),
    dalloc: Some(dalloc),
    destroy: Some(destroy),
    commit: Some(commit),
    decommit: Some(decommit),
    purge_lazy: None,
    purge_forced: Some(purge_forced),
    split: Some(split),
    merge: Some(merge),
};
