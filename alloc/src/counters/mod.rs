//! Counters per kind slot, below the kinds: every kind's bookkeeping that its allocation paths
//! and its destruction share, in static memory (nothing here allocates or locks, so the paths
//! that count may run under an interposed `malloc` or inside an extent hook).
//!
//! - the memtier byte counters ([`Counters`], `memtier_kind_allocated_size`): 1.14's thread
//!   buckets, below;
//! - the outstanding blocks of each non-default kind ([`outstanding`]), which decide whether a
//!   destroyed PMEM kind keeps its mappings.
//!
//! - the probe's per-thread counters per kind and arena ([`thread`]), kept only while a probe is
//!   attached and flushed to it through `memkind_arena_stats_flush`.
//!
//! A dynamic kind's slot starts again from zero when the kind is destroyed ([`reset`], the one
//! reset: the probe's counts of the kind are flushed first, by the arena layer's destroy).
//!
//! # Memtier byte counters
//!
//! Per kind, as 1.14: 256 buckets chosen by a hash of the calling thread (SplitMix64 of
//! `pthread_self()`), each flushed into the kind's global counter once an increment leaves it
//! above 50 KiB, or a decrement leaves it outside [-50 KiB, 0) (1.14's unsigned comparisons).
//! See [`crate::memtier`] for how the policies read them.
//!
//! Two differences from 1.14's layout keep threads from writing one cache line: the global
//! counter has a line of its own (1.14's sit side by side, and next to the buckets), and a
//! flush that would add nothing (a decrement leaving its bucket at exactly 0, which 1.14's
//! unsigned comparison flushes: every free of a malloc/free pair) writes nothing, so pairs from
//! several threads do not all write the kind's global counter. The global counter never differs
//! from 1.14's: adding 0 does not change it.

pub(crate) mod thread;

use core::sync::atomic::{AtomicI64, AtomicIsize, AtomicU64, Ordering};

/// Kind slots: the static kinds plus room for 1030 dynamic kinds at once (memkind 1.14 allows
/// 512 in all and in practice stops at 14-29 PMEM kinds). Every per-kind table has this many
/// entries, indexed by kind id.
pub const MAX_KINDS: usize = 1056;

/// Buckets per kind (1.14's `THREAD_BUCKETS`).
pub const BUCKETS: usize = 256;
/// A bucket is flushed into the global counter past this many bytes (1.14's `FLUSH_THRESHOLD`).
pub const FLUSH_THRESHOLD: i64 = 51_200;

/// A value alone in its cache line (the alignment rounds the size up to 64 bytes).
#[repr(align(64))]
pub(crate) struct CacheLine<T>(pub(crate) T);

/// The byte counters of one kind.
pub struct Counters {
    /// Read by every STATIC_RATIO allocation; written only by flushes.
    global: CacheLine<AtomicU64>,
    buckets: [AtomicI64; BUCKETS],
}

/// SplitMix64's finaliser, reduced to a bucket index.
pub(crate) fn bucket_of(thread: u64) -> usize {
    let mut x = thread.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) as usize & (BUCKETS - 1)
}

/// The calling thread's bucket.
#[inline]
fn bucket() -> usize {
    bucket_of(crate::sys::thread_self())
}

/// The calling thread's stripe among `n` (a power of two): `pthread_t` is the thread's control
/// block address, and glibc places consecutive threads' blocks 0x801000 apart (default
/// stacks), so after dropping the low 12 bits they land in consecutive stripes (1.14 picks its
/// arenas by the same rule). A shift and a mask: cheaper than the buckets' hash.
#[inline(always)]
pub(crate) fn thread_stripe(n: usize) -> usize {
    stripe_of(crate::sys::thread_self(), n)
}

/// [`thread_stripe`] of the thread whose `pthread_t` is `thread`.
#[inline(always)]
pub(crate) fn stripe_of(thread: u64, n: usize) -> usize {
    (thread >> 12) as usize & (n - 1)
}

impl Counters {
    /// All zero.
    pub const fn new() -> Counters {
        Counters {
            global: CacheLine(AtomicU64::new(0)),
            buckets: [const { AtomicI64::new(0) }; BUCKETS],
        }
    }

    /// `bytes` more in the kind (the calling thread's bucket).
    #[inline]
    pub fn add(&self, bytes: usize) {
        self.add_in(bucket(), bytes)
    }

    /// [`Counters::add`] for the calling thread `thread` (its `pthread_t`, from
    /// [`crate::sys::thread_self`]), when the caller has it already.
    #[inline]
    pub fn add_by(&self, thread: u64, bytes: usize) {
        self.add_in(bucket_of(thread), bytes)
    }

    /// `bytes` fewer in the kind (the calling thread's bucket).
    #[inline]
    pub fn sub(&self, bytes: usize) {
        self.sub_in(bucket(), bytes)
    }

    pub(crate) fn add_in(&self, b: usize, bytes: usize) {
        let Some(cell) = self.buckets.get(b) else {
            return;
        };
        let d = bytes as i64;
        let now = cell.fetch_add(d, Ordering::Relaxed).wrapping_add(d);
        // Unsigned, as 1.14: a negative bucket is flushed too.
        if now as u64 > FLUSH_THRESHOLD as u64 {
            self.flush(cell);
        }
    }

    pub(crate) fn sub_in(&self, b: usize, bytes: usize) {
        let Some(cell) = self.buckets.get(b) else {
            return;
        };
        let d = bytes as i64;
        let now = cell.fetch_sub(d, Ordering::Relaxed).wrapping_sub(d);
        // Unsigned, as 1.14: only a bucket in [-FLUSH_THRESHOLD, 0) stays. A bucket left at 0
        // has nothing to flush (a thread sharing it that added meanwhile flushes its own bytes
        // when they pass the threshold, as it would have anyway).
        if (now as u64) < (-FLUSH_THRESHOLD) as u64 && now != 0 {
            self.flush(cell);
        }
    }

    fn flush(&self, cell: &AtomicI64) {
        let v = cell.swap(0, Ordering::Relaxed);
        if v != 0 {
            self.global.0.fetch_add(v as u64, Ordering::Relaxed);
        }
    }

    /// The global counter: what the policies see.
    #[inline]
    pub fn flushed(&self) -> u64 {
        self.global.0.load(Ordering::Relaxed)
    }

    /// Drain every bucket into the global counter and return it (`memtier_kind_allocated_size`).
    /// Buckets at zero are only read (nothing to drain), so a kind never counted stays
    /// untouched memory.
    pub fn total(&self) -> u64 {
        let drained = self.buckets.iter().fold(0u64, |acc, b| {
            if b.load(Ordering::Relaxed) == 0 {
                return acc;
            }
            acc.wrapping_add(b.swap(0, Ordering::Relaxed) as u64)
        });
        if drained == 0 {
            return self.global.0.load(Ordering::Relaxed);
        }
        self.global
            .0
            .fetch_add(drained, Ordering::Relaxed)
            .wrapping_add(drained)
    }

    /// Zero everything (cells already at zero are only read).
    pub(crate) fn reset(&self) {
        for cell in self.buckets.iter() {
            if cell.load(Ordering::Relaxed) != 0 {
                cell.store(0, Ordering::Relaxed);
            }
        }
        if self.global.0.load(Ordering::Relaxed) != 0 {
            self.global.0.store(0, Ordering::Relaxed);
        }
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters::new()
    }
}

/// Per kind slot, in `.bss` (about 2.2 MiB, paged in only where touched). No allocation: under
/// `LD_PRELOAD=libmemtier.so.0` every malloc is a `memtier_malloc`, which counts its block here.
pub(crate) static COUNTERS: [Counters; MAX_KINDS] = [const { Counters::new() }; MAX_KINDS];

/// The memtier byte counters of kind slot `id`.
#[inline]
pub fn bytes(id: u16) -> &'static Counters {
    static SPARE: Counters = Counters::new();
    // Not `None`: kind ids index the registry, of MAX_KINDS slots.
    COUNTERS.get(id as usize).unwrap_or(&SPARE)
}

// --- outstanding blocks ------------------------------------------------------------------------

/// Blocks of each non-default kind taken from jemalloc and not yet given back: what the
/// program holds plus what sits in the per-thread magazines. Counted where blocks cross the
/// jemalloc boundary (magazine refills and drains, uncached large blocks), so the small-block
/// fast paths do not touch it. Destroying a kind's arenas drains every magazine first; what is
/// left is held by the program.
///
/// Every large block (above the magazines' 4 KiB) is counted at its malloc and its free, from
/// whichever thread makes the call, so the counts are striped by thread: a thread adds to the
/// row of its stripe only, and rows are [`STRIPE_BYTES`] apart (a whole number of cache lines),
/// so threads in different stripes never write the same line (one shared counter per kind made
/// two threads allocating 64 KiB blocks of one kind write one cache line at every call). A
/// block may be counted in one row and uncounted in another; the kind's count is the sum of
/// its entries in all rows, which [`take_outstanding`] takes while the kind is not in use.
#[repr(C, align(64))]
struct Outstanding([[AtomicIsize; MAX_KINDS]; STRIPES]);

/// Rows of [`Outstanding`].
const STRIPES: usize = 16;
/// Distance between two rows: MAX_KINDS counters, a multiple of 64 bytes.
const STRIPE_BYTES: usize = MAX_KINDS * core::mem::size_of::<AtomicIsize>();
const _: () = assert!(
    STRIPE_BYTES.is_multiple_of(64),
    "rows start on cache-line boundaries"
);

static OUTSTANDING: Outstanding =
    Outstanding([const { [const { AtomicIsize::new(0) }; MAX_KINDS] }; STRIPES]);

/// The calling thread's row.
#[inline(always)]
fn stripe() -> usize {
    thread_stripe(STRIPES)
}

/// Add `n` (negative: given back) to kind `id`'s outstanding blocks.
#[inline(always)]
pub(crate) fn outstanding(id: u16, n: isize) {
    if let Some(c) = OUTSTANDING
        .0
        .get(stripe())
        .and_then(|row| row.get(id as usize))
    {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Kind `id`'s arenas are destroyed: its outstanding count (summed over the rows), which starts
/// again from zero. Exact when no thread allocates from or frees to the kind meanwhile
/// (memkind's contract for a destroy).
pub(crate) fn take_outstanding(id: u16) -> isize {
    OUTSTANDING
        .0
        .iter()
        .filter_map(|row| row.get(id as usize))
        .fold(0isize, |acc, c| {
            if c.load(Ordering::Relaxed) == 0 {
                acc
            } else {
                acc.wrapping_add(c.swap(0, Ordering::AcqRel))
            }
        })
}

/// Kind slot `id` is destroyed: every counter of the slot starts again from zero (for memtier,
/// as 1.14's `memtier_reset_size`).
pub(crate) fn reset(id: u16) {
    bytes(id).reset();
    let _ = take_outstanding(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outstanding_blocks_sum_over_the_threads_rows() {
        // A kind slot no other test uses (the last one).
        let id = (MAX_KINDS - 1) as u16;
        let _ = take_outstanding(id);
        outstanding(id, 3);
        std::thread::spawn(move || outstanding(id, -1))
            .join()
            .unwrap();
        std::thread::spawn(move || outstanding(id, 5))
            .join()
            .unwrap();
        assert_eq!(take_outstanding(id), 7);
        assert_eq!(take_outstanding(id), 0, "taking resets every row");
    }

    #[test]
    fn buckets_are_a_stable_hash_of_the_thread() {
        assert_eq!(bucket_of(12345), bucket_of(12345));
        let spread: std::collections::BTreeSet<usize> = (0..4096u64).map(bucket_of).collect();
        assert!(
            spread.len() > 200,
            "SplitMix64 spreads threads over the buckets"
        );
        assert!(spread.iter().all(|&b| b < BUCKETS));
    }

    #[test]
    fn increments_reach_the_global_counter_past_the_flush_threshold() {
        let c = Counters::new();
        for _ in 0..50 {
            c.add_in(3, 1024);
        }
        assert_eq!(c.flushed(), 0, "51200 bytes stay in the bucket");
        c.add_in(3, 1);
        assert_eq!(c.flushed(), 51_201, "one more byte flushes it");
        c.add_in(3, 100);
        assert_eq!(c.flushed(), 51_201);
        assert_eq!(c.total(), 51_301, "total drains every bucket");
        assert_eq!(c.flushed(), 51_301);
    }

    #[test]
    fn decrements_flush_unless_the_bucket_is_slightly_negative() {
        let c = Counters::new();
        c.add_in(0, 60_000); // flushed: global 60000
        c.sub_in(1, 100); // bucket 1 at -100: stays
        assert_eq!(c.flushed(), 60_000);
        c.add_in(2, 500); // bucket 2 at 500
        c.sub_in(2, 100); // 400 ≥ 0: flushed (1.14's unsigned comparison)
        assert_eq!(c.flushed(), 60_400);
        c.sub_in(1, 51_200); // -51300 < -51200: flushed
        assert_eq!(c.flushed(), 60_400 - 51_300);
        c.add_in(4, 10); // an increment leaving a bucket negative is flushed too
        c.sub_in(5, 20);
        c.add_in(5, 5); // -15 → flushed as a huge unsigned
        assert_eq!(c.flushed(), 60_400 - 51_300 - 15);
        assert_eq!(c.total(), 60_400 - 51_300 - 15 + 10);
    }

    #[test]
    fn counters_wrap_like_size_t() {
        let c = Counters::new();
        c.sub_in(0, 60_000);
        assert_eq!(c.flushed(), (-60_000i64) as u64);
        c.add_in(1, 60_000);
        assert_eq!(c.total(), 0);
        c.reset();
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn concurrent_updates_are_never_lost() {
        let c: &'static Counters = Box::leak(Box::new(Counters::new()));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..20_000usize {
                        c.add(16 + (i % 7) * 8);
                        if i % 3 == 0 {
                            c.sub(16 + (i % 7) * 8);
                        }
                        let _ = t;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let per_thread: usize = (0..20_000usize)
            .filter(|i| i % 3 != 0)
            .map(|i| 16 + (i % 7) * 8)
            .sum();
        assert_eq!(c.total(), 8 * per_thread as u64);
    }
}
