//! Memories and their policies (STATIC_RATIO, DYNAMIC_THRESHOLD).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use super::*;
use crate::counters::CacheLine;

/// A tier of a memory.
pub(super) struct Tier {
    pub(super) kind: &'static Kind,
    pub(super) counters: &'static Counters,
    /// Normalised ratio: 1 for tier 0, `r0 / ri` for tier i.
    pub(super) ratio: f32,
}

/// A threshold of a memory: the value moves, the range does not.
pub(super) struct Threshold {
    pub(super) val: AtomicUsize,
    pub(super) min: usize,
    pub(super) max: usize,
    /// Configured ratio of the upper tier's bytes to the lower tier's.
    pub(super) expected: f32,
    /// Distance of the observed ratio from `expected` at the last check (f32 bits).
    pub(super) diff: AtomicU32,
}

/// Countdowns of a DYNAMIC_THRESHOLD memory: one per stripe of threads.
pub(super) const STRIPES: usize = 16;

/// DYNAMIC_THRESHOLD state of a memory.
pub(super) struct Thresholds {
    pub(super) list: Box<[Threshold]>,
    /// Operations until the next check (wrapping, as 1.14: `check_cnt` 0 means 2^32), one
    /// countdown per stripe of threads, each in a cache line of its own: a thread counts in the
    /// stripe of its `pthread_t` ([`crate::counters::thread_stripe`]). 1.14 has one
    /// counter in the memory, decremented without atomicity by every thread, so two threads
    /// allocating from one memory write the same cache line at every operation (and lose
    /// decrements). Here one thread checks every `check_cnt` of its operations exactly as 1.14
    /// does; threads in different stripes each check every `check_cnt` of their own (1.14:
    /// every `check_cnt` operations of all threads, minus the lost decrements). Threads sharing
    /// a stripe decrement it as 1.14's threads do theirs (a load and a store).
    pub(super) countdown: Box<[CacheLine<AtomicU32>]>,
    pub(super) check_cnt: u32,
    pub(super) trigger: f32,
    pub(super) degree: f32,
    /// Held by the one thread moving the thresholds. In a cache line of its own: taken and
    /// released at every check, it would otherwise invalidate the line of the fields above,
    /// which every operation of every thread reads.
    pub(super) adjusting: CacheLine<AtomicBool>,
}

pub(super) enum Route {
    Single,
    StaticRatio,
    DynamicThreshold(Thresholds),
}

/// `struct memtier_memory`.
pub struct Memory {
    pub(super) tiers: Box<[Tier]>,
    pub(super) route: Route,
}

/// STATIC_RATIO's choice: `tiers` yields (flushed bytes, normalised ratio) from tier 0 on; the
/// last tier `i` with `bytes(0) > bytes(i) × ratio(i)`, else 0 (1.14's float arithmetic).
pub fn pick_by_ratio(mut tiers: impl Iterator<Item = (u64, f32)>) -> usize {
    let Some((first, _)) = tiers.next() else {
        return 0;
    };
    let first = first as f32;
    let mut dest = 0;
    for (i, (bytes, ratio)) in tiers.enumerate() {
        if first > bytes as f32 * ratio {
            dest = i + 1;
        }
    }
    dest
}

/// DYNAMIC_THRESHOLD's choice: the first tier whose threshold is above `size`, else the last.
pub fn pick_by_threshold(size: usize, thresholds: impl Iterator<Item = usize>) -> usize {
    let mut i = 0;
    for t in thresholds {
        if size < t {
            return i;
        }
        i += 1;
    }
    i
}

/// `(size_t)x` for a float, as x86-64 code generated for 1.14 computes it (cvttss2si, with the
/// 2^63 adjustment; NaN and out-of-range give 2^63, negative values wrap).
pub(super) fn float_to_size(x: f32) -> usize {
    const TWO_63: f32 = 9_223_372_036_854_775_808.0;
    fn cvtt(x: f32) -> u64 {
        if x.is_nan() || !(-TWO_63..TWO_63).contains(&x) {
            1 << 63
        } else {
            x as i64 as u64
        }
    }
    if x >= TWO_63 {
        (cvtt(x - TWO_63) ^ (1 << 63)) as usize
    } else {
        cvtt(x) as usize
    }
}

impl Thresholds {
    fn pick(&self, size: usize) -> usize {
        pick_by_threshold(
            size,
            self.list.iter().map(|t| t.val.load(Ordering::Relaxed)),
        )
    }

    /// Called after every operation on the memory; every `check_cnt` calls, one thread moves
    /// the thresholds.
    fn tick(&self, tiers: &[Tier], thread: u64) {
        let stripe = crate::counters::stripe_of(thread, STRIPES);
        let Some(CacheLine(countdown)) = self.countdown.get(stripe) else {
            return; // not reached: STRIPES countdowns
        };
        let left = countdown.load(Ordering::Relaxed).wrapping_sub(1);
        if left != 0 {
            countdown.store(left, Ordering::Relaxed);
            return;
        }
        if !self.adjusting.0.swap(true, Ordering::Acquire) {
            self.adjust(|i| tiers.get(i).map_or(0, |t| t.counters.flushed()));
            self.adjusting.0.store(false, Ordering::Release);
        }
        countdown.store(self.check_cnt, Ordering::Relaxed);
    }

    /// One check (1.14's `memtier_policy_dynamic_threshold_update_config`): for each pair of
    /// neighbouring tiers with bytes `prev` (lower) and `next`, the observed ratio `next / prev`
    /// is compared with the configured one. When it is off by `trigger` or more and not closer
    /// than at the last check, the threshold moves by ⌈val × degree⌉: up (more goes to the lower
    /// tier) when the upper tier has too much, down otherwise; a move that would leave
    /// [min, max] is not made. A lower tier without bytes moves the threshold up.
    pub(super) fn adjust(&self, bytes: impl Fn(usize) -> u64) {
        for (i, t) in self.list.iter().enumerate() {
            let prev = bytes(i);
            let next = bytes(i + 1);
            let val = t.val.load(Ordering::Relaxed);
            let mut current = -1.0f32;
            if prev > 0 {
                current = next as f32 / prev as f32;
                let last = f32::from_bits(t.diff.load(Ordering::Relaxed));
                let diff = (current - t.expected).abs();
                // Written only when it changed: the threshold's line is read by every
                // operation of every thread, and the tiers' bytes (flushed in 50 KiB steps)
                // mostly stay the same from one check to the next.
                if diff.to_bits() != t.diff.load(Ordering::Relaxed) {
                    t.diff.store(diff.to_bits(), Ordering::Relaxed);
                }
                if diff < self.trigger || diff < last {
                    continue;
                }
            }
            let step = float_to_size((val as f32 * self.degree).ceil());
            if prev == 0 || current > t.expected {
                let up = val.wrapping_add(step);
                if up <= t.max {
                    t.val.store(up, Ordering::Relaxed);
                }
            } else {
                // Wrapping, as 1.14 (a degree above 1 can wrap below zero).
                let down = val.wrapping_sub(step);
                if down >= t.min {
                    t.val.store(down, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Memory {
    /// The kind the next allocation of `size` bytes goes to.
    #[inline]
    pub fn kind_for(&self, size: usize) -> &'static Kind {
        let i = match &self.route {
            Route::Single => 0,
            Route::StaticRatio => {
                pick_by_ratio(self.tiers.iter().map(|t| (t.counters.flushed(), t.ratio)))
            }
            Route::DynamicThreshold(th) => th.pick(size),
        };
        match self.tiers.get(i).or(self.tiers.first()) {
            Some(t) => t.kind,
            None => crate::kind::default_kind(), // not reached: a memory has a tier
        }
    }

    /// After each operation on the memory (malloc, calloc, realloc, posix_memalign).
    #[inline]
    pub fn after_op(&self) {
        if let Route::DynamicThreshold(th) = &self.route {
            th.tick(&self.tiers, crate::sys::thread_self());
        }
    }

    /// [`Memory::after_op`] from the thread whose `pthread_t` is `thread` (the caller's, which
    /// it has already: [`thread`]).
    #[inline]
    pub fn after_op_by(&self, thread: u64) {
        if let Route::DynamicThreshold(th) = &self.route {
            th.tick(&self.tiers, thread);
        }
    }

    /// The tiers' kinds, in order.
    #[cfg(test)]
    pub fn kinds(&self) -> impl Iterator<Item = &'static Kind> + '_ {
        self.tiers.iter().map(|t| t.kind)
    }

    /// Current threshold values (empty unless DYNAMIC_THRESHOLD).
    #[cfg(test)]
    pub fn threshold_values(&self) -> Vec<usize> {
        match &self.route {
            Route::DynamicThreshold(th) => th
                .list
                .iter()
                .map(|t| t.val.load(Ordering::Relaxed))
                .collect(),
            _ => Vec::new(),
        }
    }
}
