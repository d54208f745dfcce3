//! `memkind-probe stat` is exact: a C workload with known counts per kind (tests/c/probe_workload.c,
//! which prints what it did) runs under the probe, and the probe's JSON must report the same
//! allocs, frees, reallocs and bytes for every kind, page faults in the kinds it touched, no lost
//! events. A `kernel_*` target: it runs in every cell of the vmtest matrix (one and two NUMA
//! nodes, with a DAX mount in the pmem cell), and on a host with root and BTF; elsewhere it skips
//! with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use memkind_tests::{cc_cache, need, target_dir, Feature};

/// What the workload says it did for one kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Expect {
    allocs: u64,
    frees: u64,
    reallocs: u64,
    bytes_allocated: u64,
    bytes_freed: u64,
    touched_pages: u64,
}

fn probe_binary() -> PathBuf {
    let p = target_dir().join("release/memkind-probe");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build --release -p memkind-probe; tests/test.sh and vmtest/run do)",
        p.display()
    );
    p
}

fn lib_dir() -> PathBuf {
    let d = target_dir().join("memkind-lib");
    assert!(
        d.join("libmemkind.so.0").exists(),
        "{}/libmemkind.so.0 is missing: run tests/test.sh (or tests/demo.sh) once to build the library",
        d.display()
    );
    d
}

/// Build tests/c/probe_workload.c against our header and library into `dir`.
fn workload(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/probe_workload.c");
    let inc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../alloc/include");
    let out = dir.join("probe_workload");
    let args: Vec<std::ffi::OsString> = vec![
        "-O1".into(),
        "-I".into(),
        inc.into(),
        src.into(),
        "-L".into(),
        lib_dir().into(),
        "-l:libmemkind.so.0".into(),
        "-lpthread".into(),
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

fn parse_expect(stdout: &str) -> BTreeMap<String, Expect> {
    let mut m = BTreeMap::new();
    for l in stdout.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.first() != Some(&"expect") {
            continue;
        }
        let n: Vec<u64> = f[2..].iter().map(|x| x.parse().unwrap()).collect();
        m.insert(
            f[1].to_string(),
            Expect {
                allocs: n[0],
                frees: n[1],
                reallocs: n[2],
                bytes_allocated: n[3],
                bytes_freed: n[4],
                touched_pages: n[5],
            },
        );
    }
    assert!(stdout.lines().any(|l| l == "done"), "workload: {stdout}");
    m
}

fn num(v: &serde_json::Value, key: &str) -> u64 {
    v.get(key)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no number {key:?} in {v}"))
}

#[test]
fn stat_counts_every_kind_exactly() {
    if !need(
        "stat_counts_every_kind_exactly",
        &[Feature::Root, Feature::Bpf],
    ) {
        return;
    }
    let probe = probe_binary();
    let tmp = std::env::temp_dir().join(format!("memkind-rs-kprobe.{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let prog = workload(&tmp);
    let out = tmp.join("stat.json");
    let pmem_dir =
        std::env::var("MEMKIND_RS_PMEM_DIR").unwrap_or_else(|_| tmp.display().to_string());
    let o = Command::new(&probe)
        .args(["stat", "--format", "json", "-o"])
        .arg(&out)
        .arg("--")
        .arg(&prog)
        .arg(&pmem_dir)
        .env("LD_LIBRARY_PATH", lib_dir())
        .output()
        .expect("memkind-probe");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "memkind-probe stat failed ({}): {stderr}",
        o.status
    );
    let expect = parse_expect(&stdout);
    let json = std::fs::read_to_string(&out).expect("stat output");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    println!("{json}");
    // This process's row (the forked child is a process of its own, checked below).
    let pid: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pid ").and_then(|p| p.parse().ok()))
        .expect("workload pid");
    let procs = v["processes"].as_array().expect("processes");
    assert!(procs.len() >= 2, "the forked child is followed: {procs:?}");
    let me = procs
        .iter()
        .find(|p| p["pid"].as_u64() == Some(pid))
        .unwrap_or_else(|| panic!("pid {pid} missing: {json}"));
    let kinds = me["kinds"].as_array().expect("kinds array");
    let by_name: BTreeMap<&str, &serde_json::Value> = kinds
        .iter()
        .map(|k| (k["kind"].as_str().expect("kind name"), k))
        .collect();
    assert!(expect.contains_key("MEMKIND_DEFAULT"));
    for (name, e) in &expect {
        let k = by_name
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} missing from the probe's kinds: {json}"));
        let got = Expect {
            allocs: num(k, "allocs"),
            frees: num(k, "frees"),
            reallocs: num(k, "reallocs"),
            bytes_allocated: num(k, "bytes_allocated"),
            bytes_freed: num(k, "bytes_freed"),
            touched_pages: e.touched_pages,
        };
        assert_eq!(&got, e, "{name}: probe vs workload");
        assert_eq!(
            k["live_bytes"].as_i64(),
            Some(0),
            "{name}: everything freed"
        );
        // Touched pages fault in the kind's memory (huge pages may serve 512 at a time).
        let faults = num(k, "page_faults");
        let least = e.touched_pages.div_ceil(512).max(1);
        assert!(
            faults >= least,
            "{name}: {faults} page faults for {} touched pages",
            e.touched_pages
        );
        let arenas = k["arenas"].as_array().expect("arenas");
        let arena_allocs: u64 = arenas.iter().map(|a| num(a, "allocs")).sum();
        assert_eq!(arena_allocs, e.allocs, "{name}: arenas sum to the kind");
    }
    if expect.contains_key("MEMKIND_REGULAR") {
        let arenas = by_name["MEMKIND_REGULAR"]["arenas"].as_array().unwrap();
        assert!(
            arenas.len() >= 2,
            "REGULAR: threads take different arenas: {arenas:?}"
        );
    }
    // The forked child: alive to its normal exit under the probe, its counts in its own row.
    let (child, status, child_allocs) = stdout
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 8 && f[0] == "child").then(|| {
                (
                    f[1].parse::<u64>().unwrap(),
                    f[3].parse::<i64>().unwrap(),
                    f[5].parse::<u64>().unwrap(),
                )
            })
        })
        .expect("the workload's child line");
    assert_eq!(status, 0, "the forked child's wait status under the probe");
    let crow = procs
        .iter()
        .find(|p| p["pid"].as_u64() == Some(child))
        .unwrap_or_else(|| panic!("child {child} missing: {json}"));
    let cdefault = crow["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .find(|k| k["kind"] == "MEMKIND_DEFAULT")
        .unwrap_or_else(|| panic!("no DEFAULT in the child's row: {crow}"));
    assert_eq!(num(cdefault, "allocs"), child_allocs, "child: {cdefault}");
    assert_eq!(num(cdefault, "frees"), child_allocs, "child: {cdefault}");
    assert_eq!(num(&v, "lost_events"), 0, "lost events");
    let kind_faults: u64 = kinds.iter().map(|k| num(k, "page_faults")).sum();
    let process = num(me, "process_page_faults");
    assert!(
        process >= kind_faults,
        "process-wide faults ({process}) include the kinds' ({kind_faults})"
    );
    println!("FEATURE probe_stat_exact=yes");
    let _ = std::fs::remove_dir_all(&tmp);
}
