//! memtier (memkind_memtier.h): a *memory* made of several kinds ("tiers"), each allocation sent
//! to one tier by a policy, and the per-kind byte counters the policies read.
//!
//! Like memkind 1.14's, memtier sits on top of the memkind API: the C entry points
//! (`ffi::memtier`) allocate with `memkind_*` and report the usable size of every block to the
//! counters here. This module holds the logic: counters, builders (with `memtier_ctl_set`'s
//! name parser), memories and their policies, and the tables that validate handles from C.
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
#![allow(
    unsafe_code,
    reason = "the counter and handle tables hand out references to boxes they own"
)]

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};

use crate::kind::Kind;

// --- counters ----------------------------------------------------------------------------------

pub use crate::counters::Counters;

/// The byte counters of `kind` (they live in [`crate::counters`], with the kind's other counters).
#[inline]
pub fn counters(kind: &Kind) -> &'static Counters {
    crate::counters::bytes(kind.id())
}

/// `memtier_kind_allocated_size(kind)`: bytes (usable sizes) allocated in `kind` through the
/// memtier API and not freed.
pub fn allocated_size(kind: &Kind) -> usize {
    counters(kind).total() as usize
}

// --- builders ----------------------------------------------------------------------------------

/// `memtier_policy_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// MEMTIER_POLICY_STATIC_RATIO (0).
    StaticRatio,
    /// MEMTIER_POLICY_DYNAMIC_THRESHOLD (1).
    DynamicThreshold,
}

impl Policy {
    /// From the C enum; `None` for anything else (1.14: `memtier_builder_new` returns NULL).
    pub fn from_c(v: i32) -> Option<Policy> {
        match v {
            0 => Some(Policy::StaticRatio),
            1 => Some(Policy::DynamicThreshold),
            _ => None,
        }
    }
}

/// Default spacing of thresholds, in bytes (1.14's `THRESHOLD_STEP`).
pub const THRESHOLD_STEP: usize = 1024;
/// Default operations between two threshold checks.
pub const DEFAULT_CHECK_CNT: u32 = 20;
/// Default trigger: 2 %.
pub const DEFAULT_TRIGGER: f32 = 0.02;
/// Default degree: 15 %.
pub const DEFAULT_DEGREE: f32 = 0.15;

/// One threshold of a DYNAMIC_THRESHOLD builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThresholdCfg {
    /// Current value: sizes below it go to the lower tier.
    pub val: usize,
    /// Lowest value it may move to.
    pub min: usize,
    /// Highest value it may move to.
    pub max: usize,
}

impl ThresholdCfg {
    /// 1.14's default for the threshold between tiers `k` and `k + 1`: value `(k + 1)` KiB,
    /// range `[k + 0.5, k + 1.5)` KiB.
    pub fn default_between(k: usize) -> ThresholdCfg {
        ThresholdCfg {
            min: THRESHOLD_STEP * k + THRESHOLD_STEP / 2,
            val: THRESHOLD_STEP * (k + 1),
            max: THRESHOLD_STEP * k + THRESHOLD_STEP * 3 / 2 - 1,
        }
    }
}

/// Why `memtier_builder_add_tier` failed (every case is -1 in C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierError {
    /// The kind is a tier already.
    Duplicate,
    /// No memory for the builder's tables (1.14: its realloc failed).
    OutOfMemory,
}

/// Why `memtier_builder_construct_memtier_memory` failed (NULL in C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// No tier added.
    NoTier,
    /// DYNAMIC_THRESHOLD needs two tiers or more.
    TooFewTiers,
    /// Threshold `i` has min > val.
    MinAboveValue(usize),
    /// Threshold `i` has val > max.
    ValueAboveMax(usize),
    /// Threshold `i - 1`'s max is above threshold `i`'s min.
    Overlap(usize),
    /// Degree < 0.
    NegativeDegree,
    /// Trigger < 0.
    NegativeTrigger,
    /// No memory for the memory's tables.
    OutOfMemory,
}

/// Why `memtier_ctl_set` failed (every case is -1 in C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtlError {
    /// Not a name 1.14 accepts (and every name for a STATIC_RATIO builder).
    InvalidName,
    /// `thresholds[ID]` with ID ≥ tiers - 1.
    NoSuchThreshold,
    /// NULL value pointer (1.14 dereferences it).
    NullValue,
}

/// A field of `policy.dynamic_threshold.thresholds[ID]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `.val`
    Val,
    /// `.min`
    Min,
    /// `.max`
    Max,
}

/// A `memtier_ctl_set` name, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctl {
    /// `policy.dynamic_threshold.thresholds[ID].val|min|max` (`size_t`).
    Threshold(usize, Field),
    /// `policy.dynamic_threshold.check_cnt` (`unsigned`).
    CheckCnt,
    /// `policy.dynamic_threshold.trigger` (`float`).
    Trigger,
    /// `policy.dynamic_threshold.degree` (`float`).
    Degree,
}

/// The C type a [`Ctl`] reads its value as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// `size_t`
    Size,
    /// `unsigned`
    Unsigned,
    /// `float`
    Float,
}

/// A value read for a [`Ctl`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// `size_t`
    Size(usize),
    /// `unsigned`
    Unsigned(u32),
    /// `float`
    Float(f32),
}

impl Ctl {
    /// What the value pointer points to.
    pub fn value_type(self) -> ValueType {
        match self {
            Ctl::Threshold(..) => ValueType::Size,
            Ctl::CheckCnt => ValueType::Unsigned,
            Ctl::Trigger | Ctl::Degree => ValueType::Float,
        }
    }
}

const CTL_PREFIX: &[u8] = b"policy.dynamic_threshold.";
/// 1.14 scans names with `%255[^[]` and `%255s`.
const SCAN_MAX: usize = 255;

/// C's isspace in the "C" locale (what `%d` and `%s` skip).
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// sscanf(q, "[%d]%n", &index, &count) as glibc runs it: the index when `%d` converted (a long,
/// saturated by strtol, stored into an int), the count when the closing bracket matched too.
fn scan_index(q: &[u8]) -> (Option<i32>, Option<usize>) {
    if q.first() != Some(&b'[') {
        return (None, None);
    }
    let mut i = 1;
    while q.get(i).copied().is_some_and(is_c_space) {
        i += 1;
    }
    let negative = q.get(i) == Some(&b'-');
    if matches!(q.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = i;
    let mut v: i64 = 0;
    let mut saturated = false;
    while let Some(d) = q.get(i).filter(|b| b.is_ascii_digit()) {
        let d = i64::from(d - b'0');
        match v.checked_mul(10).and_then(|v| v.checked_add(d)) {
            Some(n) => v = n,
            None => saturated = true,
        }
        i += 1;
    }
    if i == digits {
        return (None, None);
    }
    let long = match (saturated, negative) {
        (true, false) => i64::MAX,
        (true, true) => i64::MIN,
        (false, false) => v,
        (false, true) => -v,
    };
    let index = long as i32;
    if q.get(i) == Some(&b']') {
        (Some(index), Some(i + 1))
    } else {
        (Some(index), None)
    }
}

/// Parse a `memtier_ctl_set` name exactly as 1.14 does (three sscanf calls), without 1.14's
/// out-of-bounds read: where 1.14 would continue past the end of the string, the name is
/// invalid.
///
/// * the name starts with `policy.dynamic_threshold.`;
/// * the next up to 255 characters before a `[` (at least one) are the word: `check_cnt`,
///   `trigger` and `degree` are complete names whatever follows (1.14 never looks further);
/// * `thresholds` is followed by `[ID]` (`%d`: leading spaces and a sign allowed, ID ≥ 0),
///   then `.` and a word (`%255s`: leading spaces skipped, ends at a space): `val`, `min` or
///   `max`. When `]` is missing but ID converted, 1.14 skips 10 more characters (the length of
///   `thresholds`, left in its counter) from the `[` and goes on from there.
pub fn parse_ctl(name: &[u8]) -> Result<Ctl, CtlError> {
    let q = name.strip_prefix(CTL_PREFIX).ok_or(CtlError::InvalidName)?;
    let word_len = q.iter().take(SCAN_MAX).take_while(|&&b| b != b'[').count();
    // Nothing before `[` (sscanf returns 0) or nothing at all (EOF: 1.14 then compares a buffer
    // it never wrote); either way no name matches.
    match q.get(..word_len) {
        Some(b"check_cnt") => return Ok(Ctl::CheckCnt),
        Some(b"trigger") => return Ok(Ctl::Trigger),
        Some(b"degree") => return Ok(Ctl::Degree),
        Some(b"thresholds") => {}
        _ => return Err(CtlError::InvalidName),
    }
    let q = q.get(word_len..).ok_or(CtlError::InvalidName)?;
    let (index, count) = scan_index(q);
    let index = index.filter(|&i| i >= 0).ok_or(CtlError::InvalidName)?;
    let count = count.unwrap_or(word_len);
    if count > SCAN_MAX {
        return Err(CtlError::InvalidName);
    }
    let rest = q.get(count..).ok_or(CtlError::InvalidName)?;
    let rest = rest.strip_prefix(b".").ok_or(CtlError::InvalidName)?;
    let start = rest
        .iter()
        .position(|&b| !is_c_space(b))
        .ok_or(CtlError::InvalidName)?;
    let field: &[u8] = &rest[start..];
    let len = field
        .iter()
        .take(SCAN_MAX)
        .take_while(|&&b| !is_c_space(b))
        .count();
    let field = match &field[..len] {
        b"val" => Field::Val,
        b"min" => Field::Min,
        b"max" => Field::Max,
        _ => return Err(CtlError::InvalidName),
    };
    Ok(Ctl::Threshold(index as usize, field))
}

/// A tier of a builder: the kind and its ratio (a float, as 1.14 stores it).
#[derive(Clone, Copy)]
struct BuilderTier {
    kind: &'static Kind,
    ratio: f32,
}

/// `struct memtier_builder`.
pub struct Builder {
    policy: Policy,
    tiers: Vec<BuilderTier>,
    /// DYNAMIC_THRESHOLD: one per pair of neighbouring tiers.
    thresholds: Vec<ThresholdCfg>,
    check_cnt: u32,
    trigger: f32,
    degree: f32,
}

impl Builder {
    /// `memtier_builder_new(policy)`.
    pub fn new(policy: Policy) -> Builder {
        Builder {
            policy,
            tiers: Vec::new(),
            thresholds: Vec::new(),
            check_cnt: DEFAULT_CHECK_CNT,
            trigger: DEFAULT_TRIGGER,
            degree: DEFAULT_DEGREE,
        }
    }

    /// Number of tiers added.
    #[cfg(test)]
    pub fn tier_count(&self) -> usize {
        self.tiers.len()
    }

    /// The thresholds configured so far (DYNAMIC_THRESHOLD).
    #[cfg(test)]
    pub fn thresholds(&self) -> &[ThresholdCfg] {
        &self.thresholds
    }

    /// `memtier_builder_add_tier(builder, kind, ratio)`. DYNAMIC_THRESHOLD: from the second
    /// tier on, the threshold below the new tier gets 1.14's default.
    ///
    /// Ratio 0 is accepted, as 1.14 does: ratios are floats, so the normalised ratios and the
    /// expected threshold ratios become 0, infinite or NaN, and the policies' float comparisons
    /// then decide exactly as 1.14's (no division or conversion here can trap or panic).
    pub fn add_tier(&mut self, kind: &'static Kind, ratio: u32) -> Result<(), TierError> {
        if self.tiers.iter().any(|t| t.kind.id() == kind.id()) {
            return Err(TierError::Duplicate);
        }
        let threshold = self.policy == Policy::DynamicThreshold && !self.tiers.is_empty();
        self.tiers
            .try_reserve(1)
            .map_err(|_| TierError::OutOfMemory)?;
        if threshold {
            self.thresholds
                .try_reserve(1)
                .map_err(|_| TierError::OutOfMemory)?;
            // The threshold between the last tier and the new one (ctl_set could not reach it
            // before: its index needs the tier above it).
            self.thresholds
                .push(ThresholdCfg::default_between(self.tiers.len() - 1));
        }
        self.tiers.push(BuilderTier {
            kind,
            ratio: ratio as f32,
        });
        Ok(())
    }

    /// `memtier_ctl_set(builder, name, val)`: `value` reads the C value as the type the name
    /// needs (None for a NULL pointer). Values are taken as they are; they are checked when a
    /// memory is constructed (as 1.14).
    pub fn ctl_set(
        &mut self,
        name: &[u8],
        value: impl FnOnce(ValueType) -> Option<Value>,
    ) -> Result<(), CtlError> {
        if self.policy != Policy::DynamicThreshold {
            return Err(CtlError::InvalidName);
        }
        let ctl = parse_ctl(name)?;
        if let Ctl::Threshold(i, _) = ctl {
            // 1.14: (unsigned)ID + 1 >= tiers.
            if (i as u32).wrapping_add(1) >= self.tiers.len() as u32 {
                return Err(CtlError::NoSuchThreshold);
            }
        }
        let v = value(ctl.value_type()).ok_or(CtlError::NullValue)?;
        match (ctl, v) {
            (Ctl::Threshold(i, field), Value::Size(v)) => {
                let t = self
                    .thresholds
                    .get_mut(i)
                    .ok_or(CtlError::NoSuchThreshold)?;
                match field {
                    Field::Val => t.val = v,
                    Field::Min => t.min = v,
                    Field::Max => t.max = v,
                }
            }
            (Ctl::CheckCnt, Value::Unsigned(v)) => self.check_cnt = v,
            (Ctl::Trigger, Value::Float(v)) => self.trigger = v,
            (Ctl::Degree, Value::Float(v)) => self.degree = v,
            _ => return Err(CtlError::NullValue),
        }
        Ok(())
    }

    /// `memtier_builder_construct_memtier_memory(builder)`: a memory with a copy of the
    /// configuration (the builder stays usable).
    pub fn construct(&self) -> Result<Memory, BuildError> {
        let Some(first) = self.tiers.first() else {
            return Err(if self.policy == Policy::DynamicThreshold {
                BuildError::TooFewTiers
            } else {
                BuildError::NoTier
            });
        };
        // Ratio 0 gives r0 / 0 = ∞ (or NaN for 0 / 0) and 0 / ri = 0, as in 1.14.
        let tiers = try_boxed_slice(self.tiers.iter().enumerate().map(|(i, t)| Tier {
            kind: t.kind,
            counters: counters(t.kind),
            ratio: if i == 0 { 1.0 } else { first.ratio / t.ratio },
        }))
        .ok_or(BuildError::OutOfMemory)?;
        let route = match self.policy {
            Policy::StaticRatio if tiers.len() == 1 => Route::Single,
            Policy::StaticRatio => Route::StaticRatio,
            Policy::DynamicThreshold => {
                if self.tiers.len() < 2 {
                    return Err(BuildError::TooFewTiers);
                }
                Route::DynamicThreshold(self.dynamic_thresholds()?)
            }
        };
        Ok(Memory { tiers, route })
    }

    /// Check and copy the thresholds (1.14's rules: min ≤ val ≤ max, ranges in ascending,
    /// non-overlapping order, degree and trigger ≥ 0; NaN passes, as in 1.14).
    fn dynamic_thresholds(&self) -> Result<Thresholds, BuildError> {
        let n = self.tiers.len() - 1;
        let cfg = self.thresholds.get(..n).ok_or(BuildError::TooFewTiers)?;
        for (i, t) in cfg.iter().enumerate() {
            if t.min > t.val {
                return Err(BuildError::MinAboveValue(i));
            }
            if t.val > t.max {
                return Err(BuildError::ValueAboveMax(i));
            }
            if i > 0 && cfg[i - 1].max > t.min {
                return Err(BuildError::Overlap(i));
            }
        }
        if self.degree < 0.0 {
            return Err(BuildError::NegativeDegree);
        }
        if self.trigger < 0.0 {
            return Err(BuildError::NegativeTrigger);
        }
        let list = try_boxed_slice(cfg.iter().zip(self.tiers.windows(2)).map(|(t, pair)| {
            Threshold {
                val: AtomicUsize::new(t.val),
                min: t.min,
                max: t.max,
                // 0, ∞ or NaN with a ratio 0 (1.14's float division).
                expected: pair[1].ratio / pair[0].ratio,
                diff: AtomicU32::new(0f32.to_bits()),
            }
        }))
        .ok_or(BuildError::OutOfMemory)?;
        Ok(Thresholds {
            list,
            countdown: AtomicU32::new(self.check_cnt),
            check_cnt: self.check_cnt,
            trigger: self.trigger,
            degree: self.degree,
            adjusting: AtomicBool::new(false),
        })
    }
}

/// Collect into a boxed slice, `None` when the allocation fails (instead of aborting).
fn try_boxed_slice<T>(items: impl ExactSizeIterator<Item = T>) -> Option<Box<[T]>> {
    let mut v = Vec::new();
    v.try_reserve_exact(items.len()).ok()?;
    v.extend(items);
    Some(v.into_boxed_slice())
}

// --- memories ----------------------------------------------------------------------------------

/// A tier of a memory.
struct Tier {
    kind: &'static Kind,
    counters: &'static Counters,
    /// Normalised ratio: 1 for tier 0, `r0 / ri` for tier i.
    ratio: f32,
}

/// A threshold of a memory: the value moves, the range does not.
struct Threshold {
    val: AtomicUsize,
    min: usize,
    max: usize,
    /// Configured ratio of the upper tier's bytes to the lower tier's.
    expected: f32,
    /// Distance of the observed ratio from `expected` at the last check (f32 bits).
    diff: AtomicU32,
}

/// DYNAMIC_THRESHOLD state of a memory.
struct Thresholds {
    list: Box<[Threshold]>,
    /// Operations until the next check (wrapping, as 1.14: `check_cnt` 0 means 2^32).
    countdown: AtomicU32,
    check_cnt: u32,
    trigger: f32,
    degree: f32,
    /// Held by the one thread moving the thresholds.
    adjusting: AtomicBool,
}

enum Route {
    Single,
    StaticRatio,
    DynamicThreshold(Thresholds),
}

/// `struct memtier_memory`.
pub struct Memory {
    tiers: Box<[Tier]>,
    route: Route,
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
fn float_to_size(x: f32) -> usize {
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
    fn tick(&self, tiers: &[Tier]) {
        if self
            .countdown
            .fetch_sub(1, Ordering::Relaxed)
            .wrapping_sub(1)
            != 0
        {
            return;
        }
        if !self.adjusting.swap(true, Ordering::Acquire) {
            self.adjust(|i| tiers.get(i).map_or(0, |t| t.counters.flushed()));
            self.adjusting.store(false, Ordering::Release);
        }
        self.countdown.store(self.check_cnt, Ordering::Relaxed);
    }

    /// One check (1.14's `memtier_policy_dynamic_threshold_update_config`): for each pair of
    /// neighbouring tiers with bytes `prev` (lower) and `next`, the observed ratio `next / prev`
    /// is compared with the configured one. When it is off by `trigger` or more and not closer
    /// than at the last check, the threshold moves by ⌈val × degree⌉: up (more goes to the lower
    /// tier) when the upper tier has too much, down otherwise; a move that would leave
    /// [min, max] is not made. A lower tier without bytes moves the threshold up.
    fn adjust(&self, bytes: impl Fn(usize) -> u64) {
        for (i, t) in self.list.iter().enumerate() {
            let prev = bytes(i);
            let next = bytes(i + 1);
            let val = t.val.load(Ordering::Relaxed);
            let mut current = -1.0f32;
            if prev > 0 {
                current = next as f32 / prev as f32;
                let last = f32::from_bits(t.diff.load(Ordering::Relaxed));
                let diff = (current - t.expected).abs();
                t.diff.store(diff.to_bits(), Ordering::Relaxed);
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
            th.tick(&self.tiers);
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

// --- handles -----------------------------------------------------------------------------------

/// A table of objects handed to C as opaque pointers: the handle is the address of a slot, so a
/// pointer from C is validated by a range check and a load, never dereferenced before it is
/// known to be one of ours. `N` bounds how many objects may be live at once.
///
/// Slots are taken next-fit from a rotating cursor: a freed slot is handed out again only once
/// the cursor has gone round the whole table, so a deleted handle does not become valid again
/// (as another object) at the next creation, but after about `N` of them at the earliest
/// (sooner only when nearly all `N` slots are live).
pub struct Handles<T, const N: usize> {
    slots: [AtomicPtr<T>; N],
    /// Where the search for a free slot starts (the slot after the last one taken).
    cursor: AtomicUsize,
}

/// Move `v` to the heap; `Err(v)` when the allocation fails (`Box::new` would abort).
fn try_box<T>(v: T) -> Result<*mut T, T> {
    let layout = std::alloc::Layout::new::<T>();
    if layout.size() == 0 {
        let p = core::ptr::NonNull::<T>::dangling().as_ptr();
        // SAFETY: a dangling, aligned pointer is valid for zero-sized writes.
        unsafe { p.write(v) };
        return Ok(p);
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc(layout) }.cast::<T>();
    if p.is_null() {
        return Err(v);
    }
    // SAFETY: fresh, non-null, allocated with T's layout.
    unsafe { p.write(v) };
    // `Box::from_raw` may take it back: the global allocator with `Layout::new::<T>()`.
    Ok(p)
}

impl<T: Send + Sync, const N: usize> Handles<T, N> {
    /// An empty table.
    pub const fn new() -> Self {
        Handles {
            slots: [const { AtomicPtr::new(core::ptr::null_mut()) }; N],
            cursor: AtomicUsize::new(0),
        }
    }

    /// Store `v`; its handle, or `None` when all `N` slots are taken or there is no memory.
    pub fn insert(&self, v: T) -> Option<*mut c_void> {
        let b = try_box(v).ok()?;
        let start = self.cursor.load(Ordering::Relaxed);
        for k in 0..N {
            let i = (start % N + k) % N;
            let Some(s) = self.slots.get(i) else {
                continue;
            };
            if s.load(Ordering::Relaxed).is_null()
                && s.compare_exchange(
                    core::ptr::null_mut(),
                    b,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                // Racing inserts may move the cursor back by a slot or two: harmless, the
                // next search skips live slots.
                self.cursor.store((i + 1) % N, Ordering::Relaxed);
                return Some(s as *const AtomicPtr<T> as *mut c_void);
            }
        }
        // SAFETY: `b` was never published: this thread owns it (allocated as a Box would be).
        drop(unsafe { Box::from_raw(b) });
        None
    }

    fn slot(&self, h: *const c_void) -> Option<&AtomicPtr<T>> {
        let sz = core::mem::size_of::<AtomicPtr<T>>();
        let off = (h as usize).wrapping_sub(self.slots.as_ptr() as usize);
        if off < N * sz && off.is_multiple_of(sz) {
            self.slots.get(off / sz)
        } else {
            None
        }
    }

    /// The object behind handle `h`; `None` for NULL, foreign pointers and deleted handles.
    ///
    /// # Safety
    /// The object must not be removed while the reference is used (C's contract: a handle is
    /// not used concurrently with or after its deletion).
    pub unsafe fn get(&self, h: *const c_void) -> Option<&T> {
        let p = self.slot(h)?.load(Ordering::Acquire);
        // SAFETY: a non-null slot holds a live box until `remove`; the caller keeps it alive.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Take the object behind `h` out of the table (`None` for anything not live).
    pub fn remove(&self, h: *const c_void) -> Option<Box<T>> {
        let p = self.slot(h)?.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: the slot owned this box; swapping it out transfers ownership to us.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
    }

    /// Number of live objects.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !s.load(Ordering::Relaxed).is_null())
            .count()
    }
}

impl<T: Send + Sync, const N: usize> Default for Handles<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// How many builders, and how many memories, may be live at once (1.14 has no limit; beyond
/// this, `memtier_builder_new` and `memtier_builder_construct_memtier_memory` return NULL).
pub const MAX_HANDLES: usize = 4096;

/// A live builder, as its handle's table holds it.
///
/// A builder is changed by add_tier and ctl_set and read by construct; each call takes the
/// builder out (under a lock held for that move only, with `try_lock`), works on it without any
/// lock (its allocations included), and puts it back. A call that finds the lock held, or the
/// builder out, fails instead of waiting: two calls on one builder at the same time break the
/// C contract anyway, and a builder out (or its lock held) when another thread forks stays
/// unusable in the child (its calls fail) rather than deadlocking it.
pub struct BuilderSlot(Mutex<Option<Builder>>);

impl BuilderSlot {
    /// A slot holding `b`.
    pub fn new(b: Builder) -> BuilderSlot {
        BuilderSlot(Mutex::new(Some(b)))
    }

    /// Run `f` on the builder; `None` when it is in use by another call.
    pub fn with<R>(&self, f: impl FnOnce(&mut Builder) -> R) -> Option<R> {
        let mut b = match self.0.try_lock() {
            Ok(mut g) => g.take(),
            Err(TryLockError::Poisoned(e)) => e.into_inner().take(),
            Err(TryLockError::WouldBlock) => None,
        }?;
        let r = f(&mut b);
        // Held only by another call's `take` attempt (a move), so never for long.
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(b);
        Some(r)
    }
}

/// Live builders.
pub static BUILDERS: Handles<BuilderSlot, MAX_HANDLES> = Handles::new();
/// Live memories.
pub static MEMORIES: Handles<Memory, MAX_HANDLES> = Handles::new();

#[cfg(test)]
mod tests;
