//! Builders (`memtier_builder_*`) and `memtier_ctl_set`'s name parser.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};

use super::*;

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

pub(super) const CTL_PREFIX: &[u8] = b"policy.dynamic_threshold.";
/// 1.14 scans names with `%255[^[]` and `%255s`.
pub(super) const SCAN_MAX: usize = 255;

/// C's isspace in the "C" locale (what `%d` and `%s` skip).
pub(super) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// sscanf(q, "[%d]%n", &index, &count) as glibc runs it: the index when `%d` converted (a long,
/// saturated by strtol, stored into an int), the count when the closing bracket matched too.
pub(super) fn scan_index(q: &[u8]) -> (Option<i32>, Option<usize>) {
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
pub(super) struct BuilderTier {
    pub(super) kind: &'static Kind,
    pub(super) ratio: f32,
}

/// `struct memtier_builder`.
pub struct Builder {
    pub(super) policy: Policy,
    pub(super) tiers: Vec<BuilderTier>,
    /// DYNAMIC_THRESHOLD: one per pair of neighbouring tiers.
    pub(super) thresholds: Vec<ThresholdCfg>,
    pub(super) check_cnt: u32,
    pub(super) trigger: f32,
    pub(super) degree: f32,
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
        let countdown = try_boxed_slice(
            (0..STRIPES).map(|_| crate::counters::CacheLine(AtomicU32::new(self.check_cnt))),
        )
        .ok_or(BuildError::OutOfMemory)?;
        Ok(Thresholds {
            list,
            countdown,
            check_cnt: self.check_cnt,
            trigger: self.trigger,
            degree: self.degree,
            adjusting: crate::counters::CacheLine(AtomicBool::new(false)),
        })
    }
}

/// Collect into a boxed slice, `None` when the allocation fails (instead of aborting).
pub(super) fn try_boxed_slice<T>(items: impl ExactSizeIterator<Item = T>) -> Option<Box<[T]>> {
    let mut v = Vec::new();
    v.try_reserve_exact(items.len()).ok()?;
    v.extend(items);
    Some(v.into_boxed_slice())
}
