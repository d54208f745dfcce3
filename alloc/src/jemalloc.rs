//! Thin, checked wrappers around jemalloc's `mallctl` namespace (tikv-jemalloc-sys, `_rjem_`
//! prefixed and statically linked, so the host process's malloc is untouched).
#![allow(unsafe_code, reason = "mallctl is a C interface over untyped pointers")]
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "internal helpers over jemalloc; callers pass pointers jemalloc returned"
)]

use core::ffi::{c_char, c_void, CStr};
use core::mem::{size_of, MaybeUninit};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use tikv_jemalloc_sys as je;

pub use je::extent_hooks_t as ExtentHooks;

/// Read a value of type `T` from `name`.
///
/// # Safety
/// `T` must be the exact type jemalloc documents for `name` (jemalloc(3), MALLCTL NAMESPACE).
pub unsafe fn read<T: Copy>(name: &CStr) -> Result<T, i32> {
    let mut v = MaybeUninit::<T>::uninit();
    let mut len = size_of::<T>();
    // SAFETY: jemalloc writes at most `len` bytes into `v`, which has room for a `T`; the caller
    // guarantees `T` is the control's type so the written bytes form a valid `T`.
    let r = unsafe {
        je::mallctl(
            name.as_ptr(),
            v.as_mut_ptr().cast(),
            &mut len,
            core::ptr::null_mut(),
            0,
        )
    };
    if r != 0 {
        return Err(r);
    }
    // SAFETY: mallctl returned success, so it wrote a full `T` (len == size_of::<T>()).
    Ok(unsafe { v.assume_init() })
}

/// Write `value` to `name`.
///
/// # Safety
/// `T` must be the exact type jemalloc documents for `name`.
pub unsafe fn write<T: Copy>(name: &CStr, value: T) -> Result<(), i32> {
    let mut v = value;
    // SAFETY: jemalloc reads `size_of::<T>()` bytes from `v`.
    let r = unsafe {
        je::mallctl(
            name.as_ptr(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            (&mut v as *mut T).cast(),
            size_of::<T>(),
        )
    };
    if r != 0 {
        Err(r)
    } else {
        Ok(())
    }
}

/// Write `new` to `name` and read the result of type `R` (e.g. `arenas.create`).
///
/// # Safety
/// `W` and `R` must be the types jemalloc documents for `name`.
pub unsafe fn write_read<W: Copy, R: Copy>(name: &CStr, new: W) -> Result<R, i32> {
    let mut out = MaybeUninit::<R>::uninit();
    let mut len = size_of::<R>();
    let mut w = new;
    // SAFETY: jemalloc reads size_of::<W>() bytes from `w` and writes at most `len` into `out`.
    let r = unsafe {
        je::mallctl(
            name.as_ptr(),
            out.as_mut_ptr().cast(),
            &mut len,
            (&mut w as *mut W).cast(),
            size_of::<W>(),
        )
    };
    if r != 0 {
        return Err(r);
    }
    // SAFETY: success means a full R was written.
    Ok(unsafe { out.assume_init() })
}

/// Run a control that takes no value (e.g. `arena.<i>.destroy`, `epoch` nudges).
pub fn run(name: &CStr) -> Result<(), i32> {
    // SAFETY: no buffers are passed.
    let r = unsafe {
        je::mallctl(
            name.as_ptr(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            0,
        )
    };
    if r != 0 {
        Err(r)
    } else {
        Ok(())
    }
}

/// A small stack buffer to format control names such as `arena.12.extent_hooks` without
/// allocating (usable inside extent hooks).
pub struct Name {
    buf: [u8; 96],
}

impl Name {
    /// `prefix` + decimal `n` + `suffix`, NUL terminated.
    pub fn indexed(prefix: &str, n: u64, suffix: &str) -> Name {
        let mut buf = [0u8; 96];
        let mut i = 0;
        let mut push = |b: u8, i: &mut usize| {
            if *i < buf.len() - 1 {
                buf[*i] = b;
                *i += 1;
            }
        };
        for &b in prefix.as_bytes() {
            push(b, &mut i);
        }
        let mut digits = [0u8; 20];
        let mut d = 0;
        let mut v = n;
        loop {
            digits[d] = b'0' + (v % 10) as u8;
            d += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        while d > 0 {
            d -= 1;
            push(digits[d], &mut i);
        }
        for &b in suffix.as_bytes() {
            push(b, &mut i);
        }
        Name { buf }
    }

    /// As a C string.
    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

/// mallocx flags: arena 0, no thread cache.
pub const ARENA0_UNCACHED: i32 = je::MALLOCX_ARENA(0) | je::MALLOCX_TCACHE_NONE;

/// `mallocx` for internal use (size > 0).
pub fn mallocx(size: usize, flags: i32) -> Option<*mut c_void> {
    if size == 0 {
        return None;
    }
    // SAFETY: size > 0; flags are valid mallocx flags built from jemalloc's macros.
    let p = unsafe { je::mallocx(size, flags) };
    (!p.is_null()).then_some(p)
}

/// `dallocx` of a pointer returned by [`mallocx`] with the same flags.
pub fn dallocx(p: *mut c_void, flags: i32) {
    // SAFETY: `p` came from `mallocx` (contract of this internal helper).
    unsafe { je::dallocx(p, flags) }
}

/// `nallocx`: the usable size a request would get.
pub fn nallocx(size: usize, flags: i32) -> usize {
    // SAFETY: nallocx only computes.
    unsafe { je::nallocx(size, flags) }
}

/// jemalloc 5.3's `arena_config_t` (`experimental.arenas_create_ext`).
#[repr(C)]
#[derive(Clone, Copy)]
struct ArenaConfig {
    extent_hooks: *const ExtentHooks,
    metadata_use_hooks: bool,
}

/// Create a manual arena whose extents come from `hooks` and whose own metadata comes from
/// jemalloc's default hooks (plain anonymous memory): a kind's hugepages, PMEM file or fixed
/// buffer hold only user data (memkind 1.14 puts the metadata there too). Returns its index.
pub fn arena_create(hooks: &'static ExtentHooks) -> Result<u32, i32> {
    let config = ArenaConfig {
        extent_hooks: hooks,
        metadata_use_hooks: false,
    };
    // SAFETY: `experimental.arenas_create_ext` takes an `arena_config_t` (layout above, checked
    // against jemalloc 5.3's arena_types.h) and returns an `unsigned`.
    unsafe { write_read::<ArenaConfig, u32>(c"experimental.arenas_create_ext", config) }
}

/// `arena.<i>.initialized`.
pub fn arena_initialized(ind: u32) -> Result<bool, i32> {
    let name = Name::indexed("arena.", ind as u64, ".initialized");
    // SAFETY: `arena.<i>.initialized` is a `bool`.
    unsafe { read::<bool>(name.as_cstr()) }
}

/// `arenas.page`.
pub fn page_size() -> Result<usize, i32> {
    // SAFETY: `arenas.page` is a `size_t`.
    unsafe { read::<usize>(c"arenas.page") }
}

/// `background_thread`: enable or disable jemalloc's background purging threads.
pub fn set_background_thread(on: bool) -> Result<(), i32> {
    // SAFETY: `background_thread` is a `bool`.
    unsafe { write(c"background_thread", on) }
}

/// `max_background_threads`: the most background threads jemalloc may run.
pub fn set_max_background_threads(n: usize) -> Result<(), i32> {
    // SAFETY: `max_background_threads` is a `size_t`.
    unsafe { write(c"max_background_threads", n) }
}

/// `experimental.utilization.query` of one live pointer (jemalloc 5.3's
/// `inspect_extent_util_stats_verbose_t`): for a small object, its slab's free and total
/// regions, the slab size, the free and total regions of all slabs of its bin in its arena and
/// the slab jemalloc allocates from next; for a large one nregs = 1 and the bin figures are 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Utilization {
    /// Base of the bin's current slab (the next allocation's), or null.
    pub slabcur: *mut c_void,
    /// Free regions in the object's slab.
    pub nfree: usize,
    /// Regions in the slab.
    pub nregs: usize,
    /// Size of the slab (or of the large extent) in bytes.
    pub size: usize,
    /// Free regions in all slabs of the bin.
    pub bin_nfree: usize,
    /// Regions in all slabs of the bin.
    pub bin_nregs: usize,
}

/// Query the utilization of the slab holding `p`, a live pointer jemalloc handed out.
pub fn utilization(p: *const c_void) -> Result<Utilization, i32> {
    // SAFETY: the control takes the pointer as its new value and writes one `Utilization`
    // (jemalloc's layout, checked by size); callers pass live jemalloc pointers only.
    unsafe { write_read::<*const c_void, Utilization>(c"experimental.utilization.query", p) }
}

/// What `experimental.utilization.batch_query` says of the extent holding one address
/// (jemalloc 5.3's `inspect_extent_util_stats_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct ExtentUtil {
    /// Free regions of the slab (0 for a large extent).
    pub nfree: usize,
    /// Regions of the slab (1 for a large extent; 0 when no extent is registered there).
    pub nregs: usize,
    /// Size of the slab or of the large extent in bytes (0 when no extent is registered there).
    pub size: usize,
}

/// The extent holding `p`, from jemalloc's page map, without the bin lock that
/// [`utilization`] takes. Unlike `sallocx`, the lookup behind it copes with a page that starts
/// no block (the middle of a large extent answers all zeros); it still needs jemalloc's page-map
/// leaf for `p`'s 1 GiB region to exist, which holds for every address inside an extent of 1 GiB
/// or less that jemalloc registered.
pub fn extent_util(p: *const c_void) -> Result<ExtentUtil, i32> {
    static MIB: std::sync::OnceLock<Result<[usize; 3], i32>> = std::sync::OnceLock::new();
    let mib = MIB.get_or_init(|| {
        let mut mib = [0usize; 3];
        let mut len = mib.len();
        // SAFETY: jemalloc writes at most `len` MIB components into `mib`.
        let r = unsafe {
            je::mallctlnametomib(
                c"experimental.utilization.batch_query".as_ptr(),
                mib.as_mut_ptr(),
                &mut len,
            )
        };
        if r != 0 || len != mib.len() {
            Err(if r != 0 { r } else { libc::EINVAL })
        } else {
            Ok(mib)
        }
    });
    let mib = (*mib)?;
    let mut out = ExtentUtil::default();
    let mut out_len = size_of::<ExtentUtil>();
    let mut ptrs = [p];
    // SAFETY: the control reads one pointer from `ptrs` (newlen) and writes one
    // `inspect_extent_util_stats_t` (three size_t, checked against `out_len`) into `out`.
    let r = unsafe {
        je::mallctlbymib(
            mib.as_ptr(),
            mib.len(),
            (&mut out as *mut ExtentUtil).cast(),
            &mut out_len,
            ptrs.as_mut_ptr().cast(),
            size_of::<*const c_void>(),
        )
    };
    if r != 0 {
        Err(r)
    } else {
        Ok(out)
    }
}

/// jemalloc's padding of every large extent (`sz_large_pad`): one page with
/// `opt.cache_oblivious` (the default), else 0. A live large block's usable size is its extent's
/// size minus this.
pub fn large_pad() -> usize {
    static PAD: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAD.get_or_init(|| {
        // SAFETY: `opt.cache_oblivious` is a `bool` (jemalloc(3)).
        match unsafe { read::<bool>(c"opt.cache_oblivious") } {
            Ok(false) => 0,
            _ => page_size().unwrap_or(4096),
        }
    })
}

/// Install `hooks` on arena `ind` (initialising it if it is an automatic arena not yet in use).
pub fn arena_set_hooks(ind: u32, hooks: &'static ExtentHooks) -> Result<(), i32> {
    let name = Name::indexed("arena.", ind as u64, ".extent_hooks");
    let p: *const ExtentHooks = hooks;
    // SAFETY: `arena.<i>.extent_hooks` is an `extent_hooks_t *`.
    unsafe { write(name.as_cstr(), p) }
}

/// Set `arena.<i>.dirty_decay_ms` / `muzzy_decay_ms`.
pub fn arena_set_decay(ind: u32, dirty_ms: isize, muzzy_ms: isize) -> Result<(), i32> {
    let d = Name::indexed("arena.", ind as u64, ".dirty_decay_ms");
    let m = Name::indexed("arena.", ind as u64, ".muzzy_decay_ms");
    // SAFETY: both controls are `ssize_t`.
    unsafe {
        write(d.as_cstr(), dirty_ms)?;
        write(m.as_cstr(), muzzy_ms)
    }
}

/// Set `arena.<i>.oversize_threshold` (freed extents at least this large are purged at once,
/// bypassing the decay).
pub fn arena_set_oversize_threshold(ind: u32, bytes: usize) -> Result<(), i32> {
    let n = Name::indexed("arena.", ind as u64, ".oversize_threshold");
    // SAFETY: the control is a `size_t`.
    unsafe { write(n.as_cstr(), bytes) }
}

/// `arena.<i>.destroy`.
pub fn arena_destroy(ind: u32) -> Result<(), i32> {
    run(Name::indexed("arena.", ind as u64, ".destroy").as_cstr())
}

/// `tcache.create`: a new explicit thread cache index.
pub fn tcache_create() -> Result<u32, i32> {
    // SAFETY: `tcache.create` returns an `unsigned`.
    unsafe { read::<u32>(c"tcache.create") }
}

/// `tcache.destroy` of an explicit cache.
pub fn tcache_destroy(ind: u32) -> Result<(), i32> {
    // SAFETY: `tcache.destroy` takes an `unsigned`.
    unsafe { write(c"tcache.destroy", ind) }
}

/// `tcache.flush` of an explicit cache: its cached blocks go back to their arenas.
pub fn tcache_flush(ind: u32) -> Result<(), i32> {
    // SAFETY: `tcache.flush` takes an `unsigned`.
    unsafe { write(c"tcache.flush", ind) }
}

/// Number of automatic arenas (`opt.narenas`).
pub fn narenas_auto() -> Result<u32, i32> {
    // SAFETY: `opt.narenas` is an `unsigned`.
    unsafe { read::<u32>(c"opt.narenas") }
}

/// `opt.oversize_threshold`.
pub fn oversize_threshold() -> Result<usize, i32> {
    // SAFETY: `opt.oversize_threshold` is a `size_t`.
    unsafe { read::<usize>(c"opt.oversize_threshold") }
}

/// Bump the statistics epoch so `stats.*` reads are fresh.
pub fn refresh_stats() -> Result<(), i32> {
    // SAFETY: `epoch` is a `uint64_t`, written to refresh and read back.
    unsafe { write_read::<u64, u64>(c"epoch", 1).map(drop) }
}

/// Read a `size_t` statistic such as `stats.arenas.<i>.resident`.
pub fn read_size(name: &CStr) -> Result<usize, i32> {
    // SAFETY: callers pass `size_t` controls only.
    unsafe { read::<usize>(name) }
}

/// `malloc_stats_print` with a callback.
///
/// # Safety
/// `cb` must be safe to call with `opaque` and a NUL-terminated string, from this thread.
pub unsafe fn stats_print(
    cb: Option<unsafe extern "C" fn(*mut c_void, *const c_char)>,
    opaque: *mut c_void,
    opts: &CStr,
) {
    // SAFETY: forwarded contract.
    unsafe { je::malloc_stats_print(cb, opaque, opts.as_ptr()) }
}

// Our jemalloc's built-in options (its `malloc_conf` symbol, read once at jemalloc's start-up,
// before the `_RJEM_MALLOC_CONF` environment variable, which can still override them).
//
// `tcache_gc_incr_bytes`: jemalloc runs a thread-cache garbage-collection event every this many
// bytes a thread allocates (default 64 KiB), and each event makes its malloc/free fast paths
// fall back to the slow path for that call. With 4 KiB blocks that is every 16th malloc and
// free: a malloc+free pair of 4 KiB cost ~1 ns more than with 1 MiB (memkind-bench). The memory
// a thread cache may hold is bounded by its slot counts either way; a larger increment only
// makes the sweep that returns idle cached blocks walk the size classes more slowly (one class
// per event).
//
// `tcache_nslots_small_min`: a thread cache bin holds at least this many blocks (jemalloc's default
// 20; a bin holds twice its slab's block count, at most 200, so this raises the bins of the classes
// above 128 B). 64, the depth of our non-default kinds' magazines, so every kind keeps up to 64
// free blocks per size class per thread: 64 blocks of 4 KiB allocated and freed in turn stay in the
// cache instead of going through the arena's bin lock for 44 of them (a C loop of 64 DEFAULT 4 KiB
// mallocs then 64 frees: 1,789 → 146 instructions per pair, 1.14: 1,774; memkind-bench DEFAULT 4
// KiB batch ≈155 → ≈15-23 ns; churn RSS unchanged, tests/stress/compare_rss.sh). The price: a
// thread may hold up to 44 more free blocks per class above 128 B (≈4 MiB if it frees 64 blocks of
// every class up to 14 KiB and allocates none again), returned by the same cache garbage collection
// as before.
//
// jemalloc defines `malloc_conf` weak; this strong definition replaces it. It is written in
// assembly so that it can be `.hidden`: a Rust `#[no_mangle]` static would be exported from
// libmemkind.so, and nothing of jemalloc may appear in our dynamic symbol table.
core::arch::global_asm!(
    ".pushsection .data.rel.ro.memkind_rs_malloc_conf,\"aw\",@progbits",
    ".globl _rjem_malloc_conf",
    ".hidden _rjem_malloc_conf",
    ".type _rjem_malloc_conf,@object",
    ".size _rjem_malloc_conf,8",
    ".p2align 3",
    "_rjem_malloc_conf:",
    ".quad 2f",
    ".popsection",
    ".pushsection .rodata.memkind_rs_malloc_conf_text,\"a\",@progbits",
    "2:",
    ".asciz \"tcache_gc_incr_bytes:1048576,tcache_nslots_small_min:64\"",
    ".popsection",
);

/// Usable size of a live block start, read straight from jemalloc's extent map (emap rtree)
/// instead of through `sallocx` (≈35 instructions): two dependent loads and a table look-up.
///
/// jemalloc 5.3 on x86-64 (LG_VADDR 48, LG_PAGE 12) keeps a two-level rtree of 18 + 18 bits
/// whose leaf elements are one word each (RTREE_LEAF_COMPACT) with the size-class index in bits
/// 48..63; `je_arena_emap_global` is that rtree (`{ base, init_lock, root[1 << 18] }`) and
/// `je_sz_index2size_tab` maps an index to its size. The offset of `root` (behind a mutex whose
/// size depends on jemalloc's configuration) is fixed for the vendored version, which is checked
/// at first use together with a comparison against `sallocx` for blocks of several small and large
/// classes; another version, any mismatch or an index out of range makes the calls go to `sallocx`
/// (for the life of the process, except the per-call index check).
///
/// `p` must be the start of a live jemalloc block (never an interior or foreign pointer).
#[inline(always)]
pub fn block_usable(p: *mut c_void) -> usize {
    let root = EMAP_READ.load(Ordering::Relaxed) as usize;
    // SAFETY: `root` is a root array of 2^18 words: jemalloc's, validated by `emap_setup`, or
    // the all-zero stand-in; `p` is a live block start, so in jemalloc's its leaf exists and is
    // never freed while the block lives (rtree leaves are never unmapped).
    if let Some(u) = unsafe { emap_usable(root, p as usize) } {
        return u;
    }
    block_usable_slow(p)
}

/// jemalloc's size-class index of a live block start, read from the emap as [`block_usable`]
/// does (one fewer look-up: no index-to-size table); `usize::MAX` when it cannot be read
/// directly (not set up yet, disabled, or no leaf): the caller then takes [`block_usable`].
/// Indices below `arenas.nbins` are the small classes in ascending size ([`size_of_index`]).
///
/// `p` must be the start of a live jemalloc block (never an interior or foreign pointer).
#[inline(always)]
pub fn block_szind(p: *mut c_void) -> usize {
    let root = EMAP_READ.load(Ordering::Relaxed) as usize;
    // SAFETY: as in `block_usable`.
    unsafe { emap_szind(root, p as usize) }.unwrap_or(usize::MAX)
}

/// The size of jemalloc's size class `ind` (`None` beyond the table, or when the table cannot be
/// trusted: direct emap reading disabled). Sets the direct reading up on first use.
pub fn size_of_index(ind: usize) -> Option<usize> {
    if EMAP_ROOT.load(Ordering::Acquire) == 0 {
        emap_setup();
    }
    if EMAP_ROOT.load(Ordering::Acquire) <= 1 || ind >= EMAP_NSIZES.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: `ind` is below the table's length (SC_NSIZES, read from mallctl at set-up).
    Some(unsafe { *INDEX2SIZE.as_ptr().add(ind) })
}

/// Root array address: 0 = not set up yet, 1 = direct reading disabled.
static EMAP_ROOT: AtomicUsize = AtomicUsize::new(0);
/// The root array the fast paths read: jemalloc's once `emap_setup` validated it, until then
/// (and for good when direct reading is disabled) [`ZERO_ROOT`], whose every entry says "no
/// leaf", so the fast paths need no test of the set-up state (two instructions per free).
static EMAP_READ: AtomicPtr<AtomicUsize> = AtomicPtr::new(ZERO_ROOT.as_ptr().cast_mut());
/// A stand-in root array of the real one's length, all zeros: 2 MiB of `.bss`, address space
/// only (a read maps the kernel's shared zero page; read only before set-up or when disabled).
static ZERO_ROOT: [AtomicUsize; ROOT_LEN] = [const { AtomicUsize::new(0) }; ROOT_LEN];
/// Number of size classes (`arenas.nbins` + `arenas.nlextents`), the table's length.
static EMAP_NSIZES: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    #[link_name = "_rjem_je_arena_emap_global"]
    static EMAP_GLOBAL: [usize; 0];
    #[link_name = "_rjem_je_sz_index2size_tab"]
    static INDEX2SIZE: [usize; 0];
}

const RTREE_BITS: u32 = 18;
const LG_PAGE: u32 = 12;
const ROOT_LEN: usize = 1 << RTREE_BITS;
/// Byte offset of `root` in `rtree_t` for the vendored jemalloc (see `emap_setup`).
const EMAP_ROOT_OFFSET: usize = 120;
/// The vendored jemalloc's version string, for which the layout above holds.
const EMAP_VERSION: &CStr = c"5.3.0-1-ge13ca993e8ccb9ba9847cc330696e02839f328f7";

/// One direct read of a block's size-class index; None when the leaf is missing.
///
/// # Safety
/// `root` must be the validated root array address (or [`ZERO_ROOT`]'s) and `key` a live
/// block start.
#[inline(always)]
unsafe fn emap_szind(root: usize, key: usize) -> Option<usize> {
    let i1 = (key >> (LG_PAGE + RTREE_BITS)) & (ROOT_LEN - 1);
    let i2 = (key >> LG_PAGE) & (ROOT_LEN - 1);
    // SAFETY: i1 < 2^18, the root array's length (caller's contract); jemalloc publishes the
    // child with a release store, read here with acquire.
    let leaf = unsafe { (*(root as *const AtomicUsize).add(i1)).load(Ordering::Acquire) };
    if leaf == 0 {
        return None;
    }
    // SAFETY: a root child of a height-2 rtree is a leaf array of 2^18 words; i2 < 2^18.
    let bits = unsafe { (*(leaf as *const AtomicUsize).add(i2)).load(Ordering::Acquire) };
    Some(bits >> 48)
}

/// One direct read; None when the entry is missing or its index out of range.
///
/// # Safety
/// `root` must be the validated root array address and `key` a live block start.
#[inline(always)]
unsafe fn emap_usable(root: usize, key: usize) -> Option<usize> {
    // SAFETY: the caller's contract.
    let ind = unsafe { emap_szind(root, key) }?;
    if ind >= EMAP_NSIZES.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: `ind` is below the table's length (SC_NSIZES, read from mallctl at set-up).
    Some(unsafe { *INDEX2SIZE.as_ptr().add(ind) })
}

#[cold]
#[inline(never)]
fn block_usable_slow(p: *mut c_void) -> usize {
    if EMAP_ROOT.load(Ordering::Acquire) == 0 {
        emap_setup();
    }
    // SAFETY: `p` is a live block start (the caller's contract); sallocx only reads metadata.
    unsafe { je::sallocx(p, 0) }
}

/// Find and check the root array's offset; on any doubt disable direct reading.
#[cold]
fn emap_setup() {
    // SAFETY: both controls are `unsigned` (jemalloc(3)).
    let counts = unsafe {
        (
            read::<u32>(c"arenas.nbins"),
            read::<u32>(c"arenas.nlextents"),
        )
    };
    let nsizes = match counts {
        (Ok(b), Ok(l)) => b as usize + l as usize,
        _ => {
            EMAP_ROOT.store(1, Ordering::Release);
            return;
        }
    };
    EMAP_NSIZES.store(nsizes, Ordering::Relaxed);
    const SIZES: [usize; 10] = [8, 16, 48, 256, 1000, 4096, 14336, 16384, 65536, 1 << 21];
    let mut blocks = [core::ptr::null_mut::<c_void>(); SIZES.len()];
    let mut ok = true;
    for (b, &s) in blocks.iter_mut().zip(SIZES.iter()) {
        match mallocx(s, 0) {
            Some(p) => *b = p,
            None => ok = false,
        }
    }
    // The layout is only trusted for the jemalloc this crate vendors (tikv-jemalloc-sys 0.6.1,
    // where `root` sits at byte 120: a base pointer and a 112-byte `malloc_mutex_t`), with
    // 4 KiB pages on x86-64; then every read below stays inside `je_arena_emap_global`'s root
    // array and the leaves it points to. Probing other offsets is not safe (the words before the
    // array are the mutex's, which may hold pointers to anything).
    // SAFETY: `version` is a `const char *` to a static string (jemalloc(3)).
    let version = unsafe { read::<*const c_char>(c"version") };
    let version_ok = matches!(version, Ok(v) if !v.is_null()
        // SAFETY: a non-null static NUL-terminated string.
        && unsafe { CStr::from_ptr(v) } == EMAP_VERSION);
    let mut found = 1usize;
    if ok && version_ok && cfg!(target_arch = "x86_64") && page_size() == Ok(1 << LG_PAGE) {
        // SAFETY: only the address of the extern static is taken.
        let root = unsafe { EMAP_GLOBAL.as_ptr() } as usize + EMAP_ROOT_OFFSET;
        let all = blocks.iter().all(|&p| {
            let key = p as usize;
            // SAFETY: `p` is a live block just allocated, a user-space address (< 2^47), so
            // i1 < 2^18 indexes the root array of this (version-checked) layout.
            key >> 47 == 0
                && unsafe { emap_usable(root, key) } == Some(unsafe { je::sallocx(p, 0) })
        });
        if all {
            found = root;
        }
    }
    for &p in blocks.iter().filter(|p| !p.is_null()) {
        dallocx(p, 0);
    }
    if found > 1 {
        EMAP_READ.store(found as *mut AtomicUsize, Ordering::Release);
    }
    EMAP_ROOT.store(found, Ordering::Release);
}

#[cfg(test)]
pub const TCACHE_GC_INCR_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_usable_reads_the_emap_directly_and_matches_sallocx() {
        let mut sizes: Vec<usize> = (1..=64).map(|i| i * 8).collect();
        sizes.extend((7..=23).map(|lg| (1usize << lg) + 1));
        sizes.extend([14336, 16384, 3 << 20]);
        for flags in [0, ARENA0_UNCACHED] {
            for &s in &sizes {
                let p = mallocx(s, flags).expect("mallocx");
                // SAFETY: `p` is a live block just allocated.
                assert_eq!(block_usable(p), unsafe { je::sallocx(p, 0) }, "size {s}");
                dallocx(p, flags);
            }
        }
        assert!(
            EMAP_ROOT.load(Ordering::Relaxed) > 1,
            "the self-check rejected the direct read (sallocx fallback in use)"
        );
    }

    #[test]
    fn names_format() {
        assert_eq!(
            Name::indexed("arena.", 0, ".destroy").as_cstr(),
            c"arena.0.destroy"
        );
        assert_eq!(
            Name::indexed("arena.", 4095, ".purge").as_cstr(),
            c"arena.4095.purge"
        );
        assert_eq!(
            Name::indexed("stats.arenas.", 12, ".resident").as_cstr(),
            c"stats.arenas.12.resident"
        );
    }

    #[test]
    fn reads_options() {
        assert!(narenas_auto().unwrap() >= 1);
        assert!(oversize_threshold().is_ok());
    }

    #[test]
    fn built_in_options_are_in_effect() {
        if std::env::var_os("_RJEM_MALLOC_CONF").is_some() {
            eprintln!("skipped: _RJEM_MALLOC_CONF is set and may override our built-in options");
            return;
        }
        // SAFETY: opt.tcache_gc_incr_bytes is a size_t.
        let v = unsafe { read::<usize>(c"opt.tcache_gc_incr_bytes") };
        assert_eq!(v, Ok(TCACHE_GC_INCR_BYTES));
        // SAFETY: opt.tcache_nslots_small_min is an unsigned.
        let n = unsafe { read::<u32>(c"opt.tcache_nslots_small_min") };
        assert_eq!(n, Ok(64));
    }
}
