//! The counters tier against memkind-rs's own library: exact counts per kind (threads included),
//! extent and kind events, page faults attributed to kinds, `-p` attach to a running process.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memkind_bpf::records::{extent_op, kind_op};
use memkind_bpf::{Event, Flavor, Library, Options, Probe, Scope};

pub fn counts_extents_and_faults_are_exact() {
    crate::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let lib = crate::common::our_library(dir.path());
    let l = Library::open(&lib).unwrap();
    assert_eq!(l.flavor(), Flavor::Ours);
    assert!(l.has_counters(), "{} has no probe counters", lib.display());
    let libdir = lib.parent().unwrap().to_str().unwrap();
    let exe = crate::common::cc(
        dir.path(),
        "ours_workload",
        &[
            "-L",
            libdir,
            "-lmemkind",
            "-lpthread",
            &format!("-Wl,-rpath,{libdir}"),
        ],
    );
    let pmem = dir.path().join("pmem");
    std::fs::create_dir(&pmem).unwrap();
    let mut cmd = Command::new(&exe);
    cmd.arg("run").arg(&pmem);
    let t0 = Instant::now();
    let run = crate::common::run_under_probe(&lib, cmd, false, true);
    eprintln!("run under probe: {:?}", t0.elapsed());
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stdout);
    let expect = crate::common::parse_expect(&run.stdout);
    assert_eq!(expect.len(), 3);
    for e in &expect {
        let id = crate::common::kind_id(&run.kind_names, &e.name);
        let got = crate::common::kind_counters(&run.snapshot, run.tgid, id);
        assert_eq!(got, e.counters, "kind {} (id {id})", e.name);
    }
    // Record mode: the flushes in the ring add up to the same counts.
    let mut flushed = 0;
    for e in &run.events {
        if let Event::Flush { tgid, rec, .. } = e {
            assert_eq!(*tgid, run.tgid);
            flushed += rec.delta.allocs;
        }
    }
    assert_eq!(
        flushed,
        expect.iter().map(|e| e.counters.allocs).sum::<u64>()
    );
    let regular = crate::common::kind_id(&run.kind_names, "MEMKIND_REGULAR");
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, Event::Extent { rec, .. }
            if rec.kind == regular && rec.op == extent_op::ALLOC)),
        "no ALLOC extent event for MEMKIND_REGULAR"
    );
    let touched = crate::common::touched(&run.stdout);
    let faults = crate::common::kind_faults(&run.snapshot, run.tgid, regular);
    assert!(
        faults >= touched,
        "{faults} faults in MEMKIND_REGULAR for {touched} pages touched"
    );
    eprintln!(
        "faults: regular {faults}, other {:?}; events {}",
        run.snapshot.other_faults.get(&run.tgid),
        run.events.len()
    );
    assert_eq!(run.snapshot.lost_events, 0);
    assert_eq!(run.snapshot.map_full, 0);
    assert_eq!(run.snapshot.read_faults, 0);
    assert!(run
        .events
        .iter()
        .any(|e| matches!(e, Event::Exit { tgid, code: 0, .. } if *tgid == run.tgid)));
}

pub fn attach_to_running_process_reannounces() {
    crate::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let lib = crate::common::our_library(dir.path());
    let libdir = lib.parent().unwrap().to_str().unwrap();
    let exe = crate::common::cc(
        dir.path(),
        "ours_workload",
        &[
            "-L",
            libdir,
            "-lmemkind",
            "-lpthread",
            &format!("-Wl,-rpath,{libdir}"),
        ],
    );
    let pmem = dir.path().join("pmem");
    std::fs::create_dir(&pmem).unwrap();
    let mut child = Command::new(&exe)
        .arg("wait")
        .arg(&pmem)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let t0 = Instant::now();
    let mut probe = Probe::attach(&Options {
        library: lib.clone(),
        scope: Scope::Pids(vec![pid]),
        cgroup: None,
        trace: false,
        record: false,
    })
    .unwrap();
    eprintln!("attach to a running process: {:?}", t0.elapsed());
    for p in probe.prog_stats() {
        eprintln!("  {} verified {} insns", p.name, p.verified_insns);
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    let mut events = Vec::new();
    // Phase 2 runs; read its report up to "done" (the process waits there, still mapped).
    let mut rest = String::new();
    loop {
        let mut l = String::new();
        assert!(
            out.read_line(&mut l).unwrap() > 0,
            "workload ended early: {rest}"
        );
        if l == "done\n" {
            break;
        }
        rest.push_str(&l);
    }
    probe
        .poll(Duration::from_millis(10), |e| events.push(e))
        .unwrap();
    // The block made before the attach, re-announced: every granule attributed, the last ones
    // through the tail-call chain.
    let (addr, size) = rest
        .lines()
        .find_map(|l| l.strip_prefix("big "))
        .map(|l| {
            let (a, n) = l.split_once(' ').unwrap();
            (
                u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap(),
                n.parse::<u64>().unwrap(),
            )
        })
        .expect("big line");
    let names = crate::common::kind_names(&events, pid);
    let regular = crate::common::kind_id(&names, "MEMKIND_REGULAR");
    for off in [0, size / 2, size - 1] {
        let g = probe.granule(pid, addr + off);
        assert_eq!(
            g.map(|g| g.0),
            Some(regular),
            "granule at +{off:#x} of the big block"
        );
    }
    stdin.write_all(b"exit\n").unwrap();
    let status = loop {
        probe
            .poll(Duration::from_millis(50), |e| events.push(e))
            .unwrap();
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
    };
    probe
        .poll(Duration::from_millis(10), |e| events.push(e))
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(status.success(), "{status:?}");
    let snap = probe.snapshot().unwrap();
    let names = crate::common::kind_names(&events, pid);
    let pmem_name = format!("PMEM:{}", pmem.display());
    let pmem_id = crate::common::kind_id(&names, &pmem_name);
    assert!(
        events.iter().any(|e| matches!(e, Event::Kind { rec, .. }
            if rec.kind == pmem_id && rec.op == kind_op::ANNOUNCE)),
        "the PMEM kind made before the attach was not re-announced"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::Extent { rec, .. }
            if rec.kind == pmem_id && rec.op == extent_op::ANNOUNCE)),
        "the PMEM kind's extents were not re-announced"
    );
    for e in crate::common::parse_expect(&rest) {
        let id = crate::common::kind_id(&names, &e.name);
        assert_eq!(
            crate::common::kind_counters(&snap, pid, id),
            e.counters,
            "kind {}",
            e.name
        );
    }
    assert_eq!(snap.lost_events, 0);
    assert_eq!(snap.granule_overflows, 0);
    // The exit forgot the process's granules.
    assert_eq!(probe.granule(pid, addr), None);
}

pub fn errors_say_what_is_wrong() {
    crate::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let lib = crate::common::our_library(dir.path());
    let opts = |scope| Options {
        library: lib.clone(),
        scope,
        cgroup: None,
        trace: false,
        record: false,
    };
    let e = Probe::attach(&opts(Scope::Pids(vec![u32::MAX - 1]))).unwrap_err();
    assert!(matches!(e, memkind_bpf::Error::NoSuchProcess { .. }), "{e}");
    let me = std::process::id();
    let e = Probe::attach(&opts(Scope::Pids(vec![me]))).unwrap_err();
    assert!(matches!(e, memkind_bpf::Error::NotMapped { .. }), "{e}");
    let mut o = opts(Scope::All);
    o.cgroup = Some("/nonexistent".into());
    let e = Probe::attach(&o).unwrap_err();
    assert!(matches!(e, memkind_bpf::Error::NotCgroup { .. }), "{e}");
    o.cgroup = None;
    o.library = "/bin/sh".into();
    let e = Probe::attach(&o).unwrap_err();
    assert!(matches!(e, memkind_bpf::Error::NotMemkind { .. }), "{e}");
}
