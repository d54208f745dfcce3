//! memkind-bench: ns per malloc+free pair for our libmemkind.so, Debian's memkind 1.14 and raw
//! jemalloc, side by side in one run; or, with `--instructions`, instructions per pair counted by
//! callgrind (`instructions.rs`). See `--help`.
//!
//! ```text
//! cargo build --release -p memkind                     # target/release/libmemkind.so
//! cargo run --release -p memkind-tests --bin memkind-bench -- --quick --reserve-hugepages 512
//! memkind-bench --format json > bench.jsonl            # one object per row; header/summary on stderr
//! memkind-bench --ours /usr/lib/x86_64-linux-gnu/libmemkind.so.0   # 1.14 in both slots (private copy)
//! memkind-bench --instructions                       # instructions per pair (callgrind), every kind
//! ```
//!
//! # What "ours" must export (resolved per handle with dlsym; nothing else is used)
//! - required: `memkind_malloc`, `memkind_free`, `memkind_check_available` (without all three,
//!   every "ours" cell is `unavail` and the missing names are printed in the header);
//! - optional: `memkind_detect_kind` (detect_kind rows), `memkind_create_pmem` +
//!   `memkind_destroy_kind` (PMEM rows), `memkind_error_message` (readable error texts);
//! - one data symbol per static kind, `MEMKIND_<NAME>`: a `memkind_t` *variable* (dlsym gives its
//!   address; the bench reads the kind pointer stored there after dlopen, so it must be
//!   initialised by then). A missing one makes that kind `unavail` for ours only.
//!
//! # Method
//! Rows are kinds available in memkind 1.14 (`memkind_check_available == 0`, PMEM created in
//! `--pmem-dir`) x sizes x patterns x threads, plus `free_kind`/`free_null` and `detect_kind` rows
//! at the lowest thread count. Per cell: n is calibrated per contender so one sample lasts about
//! `--sample-ms`; every thread warms up; then in each of `--samples` rounds ours, memkind and
//! jemalloc run one after the other (rotating order), all threads of a contender together after a
//! spinning barrier. Reported: the median over rounds of time / operations per thread. Threads are
//! created per cell (a full run creates ~400 threads, exercising each library's thread-exit path).
//! `MEMKIND_BENCH_DEBUG=1` prints each sample's per-thread start skew, wall and CPU time.

mod hugepages;
mod instructions;
mod measure;
mod output;
mod processes;
mod vtable;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hugepages::Reservation;
use measure::{
    alloc_job, detect_job, Clock, Config, Jemalloc, Job, MemkindAlloc, MemtierAlloc, Outcome,
    Pattern,
};
use output::{Format, Row};
use vtable::{static_kinds, Kind, KindStatus, Library, MEMTIERS, MEMTIER_TIERS, PMEM};

const USAGE: &str = "\
memkind-bench: ns per malloc+free pair, ours vs memkind 1.14 vs raw jemalloc, every kind

USAGE: memkind-bench [OPTIONS]

  --ours PATH              our library (default <target_dir>/release/libmemkind.so)
  --memkind PATH           reference library (default libmemkind.so.0 from the system dirs)
  --pmem-dir DIR           directory for the PMEM kind (default /tmp)
  --format human|json      table (default) or one JSON object per row on stdout
  --quick                  fewer, shorter samples (whole run < 2 min); all rows still appear
  --kinds A,B              only these kinds (names without MEMKIND_, e.g. DEFAULT,PMEM) and
                           memtier memories (MEMTIER_STATIC_RATIO, MEMTIER_DYNAMIC_THRESHOLD:
                           two tiers DEFAULT:1 + REGULAR:1, memtier_malloc / memtier_free)
  --hbw-nodes LIST         MEMKIND_HBW_NODES for both libraries when the environment has none
                           (default 0: without HBW memory, the HBW kinds exist only when
                           it names a node); --hbw-nodes none leaves it unset
  --sizes 16,256,4K,64K,1M sizes (suffix K / M = KiB / MiB)
  --threads 1,2            thread counts
  --patterns pair,batch    allocation patterns
  --samples N              samples per cell (default 7, quick 5); the median is reported
  --sample-ms MS           target duration of one sample (default 15, quick 3)
  --clock wall|cpu         wall time (default) or per-thread CPU time (max over threads): cpu
                           ignores preemption by other processes on a busy machine, but also
                           hides time threads spend blocked (locks, mmap_sem): it understates
                           contended 2-thread cells (e.g. HUGETLB 1M batch)
  --no-extras              skip the free_kind/free_null and detect_kind rows
  --dynamic-tls            keep dlopen's dynamic TLS for both libraries (by default the bench
                           re-runs itself with glibc.rtld.optional_static_tls raised, so each
                           library gets the static TLS it gets when a program links it at
                           start-up, as programs built against memkind do)
  --reserve-hugepages N    set /proc/sys/vm/nr_hugepages to N for the run (root), restore after
  --processes N            the run in N fresh processes, one after another; each figure is
                           the median over them of each process's median, and cells where
                           single processes disagree on who is faster are listed. Above the
                           thread caches (64K, 1M) a process's heap layout sets a pair's cost
                           for its life (about 250 or 500 ns per 1M pair, for all three
                           allocators): one process is one draw of it
  -h, --help               this text

  --instructions           instead of timing: instructions per malloc/free pair counted by
                           valgrind's callgrind (deterministic), every kind (and FIXED) at
                           16, 256 and 4K (or --sizes), one thread: memkind 1.14, ours, ours
                           built with initial-exec TLS, jemalloc malloc/free and
                           mallocx/dallocx (Debian's libjemalloc.so.2 preloaded); needs
                           valgrind, gcc, libmemkind-dev (tests/setup.sh installs them).
                           Takes --ours, --memkind PATH, --pmem-dir, --kinds, --sizes,
                           --format, --reserve-hugepages, and:
  --ours-ie PATH           the initial-exec build (default <target_dir>/ie/release/libmemkind.so)
  --pairs N                pairs counted per cell (default 100000)
  --warmup N               pairs run first, not counted (default 10000)
  --callgrind-dir DIR      keep callgrind's files there (for callgrind_annotate)

If --ours names the same file as --memkind, a private copy is loaded so the two instances are
independent (useful to test the bench with memkind 1.14 in both slots).
";

struct Args {
    ours: PathBuf,
    memkind: String,
    pmem_dir: PathBuf,
    format: Format,
    quick: bool,
    kinds: Option<Vec<String>>,
    sizes: Vec<usize>,
    threads: Vec<usize>,
    patterns: Vec<Pattern>,
    samples: Option<usize>,
    sample_ms: Option<f64>,
    extras: bool,
    clock: Clock,
    reserve_hugepages: Option<i64>,
    dynamic_tls: bool,
    instructions: bool,
    sizes_given: bool,
    ours_ie: PathBuf,
    pairs: u64,
    warmup: u64,
    callgrind_dir: Option<PathBuf>,
    hbw_nodes: Option<String>,
    processes: Option<usize>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.trim_end_matches("IB").trim_end_matches('B');
    let (num, mul) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 1 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: usize = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    if n == 0 {
        return Err("size 0 is not benchmarkable (memkind_malloc(k, 0) returns NULL)".into());
    }
    Ok(n * mul)
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ours: memkind_tests::target_dir()
            .join("release")
            .join("libmemkind.so"),
        memkind: "libmemkind.so.0".into(),
        pmem_dir: PathBuf::from("/tmp"),
        format: Format::Human,
        quick: false,
        kinds: None,
        sizes: vec![16, 256, 4 << 10, 64 << 10, 1 << 20],
        threads: vec![1, 2],
        patterns: vec![Pattern::Pair, Pattern::Batch],
        samples: None,
        sample_ms: None,
        extras: true,
        clock: Clock::Wall,
        reserve_hugepages: None,
        dynamic_tls: false,
        instructions: false,
        sizes_given: false,
        ours_ie: memkind_tests::target_dir()
            .join("ie")
            .join("release")
            .join("libmemkind.so"),
        pairs: 100_000,
        warmup: 10_000,
        callgrind_dir: None,
        hbw_nodes: Some("0".into()),
        processes: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut val = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--ours" => a.ours = PathBuf::from(val()?),
            "--memkind" => a.memkind = val()?,
            "--pmem-dir" => a.pmem_dir = PathBuf::from(val()?),
            "--format" => {
                a.format = match val()?.as_str() {
                    "human" | "table" => Format::Human,
                    "json" => Format::Json,
                    v => return Err(format!("unknown format {v:?}")),
                }
            }
            "--quick" => a.quick = true,
            "--no-extras" => a.extras = false,
            "--dynamic-tls" => a.dynamic_tls = true,
            "--clock" => {
                a.clock = match val()?.as_str() {
                    "wall" => Clock::Wall,
                    "cpu" => Clock::Cpu,
                    v => return Err(format!("unknown clock {v:?}")),
                }
            }
            "--kinds" => {
                let v = val()?;
                let mut ks = Vec::new();
                for k in list(&v) {
                    let k = k.to_ascii_uppercase();
                    let k = k.strip_prefix("MEMKIND_").unwrap_or(&k).to_string();
                    if k != PMEM
                        && k != instructions::FIXED
                        && !MEMTIERS.iter().any(|(n, _)| *n == k)
                        && !static_kinds().contains(&k.as_str())
                    {
                        return Err(format!(
                            "unknown kind {k:?}; known: {}, {PMEM}, {}, {} (--instructions only)",
                            static_kinds().join(", "),
                            MEMTIERS
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", "),
                            instructions::FIXED
                        ));
                    }
                    ks.push(k);
                }
                a.kinds = Some(ks);
            }
            "--sizes" => {
                a.sizes = list(&val()?).map(parse_size).collect::<Result<_, _>>()?;
                a.sizes_given = true;
            }
            "--instructions" => a.instructions = true,
            "--hbw-nodes" => {
                a.hbw_nodes = Some(val()?).filter(|v| v != "none");
            }
            "--ours-ie" => a.ours_ie = PathBuf::from(val()?),
            "--pairs" => {
                a.pairs = val()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("bad --pairs")?
            }
            "--warmup" => a.warmup = val()?.parse().map_err(|_| "bad --warmup")?,
            "--callgrind-dir" => a.callgrind_dir = Some(PathBuf::from(val()?)),
            "--threads" => {
                a.threads = list(&val()?)
                    .map(|t| {
                        t.parse::<usize>()
                            .ok()
                            .filter(|&n| n > 0)
                            .ok_or(format!("bad thread count {t:?}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--patterns" => {
                a.patterns = list(&val()?)
                    .map(|p| match p {
                        "pair" => Ok(Pattern::Pair),
                        "batch" => Ok(Pattern::Batch),
                        _ => Err(format!("unknown pattern {p:?}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--samples" => a.samples = Some(val()?.parse().map_err(|_| "bad --samples")?),
            "--sample-ms" => a.sample_ms = Some(val()?.parse().map_err(|_| "bad --sample-ms")?),
            "--processes" => {
                a.processes = Some(
                    val()?
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or("bad --processes")?,
                )
            }
            "--reserve-hugepages" => {
                a.reserve_hugepages = Some(val()?.parse().map_err(|_| "bad --reserve-hugepages")?)
            }
            _ => return Err(format!("unknown argument {arg:?} (see --help)")),
        }
    }
    if a.instructions && !a.sizes_given {
        a.sizes = vec![16, 256, 4 << 10];
    }
    if a.sizes.is_empty() || a.threads.is_empty() || a.patterns.is_empty() {
        return Err("--sizes, --threads and --patterns must not be empty".into());
    }
    Ok(a)
}

/// Prints the header / notes / summary to stdout (table) or stderr (JSON keeps stdout pure).
struct Out {
    format: Format,
}

impl Out {
    fn info(&self, s: &str) {
        match self.format {
            Format::Human => println!("{s}"),
            Format::Json => eprintln!("{s}"),
        }
    }
    fn row(&self, r: &Row) {
        println!("{}", output::format_row(r, self.format));
    }
}

fn lib_line(lib: &Library) -> String {
    let mut s = format!("{:<8} {}", lib.label, lib.requested);
    if let Some(r) = &lib.resolved {
        if r.to_string_lossy() != lib.requested {
            s += &format!(" -> {}", r.display());
        }
    }
    if let Some(c) = &lib.copied_to {
        s += &format!(
            " (same file as memkind: loaded a private copy {})",
            c.display()
        );
    }
    if let Some(e) = &lib.load_error {
        s += &format!("  NOT LOADED: {e}");
    } else if lib.core.is_none() {
        s += &format!("  UNUSABLE, missing: {}", lib.missing.join(", "));
    } else if !lib.missing.is_empty() {
        s += &format!("  (missing symbols: {})", lib.missing.join(", "));
    }
    s
}

fn status_text(s: &KindStatus) -> String {
    match s {
        KindStatus::Available(_) => "available".into(),
        KindStatus::Unavailable(why) => format!("unavail ({why})"),
    }
}

/// A memkind_malloc/free contender, or why there is none.
fn mk_contender(
    lib: &Library,
    kind: Option<Kind>,
    free_null: bool,
    pattern: Pattern,
    size: usize,
) -> Result<Job, String> {
    let fns = lib.core.ok_or_else(|| lib.unusable_reason())?;
    let kind = kind.ok_or_else(String::new)?;
    let free_kind = if free_null {
        Kind(std::ptr::null_mut())
    } else {
        kind
    };
    Ok(alloc_job(
        MemkindAlloc {
            fns,
            kind,
            free_kind,
        },
        pattern,
        size,
    ))
}

fn detect_contender(lib: &Library, kind: Option<Kind>, size: usize) -> Result<Job, String> {
    let fns = lib.core.ok_or_else(|| lib.unusable_reason())?;
    let detect = lib
        .detect_kind
        .ok_or_else(|| format!("{} lacks memkind_detect_kind", lib.label))?;
    let kind = kind.ok_or_else(String::new)?;
    Ok(detect_job(fns, detect, kind, size))
}

/// Does memkind_detect_kind(p) give back the kind p was allocated from? (informational)
fn detect_check(lib: &Library, name: &str, kind: Kind) -> Option<String> {
    let fns = lib.core?;
    let detect = lib.detect_kind?;
    // SAFETY: kind is a live kind of lib; the block is freed below.
    let p = unsafe { (fns.malloc)(kind.0, 16) };
    if p.is_null() {
        return Some(format!(
            "{}: memkind_malloc({name}, 16) returned NULL",
            lib.label
        ));
    }
    // SAFETY: p is a live block of lib.
    let got = unsafe { detect(p) };
    // SAFETY: p came from memkind_malloc(kind) of lib.
    unsafe { (fns.free)(kind.0, p) };
    if got == kind.0 {
        return None;
    }
    let other = lib
        .kinds
        .iter()
        .find(|(_, s)| s.kind() == Some(Kind(got)))
        .map_or_else(|| format!("{got:p}"), |(n, _)| n.clone());
    Some(format!(
        "{}: memkind_detect_kind(block of {name}) = {other}",
        lib.label
    ))
}

fn loadavg_text() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn loadavg1() -> f64 {
    loadavg_text()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn run() -> Result<i32, String> {
    let args = parse_args()?;
    if args.instructions {
        let reservation = match args.reserve_hugepages {
            Some(n) => Some(Reservation::reserve(n)?),
            None => None,
        };
        let code = instructions::run(&instructions::Options {
            ours: args.ours.clone(),
            ours_ie: args.ours_ie.clone(),
            memkind: args.memkind.clone(),
            pmem_dir: args.pmem_dir.clone(),
            kinds: args.kinds.clone(),
            sizes: args.sizes.clone(),
            pairs: args.pairs,
            warmup: args.warmup,
            keep_dir: args.callgrind_dir.clone(),
            format: args.format,
        });
        drop(reservation);
        return code;
    }
    if let Some(n) = args.processes {
        let reservation = match args.reserve_hugepages {
            Some(n) => Some(Reservation::reserve(n)?),
            None => None,
        };
        let code = processes::run(n, &processes::child_args(), args.format);
        drop(reservation);
        return code;
    }
    let out = Out {
        format: args.format,
    };
    let started = Instant::now();

    // Reserve hugepages before loading anything: memkind checks the pool when asked.
    let reservation = match args.reserve_hugepages {
        Some(n) => Some(Reservation::reserve(n)?),
        None => None,
    };

    // Both libraries read MEMKIND_HBW_NODES when they first look for HBW nodes: set it before
    // either is loaded (single-threaded here), unless the caller set it.
    let hbw_env = match std::env::var("MEMKIND_HBW_NODES") {
        Ok(v) => format!("MEMKIND_HBW_NODES={v} (from the environment)"),
        Err(_) => match &args.hbw_nodes {
            Some(v) => {
                std::env::set_var("MEMKIND_HBW_NODES", v);
                format!("MEMKIND_HBW_NODES={v} (set by the bench for both libraries; --hbw-nodes none: unset)")
            }
            None => "MEMKIND_HBW_NODES unset (HBW kinds need HBW memory)".into(),
        },
    };

    // Load memkind first: ours may carry SONAME libmemkind.so.0 and would otherwise satisfy the
    // soname lookup of the reference.
    let mut memkind = Library::open("memkind", &args.memkind, None);
    let mut ours = Library::open("ours", &args.ours.to_string_lossy(), Some(&memkind));
    memkind.resolve_kinds(&args.pmem_dir);
    ours.resolve_kinds(&args.pmem_dir);
    memkind.resolve_memories();
    ours.resolve_memories();

    let cfg = Config {
        samples: args.samples.unwrap_or(if args.quick { 5 } else { 7 }),
        sample_time: Duration::from_secs_f64(
            args.sample_ms
                .unwrap_or(if args.quick { 3.0 } else { 15.0 })
                / 1000.0,
        ),
        clock: args.clock,
    };

    out.info("# memkind-bench");
    out.info(&format!("# {}", lib_line(&ours)));
    out.info(&format!("# {}", lib_line(&memkind)));
    let leaks = vtable::global_scope_leaks();
    if !leaks.is_empty() {
        out.info(&format!(
            "# WARNING: visible in the global symbol scope: {}; the libraries' internal calls may bind to it",
            leaks.join(", ")
        ));
    }
    out.info(
        "# jemalloc tikv-jemalloc-sys (static, _rjem_ prefix): mallocx(size, 0) / dallocx(p, 0)",
    );
    out.info(&format!("# TLS: {}", tls_line(args.dynamic_tls)));
    out.info(&format!("# HBW: {hbw_env}"));
    out.info(&format!(
        "# method: median of {} samples of ~{:.0} ms each (n calibrated per allocator and cell); warm-up first;",
        cfg.samples,
        cfg.sample_time.as_secs_f64() * 1e3
    ));
    out.info("#   ours / memkind / jemalloc sampled in turn within each round (rotating order); first byte of");
    out.info("#   every block written. ns per pair; with T threads all T run the same loop concurrently after");
    match cfg.clock {
        Clock::Wall => out.info("#   a barrier; clock WALL: ns per pair = wall time (first start to last end) / pairs PER THREAD."),
        Clock::Cpu => out.info("#   a barrier; clock CPU: ns per pair = max per-thread CPU time / pairs PER THREAD."),
    }
    out.info(&format!(
        "#   batch = malloc {} blocks then free them; free_kind/free_null = pair with",
        measure::BATCH
    ));
    out.info("#   memkind_free(kind, p) / memkind_free(NULL, p); detect_kind = ns per memkind_detect_kind(p).");
    out.info("#   PMEM create / first_alloc = ns of memkind_create_pmem(dir, 0) / of that kind's first malloc");
    out.info("#   (smallest size), once per fresh kind, median over 21 kinds (quick: 9).");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    out.info(&format!(
        "# machine: {cpus} CPUs online, load average {}",
        loadavg_text()
    ));
    let l1 = loadavg1();
    if args.clock == Clock::Wall && l1 > cpus as f64 - 0.5 {
        out.info(&format!(
            "# WARNING: machine busy (1-min load {l1:.1} on {cpus} CPUs): other processes preempt the loops and \
             wall-clock figures can be off by up to 2x per cell; compare with --clock cpu"
        ));
    }
    match &reservation {
        Some(r) => out.info(&format!(
            "# hugepages: nr_hugepages {} -> {} granted (restored to {} at exit); free {}",
            r.previous,
            r.granted,
            r.previous,
            hugepages::free_pages().unwrap_or(-1)
        )),
        None => out.info(&format!(
            "# hugepages: nr_hugepages = {} (HUGETLB kinds need pages: --reserve-hugepages N)",
            hugepages::current().unwrap_or(-1)
        )),
    }
    let wanted = |k: &str| {
        args.kinds
            .as_ref()
            .is_none_or(|ks| ks.iter().any(|x| x == k))
    };
    let mut names: Vec<String> = static_kinds().iter().map(|s| s.to_string()).collect();
    names.push(PMEM.into());
    out.info("# kind availability (memkind_check_available; PMEM = memkind_create_pmem(dir, 0)):");
    let mut bench_kinds = Vec::new();
    for n in names.iter().filter(|n| wanted(n)) {
        let m = memkind.status(n);
        let o = ours.status(n);
        out.info(&format!(
            "#   {:<34} memkind: {:<40} ours: {}",
            n,
            status_text(&m),
            status_text(&o)
        ));
        if let Some(mk) = m.kind() {
            bench_kinds.push((n.clone(), mk, o.kind(), o));
        }
    }
    let tiers = MEMTIER_TIERS
        .iter()
        .map(|(k, r)| format!("{k}:{r}"))
        .collect::<Vec<_>>()
        .join(" + ");
    let mut bench_memories = Vec::new();
    if MEMTIERS.iter().any(|(n, _)| wanted(n)) {
        out.info(&format!(
            "# memtier memories (tiers {tiers}; memtier_malloc(memory, size) / memtier_free(p)):"
        ));
    }
    for (i, &(n, _)) in MEMTIERS.iter().enumerate().filter(|(_, (n, _))| wanted(n)) {
        let text = |r: &Result<vtable::Memory, String>| match r {
            Ok(_) => "available".to_string(),
            Err(e) => format!("unavail ({e})"),
        };
        let m = &memkind.memories[i].1;
        let o = &ours.memories[i].1;
        out.info(&format!(
            "#   {:<34} memkind: {:<40} ours: {}",
            n,
            text(m),
            text(o)
        ));
        if let Ok(mm) = m {
            bench_memories.push((n.to_string(), *mm, o.clone()));
        }
    }
    if bench_kinds.is_empty() && bench_memories.is_empty() {
        out.info("# no kind is available in memkind 1.14 here: nothing to measure");
    }
    let mut checks = Vec::new();
    for (n, mk, ok, _) in &bench_kinds {
        checks.extend(detect_check(&memkind, n, *mk));
        if let Some(k) = ok {
            checks.extend(detect_check(&ours, n, *k));
        }
    }
    if args.format == Format::Human {
        println!();
        println!("{}", output::table_header());
    }

    let mut rows: Vec<Row> = Vec::new();
    let je_job =
        |p: Pattern, size: usize| -> Result<Job, String> { Ok(alloc_job(Jemalloc, p, size)) };
    let unavail_reason = |s: &KindStatus| match s {
        KindStatus::Unavailable(w) => w.clone(),
        KindStatus::Available(_) => String::new(),
    };
    for (name, mk, ok, ostatus) in &bench_kinds {
        let ours_kind = |r: Result<Job, String>| {
            r.map_err(|e| {
                if e.is_empty() {
                    unavail_reason(ostatus)
                } else {
                    e
                }
            })
        };
        for &size in &args.sizes {
            for &pattern in &args.patterns {
                for &threads in &args.threads {
                    let cs = [
                        ours_kind(mk_contender(&ours, *ok, false, pattern, size)),
                        mk_contender(&memkind, Some(*mk), false, pattern, size),
                        je_job(pattern, size),
                    ];
                    let [o, m, j]: [Outcome; 3] = measure::measure_cell(&cs, threads, &cfg)
                        .try_into()
                        .expect("3 outcomes");
                    let r = Row {
                        kind: name.clone(),
                        size,
                        threads,
                        pattern: pattern.name(),
                        ours: o,
                        memkind: m,
                        jemalloc: j,
                    };
                    out.row(&r);
                    rows.push(r);
                }
            }
        }
    }
    // memtier memories: memtier_malloc(memory, size) / memtier_free(p).
    let memtier_job = |lib: &Library,
                       m: &Result<vtable::Memory, String>,
                       pattern: Pattern,
                       size: usize|
     -> Result<Job, String> {
        let fns = lib
            .memtier_fns()
            .ok_or_else(|| format!("{} lacks the memtier API", lib.label))?;
        let memory = m.clone()?;
        Ok(alloc_job(MemtierAlloc { fns, memory }, pattern, size))
    };
    for (name, mm, om) in &bench_memories {
        for &size in &args.sizes {
            for &pattern in &args.patterns {
                for &threads in &args.threads {
                    let cs = [
                        memtier_job(&ours, om, pattern, size),
                        memtier_job(&memkind, &Ok(*mm), pattern, size),
                        je_job(pattern, size),
                    ];
                    let [o, m, j]: [Outcome; 3] = measure::measure_cell(&cs, threads, &cfg)
                        .try_into()
                        .expect("3 outcomes");
                    let r = Row {
                        kind: name.clone(),
                        size,
                        threads,
                        pattern: pattern.name(),
                        ours: o,
                        memkind: m,
                        jemalloc: j,
                    };
                    out.row(&r);
                    rows.push(r);
                }
            }
        }
    }
    // A fresh PMEM kind: memkind_create_pmem and the kind's first malloc, each timed once per
    // life of a kind, the two libraries alternating, median over the lives.
    if args.extras && wanted(PMEM) && memkind.status(PMEM).kind().is_some() {
        let lives = if args.quick { 9 } else { 21 };
        let size = *args.sizes.iter().min().expect("non-empty");
        let mut times: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
        let mut errs: [Option<String>; 2] = [None, None];
        for life in 0..lives {
            for step in 0..2 {
                let i = (life + step) % 2;
                let lib = if i == 0 { &ours } else { &memkind };
                if errs[i].is_some() {
                    continue;
                }
                match lib.pmem_first_alloc(&args.pmem_dir, size) {
                    Ok(t) => times[i].push(t),
                    Err(e) => errs[i] = Some(e),
                }
            }
        }
        let outcome = |i: usize, pick: fn(&(f64, f64)) -> f64| match &errs[i] {
            Some(e) => Outcome::Failed(e.clone()),
            None => {
                let mut v: Vec<f64> = times[i].iter().map(pick).collect();
                v.sort_by(|a, b| a.total_cmp(b));
                Outcome::Ns(v[v.len() / 2])
            }
        };
        for (pattern, pick) in [
            ("create", (|t: &(f64, f64)| t.0) as fn(&(f64, f64)) -> f64),
            ("first_alloc", |t: &(f64, f64)| t.1),
        ] {
            let r = Row {
                kind: PMEM.into(),
                size,
                threads: 1,
                pattern,
                ours: outcome(0, pick),
                memkind: outcome(1, pick),
                jemalloc: Outcome::Unavail(String::new()),
            };
            out.row(&r);
            rows.push(r);
        }
    }
    if args.extras {
        let threads = *args.threads.iter().min().expect("non-empty");
        for (name, mk, ok, ostatus) in &bench_kinds {
            let ours_kind = |r: Result<Job, String>| {
                r.map_err(|e| {
                    if e.is_empty() {
                        unavail_reason(ostatus)
                    } else {
                        e
                    }
                })
            };
            for &size in &args.sizes {
                let cs = [
                    ours_kind(mk_contender(&ours, *ok, false, Pattern::Pair, size)),
                    ours_kind(mk_contender(&ours, *ok, true, Pattern::Pair, size)),
                    mk_contender(&memkind, Some(*mk), false, Pattern::Pair, size),
                    mk_contender(&memkind, Some(*mk), true, Pattern::Pair, size),
                    je_job(Pattern::Pair, size),
                ];
                let [ok_, on, mk_, mn, j]: [Outcome; 5] = measure::measure_cell(&cs, threads, &cfg)
                    .try_into()
                    .expect("5 outcomes");
                for (pattern, o, m) in [("free_kind", ok_, mk_), ("free_null", on, mn)] {
                    let r = Row {
                        kind: name.clone(),
                        size,
                        threads,
                        pattern,
                        ours: o,
                        memkind: m,
                        jemalloc: j.clone(),
                    };
                    out.row(&r);
                    rows.push(r);
                }
            }
        }
        for (name, mk, ok, ostatus) in &bench_kinds {
            let ours_kind = |r: Result<Job, String>| {
                r.map_err(|e| {
                    if e.is_empty() {
                        unavail_reason(ostatus)
                    } else {
                        e
                    }
                })
            };
            for &size in &args.sizes {
                let cs = [
                    ours_kind(detect_contender(&ours, *ok, size)),
                    detect_contender(&memkind, Some(*mk), size),
                ];
                let [o, m]: [Outcome; 2] = measure::measure_cell(&cs, threads, &cfg)
                    .try_into()
                    .expect("2 outcomes");
                let r = Row {
                    kind: name.clone(),
                    size,
                    threads,
                    pattern: "detect_kind",
                    ours: o,
                    memkind: m,
                    jemalloc: Outcome::Unavail(String::new()),
                };
                out.row(&r);
                rows.push(r);
            }
        }
    }

    out.info("");
    let notes = output::notes(&rows);
    if !notes.is_empty() || !checks.is_empty() {
        out.info("# notes:");
        for n in notes.iter().chain(checks.iter()) {
            out.info(&format!("#   {n}"));
        }
    }
    out.info("# targets (from the rows above; speedup = memkind_ns / ours_ns):");
    for s in output::summary(&rows) {
        out.info(&format!("#   {s}"));
    }
    out.info(&format!(
        "# total run time {:.1} s; load average at end {}",
        started.elapsed().as_secs_f64(),
        loadavg_text()
    ));
    let (samples, preempted) = measure::preemption_stats();
    if samples > 0 {
        let pct = 100.0 * preempted as f64 / samples as f64;
        out.info(&format!(
            "# preemption: in {preempted} of {samples} samples ({pct:.0}%) a thread was off-CPU for >10% of its wall time{}",
            if args.clock == Clock::Wall && pct > 20.0 {
                " -- wall-clock figures are disturbed; compare with --clock cpu"
            } else {
                ""
            }
        ));
    }

    memkind.delete_memories();
    ours.delete_memories();
    memkind.destroy_pmem();
    ours.destroy_pmem();
    drop(reservation);
    Ok(0)
}

/// Environment variable marking the re-executed process (value: the tunable it set).
const TLS_MARK: &str = "MEMKIND_BENCH_STATIC_TLS";
/// Static TLS reserve for dlopen'ed libraries: room for both libraries' TLS blocks (ours ~11 KiB,
/// memkind 1.14 ~2.6 KiB) with margin.
const STATIC_TLS_BYTES: usize = 64 << 10;

/// Describes how the libraries' thread-local storage is reached in this run.
fn tls_line(dynamic: bool) -> String {
    if dynamic {
        "dynamic (dlopen's default: TLS descriptors / __tls_get_addr resolve through the DTV)"
            .into()
    } else if std::env::var_os(TLS_MARK).is_some() {
        format!(
            "static, as when a program links the library at start-up (glibc.rtld.optional_static_tls={STATIC_TLS_BYTES}); --dynamic-tls for dlopen's dynamic TLS"
        )
    } else {
        "dynamic: the re-run with static TLS failed (see stderr)".into()
    }
}

/// Unless `--dynamic-tls` is given, run this program again with glibc's optional static TLS
/// reserve raised, so the libraries it dlopens get static TLS. A library linked at start-up (the
/// normal case for memkind users) always has static TLS; a dlopen'ed one only if the reserve
/// (512 bytes by default) can hold its TLS block, and both libraries' blocks exceed that. Without
/// this, every thread-local access of either library in the timed loops would take the dynamic
/// path, which no program linked against libmemkind.so.0 takes. Returns only if no re-run
/// happened (already re-run, opted out, or exec failed: then the run goes on with dynamic TLS).
fn reexec_with_static_tls() {
    use std::os::unix::process::CommandExt;
    // --instructions measures child processes that load the libraries at start-up.
    if std::env::var_os(TLS_MARK).is_some()
        || std::env::args().any(|a| a == "--dynamic-tls" || a == "--instructions")
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let tunable = format!("glibc.rtld.optional_static_tls={STATIC_TLS_BYTES}");
    let tunables = match std::env::var("GLIBC_TUNABLES") {
        Ok(t) if !t.is_empty() => format!("{t}:{tunable}"),
        _ => tunable.clone(),
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", tunables)
        .env(TLS_MARK, tunable)
        .exec();
    eprintln!("memkind-bench: re-run with static TLS failed ({err}); measuring with dynamic TLS");
}

fn main() {
    reexec_with_static_tls();
    // Die quietly on a closed pipe (`| head`) instead of panicking in println!. With
    // --reserve-hugepages the reservation installs its own SIGPIPE handler, which restores first.
    // SAFETY: setting a signal disposition to SIG_DFL has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let code = match run() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("memkind-bench: {e}");
            2
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("16").unwrap(), 16);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert!(parse_size("0").is_err());
        assert!(parse_size("x").is_err());
        assert_eq!(output::size_label(1 << 20), "1M");
        assert_eq!(output::size_label(4096), "4K");
        assert_eq!(output::size_label(100), "100B");
    }

    #[test]
    fn json_row() {
        let r = Row {
            kind: "DEFAULT".into(),
            size: 16,
            threads: 2,
            pattern: "pair",
            ours: Outcome::Ns(7.5),
            memkind: Outcome::Unavail("x".into()),
            jemalloc: Outcome::Failed("y".into()),
        };
        assert_eq!(
            output::format_row(&r, Format::Json),
            r#"{"kind":"DEFAULT","size":16,"threads":2,"pattern":"pair","ours_ns":7.50,"memkind_ns":null,"jemalloc_ns":null}"#
        );
    }

    #[test]
    fn cell_measures_jemalloc() {
        let cfg = Config {
            samples: 3,
            sample_time: Duration::from_millis(1),
            clock: Clock::Wall,
        };
        let cs = [
            Ok(alloc_job(Jemalloc, Pattern::Batch, 64)),
            Err("nope".to_string()),
        ];
        let out = measure::measure_cell(&cs, 2, &cfg);
        assert!(
            out[0].ns().is_some_and(|v| v > 0.0 && v < 100_000.0),
            "{:?}",
            out[0]
        );
        assert!(matches!(&out[1], Outcome::Unavail(w) if w == "nope"));
    }
}
