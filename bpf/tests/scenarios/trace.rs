//! The per-call tier: every call one event, entry paired with return, on our library
//! (memkind_arena_*) and on memkind 1.14 (memkind_*).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;

use memkind_bpf::{Call, CallEvent, Event, TraceMode};

const STOCK: &str = "/usr/lib/x86_64-linux-gnu/libmemkind.so.0";

fn calls(run: &crate::common::Run) -> Vec<CallEvent> {
    run.events
        .iter()
        .filter_map(|e| match e {
            Event::Call(c) if c.tgid == run.tgid => Some(*c),
            _ => None,
        })
        .collect()
}

fn check(run: &crate::common::Run) {
    assert!(run.status.success(), "{:?}", run.status);
    let calls = calls(run);
    let mut by: BTreeMap<Call, usize> = BTreeMap::new();
    for c in &calls {
        *by.entry(c.call).or_default() += 1;
    }
    assert_eq!(by.get(&Call::Malloc), Some(&340), "{by:?}");
    assert_eq!(by.get(&Call::Realloc), Some(&5), "{by:?}");
    assert_eq!(by.get(&Call::Calloc), Some(&20), "{by:?}");
    assert_eq!(by.get(&Call::PosixMemalign), Some(&10), "{by:?}");
    assert_eq!(by.get(&Call::Free), Some(&370), "{by:?}");
    assert_eq!(calls.len(), 745);
    // Every free gives back a pointer handed out before; results are live exactly once.
    let mut live = HashSet::new();
    let mut sorted = calls.clone();
    sorted.sort_by_key(|c| c.ts_ns);
    for c in &sorted {
        assert!(c.latency_ns > 0);
        assert_eq!(c.tid, run.tgid, "single-threaded workload");
        match c.call {
            Call::Malloc | Call::Calloc | Call::PosixMemalign => {
                assert_ne!(c.result, 0, "{c:?}");
                assert!(live.insert(c.result), "{c:?}");
            }
            Call::Realloc => {
                assert!(live.remove(&c.ptr), "{c:?}");
                assert!(live.insert(c.result), "{c:?}");
                assert_eq!(c.size, 10000);
            }
            Call::Free => assert!(live.remove(&c.ptr), "{c:?}"),
            _ => panic!("{c:?}"),
        }
        if c.call == Call::Calloc {
            assert_eq!((c.num, c.size), (3, 100));
        }
        if c.call == Call::PosixMemalign {
            assert_eq!((c.align, c.size, c.ret), (256, 1000, 0));
        }
    }
    assert!(live.is_empty());
    // Two kinds, named: REGULAR's 665 calls, DEFAULT's 80 (ours sends DEFAULT through the
    // probed entry points while traced).
    let ours = run.kind_names.values().any(|n| n == "MEMKIND_REGULAR");
    let id = |ours_name: &str, stock_name: &str| {
        crate::common::kind_id(&run.kind_names, if ours { ours_name } else { stock_name })
    };
    let (regular, default) = (
        id("MEMKIND_REGULAR", "memkind_regular"),
        id("MEMKIND_DEFAULT", "memkind_default"),
    );
    let of = |k: u32| calls.iter().filter(|c| c.kind_id == Some(k)).count();
    assert_eq!((of(regular), of(default)), (665, 80), "{:?}", calls[0]);
    let json = calls[0].to_json(Some("MEMKIND_REGULAR"));
    assert!(
        json.starts_with("{\"ts_ns\":") && json.ends_with('}'),
        "{json}"
    );
    assert_eq!(run.snapshot.lost_events, 0);
    assert_eq!(run.snapshot.unpaired, 0);
}

pub fn trace_ours() {
    crate::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let lib = crate::common::our_library(dir.path());
    let libdir = lib.parent().unwrap().to_str().unwrap();
    let exe = crate::common::cc(
        dir.path(),
        "trace_workload",
        &["-L", libdir, "-lmemkind", &format!("-Wl,-rpath,{libdir}")],
    );
    let run = crate::common::run_under_probe(&lib, Command::new(&exe), true, false);
    check(&run);
    assert_eq!(run.trace_mode, Some(TraceMode::OneUprobe));
}

/// One uprobe per call (the library's own records): two threads of malloc/free pairs flat out
/// and the rare exits of the calls in a third; every call is delivered, with its thread, kind,
/// arguments and result.
pub fn trace_ours_exact() {
    crate::require_root!();
    const PAIRS: usize = 20000;
    let dir = tempfile::tempdir().unwrap();
    let lib = crate::common::our_library(dir.path());
    let libdir = lib.parent().unwrap().to_str().unwrap();
    let exe = crate::common::cc(
        dir.path(),
        "trace_calls",
        &[
            "-L",
            libdir,
            "-lmemkind",
            "-pthread",
            &format!("-Wl,-rpath,{libdir}"),
        ],
    );
    let run = crate::common::run_under_probe(&lib, Command::new(&exe), true, false);
    assert!(run.status.success(), "{:?}", run.status);
    assert_eq!(run.trace_mode, Some(TraceMode::OneUprobe));
    let calls = calls(&run);
    let made = 6 + 2 * 2 * PAIRS as u64;
    let dropped = run.snapshot.lost_events + run.snapshot.read_faults;
    if crate::common::in_vm() && dropped > 0 {
        // The software-emulated guests can leave the consumer too little CPU to keep up (5.10
        // pmem, 2026-12-03: 1 record lost), and on kernel 7.2 a probe hit may see another
        // thread's registers: its record is dropped and counted (bad_regs), or, once in 15 runs
        // (sid numa2, 2026-12-03), its read faulted (read_faults). Then every call is delivered
        // or counted (the counted records may include extent and kind records).
        let n = calls.len() as u64;
        assert!(
            n <= made && n + dropped >= made,
            "{n} calls delivered, {} lost ({} bad registers), {} read faults, {made} made",
            run.snapshot.lost_events,
            run.snapshot.bad_regs,
            run.snapshot.read_faults
        );
        eprintln!(
            "{} records lost ({} bad registers), {} read faults, counted: exact per-call checks skipped",
            run.snapshot.lost_events, run.snapshot.bad_regs, run.snapshot.read_faults
        );
        return;
    }
    assert_eq!(run.snapshot.read_faults, 0);
    assert_eq!(run.snapshot.lost_events, 0);
    let out: Vec<&str> = run.stdout.split_whitespace().collect();
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    let (a, b, einval) = (hex(out[0]), hex(out[1]), out[2].parse::<i32>().unwrap());
    let regular = crate::common::kind_id(&run.kind_names, "MEMKIND_REGULAR");
    let default = crate::common::kind_id(&run.kind_names, "MEMKIND_DEFAULT");
    // Per thread: the main thread's six calls, and two workers of PAIRS pairs each.
    let mut by_tid: BTreeMap<u32, Vec<CallEvent>> = BTreeMap::new();
    for c in &calls {
        // 0 when the clock did not advance during the call (coarse clocks in the VMs: 6.1
        // numa2, 2026-12-03).
        assert!(c.latency_ns < 1_000_000_000, "{c:?}");
        by_tid.entry(c.tid).or_default().push(*c);
    }
    assert_eq!(by_tid.len(), 3, "{:?}", by_tid.keys());
    let main = &by_tid[&run.tgid];
    let seq: Vec<Call> = main.iter().map(|c| c.call).collect();
    assert_eq!(
        seq,
        [
            Call::Realloc,
            Call::ReallocWithKindDetect,
            Call::Realloc,
            Call::Malloc,
            Call::Calloc,
            Call::PosixMemalign
        ]
    );
    assert_eq!((main[0].ptr, main[0].size, main[0].result), (0, 100, a));
    assert_eq!(main[0].kind_id, Some(regular));
    assert_eq!((main[1].ptr, main[1].size, main[1].result), (a, 200, b));
    assert_eq!((main[1].kind, main[1].kind_id), (0, None));
    assert_eq!((main[2].ptr, main[2].size, main[2].result), (b, 0, 0));
    assert_eq!((main[3].size, main[3].result), (0, 0));
    assert_eq!(
        (main[4].num, main[4].size, main[4].result),
        (u64::MAX / 2, 4, 0)
    );
    assert_eq!((main[5].align, main[5].size, main[5].ret), (3, 64, einval));
    assert_eq!(main[5].result, 0);
    // Records come in call order per thread (one ring buffer, reserved as the calls return).
    // Their times are CLOCK_MONOTONIC, which in the software-emulated VMs can step back when a
    // thread moves to another vCPU (the guests' TSCs disagree: "clocksource: Watchdog remote CPU
    // read timed out"): there a few steps back are allowed; on the host none.
    let steps_back = |ts: &mut dyn Iterator<Item = u64>| {
        let v: Vec<u64> = ts.collect();
        v.windows(2).filter(|w| w[0] > w[1]).count()
    };
    let allowed = |n: usize| if crate::common::in_vm() { n / 100 } else { 0 };
    let back = steps_back(&mut main.iter().map(|c| c.ts_ns));
    assert!(
        back <= allowed(main.len()).max(usize::from(crate::common::in_vm())),
        "{main:?}"
    );
    for (tid, cs) in &by_tid {
        if *tid == run.tgid {
            continue;
        }
        assert_eq!(cs.len(), 2 * PAIRS, "thread {tid}");
        let kind = cs[0].kind_id;
        assert!(
            kind == Some(regular) || kind == Some(default),
            "{:?}",
            cs[0]
        );
        let mut late = 0;
        for (i, pair) in cs.chunks(2).enumerate() {
            let (m, f) = (pair[0], pair[1]);
            // The records around a mismatch, to tell a reordering from a duplicate or a gap.
            let around = || {
                let lo = (2 * i).saturating_sub(6);
                let hi = (2 * i + 8).min(cs.len());
                format!(
                    "thread {tid}, pair {i}; records {lo}..{hi}: {:#?}",
                    &cs[lo..hi]
                )
            };
            assert_eq!((m.call, f.call), (Call::Malloc, Call::Free), "{}", around());
            assert_eq!(m.size, 16 + (i as u64 & 255), "{}", around());
            assert_ne!(m.result, 0, "{}", around());
            assert_eq!(f.ptr, m.result, "{}", around());
            assert_eq!((m.kind_id, f.kind_id), (kind, kind), "{}", around());
            if m.ts_ns + m.latency_ns > f.ts_ns {
                late += 1;
            }
        }
        let back = steps_back(&mut cs.iter().map(|c| c.ts_ns));
        assert!(
            late <= allowed(PAIRS) && back <= allowed(2 * PAIRS),
            "thread {tid}: {late} frees before their malloc ended, {back} steps back in time"
        );
    }
    let kinds: HashSet<Option<u32>> = by_tid
        .iter()
        .filter(|(t, _)| **t != run.tgid)
        .map(|(_, cs)| cs[0].kind_id)
        .collect();
    assert_eq!(kinds.len(), 2, "one worker per kind");
}

pub fn trace_stock() {
    crate::require_root!();
    if !Path::new(STOCK).exists() {
        assert!(!crate::common::in_vm(), "{STOCK} missing");
        eprintln!("skipped: {STOCK} missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = crate::common::cc(dir.path(), "trace_workload", &["-lmemkind"]);
    let run = crate::common::run_under_probe(Path::new(STOCK), Command::new(&exe), true, false);
    check(&run);
    // Counting goes on beside the trace.
    let regular = crate::common::kind_id(&run.kind_names, "memkind_regular");
    let c = crate::common::kind_counters(&run.snapshot, run.tgid, regular);
    assert_eq!((c.allocs, c.frees, c.reallocs), (330, 330, 5));
}
