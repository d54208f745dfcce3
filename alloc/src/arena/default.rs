//! MEMKIND_DEFAULT's heap operations: jemalloc's automatic arenas and thread cache (`malloc` /
//! `free` fast paths). [`super::heap`] decides which pointers and kinds come here.
#![allow(unsafe_code, reason = "calls into jemalloc")]
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "callers pass pointers the extent map attributes to DEFAULT; they must be live (memkind's contract)"
)]

use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering};

use tikv_jemalloc_sys as je;

use crate::sys::set_errno;

/// Requests at or above this size go to an explicit automatic arena, because jemalloc would
/// otherwise route them to its dedicated "huge" arena, which our hooks cannot reach. It is 0
/// until the library is initialised, so the first call of all takes the slow branch.
static OVERSIZE: AtomicUsize = AtomicUsize::new(0);

/// Called once at start-up with jemalloc's `opt.oversize_threshold` (0 = feature disabled).
pub(crate) fn set_oversize(threshold: usize) {
    let t = if threshold < 16 * 1024 {
        usize::MAX
    } else {
        threshold
    };
    OVERSIZE.store(t, Ordering::Release);
}

/// Extra mallocx flags for a request of `size` bytes.
#[inline(always)]
fn flags_for(size: usize) -> i32 {
    if size < OVERSIZE.load(Ordering::Relaxed) {
        0
    } else {
        super::init::ensure();
        if size < OVERSIZE.load(Ordering::Relaxed) {
            0
        } else {
            je::MALLOCX_ARENA(0)
        }
    }
}

#[inline(always)]
fn enomem(p: *mut c_void) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p
}

/// malloc (size > 0).
#[inline(always)]
pub fn malloc(size: usize) -> *mut c_void {
    if size < OVERSIZE.load(Ordering::Relaxed) {
        // SAFETY: size > 0; jemalloc's malloc fast path with the automatic tcache. It sets
        // errno to ENOMEM itself on failure (malloc semantics), so this is a tail call.
        unsafe { je::malloc(size) }
    } else {
        malloc_slow(size)
    }
}

#[cold]
fn malloc_slow(size: usize) -> *mut c_void {
    let f = flags_for(size);
    // SAFETY: size > 0 (callers check), flags name an automatic arena of ours or none.
    enomem(unsafe { je::mallocx(size, f) })
}

/// calloc of `total` (> 0, already overflow-checked) bytes.
pub fn calloc(total: usize) -> *mut c_void {
    // SAFETY: total > 0.
    enomem(unsafe { je::mallocx(total, flags_for(total) | je::MALLOCX_ZERO) })
}

/// aligned allocation (`align` a power of two, size > 0).
pub fn aligned(size: usize, align: usize) -> *mut c_void {
    // SAFETY: size > 0 and align is a power of two (checked by the caller).
    unsafe { je::mallocx(size, flags_for(size) | je::MALLOCX_ALIGN(align)) }
}

/// realloc of a live DEFAULT pointer to `size` > 0.
#[allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "callers pass live DEFAULT pointers (the extent map says so)"
)]
pub fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: `p` is a live DEFAULT allocation (the extent map says so), size > 0.
    enomem(unsafe { je::rallocx(p, size, flags_for(size)) })
}

/// free of a live DEFAULT pointer.
#[inline(always)]
#[allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "callers pass live DEFAULT pointers (the extent map says so)"
)]
pub fn free(p: *mut c_void) {
    // SAFETY: `p` is a live DEFAULT allocation (the extent map says so).
    unsafe { je::free(p) }
}
