//! Debian's `libmemkind-progs` utilities (`memkind-hbw-nodes`, `memkind-auto-dax-kmem-nodes`,
//! `memtier`) run on our library as on memkind 1.14: the same stdout and exit status, on the host
//! and in every vmtest cell (a `kernel_` target). They call the operations API
//! (`memkind_hbw_all_get_mbind_nodemask`, `memkind_dax_kmem_all_get_mbind_nodemask`) with a NULL
//! kind, and `memtier` preloads 1.14's `libmemtier.so`, which links against `libmemkind.so.0`.
//!
//! In a two-node cell (`MEMKIND_HBW_NODES=1`) `memkind-hbw-nodes` must name node 1.

use std::path::Path;

use memkind_tests::differential::{line_diff, run, Lib, Outcome};
use memkind_tests::{cell_provides, Feature};

const HBW_NODES: &str = "/usr/bin/memkind-hbw-nodes";
const DAX_NODES: &str = "/usr/bin/memkind-auto-dax-kmem-nodes";
const MEMTIER: &str = "/usr/bin/memtier";

/// The progs are installed (tests/setup.sh installs libmemkind-progs); in a cell they come
/// from the host's file system.
fn progs_present(test: &str) -> bool {
    for p in [HBW_NODES, DAX_NODES, MEMTIER] {
        if !Path::new(p).exists() {
            if std::env::var_os("MEMKIND_RS_CELL").is_some() {
                panic!("{test}: {p} missing in a vmtest cell (the host's libmemkind-progs)");
            }
            println!("SKIP {test}: {p} missing (apt-get install libmemkind-progs)");
            return false;
        }
    }
    true
}

/// In a vmtest cell (TCG: each run of a prog against each library costs seconds) only the cases
/// that depend on the cell's topology run; the option and environment cases are the host's.
fn in_cell() -> bool {
    std::env::var_os("MEMKIND_RS_CELL").is_some()
}

/// The environment a cell sets for memkind (the runner scrubs MEMKIND_* before each run).
fn cell_env() -> Vec<(&'static str, String)> {
    ["MEMKIND_HBW_NODES", "MEMKIND_DAX_KMEM_NODES"]
        .into_iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k, v)))
        .collect()
}

/// Run `prog args` against 1.14 and against ours; both outcomes must be identical. Returns ours.
fn same(prog: &str, args: &[&str], extra: &[(&str, &str)]) -> Outcome {
    let env = cell_env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    let reference = run(Path::new(prog), args, &all, Lib::Reference);
    let ours = run(Path::new(prog), args, &all, Lib::Ours);
    assert!(
        reference.status == ours.status && reference.stdout == ours.stdout,
        "{prog} {args:?} env {all:?}:\n  1.14: {}\n  ours: {}\n{}\nours stderr: {}",
        reference.status,
        ours.status,
        line_diff(&reference.stdout, &ours.stdout),
        ours.stderr
    );
    // The first lines only (sort's output is 2000 lines).
    let head: Vec<&str> = ours.stdout.lines().take(3).collect();
    let more = ours.stdout.lines().count().saturating_sub(head.len());
    println!(
        "{prog} {args:?} {extra:?}: {} {head:?} (+{more} lines)",
        ours.status
    );
    ours
}

#[test]
fn memkind_hbw_nodes_as_on_1_14() {
    if !progs_present("memkind_hbw_nodes_as_on_1_14") {
        return;
    }
    let plain = same(HBW_NODES, &[], &[]);
    if !in_cell() {
        same(HBW_NODES, &["-h"], &[]);
        same(HBW_NODES, &["--bogus"], &[]);
        same(HBW_NODES, &[], &[("MEMKIND_HBW_NODES", "0")]);
        same(HBW_NODES, &[], &[("MEMKIND_HBW_NODES", "bogus")]);
    }
    if cell_provides(Feature::Numa2) && std::env::var("MEMKIND_HBW_NODES").as_deref() == Ok("1") {
        assert_eq!(
            (plain.status.as_str(), plain.stdout.as_str()),
            ("exit 0", "1\n"),
            "a two-node cell with MEMKIND_HBW_NODES=1: node 1 is the HBW node"
        );
        same(HBW_NODES, &[], &[("MEMKIND_HBW_NODES", "0,1")]);
    }
}

#[test]
fn memkind_auto_dax_kmem_nodes_as_on_1_14() {
    if !progs_present("memkind_auto_dax_kmem_nodes_as_on_1_14") {
        return;
    }
    same(DAX_NODES, &[], &[]);
    if !in_cell() {
        same(DAX_NODES, &["-h"], &[]);
        same(DAX_NODES, &[], &[("MEMKIND_DAX_KMEM_NODES", "0")]);
    }
}

#[test]
fn memtier_as_on_1_14() {
    if !progs_present("memtier_as_on_1_14") {
        return;
    }
    if !in_cell() {
        same(MEMTIER, &[], &[]);
        same(MEMTIER, &["-h"], &[]);
        same(MEMTIER, &["-r", "x"], &[]);
        same(MEMTIER, &["-v", "-r", "1:0", "true"], &[]);
    }
    // A program that allocates under the interposer (every malloc through the preloaded
    // libmemtier.so and our library): sort's output is deterministic.
    let input = std::env::temp_dir().join(format!("memkind-rs-progs-{}", std::process::id()));
    let lines: String = (0..2000)
        .map(|i| format!("{}\n", (i * 7919) % 2000))
        .collect();
    std::fs::write(&input, lines).unwrap();
    let out = same(
        MEMTIER,
        &["-r", "1:0", "sort", "-n", input.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status, "exit 0", "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 2000);
    let _ = std::fs::remove_file(&input);
}
