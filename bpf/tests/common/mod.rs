//! Shared by the root tests: the skip rule, C compilation, running a workload under a probe.
#![allow(dead_code, reason = "each test file uses a part")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use memkind_bpf::{Event, HeldChild, Options, Probe, Scope, Snapshot};

/// True inside the VM matrix (`MEMKIND_RS_IN_VM=1`, or a vmtest cell promising `bpf`), where a
/// test that cannot run fails instead of skipping.
pub fn in_vm() -> bool {
    std::env::var_os("MEMKIND_RS_IN_VM").as_deref() == Some("1".as_ref())
        || std::env::var("MEMKIND_RS_CELL_PROVIDES").is_ok_and(|p| p.split(',').any(|f| f == "bpf"))
}

/// None when the test can run; else why it cannot. Inside the VM matrix ([`in_vm`]) a missing
/// requirement fails the test instead.
pub fn cannot_run() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let why = if !root {
        Some("needs root (BPF programs and uprobes)".to_owned())
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        Some("needs kernel BTF (/sys/kernel/btf/vmlinux)".to_owned())
    } else {
        None
    };
    if let Some(w) = &why {
        assert!(
            !in_vm(),
            "inside the VM matrix and the test cannot run: {w}"
        );
    }
    why
}

/// Return from the test (printing why) when it cannot run here.
#[macro_export]
macro_rules! require_root {
    () => {
        if let Some(why) = $crate::common::cannot_run() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// The `bpf/` directory (also when this file is included by memkind-tests).
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bpf")
}

#[path = "../../../tests/src/cc_cache.rs"]
mod cc_cache;

/// Compile `bpf/tests/c/<name>.c` with `cc` into `dir` (through the compile cache: see
/// `tests/src/cc_cache.rs`).
pub fn cc(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let src = manifest_dir().join("tests/c").join(format!("{name}.c"));
    let mut all: Vec<std::ffi::OsString> = vec!["-O1".into(), "-g".into(), "-Wall".into()];
    all.push(src.clone().into());
    all.push(format!("-I{}", manifest_dir().join("../alloc/include").display()).into());
    all.extend(args.iter().map(Into::into));
    let o = cc_cache::cc(&cc_cache::cache_dir(&manifest_dir()), &all, &out).expect("cc");
    assert!(
        o.status.success(),
        "cc {}: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// What a run under a probe saw.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub tgid: u32,
    pub snapshot: Snapshot,
    pub events: Vec<Event>,
    pub kind_names: BTreeMap<u32, String>,
    pub trace_mode: Option<memkind_bpf::TraceMode>,
}

/// Spawn `cmd` held, attach with `Scope::Tree`, release it, poll until it exits, drain.
pub fn run_under_probe(library: &Path, mut cmd: Command, trace: bool, record: bool) -> Run {
    cmd.stdout(std::process::Stdio::piped());
    let held = HeldChild::spawn(cmd).expect("spawn");
    let tgid = held.pid();
    let mut probe = Probe::attach(&Options {
        library: library.to_owned(),
        scope: Scope::Tree(tgid),
        cgroup: None,
        trace,
        record,
    })
    .expect("attach");
    let mut child = held.release().expect("exec");
    let mut events = Vec::new();
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
    let snapshot = probe.snapshot().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let kind_names = kind_names(&events, tgid);
    let trace_mode = probe.trace_mode();
    Run {
        status,
        stdout,
        tgid,
        snapshot,
        events,
        kind_names,
        trace_mode,
    }
}

/// Kind id -> name from the kind events of one process.
pub fn kind_names(events: &[Event], tgid: u32) -> BTreeMap<u32, String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Kind { tgid: t, rec, .. } if *t == tgid => {
                let n = rec
                    .name
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(rec.name.len());
                Some((
                    rec.kind,
                    String::from_utf8_lossy(&rec.name[..n]).into_owned(),
                ))
            }
            _ => None,
        })
        .collect()
}

/// The id of the kind called `name` in `names`, if an event named it.
pub fn kind_id_opt(names: &BTreeMap<u32, String>, name: &str) -> Option<u32> {
    names
        .iter()
        .find(|(_, n)| n.as_str() == name)
        .map(|(id, _)| *id)
}

/// The id of the kind called `name` in `names`.
pub fn kind_id(names: &BTreeMap<u32, String>, name: &str) -> u32 {
    names
        .iter()
        .find(|(_, n)| n.as_str() == name)
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("no kind event for {name}: {names:?}"))
}

/// The counters of one process and kind, summed over arenas.
pub fn kind_counters(snap: &Snapshot, tgid: u32, kind: u32) -> memkind_bpf::records::MkpCounters {
    let mut sum = memkind_bpf::records::MkpCounters::default();
    for (_, c) in snap
        .counters
        .iter()
        .filter(|(k, _)| k.tgid == tgid && k.kind == kind)
    {
        sum.allocs += c.allocs;
        sum.frees += c.frees;
        sum.reallocs += c.reallocs;
        sum.bytes_requested += c.bytes_requested;
        sum.bytes_allocated += c.bytes_allocated;
        sum.bytes_freed += c.bytes_freed;
        for (a, b) in sum.size_buckets.iter_mut().zip(c.size_buckets) {
            *a += b;
        }
    }
    sum
}

/// Page faults of one process in one kind, summed over arenas.
pub fn kind_faults(snap: &Snapshot, tgid: u32, kind: u32) -> u64 {
    snap.faults
        .iter()
        .filter(|(k, _)| k.tgid == tgid && k.kind == kind)
        .map(|(_, n)| n)
        .sum()
}

/// Our libmemkind.so (built with `cargo build --release -p memkind` when missing), exposed as
/// `libmemkind.so.0` / `libmemkind.so` in a directory of the target dir for linking (one that
/// does not change from run to run, so a workload linked with `-Wl,-rpath` to it can come from
/// the compile cache). `_dir` (the test's scratch directory) is not used.
pub fn our_library(_dir: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../target"));
    // vmtest guests run without cargo: the host builds the library first (vmtest/run).
    let so = target.join("release/libmemkind.so");
    if !so.exists() || std::env::var_os("MEMKIND_BPF_REBUILD").is_some() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--release", "-p", "memkind"])
            .current_dir(manifest_dir().join(".."))
            .status()
            .expect("cargo build -p memkind");
        assert!(st.success(), "cargo build --release -p memkind");
    }
    let dir = target.join("memkind-bpf-lib");
    std::fs::create_dir_all(&dir).unwrap();
    let so = so.canonicalize().unwrap();
    for name in ["libmemkind.so.0", "libmemkind.so"] {
        let link = dir.join(name);
        if std::fs::canonicalize(&link).ok().as_ref() != Some(&so) {
            // A new link beside it, renamed over: tests running at once never see none. The
            // temporary name is unique per call: test threads of one process share the pid.
            static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = dir.join(format!(".{name}.{}.{seq}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&so, &tmp).unwrap();
            std::fs::rename(&tmp, &link).unwrap();
        }
    }
    dir.join("libmemkind.so.0")
}

/// One "expect NAME allocs frees reallocs req allocated freed b0..b15" line of a workload.
pub struct Expect {
    pub name: String,
    pub counters: memkind_bpf::records::MkpCounters,
}

pub fn parse_expect(stdout: &str) -> Vec<Expect> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("expect "))
        .map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next().unwrap().to_owned();
            let n: Vec<u64> = it.map(|v| v.parse().unwrap()).collect();
            assert_eq!(n.len(), 6 + 16, "{l}");
            let mut c = memkind_bpf::records::MkpCounters {
                allocs: n[0],
                frees: n[1],
                reallocs: n[2],
                bytes_requested: n[3],
                bytes_allocated: n[4],
                bytes_freed: n[5],
                ..Default::default()
            };
            c.size_buckets.copy_from_slice(&n[6..]);
            Expect { name, counters: c }
        })
        .collect()
}

/// The "touched N" line.
pub fn touched(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("touched "))
        .expect("touched line")
        .parse()
        .unwrap()
}
