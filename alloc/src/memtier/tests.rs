//! Unit tests of memtier's logic: the ctl name parser, builders, both policies, the
//! handle tables, and the C entry points over DEFAULT and REGULAR.
#![allow(
    unsafe_code,
    reason = "the tests call the C entry points and reclaim boxes by hand"
)]

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::*;
use crate::arena::heap;
use crate::ffi::memtier as c;
use crate::kind::{partition, KINDS};

/// Tests that allocate through memtier share the per-kind counters of DEFAULT and REGULAR.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn default() -> &'static Kind {
    &KINDS[partition::DEFAULT]
}

fn regular() -> &'static Kind {
    &KINDS[partition::REGULAR]
}

fn interleave() -> &'static Kind {
    &KINDS[partition::INTERLEAVE]
}

// --- counters ----------------------------------------------------------------------------------

// --- ctl names ---------------------------------------------------------------------------------

fn p(name: &str) -> Result<Ctl, CtlError> {
    parse_ctl(name.as_bytes())
}

#[test]
fn ctl_names_of_the_man_page_parse() {
    use Field::*;
    let t = "policy.dynamic_threshold.";
    assert_eq!(p(&format!("{t}check_cnt")), Ok(Ctl::CheckCnt));
    assert_eq!(p(&format!("{t}trigger")), Ok(Ctl::Trigger));
    assert_eq!(p(&format!("{t}degree")), Ok(Ctl::Degree));
    assert_eq!(
        p(&format!("{t}thresholds[0].val")),
        Ok(Ctl::Threshold(0, Val))
    );
    assert_eq!(
        p(&format!("{t}thresholds[1].min")),
        Ok(Ctl::Threshold(1, Min))
    );
    assert_eq!(
        p(&format!("{t}thresholds[12].max")),
        Ok(Ctl::Threshold(12, Max))
    );
}

#[test]
fn ctl_names_parse_as_1_14s_sscanf_does() {
    use Field::*;
    let t = "policy.dynamic_threshold.";
    // The word ends at '[' or after 255 characters; what follows a scalar name is not read.
    assert_eq!(p(&format!("{t}check_cnt[7]")), Ok(Ctl::CheckCnt));
    assert_eq!(p(&format!("{t}trigger[")), Ok(Ctl::Trigger));
    // %d skips spaces and takes a sign; %s skips spaces and stops at one.
    assert_eq!(
        p(&format!("{t}thresholds[ 1].val")),
        Ok(Ctl::Threshold(1, Val))
    );
    assert_eq!(
        p(&format!("{t}thresholds[+1].min")),
        Ok(Ctl::Threshold(1, Min))
    );
    assert_eq!(
        p(&format!("{t}thresholds[0]. max")),
        Ok(Ctl::Threshold(0, Max))
    );
    assert_eq!(
        p(&format!("{t}thresholds[0].val tail")),
        Ok(Ctl::Threshold(0, Val))
    );
    assert_eq!(
        p(&format!("{t}thresholds[007].val")),
        Ok(Ctl::Threshold(7, Val))
    );
    // %d stores strtol's long into an int.
    assert_eq!(
        p(&format!("{t}thresholds[4294967296].val")),
        Ok(Ctl::Threshold(0, Val))
    );
    assert_eq!(
        p(&format!("{t}thresholds[99999999999].val")),
        Ok(Ctl::Threshold(1_215_752_191, Val))
    );
    assert_eq!(
        p(&format!("{t}thresholds[4294967295].val")),
        Err(CtlError::InvalidName)
    );
    // Without ']', 1.14 goes on 10 characters after the '['.
    assert_eq!(
        p(&format!("{t}thresholds[0abcdefgh.val")),
        Ok(Ctl::Threshold(0, Val))
    );
    assert_eq!(
        p(&format!("{t}thresholds[0 ].val")),
        Err(CtlError::InvalidName)
    );
}

#[test]
fn bad_ctl_names_are_refused() {
    let t = "policy.dynamic_threshold.";
    for bad in [
        String::new(),
        "policy".into(),
        "policy.dynamic_threshold".into(),
        t.into(),
        format!("{t}[0].val"),
        format!("{t}checkcnt"),
        format!("{t}check_cnt "),
        format!("{t}Trigger"),
        format!("{t}degrees"),
        format!("{t}thresholds"),
        format!("{t}thresholds."),
        format!("{t}thresholds[]"),
        format!("{t}thresholds[-1].val"),
        format!("{t}thresholds[x].val"),
        format!("{t}thresholds[0]"),
        format!("{t}thresholds[0]."),
        format!("{t}thresholds[0].   "),
        format!("{t}thresholds[0]val"),
        format!("{t}thresholds[0].value"),
        format!("{t}thresholds[0].va"),
        format!("{t}thresholds[0"),
        format!("{t}thresholds[0].VAL"),
        format!(" {t}trigger"),
        format!("policy.static_ratio.{}", "trigger"),
        format!("{t}{}", "x".repeat(300)),
    ] {
        assert_eq!(p(&bad), Err(CtlError::InvalidName), "{bad:?}");
    }
}

// --- builders ----------------------------------------------------------------------------------

#[test]
fn policies_from_c() {
    assert_eq!(Policy::from_c(0), Some(Policy::StaticRatio));
    assert_eq!(Policy::from_c(1), Some(Policy::DynamicThreshold));
    for bad in [2, 3, -1, i32::MAX, i32::MIN] {
        assert_eq!(Policy::from_c(bad), None);
    }
}

#[test]
fn add_tier_refuses_duplicates_and_accepts_ratio_zero() {
    let mut b = Builder::new(Policy::StaticRatio);
    assert_eq!(b.add_tier(default(), 1), Ok(()));
    assert_eq!(b.add_tier(default(), 2), Err(TierError::Duplicate));
    assert_eq!(b.add_tier(regular(), 0), Ok(()), "1.14 accepts ratio 0");
    assert_eq!(b.add_tier(regular(), 4), Err(TierError::Duplicate));
    assert_eq!(b.tier_count(), 2);
    assert!(b.thresholds().is_empty());
}

/// Ratio 0 makes 1.14's float ratios 0, ∞ or NaN: every construct succeeds and every policy
/// decision is a plain float comparison (NaN false), whatever the counters hold.
#[test]
fn ratio_zero_gives_1_14s_float_outcomes() {
    // STATIC_RATIO: tier 1's normalised ratio r0 / r1.
    let norm = |r0: u32, r1: u32| r0 as f32 / r1 as f32;
    assert_eq!(norm(0, 1), 0.0);
    assert_eq!(norm(1, 0), f32::INFINITY);
    assert!(norm(0, 0).is_nan());
    for bytes1 in [0u64, 1, 1 << 40, u64::MAX] {
        for bytes0 in [0u64, 1, 1 << 40, u64::MAX] {
            // 0: tier 1 as soon as tier 0 has a byte (bytes1 × 0 = 0).
            assert_eq!(
                pick_by_ratio([(bytes0, 1.0), (bytes1, 0.0)].into_iter()),
                usize::from(bytes0 > 0)
            );
            // ∞ (0 × ∞ = NaN) and NaN: never tier 1.
            for r in [f32::INFINITY, f32::NAN] {
                assert_eq!(pick_by_ratio([(bytes0, 1.0), (bytes1, r)].into_iter()), 0);
            }
        }
    }
    // Through builders, both policies, every placement of the zero: constructs succeed and
    // allocations pick a tier without panicking.
    for policy in [Policy::StaticRatio, Policy::DynamicThreshold] {
        for (r0, r1, r2) in [(0, 1, 1), (1, 0, 1), (1, 1, 0), (0, 0, 0), (0, 3, 0)] {
            let mut b = Builder::new(policy);
            b.add_tier(default(), r0).unwrap();
            b.add_tier(regular(), r1).unwrap();
            b.add_tier(interleave(), r2).unwrap();
            let m = b.construct().expect("ratio 0 constructs");
            for size in [1, 100, 1000, 5000, 1 << 20] {
                let _ = m.kind_for(size);
            }
        }
    }
    // DYNAMIC_THRESHOLD checks with expected ratios 0, ∞ and NaN: the threshold moves (NaN and
    // ∞ differences are never below the trigger) and stays within its range.
    for expected in [0.0, f32::INFINITY, f32::NAN] {
        for (lower, upper) in [(0, 0), (0, 100), (100, 0), (100, 300), (u64::MAX, 1)] {
            let th = thresholds(&[(1024, 512, 1535, expected)], 0.02, 0.15);
            for _ in 0..5 {
                th.adjust(|i| [lower, upper][i]);
                let v = th.list[0].val.load(Ordering::Relaxed);
                assert!((512..=1535).contains(&v), "{expected} {lower} {upper}: {v}");
            }
        }
    }
}

#[test]
fn dynamic_builders_get_1_14s_default_thresholds() {
    let mut b = Builder::new(Policy::DynamicThreshold);
    b.add_tier(default(), 1).unwrap();
    assert!(b.thresholds().is_empty());
    b.add_tier(regular(), 1).unwrap();
    b.add_tier(interleave(), 1).unwrap();
    assert_eq!(
        b.thresholds(),
        &[
            ThresholdCfg {
                val: 1024,
                min: 512,
                max: 1535
            },
            ThresholdCfg {
                val: 2048,
                min: 1536,
                max: 2559
            },
        ]
    );
}

fn set(b: &mut Builder, name: &str, v: Value) -> Result<(), CtlError> {
    b.ctl_set(name.as_bytes(), |_| Some(v))
}

#[test]
fn ctl_set_rules() {
    let mut s = Builder::new(Policy::StaticRatio);
    assert_eq!(
        set(
            &mut s,
            "policy.dynamic_threshold.trigger",
            Value::Float(0.1)
        ),
        Err(CtlError::InvalidName),
        "STATIC_RATIO has no property"
    );
    let mut b = Builder::new(Policy::DynamicThreshold);
    assert_eq!(
        set(
            &mut b,
            "policy.dynamic_threshold.thresholds[0].val",
            Value::Size(1)
        ),
        Err(CtlError::NoSuchThreshold)
    );
    b.add_tier(default(), 1).unwrap();
    b.add_tier(regular(), 1).unwrap();
    assert_eq!(
        set(
            &mut b,
            "policy.dynamic_threshold.thresholds[1].val",
            Value::Size(1)
        ),
        Err(CtlError::NoSuchThreshold)
    );
    assert_eq!(
        b.ctl_set(b"policy.dynamic_threshold.degree", |_| None),
        Err(CtlError::NullValue)
    );
    let mut asked = None;
    b.ctl_set(b"policy.dynamic_threshold.thresholds[0].max", |t| {
        asked = Some(t);
        Some(Value::Size(5000))
    })
    .unwrap();
    assert_eq!(asked, Some(ValueType::Size));
    b.ctl_set(b"policy.dynamic_threshold.check_cnt", |t| {
        assert_eq!(t, ValueType::Unsigned);
        Some(Value::Unsigned(3))
    })
    .unwrap();
    b.ctl_set(b"policy.dynamic_threshold.trigger", |t| {
        assert_eq!(t, ValueType::Float);
        Some(Value::Float(0.5))
    })
    .unwrap();
    set(
        &mut b,
        "policy.dynamic_threshold.thresholds[0].val",
        Value::Size(4000),
    )
    .unwrap();
    set(
        &mut b,
        "policy.dynamic_threshold.thresholds[0].min",
        Value::Size(3000),
    )
    .unwrap();
    assert_eq!(
        b.thresholds(),
        &[ThresholdCfg {
            val: 4000,
            min: 3000,
            max: 5000
        }]
    );
    assert_eq!(b.check_cnt, 3);
    assert_eq!(b.trigger, 0.5);
}

#[test]
fn construct_checks_the_configuration() {
    let b = Builder::new(Policy::StaticRatio);
    assert_eq!(b.construct().err(), Some(BuildError::NoTier));
    let mut d = Builder::new(Policy::DynamicThreshold);
    assert_eq!(d.construct().err(), Some(BuildError::TooFewTiers));
    d.add_tier(default(), 1).unwrap();
    assert_eq!(d.construct().err(), Some(BuildError::TooFewTiers));
    d.add_tier(regular(), 2).unwrap();
    d.add_tier(interleave(), 3).unwrap();
    assert!(d.construct().is_ok());

    let t0 = "policy.dynamic_threshold.thresholds[0].";
    let t1 = "policy.dynamic_threshold.thresholds[1].";
    let case = |f: &dyn Fn(&mut Builder)| {
        let mut b = Builder::new(Policy::DynamicThreshold);
        b.add_tier(default(), 1).unwrap();
        b.add_tier(regular(), 2).unwrap();
        b.add_tier(interleave(), 3).unwrap();
        f(&mut b);
        b.construct().err()
    };
    let sz = |b: &mut Builder, n: &str, v: usize| set(b, n, Value::Size(v)).unwrap();
    let fl = |b: &mut Builder, n: &str, v: f32| set(b, n, Value::Float(v)).unwrap();
    assert_eq!(
        case(&|b| sz(b, &format!("{t0}min"), 1025)),
        Some(BuildError::MinAboveValue(0))
    );
    assert_eq!(
        case(&|b| sz(b, &format!("{t1}max"), 2047)),
        Some(BuildError::ValueAboveMax(1))
    );
    assert_eq!(
        case(&|b| sz(b, &format!("{t0}max"), 1537)),
        Some(BuildError::Overlap(1))
    );
    assert_eq!(
        case(&|b| sz(b, &format!("{t0}max"), 1536)),
        None,
        "equal is fine"
    );
    assert_eq!(
        case(&|b| fl(b, "policy.dynamic_threshold.degree", -0.1)),
        Some(BuildError::NegativeDegree)
    );
    assert_eq!(
        case(&|b| fl(b, "policy.dynamic_threshold.trigger", -1.0)),
        Some(BuildError::NegativeTrigger)
    );
    assert_eq!(
        case(&|b| fl(b, "policy.dynamic_threshold.trigger", f32::NAN)),
        None,
        "NaN passes, as in 1.14"
    );
    assert_eq!(
        case(&|b| fl(b, "policy.dynamic_threshold.degree", 0.0)),
        None
    );
}

#[test]
fn memories_copy_the_builder() {
    let mut b = Builder::new(Policy::DynamicThreshold);
    b.add_tier(default(), 1).unwrap();
    b.add_tier(regular(), 4).unwrap();
    let m = b.construct().unwrap();
    set(
        &mut b,
        "policy.dynamic_threshold.thresholds[0].val",
        Value::Size(700),
    )
    .unwrap();
    assert_eq!(m.threshold_values(), vec![1024]);
    assert_eq!(b.construct().unwrap().threshold_values(), vec![700]);
    let ids: Vec<u16> = m.kinds().map(|k| k.id()).collect();
    assert_eq!(
        ids,
        vec![partition::DEFAULT as u16, partition::REGULAR as u16]
    );
}

// --- policies ----------------------------------------------------------------------------------

#[test]
fn static_ratio_picks_the_last_tier_behind_its_share() {
    // Ratios 1:4 → tier 1 normalised 0.25.
    assert_eq!(pick_by_ratio([(0, 1.0), (0, 0.25)].into_iter()), 0);
    assert_eq!(pick_by_ratio([(100, 1.0), (0, 0.25)].into_iter()), 1);
    assert_eq!(pick_by_ratio([(100, 1.0), (399, 0.25)].into_iter()), 1);
    assert_eq!(pick_by_ratio([(100, 1.0), (400, 0.25)].into_iter()), 0);
    // Three tiers: the last one behind wins.
    assert_eq!(
        pick_by_ratio([(100, 1.0), (0, 1.0), (0, 0.5)].into_iter()),
        2
    );
    assert_eq!(
        pick_by_ratio([(100, 1.0), (0, 1.0), (200, 0.5)].into_iter()),
        1
    );
    assert_eq!(pick_by_ratio(core::iter::empty()), 0);
}

/// Simulate a STATIC_RATIO memory whose counters are flushed at every step.
fn simulate_static(ratios: &[u32], blocks: usize, size: u64) -> Vec<u64> {
    let norm: Vec<f32> = ratios
        .iter()
        .map(|&r| ratios[0] as f32 / r as f32)
        .collect();
    let mut bytes = vec![0u64; ratios.len()];
    for _ in 0..blocks {
        let i = pick_by_ratio(bytes.iter().copied().zip(norm.iter().copied()));
        bytes[i] += size;
    }
    bytes
}

#[test]
fn static_ratio_converges_to_the_ratios() {
    let b = simulate_static(&[1, 4], 10_000, 64);
    let r = b[1] as f64 / b[0] as f64;
    assert!((r - 4.0).abs() < 0.01, "{b:?}");
    let b = simulate_static(&[2, 1, 1], 9_000, 100);
    let total: u64 = b.iter().sum();
    for (got, want) in b.iter().zip([0.5, 0.25, 0.25]) {
        assert!(((*got as f64 / total as f64) - want).abs() < 0.01, "{b:?}");
    }
}

#[test]
fn threshold_picks_the_first_tier_above_the_size() {
    let t = [1024usize, 2048];
    assert_eq!(pick_by_threshold(0, t.into_iter()), 0);
    assert_eq!(pick_by_threshold(1023, t.into_iter()), 0);
    assert_eq!(pick_by_threshold(1024, t.into_iter()), 1);
    assert_eq!(pick_by_threshold(2047, t.into_iter()), 1);
    assert_eq!(pick_by_threshold(2048, t.into_iter()), 2);
    assert_eq!(pick_by_threshold(usize::MAX, t.into_iter()), 2);
}

fn thresholds(list: &[(usize, usize, usize, f32)], trigger: f32, degree: f32) -> Thresholds {
    Thresholds {
        list: list
            .iter()
            .map(|&(val, min, max, expected)| Threshold {
                val: AtomicUsize::new(val),
                min,
                max,
                expected,
                diff: AtomicU32::new(0),
            })
            .collect(),
        countdown: (0..STRIPES)
            .map(|_| crate::counters::CacheLine(AtomicU32::new(1)))
            .collect(),
        check_cnt: 1,
        trigger,
        degree,
        adjusting: crate::counters::CacheLine(AtomicBool::new(false)),
    }
}

fn vals(t: &Thresholds) -> Vec<usize> {
    t.list
        .iter()
        .map(|x| x.val.load(Ordering::Relaxed))
        .collect()
}

#[test]
fn thresholds_rise_while_the_lower_tier_is_empty_up_to_max() {
    let t = thresholds(&[(1024, 512, 1535, 1.0)], 0.02, 0.15);
    t.adjust(|_| 0);
    assert_eq!(vals(&t), [1024 + 154], "⌈1024 × 0.15⌉ = 154");
    t.adjust(|_| 0);
    assert_eq!(vals(&t), [1178 + 177]);
    t.adjust(|_| 0);
    assert_eq!(vals(&t), [1355], "1355 + 204 > 1535: stays");
}

#[test]
fn thresholds_follow_the_observed_ratio() {
    // Expected upper/lower 1.0. Upper tier with 3× the bytes: the threshold rises (more small
    // blocks go to the lower tier).
    let t = thresholds(&[(1024, 0, 1 << 20, 1.0)], 0.02, 0.5);
    t.adjust(|i| [100, 300][i]);
    assert_eq!(vals(&t), [1536]);
    // Not improving (diff 2 ≥ last diff 2): moves again.
    t.adjust(|i| [100, 300][i]);
    assert_eq!(vals(&t), [2304]);
    // Improving (diff 1 < 2): stays.
    t.adjust(|i| [100, 200][i]);
    assert_eq!(vals(&t), [2304]);
    // Within the trigger: stays.
    t.adjust(|i| [1000, 1010][i]);
    assert_eq!(vals(&t), [2304]);
    // Upper tier short of bytes and getting worse: the threshold drops.
    let t = thresholds(&[(1024, 0, 1 << 20, 1.0)], 0.02, 0.5);
    t.adjust(|i| [300, 100][i]);
    assert_eq!(vals(&t), [512]);
    // Not below min.
    let t = thresholds(&[(1024, 600, 1 << 20, 1.0)], 0.02, 0.5);
    t.adjust(|i| [300, 100][i]);
    assert_eq!(vals(&t), [1024]);
}

#[test]
fn thresholds_are_checked_every_check_cnt_operations() {
    let mut b = Builder::new(Policy::DynamicThreshold);
    b.add_tier(default(), 1).unwrap();
    b.add_tier(regular(), 1).unwrap();
    set(
        &mut b,
        "policy.dynamic_threshold.check_cnt",
        Value::Unsigned(3),
    )
    .unwrap();
    // The checks read DEFAULT's and REGULAR's real counters (serialised with the other tests
    // that allocate); when DEFAULT's is 0, a check raises the threshold.
    let _g = serial();
    let m = b.construct().unwrap();
    let lower_empty = counters(default()).flushed() == 0;
    m.after_op();
    m.after_op();
    assert_eq!(m.threshold_values(), vec![1024]);
    m.after_op();
    if lower_empty {
        assert_eq!(m.threshold_values(), vec![1178]);
    }
    let before = m.threshold_values();
    m.after_op();
    m.after_op();
    assert_eq!(m.threshold_values(), before, "next check after 3 more");
}

#[test]
fn floats_convert_to_size_t_as_x86_code_does() {
    assert_eq!(float_to_size(0.0), 0);
    assert_eq!(float_to_size(154.0), 154);
    assert_eq!(float_to_size(1.99), 1);
    assert_eq!(float_to_size(f32::NAN), 1 << 63);
    assert_eq!(float_to_size(-1.0), usize::MAX);
    assert_eq!(float_to_size(9_223_372_036_854_775_808.0), 1 << 63);
    assert_eq!(float_to_size(f32::INFINITY), 0);
}

// --- handles -----------------------------------------------------------------------------------

#[test]
fn handles_are_validated_by_address() {
    static TABLE: Handles<u64, 4> = Handles::new();
    let a = TABLE.insert(1).unwrap();
    let b = TABLE.insert(2).unwrap();
    assert_ne!(a, b);
    // SAFETY: nothing is removed concurrently.
    unsafe {
        assert_eq!(TABLE.get(a), Some(&1));
        assert_eq!(TABLE.get(b), Some(&2));
        let x = 5u64;
        for bad in [
            core::ptr::null(),
            &x as *const u64 as *const c_void,
            (a as usize + 1) as *const c_void,
            (a as usize + 4 * 8) as *const c_void,
            usize::MAX as *const c_void,
        ] {
            assert_eq!(TABLE.get(bad), None);
            assert!(TABLE.remove(bad).is_none());
        }
    }
    assert_eq!(TABLE.remove(a).as_deref(), Some(&1));
    assert!(TABLE.remove(a).is_none(), "a deleted handle is not live");
    // SAFETY: as above.
    assert_eq!(unsafe { TABLE.get(a) }, None);
    // Next-fit: a's slot comes back only after every other slot was used.
    let c3 = TABLE.insert(3).unwrap();
    assert_ne!(c3, a, "a deleted handle is not reused by the next insert");
    // SAFETY: as above.
    assert_eq!(unsafe { TABLE.get(a) }, None);
    let d4 = TABLE.insert(4).unwrap();
    assert_ne!(d4, a);
    let e5 = TABLE.insert(5).unwrap();
    assert_eq!(e5, a, "reused once the cursor went round");
    assert!(TABLE.insert(6).is_none(), "full");
    assert_eq!(TABLE.live(), 4);
}

#[test]
fn freed_handles_come_back_last() {
    static TABLE: Handles<u32, 64> = Handles::new();
    // Create and delete in a loop (one live at a time): 64 distinct handles, then the cycle.
    let mut seen = Vec::new();
    for i in 0..64 {
        let h = TABLE.insert(i).unwrap();
        assert!(!seen.contains(&h), "handle {i} reused too early");
        seen.push(h);
        assert!(TABLE.remove(h).is_some());
    }
    assert_eq!(TABLE.insert(64).unwrap(), seen[0]);
    // With holes among live slots, the search skips the live ones.
    let live: Vec<_> = (0..10).map(|i| TABLE.insert(i).unwrap()).collect();
    assert_eq!(TABLE.live(), 11);
    assert!(!live.contains(&seen[0]));
    for h in &live[..5] {
        assert!(TABLE.remove(*h).is_some());
    }
    let next = TABLE.insert(99).unwrap();
    assert!(
        !live[..5].contains(&next),
        "freed slots wait for the cursor to come round"
    );
}

#[test]
fn builder_calls_fail_instead_of_waiting() {
    let slot = BuilderSlot::new(Builder::new(Policy::StaticRatio));
    assert_eq!(slot.with(|b| b.add_tier(default(), 1)), Some(Ok(())));
    // Another call on the same builder while one runs: refused, the running one unaffected.
    let inner = slot.with(|b| {
        assert_eq!(slot.with(|b2| b2.tier_count()), None, "builder in use");
        b.add_tier(regular(), 2)
    });
    assert_eq!(inner, Some(Ok(())));
    assert_eq!(slot.with(|b| b.tier_count()), Some(2));
    // A lock held elsewhere (e.g. by a thread that no longer exists after fork): refused too.
    let g = slot.0.lock().unwrap();
    assert_eq!(slot.with(|b| b.tier_count()), None);
    drop(g);
    assert_eq!(slot.with(|b| b.tier_count()), Some(2));
}

#[test]
fn handle_allocation_is_fallible() {
    // Zero-sized and ordinary values both round-trip through the fallible box.
    let z = try_box(()).ok().unwrap();
    // SAFETY: from try_box, as a Box would have allocated it.
    drop(unsafe { Box::from_raw(z) });
    let p = try_box([7u8; 100]).ok().unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { Box::from_raw(p) }[99], 7);
    assert_eq!(
        try_boxed_slice([1, 2, 3].into_iter()).as_deref(),
        Some(&[1, 2, 3][..])
    );
}

#[test]
fn counters_are_static_and_never_allocated() {
    // Every kind id has its slot; an unused kind reads 0 without a write.
    let k = interleave();
    assert!(core::ptr::eq(
        counters(k),
        &crate::counters::COUNTERS[k.id() as usize]
    ));
    assert!(core::ptr::eq(counters(k), counters(k)));
}

// --- through the C entry points ----------------------------------------------------------------

fn kp(k: &'static Kind) -> *const Kind {
    k
}

#[test]
fn static_ratio_memory_keeps_one_to_four() {
    let _g = serial();
    let b = c::memtier_builder_new(0);
    assert!(!b.is_null());
    assert_eq!(c::memtier_builder_add_tier(b, kp(default()), 1), 0);
    assert_eq!(c::memtier_builder_add_tier(b, kp(regular()), 4), 0);
    let m = c::memtier_builder_construct_memtier_memory(b);
    assert!(!m.is_null());
    let d0 = c::memtier_kind_allocated_size(kp(default()));
    let r0 = c::memtier_kind_allocated_size(kp(regular()));
    let ptrs: Vec<_> = (0..20_000).map(|_| c::memtier_malloc(m, 128)).collect();
    assert!(ptrs.iter().all(|p| !p.is_null()));
    let d = c::memtier_kind_allocated_size(kp(default())) - d0;
    let r = c::memtier_kind_allocated_size(kp(regular())) - r0;
    assert_eq!(d + r, 20_000 * 128);
    let ratio = r as f64 / d as f64;
    assert!((ratio - 4.0).abs() < 0.1, "default {d} regular {r}");
    for p in ptrs {
        c::memtier_kind_free(core::ptr::null(), p);
    }
    assert_eq!(c::memtier_kind_allocated_size(kp(default())), d0);
    assert_eq!(c::memtier_kind_allocated_size(kp(regular())), r0);
    c::memtier_delete_memtier_memory(m);
    c::memtier_builder_delete(b);
}

#[test]
fn dynamic_threshold_memory_sends_small_blocks_down() {
    let _g = serial();
    let b = c::memtier_builder_new(1);
    assert_eq!(c::memtier_builder_add_tier(b, kp(default()), 1), 0);
    assert_eq!(c::memtier_builder_add_tier(b, kp(regular()), 1), 0);
    let m = c::memtier_builder_construct_memtier_memory(b);
    assert!(!m.is_null());
    let small = c::memtier_malloc(m, 100);
    let big = c::memtier_malloc(m, 64 << 10);
    assert!(matches!(heap::owner(small), heap::Owner::Kind(k) if k.is_default()));
    assert!(
        matches!(heap::owner(big), heap::Owner::Kind(k) if k.id() == partition::REGULAR as u16)
    );
    c::memtier_kind_free(core::ptr::null(), small);
    c::memtier_kind_free(core::ptr::null(), big);
    c::memtier_delete_memtier_memory(m);
    c::memtier_builder_delete(b);
}

#[test]
fn realloc_and_free_keep_the_counters_right() {
    let _g = serial();
    let reg = kp(regular());
    let base = c::memtier_kind_allocated_size(reg);
    let p = c::memtier_kind_malloc(reg, 100);
    assert_eq!(c::memtier_kind_allocated_size(reg), base + 112);
    let q = c::memtier_kind_realloc(reg, p, 5000);
    assert_eq!(c::memtier_kind_allocated_size(reg), base + 5120);
    // A failed realloc leaves the block, and the counters, as they were.
    assert!(c::memtier_kind_realloc(reg, q, usize::MAX / 2).is_null());
    assert_eq!(c::memtier_kind_allocated_size(reg), base + 5120);
    // Freed through another kind's name: charged to the owner.
    c::memtier_kind_free(kp(default()), q);
    assert_eq!(c::memtier_kind_allocated_size(reg), base);
    let mut out = core::ptr::null_mut();
    assert_eq!(
        c::memtier_kind_posix_memalign(reg, &mut out, 3, 64),
        libc::EINVAL
    );
    assert_eq!(c::memtier_kind_allocated_size(reg), base);
    assert_eq!(c::memtier_kind_posix_memalign(reg, &mut out, 4096, 64), 0);
    let n = c::memtier_usable_size(out);
    assert!(n >= 64);
    assert_eq!(c::memtier_kind_allocated_size(reg), base + n);
    assert!(c::memtier_kind_realloc(reg, out, 0).is_null());
    assert_eq!(c::memtier_kind_allocated_size(reg), base);
}

#[test]
fn bogus_handles_are_errors() {
    let x = 0u64;
    let bogus = [
        core::ptr::null_mut(),
        &x as *const u64 as *mut c_void,
        0x10 as *mut c_void,
        usize::MAX as *mut c_void,
    ];
    for h in bogus {
        assert_eq!(c::memtier_builder_add_tier(h, kp(default()), 1), -1);
        assert!(c::memtier_builder_construct_memtier_memory(h).is_null());
        assert_eq!(
            c::memtier_ctl_set(h, c"policy.dynamic_threshold.trigger".as_ptr(), h),
            -1
        );
        c::memtier_builder_delete(h);
        crate::sys::set_errno(0);
        assert!(c::memtier_malloc(h, 16).is_null());
        assert_eq!(crate::sys::errno(), libc::EINVAL);
        assert!(c::memtier_calloc(h, 1, 16).is_null());
        assert!(c::memtier_realloc(h, core::ptr::null_mut(), 16).is_null());
        let mut out = core::ptr::null_mut();
        assert_eq!(c::memtier_posix_memalign(h, &mut out, 64, 16), libc::EINVAL);
        c::memtier_delete_memtier_memory(h);
        assert_eq!(c::memtier_kind_allocated_size(h as *const Kind), 0);
        assert_eq!(c::memtier_usable_size(h), 0);
    }
    // A builder is not a memory, nor the reverse.
    let b = c::memtier_builder_new(0);
    assert_eq!(c::memtier_builder_add_tier(b, kp(default()), 1), 0);
    assert_eq!(c::memtier_builder_add_tier(b, core::ptr::null(), 1), -1);
    assert_eq!(
        c::memtier_builder_add_tier(b, kp(regular()), 0),
        0,
        "ratio 0, as 1.14"
    );
    let m = c::memtier_builder_construct_memtier_memory(b);
    assert!(c::memtier_malloc(b, 16).is_null());
    assert!(c::memtier_builder_construct_memtier_memory(m).is_null());
    assert_eq!(
        c::memtier_ctl_set(b, core::ptr::null(), &x as *const u64 as *const c_void),
        -1
    );
    c::memtier_delete_memtier_memory(m);
    assert!(c::memtier_malloc(m, 16).is_null(), "deleted memory");
    // A new memory does not bring the deleted handle back.
    let m2 = c::memtier_builder_construct_memtier_memory(b);
    assert!(!m2.is_null());
    assert_ne!(m2, m);
    assert!(
        c::memtier_malloc(m, 16).is_null(),
        "deleted memory after a construct"
    );
    c::memtier_delete_memtier_memory(m2);
    c::memtier_builder_delete(b);
    assert!(
        c::memtier_builder_construct_memtier_memory(b).is_null(),
        "deleted builder"
    );
    let b2 = c::memtier_builder_new(0);
    assert_ne!(b2, b);
    assert_eq!(
        c::memtier_builder_add_tier(b, kp(default()), 1),
        -1,
        "deleted builder after a new one"
    );
    c::memtier_builder_delete(b2);
    assert!(c::memtier_builder_new(2).is_null());
    assert!(c::memtier_builder_new(-1).is_null());
}
