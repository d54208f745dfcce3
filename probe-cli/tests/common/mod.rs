//! Shared by memkind-probe's end-to-end tests: the skip rule, scratch directories, C workloads
//! built against our `libmemkind.so.0`.
#![allow(dead_code, reason = "each test file uses a part")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a test needing root and kernel BTF (and `extra`, each a program that must run with
/// `--version`-like arguments, e.g. `("tmux", &["-V"])`) cannot run here; None when it can.
/// Inside the VM matrix (`MEMKIND_RS_IN_VM=1`) a missing requirement fails the test instead.
pub fn why_not(extra: &[(&str, &[&str], &str)]) -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let why = if !root {
        Some("needs root (BPF programs and uprobes)".to_string())
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        Some("needs kernel BTF (/sys/kernel/btf/vmlinux)".to_string())
    } else {
        extra.iter().find_map(|(prog, args, why)| {
            Command::new(prog)
                .args(*args)
                .output()
                .is_err()
                .then(|| why.to_string())
        })
    };
    if let Some(w) = &why {
        assert!(
            std::env::var_os("MEMKIND_RS_IN_VM").as_deref() != Some("1".as_ref()),
            "MEMKIND_RS_IN_VM=1 and the test cannot run: {w}"
        );
    }
    why
}

/// Return from the test, saying why, when [`why_not`] says it cannot run.
#[macro_export]
macro_rules! skip_unless {
    ($name:expr, $extra:expr) => {
        if let Some(why) = $crate::common::why_not($extra) {
            println!("SKIP {}: {why}", $name);
            eprintln!("SKIP {}: {why}", $name);
            return;
        }
    };
}

pub fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest().join("../target"))
}

/// The binary under test.
pub fn probe() -> &'static str {
    env!("CARGO_BIN_EXE_memkind-probe")
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Our library as `libmemkind.so.0` (and `.so` for the linker) in `dir`, and
/// `tests/c/<name>.c` built against it (`-lpthread` included); returns the executable. Run it
/// with `LD_LIBRARY_PATH=dir`.
pub fn build_workload(dir: &Path, name: &str) -> PathBuf {
    let lib = target_dir().join("release/libmemkind.so");
    assert!(
        lib.exists(),
        "{} is missing: build it first (cargo build --release -p memkind)",
        lib.display()
    );
    let lib = lib.canonicalize().unwrap();
    for so in ["libmemkind.so.0", "libmemkind.so"] {
        if !dir.join(so).exists() {
            std::os::unix::fs::symlink(&lib, dir.join(so)).unwrap();
        }
    }
    let exe = dir.join(name);
    let st = Command::new("cc")
        .args(["-O1", "-Wall", "-o"])
        .arg(&exe)
        .arg(manifest().join(format!("tests/c/{name}.c")))
        .arg(format!(
            "-I{}",
            manifest().join("../alloc/include").display()
        ))
        .arg(format!("-L{}", dir.display()))
        .args(["-lmemkind", "-lpthread"])
        .status()
        .expect("cc");
    assert!(st.success(), "cc {name}.c");
    exe
}

/// `expect NAME allocs frees reallocs requested allocated freed` lines of a workload's stdout.
pub fn expectations(stdout: &str) -> Vec<(String, [u64; 6])> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 8 && f[0] == "expect").then(|| {
                let mut n = [0u64; 6];
                for (i, x) in f[2..].iter().enumerate() {
                    n[i] = x.parse().expect("a count");
                }
                (f[1].to_string(), n)
            })
        })
        .collect()
}
