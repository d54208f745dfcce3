//! Shared by the root tests: the skip rule, C compilation, running a workload under a probe.
#![allow(dead_code, reason = "each test file uses a part")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use memkind_bpf::{Event, HeldChild, Options, Probe, Scope, Snapshot};

/// None when the test can run; else why it cannot. Inside the VM matrix
/// (`MEMKIND_RS_IN_VM=1`) a missing requirement fails the test instead.
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
            std::env::var_os("MEMKIND_RS_IN_VM").as_deref() != Some("1".as_ref()),
            "MEMKIND_RS_IN_VM=1 and the test cannot run: {w}"
        );
    }
    why
}

/// Return from the test (printing why) when it cannot run here.
#[macro_export]
macro_rules! require_root {
    () => {
        if let Some(why) = common::cannot_run() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compile `bpf/tests/c/<name>.c` with `cc` into `dir`.
pub fn cc(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let src = manifest_dir().join("tests/c").join(format!("{name}.c"));
    let st = Command::new("cc")
        .args(["-O1", "-g", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .arg(format!("-I{}", manifest_dir().join("../alloc/include").display()))
        .args(args)
        .status()
        .expect("cc");
    assert!(st.success(), "cc {}", src.display());
    out
}

/// What a run under a probe saw.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub tgid: u32,
    pub snapshot: Snapshot,
    pub events: Vec<Event>,
    pub kind_names: BTreeMap<u32, String>,
}

/// Spawn `cmd` held, attach with `Scope::Tree`, release it, poll until it exits, drain.
pub fn run_under_probe(library: &Path, cmd: Command, trace: bool, record: bool) -> Run {
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
        probe.poll(Duration::from_millis(50), |e| events.push(e)).unwrap();
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
    };
    probe.poll(Duration::from_millis(10), |e| events.push(e)).unwrap();
    let snapshot = probe.snapshot().unwrap();
    let kind_names = events
        .iter()
        .filter_map(|e| match e {
            Event::Kind { tgid: t, rec, .. } if *t == tgid => {
                let n = rec.name.iter().position(|&b| b == 0).unwrap_or(rec.name.len());
                Some((rec.kind, String::from_utf8_lossy(&rec.name[..n]).into_owned()))
            }
            _ => None,
        })
        .collect();
    Run {
        status,
        tgid,
        snapshot,
        events,
        kind_names,
    }
}
