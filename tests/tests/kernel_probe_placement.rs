//! `memkind-probe stat` placement, end to end: tests/c/placement_workload.c touches memory of
//! some kinds and holds it; `memkind-probe stat --format json -- <workload>` must report where
//! those pages are, per kind and node, beside the node set and mode each kind asked for.
//!
//! A `kernel_*` target: it runs in every vmtest cell (numa1, numa2 with `MEMKIND_HBW_NODES=1`,
//! pmem with a DAX mount in `MEMKIND_RS_PMEM_DIR`), and on a host, where a test needing what the
//! host lacks (root, BPF, two nodes, a DAX mount) skips with the reason. Expected nodes come from
//! sysfs and the environment, not from the probe or the library.
//!
//! Needs `target/release/memkind-probe` (`cargo build --release -p memkind-probe`; vmtest/run
//! builds it) and `target/release/libmemkind.so` (`cargo build --release -p memkind`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use memkind_tests::{cc_cache, need, online_memory_nodes, parse_node_list, target_dir, Feature};
use serde_json::Value;

const MIB: u64 = 1 << 20;

fn probe_binary() -> PathBuf {
    let p = target_dir().join("release/memkind-probe");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build --release -p memkind-probe; vmtest/run does)",
        p.display()
    );
    p
}

/// A directory with `libmemkind.so.0` → target/release/libmemkind.so.
fn lib_dir(tmp: &Path) -> PathBuf {
    let so = target_dir().join("release/libmemkind.so");
    assert!(
        so.exists(),
        "{} is missing: build it first (cargo build --release -p memkind)",
        so.display()
    );
    let d = tmp.join("lib");
    std::fs::create_dir_all(&d).unwrap();
    let link = d.join("libmemkind.so.0");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(so.canonicalize().unwrap(), &link).unwrap();
    d
}

/// Build tests/c/placement_workload.c against our header and library.
fn workload(tmp: &Path, lib: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/placement_workload.c");
    let inc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../alloc/include");
    let out = tmp.join("placement_workload");
    let args: Vec<std::ffi::OsString> = vec![
        "-O1".into(),
        "-I".into(),
        inc.into(),
        src.into(),
        "-L".into(),
        lib.into(),
        "-l:libmemkind.so.0".into(),
    ];
    let o = cc_cache::cc(
        &cc_cache::cache_dir(Path::new(env!("CARGO_MANIFEST_DIR"))),
        &args,
        &out,
    )
    .expect("cc");
    assert!(
        o.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

struct Run {
    json: Value,
    /// Touched bytes per kind name, as the workload printed them.
    touched: BTreeMap<String, u64>,
}

impl Run {
    /// The kind row of `name` (`DEFAULT` or `MEMKIND_DEFAULT`; `PMEM` for the `PMEM:<dir>` kind).
    fn kind(&self, name: &str) -> &Value {
        let name = match name.strip_prefix("MEMKIND_") {
            Some(_) => name.to_string(),
            None if name == "PMEM" => name.to_string(),
            None => format!("MEMKIND_{name}"),
        };
        let name = name.as_str();
        self.json["kinds"]
            .as_array()
            .expect("kinds")
            .iter()
            .find(|k| {
                k["kind"]
                    .as_str()
                    .is_some_and(|n| n == name || (name == "PMEM" && n.starts_with("PMEM:")))
            })
            .unwrap_or_else(|| panic!("no kind {name} in {}", self.json))
    }

    fn touched(&self, name: &str) -> u64 {
        let name = name.trim_start_matches("MEMKIND_");
        let t = self.touched[name];
        assert!(t > 0, "the workload touched no {name}");
        t
    }
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number {key:?} in {v}"))
}

fn node_bytes(k: &Value, node: u64) -> u64 {
    k["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no placement (\"nodes\") in {k}"))
        .iter()
        .filter(|n| num(n, "node") == node)
        .map(|n| num(n, "bytes"))
        .sum()
}

/// How long the workload holds its memory after touching it: the summary shows the last
/// placement refresh taken while the workload lived, so at least one refresh must start after
/// the last page was touched and end before the workload exits. A refresh of the numa2 test's
/// ~1 GiB takes about a second on the host and several inside a TCG guest (a vmtest cell,
/// `MEMKIND_RS_CELL` set), where the workload holds 8 s instead of 1.5 s.
fn hold_ms() -> u32 {
    if std::env::var_os("MEMKIND_RS_CELL").is_some() {
        8000
    } else {
        1500
    }
}

/// `memkind-probe stat --format json --placement-interval 100 -- workload HOLD_MS SPECS...`.
fn stat(test: &str, specs: &[&str]) -> Run {
    let probe = probe_binary();
    let tmp = std::env::temp_dir().join(format!("memkind-rs-{test}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let lib = lib_dir(&tmp);
    let prog = workload(&tmp, &lib);
    let out = tmp.join("stat.json");
    let o = Command::new(&probe)
        .args([
            "stat",
            "--format",
            "json",
            "--placement-interval",
            "100",
            "-o",
        ])
        .arg(&out)
        .arg("--")
        .arg(&prog)
        .arg(hold_ms().to_string())
        .args(specs)
        .env("LD_LIBRARY_PATH", &lib)
        .output()
        .expect("memkind-probe");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "memkind-probe stat failed ({}): {stderr}\n{stdout}",
        o.status
    );
    assert!(stdout.lines().any(|l| l == "ready"), "workload: {stdout}");
    let touched = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("touched "))
        .map(|l| {
            let (n, b) = l.split_once(' ').unwrap();
            (
                n.trim_start_matches("MEMKIND_").to_string(),
                b.parse().unwrap(),
            )
        })
        .collect();
    let text = std::fs::read_to_string(&out).expect("stat output");
    println!("{text}");
    let json = serde_json::from_str(&text).expect("JSON");
    let _ = std::fs::remove_dir_all(&tmp);
    Run { json, touched }
}

fn assert_mostly_on(run: &Run, name: &str, node: u64) {
    let k = run.kind(name);
    let t = run.touched(name);
    let on = node_bytes(k, node);
    println!(
        "{name}: {on} of {t} touched bytes on node {node}; nodes {}, sampled {}, ±{}",
        k["nodes"], k["placement_sampled"], k["placement_error_bytes"]
    );
    assert!(
        on * 10 >= t * 9,
        "{name}: {on} of {t} touched bytes on node {node}: {k}"
    );
}

#[test]
fn one_node_default_and_regular_on_node_0() {
    let test = "one_node_default_and_regular_on_node_0";
    if !need(test, &[Feature::Root, Feature::Bpf]) {
        return;
    }
    if online_memory_nodes().len() != 1 {
        println!("SKIP {test}: for one NUMA node (the numa2 test covers two)");
        return;
    }
    let run = stat("place1", &["DEFAULT:64", "REGULAR:64"]);
    for name in ["DEFAULT", "REGULAR"] {
        assert_mostly_on(&run, name, 0);
        let k = run.kind(&format!("MEMKIND_{name}"));
        assert_eq!(
            num(k, "misplaced_bytes"),
            0,
            "{name}: one node, nothing misplaced"
        );
        assert_eq!(
            k["placement_sampled"], false,
            "{name}: 64 MiB is under the page budget"
        );
        assert!(num(k, "base_bytes") + num(k, "huge_bytes") >= run.touched(name) * 9 / 10);
    }
    assert_eq!(run.kind("MEMKIND_DEFAULT")["mbind_mode"], "none");
    println!("FEATURE probe_placement=yes");
}

#[test]
fn numa2_hbw_on_its_node_interleave_even_preferred_spills() {
    let test = "numa2_hbw_on_its_node_interleave_even_preferred_spills";
    if !need(test, &[Feature::Root, Feature::Bpf, Feature::Numa2]) {
        return;
    }
    let hbw = std::env::var("MEMKIND_HBW_NODES")
        .map(|v| parse_node_list(&v))
        .unwrap_or_default();
    if hbw != [1] {
        assert!(
            !memkind_tests::cell_provides(Feature::Numa2),
            "the numa2 cells set MEMKIND_HBW_NODES=1"
        );
        println!("SKIP {test}: needs MEMKIND_HBW_NODES=1");
        return;
    }
    // HBW (bind to node 1), INTERLEAVE (both nodes), then HBW_PREFERRED for node 1's free
    // memory + 128 MiB: what does not fit on node 1 spills to node 0.
    let run = stat(
        "place2",
        &["HBW:64", "INTERLEAVE:64", "HBW_PREFERRED:128+FREE1"],
    );
    let to_mib = |b: u64| b / MIB;

    assert_mostly_on(&run, "MEMKIND_HBW", 1);
    let h = run.kind("MEMKIND_HBW");
    assert_eq!(h["mbind_mode"], "bind");
    assert_eq!(h["asked_nodes"], serde_json::json!([1]));
    assert!(
        num(h, "misplaced_bytes") <= run.touched("HBW") / 100,
        "HBW: {h}"
    );

    let i = run.kind("MEMKIND_INTERLEAVE");
    let t = run.touched("INTERLEAVE");
    let (b0, b1) = (node_bytes(i, 0), node_bytes(i, 1));
    println!(
        "INTERLEAVE: node0 {} MiB, node1 {} MiB of {} MiB",
        to_mib(b0),
        to_mib(b1),
        to_mib(t)
    );
    assert_eq!(i["mbind_mode"], "interleave");
    assert!(
        (b0 + b1) * 10 >= t * 9,
        "INTERLEAVE: resident {} of {t}: {i}",
        b0 + b1
    );
    let even = (b0 + b1) as f64 / 2.0;
    for b in [b0, b1] {
        assert!(
            (b as f64 - even).abs() <= 0.1 * even,
            "INTERLEAVE: {b0} vs {b1} bytes, not within 10 % of even: {i}"
        );
    }
    let imb = i["interleave_imbalance"]
        .as_f64()
        .expect("interleave_imbalance");
    assert!(imb <= 0.1, "interleave_imbalance {imb}");

    let p = run.kind("MEMKIND_HBW_PREFERRED");
    let mis = num(p, "misplaced_bytes");
    let err = num(p, "placement_error_bytes");
    println!(
        "HBW_PREFERRED: touched {} MiB, node1 {} MiB, misplaced {} MiB ± {} MiB (sampled {})",
        to_mib(run.touched("HBW_PREFERRED")),
        to_mib(node_bytes(p, 1)),
        to_mib(mis),
        to_mib(err),
        p["placement_sampled"]
    );
    assert_eq!(p["mbind_mode"], "preferred");
    assert_eq!(p["asked_nodes"], serde_json::json!([1]));
    assert!(
        mis >= 16 * MIB && mis > err,
        "HBW_PREFERRED spilled nothing visible: {p}"
    );
    assert!(
        node_bytes(p, 0) >= mis,
        "misplaced bytes are the node-0 bytes: {p}"
    );
    println!("FEATURE probe_placement_numa2=yes");
}

/// The node of the persistent-memory region behind the DAX mount, from sysfs.
fn pmem_region_nodes() -> Vec<u64> {
    let mut v = Vec::new();
    if let Ok(d) = std::fs::read_dir("/sys/bus/nd/devices") {
        for e in d.flatten() {
            if e.file_name().to_string_lossy().starts_with("region") {
                if let Ok(n) = std::fs::read_to_string(e.path().join("numa_node")) {
                    if let Ok(n) = n.trim().parse::<u64>() {
                        v.push(n);
                    }
                }
            }
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn pmem_file_pages_on_the_dax_node() {
    let test = "pmem_file_pages_on_the_dax_node";
    if !need(test, &[Feature::Root, Feature::Bpf, Feature::Dax]) {
        return;
    }
    let nodes = pmem_region_nodes();
    assert_eq!(nodes.len(), 1, "one pmem region node expected: {nodes:?}");
    let run = stat("placepm", &["PMEM:64"]);
    assert_mostly_on(&run, "PMEM", nodes[0]);
    let k = run.kind("PMEM");
    assert_eq!(num(k, "unknown_node_bytes"), 0, "{k}");
    println!("FEATURE probe_placement_pmem=yes");
}
