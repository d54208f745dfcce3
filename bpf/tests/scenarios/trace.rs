//! The per-call tier: every call one event, entry paired with return, on our library
//! (memkind_arena_*) and on memkind 1.14 (memkind_*).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;

use memkind_bpf::{Call, CallEvent, Event};

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
