//! memkind 1.14's operations API: the exported functions of memkind_default(3), memkind_hbw(3),
//! memkind_hugetlb(3), memkind_pmem(3) and memkind_fixed(3) that fill its `MEMKIND_*_OPS`
//! tables (`super::ops`), with the man pages' semantics over our kinds.
//!
//! * `memkind_default_*` allocation functions use MEMKIND_DEFAULT whatever the kind argument
//!   (1.14 calls jemalloc's malloc/free directly); free and usable_size find the block's owner, so
//!   they accept any kind's block, and foreign pointers are ignored (0), never a crash.
//! * The mmap / mbind operations read the kind's own table (`kind->ops`), as 1.14 does, so they
//!   also serve a `struct memkind` the caller filled with [`memkind_default_create`].
//! * The nodemask functions take a NULL kind (memkind-hbw-nodes and memkind-auto-dax-kmem-nodes
//!   call them so): they report the family's nodes for the calling CPU, from the same rules the
//!   kinds use.
//! * Kinds this library made keep their identity: `memkind_default_create` on one of them
//!   succeeds only when it changes nothing; the create/destroy functions of the PMEM and fixed
//!   families work on kinds made by `memkind_create_pmem` / `memkind_create_fixed`.

use core::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

use super::memkind as mk;
use super::ops::MemkindOps;
use super::stats as ffi_stats;
use super::{kind_arg, MemkindT};
use crate::error::{code, Error};
use crate::kind::{default_kind, partition, Kind, KINDS, NAME_LEN};
use crate::nodemask::Nodemask;
use crate::sys::MpolMode;

/// Define an operation: a nop5-entered stub (as the arena layer's entry points, see
/// `super::arena`) that jumps to the body. Every function a table holds has its own address this
/// way: the compiler may fold identical bodies (two functions that store 1, a wrapper and the
/// function it calls), which would make one table entry look like another operation.
macro_rules! ops_fn {
    ($(#[$m:meta])* [$($export:tt)*] fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        #[allow(non_snake_case, reason = "named after the operation")]
        mod $name {
            #[allow(unused_imports, reason = "the bodies use the module's items")]
            use super::*;
            pub(super) extern "C" fn body($($arg: $ty),*) $(-> $ret)? $body
        }
        $(#[$m])*
        $($export)*
        #[unsafe(naked)]
        pub extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            core::arch::naked_asm!(
                ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00",
                "jmp {body}",
                body = sym $name::body,
            )
        }
    };
}

/// Bits of the masks the mbind operation asks the nodemask operation for (libnuma's
/// `NUMA_NUM_NODES`).
const NUMA_NUM_NODES: usize = 1024;

fn rc(r: Result<(), Error>) -> c_int {
    r.map_or_else(|e| e.code(), |()| 0)
}

/// `kind->ops` of a non-NULL `struct memkind *` (ours or the caller's).
fn ops_of<'a>(kind: MemkindT) -> Option<&'a MemkindOps> {
    if kind.is_null() {
        return None;
    }
    // SAFETY: a `struct memkind *` from C starts with its `ops` pointer (1.14's layout, which
    // `Kind` keeps); the table it points to is the caller's contract, as in 1.14.
    let ops = unsafe { *kind.cast::<*const MemkindOps>() };
    // SAFETY: as above: NULL or a valid table.
    unsafe { ops.as_ref() }
}

// --- memkind_default(3) ----------------------------------------------------------------------

ops_fn! {
    /// `memkind_default_create(kind, ops, name)`: set a `struct memkind`'s `ops` and `name`;
    /// MEMKIND_ERROR_INVALID (and an empty name) when the name does not fit in 64 bytes. A kind of
    /// this library is not renamed: only a call that changes nothing succeeds on it.
    [#[unsafe(no_mangle)]] fn memkind_default_create(
    kind: MemkindT,
    ops: *mut c_void,
    name: *const c_char,
) -> c_int {
    if kind.is_null() || name.is_null() {
        return code::INVALID;
    }
    // SAFETY: `name` is a NUL-terminated string (memkind_default(3)).
    let name = unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes();
    if let Some(k) = kind_arg(kind) {
        let same = core::ptr::eq(k.ops(), ops.cast()) && k.c_name() == name;
        return if same { 0 } else { code::INVALID };
    }
    let k = kind.cast_mut().cast::<CStructPrefix>();
    // SAFETY: `kind` is the caller's `struct memkind` (not one of ours), whose leading fields are
    // `ops`, `partition` and `name[64]` (memkind_private.h), writable by contract.
    let k = unsafe { &mut *k };
    k.ops = ops.cast();
    if name.len() >= NAME_LEN {
        k.name[0] = 0;
        return code::INVALID;
    }
    k.name[..name.len()].copy_from_slice(name);
    k.name[name.len()] = 0;
    0
}
}

/// 1.14's leading fields of `struct memkind`, for a caller's struct.
#[repr(C)]
struct CStructPrefix {
    ops: *mut MemkindOps,
    partition: c_uint,
    name: [u8; NAME_LEN],
}

ops_fn! {
    /// `memkind_default_destroy(kind)`: nothing to release, 0.
    [#[unsafe(no_mangle)]] fn memkind_default_destroy(_kind: MemkindT) -> c_int {
    0
}
}

ops_fn! {
    /// `memkind_default_malloc(kind, size)`: MEMKIND_DEFAULT's malloc (NULL for 0).
    [#[unsafe(no_mangle)]] fn memkind_default_malloc(_kind: MemkindT, size: usize) -> *mut c_void {
    mk::memkind_malloc(default_kind(), size)
}
}

ops_fn! {
    /// `memkind_default_calloc(kind, num, size)`: MEMKIND_DEFAULT's calloc.
    [#[unsafe(no_mangle)]] fn memkind_default_calloc(_kind: MemkindT, num: usize, size: usize) -> *mut c_void {
    mk::memkind_calloc(default_kind(), num, size)
}
}

ops_fn! {
    /// `memkind_default_posix_memalign(kind, &p, alignment, size)`: MEMKIND_DEFAULT's.
    [#[unsafe(no_mangle)]] fn memkind_default_posix_memalign(
    _kind: MemkindT,
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    mk::memkind_posix_memalign(default_kind(), memptr, alignment, size)
}
}

ops_fn! {
    /// `memkind_default_realloc(kind, ptr, size)`: MEMKIND_DEFAULT's realloc (size 0 frees).
    [#[unsafe(no_mangle)]] fn memkind_default_realloc(
    _kind: MemkindT,
    ptr: *mut c_void,
    size: usize,
) -> *mut c_void {
    mk::memkind_realloc(default_kind(), ptr, size)
}
}

ops_fn! {
    /// `memkind_default_free(kind, ptr)`: frees a block of any kind (found from the pointer).
    [#[unsafe(no_mangle)]] fn memkind_default_free(_kind: MemkindT, ptr: *mut c_void) {
    mk::memkind_free(core::ptr::null(), ptr)
}
}

ops_fn! {
    /// `memkind_default_malloc_usable_size(kind, ptr)`: of a block of any kind; 0 for NULL and
    /// foreign pointers.
    [#[unsafe(no_mangle)]] fn memkind_default_malloc_usable_size(_kind: MemkindT, ptr: *mut c_void) -> usize {
    mk::memkind_malloc_usable_size(core::ptr::null(), ptr)
}
}

ops_fn! {
    /// `memkind_default_mmap(kind, addr, size)`: an anonymous mapping with the flags of the kind's
    /// `get_mmap_flags` operation (else MAP_PRIVATE | MAP_ANONYMOUS), then its `mbind` and `madvise`
    /// operations; MAP_FAILED on any failure (the mapping is then gone).
    [#[unsafe(no_mangle)]] fn memkind_default_mmap(kind: MemkindT, addr: *mut c_void, size: usize) -> *mut c_void {
    let Some(ops) = ops_of(kind) else {
        return libc::MAP_FAILED;
    };
    let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    if let Some(f) = ops.get_mmap_flags {
        if f(kind, &mut flags) != 0 {
            return libc::MAP_FAILED;
        }
    }
    let Ok(p) = crate::sys::map_raw(addr, size, flags) else {
        return libc::MAP_FAILED;
    };
    let steps = [ops.mbind, ops.madvise];
    for step in steps.into_iter().flatten() {
        if step(kind, p, size) != 0 {
            // SAFETY: `p` is the mapping just made, not handed out yet.
            let _ = unsafe { crate::sys::unmap_raw(p, size) };
            return libc::MAP_FAILED;
        }
    }
    p
}
}

ops_fn! {
    /// `memkind_default_mbind(kind, ptr, size)`: mbind(2) with the kind's `get_mbind_nodemask` and
    /// `get_mbind_mode` operations; MEMKIND_ERROR_BADOPS when the table lacks them, their error, or
    /// MEMKIND_ERROR_MBIND.
    [#[unsafe(no_mangle)]] fn memkind_default_mbind(kind: MemkindT, ptr: *mut c_void, size: usize) -> c_int {
    let Some(ops) = ops_of(kind) else {
        return code::INVALID;
    };
    let (Some(get_mask), Some(get_mode)) = (ops.get_mbind_nodemask, ops.get_mbind_mode) else {
        return code::BADOPS;
    };
    let mut mask = [0u64; NUMA_NUM_NODES / 64];
    let err = get_mask(kind, mask.as_mut_ptr().cast(), NUMA_NUM_NODES as c_ulong);
    if err != 0 {
        return err;
    }
    let mut mode = -1;
    let err = get_mode(kind, &mut mode);
    if err != 0 {
        return err;
    }
    let Some(mode) = MpolMode::from_raw(mode) else {
        return code::MBIND;
    };
    match crate::sys::mbind(ptr, size, mode, &mask) {
        Ok(()) => 0,
        Err(_) => code::MBIND,
    }
}
}

ops_fn! {
    /// `memkind_nohugepage_madvise(kind, addr, size)`: madvise(MADV_NOHUGEPAGE); 0 or -1 (as 1.14,
    /// madvise's return value).
    [#[unsafe(no_mangle)]] fn memkind_nohugepage_madvise(_kind: MemkindT, addr: *mut c_void, size: usize) -> c_int {
    // SAFETY: MADV_NOHUGEPAGE only changes how the caller's range is backed, never its contents.
    match unsafe { crate::sys::advise_raw(addr, size, libc::MADV_NOHUGEPAGE) } {
        Ok(()) => 0,
        Err(_) => -1,
    }
}
}

/// Write `*out` when the pointer is not NULL (else log which operation got NULL, with
/// MEMKIND_DEBUG=1).
fn put(out: *mut c_int, v: c_int, op: &str) -> c_int {
    if out.is_null() {
        crate::env::debug_log!("{op}: NULL out-parameter");
        return code::INVALID;
    }
    // SAFETY: a non-NULL out-parameter (memkind_default(3)).
    unsafe { *out = v };
    0
}

ops_fn! {
    /// `memkind_default_get_mmap_flags(kind, &flags)`: MAP_PRIVATE | MAP_ANONYMOUS.
    [#[unsafe(no_mangle)]] fn memkind_default_get_mmap_flags(_kind: MemkindT, flags: *mut c_int) -> c_int {
    put(flags, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, "memkind_default_get_mmap_flags")
}
}

ops_fn! {
    /// `memkind_hugetlb_get_mmap_flags(kind, &flags)`: anonymous private 2 MiB hugetlb pages.
    [#[unsafe(no_mangle)]] fn memkind_hugetlb_get_mmap_flags(_kind: MemkindT, flags: *mut c_int) -> c_int {
    put(
        flags,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB | libc::MAP_HUGE_2MB,
        "memkind_hugetlb_get_mmap_flags",
    )
}
}

ops_fn! {
    /// `memkind_pmem_get_mmap_flags(kind, &flags)`: MAP_SHARED.
    [#[unsafe(no_mangle)]] fn memkind_pmem_get_mmap_flags(_kind: MemkindT, flags: *mut c_int) -> c_int {
    put(flags, libc::MAP_SHARED, "memkind_pmem_get_mmap_flags")
}
}

ops_fn! {
    /// `memkind_default_get_mbind_mode(kind, &mode)`: MPOL_BIND.
    [#[unsafe(no_mangle)]] fn memkind_default_get_mbind_mode(_kind: MemkindT, mode: *mut c_int) -> c_int {
    put(mode, MpolMode::Bind as c_int, "memkind_default_get_mbind_mode")
}
}

ops_fn! {
    /// `memkind_preferred_get_mbind_mode(kind, &mode)`: MPOL_PREFERRED.
    [#[unsafe(no_mangle)]] fn memkind_preferred_get_mbind_mode(_kind: MemkindT, mode: *mut c_int) -> c_int {
    put(mode, MpolMode::Preferred as c_int, "memkind_preferred_get_mbind_mode")
}
}

ops_fn! {
    /// `memkind_interleave_get_mbind_mode(kind, &mode)`: MPOL_INTERLEAVE.
    [#[unsafe(no_mangle)]] fn memkind_interleave_get_mbind_mode(_kind: MemkindT, mode: *mut c_int) -> c_int {
    put(mode, MpolMode::Interleave as c_int, "memkind_interleave_get_mbind_mode")
}
}

/// Copy `mask` into the caller's bitmask of `maxnode` bits (libnuma's
/// `copy_bitmask_to_bitmask`: bits beyond `mask` cleared, bits beyond `maxnode` dropped); a NULL
/// `out` only reports the result.
fn write_mask(r: Result<Nodemask, Error>, out: *mut c_ulong, maxnode: c_ulong) -> c_int {
    let mask = match r {
        Ok(m) => m,
        Err(e) => return e.code(),
    };
    if out.is_null() {
        return 0;
    }
    let words = (maxnode as usize).div_ceil(64);
    // SAFETY: the caller's bitmask holds `maxnode` bits in whole `unsigned long`s (numa.h's
    // `struct bitmask` contract).
    let out = unsafe { core::slice::from_raw_parts_mut(out.cast::<u64>(), words) };
    out.fill(0);
    for node in mask.iter().filter(|&n| (n as c_ulong) < maxnode) {
        out[node as usize / 64] |= 1u64 << (node % 64);
    }
    0
}

/// The target nodes of static kind `part` for the calling CPU (the kind's own error when it
/// is unavailable).
fn nodes_of(part: usize) -> Result<Nodemask, Error> {
    match KINDS[part].mbind_here()? {
        Some((_, nodes)) => Ok(nodes),
        None => crate::kind::memory_nodes(),
    }
}

ops_fn! {
    /// `memkind_default_get_mbind_nodemask(kind, mask, maxnode)`: every node with memory.
    [#[unsafe(no_mangle)]] fn memkind_default_get_mbind_nodemask(
    _kind: MemkindT,
    nodemask: *mut c_ulong,
    maxnode: c_ulong,
) -> c_int {
    write_mask(crate::kind::memory_nodes(), nodemask, maxnode)
}
}

ops_fn! {
    /// `memkind_regular_all_get_mbind_nodemask(kind, mask, maxnode)`: MEMKIND_REGULAR's nodes.
    [#[unsafe(no_mangle)]] fn memkind_regular_all_get_mbind_nodemask(
    _kind: MemkindT,
    nodemask: *mut c_ulong,
    maxnode: c_ulong,
) -> c_int {
    write_mask(nodes_of(partition::REGULAR), nodemask, maxnode)
}
}

ops_fn! {
    /// `memkind_hbw_get_mbind_nodemask(kind, mask, maxnode)`: the high-bandwidth node closest to the
    /// calling CPU (MEMKIND_HBW's).
    [#[unsafe(no_mangle)]] fn memkind_hbw_get_mbind_nodemask(
    _kind: MemkindT,
    nodemask: *mut c_ulong,
    maxnode: c_ulong,
) -> c_int {
    write_mask(nodes_of(partition::HBW), nodemask, maxnode)
}
}

ops_fn! {
    /// `memkind_hbw_all_get_mbind_nodemask(kind, mask, maxnode)`: every high-bandwidth node
    /// (MEMKIND_HBW_ALL's), what memkind-hbw-nodes prints.
    [#[unsafe(no_mangle)]] fn memkind_hbw_all_get_mbind_nodemask(
    _kind: MemkindT,
    nodemask: *mut c_ulong,
    maxnode: c_ulong,
) -> c_int {
    write_mask(nodes_of(partition::HBW_ALL), nodemask, maxnode)
}
}

ops_fn! {
    /// `memkind_dax_kmem_all_get_mbind_nodemask(kind, mask, maxnode)`: every DAX KMEM node
    /// (MEMKIND_DAX_KMEM_ALL's), what memkind-auto-dax-kmem-nodes prints.
    [#[unsafe(no_mangle)]] fn memkind_dax_kmem_all_get_mbind_nodemask(
    _kind: MemkindT,
    nodemask: *mut c_ulong,
    maxnode: c_ulong,
) -> c_int {
    write_mask(nodes_of(partition::DAX_KMEM_ALL), nodemask, maxnode)
}
}

ops_fn! {
    /// The tables' private `get_mbind_nodemask` (1.14's static functions of the preferred, DAX KMEM
    /// and memory-attribute families): the kind's own nodes for the calling CPU.
    [] fn kind_get_mbind_nodemask(
    kind: MemkindT,
    nodemask: *mut c_ulong,
    maxnode: c_ulong,
) -> c_int {
    match kind_arg(kind) {
        Some(k) => write_mask(nodes_of(k.id() as usize), nodemask, maxnode),
        None => code::INVALID,
    }
}
}

ops_fn! {
    /// `memkind_posix_check_alignment(kind, alignment)`: 0, or EINVAL unless a power of two of at
    /// least `sizeof(void *)`.
    [#[unsafe(no_mangle)]] fn memkind_posix_check_alignment(_kind: MemkindT, alignment: usize) -> c_int {
    if alignment >= size_of::<*const c_void>() && alignment.is_power_of_two() {
        0
    } else {
        libc::EINVAL
    }
}
}

// --- check_available -------------------------------------------------------------------------

ops_fn! {
    /// `memkind_hbw_check_available(kind)`: the kind's nodemask operation with no mask, as 1.14.
    [#[unsafe(no_mangle)]] fn memkind_hbw_check_available(kind: MemkindT) -> c_int {
    match ops_of(kind).and_then(|o| o.get_mbind_nodemask) {
        Some(f) => f(kind, core::ptr::null_mut(), 0),
        None => code::BADOPS,
    }
}
}

ops_fn! {
    /// `memkind_hugetlb_check_available_2mb(kind)`: 0 when 2 MiB hugepages can be had (on the
    /// kind's nodes), else MEMKIND_ERROR_HUGETLB.
    [#[unsafe(no_mangle)]] fn memkind_hugetlb_check_available_2mb(kind: MemkindT) -> c_int {
    // As 1.14: on the nodes the kind's nodemask operation gives (none when it fails), or on
    // every node for a kind without one.
    let nodes = match ops_of(kind).and_then(|o| o.get_mbind_nodemask) {
        Some(f) => {
            let mut mask = [0u64; NUMA_NUM_NODES / 64];
            if f(kind, mask.as_mut_ptr().cast(), NUMA_NUM_NODES as c_ulong) != 0 {
                return code::HUGETLB;
            }
            Some(crate::topology::NodeSets::uniform(Nodemask::from_words_slice(&mask)))
        }
        None => None,
    };
    rc(crate::kind::hugepages_available(
        crate::sys::HUGE_2M,
        nodes.as_ref(),
    ))
}
}

ops_fn! {
    /// `memkind_hbw_hugetlb_check_available(kind)`: high-bandwidth nodes, then 2 MiB pages.
    [#[unsafe(no_mangle)]] fn memkind_hbw_hugetlb_check_available(kind: MemkindT) -> c_int {
    match memkind_hbw_check_available(kind) {
        0 => memkind_hugetlb_check_available_2mb(kind),
        e => e,
    }
}
}

ops_fn! {
    /// The tables' private `check_available`: `memkind_check_available` of the kind.
    [] fn kind_check_available(kind: MemkindT) -> c_int {
    mk::memkind_check_available(kind)
}
}

// --- init_once -------------------------------------------------------------------------------

/// Initialise static kind `part` (its arenas), as its `init_once` operation does; an unavailable
/// kind stays so (its allocations fail as before).
fn init(part: usize) {
    if KINDS[part].check_available().is_ok() {
        let _ = crate::arena::runtime(&KINDS[part]);
    }
}

macro_rules! init_once {
    ($($(#[$m:meta])* $vis:vis fn $name:ident => $part:ident;)*) => {$(
        ops_fn! {
            $(#[$m])*
            [] fn $name() {
                init(partition::$part)
            }
        }
    )*};
}

init_once! {
    /// `memkind_default_init_once()`.
    #[unsafe(no_mangle)]
    pub fn memkind_default_init_once => DEFAULT;
    /// `memkind_hbw_init_once()`.
    #[unsafe(no_mangle)]
    pub fn memkind_hbw_init_once => HBW;
    /// `memkind_hbw_all_init_once()`.
    #[unsafe(no_mangle)]
    pub fn memkind_hbw_all_init_once => HBW_ALL;
    /// `memkind_hbw_hugetlb_init_once()`.
    #[unsafe(no_mangle)]
    pub fn memkind_hbw_hugetlb_init_once => HBW_HUGETLB;
    /// `memkind_hbw_all_hugetlb_init_once()`.
    #[unsafe(no_mangle)]
    pub fn memkind_hbw_all_hugetlb_init_once => HBW_ALL_HUGETLB;
    /// `memkind_hbw_preferred_init_once()`.
    #[unsafe(no_mangle)]
    pub fn memkind_hbw_preferred_init_once => HBW_PREFERRED;
    /// `memkind_hbw_preferred_hugetlb_init_once()`.
    #[unsafe(no_mangle)]
    pub fn memkind_hbw_preferred_hugetlb_init_once => HBW_PREFERRED_HUGETLB;
    /// `memkind_hbw_interleave_init_once()`.
    #[unsafe(no_mangle)]
    pub fn memkind_hbw_interleave_init_once => HBW_INTERLEAVE;
    /// `memkind_hugetlb_init_once()`.
    #[unsafe(no_mangle)]
    pub fn memkind_hugetlb_init_once => HUGETLB;
    /// `memkind_interleave_init_once()`.
    #[unsafe(no_mangle)]
    pub fn memkind_interleave_init_once => INTERLEAVE;
    fn regular_init_once => REGULAR;
    fn gbtlb_init_once => GBTLB;
    fn hbw_gbtlb_init_once => HBW_GBTLB;
    fn hbw_preferred_gbtlb_init_once => HBW_PREFERRED_GBTLB;
    fn dax_kmem_init_once => DAX_KMEM;
    fn dax_kmem_all_init_once => DAX_KMEM_ALL;
    fn dax_kmem_preferred_init_once => DAX_KMEM_PREFERRED;
    fn dax_kmem_interleave_init_once => DAX_KMEM_INTERLEAVE;
    fn highest_capacity_init_once => HIGHEST_CAPACITY;
    fn highest_capacity_preferred_init_once => HIGHEST_CAPACITY_PREFERRED;
    fn highest_capacity_local_init_once => HIGHEST_CAPACITY_LOCAL;
    fn highest_capacity_local_preferred_init_once => HIGHEST_CAPACITY_LOCAL_PREFERRED;
    fn lowest_latency_local_init_once => LOWEST_LATENCY_LOCAL;
    fn lowest_latency_local_preferred_init_once => LOWEST_LATENCY_LOCAL_PREFERRED;
    fn highest_bandwidth_local_init_once => HIGHEST_BANDWIDTH_LOCAL;
    fn highest_bandwidth_local_preferred_init_once => HIGHEST_BANDWIDTH_LOCAL_PREFERRED;
}

// --- the other private operations ------------------------------------------------------------

ops_fn! {
    /// The tables' private `finalize` (static kinds: nothing to release at exit).
    [] fn kind_finalize(_kind: MemkindT) -> c_int {
    0
}
}

ops_fn! {
    /// The tables' private `get_stat`: `memkind_get_stat` of the kind.
    [] fn kind_get_stat(kind: MemkindT, stat: c_uint, value: *mut usize) -> c_int {
    // A kind's operation: never the whole process (memkind_get_stat's NULL).
    if kind_arg(kind).is_none() {
        return code::INVALID;
    }
    ffi_stats::memkind_get_stat(kind, stat, value)
}
}

ops_fn! {
    /// The tables' private `defrag_reallocate`: `memkind_defrag_reallocate` of the kind.
    [] fn kind_defrag_reallocate(kind: MemkindT, ptr: *mut c_void) -> *mut c_void {
    ffi_stats::memkind_defrag_reallocate(kind, ptr)
}
}

ops_fn! {
    /// The GBTLB tables' private `mmap`: [`memkind_default_mmap`] of the size rounded up to 1 GiB
    /// (1.14 backs GBTLB kinds with 2 MiB pages in 1 GiB-sized mappings).
    [] fn gbtlb_mmap(kind: MemkindT, addr: *mut c_void, size: usize) -> *mut c_void {
    const GIB: usize = 1 << 30;
    match size.checked_next_multiple_of(GIB) {
        Some(len) => memkind_default_mmap(kind, addr, len),
        None => libc::MAP_FAILED,
    }
}
}

// --- PMEM and fixed kinds --------------------------------------------------------------------

/// Our kind of `family` at `kind`, if it is one.
fn dynamic_of(kind: MemkindT, pmem: bool) -> Option<&'static Kind> {
    kind_arg(kind).filter(|k| {
        if pmem {
            crate::kind::pmem::is_pmem(k)
        } else {
            crate::kind::fixed::state_of(k).is_some()
        }
    })
}

ops_fn! {
    /// `memkind_pmem_create(kind, ops, name)`: the create operation of a kind made by
    /// `memkind_create_pmem` (its arenas; 0 once they exist); MEMKIND_ERROR_INVALID for any other.
    [#[unsafe(no_mangle)]] fn memkind_pmem_create(
    kind: MemkindT,
    _ops: *mut c_void,
    _name: *const c_char,
) -> c_int {
    match dynamic_of(kind, true) {
        Some(k) => rc(crate::arena::runtime(k).map(drop)),
        None => code::INVALID,
    }
}
}

ops_fn! {
    /// `memkind_pmem_destroy(kind)`: destroy a PMEM kind (as `memkind_destroy_kind`: its arenas,
    /// file and slot); MEMKIND_ERROR_INVALID for any other.
    [#[unsafe(no_mangle)]] fn memkind_pmem_destroy(kind: MemkindT) -> c_int {
    match dynamic_of(kind, true) {
        Some(k) => rc(crate::arena::destroy_kind(k)),
        None => code::INVALID,
    }
}
}

ops_fn! {
    /// `memkind_pmem_mmap(kind, addr, size)`: `size` more bytes of the kind's file, counted against
    /// its maximum, mapped shared (MAP_SYNC on DAX); MAP_FAILED with errno ENOMEM past the maximum
    /// or for another kind. The mapping is the caller's (munmap it); the heap never uses it.
    [#[unsafe(no_mangle)]] fn memkind_pmem_mmap(kind: MemkindT, _addr: *mut c_void, size: usize) -> *mut c_void {
    let st = dynamic_of(kind, true).and_then(|k| k.state::<crate::kind::pmem::PmemState>());
    match st.map(|st| crate::hooks::file::map_raw(st, size)) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            crate::sys::set_errno(e as i32);
            libc::MAP_FAILED
        }
        None => {
            crate::sys::set_errno(libc::EINVAL);
            libc::MAP_FAILED
        }
    }
}
}

ops_fn! {
    /// `memkind_fixed_create(kind, ops, name)`: the create operation of a kind made by
    /// `memkind_create_fixed` (0); MEMKIND_ERROR_INVALID for any other.
    [#[unsafe(no_mangle)]] fn memkind_fixed_create(
    kind: MemkindT,
    _ops: *mut c_void,
    _name: *const c_char,
) -> c_int {
    match dynamic_of(kind, false) {
        Some(k) => rc(crate::arena::runtime(k).map(drop)),
        None => code::INVALID,
    }
}
}

ops_fn! {
    /// `memkind_fixed_destroy(kind)`: destroy a fixed kind (as `memkind_destroy_kind`; the buffer
    /// stays the caller's); MEMKIND_ERROR_INVALID for any other.
    [#[unsafe(no_mangle)]] fn memkind_fixed_destroy(kind: MemkindT) -> c_int {
    match dynamic_of(kind, false) {
        Some(k) => rc(crate::arena::destroy_kind(k)),
        None => code::INVALID,
    }
}
}

ops_fn! {
    /// `memkind_fixed_mmap(kind, addr, size)`: the next `size` bytes (page-aligned) of the kind's
    /// buffer, taken for good as 1.14 does; MAP_FAILED with errno ENOMEM when the buffer is used up.
    /// `addr` is ignored (1.14 too).
    [#[unsafe(no_mangle)]] fn memkind_fixed_mmap(kind: MemkindT, _addr: *mut c_void, size: usize) -> *mut c_void {
    let st = dynamic_of(kind, false).and_then(crate::kind::fixed::state_of);
    match st.and_then(|st| st.carve(size, crate::sys::PAGE_SIZE)) {
        Some(p) => p as *mut c_void,
        None => {
            crate::sys::set_errno(libc::ENOMEM);
            libc::MAP_FAILED
        }
    }
}
}

ops_fn! {
    /// `memkind_set_arena_map_len(kind)`: 1.14 sizes a kind's arena map from
    /// MEMKIND_ARENA_NUM_PER_KIND here; ours are sized when a kind's arenas are made, so this only
    /// reports a malformed variable (MEMKIND_ERROR_ENVIRON) and checks the kind.
    [#[unsafe(no_mangle)]] fn memkind_set_arena_map_len(kind: MemkindT) -> c_int {
    if kind_arg(kind).is_none() {
        return code::INVALID;
    }
    rc(crate::env::get().arenas_per_kind.map(drop))
}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errno() -> i32 {
        crate::sys::errno()
    }

    #[test]
    fn library_kinds_keep_their_name_and_table() {
        let k: MemkindT = &KINDS[partition::REGULAR];
        let ops = KINDS[partition::REGULAR].ops().cast_mut().cast::<c_void>();
        assert_eq!(
            memkind_default_create(k, ops, c"memkind_regular".as_ptr()),
            0
        );
        assert_eq!(
            memkind_default_create(k, ops, c"renamed".as_ptr()),
            code::INVALID
        );
        assert_eq!(KINDS[partition::REGULAR].c_name(), b"memkind_regular");
        assert_eq!(
            memkind_default_create(core::ptr::null(), ops, c"x".as_ptr()),
            code::INVALID
        );
    }

    #[test]
    fn set_arena_map_len_checks_the_kind_only() {
        assert_eq!(memkind_set_arena_map_len(&KINDS[partition::REGULAR]), 0);
        assert_eq!(memkind_set_arena_map_len(core::ptr::null()), code::INVALID);
    }

    #[test]
    fn pmem_mmap_maps_file_space_up_to_the_maximum() {
        let _serial = crate::kind::tests::DYNAMIC_SLOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let max = 16 << 20;
        let k = crate::arena::create_pmem(b"/tmp", max, 0).expect("pmem kind in /tmp");
        let p = memkind_pmem_mmap(k, core::ptr::null_mut(), 1 << 20);
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: 1 MiB just mapped read/write for us.
        unsafe {
            core::ptr::write_bytes(p.cast::<u8>(), 0x5a, 1 << 20);
            assert_eq!(*p.cast::<u8>().add((1 << 20) - 1), 0x5a);
        }
        assert_eq!(
            memkind_pmem_mmap(k, core::ptr::null_mut(), max),
            libc::MAP_FAILED
        );
        assert_eq!(errno(), libc::ENOMEM);
        assert_eq!(
            memkind_pmem_mmap(&KINDS[partition::REGULAR], core::ptr::null_mut(), 4096),
            libc::MAP_FAILED
        );
        assert_eq!(errno(), libc::EINVAL);
        // SAFETY: the mapping made above, no longer used.
        unsafe { crate::sys::unmap_raw(p, 1 << 20) }.unwrap();
        assert_eq!(memkind_pmem_destroy(k), 0);
        assert_eq!(memkind_pmem_destroy(k), code::INVALID);
    }

    #[test]
    fn fixed_mmap_carves_the_buffer_for_good() {
        let _serial = crate::kind::tests::DYNAMIC_SLOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut buf = vec![0u8; 64 << 10];
        let base = buf.as_mut_ptr() as usize;
        let k = crate::arena::create_fixed(base, buf.len()).unwrap();
        let a = memkind_fixed_mmap(k, core::ptr::null_mut(), 4096) as usize;
        let b = memkind_fixed_mmap(k, core::ptr::null_mut(), 4096) as usize;
        assert!(a >= base && b >= a + 4096 && b + 4096 <= base + buf.len());
        assert_eq!(a % 4096, 0);
        assert_eq!(
            memkind_fixed_mmap(k, core::ptr::null_mut(), 1 << 20),
            libc::MAP_FAILED
        );
        assert_eq!(errno(), libc::ENOMEM);
        assert_eq!(memkind_fixed_destroy(k), 0);
        assert_eq!(memkind_fixed_destroy(k), code::INVALID);
    }
}
