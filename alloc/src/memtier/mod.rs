//! memtier (memkind_memtier.h): a *memory* made of several kinds ("tiers"), each allocation sent
//! to one tier by a policy, and the per-kind byte counters the policies read.
//!
//! Like memkind 1.14's, memtier sits on top of the memkind API: the C entry points
//! (`ffi::memtier`) allocate with `memkind_*` and report the usable size of every block to the
//! per-kind counters (`crate::counters`). This module holds the logic: builders (`builder.rs`,
//! with `memtier_ctl_set`'s name parser), memories and their policies (`memory.rs`), and the
//! tables that validate handles from C (`handles.rs`).
//!
//! # Counters
//!
//! Per kind, as 1.14: 256 buckets chosen by a hash of the calling thread (SplitMix64 of
//! `pthread_self()`), each flushed into the kind's global counter once an increment leaves it
//! above 50 KiB, or a decrement leaves it outside [-50 KiB, 0) (1.14's unsigned comparisons).
//! The policies read only the global counters, so their view lags the truth by less than
//! 50 KiB per bucket in use; [`allocated_size`] (`memtier_kind_allocated_size`) drains every
//! bucket first and is exact whenever no allocation runs at the same moment. All arithmetic is
//! 1.14's (wrapping, same thresholds, same flush points), so a single-threaded program sees the
//! same tier decisions with both libraries. Concurrent threads never lose an update (every step
//! is one atomic operation); only the moment at which a bucket reaches the global counter
//! varies, exactly as in 1.14.
//!
//! Counters are per kind, not per memory: two memories sharing a kind see each other's bytes,
//! and `memtier_kind_*` allocations count too (1.14's design). They are reset when a dynamic
//! kind is destroyed (PMEM, fixed), so a reused slot starts at zero.
//!
//! # Policies
//!
//! * STATIC_RATIO: tier *i* has the normalised ratio `r0 / ri`. An allocation goes to the last
//!   tier *i* with `flushed(tier 0) > flushed(tier i) × r0 / ri`, tier 0 when there is none:
//!   the tiers' bytes converge to `r0 : r1 : …`. One tier: always that tier.
//! * DYNAMIC_THRESHOLD: `n` tiers have `n - 1` size thresholds; an allocation of `size` goes to
//!   the first tier whose threshold is above `size` (the last tier otherwise). Every `check_cnt`
//!   operations the thresholds move by `degree` × their value (within their [min, max]) where
//!   the observed ratio of two neighbouring tiers strays from the configured one by more than
//!   `trigger` and is not improving.
//!
//! Ratios are floats, as in 1.14, and ratio 0 is accepted: the normalised ratios and the
//! expected threshold ratios are then 0, ∞ or NaN, and the comparisons above decide as 1.14's
//! do (NaN compares false). No float is converted to an integer except by `float_to_size`'s
//! explicit rule, so nothing traps or panics.
//!
//! # Handles, allocation and concurrency
//!
//! Builders and memories live in two tables of [`MAX_HANDLES`] slots ([`Handles`]); a handle is
//! a slot's address, validated before use. Slots are reused next-fit (a rotating cursor), so a
//! deleted handle stays invalid across the following creations instead of naming the next
//! object at once. Nothing here aborts on OOM: the tables, a builder's tiers and a memory's
//! arrays are allocated fallibly (NULL or -1 in C), and the counters are a static array, so
//! counting a block never allocates (`LD_PRELOAD=libmemtier.so.0` turns every malloc into a
//! `memtier_malloc`).
//!
//! The C contract forbids using one builder from two threads at once. Each builder call takes
//! the builder out of its slot with `try_lock` and puts it back when done ([`BuilderSlot`]): a
//! call that overlaps another on the same builder fails (-1 / NULL) instead of waiting, nothing
//! is allocated under the lock, and a builder in use by another thread when the process forks
//! is unusable in the child (its calls fail) instead of deadlocking it. Memories have no lock
//! (their state is atomic).

use crate::kind::Kind;

// --- counters ----------------------------------------------------------------------------------

pub use crate::counters::Counters;

/// The byte counters of `kind` (they live in [`crate::counters`], with the kind's other counters).
#[inline]
pub fn counters(kind: &Kind) -> &'static Counters {
    crate::counters::bytes(kind.id())
}

/// The calling thread's `pthread_t`, for the `*_by` functions (one call where a memtier
/// operation needs the thread twice: its counter bucket and its countdown stripe).
#[inline]
pub fn thread() -> u64 {
    crate::sys::thread_self()
}

/// `memtier_kind_allocated_size(kind)`: bytes (usable sizes) allocated in `kind` through the
/// memtier API and not freed.
pub fn allocated_size(kind: &Kind) -> usize {
    counters(kind).total() as usize
}

mod builder;
mod handles;
mod memory;
pub(crate) use builder::*;
pub(crate) use handles::*;
pub(crate) use memory::*;

#[cfg(test)]
mod tests;
