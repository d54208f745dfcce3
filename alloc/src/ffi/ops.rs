//! The exported operations tables (`MEMKIND_*_OPS`, 1.14's `struct memkind_ops`): what a kind's
//! `ops` field points to, and what code written against memkind_arena(3) / memkind_default(3)
//! calls (`kind->ops->malloc(kind, n)`) or copies into its own table.
//!
//! Each table has 1.14's entries: the exported function 1.14 puts in a field is ours of the same
//! name, a field 1.14 leaves NULL is NULL, and where 1.14 has a function of its own (not
//! exported) ours has a private one with the same meaning (`tests/c/ops.c` compares every field
//! of every table with Debian's library). The tables are writable data, as 1.14's: a program may
//! change an entry; ours never calls through the tables itself, except in the operations that
//! 1.14 defines as calls of the kind's table (`memkind_default_mmap`, `memkind_default_mbind`,
//! `memkind_hbw_check_available`).
#![allow(non_upper_case_globals, reason = "C names")]

use core::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

use super::arena::*;
use super::operations::*;
use super::MemkindT;

/// 1.14's `struct memkind_ops` (memkind_private.h): 21 function pointers, NULL where a kind has
/// no such operation.
#[repr(C)]
#[allow(
    missing_docs,
    reason = "the fields are 1.14's operations, named as there"
)]
pub struct MemkindOps {
    pub create: Option<extern "C" fn(MemkindT, *mut c_void, *const c_char) -> c_int>,
    pub destroy: Option<extern "C" fn(MemkindT) -> c_int>,
    pub malloc: Option<extern "C" fn(MemkindT, usize) -> *mut c_void>,
    pub calloc: Option<extern "C" fn(MemkindT, usize, usize) -> *mut c_void>,
    pub posix_memalign: Option<extern "C" fn(MemkindT, *mut *mut c_void, usize, usize) -> c_int>,
    pub realloc: Option<extern "C" fn(MemkindT, *mut c_void, usize) -> *mut c_void>,
    pub free: Option<extern "C" fn(MemkindT, *mut c_void)>,
    pub mmap: Option<extern "C" fn(MemkindT, *mut c_void, usize) -> *mut c_void>,
    pub mbind: Option<extern "C" fn(MemkindT, *mut c_void, usize) -> c_int>,
    pub madvise: Option<extern "C" fn(MemkindT, *mut c_void, usize) -> c_int>,
    pub get_mmap_flags: Option<extern "C" fn(MemkindT, *mut c_int) -> c_int>,
    pub get_mbind_mode: Option<extern "C" fn(MemkindT, *mut c_int) -> c_int>,
    pub get_mbind_nodemask: Option<extern "C" fn(MemkindT, *mut c_ulong, c_ulong) -> c_int>,
    pub get_arena: Option<extern "C" fn(MemkindT, *mut c_uint, usize) -> c_int>,
    pub check_available: Option<extern "C" fn(MemkindT) -> c_int>,
    pub init_once: Option<extern "C" fn()>,
    pub finalize: Option<extern "C" fn(MemkindT) -> c_int>,
    pub malloc_usable_size: Option<extern "C" fn(MemkindT, *mut c_void) -> usize>,
    pub update_memory_usage_policy: Option<extern "C" fn(MemkindT, c_int) -> c_int>,
    pub get_stat: Option<extern "C" fn(MemkindT, c_uint, *mut usize) -> c_int>,
    pub defrag_reallocate: Option<extern "C" fn(MemkindT, *mut c_void) -> *mut c_void>,
}

const _: () = assert!(size_of::<MemkindOps>() == 21 * 8);

/// No operations.
const EMPTY: MemkindOps = MemkindOps {
    create: None,
    destroy: None,
    malloc: None,
    calloc: None,
    posix_memalign: None,
    realloc: None,
    free: None,
    mmap: None,
    mbind: None,
    madvise: None,
    get_mmap_flags: None,
    get_mbind_mode: None,
    get_mbind_nodemask: None,
    get_arena: None,
    check_available: None,
    init_once: None,
    finalize: None,
    malloc_usable_size: None,
    update_memory_usage_policy: None,
    get_stat: None,
    defrag_reallocate: None,
};

/// What every arena kind's table shares (1.14: every kind but DEFAULT): the heap operations of
/// the arena layer, DEFAULT's usable_size and destroy, the per-thread arena choice. Each table
/// below adds its family's entries.
const ARENA_HEAP: MemkindOps = MemkindOps {
    create: Some(memkind_arena_create),
    destroy: Some(memkind_default_destroy),
    malloc: Some(memkind_arena_malloc),
    calloc: Some(memkind_arena_calloc),
    posix_memalign: Some(memkind_arena_posix_memalign),
    realloc: Some(memkind_arena_realloc),
    free: Some(memkind_arena_free),
    get_arena: Some(memkind_thread_get_arena),
    finalize: Some(kind_finalize),
    malloc_usable_size: Some(memkind_default_malloc_usable_size),
    get_stat: Some(kind_get_stat),
    defrag_reallocate: Some(kind_defrag_reallocate),
    ..EMPTY
};

// The 26 static kinds' tables (in partition order), then PMEM's and fixed kinds'. A kind's `ops`
// field (`kind::Kind`) points to its table; the kind layer finds them by these symbol names.

/// `MEMKIND_DEFAULT_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_DEFAULT_OPS: MemkindOps = MemkindOps {
    create: Some(memkind_default_create),
    destroy: Some(memkind_default_destroy),
    malloc: Some(memkind_default_malloc),
    calloc: Some(memkind_default_calloc),
    posix_memalign: Some(memkind_default_posix_memalign),
    realloc: Some(memkind_default_realloc),
    free: Some(memkind_default_free),
    init_once: Some(memkind_default_init_once),
    finalize: Some(memkind_default_destroy),
    malloc_usable_size: Some(memkind_default_malloc_usable_size),
    get_stat: Some(kind_get_stat),
    defrag_reallocate: Some(kind_defrag_reallocate),
    ..EMPTY
};

/// `MEMKIND_HBW_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HBW_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(memkind_hbw_get_mbind_nodemask),
    check_available: Some(memkind_hbw_check_available),
    init_once: Some(memkind_hbw_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HBW_HUGETLB_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HBW_HUGETLB_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_hugetlb_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(memkind_hbw_get_mbind_nodemask),
    check_available: Some(memkind_hbw_hugetlb_check_available),
    init_once: Some(memkind_hbw_hugetlb_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HBW_PREFERRED_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HBW_PREFERRED_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_preferred_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(memkind_hbw_check_available),
    init_once: Some(memkind_hbw_preferred_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HBW_PREFERRED_HUGETLB_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HBW_PREFERRED_HUGETLB_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_hugetlb_get_mmap_flags),
    get_mbind_mode: Some(memkind_preferred_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(memkind_hbw_hugetlb_check_available),
    init_once: Some(memkind_hbw_preferred_hugetlb_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HUGETLB_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HUGETLB_OPS: MemkindOps = MemkindOps {
    get_mmap_flags: Some(memkind_hugetlb_get_mmap_flags),
    check_available: Some(memkind_hugetlb_check_available_2mb),
    init_once: Some(memkind_hugetlb_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HBW_GBTLB_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HBW_GBTLB_OPS: MemkindOps = MemkindOps {
    mmap: Some(gbtlb_mmap),
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_hugetlb_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(memkind_hbw_get_mbind_nodemask),
    check_available: Some(memkind_hugetlb_check_available_2mb),
    init_once: Some(hbw_gbtlb_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HBW_PREFERRED_GBTLB_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HBW_PREFERRED_GBTLB_OPS: MemkindOps = MemkindOps {
    mmap: Some(gbtlb_mmap),
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_hugetlb_get_mmap_flags),
    get_mbind_mode: Some(memkind_preferred_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(memkind_hugetlb_check_available_2mb),
    init_once: Some(hbw_preferred_gbtlb_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_GBTLB_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_GBTLB_OPS: MemkindOps = MemkindOps {
    mmap: Some(gbtlb_mmap),
    get_mmap_flags: Some(memkind_hugetlb_get_mmap_flags),
    check_available: Some(memkind_hugetlb_check_available_2mb),
    init_once: Some(gbtlb_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HBW_INTERLEAVE_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HBW_INTERLEAVE_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    madvise: Some(memkind_nohugepage_madvise),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_interleave_get_mbind_mode),
    get_mbind_nodemask: Some(memkind_hbw_all_get_mbind_nodemask),
    check_available: Some(memkind_hbw_check_available),
    init_once: Some(memkind_hbw_interleave_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_INTERLEAVE_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_INTERLEAVE_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    madvise: Some(memkind_nohugepage_madvise),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_interleave_get_mbind_mode),
    get_mbind_nodemask: Some(memkind_default_get_mbind_nodemask),
    init_once: Some(memkind_interleave_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_REGULAR_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_REGULAR_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(memkind_regular_all_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(regular_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HBW_ALL_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HBW_ALL_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(memkind_hbw_all_get_mbind_nodemask),
    check_available: Some(memkind_hbw_check_available),
    init_once: Some(memkind_hbw_all_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HBW_ALL_HUGETLB_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HBW_ALL_HUGETLB_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_hugetlb_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(memkind_hbw_all_get_mbind_nodemask),
    check_available: Some(memkind_hbw_hugetlb_check_available),
    init_once: Some(memkind_hbw_all_hugetlb_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_DAX_KMEM_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_DAX_KMEM_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(dax_kmem_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_DAX_KMEM_ALL_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_DAX_KMEM_ALL_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(memkind_dax_kmem_all_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(dax_kmem_all_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_DAX_KMEM_PREFERRED_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_DAX_KMEM_PREFERRED_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_preferred_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(dax_kmem_preferred_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_DAX_KMEM_INTERLEAVE_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_DAX_KMEM_INTERLEAVE_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_interleave_get_mbind_mode),
    get_mbind_nodemask: Some(memkind_dax_kmem_all_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(dax_kmem_interleave_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HIGHEST_CAPACITY_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HIGHEST_CAPACITY_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(highest_capacity_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HIGHEST_CAPACITY_PREFERRED_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HIGHEST_CAPACITY_PREFERRED_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_preferred_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(highest_capacity_preferred_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HIGHEST_CAPACITY_LOCAL_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HIGHEST_CAPACITY_LOCAL_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(highest_capacity_local_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HIGHEST_CAPACITY_LOCAL_PREFERRED_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HIGHEST_CAPACITY_LOCAL_PREFERRED_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_preferred_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(highest_capacity_local_preferred_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_LOWEST_LATENCY_LOCAL_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_LOWEST_LATENCY_LOCAL_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(lowest_latency_local_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_LOWEST_LATENCY_LOCAL_PREFERRED_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_LOWEST_LATENCY_LOCAL_PREFERRED_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_preferred_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(lowest_latency_local_preferred_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HIGHEST_BANDWIDTH_LOCAL_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HIGHEST_BANDWIDTH_LOCAL_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_default_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(highest_bandwidth_local_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED_OPS: MemkindOps = MemkindOps {
    mbind: Some(memkind_default_mbind),
    get_mmap_flags: Some(memkind_default_get_mmap_flags),
    get_mbind_mode: Some(memkind_preferred_get_mbind_mode),
    get_mbind_nodemask: Some(kind_get_mbind_nodemask),
    check_available: Some(kind_check_available),
    init_once: Some(highest_bandwidth_local_preferred_init_once),
    ..ARENA_HEAP
};

/// `MEMKIND_PMEM_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_PMEM_OPS: MemkindOps = MemkindOps {
    create: Some(memkind_pmem_create),
    destroy: Some(memkind_pmem_destroy),
    mmap: Some(memkind_pmem_mmap),
    get_mmap_flags: Some(memkind_pmem_get_mmap_flags),
    finalize: Some(memkind_pmem_destroy),
    update_memory_usage_policy: Some(memkind_arena_update_memory_usage_policy),
    ..ARENA_HEAP
};

/// `MEMKIND_FIXED_OPS`.
#[unsafe(no_mangle)]
pub static mut MEMKIND_FIXED_OPS: MemkindOps = MemkindOps {
    create: Some(memkind_fixed_create),
    destroy: Some(memkind_fixed_destroy),
    mmap: Some(memkind_fixed_mmap),
    finalize: Some(memkind_fixed_destroy),
    update_memory_usage_policy: Some(memkind_arena_update_memory_usage_policy),
    ..ARENA_HEAP
};
