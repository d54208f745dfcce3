//! Extent hooks: where jemalloc gets memory for every arena of ours.
//!
//! One static `extent_hooks_t` table per backing ([`anon::HOOKS`] for anonymous memory with an
//! optional mbind policy, [`hugetlb::HOOKS`] for MAP_HUGETLB kinds, [`file::HOOKS`] for
//! file-backed PMEM kinds). The hook functions are thin
//! `extern "C"` shims over the generic logic in this module, written against [`Os`] so it can be
//! tested with a recording fake.
//!
//! jemalloc's contract for every hook (jemalloc(3), "arena.<i>.extent_hooks"): hooks may be
//! called from any thread, concurrently, and while jemalloc holds internal locks, so they must not
//! allocate through jemalloc, must not panic (a panic would unwind into C), and must not take a
//! lock that an allocation path could hold. Everything here uses only atomics, stack buffers and
//! raw syscalls.

#![allow(
    unsafe_code,
    reason = "munmap / madvise of our extents through the Os seam; jemalloc's out-pointers"
)]

pub mod anon;
pub mod file;
pub mod fixed;
pub mod hugetlb;

use core::ffi::c_void;

use crate::extent_map::{ExtentMap, MAP};
use crate::kind::{Kind, Placement};
use crate::probe::records::{backing, extent_op, MKP_NONE};
use crate::probe::{self, Where};
use crate::sys::{Backing, Linux, Os, HUGE_2M};

/// Find the kind and its placement for `arena_ind`.
#[inline]
pub(crate) fn placement_of(arena_ind: u32) -> Option<(&'static Kind, &'static Placement)> {
    let kind = crate::kind::kind_of_arena_for_hook(arena_ind)?;
    Some((kind, kind.placement()?))
}

/// Tell an attached probe about an extent event of arena `arena_ind` (`op`: one of
/// `extent_op`); nothing while detached. Never allocates.
#[inline(always)]
pub(crate) fn note(op: u32, addr: *mut c_void, size: usize, arena_ind: u32) {
    if probe::on() {
        note2(op, addr as usize, size, 0, 0, arena_ind);
    }
}

/// [`note`] with a second range (SPLIT / MERGE), for an attached probe.
#[cold]
#[inline(never)]
pub(crate) fn note2(op: u32, addr: usize, size: usize, addr2: usize, size2: usize, arena_ind: u32) {
    let (kind, w) = match placement_of(arena_ind) {
        Some((k, p)) => {
            let mut w = crate::kind::probe::placement_where(p);
            if crate::kind::fixed::state_of(k).is_some() {
                w.backing = backing::FIXED;
            }
            (u32::from(k.id()), w)
        }
        None => (MKP_NONE, Where::ANON),
    };
    probe::extent2(op, addr, size, addr2, size2, kind, arena_ind, &w);
}

/// Tell an attached probe that the granule at `g` is unmapped.
#[inline(always)]
fn note_unmap(g: usize) {
    probe::extent(
        extent_op::UNMAP,
        g,
        HUGE_2M,
        MKP_NONE,
        MKP_NONE,
        &Where::ANON,
    );
}

fn round_up(v: usize, to: usize) -> Option<usize> {
    v.checked_add(to - 1).map(|x| x & !(to - 1))
}

/// Map `len` bytes (a multiple of `granule`) aligned to `align` (a power of two ≥ granule).
pub(crate) fn map_aligned(
    os: &impl Os,
    len: usize,
    align: usize,
    backing: Backing,
) -> Option<usize> {
    let natural = backing.page_size().max(crate::sys::PAGE_SIZE);
    if align <= natural {
        // Hugetlb mappings come naturally aligned to their page size.
        let p = os.map(len, backing).ok()?.as_ptr() as usize;
        if p.is_multiple_of(align) {
            return Some(p);
        }
        // SAFETY: the mapping just made, misaligned, never handed out.
        let _ = unsafe { os.unmap(p as *mut c_void, len) };
    }
    // Over-map and trim head and tail (both multiples of the page size of the backing).
    let total = len.checked_add(align)?.checked_sub(natural)?;
    let raw = os.map(total, backing).ok()?.as_ptr() as usize;
    let start = round_up(raw, align)?;
    let head = start - raw;
    let tail = raw + total - (start + len);
    if head > 0 {
        // SAFETY: the head of the over-sized mapping just made, never handed out.
        let _ = unsafe { os.unmap(raw as *mut c_void, head) };
    }
    if tail > 0 {
        // SAFETY: its tail, likewise.
        let _ = unsafe { os.unmap((start + len) as *mut c_void, tail) };
    }
    Some(start)
}

/// The alloc hook's logic: map fresh memory for `kind` and record it in `map`.
///
/// Returns the address or null. Never honours `new_addr` (jemalloc then falls back to a
/// fresh address, as the contract allows).
pub(crate) fn extent_alloc(
    os: &impl Os,
    map: &ExtentMap,
    kind: &Kind,
    placement: &Placement,
    new_addr: *mut c_void,
    size: usize,
    alignment: usize,
) -> *mut c_void {
    if !new_addr.is_null() || size == 0 {
        return core::ptr::null_mut();
    }
    let backing = placement.backing;
    let granule = backing.page_size().max(HUGE_2M);
    // GBTLB: 1.14 maps (and so reserves hugepages for) a whole number of GiB per extent; the
    // part beyond what jemalloc asked for is never used, and stays mapped, as in 1.14.
    let Some(len) = round_up(size, backing.map_unit().max(granule)) else {
        return core::ptr::null_mut();
    };
    let Some(align) = alignment.max(granule).checked_next_power_of_two() else {
        return core::ptr::null_mut();
    };
    let Some(p) = map_aligned(os, len, align, backing) else {
        return core::ptr::null_mut();
    };
    if let Some(policy) = &placement.mbind {
        let node = os.current_node();
        let mask = policy.nodes.for_cpu_node(node);
        if os
            .mbind(p as *mut c_void, len, policy.mode, mask.as_words())
            .is_err()
        {
            // SAFETY: the mapping just made, not yet handed to jemalloc.
            let _ = unsafe { os.unmap(p as *mut c_void, len) };
            return core::ptr::null_mut();
        }
    }
    if placement.nohugepage {
        // SAFETY: MADV_NOHUGEPAGE changes no contents.
        let _ = unsafe { os.advise(p as *mut c_void, len, libc::MADV_NOHUGEPAGE) };
    }
    // Only the bytes jemalloc owns, so a granule is unmapped when they are all destroyed.
    if !map.register(p, size, kind.id()) {
        // SAFETY: the mapping just made, not yet handed to jemalloc.
        let _ = unsafe { os.unmap(p as *mut c_void, len) };
        return core::ptr::null_mut();
    }
    p as *mut c_void
}

/// The destroy hook's logic: forget `[addr, addr+size)` and unmap granules that died.
pub(crate) fn extent_destroy(os: &impl Os, map: &ExtentMap, addr: *mut c_void, size: usize) {
    map.retire(addr as usize, size, |g| {
        // SAFETY: the extent map says every extent in this granule was destroyed by jemalloc.
        let _ = unsafe { os.unmap(g as *mut c_void, HUGE_2M) };
        note_unmap(g);
    });
}

/// Shared hook bodies used by the per-backing tables.
pub(crate) mod shims {
    use super::*;

    /// Common alloc body.
    pub(crate) fn alloc(
        new_addr: *mut c_void,
        size: usize,
        alignment: usize,
        zero: *mut bool,
        commit: *mut bool,
        arena_ind: u32,
    ) -> *mut c_void {
        let Some((kind, placement)) = placement_of(arena_ind) else {
            return core::ptr::null_mut();
        };
        let p = extent_alloc(&Linux, &MAP, kind, placement, new_addr, size, alignment);
        if !p.is_null() {
            note(extent_op::ALLOC, p, size, arena_ind);
        }
        fresh(p, zero, commit)
    }

    /// Report a freshly mapped extent `p` (null: failure, out-parameters untouched) as zeroed
    /// and committed.
    pub(crate) fn fresh(p: *mut c_void, zero: *mut bool, commit: *mut bool) -> *mut c_void {
        if !p.is_null() {
            // SAFETY: jemalloc passes valid, writable `bool` out-parameters to the alloc hook.
            unsafe {
                if !zero.is_null() {
                    *zero = true;
                }
                if !commit.is_null() {
                    *commit = true;
                }
            }
        }
        p
    }

    /// Common destroy body.
    pub(crate) fn destroy(addr: *mut c_void, size: usize, arena_ind: u32) {
        note(extent_op::DESTROY, addr, size, arena_ind);
        extent_destroy(&Linux, &MAP, addr, size);
    }

    /// Purge with `advice` unless the kind hogs memory; `false` means purged (jemalloc's sense).
    pub(crate) fn purge(
        addr: *mut c_void,
        offset: usize,
        length: usize,
        arena_ind: u32,
        advice: i32,
    ) -> bool {
        let hog = placement_of(arena_ind).is_none_or(|(_, p)| p.hog);
        if hog {
            return true;
        }
        let start = (addr as usize).wrapping_add(offset) as *mut c_void;
        // SAFETY: the purge contract: jemalloc purges pages of an extent of ours that hold no
        // live allocation.
        let failed = unsafe { Linux.advise(start, length, advice) }.is_err();
        if !failed {
            note(extent_op::PURGE, start, length, arena_ind);
        }
        failed
    }
}

#[cfg(test)]
pub(crate) mod tests;
