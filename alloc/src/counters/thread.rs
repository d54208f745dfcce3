//! Per-thread counters of the probe's default tier (`struct mkp_counters`), per kind and arena.
//!
//! Only while a probe is attached ([`crate::probe::on`]): the heap operations then call [`count`] on
//! their cold, counted path. Each thread has one [`ThreadCounters`] (system memory, `calloc`ed on
//! its first counted event), with one [`Entry`] per kind id it used: counts since the last flush,
//! handed to the probe through `memkind_arena_stats_flush` every `MKP_FLUSH_EVERY` events of the
//! kind, when the thread exits (a pthread key destructor), when the kind is destroyed
//! ([`flush_kind`]) and when the process exits (a `.fini_array` entry). So the sum of the
//! flushes over a run is what the program did.
//!
//! Blocks of jemalloc's small size classes up to [`CLASS_MAX`] (4 KiB) are counted per size class
//! (one 16-bit increment per alloc or free, plus the requested bytes for an alloc): the usable
//! bytes and the size buckets of the flush record follow from the classes when the entry is
//! flushed, as every request of one class falls in one size bucket. Larger blocks and reallocs
//! add to the record's fields directly.
//!
//! Counters are atomics updated with plain loads and stores by their thread (the same
//! instructions as plain integers on x86-64), so the flushes of other threads' counts at kind
//! destroy and at exit read them without a data race; a count made by a thread at the very
//! moment another flushes its entry (only possible at process exit, or against memkind's
//! contract at kind destroy) may be lost or counted twice.
//!
//! A probe that attaches to a running process first writes `memkind_probe_request`; a thread
//! that sees a value it has not seen drops its unflushed counts (from an earlier probe session),
//! and the first such thread tells its caller to re-announce every kind and extent.
#![allow(
    unsafe_code,
    reason = "per-thread records in system memory, reached by raw pointer; pthread key and fini_array clean-up"
)]

use core::cell::Cell;
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU16, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use crate::probe::records::{
    flush_reason, size_bucket, MkpCounters, MkpFlush, MKP_FLUSH_EVERY, MKP_NONE, MKP_SIZE_BUCKETS,
    MKP_VERSION,
};
use crate::sync::ForkLock;

/// Kind ids have at most 11 bits (see the extent map).
const MAX_IDS: usize = 2048;
/// Entries per chunk: the first chunk (the static kinds and the first dynamic ids) is inline in
/// the thread's record, further ones are `calloc`ed when the thread first counts an id in them.
const CHUNK: usize = 64;
const CHUNKS: usize = MAX_IDS / CHUNK;

/// Largest size class counted per class: jemalloc's classes up to here are 8, then multiples of
/// 16 up to 128, then four per doubling (x86-64, 16-byte quantum; checked against jemalloc by
/// the arena layer's tests).
pub(crate) const CLASS_MAX: usize = 4096;

/// jemalloc's size class of a request of `n` bytes, 1 ≤ `n` ≤ [`CLASS_MAX`].
pub(crate) const fn class_size(n: usize) -> usize {
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return n.div_ceil(16) * 16;
    }
    // ceil(log2(n)) = k: four classes in (2^(k-1), 2^k], spaced 2^(k-3).
    let k = usize::BITS - (n - 1).leading_zeros();
    let spacing = 1usize << (k - 3);
    n.div_ceil(spacing) * spacing
}

/// Classes up to [`CLASS_MAX`]: class `i` is jemalloc's size-class index `i` (its small classes
/// in ascending order; checked against jemalloc by the arena layer's tests), so a freed block's
/// index read from jemalloc's page map is its class here.
pub(crate) const NCLASS: usize = 29;

/// The class sizes, ascending.
const CLASS_SIZES: [u16; NCLASS] = {
    let mut out = [0u16; NCLASS];
    let (mut n, mut i) = (1, 0);
    while n <= CLASS_MAX {
        let c = class_size(n);
        out[i] = c as u16;
        i += 1;
        n = c + 1;
    }
    assert!(i == NCLASS);
    out
};

/// Index into [`CLASS_SIZES`] of the class of a request of `n` bytes, at `n.div_ceil(8)` (every
/// class is a multiple of 8, so a class size looks itself up).
const CLASS_INDEX: [u8; CLASS_MAX / 8 + 1] = {
    let mut out = [0u8; CLASS_MAX / 8 + 1];
    let mut j = 1;
    while j <= CLASS_MAX / 8 {
        let c = class_size(j * 8);
        let mut i = 0;
        while CLASS_SIZES[i] as usize != c {
            i += 1;
        }
        out[j] = i as u8;
        j += 1;
    }
    out
};

/// The size of class `i` (< [`NCLASS`]).
#[inline(always)]
pub(crate) fn class_size_of(i: usize) -> usize {
    // Not 0: callers pass i < NCLASS.
    usize::from(CLASS_SIZES.get(i).copied().unwrap_or(0))
}

#[inline(always)]
fn class_index(n: usize) -> usize {
    // Not `None`: callers pass 1 ≤ n ≤ CLASS_MAX.
    usize::from(CLASS_INDEX.get(n.div_ceil(8)).copied().unwrap_or(0))
}

/// One thread's counts of one kind since its last flush.
#[repr(C)]
#[derive(Default)]
struct Counts {
    /// Allocs whose block is of class `i` ([`CLASS_SIZES`]); at most `MKP_FLUSH_EVERY` between
    /// two flushes, so 16 bits hold them.
    class_allocs: [AtomicU16; NCLASS],
    /// Frees of blocks of class `i`.
    class_frees: [AtomicU16; NCLASS],
    allocs: AtomicU64,
    frees: AtomicU64,
    reallocs: AtomicU64,
    bytes_requested: AtomicU64,
    bytes_allocated: AtomicU64,
    bytes_freed: AtomicU64,
    size_buckets: [AtomicU64; MKP_SIZE_BUCKETS],
}

/// One thread's entry for one kind id.
#[repr(C)]
#[derive(Default)]
struct Entry {
    /// [`ready`] of the generation the entry is set up for (arena known): the fast path's one
    /// compare. 0 until then.
    ready: AtomicU64,
    /// Generation of the kind the counts belong to (ids of destroyed kinds are reused).
    generation: AtomicU32,
    /// Arena the thread uses for the kind, plus one (0: not asked yet).
    arena: AtomicU32,
    /// Events counted since the last flush.
    events: AtomicU32,
    counts: Counts,
}

type Chunk = [Entry; CHUNK];

/// One thread's counters.
#[repr(C)]
pub(crate) struct ThreadCounters {
    tid: AtomicU32,
    /// `memkind_probe_request` as this thread last saw it.
    seen_request: AtomicU64,
    /// Next record in [`LIST`] (under its lock).
    next: *mut ThreadCounters,
    /// Chunk 0.
    first: Chunk,
    /// Chunks 1.. (null until used).
    more: [AtomicPtr<Chunk>; CHUNKS - 1],
}

/// Head of the list of every thread's record.
pub(crate) struct List(*mut ThreadCounters);
// SAFETY: the raw head and the `next` links are only touched with the lock held.
unsafe impl Send for List {}
/// Every thread's record, for the flushes at kind destroy and process exit; the fork handlers
/// hold it across `fork` (`crate::sync`).
pub(crate) static LIST: ForkLock<List> = ForkLock::new(List(null_mut()));

thread_local! {
    /// This thread's record (null: none yet).
    static MINE: Cell<*mut ThreadCounters> = const { Cell::new(null_mut()) };
}

/// Value `memkind_probe_request` had at the last re-announce (`u64::MAX`: none yet, so the
/// first counted event of a process announces the kinds once).
static ANNOUNCED: AtomicU64 = AtomicU64::new(u64::MAX);

/// True for the first thread to see request `req` (it must re-announce every kind and extent).
fn announce_due(req: u64) -> bool {
    ANNOUNCED.load(Relaxed) != req && ANNOUNCED.swap(req, Relaxed) != req
}

/// An entry's [`Entry::ready`] value for kind generation `generation`.
#[inline(always)]
fn ready(generation: u32) -> u64 {
    u64::from(generation) | 1 << 32
}

/// One counted operation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    /// An allocation of `requested` bytes handed out a block of `usable` bytes.
    Alloc { requested: usize, usable: usize },
    /// An allocation of `requested` bytes, 1 ≤ `requested` ≤ [`CLASS_MAX`], handed out a block
    /// of the request's size class (a magazine's or jemalloc's thread cache's block).
    AllocClass { requested: usize },
    /// A block of `usable` bytes was freed.
    Free { usable: usize },
    /// A block of class `class` (< [`NCLASS`]) was freed.
    FreeClass { class: usize },
    /// A live block of `old` usable bytes became one of `new` for a request of `requested`.
    Realloc {
        requested: usize,
        old: usize,
        new: usize,
    },
}

#[inline(always)]
fn add(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

#[inline(always)]
fn add16(c: &AtomicU16) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

#[inline(always)]
fn add32(c: &AtomicU32, n: u32) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Count `op` on kind `kind` (with its current `generation`) in this thread; `arena` names the
/// arena the thread uses for the kind (asked once per thread and kind). True when the caller
/// must re-announce every kind and extent (a probe asked for it, or this is the process's first
/// counted event).
///
/// The common case (the thread has its record, no new request, an entry of the first chunk
/// already set up for this generation) is inline here: a few loads and compares and the adds;
/// everything else is [`count_slow`]. The two commonest operations have their own entry points,
/// [`count_alloc_class`] and [`count_free_class`], whose slow paths take their arguments in
/// registers (an [`Op`] does not fit in two).
#[inline(always)]
pub(crate) fn count(kind: u16, generation: u32, arena: impl FnOnce() -> u32, op: Op) -> bool {
    if let Some((t, e)) = ready_entry(kind, generation) {
        e.add(op);
        return e.event(kind, t);
    }
    count_slow(kind, generation, arena, op)
}

/// [`count`] of `Op::AllocClass { requested }`.
#[inline(always)]
pub(crate) fn count_alloc_class(
    kind: u16,
    generation: u32,
    arena: impl FnOnce() -> u32,
    requested: usize,
) -> bool {
    if let Some((t, e)) = ready_entry(kind, generation) {
        e.add(Op::AllocClass { requested });
        return e.event(kind, t);
    }
    alloc_class_slow(kind, generation, arena, requested)
}

/// [`count`] of `Op::FreeClass { class }`.
#[inline(always)]
pub(crate) fn count_free_class(
    kind: u16,
    generation: u32,
    arena: impl FnOnce() -> u32,
    class: usize,
) -> bool {
    if let Some((t, e)) = ready_entry(kind, generation) {
        e.add(Op::FreeClass { class });
        return e.event(kind, t);
    }
    free_class_slow(kind, generation, arena, class)
}

#[cold]
#[inline(never)]
fn alloc_class_slow(
    kind: u16,
    generation: u32,
    arena: impl FnOnce() -> u32,
    requested: usize,
) -> bool {
    count_slow(kind, generation, arena, Op::AllocClass { requested })
}

#[cold]
#[inline(never)]
fn free_class_slow(kind: u16, generation: u32, arena: impl FnOnce() -> u32, class: usize) -> bool {
    count_slow(kind, generation, arena, Op::FreeClass { class })
}

/// This thread's record and its entry of `kind` when the fast path may count there: the record
/// exists, the entry is in the first chunk and set up for `generation`, and no probe asked for
/// a new session since the thread last looked.
#[inline(always)]
fn ready_entry(kind: u16, generation: u32) -> Option<(&'static ThreadCounters, &'static Entry)> {
    let t = MINE.with(Cell::get);
    if t.is_null() {
        return None;
    }
    // SAFETY: this thread's record, alive until its exit destructor.
    let t: &'static ThreadCounters = unsafe { &*t };
    let e = t.first.get(kind as usize)?;
    // No test of ANNOUNCED: a thread stores a request in `seen_request` only in `count_slow`,
    // which makes ANNOUNCED equal to it first (and a fork child's `seen_request` is invalidated
    // with ANNOUNCED).
    (e.ready.load(Relaxed) == ready(generation)
        && t.seen_request.load(Relaxed) == crate::probe::request())
    .then_some((t, e))
}

/// [`count`] for a thread without its record yet, after a probe's request, for an entry not set
/// up for this generation, or for a kind id beyond the first chunk.
#[cold]
#[inline(never)]
fn count_slow(kind: u16, generation: u32, arena: impl FnOnce() -> u32, op: Op) -> bool {
    let Some(t) = mine() else {
        return false;
    };
    let req = crate::probe::request();
    if t.seen_request.load(Relaxed) != req {
        // A probe (re-)attached: what this thread still holds is from an earlier session.
        t.for_each(|_, e| e.reset());
        t.seen_request.store(req, Relaxed);
    }
    let announce = announce_due(req);
    let Some(e) = t.entry(kind as usize) else {
        return announce;
    };
    if e.generation.load(Relaxed) != generation {
        e.reset();
        e.ready.store(0, Relaxed);
        e.generation.store(generation, Relaxed);
        e.arena.store(0, Relaxed);
    }
    if e.arena.load(Relaxed) == 0 {
        e.arena.store(arena().wrapping_add(1), Relaxed);
    }
    e.ready.store(ready(generation), Relaxed);
    e.add(op);
    e.event(kind, t);
    announce
}

impl Entry {
    /// Add `op` to the counts and one to the events since the last flush.
    #[inline(always)]
    fn add(&self, op: Op) {
        let c = &self.counts;
        match op {
            Op::AllocClass { requested } => {
                add16(&c.class_allocs[class_index(requested)]);
                add(&c.bytes_requested, requested as u64);
            }
            Op::FreeClass { class } => {
                if let Some(f) = c.class_frees.get(class) {
                    add16(f);
                }
            }
            Op::Free { usable } if usable <= CLASS_MAX => {
                // A block's usable size up to CLASS_MAX is its class's size.
                debug_assert_eq!(usize::from(CLASS_SIZES[class_index(usable)]), usable);
                add16(&c.class_frees[class_index(usable)]);
            }
            Op::Alloc { requested, usable } => {
                add(&c.allocs, 1);
                add(&c.bytes_requested, requested as u64);
                add(&c.bytes_allocated, usable as u64);
                add(&c.size_buckets[size_bucket(requested as u64)], 1);
            }
            Op::Free { usable } => {
                add(&c.frees, 1);
                add(&c.bytes_freed, usable as u64);
            }
            Op::Realloc {
                requested,
                old,
                new,
            } => {
                add(&c.reallocs, 1);
                add(&c.bytes_requested, requested as u64);
                add(&c.bytes_allocated, new as u64);
                add(&c.bytes_freed, old as u64);
                add(&c.size_buckets[size_bucket(requested as u64)], 1);
            }
        }
    }

    /// One more event since the last flush; the flush every `MKP_FLUSH_EVERY` events. False (the
    /// caller has nothing to announce).
    #[inline(always)]
    fn event(&self, kind: u16, t: &ThreadCounters) -> bool {
        add32(&self.events, 1);
        if self.events.load(Relaxed) >= MKP_FLUSH_EVERY {
            self.flush_events(kind, t);
        }
        false
    }

    /// The flush every `MKP_FLUSH_EVERY` events.
    #[cold]
    #[inline(never)]
    fn flush_events(&self, kind: u16, t: &ThreadCounters) {
        self.flush(kind, t.tid.load(Relaxed), flush_reason::EVENTS);
    }

    fn reset(&self) {
        self.take();
    }

    /// The counts, zeroed in the entry.
    fn take(&self) -> MkpCounters {
        let c = &self.counts;
        let mut out = MkpCounters {
            allocs: c.allocs.swap(0, Relaxed),
            frees: c.frees.swap(0, Relaxed),
            reallocs: c.reallocs.swap(0, Relaxed),
            bytes_requested: c.bytes_requested.swap(0, Relaxed),
            bytes_allocated: c.bytes_allocated.swap(0, Relaxed),
            bytes_freed: c.bytes_freed.swap(0, Relaxed),
            size_buckets: [0; MKP_SIZE_BUCKETS],
        };
        for (o, b) in out.size_buckets.iter_mut().zip(&c.size_buckets) {
            *o = b.swap(0, Relaxed);
        }
        take_classes(
            &mut out,
            &c.class_allocs,
            &c.class_frees,
            CLASS_SIZES.iter().map(|&s| u64::from(s)),
        );
        self.events.store(0, Relaxed);
        out
    }

    /// Hand the counts to the probe (nothing when there are none).
    fn flush(&self, kind: u16, tid: u32, reason: u32) {
        if self.events.load(Relaxed) == 0 {
            return;
        }
        let arena = self.arena.load(Relaxed);
        let rec = MkpFlush {
            version: MKP_VERSION,
            reason,
            kind: u32::from(kind),
            arena: if arena == 0 { MKP_NONE } else { arena - 1 },
            tid,
            pad: 0,
            delta: self.take(),
        };
        crate::probe::flush(&rec);
    }
}

/// Add per-class alloc and free counts (class `i` of `sizes`' `i`-th size) to a flush record's
/// fields, zeroing them.
fn take_classes(
    out: &mut MkpCounters,
    allocs: &[AtomicU16],
    frees: &[AtomicU16],
    sizes: impl Iterator<Item = u64>,
) {
    for ((a, f), size) in allocs.iter().zip(frees).zip(sizes) {
        let (a, f) = (u64::from(a.swap(0, Relaxed)), u64::from(f.swap(0, Relaxed)));
        out.allocs += a;
        out.bytes_allocated += a * size;
        // Every request of a class lies in the class size's bucket.
        out.size_buckets[size_bucket(size)] += a;
        out.frees += f;
        out.bytes_freed += f * size;
    }
}

/// Bins a [`MagazineCounts`] counts per class: the arena layer's magazine bins (checked there).
pub(crate) const MAG_BINS: usize = 32;

/// `MagazineCounts::session` of counts that belong to no probe session (`memkind_probe_request`
/// is 0 or a CLOCK_MONOTONIC time, never this).
const UNARMED: u64 = u64::MAX;

/// One thread's counts of one kind's small blocks (the mallocs its magazines served, the frees
/// they kept, their refills and drains), held in the arena layer's per-thread record of the kind
/// (MEMKIND_DEFAULT's too, which has a record only while a probe is attached), so the counted
/// fast path reaches them through the record it already holds: no look-up, no test of its own
/// beyond [`MagazineCounts::armed`]. Everything else a kind does is counted in the thread's
/// [`Entry`] of it; both go to the probe as deltas of the same (kind, arena), which the BPF side
/// sums.
///
/// The arena layer flushes them when [`MagazineCounts::tick`] says so (every `MKP_FLUSH_EVERY`
/// events), when it releases the record (thread exit, a changed usage policy), at kind destroy
/// and at process exit (it walks its records), with [`MagazineCounts::flush`]. The owner
/// counts with plain loads and stores (and the countdown's `decl`), as in [`Entry`]; a flush by
/// another thread (destroy, exit) reads atomics.
///
/// No `Default`: zeros would read as armed for request 0. Records start from zeroed memory and
/// are disarmed when made (`disarm`).
#[repr(C)]
pub(crate) struct MagazineCounts {
    /// The probe session (`memkind_probe_request`) the counts belong to; [`UNARMED`]: none yet.
    session: AtomicU64,
    /// Events left until the next flush.
    left: AtomicU32,
    /// The owning thread, for the flush records.
    tid: AtomicU32,
    bytes_requested: AtomicU64,
    /// Allocs of bin `i`'s class (at most `MKP_FLUSH_EVERY` between two flushes).
    allocs: [AtomicU16; MAG_BINS],
    /// Frees of bin `i`'s class.
    frees: [AtomicU16; MAG_BINS],
}

impl MagazineCounts {
    /// Empty and in no session (a new record's counts, or a fork child's).
    pub(crate) fn disarm(&self) {
        self.session.store(UNARMED, Relaxed);
        self.clear();
    }

    fn clear(&self) {
        self.left.store(MKP_FLUSH_EVERY, Relaxed);
        self.bytes_requested.store(0, Relaxed);
        for c in self.allocs.iter().chain(&self.frees) {
            c.store(0, Relaxed);
        }
    }

    /// The counts belong to the probe's current session: the counted fast path may add to them.
    #[inline(always)]
    pub(crate) fn armed(&self) -> bool {
        self.session.load(Relaxed) == crate::probe::request()
    }

    /// Join the current session (the owning thread, while a probe is attached): counts of an
    /// earlier one are dropped. True when the caller must re-announce every kind and extent
    /// (a probe asked for it, or this is the process's first counted event), as [`count`].
    #[cold]
    #[inline(never)]
    pub(crate) fn arm(&self) -> bool {
        let req = crate::probe::request();
        self.clear();
        self.tid.store(crate::probe::gettid(), Relaxed);
        self.session.store(req, Relaxed);
        announce_due(req)
    }

    /// A malloc of `requested` bytes got a block of bin `bin`'s class; [`tick`](Self::tick)
    /// next.
    #[inline(always)]
    pub(crate) fn alloc(&self, bin: usize, requested: usize) {
        if let Some(c) = self.allocs.get(bin) {
            add16(c);
        }
        add(&self.bytes_requested, requested as u64);
    }

    /// A block of bin `bin`'s class was freed; [`tick`](Self::tick) next.
    #[inline(always)]
    pub(crate) fn free(&self, bin: usize) {
        if let Some(c) = self.frees.get(bin) {
            add16(c);
        }
    }

    /// One event less until the next flush of the counts at byte `AT` of `record`; true when
    /// none are left (the caller must [`flush`](Self::flush)). One `decl` on the record's
    /// address plus a constant and one branch, in asm: the compiler would load, decrement and
    /// store to test the result, and compute the counter's address first.
    ///
    /// # Safety
    /// `record` plus `AT` is the address of a `MagazineCounts` of the calling thread.
    #[inline(always)]
    pub(crate) unsafe fn tick<const AT: usize>(record: *const u8) -> bool {
        // SAFETY: by the caller's contract the address is the thread's own counter, which this
        // decrements in place as its load and store would (a flush by another thread may race
        // with it, as with every count here); no stack use, flags clobbered as asm! assumes.
        unsafe {
            core::arch::asm!(
                "decl {off}({rec})",
                "je {due}",
                rec = in(reg) record,
                off = const AT + core::mem::offset_of!(MagazineCounts, left),
                due = label { return true; },
                options(att_syntax, nostack),
            );
        }
        false
    }

    /// Hand the counts to the probe and zero them: `kind`'s, made in `arena` (`MKP_NONE`: none
    /// known), bin `i` of class size `sizes[i]`. Counts of an earlier session are dropped
    /// instead, and nothing is sent when there are none or no probe is attached.
    pub(crate) fn flush(&self, kind: u16, arena: u32, sizes: &[u32; MAG_BINS], reason: u32) {
        if self.left.load(Relaxed) == MKP_FLUSH_EVERY {
            return;
        }
        if !self.armed() || !crate::probe::on() {
            self.clear();
            return;
        }
        let rec = MkpFlush {
            version: MKP_VERSION,
            reason,
            kind: u32::from(kind),
            arena,
            tid: self.tid.load(Relaxed),
            pad: 0,
            delta: self.take(sizes),
        };
        crate::probe::flush(&rec);
    }

    /// The counts as the flush record's fields, zeroed here (bin `i` of class size `sizes[i]`).
    fn take(&self, sizes: &[u32; MAG_BINS]) -> MkpCounters {
        let mut delta = MkpCounters {
            bytes_requested: self.bytes_requested.swap(0, Relaxed),
            ..MkpCounters::default()
        };
        take_classes(
            &mut delta,
            &self.allocs,
            &self.frees,
            sizes.iter().map(|&s| u64::from(s)),
        );
        self.left.store(MKP_FLUSH_EVERY, Relaxed);
        delta
    }
}

impl ThreadCounters {
    /// The entry of kind id `id`, allocating its chunk on first use (None: out of memory or an
    /// id beyond the table).
    fn entry(&self, id: usize) -> Option<&Entry> {
        let (c, i) = (id / CHUNK, id % CHUNK);
        if c == 0 {
            return self.first.get(i);
        }
        let slot = self.more.get(c - 1)?;
        let mut p = slot.load(Relaxed);
        if p.is_null() {
            // SAFETY: calloc of one chunk; all-zero bytes are valid atomics (empty entries).
            p = unsafe { libc::calloc(1, core::mem::size_of::<Chunk>()) }.cast();
            if p.is_null() {
                return None;
            }
            slot.store(p, Relaxed);
        }
        // SAFETY: a chunk of this record, freed only with the record.
        unsafe { (*p).get(i) }
    }

    /// Call `f(id, entry)` for every entry that exists.
    fn for_each(&self, mut f: impl FnMut(u16, &Entry)) {
        for (i, e) in self.first.iter().enumerate() {
            f(i as u16, e);
        }
        for (c, slot) in self.more.iter().enumerate() {
            let p = slot.load(Relaxed);
            if p.is_null() {
                continue;
            }
            // SAFETY: as in `entry`.
            for (i, e) in unsafe { (*p).iter() }.enumerate() {
                f(((c + 1) * CHUNK + i) as u16, e);
            }
        }
    }

    /// Flush every entry with counts.
    fn flush_all(&self, reason: u32) {
        let tid = self.tid.load(Relaxed);
        self.for_each(|id, e| e.flush(id, tid, reason));
    }
}

/// This thread's record, made on first use (None: out of memory, or the thread is exiting and
/// its record was already given back this round).
fn mine() -> Option<&'static ThreadCounters> {
    let p = MINE.with(Cell::get);
    if !p.is_null() {
        // SAFETY: this thread's record, alive until its exit destructor.
        return Some(unsafe { &*p });
    }
    // SAFETY: calloc of one record; all-zero bytes are a valid record (empty entries, null
    // links and chunks).
    let p: *mut ThreadCounters =
        unsafe { libc::calloc(1, core::mem::size_of::<ThreadCounters>()) }.cast();
    if p.is_null() {
        return None;
    }
    // SAFETY: a fresh record, not yet shared.
    let t = unsafe { &mut *p };
    t.tid.store(crate::probe::gettid(), Relaxed);
    t.seen_request.store(crate::probe::request(), Relaxed);
    {
        let mut list = LIST.lock();
        t.next = list.0;
        list.0 = p;
    }
    MINE.with(|m| m.set(p));
    let key = *KEY.get_or_init(|| {
        let mut k: libc::pthread_key_t = 0;
        // SAFETY: writes the key; the destructor never unwinds.
        unsafe { libc::pthread_key_create(&mut k, Some(on_thread_exit)) };
        k
    });
    // SAFETY: any non-null value makes the destructor run at thread exit.
    unsafe { libc::pthread_setspecific(key, p.cast()) };
    Some(t)
}

static KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();

/// Unlink `p` from the list (lock held) and free it with its chunks.
///
/// # Safety
/// `p` is a record in the list whose thread no longer uses it; `list` is the locked list.
unsafe fn release(list: &mut List, p: *mut ThreadCounters) {
    let mut link: *mut *mut ThreadCounters = &mut list.0;
    // SAFETY: walking the list under its lock; every node is a live record. `p` is then freed
    // once, its chunks with it.
    unsafe {
        while !(*link).is_null() {
            if *link == p {
                *link = (*p).next;
                break;
            }
            link = &mut (**link).next;
        }
        for c in (*p).more.iter() {
            let q = c.load(Relaxed);
            if !q.is_null() {
                libc::free(q.cast());
            }
        }
        libc::free(p.cast());
    }
}

/// pthread key destructor: flush this thread's counts and give its record back.
unsafe extern "C" fn on_thread_exit(p: *mut c_void) {
    let p: *mut ThreadCounters = p.cast();
    MINE.with(|m| m.set(null_mut()));
    if p.is_null() {
        return;
    }
    // SAFETY: the exiting thread's own record.
    let t = unsafe { &*p };
    if crate::probe::on() {
        t.flush_all(flush_reason::THREAD_EXIT);
    }
    let mut list = LIST.lock();
    // SAFETY: in the list; its thread is exiting and has forgotten it (MINE cleared above).
    unsafe { release(&mut list, p) };
}

/// Flush every thread's counts of kind `id` (it is being destroyed).
pub(crate) fn flush_kind(id: u16) {
    if !crate::probe::on() {
        return;
    }
    let list = LIST.lock();
    let mut p = list.0;
    while !p.is_null() {
        // SAFETY: a live record in the locked list.
        let t = unsafe { &*p };
        if let Some(e) = t.entry(id as usize) {
            e.flush(id, t.tid.load(Relaxed), flush_reason::KIND_DESTROY);
        }
        p = t.next;
    }
}

/// At process exit: flush every thread's counts.
extern "C" fn at_exit() {
    if !crate::probe::on() {
        return;
    }
    let list = LIST.lock();
    let mut p = list.0;
    while !p.is_null() {
        // SAFETY: a live record in the locked list.
        let t = unsafe { &*p };
        t.flush_all(flush_reason::PROCESS_EXIT);
        p = t.next;
    }
}

/// Runs [`at_exit`] when the process exits (or the library is unloaded), after the program's
/// own `atexit` handlers.
#[used]
#[unsafe(link_section = ".fini_array")]
static AT_EXIT: extern "C" fn() = at_exit;

/// In a fork child, with [`LIST`] held since the prepare handler: the counts are the parent's
/// (it flushes them itself), only the forking thread lives on in the child, and the child
/// announces what it inherited.
pub(crate) fn fork_child_locked(list: &mut List) {
    // The child is a new process to the probe: its first counted event re-announces the kinds
    // and the extents it inherited.
    ANNOUNCED.store(u64::MAX, Relaxed);
    let me = MINE.with(Cell::get);
    let mut p = list.0;
    while !p.is_null() {
        // SAFETY: a live record in the list, which the caller holds locked.
        let next = unsafe { (*p).next };
        if p == me {
            // SAFETY: as above.
            let t = unsafe { &*p };
            t.for_each(|_, e| e.reset());
            // Not the current request: the child's next counted event takes `count_slow`,
            // which announces (the fast path does not look at ANNOUNCED).
            t.seen_request
                .store(crate::probe::request().wrapping_add(1), Relaxed);
            t.tid.store(crate::probe::gettid(), Relaxed);
        } else {
            // SAFETY: the record of a thread that does not exist in the child.
            unsafe { release(list, p) };
        }
        p = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_count_and_take() {
        let e = Entry::default();
        add(&e.counts.allocs, 2);
        add(&e.counts.size_buckets[3], 1);
        e.events.store(3, Relaxed);
        let c = e.take();
        assert_eq!(c.allocs, 2);
        assert_eq!(c.size_buckets[3], 1);
        assert_eq!(e.take(), MkpCounters::default());
        assert_eq!(e.events.load(Relaxed), 0);
    }

    #[test]
    fn class_counts_become_the_records_fields() {
        let e = Entry::default();
        for requested in [1, 16, 17, 100, 4096] {
            e.add(Op::AllocClass { requested });
        }
        for usable in [16, 112, 4096, 8192] {
            e.add(Op::Free { usable });
        }
        e.add(Op::Alloc {
            requested: 5000,
            usable: 5120,
        });
        let c = e.take();
        assert_eq!(c.allocs, 6);
        assert_eq!(c.bytes_requested, 1 + 16 + 17 + 100 + 4096 + 5000);
        assert_eq!(c.bytes_allocated, 8 + 16 + 32 + 112 + 4096 + 5120);
        assert_eq!(c.frees, 4);
        assert_eq!(c.bytes_freed, 16 + 112 + 4096 + 8192);
        let mut buckets = [0; MKP_SIZE_BUCKETS];
        for n in [1u64, 16, 17, 100, 4096, 5000] {
            buckets[size_bucket(n)] += 1;
        }
        assert_eq!(c.size_buckets, buckets);
        assert_eq!(e.events.load(Relaxed), 0);
    }

    /// Every request of a class lies in the bucket of the class's size (what `take` relies on).
    #[test]
    fn a_class_is_one_size_bucket() {
        for n in 1..=CLASS_MAX {
            assert_eq!(
                size_bucket(n as u64),
                size_bucket(class_size(n) as u64),
                "{n}"
            );
            assert_eq!(
                usize::from(CLASS_SIZES[class_index(n)]),
                class_size(n),
                "{n}"
            );
        }
    }

    /// A record's magazine counts: armed for the current session only, a flush due every
    /// `MKP_FLUSH_EVERY` events, bins become the record's fields by their class sizes, and a
    /// flush without a probe attached drops them.
    #[test]
    fn magazine_counts() {
        // SAFETY: all-zero bytes are valid atomics; disarmed at once, as a new record's are.
        let c: MagazineCounts = unsafe { core::mem::zeroed() };
        c.disarm();
        assert!(!c.armed(), "a new record's counts are in no session");
        let _ = c.arm();
        assert!(c.armed());
        let at = |c: &MagazineCounts| (c as *const MagazineCounts).cast::<u8>();
        let mut sizes = [0u32; MAG_BINS];
        for (i, s) in sizes.iter_mut().enumerate().take(NCLASS) {
            *s = CLASS_SIZES[i].into();
        }
        let mut due = 0;
        for (bin, requested) in [(0, 1), (0, 8), (1, 9), (1, 16), (28, 4000)] {
            c.alloc(bin, requested);
            // SAFETY: `c` is this thread's counts.
            due += usize::from(unsafe { MagazineCounts::tick::<0>(at(&c)) });
        }
        for bin in [1, 28] {
            c.free(bin);
            // SAFETY: as above.
            due += usize::from(unsafe { MagazineCounts::tick::<0>(at(&c)) });
        }
        assert_eq!(due, 0);
        assert_eq!(c.left.load(Relaxed), MKP_FLUSH_EVERY - 7);
        let d = c.take(&sizes);
        assert_eq!((d.allocs, d.frees, d.reallocs), (5, 2, 0));
        assert_eq!(d.bytes_requested, 1 + 8 + 9 + 16 + 4000);
        assert_eq!(d.bytes_allocated, 8 + 8 + 16 + 16 + 4096);
        assert_eq!(d.bytes_freed, 16 + 4096);
        let mut buckets = [0; MKP_SIZE_BUCKETS];
        for n in [1u64, 8, 9, 16, 4000] {
            buckets[size_bucket(n)] += 1;
        }
        assert_eq!(d.size_buckets, buckets);
        assert_eq!(c.take(&sizes), MkpCounters::default(), "taken: zeroed");
        // A flush is due at the MKP_FLUSH_EVERY-th event.
        let ticks = (1..=MKP_FLUSH_EVERY)
            // SAFETY: as above.
            .map(|_| unsafe { MagazineCounts::tick::<0>(at(&c)) })
            .collect::<Vec<_>>();
        assert_eq!(ticks.iter().filter(|&&t| t).count(), 1);
        assert!(ticks[MKP_FLUSH_EVERY as usize - 1]);
        // No probe attached in unit tests: a flush drops the counts.
        c.alloc(3, 40);
        c.flush(7, 0, &sizes, flush_reason::EVENTS);
        assert_eq!(c.take(&sizes), MkpCounters::default());
        assert!(!crate::probe::on());
    }

    #[test]
    fn high_ids_get_chunks() {
        let t = mine().expect("record");
        assert!(t.entry(5).is_some());
        assert!(t.entry(CHUNK * 3 + 1).is_some());
        assert!(!t.more[2].load(Relaxed).is_null());
        assert!(t.more[0].load(Relaxed).is_null());
        assert!(t.entry(MAX_IDS).is_none());
        let mut seen = 0;
        t.for_each(|_, _| seen += 1);
        assert_eq!(seen, 2 * CHUNK);
    }
}
