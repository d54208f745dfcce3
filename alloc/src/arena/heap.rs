//! Heap operations of the arena layer, for every kind: jemalloc `mallocx`/`dallocx`/`rallocx`
//! with the thread's flags for the kind. DEFAULT is forwarded to [`super::default`]: this module
//! is where DEFAULT and the other kinds part on the heap paths.
//!
//! The owner of a pointer is always taken from the extent map, never trusted from the caller:
//! a pointer we never handed out is refused without being dereferenced.
#![allow(
    unsafe_code,
    reason = "calls into jemalloc with pointers the extent map vouches for"
)]
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "pointers come from C; foreign ones are refused via the extent map, and a pointer of ours must be live (memkind's contract, as for free(3))"
)]

use core::ffi::c_void;

use tikv_jemalloc_sys as je;

use super::{default, thread};
use crate::extent_map::MAP;
use crate::kind::{Kind, KINDS};
use crate::probe;
use crate::sys::set_errno;

/// Who owns a pointer.
#[derive(Clone, Copy)]
pub enum Owner {
    /// Not memory we handed out.
    Foreign,
    /// A live kind.
    Kind(&'static Kind),
}

/// The kind owning `p` according to the extent map, then (on a miss or a granule shared with
/// a fixed kind's buffer) the table of fixed-kind ranges.
#[inline(always)]
pub fn owner(p: *const c_void) -> Owner {
    match MAP
        .lookup_fast(p as usize)
        .and_then(|id| KINDS.get(id as usize))
    {
        Some(k) => Owner::Kind(k),
        None => owner_slow(p),
    }
}

/// True when the extent map gives `p`'s granule to DEFAULT outright (no fixed-kind overlay):
/// one map lookup, no kind table access.
#[inline(always)]
pub fn is_default_memory(p: *const c_void) -> bool {
    crate::extent_map::ExtentMap::is_in_map::<{ crate::kind::partition::DEFAULT as u16 }>(
        p as usize,
    )
}

/// Second chance: fixed kinds' buffers are not in the granule map (their granules are shared
/// with other memory), so they are looked up here, in the small fixed-range table.
#[cold]
#[inline(never)]
fn owner_slow(p: *const c_void) -> Owner {
    if let Some(k) = crate::kind::fixed::owner_of(p as usize) {
        return Owner::Kind(k);
    }
    match MAP.lookup_base(p as usize) {
        Some(id) => KINDS.get(id as usize).map_or(Owner::Foreign, Owner::Kind),
        None => Owner::Foreign,
    }
}

#[inline(always)]
fn enomem(p: *mut c_void) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p
}

/// True while this thread is inside the library's own set-up (start-up, a kind's arenas, a
/// thread's record): an allocation of a non-default kind reaching us then is a re-entry through
/// an interposed `malloc` (memkind's libmemtier.so.0 sends every `malloc` to `memkind_malloc`).
/// The set-up refuses to recurse (`thread::record_slow` fails while it runs), and the failed
/// allocation is then served from DEFAULT, which needs no set-up. Such blocks are DEFAULT's for
/// every later call (free, realloc, detect_kind). Only consulted once an allocation failed, so
/// the fast paths pay nothing for it.
#[inline(always)]
fn reentered() -> bool {
    thread::in_init()
}

/// Count a block of a non-default kind taken straight from jemalloc (see `counters::outstanding`).
#[inline(always)]
fn counted(kind: &Kind, p: *mut c_void) -> *mut c_void {
    if !p.is_null() {
        crate::counters::outstanding(kind.id(), 1);
    }
    p
}

/// malloc from `kind` (`size` > 0).
#[inline(always)]
pub fn malloc(kind: &'static Kind, size: usize) -> *mut c_void {
    malloc_or(kind, size, counted::malloc)
}

/// [`malloc`] with `probed` in place of [`counted::malloc`] while a probe is attached (the
/// arena layer's traced entry point: the same code, one jump target changed).
#[inline(always)]
pub(crate) fn malloc_or(
    kind: &'static Kind,
    size: usize,
    probed: extern "C" fn(&'static Kind, usize) -> *mut c_void,
) -> *mut c_void {
    if probe::on() {
        return probed(kind, size);
    }
    malloc_uncounted(kind, size)
}

/// The arena layer's fast path of malloc while no probe is attached: a block from this
/// thread's magazine of `kind` (of the current generation, so `kind` is live: see
/// `Kind::in_table`), `None` for anything else (size 0, DEFAULT, no ready record, an empty
/// magazine: then the caller's full path).
#[inline(always)]
pub(crate) fn pop(kind: &'static Kind, size: usize) -> Option<*mut c_void> {
    thread::pop(kind, size)
}

/// [`pop`] while a probe is attached (and no trace): the block counted in the thread's record
/// of `kind`; `None` also while that record's counts are not armed (then the caller's counted
/// path, which arms them).
#[inline(always)]
pub(crate) fn pop_counted(kind: &'static Kind, size: usize) -> Option<*mut c_void> {
    thread::pop_counted(kind, size)
}

#[inline(always)]
pub(crate) fn malloc_uncounted(kind: &'static Kind, size: usize) -> *mut c_void {
    if kind.is_default() {
        return default::malloc(size);
    }
    // The magazine first: `pop` tests the size against its classes (none above SMALL), so a
    // block from it costs no second size test; a larger request pays a few instructions more.
    if let Some(p) = thread::pop(kind, size) {
        return p;
    }
    if size <= thread::SMALL {
        return malloc_small_slow(kind, size);
    }
    malloc_large(kind, size)
}

/// [`malloc_uncounted`] of a small block the magazine could not hand out at once. This and
/// [`malloc_large`] are `extern "C"` (a panic aborts here), so the fast path reaches them with
/// a tail call and stays frameless.
#[cold]
#[inline(never)]
extern "C" fn malloc_small_slow(kind: &'static Kind, size: usize) -> *mut c_void {
    let p = thread::malloc_small_slow(kind, size);
    if p.is_null() && reentered() {
        return default::malloc(size);
    }
    enomem(p)
}

/// [`malloc_uncounted`] above the magazines' sizes: jemalloc with the thread's flags.
#[inline(never)]
extern "C" fn malloc_large(kind: &'static Kind, size: usize) -> *mut c_void {
    match thread::flags(kind) {
        // SAFETY: size > 0; flags name an arena and tcache of `kind`.
        Ok(f) => counted(kind, enomem(unsafe { je::mallocx(size, f) })),
        Err(_) if reentered() => default::malloc(size),
        Err(_) => enomem(core::ptr::null_mut()),
    }
}

/// calloc from `kind`: NULL + ENOMEM on `num * size` overflow (memkind 1.14 does not check).
pub fn calloc(kind: &'static Kind, num: usize, size: usize) -> *mut c_void {
    if probe::on() {
        return counted::calloc(kind, num, size);
    }
    calloc_uncounted(kind, num, size)
}

pub(crate) fn calloc_uncounted(kind: &'static Kind, num: usize, size: usize) -> *mut c_void {
    let Some(total) = num.checked_mul(size) else {
        return enomem(core::ptr::null_mut());
    };
    if total == 0 {
        return core::ptr::null_mut();
    }
    if kind.is_default() {
        return default::calloc(total);
    }
    if total <= thread::SMALL {
        let p = thread::malloc_small(kind, total);
        if p.is_null() && reentered() {
            return default::calloc(total);
        }
        if !p.is_null() {
            // SAFETY: a block of at least `total` bytes just taken from a magazine.
            unsafe { core::ptr::write_bytes(p as *mut u8, 0, total) };
        }
        return enomem(p);
    }
    match thread::flags(kind) {
        // SAFETY: total > 0.
        Ok(f) => counted(
            kind,
            enomem(unsafe { je::mallocx(total, f | je::MALLOCX_ZERO) }),
        ),
        Err(_) if reentered() => default::calloc(total),
        Err(_) => enomem(core::ptr::null_mut()),
    }
}

/// Aligned allocation from `kind` (`align` a power of two, `size` > 0). Does not touch errno.
pub fn aligned(kind: &'static Kind, size: usize, align: usize) -> *mut c_void {
    if probe::on() {
        return counted::aligned(kind, size, align);
    }
    aligned_uncounted(kind, size, align)
}

pub(crate) fn aligned_uncounted(kind: &'static Kind, size: usize, align: usize) -> *mut c_void {
    if kind.is_default() {
        return default::aligned(size, align);
    }
    match thread::flags(kind) {
        // SAFETY: size > 0, align a power of two.
        Ok(f) => counted(kind, unsafe {
            je::mallocx(size, f | je::MALLOCX_ALIGN(align))
        }),
        Err(_) if reentered() => default::aligned(size, align),
        Err(_) => core::ptr::null_mut(),
    }
}

/// free: the owner's cache gets the pointer; a foreign pointer is left alone.
#[inline(always)]
pub fn free(p: *mut c_void) {
    free_or(p, counted::free)
}

/// [`free`] with `probed` in place of [`counted::free`] while a probe is attached (see
/// [`malloc_or`]).
#[inline(always)]
pub(crate) fn free_or(p: *mut c_void, probed: extern "C" fn(*mut c_void)) {
    if probe::on() {
        return probed(p);
    }
    free_uncounted(p)
}

/// The owner's free. Every way out of the fast path (an owner the granule map does not name, a
/// full magazine) is a tail call, so the inlined fast path builds no frame.
#[inline(always)]
pub(crate) fn free_uncounted(p: *mut c_void) {
    // The extent map's id alone decides DEFAULT and the magazine's path; anything else (a
    // kind beyond the inline slots, a fixed kind's granule, not ours) takes the full lookup.
    let id = MAP.lookup_fast(p as usize).map_or(usize::MAX, usize::from);
    if id == crate::kind::partition::DEFAULT {
        return default::free(p);
    }
    if id < thread::INLINE_SLOTS {
        return thread::free_inline_id(&KINDS[id], id, p);
    }
    free_by_owner_slow(p)
}

/// [`free_uncounted`] of a block the granule map does not attribute (a fixed kind's, or not
/// ours).
#[cold]
#[inline(never)]
extern "C" fn free_by_owner_slow(p: *mut c_void) {
    match owner_slow(p) {
        Owner::Kind(k) if k.is_default() => default::free(p),
        Owner::Kind(k) => thread::free(k, p),
        Owner::Foreign => foreign("free", p),
    }
}

#[cold]
fn foreign(what: &str, p: *const c_void) {
    crate::env::debug_log!("{what}: {p:p} was not allocated by memkind; ignored");
}

/// Usable size of `p` for the C ABI's `*_usable_size` calls, safe for any address:
/// - a block start: its usable size (as `sallocx`);
/// - an address inside a small block (a slab page), or inside the first or the last page of a
///   large block: that block's usable size (jemalloc's page map cannot tell these from a start);
/// - any other address inside a large block, a foreign pointer, an address of ours that no
///   block covers: 0 (but the first or last page of a free extent jemalloc keeps gives that
///   extent's size: the page map does not say whether an extent is live).
///
/// Never crashes on a live block's address; on a freed block's it reads only jemalloc's
/// metadata (the answer is then meaningless, as for free(3)'s contract).
///
/// `sallocx` itself trusts its argument to be a block: on a middle page of a large block it reads
/// the page map's "no block" size index and indexes one past the end of jemalloc's size table
/// (memkind 1.14's `memkind_malloc_usable_size` does the same). So the extent is looked up first
/// (`experimental.utilization.batch_query`, which copes with such pages), and `sallocx` runs only
/// on a slab; a large block's size is its extent's size less jemalloc's large padding.
pub fn usable_size(p: *const c_void) -> usize {
    match owner(p) {
        Owner::Kind(_) => usable_size_of_ours(p),
        Owner::Foreign => {
            foreign("malloc_usable_size", p);
            0
        }
    }
}

/// [`usable_size`] of an address the extent map gives to one of our kinds.
fn usable_size_of_ours(p: *const c_void) -> usize {
    // jemalloc's page-map lookups assume a leaf for the address's 1 GiB region: an address of
    // ours that no extent boundary ever shared a region with (a fixed kind's untouched buffer,
    // the middle of a block over 1 GiB) lies in no block start's region, and is answered here.
    if !MAP.je_leaf(p as usize) {
        return 0;
    }
    match crate::jemalloc::extent_util(p) {
        // A slab: every page of it maps to its size class, so sallocx reads a valid index.
        // SAFETY: `p` lies in a slab of ours (the page map just said so).
        Ok(u) if u.nregs > 1 || u.nfree > 0 => unsafe { je::sallocx(p, 0) },
        // A one-region slab (nregs 1, none free: a live block) cannot be told from a large
        // extent by these figures; a slab's size is a whole number of pages below the large
        // minimum, a large extent's is at least that plus the padding.
        Ok(u) if u.nregs == 1 && u.size > 0 => {
            let pad = crate::jemalloc::large_pad();
            if u.size >= LARGE_MIN + pad {
                u.size - pad
            } else {
                // SAFETY: a slab of ours (see above).
                unsafe { je::sallocx(p, 0) }
            }
        }
        _ => 0,
    }
}

/// jemalloc's smallest large size class (`SC_LARGE_MINCLASS`, 16 KiB with 4 KiB pages): every
/// slab is smaller than it plus the large padding.
const LARGE_MIN: usize = 16 << 10;

/// The kind owning `p` and its usable size, `None` for a foreign pointer (one owner lookup).
/// `p` must be a live block start (the free and realloc paths' contract, as for free(3)):
/// `sallocx` on other addresses of ours reads out of bounds (see [`usable_size`]).
pub fn owner_and_usable_size(p: *const c_void) -> Option<(&'static Kind, usize)> {
    match owner(p) {
        // SAFETY: `p` lies in our memory (see `free`).
        Owner::Kind(k) => Some((k, unsafe { je::sallocx(p, 0) })),
        Owner::Foreign => None,
    }
}

/// realloc a live, non-null `p` to `size` > 0, into `target` (the owner when `None`).
/// A foreign pointer gives NULL + EINVAL and is left untouched.
pub fn realloc(target: Option<&'static Kind>, p: *mut c_void, size: usize) -> *mut c_void {
    if probe::on() {
        return counted::realloc(target, p, size);
    }
    realloc_uncounted(target, p, size)
}

pub(crate) fn realloc_uncounted(
    target: Option<&'static Kind>,
    p: *mut c_void,
    size: usize,
) -> *mut c_void {
    let Owner::Kind(owner) = owner(p) else {
        foreign("realloc", p);
        set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    };
    let target = target.unwrap_or(owner);
    if target.id() != owner.id() {
        // Moving between kinds: allocate in the target, copy, free from the owner.
        let q = malloc_uncounted(target, size);
        if !q.is_null() {
            let n = usable_size(p).min(size);
            // SAFETY: both regions are live and at least `n` bytes; they are distinct allocations.
            unsafe { core::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, n) };
            free_uncounted(p);
        }
        return q;
    }
    if owner.is_default() {
        return default::realloc(p, size);
    }
    match thread::flags(owner) {
        // SAFETY: `p` is memory of `owner`; flags select owner's arena and cache.
        Ok(f) => enomem(unsafe { je::rallocx(p, size, f) }),
        // Re-entered during set-up: move the block to DEFAULT.
        Err(_) if reentered() => realloc_uncounted(Some(crate::kind::default_kind()), p, size),
        Err(_) => enomem(core::ptr::null_mut()),
    }
}

/// The heap operations while a probe is attached (`probe::on()`): the same operation, then the
/// event counted in this thread's counters under the kind that owns the block (which is DEFAULT
/// for a block served from DEFAULT during set-up). Cold: detached, the callers pay one load and
/// a branch.
pub(crate) mod counted {
    use super::*;
    use crate::counters::thread::{
        class_size_of, count, count_alloc_class, count_free_class, Op, CLASS_MAX, NCLASS,
    };
    use crate::kind::{default_kind, STATIC_GENERATION};

    // The magazines' blocks are counted per class.
    const _: () = assert!(thread::SMALL <= CLASS_MAX);

    /// The arena this thread uses for `kind` (`MKP_NONE` when it has none).
    fn arena_of(kind: &'static Kind) -> u32 {
        let a = if kind.is_default() {
            // SAFETY: `thread.arena` is an `unsigned` (jemalloc(3)).
            unsafe { crate::jemalloc::read::<u32>(c"thread.arena") }.ok()
        } else {
            thread::flags(kind)
                .ok()
                .and_then(super::super::arena_of_flags)
        };
        a.unwrap_or(probe::records::MKP_NONE)
    }

    #[inline(always)]
    fn note(kind: &'static Kind, op: Op) {
        if count(kind.id(), kind.generation(), || arena_of(kind), op) {
            crate::kind::announce_all();
        }
    }

    /// An allocation of `requested` bytes (≤ [`CLASS_MAX`]) got a block of the request's class.
    #[inline(always)]
    fn note_alloc_class(kind: &'static Kind, requested: usize) {
        if count_alloc_class(kind.id(), kind.generation(), || arena_of(kind), requested) {
            crate::kind::announce_all();
        }
    }

    /// [`note_alloc_class`] for DEFAULT: its id and generation are constants.
    #[inline(always)]
    fn note_default_alloc_class(requested: usize) {
        let id = crate::kind::partition::DEFAULT as u16;
        if count_alloc_class(
            id,
            STATIC_GENERATION,
            || arena_of(default_kind()),
            requested,
        ) {
            crate::kind::announce_all();
        }
    }

    /// A block of class `class` (< [`NCLASS`]: jemalloc's size-class index of the block) was
    /// freed.
    #[inline(always)]
    fn note_free_class(kind: &'static Kind, class: usize) {
        if count_free_class(kind.id(), kind.generation(), || arena_of(kind), class) {
            crate::kind::announce_all();
        }
    }

    /// [`note_free_class`] for DEFAULT.
    #[inline(always)]
    fn note_default_free_class(class: usize) {
        let id = crate::kind::partition::DEFAULT as u16;
        if count_free_class(id, STATIC_GENERATION, || arena_of(default_kind()), class) {
            crate::kind::announce_all();
        }
    }

    /// The owner and usable size of a block of ours.
    fn block(p: *const c_void) -> Option<(&'static Kind, usize)> {
        (!p.is_null()).then(|| owner_and_usable_size(p)).flatten()
    }

    fn alloc(p: *mut c_void, requested: usize) -> *mut c_void {
        if let Some((k, usable)) = block(p) {
            note(k, Op::Alloc { requested, usable });
        }
        p
    }

    /// [`super::malloc`], counted. A small block of a non-default kind comes from the
    /// thread's magazine of `kind`, whose size classes are jemalloc's: its usable size is the
    /// request's size class, with no owner lookup. Anything else (and a failed magazine) takes
    /// the full path and looks the block up.
    ///
    /// `extern "C"`, as [`free`]: the detached fast path reaches it with a tail call.
    #[cold]
    #[inline(never)]
    pub(crate) extern "C" fn malloc(kind: &'static Kind, size: usize) -> *mut c_void {
        if kind.is_default() {
            return malloc_default(size);
        }
        if size <= thread::SMALL {
            if let Some(p) = malloc_small(kind, size, || note_alloc_class(kind, size)) {
                return p;
            }
        }
        alloc(malloc_uncounted(kind, size), size)
    }

    /// A small block (`size` ≤ SMALL) of `kind` from this thread's magazine, counted: in the
    /// thread's record of the kind, armed here first so that the next calls take the counted
    /// fast path (`pop_counted`), or by `note` when the record's counts cannot take it. `None`
    /// when the magazine path has no block (no record can be made, out of memory).
    #[inline(always)]
    fn malloc_small(kind: &'static Kind, size: usize, note: impl FnOnce()) -> Option<*mut c_void> {
        if thread::arm_counts(kind) {
            crate::kind::announce_all();
        }
        let p = thread::malloc_small(kind, size);
        if p.is_null() {
            return None;
        }
        // size ≤ SMALL ≤ CLASS_MAX (a request of 0 gets jemalloc's smallest class, as
        // AllocClass counts it).
        if !thread::count_alloc(kind, size) {
            note();
        }
        Some(p)
    }

    /// malloc of DEFAULT (`size` > 0), counted: the kind is known, so no owner lookup, and the
    /// usable size is the request's size class (what `sallocx` of the block would say).
    #[inline(always)]
    pub(crate) fn malloc_default(size: usize) -> *mut c_void {
        // A small block from the thread's magazine of DEFAULT (its record made and armed here),
        // so that the next ones take the counted fast path (`pop_counted`), as for the other
        // kinds. Before start-up (the automatic arenas not yet hooked), without a record (during
        // set-up, out of memory): jemalloc's malloc, which starts the library first.
        if size <= thread::SMALL && default::started() {
            if let Some(p) = malloc_small(default_kind(), size, || note_default_alloc_class(size)) {
                return p;
            }
        }
        let p = default::malloc(size);
        if !p.is_null() {
            if size <= CLASS_MAX {
                note_default_alloc_class(size);
            } else {
                note(
                    default_kind(),
                    Op::Alloc {
                        requested: size,
                        usable: default::size_class(size),
                    },
                );
            }
        }
        p
    }

    /// [`super::calloc`], counted.
    #[cold]
    #[inline(never)]
    pub(crate) fn calloc(kind: &'static Kind, num: usize, size: usize) -> *mut c_void {
        alloc(calloc_uncounted(kind, num, size), num.wrapping_mul(size))
    }

    /// [`super::aligned`], counted.
    #[cold]
    #[inline(never)]
    pub(crate) fn aligned(kind: &'static Kind, size: usize, align: usize) -> *mut c_void {
        alloc(aligned_uncounted(kind, size, align), size)
    }

    /// free of a live DEFAULT block (the extent map said so), counted. A small block's
    /// size-class index, read from jemalloc's page map, is its counted class, and its class
    /// size lets jemalloc's sized free skip its own look-up.
    #[inline(always)]
    pub(crate) fn free_default(p: *mut c_void) {
        // `p` is a live DEFAULT block start (the caller's extent-map lookup said so).
        let ind = crate::jemalloc::block_szind(p);
        if ind < NCLASS {
            note_default_free_class(ind);
            return default::free_sized(p, class_size_of(ind));
        }
        free_default_large(p)
    }

    /// Free of a live DEFAULT block `p` into the thread's magazine of DEFAULT, counted in its
    /// record, when the thread has one (see [`malloc_default`]) and the magazine takes it;
    /// false when nothing was done (then [`free_default`]).
    #[inline(always)]
    pub(crate) fn push_default(p: *mut c_void) -> bool {
        let d = crate::kind::partition::DEFAULT;
        thread::push_counted_inline_id(&KINDS[d], d, p)
    }

    /// [`free_default`] of a block above the counted classes (or when the page map cannot be
    /// read directly).
    #[cold]
    #[inline(never)]
    extern "C" fn free_default_large(p: *mut c_void) {
        let usable = crate::jemalloc::block_usable(p);
        note(default_kind(), Op::Free { usable });
        default::free_sized(p, usable);
    }

    /// [`super::free`], counted: a block of a non-default kind with an inline slot goes into
    /// the thread's magazine, counted in its record, as detached ([`super::free_uncounted`]);
    /// anything else takes [`free_full`] (a tail call: this part builds no frame).
    #[inline(always)]
    pub(crate) fn free_inline(p: *mut c_void) {
        let id = MAP.lookup_fast(p as usize).map_or(usize::MAX, usize::from);
        if id != crate::kind::partition::DEFAULT
            && id < thread::INLINE_SLOTS
            && thread::push_counted_inline_id(&KINDS[id], id, p)
        {
            return;
        }
        free_full(p)
    }

    /// [`free_inline`] out of line, for [`super::free_or`].
    #[cold]
    #[inline(never)]
    pub(crate) extern "C" fn free(p: *mut c_void) {
        free_inline(p)
    }

    /// [`free_inline`] past the magazine: one owner lookup for the count and the free.
    #[cold]
    #[inline(never)]
    extern "C" fn free_full(p: *mut c_void) {
        match owner(p) {
            Owner::Kind(k) => {
                if !k.is_default() && thread::arm_counts(k) {
                    crate::kind::announce_all();
                }
                // `p` is a block start in our memory (see `free`).
                let ind = crate::jemalloc::block_szind(p);
                if ind < NCLASS {
                    if k.is_default() || !thread::count_free(k, ind) {
                        note_free_class(k, ind);
                    }
                    if k.is_default() {
                        return default::free_sized(p, class_size_of(ind));
                    }
                    return thread::free_szind(k, p, ind);
                }
                let usable = crate::jemalloc::block_usable(p);
                note(k, Op::Free { usable });
                if k.is_default() {
                    default::free_sized(p, usable)
                } else {
                    thread::free_sized(k, p, usable)
                }
            }
            Owner::Foreign => foreign("free", p),
        }
    }

    /// [`super::realloc`], counted: a realloc within one kind, or a free in the owner and an
    /// alloc in the kind that holds the new block when it moved between kinds.
    #[cold]
    #[inline(never)]
    pub(crate) fn realloc(
        target: Option<&'static Kind>,
        p: *mut c_void,
        size: usize,
    ) -> *mut c_void {
        let before = block(p);
        let q = realloc_uncounted(target, p, size);
        if let (Some((a, old)), Some((b, new))) = (before, block(q)) {
            if a.id() == b.id() {
                note(
                    a,
                    Op::Realloc {
                        requested: size,
                        old,
                        new,
                    },
                );
            } else {
                note(a, Op::Free { usable: old });
                note(
                    b,
                    Op::Alloc {
                        requested: size,
                        usable: new,
                    },
                );
            }
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::partition;

    /// `usable_size` answers every address of a block without reading out of bounds: the start
    /// gives sallocx's size; an address in the middle pages of a large block gives 0 (sallocx
    /// there indexed one past jemalloc's size table and returned garbage); slab and boundary
    /// pages give the block's size.
    #[test]
    fn usable_size_of_interior_pointers() {
        for kind in [
            crate::kind::default_kind(),
            &KINDS[partition::REGULAR],
            &KINDS[partition::INTERLEAVE],
        ] {
            for size in [
                1usize,
                48,
                4096,
                12288,
                14336,
                16385,
                100_000,
                1 << 20,
                5 << 20,
                (7 << 20) + 1,
                8_324_107,
                40 << 20,
            ] {
                for align in [0usize, 64, 4096, 1 << 16] {
                    let p = if align == 0 {
                        malloc(kind, size)
                    } else {
                        aligned(kind, size, align)
                    };
                    assert!(!p.is_null(), "{} {size} {align}", kind.name());
                    // SAFETY: a live block start we just allocated.
                    let exact = unsafe { je::sallocx(p, 0) };
                    assert!(exact >= size);
                    assert_eq!(usable_size(p), exact, "{} {size} {align}", kind.name());
                    let b = p as usize;
                    let mut off = 1;
                    while off < exact {
                        let n = usable_size((b + off) as *const c_void);
                        let page = (b + off) & !4095;
                        let first = b & !4095;
                        let last = (b + exact - 1) & !4095;
                        if exact <= 14336 || page == first || page == last {
                            assert_eq!(n, exact, "{} {size} +{off}", kind.name());
                        } else {
                            assert_eq!(n, 0, "{} {size} +{off}", kind.name());
                        }
                        off = off * 3 + 1;
                    }
                    free(p);
                }
            }
        }
    }

    /// Addresses that are not ours, or ours but not in any block, give 0.
    #[test]
    fn usable_size_of_foreign_pointers() {
        let x = 0u64;
        assert_eq!(usable_size(&x as *const u64 as *const c_void), 0);
        let v = Box::new([0u8; 100]);
        assert_eq!(usable_size(v.as_ptr().cast()), 0);
        assert_eq!(usable_size(usize::MAX as *const c_void), 0);
    }

    /// Regression (found by tests/fuzz): `usable_size` of a byte of a fixed kind's buffer that
    /// jemalloc never had an extent near looked it up in jemalloc's page map, whose leaf for
    /// that region did not exist: SIGSEGV. The buffer here sits alone in a reserved 2 GiB.
    #[test]
    fn usable_size_of_untouched_fixed_buffer_bytes_is_zero() {
        let _serial = crate::kind::tests::DYNAMIC_SLOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        const GIB: usize = 1 << 30;
        // SAFETY: a fresh anonymous reservation, unmapped below.
        let r = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                2 * GIB,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(r, libc::MAP_FAILED);
        let base = (r as usize + GIB - 1) & !(GIB - 1);
        let len = 8 << 20;
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: inside our reservation.
        let rc = unsafe { libc::mprotect(base as *mut _, len, rw) };
        assert_eq!(rc, 0);
        let k = crate::kind::fixed::create(base, len).unwrap();
        let far = (base + len - 100) as *const core::ffi::c_void;
        assert!(matches!(owner(far), Owner::Kind(o) if o.id() == k.id()));
        assert_eq!(usable_size(far), 0);
        let p = malloc(k, 64);
        assert!(!p.is_null());
        assert_eq!(usable_size(p), 64);
        let _ = usable_size(far); // no crash; 0 unless it is a free extent's boundary
        free(p);
        crate::arena::destroy_kind(k).unwrap();
        // SAFETY: the reservation made above; the kind over it is destroyed.
        assert_eq!(unsafe { libc::munmap(r, 2 * GIB) }, 0);
    }
}
