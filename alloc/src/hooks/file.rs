//! Hooks for file-backed kinds (PMEM): extents are shared mappings of the kind's unlinked
//! temporary file, with MAP_SYNC on a DAX mount.
//!
//! Layout: every mapping is a whole number of 2 MiB granules at a 2 MiB-aligned address (the
//! extent map's unit), backed by a 2 MiB-aligned file range. The file offset comes from a bump
//! counter (`fetch_add`, never reused while the kind lives: freed memory goes back to the file
//! system as holes, so the file is sparse); the address comes from the kind's PROT_NONE address
//! window ([`sys::Window`], reserved at the kind's creation, renewed when used up) over which the
//! file is mapped with MAP_FIXED; requests larger than half a window or aligned beyond 2 MiB
//! get an aligned reservation of their own. `max` is enforced on the bytes
//! jemalloc asks for (not the granule-rounded mapping): reserve with `fetch_add`, give back on
//! failure. Growth reserves blocks with posix_fallocate for those bytes, so a full file system is
//! a NULL + ENOMEM, not a SIGBUS.
//!
//! jemalloc's contract for every hook (see [`super`]): callable from any thread, concurrently,
//! while jemalloc holds internal locks; no allocation through jemalloc, no panic, no lock an
//! allocation path can hold. Everything here is atomics and raw syscalls.
#![allow(unsafe_code, reason = "extern \"C\" hook table handed to jemalloc")]

use core::ffi::c_void;
use core::sync::atomic::Ordering;

// dalloc opts out as for anonymous memory: jemalloc then purges the extent (punching holes in
// the file) and keeps it for reuse until the arena is destroyed.
use super::anon::{commit, dalloc, decommit, merge, split};
use super::placement_of;
use crate::extent_map::{ExtentMap, MAP};
use crate::jemalloc::ExtentHooks;
use crate::kind::pmem::PmemState;
use crate::kind::Kind;
use crate::probe::records::extent_op;
use crate::sys::{self, Linux, Os, HUGE_2M, PAGE_SIZE};
use nix::errno::Errno;

fn state_of(arena_ind: u32) -> Option<(&'static Kind, &'static PmemState)> {
    let (kind, _) = placement_of(arena_ind)?;
    Some((kind, kind.state::<PmemState>()?))
}

fn round_up(v: usize, to: usize) -> Option<usize> {
    v.checked_add(to - 1).map(|x| x & !(to - 1))
}

/// The alloc hook's logic: charge `size` against the kind's max, take a file range, grow the
/// file, map it aligned, log the chunk (for fork) and register it in `map`.
pub(crate) fn file_alloc(
    map: &ExtentMap,
    kind: &Kind,
    st: &PmemState,
    size: usize,
    alignment: usize,
) -> *mut c_void {
    let null = core::ptr::null_mut();
    let Some(len) = round_up(size, HUGE_2M) else {
        return null;
    };
    let Some(align) = alignment.max(HUGE_2M).checked_next_power_of_two() else {
        return null;
    };
    if !st.charge(size) {
        return null;
    }
    let fail = |st: &PmemState| {
        st.uncharge(size);
        null
    };
    let off = st.next_off.fetch_add(len as u64, Ordering::AcqRel) as i64;
    let fd = st.fd.load(Ordering::Acquire);
    if sys::fallocate(fd, off, size as i64).is_err() {
        return fail(st);
    }
    // The kind's window when it can serve the request (the common case: one mmap), else a
    // reservation of its own.
    let carved = if align == HUGE_2M {
        st.window.carve(len)
    } else {
        None
    };
    let Some(start) = carved.or_else(|| sys::reserve_aligned(len, align).ok()) else {
        let _ = sys::punch_hole(fd, off, size as i64);
        return fail(st);
    };
    // SAFETY: `[start, start+len)` is PROT_NONE reservation that is ours alone (carved from
    // the window or just reserved).
    if unsafe { sys::map_file_fixed(start, len, fd, off, st.sync) }.is_err() {
        // SAFETY: the reservation; the file mapping over it failed.
        unsafe { give_back(st, start, len) };
        let _ = sys::punch_hole(fd, off, size as i64);
        return fail(st);
    }
    let undo = |st: &PmemState| {
        // SAFETY: the mapping just made, not yet handed to jemalloc.
        let _ = unsafe { Linux.advise(start as *mut c_void, len, libc::MADV_REMOVE) };
        // SAFETY: likewise.
        unsafe { give_back(st, start, len) };
        fail(st)
    };
    // Logged before it is registered, so fork handling finds every registered granule's file
    // range in the log.
    if !st.log.push(start, len, off) {
        return undo(st);
    }
    if !map.register(start, size, kind.id()) {
        return undo(st);
    }
    start as *mut c_void
}

/// Give back `[start, start + len)` (granules carved or reserved by [`file_alloc`], contents
/// dropped): the kind's window keeps its own granules reserved, others are unmapped.
///
/// # Safety
/// Nothing uses the range any more.
unsafe fn give_back(st: &PmemState, start: usize, len: usize) {
    for g in (start..start + len).step_by(HUGE_2M) {
        // SAFETY: the caller's contract; `file_alloc` runs while the kind is not destroyed,
        // and only its own failed range is given back.
        unsafe { st.window.give_back(g) };
    }
}

/// `memkind_pmem_mmap` (the operations API): `size` more bytes of the kind's file, charged
/// against its maximum and mapped shared (MAP_SYNC on DAX) where the kernel chooses. The mapping
/// is the caller's: never registered, never given to jemalloc, never unmapped by us (1.14: the
/// kind's `mmap` operation, which its extent hook calls). File offsets stay 2 MiB-aligned for
/// the hooks' own ranges; the charge stays until the kind is destroyed, as 1.14's offset does.
pub(crate) fn map_raw(st: &PmemState, size: usize) -> Result<*mut c_void, Errno> {
    if size == 0 {
        return Err(Errno::EINVAL);
    }
    let len = round_up(size, PAGE_SIZE).ok_or(Errno::ENOMEM)?;
    let span = round_up(len, HUGE_2M).ok_or(Errno::ENOMEM)?;
    if !st.charge(len) {
        return Err(Errno::ENOMEM);
    }
    let off = st.next_off.fetch_add(span as u64, Ordering::AcqRel) as i64;
    let fd = st.fd.load(Ordering::Acquire);
    let mapped = sys::fallocate(fd, off, len as i64).and_then(|()| {
        Linux.map(
            len,
            sys::Backing::File {
                fd,
                offset: off,
                sync: st.sync,
            },
        )
    });
    match mapped {
        Ok(p) => Ok(p.as_ptr()),
        Err(e) => {
            let _ = sys::punch_hole(fd, off, len as i64);
            st.uncharge(len);
            Err(if e == Errno::ENOSPC { Errno::ENOMEM } else { e })
        }
    }
}

/// The destroy hook's logic: give the file blocks back, forget the range, unmap dead granules.
pub(crate) fn file_destroy(
    map: &ExtentMap,
    st: Option<&PmemState>,
    addr: *mut c_void,
    size: usize,
) {
    if let Some(st) = st {
        st.uncharge(size);
        if st.is_detached() {
            // Destroyed with blocks still allocated: forget the range, keep the memory.
            map.retire(addr as usize, size, |_| {});
            return;
        }
    }
    // SAFETY: jemalloc destroys this extent: no allocation lives in it.
    let _ = unsafe { Linux.advise(addr, size, libc::MADV_REMOVE) };
    map.retire(addr as usize, size, |g| {
        // SAFETY: every extent of this granule was destroyed (the extent map says so).
        let _ = unsafe { Linux.advise(g as *mut c_void, HUGE_2M, libc::MADV_REMOVE) };
        match st {
            // SAFETY: likewise; extents die at the arenas' destroy, when nothing carves.
            Some(st) => unsafe { st.window.give_back(g) },
            // SAFETY: likewise.
            None => drop(unsafe { Linux.unmap(g as *mut c_void, HUGE_2M) }),
        }
        super::note_unmap(g);
    });
}

/// jemalloc contract (alloc): "returns a pointer to size bytes of mapped memory on behalf of
/// arena arena_ind such that the extent's base address is a multiple of alignment, as well as
/// setting *zero to indicate whether the extent is zeroed and *commit to indicate whether the
/// extent is committed. Upon error the function returns NULL and leaves *zero and *commit
/// unmodified." We never honour a non-NULL new_addr. A fresh file range reads as zeros.
unsafe extern "C" fn alloc(
    _hooks: *mut ExtentHooks,
    new_addr: *mut c_void,
    size: usize,
    alignment: usize,
    zero: *mut bool,
    commit: *mut bool,
    arena_ind: u32,
) -> *mut c_void {
    if !new_addr.is_null() || size == 0 {
        return core::ptr::null_mut();
    }
    let Some((kind, st)) = state_of(arena_ind) else {
        return core::ptr::null_mut();
    };
    let p = file_alloc(&MAP, kind, st, size, alignment);
    if !p.is_null() {
        super::note(extent_op::ALLOC, p, size, arena_ind);
    }
    super::shims::fresh(p, zero, commit)
}

/// jemalloc contract (destroy): "unconditionally destroys an extent ... This function may be
/// called to destroy retained extents during arena destruction."
unsafe extern "C" fn destroy(
    _h: *mut ExtentHooks,
    addr: *mut c_void,
    size: usize,
    _committed: bool,
    arena_ind: u32,
) {
    super::note(extent_op::DESTROY, addr, size, arena_ind);
    file_destroy(&MAP, state_of(arena_ind).map(|(_, s)| s), addr, size)
}

/// jemalloc contract (purge_forced): "returns false if pages within the purged virtual memory
/// range will be immediately purged (zero-filled on next access)." MADV_REMOVE punches a hole in
/// the file behind the pages (FALLOC_FL_PUNCH_HOLE); MEMKIND_HOG_MEMORY opts out.
unsafe extern "C" fn purge_forced(
    _h: *mut ExtentHooks,
    addr: *mut c_void,
    _s: usize,
    offset: usize,
    length: usize,
    arena_ind: u32,
) -> bool {
    if state_of(arena_ind).is_some_and(|(_, st)| st.is_detached()) {
        return true; // keep the data of a kind destroyed with blocks still allocated
    }
    super::shims::purge(addr, offset, length, arena_ind, libc::MADV_REMOVE)
}

/// The table for file-backed arenas. No lazy purge (a file's pages cannot be MADV_FREEd), so
/// jemalloc purges with `purge_forced`.
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
