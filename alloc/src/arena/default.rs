//! MEMKIND_DEFAULT's heap operations: jemalloc's automatic arenas and thread cache (`malloc` /
//! `free` fast paths). [`super::heap`] decides which pointers and kinds come here.
#![allow(unsafe_code, reason = "calls into jemalloc")]
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "callers pass pointers the extent map attributes to DEFAULT; they must be live (memkind's contract)"
)]

use core::ffi::c_void;
use core::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

use tikv_jemalloc_sys as je;

use crate::sys::set_errno;

/// Requests at or above this size go to an explicit automatic arena, because jemalloc would
/// otherwise route them to its dedicated "huge" arena, which our hooks cannot reach. It is 0
/// until the library is initialised, so the first call of all takes the slow branch.
static OVERSIZE: AtomicUsize = AtomicUsize::new(0);
/// `OVERSIZE - 1` (0 until initialised): `size.wrapping_sub(1) < FAST_BELOW` is
/// `0 < size < OVERSIZE` in one compare, the whole test of [`malloc_any`]'s fast path.
static FAST_BELOW: AtomicUsize = AtomicUsize::new(0);

/// True once start-up set the thresholds (so DEFAULT's automatic arenas carry our hooks).
#[inline]
pub(crate) fn started() -> bool {
    FAST_BELOW.load(Ordering::Relaxed) != 0
}

/// Called once at start-up with jemalloc's `opt.oversize_threshold` (0 = feature disabled);
/// fills the size-class table too.
pub(crate) fn set_oversize(threshold: usize) {
    fill_classes();
    let t = if threshold < 16 * 1024 {
        usize::MAX
    } else {
        first_request_reaching(threshold)
    };
    OVERSIZE.store(t, Ordering::Release);
    FAST_BELOW.store(t - 1, Ordering::Release);
}

/// The smallest request whose size class is at least `threshold`: jemalloc compares the size
/// class (`usize`), not the request, with `opt.oversize_threshold`, so a request of 7 MiB + 1
/// (class 8 MiB) already goes to the huge arena. Found by tests/fuzz: `posix_memalign(DEFAULT,
/// 64, 8324107)` landed there, outside the extent map, and `usable_size` / `free` / `realloc`
/// took the block for a foreign one.
fn first_request_reaching(threshold: usize) -> usize {
    let class = |n: usize| {
        // SAFETY: nallocx touches no memory; n > 0.
        unsafe { je::nallocx(n, 0) }
    };
    let (mut lo, mut hi) = (1usize, threshold);
    if class(hi) < threshold {
        return threshold;
    }
    // Invariant: class(hi) >= threshold; lo is below or at the answer.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if class(mid) >= threshold {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    hi
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

/// malloc of any size: NULL for 0 (memkind's rule), else [`malloc`]. One compare decides both
/// (`size - 1 < OVERSIZE - 1`, wrapping), so the caller's fast path is a test and a tail call.
#[inline(always)]
pub fn malloc_any(size: usize) -> *mut c_void {
    // SAFETY: reads FAST_BELOW (an atomic word; a plain load is a relaxed atomic load on
    // x86_64) in the compare itself, which the compiler does not do for an atomic load; no
    // stack use, flags clobbered as asm! assumes.
    unsafe {
        core::arch::asm!(
            "cmp {below}(%rip), {n}",
            "jae {slow}",
            below = sym FAST_BELOW,
            n = in(reg) size.wrapping_sub(1),
            slow = label { return malloc_any_slow(size); },
            options(att_syntax, nostack, readonly),
        );
    }
    // SAFETY: 0 < size < OVERSIZE: as in `malloc`.
    unsafe { je::malloc(size) }
}

/// [`malloc_any`] for 0, oversize requests and the first call (before start-up). `extern "C"`
/// (a panic aborts here, it cannot unwind), so callers in `extern "C"` functions reach it with
/// a tail call.
#[cold]
#[inline(never)]
extern "C" fn malloc_any_slow(size: usize) -> *mut c_void {
    if size == 0 {
        return core::ptr::null_mut();
    }
    malloc(size)
}

/// `extern "C"` (a panic aborts here), so [`malloc`]'s callers keep their tail calls.
#[cold]
#[inline(never)]
extern "C" fn malloc_slow(size: usize) -> *mut c_void {
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

/// Requests up to this size have their size class in [`CLASSES`].
const CLASSES_MAX: usize = 4096;
/// Size class of a request of 1..=[`CLASSES_MAX`] bytes, by `(size + 7) / 8`; 0 until
/// [`set_oversize`] fills it at start-up.
static CLASSES: [AtomicU16; CLASSES_MAX / 8 + 1] =
    [const { AtomicU16::new(0) }; CLASSES_MAX / 8 + 1];

/// Usable size of the block `malloc(size)` hands out: its size class, as jemalloc's `nallocx`
/// computes it (the same size computation as `mallocx`, allocating nothing); from a table for
/// requests up to 4 KiB (the probe's counted path asks it on every allocation).
#[inline(always)]
pub fn size_class(size: usize) -> usize {
    if size <= CLASSES_MAX {
        let c = CLASSES[size.div_ceil(8)].load(Ordering::Relaxed);
        if c != 0 {
            return usize::from(c);
        }
    }
    // SAFETY: no memory is touched; 0 flags.
    unsafe { je::nallocx(size, 0) }
}

/// Fill [`CLASSES`] from jemalloc (every size class up to 4 KiB is a multiple of 8).
fn fill_classes() {
    for (i, c) in CLASSES.iter().enumerate().skip(1) {
        // SAFETY: no memory is touched; 0 flags; size > 0.
        let n = unsafe { je::nallocx(i * 8, 0) };
        debug_assert!(n >= i * 8 && n <= CLASSES_MAX);
        if let Ok(n) = u16::try_from(n) {
            c.store(n, Ordering::Relaxed);
        }
    }
}

/// free of a live DEFAULT pointer whose usable size is known: jemalloc skips its own lookup.
#[inline(always)]
#[allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "callers pass live DEFAULT pointers (the extent map says so)"
)]
pub fn free_sized(p: *mut c_void, usable: usize) {
    // SAFETY: `p` is a live DEFAULT allocation and `usable` its usable size (sdallocx accepts
    // any size between the request and the usable size).
    unsafe { je::sdallocx(p, usable, 0) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_jemallocs() {
        super::super::init::ensure();
        for n in 1..=3 * CLASSES_MAX {
            // SAFETY: no memory is touched.
            assert_eq!(size_class(n), unsafe { je::nallocx(n, 0) }, "size {n}");
        }
    }

    /// The probe counters' per-class counting uses jemalloc's classes (as `size_class` and
    /// `nallocx` give them) for every request up to its `CLASS_MAX`.
    #[test]
    fn the_counters_classes_are_jemallocs() {
        super::super::init::ensure();
        for n in 1..=crate::counters::thread::CLASS_MAX {
            assert_eq!(
                crate::counters::thread::class_size(n),
                size_class(n),
                "size {n}"
            );
        }
    }

    /// The counters' class `i` is jemalloc's size-class index `i`: the counted frees take a
    /// block's class from the index jemalloc's page map holds for it.
    #[test]
    fn the_counters_class_indices_are_jemallocs() {
        use crate::counters::thread::{class_size_of, NCLASS};
        super::super::init::ensure();
        for i in 0..NCLASS {
            assert_eq!(
                crate::jemalloc::size_of_index(i),
                Some(class_size_of(i)),
                "index {i}"
            );
        }
        // The class above the last counted one is above CLASS_MAX.
        assert!(
            crate::jemalloc::size_of_index(NCLASS).unwrap() > crate::counters::thread::CLASS_MAX
        );
        for size in [8usize, 16, 48, 4096] {
            let p = malloc(size);
            let ind = crate::jemalloc::block_szind(p);
            assert!(
                ind < NCLASS && class_size_of(ind) == size,
                "{size}: index {ind}"
            );
            free(p);
        }
    }

    /// Every DEFAULT block whose size class reaches jemalloc's oversize threshold comes from an
    /// arena with our hooks (regression: requests between the class below the threshold and
    /// the threshold went to jemalloc's huge arena, invisible to the extent map).
    #[test]
    fn requests_just_below_the_oversize_threshold_stay_in_our_arenas() {
        super::super::init::ensure();
        let t = crate::jemalloc::oversize_threshold().unwrap_or(0);
        if t < 16 * 1024 {
            println!("SKIP: jemalloc's oversize threshold is off");
            return;
        }
        let below = first_request_reaching(t) - 1;
        // SAFETY: no memory is touched.
        assert!(unsafe { je::nallocx(below, 0) } < t);
        // SAFETY: as above.
        assert!(unsafe { je::nallocx(below + 1, 0) } >= t);
        for n in [below, below + 1, t - 1, t, t + 1] {
            for p in [malloc(n), calloc(n), aligned(n, 64), aligned(n, 1 << 16)] {
                assert!(!p.is_null());
                assert!(
                    crate::extent_map::MAP.lookup(p as usize).is_some(),
                    "{n}: {p:p} not in the extent map"
                );
                free(p);
            }
        }
    }
}
