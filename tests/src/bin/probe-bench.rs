//! probe-bench: what the eBPF probe costs the program it watches, side by side in one run.
//!
//! ```text
//! cargo build --release -p memkind -p memkind-probe
//! cargo run --release -p memkind-tests --bin probe-bench            # as root, ~3 min
//! probe-bench --quick                                                # ~1 min
//! ```
//!
//! Every figure comes from `tests/c/probe_bench.c`, one process per measurement, timing itself
//! (median of 7 samples per thread, the slowest thread), against these libraries through
//! `LD_LIBRARY_PATH`:
//! - **no counters**: our library built without the `probe` feature (`--no-default-features
//!   --features dlopen`, into `<target>/noprobe`; built here when missing): the baseline;
//! - **detached**: our library as shipped, no probe attached (the semaphore is read, never set);
//! - **attached**: the same under `memkind-probe stat` (counters tier: exact per-thread counts,
//!   flushed every 1024 events through a uprobe);
//! - **memkind 1.14** (Debian's) and **jemalloc** (Debian's `libjemalloc.so.2` preloaded, plain
//!   `malloc`/`free`: the allocator's own fast path), for scale.
//!
//! Rounds rotate the order of the contenders; each cell is the median over rounds. Then: the
//! cost of a fresh-page fault detached vs attached (the `tp_btf/page_fault_user` program), the
//! rate of the trace tier (`memkind-probe trace`: on our library one uprobe per call, every lost
//! record counted; `--trace-only --probe-before P --lib-before L` puts an earlier build beside it), and the time `Probe::attach` takes on a process of 100 threads.
//! The attached rows need root and kernel BTF; without them they print why and are left out.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use memkind_tests::cc_cache;

const STOCK: &str = "/usr/lib/x86_64-linux-gnu/libmemkind.so.0";
const JEMALLOC: &str = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

const USAGE: &str = "\
probe-bench: the probe's cost to the program it watches, with memkind 1.14 and jemalloc

USAGE: probe-bench [--quick] [--rounds N] [--ms MS] [--kinds DEFAULT,REGULAR]
                   [--sizes 16,256,4096] [--threads 1,2] [--faults-only] [--probe-before PATH]

  --quick      3 rounds of 10 ms samples (default: 5 rounds of 30 ms samples)
  --rounds N   processes per contender and cell (the median is shown)
  --ms MS      length of one of the 7 samples each process takes
  --faults-only         only the fresh-page fault table, detached vs attached
  --probe-before PATH   another memkind-probe binary (e.g. a build of an earlier commit): an
                        \"attached (before)\" column in the fault table, in the same rounds
  --trace-only          only the trace tier's rate (--rounds runs per thread count)
  --lib-before PATH     with --probe-before: the trace rate also with that probe over this
                        libmemkind.so (an earlier build: the design before), runs alternating
";

struct Args {
    rounds: usize,
    ms: u32,
    kinds: Vec<String>,
    sizes: Vec<usize>,
    threads: Vec<usize>,
    faults_only: bool,
    trace_only: bool,
    probe_before: Option<PathBuf>,
    lib_before: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        rounds: 5,
        ms: 30,
        kinds: vec!["DEFAULT".into(), "REGULAR".into()],
        sizes: vec![16, 256, 4096],
        threads: vec![1, 2],
        faults_only: false,
        trace_only: false,
        probe_before: None,
        lib_before: None,
    };
    let mut it = std::env::args().skip(1);
    let list = |v: Option<String>| -> Result<Vec<String>, String> {
        Ok(v.ok_or("missing value")?
            .split(',')
            .map(str::to_string)
            .collect())
    };
    let nums = |v: Vec<String>| -> Result<Vec<usize>, String> {
        v.iter()
            .map(|s| s.parse().map_err(|_| format!("not a number: {s}")))
            .collect()
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {
                a.rounds = 3;
                a.ms = 10;
            }
            "--rounds" => a.rounds = nums(list(it.next())?)?[0].max(1),
            "--ms" => a.ms = nums(list(it.next())?)?[0].max(1) as u32,
            "--kinds" => a.kinds = list(it.next())?,
            "--sizes" => a.sizes = nums(list(it.next())?)?,
            "--threads" => a.threads = nums(list(it.next())?)?,
            "--faults-only" => a.faults_only = true,
            "--trace-only" => a.trace_only = true,
            "--lib-before" => {
                a.lib_before = Some(it.next().ok_or("missing value")?.into());
            }
            "--probe-before" => {
                a.probe_before = Some(it.next().ok_or("missing value")?.into());
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if let Some(k) = a
        .kinds
        .iter()
        .find(|k| !["DEFAULT", "REGULAR"].contains(&k.as_str()))
    {
        return Err(format!("kind {k}: DEFAULT or REGULAR"));
    }
    Ok(a)
}

/// What one measurement runs against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    NoCounters,
    Detached,
    Attached,
    /// Attached through `--probe-before`.
    AttachedBefore,
    Memkind114,
    Jemalloc,
}

impl Who {
    fn title(self) -> &'static str {
        match self {
            Who::NoCounters => "no counters",
            Who::Detached => "detached",
            Who::Attached => "attached",
            Who::AttachedBefore => "attached (before)",
            Who::Memkind114 => "memkind 1.14",
            Who::Jemalloc => "jemalloc",
        }
    }
}

struct Bench {
    exe: PathBuf,
    probe: PathBuf,
    probe_before: Option<PathBuf>,
    ours_dir: PathBuf,
    noprobe_dir: PathBuf,
    stock_dir: Option<PathBuf>,
    jemalloc: Option<PathBuf>,
    /// Why the attached rows cannot run (None: they can).
    no_attach: Option<String>,
}

fn target_dir() -> PathBuf {
    memkind_tests::target_dir()
}

/// `dir/libmemkind.so.0` and `.so` pointing at `so`.
fn lib_dir(dir: &Path, so: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let so = so.canonicalize().unwrap();
    for name in ["libmemkind.so.0", "libmemkind.so"] {
        let l = dir.join(name);
        let _ = std::fs::remove_file(&l);
        std::os::unix::fs::symlink(&so, &l).unwrap();
    }
    dir.to_path_buf()
}

/// `with_noprobe`: build (when missing) and use the library without the counters.
fn setup(with_noprobe: bool) -> Result<Bench, String> {
    let t = target_dir();
    let ours = t.join("release/libmemkind.so");
    let probe = t.join("release/memkind-probe");
    for p in [&ours, &probe] {
        if !p.exists() {
            return Err(format!(
                "{} is missing: cargo build --release -p memkind -p memkind-probe",
                p.display()
            ));
        }
    }
    let noprobe_target = t.join("noprobe");
    let noprobe = noprobe_target.join("release/libmemkind.so");
    if with_noprobe && !noprobe.exists() {
        eprintln!(
            "building the library without the probe's counters into {}",
            noprobe_target.display()
        );
        let st = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--release",
                "-p",
                "memkind",
                "--no-default-features",
                "--features",
                "dlopen",
                "--target-dir",
            ])
            .arg(&noprobe_target)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .status()
            .map_err(|e| format!("cargo: {e}"))?;
        if !st.success() {
            return Err("building the library without the probe failed".into());
        }
    }
    let base = t.join("probe-bench");
    let ours_dir = lib_dir(&base.join("ours"), &ours);
    let noprobe_dir = if with_noprobe {
        lib_dir(&base.join("noprobe"), &noprobe)
    } else {
        ours_dir.clone()
    };
    let stock_dir = Path::new(STOCK)
        .exists()
        .then(|| lib_dir(&base.join("stock"), Path::new(STOCK)));
    let jemalloc = Path::new(JEMALLOC)
        .exists()
        .then(|| PathBuf::from(JEMALLOC));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = base.join("probe_bench");
    let args: Vec<OsString> = vec![
        "-O2".into(),
        manifest.join("c/probe_bench.c").into(),
        format!("-I{}", manifest.join("../alloc/include").display()).into(),
        "-L".into(),
        ours_dir.clone().into(),
        "-lmemkind".into(),
        "-lpthread".into(),
    ];
    let o = cc_cache::cc(&cc_cache::cache_dir(manifest), &args, &exe)
        .map_err(|e| format!("cc: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "cc probe_bench.c: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    // SAFETY: geteuid has no preconditions.
    let no_attach = if unsafe { libc::geteuid() } != 0 {
        Some("needs root (BPF programs and uprobes)".to_string())
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        Some("needs kernel BTF".to_string())
    } else {
        None
    };
    Ok(Bench {
        exe,
        probe,
        probe_before: None,
        ours_dir,
        noprobe_dir,
        stock_dir,
        jemalloc,
        no_attach,
    })
}

impl Bench {
    /// `probe_bench ARGS` as `who`; the value of its `result` line.
    fn run(&self, who: Who, args: &[String]) -> Option<f64> {
        let (dir, attached) = match who {
            Who::NoCounters => (&self.noprobe_dir, false),
            Who::Detached | Who::Jemalloc => (&self.ours_dir, false),
            Who::Attached | Who::AttachedBefore => (&self.ours_dir, true),
            Who::Memkind114 => (self.stock_dir.as_ref()?, false),
        };
        let mut c = if attached {
            let probe = match who {
                Who::AttachedBefore => self.probe_before.as_ref()?,
                _ => &self.probe,
            };
            let mut c = Command::new(probe);
            c.args(["stat", "--placement-interval", "0", "-o", "/dev/null", "--"])
                .arg(&self.exe);
            c
        } else {
            Command::new(&self.exe)
        };
        if who == Who::Jemalloc {
            // Plain malloc/free ("libc" in probe_bench.c), served by the preloaded jemalloc.
            let mut a = args.to_vec();
            if a.first().map(String::as_str) == Some("pairs") {
                a[1] = "libc".into();
            }
            c.args(a).env("LD_PRELOAD", self.jemalloc.as_ref()?);
        } else {
            c.args(args);
        }
        c.env("LD_LIBRARY_PATH", dir);
        let o = c.output().ok()?;
        if !o.status.success() {
            eprintln!(
                "{} {args:?}: {}\n{}",
                who.title(),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
            l.strip_prefix("result ")?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// One cell: the median per contender over `rounds` rounds in rotating order.
fn cell(b: &Bench, who: &[Who], args: &[String], rounds: usize) -> Vec<Option<f64>> {
    let mut got: Vec<Vec<f64>> = vec![Vec::new(); who.len()];
    for r in 0..rounds {
        for i in 0..who.len() {
            let j = (i + r) % who.len();
            if let Some(v) = b.run(who[j], args) {
                got[j].push(v);
            }
        }
    }
    got.into_iter().map(median).collect()
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"))
}

fn delta(v: Option<f64>, base: Option<f64>) -> String {
    match (v, base) {
        (Some(v), Some(b)) if b > 0.0 => format!("{:+.1}%", (v / b - 1.0) * 100.0),
        _ => "-".into(),
    }
}

fn main() {
    let a = parse_args().unwrap_or_else(|e| {
        eprintln!("probe-bench: {e}");
        std::process::exit(2)
    });
    let mut b = setup(!a.faults_only && !a.trace_only).unwrap_or_else(|e| {
        eprintln!("probe-bench: {e}");
        std::process::exit(1)
    });
    b.probe_before = a.probe_before.clone();
    if a.trace_only {
        if let Some(why) = &b.no_attach {
            println!("trace rate: not measured ({why})");
            return;
        }
        trace_rate(&b, &a);
        return;
    }
    // --faults-only: detached vs attached (the no-counters library is not built for it).
    let mut who = if a.faults_only {
        vec![Who::Detached]
    } else {
        vec![Who::NoCounters, Who::Detached]
    };
    if b.no_attach.is_none() {
        who.push(Who::Attached);
    }
    if b.stock_dir.is_some() {
        who.push(Who::Memkind114);
    }
    if !a.faults_only {
        pairs_table(&b, &a, &who);
    }

    // Fresh-page faults.
    println!();
    println!(
        "ns per fresh 4 KiB page fault (256 MiB touched once, base pages; median of {} rounds, order rotating)",
        a.rounds
    );
    let mut w: Vec<Who> = who
        .iter()
        .copied()
        .filter(|&x| x != Who::Memkind114)
        .collect();
    let before = b.probe_before.is_some() && b.no_attach.is_none();
    if before {
        w.push(Who::AttachedBefore);
        println!(
            "attached (before): {}",
            b.probe_before.as_ref().unwrap().display()
        );
    }
    println!(
        "{:<8} | {:>11} | {:>8} | {:>8} {:>7}{}",
        "kind",
        "no counters",
        "detached",
        "attached",
        "Δ",
        if before {
            format!(" | {:>17} {:>7}", "attached (before)", "Δ")
        } else {
            String::new()
        }
    );
    for k in &a.kinds {
        let args = vec!["faults".into(), k.clone(), "256".into()];
        let v = cell(&b, &w, &args, a.rounds);
        let get = |x: Who| w.iter().position(|&y| y == x).and_then(|i| v[i]);
        println!(
            "{:<8} | {:>11} | {:>8} | {:>8} {:>7}{}",
            k,
            fmt(get(Who::NoCounters)),
            fmt(get(Who::Detached)),
            fmt(get(Who::Attached)),
            delta(get(Who::Attached), get(Who::Detached)),
            if before {
                format!(
                    " | {:>17} {:>7}",
                    fmt(get(Who::AttachedBefore)),
                    delta(get(Who::AttachedBefore), get(Who::Detached))
                )
            } else {
                String::new()
            }
        );
    }
    if a.faults_only {
        return;
    }

    if let Some(why) = &b.no_attach {
        println!("\ntrace rate and attach time: not measured ({why})");
        return;
    }
    trace_rate(&b, &a);
    attach_time(&b);
}

/// `memkind-probe trace` over REGULAR pairs from 1 and 2 threads: calls made and delivered per
/// second, records lost. With `--probe-before` and `--lib-before`, the same with that probe over
/// that library, runs alternating; `--trace-only` makes it `--rounds` runs per thread count.
fn trace_rate(b: &Bench, a: &Args) {
    println!();
    println!("trace tier (memkind-probe trace -o FILE, REGULAR 16 B pairs flat out)");
    let out = target_dir().join("probe-bench/trace.jsonl");
    let mut who: Vec<(&str, PathBuf, PathBuf)> = vec![("now", b.probe.clone(), b.ours_dir.clone())];
    if let (Some(p), Some(l)) = (&b.probe_before, &a.lib_before) {
        let dir = lib_dir(&target_dir().join("probe-bench/lib-before"), l);
        who.push(("before", p.clone(), dir));
    }
    let runs = if a.trace_only { a.rounds } else { 1 };
    for threads in [1, 2] {
        for _ in 0..runs {
            for (label, probe, libdir) in &who {
                trace_run(b, a, label, probe, libdir, threads, &out);
            }
        }
    }
}

fn trace_run(
    b: &Bench,
    a: &Args,
    label: &str,
    probe: &Path,
    libdir: &Path,
    threads: usize,
    out: &Path,
) {
    let t0 = Instant::now();
    let o = Command::new(probe)
        .args(["trace", "-o"])
        .arg(out)
        .arg("--")
        .arg(&b.exe)
        .args([
            "pairs",
            "REGULAR",
            "16",
            &threads.to_string(),
            &a.ms.to_string(),
        ])
        .env("LD_LIBRARY_PATH", libdir)
        .output();
    let wall = t0.elapsed().as_secs_f64();
    let Ok(o) = o else {
        println!("  {label}: memkind-probe trace did not run");
        return;
    };
    let ns_pair: Option<f64> = String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
        l.strip_prefix("result ")?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    });
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let _ = std::fs::remove_file(out);
    let end = text.lines().rev().find_map(serde_end);
    match (ns_pair, end) {
        (Some(ns), Some((calls, lost))) => {
            // Two calls per pair per thread.
            let rate = 2.0 * threads as f64 * 1e9 / ns;
            println!(
                "  {label:<6} {threads} thread(s): {ns:.0} ns per pair under trace = {:.2} M calls/s made; {calls} delivered, {lost} lost ({:.1} %); {:.2} M delivered/s of wall; {wall:.1} s wall",
                rate / 1e6,
                100.0 * lost as f64 / (calls + lost).max(1) as f64,
                calls as f64 / wall / 1e6
            );
        }
        _ => println!(
            "  {label} {threads} thread(s): no figures: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// The `{"end":true,"calls":N,"lost_events":L}` line.
fn serde_end(l: &str) -> Option<(u64, u64)> {
    let v: serde_json::Value = serde_json::from_str(l).ok()?;
    if v["end"] != true {
        return None;
    }
    Some((v["calls"].as_u64()?, v["lost_events"].as_u64()?))
}

/// `Probe::attach` to a process of 100 threads that each used a kind: median of 5.
fn attach_time(b: &Bench) {
    println!();
    let mut child = match Command::new(&b.exe)
        .args(["park", "100"])
        .env("LD_LIBRARY_PATH", &b.ours_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("attach time: probe_bench park did not start: {e}");
            return;
        }
    };
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let lib = b.ours_dir.join("libmemkind.so.0");
    let mut times = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        match memkind_bpf::Probe::attach(&memkind_bpf::Options {
            library: lib.clone(),
            scope: memkind_bpf::Scope::Pids(vec![child.id()]),
            cgroup: None,
            trace: false,
            record: false,
        }) {
            Ok(p) => {
                times.push(t0.elapsed().as_secs_f64() * 1e3);
                drop(p);
            }
            Err(e) => {
                println!("attach time: {e}");
                break;
            }
        }
    }
    let _ = child.stdin.take().unwrap().write_all(b"\n");
    let _ = child.wait();
    if let Some(m) = median(times.clone()) {
        println!(
            "attach (-p) to a process of 100 threads: {m:.1} ms (median of {}; min {:.1}, max {:.1})",
            times.len(),
            times.iter().copied().fold(f64::INFINITY, f64::min),
            times.iter().copied().fold(0.0, f64::max)
        );
    }
}

/// The malloc+free pair table.
fn pairs_table(b: &Bench, a: &Args, who: &[Who]) {
    println!("probe-bench: ns per malloc+free pair (median of {} processes, each the median of 7 samples of {} ms; 2 threads: the slower)", a.rounds, a.ms);
    if let Some(why) = &b.no_attach {
        println!("attached: not measured ({why})");
    }
    println!();
    println!(
        "{:<8} {:>5} {:>3} | {:>11} | {:>8} {:>7} | {:>8} {:>7} | {:>12} | {:>8}",
        "kind",
        "size",
        "thr",
        "no counters",
        "detached",
        "Δ",
        "attached",
        "Δ",
        "memkind 1.14",
        "jemalloc"
    );
    for t in &a.threads {
        for k in &a.kinds {
            for s in &a.sizes {
                let args = vec![
                    "pairs".into(),
                    k.clone(),
                    s.to_string(),
                    t.to_string(),
                    a.ms.to_string(),
                ];
                let mut w = who.to_vec();
                if k == "DEFAULT" && b.jemalloc.is_some() {
                    w.push(Who::Jemalloc);
                }
                let v = cell(b, &w, &args, a.rounds);
                let get = |x: Who| w.iter().position(|&y| y == x).and_then(|i| v[i]);
                let base = get(Who::NoCounters);
                let jem = get(Who::Jemalloc);
                println!(
                    "{:<8} {:>5} {:>3} | {:>11} | {:>8} {:>7} | {:>8} {:>7} | {:>12} | {:>8}",
                    k,
                    s,
                    t,
                    fmt(base),
                    fmt(get(Who::Detached)),
                    delta(get(Who::Detached), base),
                    fmt(get(Who::Attached)),
                    delta(get(Who::Attached), base),
                    fmt(get(Who::Memkind114)),
                    fmt(jem),
                );
                let _ = std::io::stdout().flush();
            }
        }
    }
}
