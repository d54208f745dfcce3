//! The C ABI of the library linked into the test (the `memkind` rlib), declared as a C program
//! sees it in memkind.h and memkind_memtier.h: the tests call the exported symbols, not Rust
//! paths into the library (whose internals are private).
//!
//! Declared `safe` so that tests read like the C programs they mirror: memkind.h's contracts
//! still apply to every pointer argument (a freed or foreign-but-readable pointer is the test's
//! own business). Test code only; not an API.
#![allow(missing_docs, reason = "memkind.h's names and signatures")]

use core::ffi::{c_char, c_int, c_uint, c_void};

/// `memkind_t`.
pub type MemkindT = *const c_void;
/// `struct memtier_builder *`.
pub type BuilderT = *mut c_void;
/// `struct memtier_memory *`.
pub type MemoryT = *mut c_void;

// The declarations resolve to the library's exported symbols: link the library even into a test
// that names nothing else of it.
#[allow(
    unused_extern_crates,
    reason = "linked for its #[no_mangle] symbols, not its paths"
)]
extern crate memkind;

unsafe extern "C" {
    pub safe static MEMKIND_DEFAULT: MemkindT;
    pub safe static MEMKIND_REGULAR: MemkindT;
    pub safe static MEMKIND_HUGETLB: MemkindT;
    pub safe static MEMKIND_INTERLEAVE: MemkindT;
    pub safe static MEMKIND_HBW: MemkindT;
    pub safe static MEMKIND_HBW_ALL: MemkindT;
    pub safe static MEMKIND_HBW_PREFERRED: MemkindT;
    pub safe static MEMKIND_HBW_HUGETLB: MemkindT;
    pub safe static MEMKIND_HBW_INTERLEAVE: MemkindT;
    pub safe static MEMKIND_HIGHEST_CAPACITY: MemkindT;
    pub safe static MEMKIND_HIGHEST_CAPACITY_PREFERRED: MemkindT;
    pub safe static MEMKIND_HIGHEST_CAPACITY_LOCAL: MemkindT;

    pub safe fn memkind_malloc(kind: MemkindT, size: usize) -> *mut c_void;
    pub safe fn memkind_calloc(kind: MemkindT, num: usize, size: usize) -> *mut c_void;
    pub safe fn memkind_posix_memalign(
        kind: MemkindT,
        memptr: *mut *mut c_void,
        alignment: usize,
        size: usize,
    ) -> c_int;
    pub safe fn memkind_realloc(kind: MemkindT, ptr: *mut c_void, size: usize) -> *mut c_void;
    pub safe fn memkind_free(kind: MemkindT, ptr: *mut c_void);
    pub safe fn memkind_malloc_usable_size(kind: MemkindT, ptr: *mut c_void) -> usize;
    pub safe fn memkind_detect_kind(ptr: *mut c_void) -> MemkindT;
    pub safe fn memkind_check_available(kind: MemkindT) -> c_int;
    pub safe fn memkind_get_capacity(kind: MemkindT) -> isize;
    pub safe fn memkind_destroy_kind(kind: MemkindT) -> c_int;
    pub safe fn memkind_get_kind_by_partition(partition: c_int, kind: *mut MemkindT) -> c_int;
    pub safe fn memkind_create_pmem(
        dir: *const c_char,
        max_size: usize,
        kind: *mut MemkindT,
    ) -> c_int;
    pub safe fn memkind_check_dax_path(pmem_dir: *const c_char) -> c_int;
    pub safe fn memkind_create_fixed(addr: *mut c_void, size: usize, kind: *mut MemkindT) -> c_int;

    pub safe fn hbw_check_available() -> c_int;
    pub safe fn hbw_verify_memory_region(addr: *mut c_void, size: usize, flags: c_int) -> c_int;

    pub safe fn memtier_builder_new(policy: c_int) -> BuilderT;
    pub safe fn memtier_builder_delete(builder: BuilderT);
    pub safe fn memtier_builder_add_tier(builder: BuilderT, kind: MemkindT, ratio: c_uint)
        -> c_int;
    pub safe fn memtier_builder_construct_memtier_memory(builder: BuilderT) -> MemoryT;
    pub safe fn memtier_delete_memtier_memory(memory: MemoryT);
    pub safe fn memtier_ctl_set(
        builder: BuilderT,
        name: *const c_char,
        val: *const c_void,
    ) -> c_int;
    pub safe fn memtier_malloc(memory: MemoryT, size: usize) -> *mut c_void;
    pub safe fn memtier_calloc(memory: MemoryT, num: usize, size: usize) -> *mut c_void;
    pub safe fn memtier_realloc(memory: MemoryT, ptr: *mut c_void, size: usize) -> *mut c_void;
    pub safe fn memtier_posix_memalign(
        memory: MemoryT,
        memptr: *mut *mut c_void,
        alignment: usize,
        size: usize,
    ) -> c_int;
    pub safe fn memtier_kind_realloc(kind: MemkindT, ptr: *mut c_void, size: usize) -> *mut c_void;
    pub safe fn memtier_usable_size(ptr: *mut c_void) -> usize;
    pub safe fn memtier_kind_free(kind: MemkindT, ptr: *mut c_void);
    pub safe fn memtier_kind_allocated_size(kind: MemkindT) -> usize;
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno cell.
    unsafe { *libc::__errno_location() }
}

/// Set the calling thread's errno.
pub fn set_errno(e: i32) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}
