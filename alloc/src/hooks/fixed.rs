//! Hooks for fixed kinds (`memkind_create_fixed`): extents are carved from the caller's buffer
//! with a lock-free bump pointer ([`crate::kind::fixed::FixedState::carve`]) and never given
//! back: dalloc, decommit and both purges opt out and destroy does nothing, as in memkind 1.14
//! (the buffer belongs to the caller; we never unmap or madvise it). Nothing is registered in the
//! extent map: fixed ranges are found through their own table (see `kind::fixed`).
//!
//! The arena's own metadata comes from jemalloc's default hooks (`jemalloc::arena_create`), so
//! it never eats the buffer.
#![allow(unsafe_code, reason = "extern \"C\" hook table handed to jemalloc")]

use core::ffi::c_void;

use super::anon;
use crate::jemalloc::ExtentHooks;
use crate::kind::fixed::FixedState;
use crate::probe::records::extent_op;

fn state(arena_ind: u32) -> Option<&'static FixedState> {
    crate::arena::kind_of_arena_for_hook(arena_ind)?.state::<FixedState>()
}

/// jemalloc contract (alloc): "returns a pointer to size bytes of mapped memory on behalf of
/// arena arena_ind such that the extent's base address is a multiple of alignment, as well as
/// setting *zero to indicate whether the extent is zeroed and *commit to indicate whether the
/// extent is committed. Upon error the function returns NULL and leaves *zero and *commit
/// unmodified." A non-NULL new_addr is not supported (as 1.14). The buffer's bytes are the
/// caller's: zeroed only when jemalloc asks for it.
unsafe extern "C" fn alloc(
    _hooks: *mut ExtentHooks,
    new_addr: *mut c_void,
    size: usize,
    alignment: usize,
    zero: *mut bool,
    commit: *mut bool,
    arena_ind: u32,
) -> *mut c_void {
    if !new_addr.is_null() {
        return core::ptr::null_mut();
    }
    let Some(st) = state(arena_ind) else {
        return core::ptr::null_mut();
    };
    let align = alignment.max(crate::sys::PAGE_SIZE);
    let Some(p) = st.carve(size, align) else {
        return core::ptr::null_mut();
    };
    // SAFETY: jemalloc passes valid, writable `bool` out-parameters; `[p, p+size)` was just
    // carved from the caller's buffer, which memkind's contract says is mapped and writable.
    unsafe {
        if !zero.is_null() && *zero {
            core::ptr::write_bytes(p as *mut u8, 0, size);
        }
        if !commit.is_null() {
            *commit = true;
        }
    }
    super::note(extent_op::ALLOC, p as *mut c_void, size, arena_ind);
    p as *mut c_void
}

/// jemalloc contract (destroy): "unconditionally destroys an extent". The buffer is the
/// caller's: nothing to do (as 1.14).
unsafe extern "C" fn destroy(
    _h: *mut ExtentHooks,
    addr: *mut c_void,
    size: usize,
    _committed: bool,
    arena_ind: u32,
) {
    super::note(extent_op::DESTROY, addr, size, arena_ind);
}

/// jemalloc contract (purge_lazy / purge_forced): "returns false if pages ... will be purged";
/// true opts out. 1.14 never purges a fixed buffer; neither do we.
unsafe extern "C" fn purge(
    _h: *mut ExtentHooks,
    _addr: *mut c_void,
    _s: usize,
    _offset: usize,
    _length: usize,
    _arena_ind: u32,
) -> bool {
    true
}

/// The table for fixed kinds (commit, decommit, split and merge are the anonymous table's:
/// always committed, decommit opts out, split and merge are bookkeeping only).
pub static HOOKS: ExtentHooks = ExtentHooks {
    alloc: Some(alloc),
    dalloc: Some(anon::dalloc),
    destroy: Some(destroy),
    commit: Some(anon::commit),
    decommit: Some(anon::decommit),
    purge_lazy: Some(purge),
    purge_forced: Some(purge),
    split: Some(anon::split),
    merge: Some(anon::merge),
};
