//! Stock mode: Intel's memkind 1.14 (Debian's libmemkind.so.0) under per-call probes; the
//! counts of a workload with known numbers of calls must be exact.

use std::path::Path;
use std::process::Command;

use memkind_bpf::records::size_bucket;
use memkind_bpf::{Event, Flavor, Library};

const STOCK: &str = "/usr/lib/x86_64-linux-gnu/libmemkind.so.0";

pub fn stock_counts_are_exact() {
    crate::require_root!();
    if !Path::new(STOCK).exists() {
        assert!(
            !crate::common::in_vm(),
            "{STOCK} missing (tests/setup.sh installs libmemkind0)"
        );
        eprintln!("skipped: {STOCK} missing (apt-get install libmemkind-dev libmemkind0)");
        return;
    }
    assert_eq!(Library::open(STOCK).unwrap().flavor(), Flavor::Stock);
    let dir = tempfile::tempdir().unwrap();
    let exe = crate::common::cc(dir.path(), "stock_workload", &["-lmemkind", "-lpthread"]);
    // The per-call tier depends on the kernel delivering every uprobe and uretprobe hit. The
    // Debian sid kernel (7.2) once missed one of the 1,315 DEFAULT mallocs (a 64 B one in a
    // worker thread) in the 24 matrix runs of this scenario of 2026-12-02; one more run is
    // allowed, said aloud (and as FEATURE stock_call_missed=yes), so that
    // such a miss does not fail the matrix while a real miscount (it repeats) still does.
    let mut attempt = 1;
    let run = loop {
        let run =
            crate::common::run_under_probe(Path::new(STOCK), Command::new(&exe), false, false);
        assert!(run.status.success(), "{:?}", run.status);
        // Allocs and frees: a miss on either side (a free was missed on sid-numa2 on
        // 2026-12-03: 1,302 of 1,315) gets the one more run.
        let got = crate::common::kind_id_opt(&run.kind_names, "memkind_default").map(|id| {
            let c = crate::common::kind_counters(&run.snapshot, run.tgid, id);
            (c.allocs, c.frees)
        });
        let want = 1000 + 10 + 5 + 3 * 100;
        if got == Some((want, want)) || attempt == 2 {
            break run;
        }
        eprintln!(
            "stock attempt {attempt}: memkind_default (allocs, frees) {got:?}, not 1315 each: a \
             probe hit was missed; running the workload once more"
        );
        println!("FEATURE stock_call_missed=yes");
        attempt += 1;
    };
    let by_name = |name: &str| {
        let id = run
            .kind_names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| *id)
            .unwrap_or_else(|| panic!("no kind event for {name}: {:?}", run.kind_names));
        run.snapshot
            .counters
            .iter()
            .filter(|(k, _)| k.tgid == run.tgid && k.kind == id)
            .map(|(_, c)| *c)
            .next()
            .unwrap_or_else(|| panic!("no counters for {name}: {:?}", run.snapshot.counters))
    };
    let d = by_name("memkind_default");
    assert_eq!(d.allocs, 1000 + 10 + 5 + 3 * 100, "{d:?}");
    assert_eq!(d.frees, 1000 + 10 + 5 + 3 * 100);
    assert_eq!(d.reallocs, 0);
    assert_eq!(
        d.bytes_requested,
        1000 * 100 + 10 * 100 + 5 * 4096 + 300 * 64
    );
    assert_eq!(d.bytes_freed, d.bytes_allocated);
    assert_eq!(d.size_buckets[size_bucket(100)], 1010);
    assert_eq!(d.size_buckets[size_bucket(4096)], 5);
    assert_eq!(d.size_buckets[size_bucket(64)], 300);
    let r = by_name("memkind_regular");
    assert_eq!((r.allocs, r.frees, r.reallocs), (500, 500, 7), "{r:?}");
    assert_eq!(r.bytes_requested, 500 * 1000 + 7 * 5000);
    assert_eq!(r.bytes_freed, 493 * 1000 + 7 * 5000 + 7 * 1000);
    assert_eq!(run.snapshot.live_misses, 0);
    assert_eq!(run.snapshot.lost_events, 0);
    assert!(run
        .events
        .iter()
        .any(|e| matches!(e, Event::Exit { tgid, code: 0, .. } if *tgid == run.tgid)));
}
