//! The differential harness: the same C program runs against memkind 1.14 (Debian's
//! `libmemkind.so.0`, the reference) and against ours (`libmemkind.so` built from `alloc/`,
//! reached through `LD_LIBRARY_PATH` and a `libmemkind.so.0` symlink); exit status and stdout
//! must be identical.
//!
//! * The C programs live in `tests/c/` and print only deterministic facts.
//! * Ours must be built first: `cargo build --release -p memkind` (`tests/test.sh` does it).
//!   When it is missing every differential test FAILS with that instruction (no skip).
//! * `MEMKIND_RS_DIFF_SELFTEST=1`: "ours" is the system 1.14 as well. This proves the harness and
//!   the determinism of every program (two runs, identical output), and the `ours_only_*` tests
//!   then assert that 1.14 FAILS them (they encode 1.14 bugs).
//! * `MEMKIND_RS_DIFF_DUMP=<dir>`: also write each case's outputs to `<dir>/<test>.{ref,ours}.txt`.
//! * Cases that reserve hugepages need root (`need(.., &[Feature::Hugetlb])`), grow the pool only
//!   as needed, restore the old `nr_hugepages` on drop, and hold a process-wide write lock; every
//!   other case holds the read lock. The pool is machine-wide, so a case whose outputs differ
//!   while the pool changed under it (another process) is rerun, at most 3 times.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::{need, target_dir, Feature};

/// The reference library's soname (Debian's memkind 1.14).
pub const SYSTEM_LIB: &str = "libmemkind.so.0";
/// A run taking longer is killed (and fails).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Free 2 MiB pages a `Huge::Reserve` case gets.
pub const HUGEPAGES: u64 = 64;
/// Free 2 MiB pages a `Huge::ReserveGiB` case gets: one GBTLB extent (1 GiB = 512 pages) and
/// some to spare.
pub const HUGEPAGES_GIB: u64 = 560;

/// Variables that change memkind's behaviour; removed from every run unless a case sets them.
pub const SCRUBBED_ENV: &[&str] = &[
    "MEMKIND_HBW_NODES",
    "MEMKIND_DAX_KMEM_NODES",
    "MEMKIND_HBW_THRESHOLD",
    "MEMKIND_ARENA_NUM_PER_KIND",
    "MEMKIND_HOG_MEMORY",
    "MEMKIND_DEBUG",
    "MEMKIND_BACKGROUND_THREAD_LIMIT",
    "MEMKIND_HEAP_MANAGER",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
];

/// `MEMKIND_RS_DIFF_SELFTEST=1`: "ours" is the system memkind 1.14 too.
pub fn selftest() -> bool {
    std::env::var("MEMKIND_RS_DIFF_SELFTEST").is_ok_and(|v| v == "1")
}

/// `tests/c/`, the C programs.
pub fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

/// Per-process scratch directory for binaries and the library symlink.
pub fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // <target>/difftest-tmp/<pid>; directories of test processes that are gone are removed.
        let root = target_dir().join("difftest-tmp");
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.parse::<u32>().is_ok() && !Path::new("/proc").join(&name).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let d = root.join(std::process::id().to_string());
        std::fs::create_dir_all(&d).expect("create temp dir");
        d
    })
}

/// Compile `tests/c/<name>.c` once per test process; returns the binary.
pub fn compiled(name: &str) -> PathBuf {
    static BINS: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut guard = BINS.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(p) = map.get(name) {
        return p.clone();
    }
    match Command::new("cc").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "the C compiler `cc` is missing: the differential suite compiles tests/c/*.c \
             (apt-get install gcc libmemkind-dev)"
        ),
    }
    let src = c_dir().join(format!("{name}.c"));
    assert!(src.exists(), "missing C program {}", src.display());
    let out = work_dir().join(name.replace('/', "_"));
    let o = Command::new("cc")
        .args(["-O1", "-Wall"])
        .arg(&src)
        .arg("-I")
        .arg(c_dir())
        .arg("-o")
        .arg(&out)
        .args(["-lmemkind", "-lpthread", "-ldl"])
        .output()
        .expect("run cc");
    assert!(
        o.status.success(),
        "cc failed for {}:\n{}\n(is libmemkind-dev installed?)",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    map.insert(name.to_string(), out.clone());
    out
}

/// Which library a run uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lib {
    /// memkind 1.14 from the system.
    Reference,
    /// memkind-rs (or, in selftest mode, the system library again).
    Ours,
}

/// Directory holding `libmemkind.so.0 -> <target>/{release,debug}/libmemkind.so`, verified to be
/// what the dynamic linker actually loads. `None` in selftest mode.
pub fn ours_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if selftest() {
        return None;
    }
    let r = DIR.get_or_init(|| {
        let t = target_dir();
        let so = ["release", "debug"]
            .iter()
            .map(|p| t.join(p).join("libmemkind.so"))
            .find(|p| p.exists())
            .ok_or_else(|| {
                format!(
                    "our library is not built: neither {0}/release/libmemkind.so nor \
                     {0}/debug/libmemkind.so exists. Build it first with \
                     `cargo build --release -p memkind` (tests/test.sh does this), or set \
                     MEMKIND_RS_DIFF_SELFTEST=1 to check the suite against memkind 1.14 alone.",
                    t.display()
                )
            })?;
        let so = so
            .canonicalize()
            .map_err(|e| format!("{}: {e}", so.display()))?;
        let dir = work_dir().join("ours-lib");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let link = dir.join(SYSTEM_LIB);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&so, &link).map_err(|e| e.to_string())?;
        // Prove the loader picks ours up.
        let probe = compiled("harness/whichlib");
        let o = Command::new(&probe)
            .env("LD_LIBRARY_PATH", &dir)
            .output()
            .map_err(|e| e.to_string())?;
        let loaded = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let loaded_canon = Path::new(&loaded)
            .canonicalize()
            .unwrap_or_else(|_| loaded.clone().into());
        if !o.status.success() || loaded_canon != so {
            return Err(format!(
                "LD_LIBRARY_PATH={} did not load ours: memkind_malloc comes from `{loaded}` \
                 (expected {}); status {:?}, stderr: {}",
                dir.display(),
                so.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok(dir)
    });
    match r {
        Ok(d) => Some(d.as_path()),
        Err(e) => panic!("{e}"),
    }
}

/// What one run produced.
pub struct Outcome {
    /// `exit N`, `killed by signal N`, or what else ended the run.
    pub status: String,
    /// Everything the program printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

fn status_text(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{s:?}"),
    }
}

/// Run `bin` with `args` and `env` (everything in [`SCRUBBED_ENV`] removed first) against `lib`.
pub fn run(bin: &Path, args: &[&str], env: &[(&str, &str)], lib: Lib) -> Outcome {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in SCRUBBED_ENV {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if lib == Lib::Ours {
        if let Some(dir) = ours_dir() {
            cmd.env("LD_LIBRARY_PATH", dir);
        }
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    // Drain the pipes on threads so a chatty child cannot block; enforce a timeout.
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break status_text(st);
        }
        if start.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break format!("timed out after {RUN_TIMEOUT:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        status,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned(),
    }
}

/// A small LCS line diff: `-` reference only, `+` ours only, 3 lines of context.
pub fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    if n * m > 4_000_000 {
        return format!("(outputs too long to diff: {n} vs {m} lines)");
    }
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.0 != ' ')
        .map(|(k, _)| k)
        .collect();
    let mut out = String::new();
    let mut last_shown: Option<usize> = None;
    for (k, (c, l)) in ops.iter().enumerate() {
        let near = changed.iter().any(|&x| x.abs_diff(k) <= 3);
        if near {
            if let Some(ls) = last_shown {
                if k > ls + 1 {
                    out.push_str("   ...\n");
                }
            } else if k > 0 {
                out.push_str("   ...\n");
            }
            out.push_str(&format!(" {c} {l}\n"));
            last_shown = Some(k);
        }
    }
    out
}

/// The last `lines` lines of `s`.
pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Hugepage pool state a case needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Huge {
    /// Whatever the host has (read lock: no case of ours changes it meanwhile).
    Host,
    /// At least `HUGEPAGES` free 2 MiB pages (root); the pool is grown if needed and restored.
    Reserve,
    /// At least `HUGEPAGES_GIB` free 2 MiB pages (root): a GBTLB kind's 1 GiB mapping fits.
    ReserveGiB,
    /// An empty pool (root). The pool is machine-wide and may be in use by other processes: the
    /// case is skipped, not forced, when the pool is not already empty.
    Empty,
}

/// Cases that reserve hugepages hold it for writing, every other case for reading.
pub static HUGE_LOCK: RwLock<()> = RwLock::new(());
const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
const NR_OVERCOMMIT: &str = "/proc/sys/vm/nr_overcommit_hugepages";

fn read_u64(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn meminfo(field: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The machine-wide hugepage pool, as memkind can see it.
fn hugepage_state() -> String {
    format!(
        "total {} free {} rsvd {} surp {} overcommit {}",
        meminfo("HugePages_Total:"),
        meminfo("HugePages_Free:"),
        meminfo("HugePages_Rsvd:"),
        meminfo("HugePages_Surp:"),
        std::fs::read_to_string(NR_OVERCOMMIT)
            .unwrap_or_default()
            .trim()
    )
}

/// Grows `nr_hugepages` so that `want` pages are free, and puts the previous count back on drop
/// (also on panic). It never shrinks a pool someone else reserved.
struct HugepageGuard {
    old: Option<u64>,
}

impl HugepageGuard {
    fn reserve(want: u64) -> HugepageGuard {
        let old = read_u64(NR_HUGEPAGES);
        let free = meminfo("HugePages_Free:").saturating_sub(meminfo("HugePages_Rsvd:"));
        if free >= want {
            return HugepageGuard { old: None };
        }
        let target = old + (want - free);
        let g = HugepageGuard { old: Some(old) };
        std::fs::write(NR_HUGEPAGES, target.to_string()).expect("write nr_hugepages");
        let now = read_u64(NR_HUGEPAGES);
        assert!(
            now >= target,
            "asked the kernel for {target} hugepages, got {now} (memory fragmented?); \
             restoring {old}"
        );
        g
    }
}

impl Drop for HugepageGuard {
    fn drop(&mut self) {
        if let Some(old) = self.old {
            if let Err(e) = std::fs::write(NR_HUGEPAGES, old.to_string()) {
                eprintln!("WARNING: could not restore nr_hugepages to {old}: {e}");
            }
        }
    }
}

/// Run one differential case: reference vs ours, same program, args and environment.
pub fn diff_case(test: &str, prog: &str, args: &[&str], env: &[(&str, &str)], huge: Huge) {
    if huge != Huge::Host && !need(test, &[Feature::Hugetlb]) {
        return;
    }
    let bin = compiled(prog);
    if !selftest() {
        ours_dir(); // fail early and clearly when ours is missing
    }
    let (_r, _w, _g);
    match huge {
        Huge::Host => _r = HUGE_LOCK.read().unwrap_or_else(|e| e.into_inner()),
        Huge::Reserve => {
            _w = HUGE_LOCK.write().unwrap_or_else(|e| e.into_inner());
            _g = HugepageGuard::reserve(HUGEPAGES);
        }
        Huge::ReserveGiB => {
            _w = HUGE_LOCK.write().unwrap_or_else(|e| e.into_inner());
            _g = HugepageGuard::reserve(HUGEPAGES_GIB);
        }
        Huge::Empty => {
            _w = HUGE_LOCK.write().unwrap_or_else(|e| e.into_inner());
            if meminfo("HugePages_Total:") != 0 || read_u64(NR_OVERCOMMIT) != 0 {
                println!(
                    "SKIP {test}: the machine-wide hugepage pool is not empty ({}); \
                     not shrinking a pool other processes may use",
                    hugepage_state()
                );
                return;
            }
        }
    }
    // The hugepage pool is machine-wide: another process may change it between our two runs.
    // When that happened and the outputs differ, run the pair again (at most 3 times).
    let (mut reference, mut ours);
    let mut attempt = 0;
    loop {
        let before = hugepage_state();
        reference = run(&bin, args, env, Lib::Reference);
        ours = run(&bin, args, env, Lib::Ours);
        let after = hugepage_state();
        attempt += 1;
        let same = reference.status == ours.status && reference.stdout == ours.stdout;
        if same || before == after || attempt == 3 {
            if !same && before != after {
                eprintln!("{test}: the hugepage pool kept changing under the test");
            }
            break;
        }
        eprintln!("{test}: hugepage pool changed during the case ({before} -> {after}); retrying");
    }
    let what = format!(
        "case {test}: {prog} {} env [{}]{}",
        args.join(" "),
        env.iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(" "),
        match huge {
            Huge::Host => "",
            Huge::Reserve => " (hugepages reserved)",
            Huge::ReserveGiB => " (1 GiB of hugepages reserved)",
            Huge::Empty => " (hugepage pool empty)",
        }
    );
    if let Ok(dir) = std::env::var("MEMKIND_RS_DIFF_DUMP") {
        let dir = Path::new(&dir);
        let _ = std::fs::create_dir_all(dir);
        for (tag, o) in [("ref", &reference), ("ours", &ours)] {
            let body = format!("# {what}\n# {}\n{}", o.status, o.stdout);
            let _ = std::fs::write(dir.join(format!("{test}.{tag}.txt")), body);
        }
    }
    // The reference must be sane, or the case itself is broken.
    assert!(
        reference.status == "exit 0",
        "{what}: memkind 1.14 itself ended with {} — the case is broken.\nstdout tail:\n{}\nstderr tail:\n{}",
        reference.status,
        tail(&reference.stdout, 10),
        tail(&reference.stderr, 10)
    );
    let who = if selftest() {
        "second 1.14 run (selftest)"
    } else {
        "ours"
    };
    if reference.status != ours.status || reference.stdout != ours.stdout {
        panic!(
            "{what}: MISMATCH\n  1.14: {}\n  {who}: {}\n--- 1.14 stdout\n+++ {who} stdout\n{}\n{who} stderr tail:\n{}\n",
            reference.status,
            ours.status,
            line_diff(&reference.stdout, &ours.stdout),
            tail(&ours.stderr, 20)
        );
    }
    println!(
        "{what}: identical ({} lines, {})",
        reference.stdout.lines().count(),
        reference.status
    );
}

/// Run an `ours_only_*` program: against ours it must exit 0; in selftest mode it runs against
/// 1.14 and must FAIL there (the program encodes a 1.14 bug).
pub fn ours_only_case(test: &str, prog: &str, args: &[&str], env: &[(&str, &str)]) {
    let bin = compiled(prog);
    let _r = HUGE_LOCK.read().unwrap_or_else(|e| e.into_inner());
    let o = run(
        &bin,
        args,
        env,
        if selftest() {
            Lib::Reference
        } else {
            Lib::Ours
        },
    );
    let what = format!("case {test}: {prog} {}", args.join(" "));
    if selftest() {
        assert!(
            o.status != "exit 0",
            "{what}: expected memkind 1.14 to fail this ours-only check, but it passed:\n{}",
            o.stdout
        );
        println!("{what}: 1.14 fails as expected ({})", o.status);
    } else {
        assert!(
            o.status == "exit 0",
            "{what}: ours ended with {}\nstdout:\n{}\nstderr tail:\n{}",
            o.status,
            o.stdout,
            tail(&o.stderr, 20)
        );
        println!("{what}: passed");
    }
}
