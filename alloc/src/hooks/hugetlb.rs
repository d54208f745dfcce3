//! Hooks for MAP_HUGETLB kinds (HUGETLB, HBW_*HUGETLB, GBTLB family).
//!
//! Differences from anonymous memory: no lazy purge (hugetlb pages cannot be MADV_FREEd) and a
//! forced purge only of ranges aligned to the huge page, so jemalloc's page-granular purges of
//! partial huge pages opt out instead of failing. That, and jemalloc's normal dirty decay, is what
//! keeps 1 MiB allocations from re-zeroing a 2 MiB page on every reuse (memkind 1.14's
//! 18-42 µs per pair).
#![allow(unsafe_code, reason = "extern \"C\" hook table handed to jemalloc")]

use core::ffi::c_void;

use super::anon::{alloc, commit, dalloc, decommit, destroy, merge, split};
use super::{placement_of, shims};
use crate::jemalloc::ExtentHooks;

/// jemalloc contract (purge_forced): "returns false if pages within the purged virtual memory
/// range will be immediately purged". Only whole, aligned huge pages can be dropped; anything
/// else opts out (true).
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

/// The table for hugetlb arenas: the anonymous-memory hooks (the kind's placement carries
/// MAP_HUGETLB and the page size), without lazy purge, and with the aligned forced purge above.
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
