//! hbwmalloc.h: the high-bandwidth convenience interface over the HBW kinds.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

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

/// The policy once fixed (by the first valid `hbw_set_policy` or the first hbw_* allocation);
/// 0 before, when `hbw_get_policy` reports the default PREFERRED without fixing it (1.14: a
/// statically initialised value plus a `pthread_once`).
static POLICY: AtomicI32 = AtomicI32::new(0);

/// The current policy, without fixing it.
fn current_policy() -> c_int {
    match POLICY.load(Ordering::Acquire) {
        0 => PREFERRED,
        v => v,
    }
}

/// The kind chosen for each page size (index = hbw_pagesize_t), chosen once per process as
/// 1.14 does: later changes of HBW availability do not move hbw_* allocations.
static PAGESIZE_KIND: [AtomicPtr<Kind>; 5] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 5];

/// The kind hbw_* allocations use for `pagesize` (a valid hbw_pagesize_t).
fn kind_for(pagesize: c_int) -> &'static Kind {
    let slot = &PAGESIZE_KIND[pagesize as usize];
    let k = slot.load(Ordering::Acquire);
    if !k.is_null() {
        // SAFETY: only addresses of static kinds are stored.
        return unsafe { &*k };
    }
    // Choosing reads sysfs; errno is the caller's (hbw_posix_memalign preserves it).
    let saved = crate::sys::errno();
    let k = choose_kind(pagesize);
    crate::sys::set_errno(saved);
    slot.store(k as *const Kind as *mut Kind, Ordering::Release);
    k
}

/// 1.14's `hbw_choose_kind`: fixes the policy, then BIND / BIND_ALL / INTERLEAVE map to the
/// HBW kinds (no fallback: allocations fail without HBW memory); PREFERRED maps to the
/// preferred HBW kinds when MEMKIND_HBW is available, else to DEFAULT / HUGETLB / GBTLB.
fn choose_kind(pagesize: c_int) -> &'static Kind {
    let _ = hbw_set_policy(current_policy());
    let policy = current_policy();
    let gb = matches!(pagesize, PAGESIZE_1GB | PAGESIZE_1GB_STRICT);
    let part = if policy != PREFERRED {
        match (pagesize, policy) {
            (PAGESIZE_2MB, BIND_ALL) => p::HBW_ALL_HUGETLB,
            (PAGESIZE_2MB, _) => p::HBW_HUGETLB,
            _ if gb => p::HBW_GBTLB,
            (_, BIND) => p::HBW,
            (_, BIND_ALL) => p::HBW_ALL,
            _ => p::HBW_INTERLEAVE,
        }
    } else if KINDS[p::HBW].check_available().is_ok() {
        match pagesize {
            PAGESIZE_2MB => p::HBW_PREFERRED_HUGETLB,
            _ if gb => p::HBW_PREFERRED_GBTLB,
            _ => p::HBW_PREFERRED,
        }
    } else {
        match pagesize {
            PAGESIZE_2MB => p::HUGETLB,
            _ if gb => p::GBTLB,
            _ => p::DEFAULT,
        }
    };
    if part == p::DEFAULT {
        default_kind()
    } else {
        &KINDS[part]
    }
}

/// `hbw_get_policy()`: PREFERRED until a policy is fixed.
#[unsafe(no_mangle)]
pub extern "C" fn hbw_get_policy() -> c_int {
    current_policy()
}

/// `hbw_set_policy(mode)`: the first valid call wins; the same value again is 0, another EPERM;
/// invalid values are EINVAL and fix nothing.
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

/// `hbw_posix_memalign_psize(memptr, alignment, size, pagesize)`: EINVAL for 1GB_STRICT with a
/// size that is not a multiple of 1 GiB, then for 2 MiB / 1 GiB pages under INTERLEAVE (checked
/// in that order, as 1.14; neither fixes the policy). Unknown page sizes are EINVAL too (1.14
/// indexes out of bounds).
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
    if pagesize == PAGESIZE_1GB_STRICT && !size.is_multiple_of(crate::sys::HUGE_1G) {
        return libc::EINVAL;
    }
    if pagesize != PAGESIZE_4KB && current_policy() == INTERLEAVE {
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
