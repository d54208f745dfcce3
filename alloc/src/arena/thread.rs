//! Per-thread state: for every kind this thread uses, a [`PerKind`] record with its mallocx flags
//! (arena + explicit jemalloc tcache) and its magazines, and the clean-up at thread exit.
//!
//! Records live in chunks mapped for them ([`List`]), are reached through the thread's slot for
//! the kind id, and are also linked into one process-wide list so that destroying a kind can
//! drain every thread's magazines of it (memkind's contract: a kind is not used while it is
//! destroyed).
//!
//! The slots of the first [`INLINE_SLOTS`] kind ids (the 26 static kinds and the first 38
//! dynamic ones: dynamic ids are handed out lowest first) are a small thread-local array, one load
//! from the TLS block; those of higher ids are a table `calloc`ed on the thread's first use of
//! one. So every thread of a process pays 512 bytes of static TLS for us, not a slot per
//! possible kind (8 KiB), and typical programs never need the table.
//!
//! MEMKIND_DEFAULT's blocks come from jemalloc's own thread cache, with no record, except while a
//! probe is attached: its counted path then makes the thread a record of DEFAULT (the thread's
//! jemalloc arena, no tcache of ours) and serves small blocks from its magazines, so that they
//! are counted where the other kinds' are (the record's `MagazineCounts`, see `pop_counted`).
#![allow(
    unsafe_code,
    reason = "thread-local records reached by raw pointer, pthread key clean-up"
)]
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "pointers are blocks the extent map attributes to the kind; they must be live (memkind's contract)"
)]

use core::cell::Cell;
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::Ordering;
use std::sync::OnceLock;

use crate::sync::ForkLock;

use tikv_jemalloc_sys::{MALLOCX_ARENA, MALLOCX_TCACHE, MALLOCX_TCACHE_NONE};

use super::magazine::{Classes, Magazines, CAPACITY, MAX_BINS, MAX_SMALL};
use super::{owner_tag, TCACHE_LIMIT, TCACHE_OWNER};
use crate::counters::outstanding;
use crate::counters::thread::{MagazineCounts, MAG_BINS};
use crate::error::Error;
use crate::jemalloc;
use crate::kind::{Kind, MAX_KINDS};
use crate::probe::records::{flush_reason, MKP_NONE};

/// One thread's state for one kind.
#[repr(C)]
pub struct PerKind {
    generation: u32,
    flags: i32,
    kind: u16,
    /// In the process-wide list (false once a kind destroy or the thread's exit unlinked it).
    linked: bool,
    /// The record has no jemalloc tcache yet and gets one later ([`TCACHE_DUE`],
    /// [`TCACHE_NEXT`]; 0: settled, with or without one). In the padding before `next`: the
    /// fast paths' offsets do not move.
    tcache_due: u8,
    next: *mut PerKind,
    /// `Classes::get()`, cached so the fast paths skip its once-check.
    classes: *const Classes,
    /// `classes.limit()` and `classes.direct()`, cached so the fast paths compare with a field
    /// of the record they already hold.
    limit: usize,
    direct: usize,
    /// The probe's counts of this record's magazine traffic (only while a probe is attached).
    counts: MagazineCounts,
    mags: Magazines,
}

// A record's bins are the counts' bins.
const _: () = assert!(MAX_BINS == MAG_BINS);

thread_local! {
    /// This thread's record per kind id below INLINE_SLOTS (null: none yet).
    static STATIC_SLOTS: [Cell<*mut PerKind>; INLINE_SLOTS] = const { [const { Cell::new(null_mut()) }; INLINE_SLOTS] };
    /// This thread's records of kinds with higher ids, indexed by `id - INLINE_SLOTS` (null: no
    /// table yet).
    static DYNAMIC_SLOTS: Cell<*mut DynamicSlots> = const { Cell::new(null_mut()) };
    /// Set once the thread-exit destructor ran: later calls get no caches.
    static EXITING: Cell<bool> = const { Cell::new(false) };
    /// The pthread key is set for this thread.
    static KEYED: Cell<bool> = const { Cell::new(false) };
    /// Depth of library initialisation running on this thread.
    static IN_INIT: Cell<u32> = const { Cell::new(0) };
}

/// Kind ids whose slots are in the thread-local array.
pub const INLINE_SLOTS: usize = 64;
/// Slots of the other kinds (ids `INLINE_SLOTS..MAX_KINDS`).
type DynamicSlots = [*mut PerKind; MAX_KINDS - INLINE_SLOTS];

/// This thread's record pointer for kind `id` (null: none).
#[inline(always)]
fn slot(id: usize) -> *mut PerKind {
    if id < INLINE_SLOTS {
        // The array's address only (a closure with no captures and no bounds check, which the
        // compiler always inlines), then the slot.
        let base = STATIC_SLOTS.with(|s| s.as_ptr());
        // SAFETY: `id < INLINE_SLOTS`, the array's length; the array is this thread's.
        return unsafe { (*base.add(id)).get() };
    }
    let t = DYNAMIC_SLOTS.with(Cell::get);
    if t.is_null() {
        return null_mut();
    }
    // SAFETY: a non-null table is this thread's, alive until its exit clean-up; id < MAX_KINDS.
    unsafe { (*t).get(id - INLINE_SLOTS).copied().unwrap_or(null_mut()) }
}

/// Make sure this thread can hold a record for kind `id`: allocates the dynamic table on the
/// thread's first dynamic kind.
fn reserve_slot(id: usize) -> Result<(), Error> {
    if id < INLINE_SLOTS || !DYNAMIC_SLOTS.with(Cell::get).is_null() {
        return Ok(());
    }
    // SAFETY: calloc of one table; all-null pointers are a valid (empty) table.
    let t = unsafe { libc::calloc(1, core::mem::size_of::<DynamicSlots>()) } as *mut DynamicSlots;
    if t.is_null() {
        return Err(Error::Malloc);
    }
    DYNAMIC_SLOTS.with(|c| c.set(t));
    Ok(())
}

/// Set this thread's record pointer for kind `id` (after [`reserve_slot`] succeeded for it).
fn set_slot(id: usize, pk: *mut PerKind) {
    if id < INLINE_SLOTS {
        STATIC_SLOTS.with(|s| s[id].set(pk));
        return;
    }
    let t = DYNAMIC_SLOTS.with(Cell::get);
    debug_assert!(!t.is_null(), "reserve_slot first");
    if t.is_null() {
        return;
    }
    // SAFETY: this thread's table, alive until its exit clean-up.
    if let Some(s) = unsafe { (*t).get_mut(id - INLINE_SLOTS) } {
        *s = pk;
    }
}

/// Take every record out of this thread's slots (and free the dynamic table): thread exit.
fn take_all_slots(mut f: impl FnMut(*mut PerKind)) {
    STATIC_SLOTS.with(|slots| {
        for s in slots.iter() {
            let pk = s.replace(null_mut());
            if !pk.is_null() {
                f(pk);
            }
        }
    });
    let t = DYNAMIC_SLOTS.with(|c| c.replace(null_mut()));
    if !t.is_null() {
        // SAFETY: this thread's table, detached above; freed once here.
        unsafe {
            for &pk in (*t).iter() {
                if !pk.is_null() {
                    f(pk);
                }
            }
            libc::free(t.cast());
        }
    }
}

/// The list of every live record and the records' own memory, under one lock.
///
/// Records (16.7 KiB each, mostly magazine slots) come from chunks mapped by this module, not
/// from `calloc`: a fresh chunk reads as zeros, so a new record writes its header and nothing
/// else, and the pages of the classes a kind never uses are never touched (a zeroed record
/// touched five pages: two more page faults at a fresh PMEM kind's first allocation). Released
/// records are kept for the next one made (their pages resident), never returned to the system.
pub(crate) struct List {
    /// Head of the list of live records.
    head: *mut PerKind,
    /// Released records, linked through `next`.
    free: *mut PerKind,
    /// The never-used rest of the current chunk: `[bump, end)`.
    bump: usize,
    end: usize,
}
// SAFETY: the raw pointers are only read or written with the lock held.
unsafe impl Send for List {}
pub(crate) static LIST: ForkLock<List> = ForkLock::new(List {
    head: null_mut(),
    free: null_mut(),
    bump: 0,
    end: 0,
});

/// Bytes of one record in a chunk (cache-line multiple).
const RECORD_BYTES: usize = core::mem::size_of::<PerKind>().next_multiple_of(64);
/// Records per chunk (≈1 MiB).
const CHUNK_RECORDS: usize = 64;

impl List {
    /// Memory for one record and whether it is fresh (zeros, never touched): a released record,
    /// or the next of a chunk. Null when no chunk could be mapped. The caller sets its fields.
    fn take_memory(&mut self) -> (*mut PerKind, bool) {
        if !self.free.is_null() {
            let pk = self.free;
            // SAFETY: records on the free list are ours, unused, and linked through `next`.
            self.free = unsafe { (*pk).next };
            return (pk, false);
        }
        if self.end - self.bump < RECORD_BYTES {
            let Ok(p) = crate::sys::Os::map(
                &crate::sys::Linux,
                RECORD_BYTES * CHUNK_RECORDS,
                crate::sys::Backing::Anon,
            ) else {
                return (null_mut(), false);
            };
            self.bump = p.as_ptr() as usize;
            self.end = self.bump + RECORD_BYTES * CHUNK_RECORDS;
        }
        let pk = self.bump as *mut PerKind;
        self.bump += RECORD_BYTES;
        (pk, true)
    }

    /// Keep a released record's memory for the next one.
    ///
    /// # Safety
    /// `pk` is out of every slot and of the live list, and nothing uses it any more.
    unsafe fn give_memory(&mut self, pk: *mut PerKind) {
        // SAFETY: the caller's contract: the record is ours alone.
        unsafe { (*pk).next = self.free };
        self.free = pk;
    }
}

/// This thread's record for `kind`, set up on first use.
#[inline(always)]
fn record(kind: &'static Kind) -> Result<*mut PerKind, Error> {
    let p = slot(kind.id() as usize);
    // SAFETY: a non-null slot points to this thread's record, alive until the thread exits.
    if !p.is_null() && unsafe { (*p).generation } == kind.generation() {
        return Ok(p);
    }
    record_slow(kind)
}

/// The mallocx flags for a non-default `kind` in this thread (arena + tcache). DEFAULT's record
/// (see below) is only its counted path's: callers ([`super::heap`], [`super::thread_arena`])
/// send DEFAULT elsewhere first.
#[inline(always)]
pub fn flags(kind: &'static Kind) -> Result<i32, Error> {
    match record(kind) {
        Ok(p) => {
            // SAFETY: see `record`; only this thread uses its record.
            let pk = unsafe { &mut *p };
            if pk.tcache_due != 0 {
                tcache_due(kind, pk);
            }
            Ok(pk.flags)
        }
        Err(e) => uncached_flags(kind).ok_or(e),
    }
}

/// A new record's first slow-path call runs without a jemalloc tcache (set when the record is
/// made, in the call that makes it): a kind's first allocation in a thread (for a fresh PMEM
/// kind, its very first one) does not pay for creating the tcache (≈11,000 instructions and
/// its pages), which the magazine refill it makes does not need.
const TCACHE_DUE: u8 = 2;
/// The record's next slow-path call (a magazine refill or drain, a block above the magazines)
/// creates its tcache.
const TCACHE_NEXT: u8 = 1;

/// Advance a record without a tcache yet: the call that made the record goes on without one;
/// the next one creates it (none after the thread-exit destructor ran, or when jemalloc has
/// no tcache left: then the record stays uncached, as it would have been at creation).
#[cold]
#[inline(never)]
fn tcache_due(kind: &'static Kind, pk: &mut PerKind) {
    if pk.tcache_due == TCACHE_DUE {
        pk.tcache_due = TCACHE_NEXT;
        return;
    }
    pk.tcache_due = 0;
    if EXITING.with(Cell::get) {
        return;
    }
    let t = new_tcache(kind);
    if t != MALLOCX_TCACHE_NONE {
        pk.flags = (pk.flags & !MALLOCX_TCACHE_MASK) | t;
    }
}

/// The tcache bits of mallocx flags (`MALLOCX_TCACHE(t)`, `MALLOCX_TCACHE_NONE`).
const MALLOCX_TCACHE_MASK: i32 = 0xfff << 8;

/// A fresh explicit tcache owned by `kind`, as mallocx flags; `MALLOCX_TCACHE_NONE` when there
/// is none to have.
fn new_tcache(kind: &'static Kind) -> i32 {
    match jemalloc::tcache_create() {
        Ok(t) if (t as usize) < TCACHE_LIMIT => {
            TCACHE_OWNER[t as usize].store(owner_tag(kind), Ordering::Release);
            MALLOCX_TCACHE(t as usize)
        }
        Ok(t) => {
            let _ = jemalloc::tcache_destroy(t);
            MALLOCX_TCACHE_NONE
        }
        // jemalloc's 4095 explicit caches are in use: run uncached rather than fail.
        Err(_) => MALLOCX_TCACHE_NONE,
    }
}

/// True for a kind that gets no per-thread record, caches nothing, and goes to jemalloc
/// uncached for every call (a CONSERVATIVE PMEM kind, see `arena::set_usage_policy`).
fn is_uncached(kind: &Kind) -> bool {
    kind.state::<crate::kind::pmem::PmemState>()
        .is_some_and(|st| st.is_uncached())
}

/// The mallocx flags of an uncached kind for this thread: one of its arenas (by thread) and no
/// tcache; `None` for every other kind.
#[cold]
#[inline(never)]
fn uncached_flags(kind: &'static Kind) -> Option<i32> {
    if !is_uncached(kind) || in_init() {
        return None;
    }
    let rt = super::runtime(kind).ok()?;
    let n = rt.arenas.len();
    if n == 0 {
        return None;
    }
    // pthread_t is the thread's control block address: drop the low bits all of them share.
    let i = (crate::sys::thread_self() >> 12) as usize % n;
    Some(MALLOCX_ARENA(rt.arenas[i] as usize) | MALLOCX_TCACHE_NONE)
}

/// [`malloc_small`] of an uncached kind (or of a kind whose record cannot be made: NULL).
#[cold]
#[inline(never)]
fn malloc_uncached(kind: &'static Kind, size: usize) -> *mut c_void {
    let Some(f) = uncached_flags(kind) else {
        return null_mut();
    };
    let p = jemalloc::mallocx(size, f).unwrap_or(null_mut());
    if !p.is_null() {
        outstanding(kind.id(), 1);
    }
    p
}

/// The calling thread's record of `kind` is drained and dropped (the kind's usage policy
/// changed: its next call makes a new record, or none for an uncached kind).
pub(crate) fn forget_own_record(kind: &Kind) {
    let id = kind.id() as usize;
    let pk = slot(id);
    if pk.is_null() {
        return;
    }
    set_slot(id, null_mut());
    let mut list = LIST.lock();
    // SAFETY: this thread's own record, taken out of its slot above; destroy never frees
    // records, and an unlinked one (a destroyed kind's) is only freed.
    unsafe {
        if (*pk).linked {
            flush_counts(&*pk, flush_reason::EVENTS);
        }
        release(&mut list, pk)
    };
}

/// This thread's record for `kind` if it is set up and of the kind's current generation (the
/// fast paths' test; [`record`] sets one up). Only this thread uses it, and a kind's destroy
/// only while the kind is not in use (memkind's contract), so the caller may take it `&mut`
/// for the length of one heap operation.
///
/// Only kinds with an inline slot (ids below [`INLINE_SLOTS`]): for the others the fast paths
/// fall through to their slow paths, which use the magazines through [`record`] (a kind beyond
/// the 38th dynamic one pays those calls). One load from the TLS block, not two branches
/// merged into a computed address.
#[inline(always)]
fn ready(kind: &'static Kind) -> Option<*mut PerKind> {
    let id = kind.id() as usize;
    if id >= INLINE_SLOTS {
        return None;
    }
    ready_inline(kind, id)
}

/// [`ready`] for a kind whose id `id` (below [`INLINE_SLOTS`]) the caller has at hand.
#[inline(always)]
fn ready_inline(kind: &'static Kind, id: usize) -> Option<*mut PerKind> {
    debug_assert!(id == kind.id() as usize && id < INLINE_SLOTS);
    let base = STATIC_SLOTS.with(|s| s.as_ptr());
    // SAFETY: `id % INLINE_SLOTS` is below the array's length; the array is this thread's.
    let p = unsafe { (*base.add(id % INLINE_SLOTS)).get() };
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null slot points to this thread's record, alive until the thread exits.
    (unsafe { (*p).generation } == kind.generation()).then_some(p)
}

/// The size-class table a ready record cached when it was made.
#[inline(always)]
fn classes(pk: &PerKind) -> &'static Classes {
    // SAFETY: set by `record_slow` to `Classes::get()`, a `&'static`, before the record was
    // published in the thread's slot.
    unsafe { &*pk.classes }
}

/// malloc of `size` (1..=[`SMALL`]) bytes of a non-default `kind` from this thread's magazine.
#[inline(always)]
pub fn malloc_small(kind: &'static Kind, size: usize) -> *mut c_void {
    match pop(kind, size) {
        Some(p) => p,
        None => malloc_small_slow(kind, size),
    }
}

/// The fast path of [`malloc_small`]: a block from the magazine of `size`'s class, `None` when
/// the thread has no ready record of `kind` (DEFAULT has one only once its counted path made it;
/// a kind that is not live has none of its current generation), `size` is 0 or above the
/// cached classes, or the magazine is empty.
#[inline(always)]
pub fn pop(kind: &'static Kind, size: usize) -> Option<*mut c_void> {
    // SAFETY: see `ready`.
    let pk = unsafe { &mut *ready(kind)? };
    // 0 < size <= limit, in one compare.
    if size.wrapping_sub(1) >= pk.limit {
        return None;
    }
    // SAFETY: `limit` is at most MAX_SMALL (`Classes::build`; checked by the magazine's
    // tests). Told, the compiler drops `bin_of`'s bounds check and overflow-safe rounding.
    unsafe { core::hint::assert_unchecked(size <= MAX_SMALL) };
    let b = classes(pk).bin_of(size);
    // SAFETY: `bin_of` of a request up to `limit` is a class index, below the class count,
    // which is at most MAX_BINS (`Classes::build`; checked by the magazine's tests). Told, the
    // compiler drops the magazine's index mask.
    unsafe { core::hint::assert_unchecked(b < MAX_BINS) };
    pk.mags.pop(b)
}

/// [`pop`] while a probe is attached: the block is counted in the record's
/// [`MagazineCounts`]. `None` as for `pop`, and also while the record's counts are not armed
/// for the probe's session (the counted slow path arms them: [`arm_counts`]).
#[inline(always)]
pub fn pop_counted(kind: &'static Kind, size: usize) -> Option<*mut c_void> {
    // SAFETY: see `ready`.
    let pk = unsafe { &mut *ready(kind)? };
    if !pk.counts.armed() || size.wrapping_sub(1) >= pk.limit {
        return None;
    }
    // SAFETY: as in `pop`.
    unsafe { core::hint::assert_unchecked(size <= MAX_SMALL) };
    let b = classes(pk).bin_of(size);
    // SAFETY: as in `pop`.
    unsafe { core::hint::assert_unchecked(b < MAX_BINS) };
    let p = pk.mags.pop(b)?;
    pk.counts.alloc(b, size);
    if tick(pk) {
        return Some(flush_counts_then(pk, p));
    }
    Some(p)
}

/// [`free_inline_id`] while a probe is attached: true when the block went into the magazine
/// and was counted in the record's [`MagazineCounts`]; false (nothing done) when the thread has
/// no ready record with armed counts, or the magazine cannot take the block.
#[inline(always)]
pub fn push_counted_inline_id(kind: &'static Kind, id: usize, p: *mut c_void) -> bool {
    let Some(pk) = ready_inline(kind, id) else {
        return false;
    };
    // SAFETY: see `ready`.
    let pk = unsafe { &mut *pk };
    if !pk.counts.armed() {
        return false;
    }
    let ind = jemalloc::block_szind(p);
    if !push_szind_into(pk, p, ind) {
        return false;
    }
    // A pushed block's class index is its bin (below `direct`).
    pk.counts.free(ind);
    if tick(pk) {
        flush_counts_then(pk, null_mut());
    }
    true
}

/// One counted event less until record `pk`'s next flush (see `MagazineCounts::tick`).
#[inline(always)]
fn tick(pk: &PerKind) -> bool {
    // SAFETY: `counts` of this thread's record.
    unsafe {
        MagazineCounts::tick::<{ core::mem::offset_of!(PerKind, counts) }>(
            (pk as *const PerKind).cast(),
        )
    }
}

/// Count a small malloc of `size` bytes of `kind` that the counted slow path served, in this
/// thread's record of the kind when its counts are armed (so that one accumulator holds all of
/// the record's small traffic, and its allocs and frees reach the probe together). False when
/// the caller must count it elsewhere.
pub fn count_alloc(kind: &'static Kind, size: usize) -> bool {
    let Some(pk) = ready(kind) else {
        return false;
    };
    // SAFETY: see `ready`.
    let pk = unsafe { &*pk };
    if !pk.counts.armed() || size.wrapping_sub(1) >= pk.limit {
        return false;
    }
    pk.counts.alloc(classes(pk).bin_of(size), size);
    if tick(pk) {
        flush_counts(pk, flush_reason::EVENTS);
    }
    true
}

/// [`count_alloc`] for a free of a block of `kind` of jemalloc size-class index `ind`.
pub fn count_free(kind: &'static Kind, ind: usize) -> bool {
    let Some(pk) = ready(kind) else {
        return false;
    };
    // SAFETY: see `ready`.
    let pk = unsafe { &*pk };
    // A class below `direct` is its bin.
    if !pk.counts.armed() || ind >= pk.direct {
        return false;
    }
    pk.counts.free(ind);
    if tick(pk) {
        flush_counts(pk, flush_reason::EVENTS);
    }
    true
}

/// Arm the counts of this thread's ready record of `kind` for the probe's session, if they are
/// not (the counted slow paths, so that the next calls take [`pop_counted`] and
/// [`push_counted_inline_id`]). True when the caller must re-announce every kind and extent.
pub fn arm_counts(kind: &'static Kind) -> bool {
    match ready(kind) {
        // SAFETY: see `ready`.
        Some(pk) if !unsafe { &*pk }.counts.armed() => unsafe { &*pk }.counts.arm(),
        _ => false,
    }
}

/// The flush every `MKP_FLUSH_EVERY` counted events of record `pk`, then `p` back. `extern "C"`
/// (a panic aborts here), so the counted fast paths reach it with a tail call and stay frameless.
#[cold]
#[inline(never)]
extern "C" fn flush_counts_then(pk: &PerKind, p: *mut c_void) -> *mut c_void {
    flush_counts(pk, flush_reason::EVENTS);
    // Opaque, so that the compiler does not see `p` come back and keep it in a callee-saved
    // register across the call (which would give the fast path a frame).
    core::hint::black_box(p)
}

/// Hand record `pk`'s magazine counts to the probe.
fn flush_counts(pk: &PerKind, reason: u32) {
    let arena = super::arena_of_flags(pk.flags).unwrap_or(MKP_NONE);
    pk.counts.flush(pk.kind, arena, classes(pk).sizes(), reason);
}

/// [`malloc_small`] when [`pop`] has no block: set up the record, refill the magazine, or
/// serve a request above the cached classes from jemalloc. `extern "C"` (a panic aborts here),
/// so the fast paths of `extern "C"` callers reach it with a tail call.
#[cold]
#[inline(never)]
pub extern "C" fn malloc_small_slow(kind: &'static Kind, size: usize) -> *mut c_void {
    let Ok(pk) = record(kind) else {
        return malloc_uncached(kind, size);
    };
    // SAFETY: the record is this thread's (see `record`); nothing else touches it meanwhile.
    let pk = unsafe { &mut *pk };
    if pk.tcache_due != 0 {
        tcache_due(kind, pk);
    }
    let classes = Classes::get();
    if size > classes.limit() {
        let p = jemalloc::mallocx(size, pk.flags).unwrap_or(null_mut());
        if !p.is_null() {
            outstanding(kind.id(), 1);
        }
        return p;
    }
    let b = classes.bin_of(size);
    if let Some(p) = pk.mags.pop(b) {
        return p;
    }
    let mut added = pk.mags.refill(b, classes.size(b), CAPACITY / 2, pk.flags);
    if added == 0 {
        added = refill_after_flush(pk, b);
        if added == 0 {
            return null_mut();
        }
    }
    outstanding(kind.id(), added as isize);
    pk.mags.pop(b).unwrap_or(null_mut())
}

/// The kind is out of memory (a PMEM kind at its `max`, a fixed kind's buffer full): give every
/// block this thread caches for it back to jemalloc (magazines, then the jemalloc tcache) and
/// try bin `b` once more. Cached free blocks keep their slabs alive, scattered over the kind's
/// extents; returned, empty slabs coalesce into space a new slab of any class can use, as in
/// memkind 1.14, which caches nothing for PMEM kinds (a refill after freeing everything then
/// fits what the first fill did). Only runs when an allocation would fail.
#[cold]
#[inline(never)]
fn refill_after_flush(pk: &mut PerKind, b: usize) -> usize {
    drain_all(pk);
    if let Some(t) = tcache_of(pk.flags) {
        let _ = jemalloc::tcache_flush(t);
    }
    pk.mags
        .refill(b, Classes::get().size(b), CAPACITY / 2, pk.flags)
}

/// free of a block of non-default `kind` into this thread's magazine (or to jemalloc).
#[inline(always)]
pub fn free(kind: &'static Kind, p: *mut c_void) {
    // `p` is a live block start of ours (the extent map said so). Its size-class index is its
    // bin: no usable size needed unless the magazine cannot take it.
    if !push_szind(kind, p, jemalloc::block_szind(p)) {
        free_slow_unsized(kind, p)
    }
}

/// [`free`] of a block whose jemalloc size-class index `ind` the caller has read.
#[inline(always)]
pub fn free_szind(kind: &'static Kind, p: *mut c_void, ind: usize) {
    if !push_szind(kind, p, ind) {
        free_slow_unsized(kind, p)
    }
}

/// [`free_slow`] of a block whose usable size is still to be read (a tail call from [`free`]).
#[cold]
#[inline(never)]
extern "C" fn free_slow_unsized(kind: &'static Kind, p: *mut c_void) {
    free_slow(kind, p, jemalloc::block_usable(p))
}

/// [`push`] by the block's jemalloc size-class index (`usize::MAX`: unknown).
#[inline(always)]
fn push_szind(kind: &'static Kind, p: *mut c_void, ind: usize) -> bool {
    match ready(kind) {
        Some(pk) => push_szind_into(pk, p, ind),
        None => false,
    }
}

/// Push `p` (of size-class index `ind`) into ready record `pk`'s magazine.
#[inline(always)]
fn push_szind_into(pk: *mut PerKind, p: *mut c_void, ind: usize) -> bool {
    // SAFETY: see `ready`.
    let pk = unsafe { &mut *pk };
    // A class below `direct` is its bin (`Classes::direct`).
    if ind >= pk.direct {
        return false;
    }
    // SAFETY: `direct` is at most the class count, at most MAX_BINS (`Classes::build`;
    // checked by the magazine's tests). Told, the compiler drops the magazine's index mask.
    unsafe { core::hint::assert_unchecked(ind < MAX_BINS) };
    pk.mags.push(ind, p)
}

/// [`free`] of a block of `kind` whose id `id` the caller read from the extent map and found
/// below [`INLINE_SLOTS`]: the id is not read again from the kind.
#[inline(always)]
pub fn free_inline_id(kind: &'static Kind, id: usize, p: *mut c_void) {
    let pushed = match ready_inline(kind, id) {
        Some(pk) => push_szind_into(pk, p, jemalloc::block_szind(p)),
        None => false,
    };
    if !pushed {
        free_slow_unsized(kind, p)
    }
}

/// [`free`] of a block whose usable size (`sallocx`) the caller has already taken.
#[inline(always)]
pub fn free_sized(kind: &'static Kind, p: *mut c_void, usable: usize) {
    if !push(kind, p, usable) {
        free_slow(kind, p, usable)
    }
}

/// The fast path of [`free_sized`]: `true` when `p` went into the magazine of its class; `false`
/// when the thread has no ready record of `kind`, `usable` is not a cached class or the
/// magazine is full.
#[inline(always)]
fn push(kind: &'static Kind, p: *mut c_void, usable: usize) -> bool {
    let Some(pk) = ready(kind) else {
        return false;
    };
    // SAFETY: see `ready`.
    let pk = unsafe { &mut *pk };
    match classes(pk).bin_of_usable(usable) {
        // `bin_of_usable` yields a class index, below the class count, which is at most
        // MAX_BINS.
        Some(b) => pk.mags.push(b, p),
        None => false,
    }
}

/// [`free_sized`] when [`push`] could not keep the block: set up the record, drain a full
/// magazine, or give a block that is not of a cached class back to jemalloc.
#[cold]
#[inline(never)]
extern "C" fn free_slow(kind: &'static Kind, p: *mut c_void, usable: usize) {
    let Ok(pk) = record(kind) else {
        jemalloc::dallocx(p, MALLOCX_TCACHE_NONE);
        outstanding(kind.id(), -1);
        return;
    };
    // SAFETY: as in `malloc_small`.
    let pk = unsafe { &mut *pk };
    match Classes::get().bin_of_usable(usable) {
        Some(b) if b < MAX_BINS => {
            if !pk.mags.push(b, p) {
                let n = pk.mags.drain(b, CAPACITY / 2, pk.flags);
                outstanding(kind.id(), -(n as isize));
                pk.mags.push(b, p);
            }
        }
        _ => {
            jemalloc::dallocx(p, pk.flags);
            outstanding(kind.id(), -1);
        }
    }
}

/// Requests up to this size use magazines.
pub const SMALL: usize = MAX_SMALL;

#[cold]
fn record_slow(kind: &'static Kind) -> Result<*mut PerKind, Error> {
    if in_init() {
        // Re-entered from our own set-up through an interposed malloc (see `heap::reentered`):
        // the caller serves the allocation from DEFAULT instead of recursing.
        return Err(Error::Malloc);
    }
    if is_uncached(kind) {
        return Err(Error::Unavailable); // the caller goes uncached (`uncached_flags`)
    }
    let _reentry = InitGuard::enter();
    let arena = if kind.is_default() {
        // DEFAULT's record is made only by its counted path (a probe attached), whose small
        // blocks then come from magazines as the other kinds' do: the thread's own arena, as
        // jemalloc's malloc would use, and no tcache of ours.
        // SAFETY: `thread.arena` is an `unsigned` (jemalloc(3)).
        unsafe { jemalloc::read::<u32>(c"thread.arena") }.map_err(|_| Error::Malloc)?
    } else {
        let rt = super::runtime(kind)?;
        if rt.arenas.is_empty() {
            return Err(Error::Invalid);
        }
        rt.take_arena()
    };
    let id = kind.id() as usize;
    reserve_slot(id)?;
    let slot_old = slot(id);
    // Every record is released by the thread-exit destructor. A record made while that
    // destructor already runs (another key's destructor allocating) sets the key again, so
    // glibc runs ours once more; such late records get no jemalloc tcache.
    register_exit();
    // The tcache comes at the record's next slow-path call (`tcache_due`).
    let due = if EXITING.with(Cell::get) || kind.is_default() {
        0
    } else {
        TCACHE_DUE
    };
    let pk = {
        let mut list = LIST.lock();
        let (pk, fresh) = list.take_memory();
        if pk.is_null() {
            return Err(Error::Malloc);
        }
        // SAFETY: memory for one record, ours alone: zeros from a fresh chunk or a released
        // record (a valid PerKind either way, see `List`).
        unsafe {
            let r = &mut *pk;
            r.generation = kind.generation();
            r.flags = MALLOCX_ARENA(arena as usize) | MALLOCX_TCACHE_NONE;
            r.kind = kind.id();
            r.linked = false;
            r.tcache_due = due;
            r.next = null_mut();
            r.classes = Classes::get();
            r.limit = Classes::get().limit();
            r.direct = Classes::get().direct();
            r.counts.disarm();
            // A released record's magazines were drained; their counts are zeroed again all the
            // same. A fresh one's are zeros: not even read, so its other pages stay untouched.
            if !fresh {
                r.mags.forget_all();
            }
        }
        if !slot_old.is_null() {
            // A stale record of a destroyed kind whose slot was reused: already drained and
            // unlinked by the destroy.
            // SAFETY: this thread's own record; destroy never frees records.
            unsafe { release(&mut list, slot_old) };
        }
        // SAFETY: linking a fresh record under the list lock.
        unsafe {
            (*pk).next = list.head;
            (*pk).linked = true;
        }
        list.head = pk;
        pk
    };
    set_slot(id, pk);
    Ok(pk)
}

/// Drain a record's magazines, give back its tcache, unlink it if linked, and free it.
///
/// # Safety
/// `pk` is a record of the calling thread (or of a kind being destroyed), the list lock is held.
unsafe fn release(list: &mut List, pk: *mut PerKind) {
    // SAFETY: caller guarantees exclusive access to `pk` under the list lock.
    unsafe {
        if (*pk).linked {
            drain_all(&mut *pk);
            unlink(list, pk);
            if let Some(t) = tcache_of((*pk).flags) {
                let tag = ((((*pk).kind) as u64 + 1) << 32) | (*pk).generation as u64;
                if TCACHE_OWNER[t as usize]
                    .compare_exchange(tag, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    let _ = jemalloc::tcache_destroy(t);
                }
            }
        }
        list.give_memory(pk);
    }
}

fn drain_all(pk: &mut PerKind) {
    let n = pk.mags.drain_all(MALLOCX_TCACHE_NONE);
    outstanding(pk.kind, -(n as isize));
}

/// # Safety
/// List lock held; `pk` is linked.
unsafe fn unlink(list: &mut List, pk: *mut PerKind) {
    let mut cur: *mut *mut PerKind = &mut list.head;
    // SAFETY: walking the list under its lock; every node is a live record.
    unsafe {
        while !(*cur).is_null() {
            if *cur == pk {
                *cur = (*pk).next;
                (*pk).linked = false;
                return;
            }
            cur = &mut (**cur).next;
        }
    }
}

/// Drain and unlink every thread's record of `kind` (its destroy; the kind is not in use).
/// The records stay allocated: their threads free them on next use or at exit.
pub(crate) fn drain_kind(kind: &Kind) {
    // No allocation here: with a kind as Rust's global allocator it would re-enter this lock.
    let mut list = LIST.lock();
    let mut link: *mut *mut PerKind = &mut list.head;
    // SAFETY: walking and unlinking list nodes under the lock; every node is a live record and
    // the kind's owners do not use theirs while the kind is destroyed (memkind's contract).
    unsafe {
        while !(*link).is_null() {
            let cur = *link;
            if (*cur).kind == kind.id() && (*cur).generation == kind.generation() {
                drain_all(&mut *cur);
                *link = (*cur).next;
                (*cur).linked = false;
            } else {
                link = &mut (*cur).next;
            }
        }
    }
}

fn tcache_of(flags: i32) -> Option<u32> {
    let t = ((flags as u32) >> 8) & 0xfff;
    (t >= 2).then(|| t - 2)
}

static KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();

fn register_exit() {
    if KEYED.with(Cell::get) {
        return;
    }
    let key = *KEY.get_or_init(|| {
        let mut k: libc::pthread_key_t = 0;
        // SAFETY: pthread_key_create writes the key; `on_thread_exit` is a valid destructor
        // that never unwinds.
        unsafe { libc::pthread_key_create(&mut k, Some(on_thread_exit)) };
        k
    });
    // SAFETY: a non-null value makes the destructor run at thread exit; the value is unused.
    unsafe { libc::pthread_setspecific(key, core::ptr::dangling::<c_void>()) };
    KEYED.with(|k| k.set(true));
}

/// pthread key destructor: give back this thread's magazines, caches and records.
unsafe extern "C" fn on_thread_exit(_: *mut c_void) {
    EXITING.with(|e| e.set(true));
    KEYED.with(|k| k.set(false));
    let mut list = LIST.lock();
    take_all_slots(|pk| {
        // SAFETY: this thread's own record; lock held.
        unsafe {
            if (*pk).linked {
                flush_counts(&*pk, flush_reason::THREAD_EXIT);
            }
            release(&mut list, pk)
        };
    });
}

/// Flush every thread's magazine counts of `kind` (it is being destroyed; with the kind's other
/// counts, before the probe hears of the destroy).
pub(crate) fn flush_kind_counts(kind: &Kind) {
    flush_listed(
        |pk| pk.kind == kind.id() && pk.generation == kind.generation(),
        flush_reason::KIND_DESTROY,
    );
}

/// At process exit: flush every record's magazine counts.
extern "C" fn flush_all_counts_at_exit() {
    flush_listed(|_| true, flush_reason::PROCESS_EXIT);
}

/// Flush the magazine counts of every listed record `which` picks (nothing while no probe is
/// attached).
fn flush_listed(which: impl Fn(&PerKind) -> bool, reason: u32) {
    if !crate::probe::on() {
        return;
    }
    let list = LIST.lock();
    let mut cur = list.head;
    // SAFETY: walking the list under its lock; every node is a live record.
    unsafe {
        while !cur.is_null() {
            if which(&*cur) {
                flush_counts(&*cur, reason);
            }
            cur = (*cur).next;
        }
    }
}

/// Runs [`flush_all_counts_at_exit`] when the process exits (or the library is unloaded), as
/// the counters' own exit flush.
#[used]
#[unsafe(link_section = ".fini_array")]
static AT_EXIT: extern "C" fn() = flush_all_counts_at_exit;

/// In a fork child, with [`LIST`] held since the prepare handler: the records' counts are the
/// parent's (it flushes them itself), so every record's are dropped and disarmed; the child's
/// next counted call arms them again (and announces what the child inherited).
pub(crate) fn fork_child_locked(list: &mut List) {
    let mut cur = list.head;
    // SAFETY: walking the held list; every node is a live record.
    unsafe {
        while !cur.is_null() {
            (*cur).counts.disarm();
            cur = (*cur).next;
        }
    }
}

/// Marks this thread as initialising the library until dropped. While it lives, the Rust
/// allocator API serves the library's own allocations from the system allocator, so a program
/// that uses a kind as its `#[global_allocator]` does not re-enter a kind being set up.
pub struct InitGuard(());

impl InitGuard {
    /// Enter.
    pub fn enter() -> InitGuard {
        IN_INIT.with(|d| d.set(d.get() + 1));
        InitGuard(())
    }
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        IN_INIT.with(|d| d.set(d.get() - 1));
    }
}

/// True while this thread is inside library initialisation.
#[inline(always)]
pub fn in_init() -> bool {
    IN_INIT.with(Cell::get) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of `kind` in the process-wide list.
    fn listed(kind: &Kind) -> usize {
        let list = LIST.lock();
        let mut n = 0;
        let mut cur = list.head;
        // SAFETY: walking the list under its lock; every node is a live record.
        unsafe {
            while !cur.is_null() {
                if (*cur).kind == kind.id() && (*cur).generation == kind.generation() {
                    n += 1;
                }
                cur = (*cur).next;
            }
        }
        n
    }

    #[test]
    fn high_kind_ids_live_in_the_thread_table_and_go_at_exit() {
        let _serial = crate::kind::tests::DYNAMIC_SLOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Fixed kinds over one buffer until an id past the inline slots is handed out.
        let buf = vec![0u8; 96 << 20];
        let mut kinds = Vec::new();
        let chunk = 1 << 20;
        let k = loop {
            let at = buf.as_ptr() as usize + kinds.len() * chunk;
            let k = crate::kind::fixed::create(at, chunk).unwrap();
            if k.id() as usize >= INLINE_SLOTS {
                break k;
            }
            kinds.push(k);
        };
        let regular = &crate::kind::KINDS[crate::kind::partition::REGULAR];
        std::thread::spawn(move || {
            assert!(
                DYNAMIC_SLOTS.with(Cell::get).is_null(),
                "no table before a high id"
            );
            let p = super::super::heap::malloc(regular, 64);
            super::super::heap::free(p);
            assert!(
                DYNAMIC_SLOTS.with(Cell::get).is_null(),
                "low ids need no table"
            );
            let p = super::super::heap::malloc(k, 64);
            assert!(!p.is_null());
            super::super::heap::free(p);
            assert!(!DYNAMIC_SLOTS.with(Cell::get).is_null());
            assert!(!slot(k.id() as usize).is_null());
            assert_eq!(listed(k), 1);
            // The fast paths know only inline slots; a high id's blocks still go through its
            // magazine (the slow paths): the block just freed is the next one handed out.
            assert_eq!(ready(k), None);
            assert_eq!(super::super::heap::malloc(k, 64), p);
            super::super::heap::free(p);
        })
        .join()
        .unwrap();
        assert_eq!(listed(k), 0, "the exiting thread released its record");
        crate::arena::destroy_kind(k).unwrap();
        for k in kinds {
            crate::arena::destroy_kind(k).unwrap();
        }
        drop(buf);
    }

    #[test]
    fn record_memory_comes_from_chunks_and_is_reused() {
        let mut l = List {
            head: null_mut(),
            free: null_mut(),
            bump: 0,
            end: 0,
        };
        let (a, fresh) = l.take_memory();
        assert!(fresh && !a.is_null());
        assert_eq!(a as usize % 64, 0);
        // SAFETY: a fresh record of the test's own list: zeros are a valid PerKind.
        let r = unsafe { &mut *a };
        assert!(r.next.is_null() && r.generation == 0 && r.mags.all_empty());
        let (b, fresh) = l.take_memory();
        assert!(fresh);
        assert_eq!(
            b as usize - a as usize,
            RECORD_BYTES,
            "next of the same chunk"
        );
        // SAFETY: `a` is used by nothing.
        unsafe { l.give_memory(a) };
        assert_eq!(
            l.take_memory(),
            (a, false),
            "a released record comes back first"
        );
        // A chunk's worth more: the rest of the first chunk, then a second one.
        let rest: Vec<_> = (0..CHUNK_RECORDS).map(|_| l.take_memory()).collect();
        assert!(rest.iter().all(|&(p, fresh)| fresh && !p.is_null()));
        assert_eq!(
            rest[CHUNK_RECORDS - 3].0 as usize,
            a as usize + (CHUNK_RECORDS - 1) * RECORD_BYTES
        );
    }

    #[test]
    fn tcache_decoding() {
        assert_eq!(tcache_of(MALLOCX_TCACHE(0)), Some(0));
        assert_eq!(
            tcache_of(MALLOCX_TCACHE(4093) | MALLOCX_ARENA(17)),
            Some(4093)
        );
        assert_eq!(tcache_of(MALLOCX_TCACHE_NONE), None);
        assert_eq!(tcache_of(0), None);
        assert_eq!(
            super::super::arena_of_flags(MALLOCX_ARENA(17) | MALLOCX_TCACHE(3)),
            Some(17)
        );
        assert_eq!(super::super::arena_of_flags(0), None);
    }
}
