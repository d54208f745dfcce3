//! hbwmalloc.h: the high-bandwidth convenience interface over the HBW kinds.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicI32, Ordering};

use crate::kind::{default_kind, partition as p, Kind, KINDS};
use crate::sys::PAGE_SIZE;

/// hbw_policy_t.
const BIND: c_int = 1;
const PREFERRED: c_int = 2;
const INTERLEAVE: c_int = 3;
const BIND_ALL: c_int = 4;
/// hbw_pagesize_t.
const PAGESIZE_4KB: c_int = 1;
const PAGESIZE_2MB: c_int = 2;
const PAGESIZE_1GB_STRICT: c_int = 3;
const PAGESIZE_1GB: c_int = 4;
/// HBW_TOUCH_PAGES.
const TOUCH_PAGES: c_int = 1;

/// The policy; 0 until fixed by `hbw_set_policy` or the first allocation.
static POLICY: AtomicI32 = AtomicI32::new(0);

fn policy() -> c_int {
    match POLICY.load(Ordering::Acquire) {
        0 => {
            // The first allocation fixes the default policy.
            let _ = POLICY.compare_exchange(0, PREFERRED, Ordering::AcqRel, Ordering::Acquire);
            POLICY.load(Ordering::Acquire)
        }
        v => v,
    }
}

/// The kind hbw_* allocations use for `pagesize` under the current policy.
fn kind_for(pagesize: c_int) -> &'static Kind {
    let part = match (policy(), pagesize) {
        (BIND, PAGESIZE_2MB) => p::HBW_HUGETLB,
        (BIND, PAGESIZE_1GB | PAGESIZE_1GB_STRICT) => p::HBW_GBTLB,
        (BIND, _) => p::HBW,
        (BIND_ALL, PAGESIZE_2MB) => p::HBW_ALL_HUGETLB,
        (BIND_ALL, PAGESIZE_1GB | PAGESIZE_1GB_STRICT) => p::HBW_GBTLB,
        (BIND_ALL, _) => p::HBW_ALL,
        (INTERLEAVE, _) => p::HBW_INTERLEAVE,
        (_, PAGESIZE_2MB) => p::HBW_PREFERRED_HUGETLB,
        (_, PAGESIZE_1GB | PAGESIZE_1GB_STRICT) => p::HBW_PREFERRED_GBTLB,
        _ => p::HBW_PREFERRED,
    };
    let k = &KINDS[part];
    // PREFERRED with no HBW memory falls back to DEFAULT (or HUGETLB for 2 MiB pages).
    if policy() == PREFERRED && k.check_available().is_err() {
        return if pagesize == PAGESIZE_2MB {
            &KINDS[p::HUGETLB]
        } else {
            default_kind()
        };
    }
    k
}

/// `hbw_get_policy()`.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_get_policy() -> c_int {
    policy()
}

/// `hbw_set_policy(mode)`: the first valid call wins; the same value again is 0, another EPERM.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_set_policy(mode: c_int) -> c_int {
    if !(BIND..=BIND_ALL).contains(&mode) {
        return libc::EINVAL;
    }
    match POLICY.compare_exchange(0, mode, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => 0,
        Err(cur) if cur == mode => 0,
        Err(_) => libc::EPERM,
    }
}

/// `hbw_check_available()`: 0 or ENODEV.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_check_available() -> c_int {
    if KINDS[p::HBW].check_available().is_ok() {
        0
    } else {
        libc::ENODEV
    }
}

/// `hbw_malloc(size)`.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_malloc(size: usize) -> *mut c_void {
    super::memkind::memkind_malloc(kind_for(PAGESIZE_4KB), size)
}

/// `hbw_calloc(num, size)`.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_calloc(num: usize, size: usize) -> *mut c_void {
    super::memkind::memkind_calloc(kind_for(PAGESIZE_4KB), num, size)
}

/// `hbw_realloc(ptr, size)`.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    super::memkind::memkind_realloc(kind_for(PAGESIZE_4KB), ptr, size)
}

/// `hbw_free(ptr)`.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_free(ptr: *mut c_void) {
    super::memkind::memkind_free(core::ptr::null(), ptr)
}

/// `hbw_malloc_usable_size(ptr)`.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_malloc_usable_size(ptr: *mut c_void) -> usize {
    super::memkind::memkind_malloc_usable_size(core::ptr::null(), ptr)
}

/// `hbw_posix_memalign(memptr, alignment, size)`.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_posix_memalign(
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    super::memkind::memkind_posix_memalign(kind_for(PAGESIZE_4KB), memptr, alignment, size)
}

/// `hbw_posix_memalign_psize(memptr, alignment, size, pagesize)`: 2 MiB / 1 GiB pages with the
/// INTERLEAVE policy are EINVAL.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_posix_memalign_psize(
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
    pagesize: c_int,
) -> c_int {
    if !(PAGESIZE_4KB..=PAGESIZE_1GB).contains(&pagesize) {
        return libc::EINVAL;
    }
    if pagesize != PAGESIZE_4KB && policy() == INTERLEAVE {
        return libc::EINVAL;
    }
    super::memkind::memkind_posix_memalign(kind_for(pagesize), memptr, alignment, size)
}

/// `hbw_verify_memory_region(addr, size, flags)`: 0 when every page of the region is on an HBW
/// node, -1 when one is not (or is not present), EINVAL for bad arguments. With HBW_TOUCH_PAGES
/// each page is written first (its content preserved) so it is faulted in.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_verify_memory_region(addr: *mut c_void, size: usize, flags: c_int) -> c_int {
    if addr.is_null() || size == 0 || flags & !TOUCH_PAGES != 0 {
        return libc::EINVAL;
    }
    let Ok(hbw) = crate::kind::node_sets(crate::topology::Rule::HbwAll) else {
        return -1;
    };
    let start = addr as usize & !(PAGE_SIZE - 1);
    let Some(end) = (addr as usize).checked_add(size) else {
        return libc::EINVAL;
    };
    let mut pages: [*mut c_void; 512] = [core::ptr::null_mut(); 512];
    let mut status = [0i32; 512];
    let mut page = start;
    while page < end {
        let n = ((end - page).div_ceil(PAGE_SIZE)).min(pages.len());
        for (i, slot) in pages.iter_mut().take(n).enumerate() {
            *slot = (page + i * PAGE_SIZE) as *mut c_void;
            if flags & TOUCH_PAGES != 0 {
                touch(*slot);
            }
        }
        if crate::sys::query_pages(&pages[..n], &mut status[..n]).is_err() {
            return libc::EFAULT;
        }
        for &s in &status[..n] {
            if s < 0 || !hbw.union().contains(s as u32) {
                return -1;
            }
        }
        page += n * PAGE_SIZE;
    }
    0
}

#[allow(
    unsafe_code,
    reason = "volatile read-write of a page the caller asked us to touch"
)]
fn touch(p: *mut c_void) {
    let b = p as *mut u8;
    // SAFETY: the caller of hbw_verify_memory_region passes a region it owns and asks us to
    // touch; writing back the value just read leaves the content unchanged.
    unsafe { b.write_volatile(b.read_volatile()) };
}
