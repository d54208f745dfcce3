//! `--instructions`: instructions per malloc/free pair, counted by valgrind's callgrind, for every
//! kind and size, ours against memkind 1.14 and jemalloc, in one run. Deterministic: the figures
//! do not move with the machine's load (the timing mode's do, by 10–30 % on a shared machine).
//!
//! # Method
//! `tests/c/instr_pairs.c` (built against memkind's header, linked with `-lmemkind`) runs, per
//! cell, a warm-up of `--warmup` pairs and then the same loop with callgrind's collection toggled
//! on around it, once with 0 and once with `--pairs` iterations, each followed by a
//! `CALLGRIND_DUMP_STATS_AT` that names the cell: instructions per pair = (count(N) - count(0)) /
//! N. Start-up runs uninstrumented (`--instr-atstart=no`). One process per contender, run side by
//! side:
//! - **memkind 1.14**: the system's `libmemkind.so.0` (or `--memkind PATH`);
//! - **ours**: `--ours` through `LD_LIBRARY_PATH`, so it is loaded at start-up as programs that
//!   link it load it (static TLS); the loaded path is checked;
//! - **ours IE**: the initial-exec TLS build (`--ours-ie`, default `<target>/ie/release/`), when built;
//! - **ours attached**: ours with the probe's semaphore (the u16 in section `.memkind_probe`) set
//!   to 1 by the program before the cells, as the kernel sets it while `memkind-probe stat` is
//!   attached, so every pair takes the counted path. Nothing reads the flushes (no uprobe is
//!   attached under valgrind), so the figure leaves out the uprobe hit on the flush function
//!   every `MKP_FLUSH_EVERY` events (≈ 1 µs / 1024 events here, timed by `probe-bench`);
//! - **jemalloc**: Debian's `libjemalloc.so.2` under `LD_PRELOAD`: plain `malloc`/`free` (its fast
//!   path) and `mallocx(size, 0)`/`dallocx(p, 0)` (5.3.0's generic path).
//!
//! A pair includes the caller's side: the loop's counter, compare and branch, the argument moves,
//! the store to the first byte, the two calls and their PLT jumps (12 instructions per memkind
//! pair at -O2; 10 per malloc/free pair, which passes no kind).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::output::{size_label, Format};
use super::vtable::{static_kinds, PMEM};

/// Debian's jemalloc (package libjemalloc2).
pub const JEMALLOC: &str = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
/// The fixed kind (`memkind_create_fixed` over a 64 MiB mapping), named so in the table.
pub const FIXED: &str = "FIXED";

/// What the mode needs from the command line.
pub struct Options {
    /// Our library (`--ours`).
    pub ours: PathBuf,
    /// The initial-exec TLS build of it (`--ours-ie`).
    pub ours_ie: PathBuf,
    /// memkind 1.14: `libmemkind.so.0` (the system's) or a path.
    pub memkind: String,
    /// Directory for the PMEM kind.
    pub pmem_dir: PathBuf,
    /// Kinds to measure (names without `MEMKIND_`); `None`: all.
    pub kinds: Option<Vec<String>>,
    /// Allocation sizes.
    pub sizes: Vec<usize>,
    /// Pairs counted per cell.
    pub pairs: u64,
    /// Pairs run before counting, per cell.
    pub warmup: u64,
    /// Keep callgrind's files here (for `callgrind_annotate`) instead of a removed temp dir.
    pub keep_dir: Option<PathBuf>,
    /// Table or JSON lines.
    pub format: Format,
}

/// One figure of the table.
#[derive(Clone, Debug, PartialEq)]
pub enum Figure {
    /// Instructions per pair.
    Instr(f64),
    /// Not measurable here (reason).
    Unavail(String),
    /// The run went wrong (reason).
    Failed(String),
}

impl Figure {
    /// The count, if measured.
    pub fn value(&self) -> Option<f64> {
        match self {
            Figure::Instr(v) => Some(*v),
            _ => None,
        }
    }
}

/// One part file of a callgrind run: the label given to `CALLGRIND_DUMP_STATS_AT` and the
/// instruction total. `None` for a file that is not such a dump (the final one at exit).
pub fn parse_part(text: &str) -> Option<(String, u64)> {
    let mut label = None;
    let mut total = None;
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("desc: Trigger: Client Request: ") {
            label = Some(v.trim().to_string());
        } else if let Some(v) = l
            .strip_prefix("summary:")
            .or_else(|| l.strip_prefix("totals:"))
        {
            // The first event is Ir (callgrind's default event set).
            total = v.split_whitespace().next().and_then(|x| x.parse().ok());
        }
    }
    Some((label?, total?))
}

/// Instructions per pair from the dumps of one run: `parts` maps "CELL n=COUNT" to totals.
pub fn per_pair(parts: &BTreeMap<String, u64>, cell: &str, pairs: u64) -> Figure {
    let zero = parts.get(&format!("{cell} n=0"));
    let full = parts.get(&format!("{cell} n={pairs}"));
    match (zero, full) {
        (Some(&z), Some(&f)) if f >= z && pairs > 0 => Figure::Instr((f - z) as f64 / pairs as f64),
        (Some(_), Some(_)) => Figure::Failed("count with N pairs below the count with none".into()),
        _ => Figure::Failed("callgrind wrote no dump for this cell".into()),
    }
}

/// One process of `instr_pairs` under callgrind.
struct Run {
    label: &'static str,
    env: Vec<(&'static str, OsString)>,
    cells: Vec<String>,
    /// The library the process must have loaded (canonical), when it is ours.
    expect_lib: Option<PathBuf>,
    /// Set when the contender cannot run at all.
    unavail: Option<String>,
}

/// Per cell: the figure.
type Results = BTreeMap<String, Figure>;

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What the mode needs on this machine, with the package to install for each missing piece.
pub fn missing_tools() -> Vec<String> {
    let mut v = Vec::new();
    if !have("valgrind", "--version") {
        v.push("valgrind (callgrind counts the instructions): apt-get install valgrind".into());
    } else if !Path::new("/usr/include/valgrind/callgrind.h").exists() {
        v.push("valgrind/callgrind.h: apt-get install valgrind".into());
    }
    if !have("cc", "--version") {
        v.push("a C compiler: apt-get install gcc".into());
    }
    if !Path::new("/usr/include/memkind.h").exists() {
        v.push("memkind.h and -lmemkind (memkind 1.14): apt-get install libmemkind-dev".into());
    }
    v
}

fn lib_dir(dir: &Path, so: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let so = so
        .canonicalize()
        .map_err(|e| format!("{}: {e}", so.display()))?;
    for name in ["libmemkind.so.0", "libmemkind.so"] {
        let l = dir.join(name);
        let _ = std::fs::remove_file(&l);
        std::os::unix::fs::symlink(&so, &l).map_err(|e| format!("{}: {e}", l.display()))?;
    }
    Ok(dir.to_path_buf())
}

fn compile(work: &Path) -> Result<PathBuf, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = work.join("instr_pairs");
    let args: Vec<OsString> = vec![
        "-O2".into(),
        "-fno-builtin".into(),
        "-Wall".into(),
        manifest.join("c/instr_pairs.c").into(),
        "-lmemkind".into(),
        "-ldl".into(),
    ];
    let o = memkind_tests::cc_cache::cc(&memkind_tests::cc_cache::cache_dir(manifest), &args, &exe)
        .map_err(|e| format!("cc: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "cc instr_pairs.c failed (libmemkind-dev and valgrind installed?):\n{}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(exe)
}

fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

/// Run one contender; every cell gets a figure.
fn execute(run: &Run, exe: &Path, out_dir: &Path, opts: &Options) -> Results {
    let mut res = Results::new();
    if let Some(why) = &run.unavail {
        for c in &run.cells {
            res.insert(c.clone(), Figure::Unavail(why.clone()));
        }
        return res;
    }
    let base = out_dir.join(format!("{}.out", run.label));
    // Old parts of an earlier run in a kept directory would be read as this run's.
    if let Ok(rd) = std::fs::read_dir(out_dir) {
        let prefix = format!("{}.out", run.label);
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--tool=callgrind",
        "--instr-atstart=no",
        "--collect-atstart=no",
    ])
    .arg(format!("--callgrind-out-file={}", base.display()))
    .arg(exe)
    .arg(opts.pairs.to_string())
    .arg(opts.warmup.to_string())
    .args(&run.cells)
    .env("INSTR_PMEM_DIR", &opts.pmem_dir)
    .env_remove("LD_LIBRARY_PATH")
    .env_remove("LD_PRELOAD");
    for (k, v) in &run.env {
        cmd.env(k, v);
    }
    let fail_all = |res: &mut Results, why: String| {
        for c in &run.cells {
            res.entry(c.clone())
                .or_insert_with(|| Figure::Failed(why.clone()));
        }
    };
    let o = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            fail_all(&mut res, format!("valgrind: {e}"));
            return res;
        }
    };
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        fail_all(
            &mut res,
            format!("{} run: {}\n{}", run.label, o.status, tail(&stderr, 8)),
        );
        return res;
    }
    if let Some(want) = &run.expect_lib {
        let got = stdout
            .lines()
            .find_map(|l| l.strip_prefix("lib "))
            .unwrap_or("?");
        let got_c = Path::new(got).canonicalize().unwrap_or_else(|_| got.into());
        if &got_c != want {
            fail_all(&mut res, format!("loaded {got}, not {}", want.display()));
            return res;
        }
    }
    let mut parts = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(out_dir) {
        let prefix = format!("{}.out.", run.label);
        for e in rd.flatten() {
            if !e.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            if let Some((l, t)) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|s| parse_part(&s))
            {
                parts.insert(l, t);
            }
        }
    }
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("cell ") else {
            continue;
        };
        let (cell, status) = rest.split_once(' ').unwrap_or((rest, ""));
        let fig = match status.split_once(' ') {
            Some(("unavail", why)) => Figure::Unavail(why.to_string()),
            _ if status == "ok" => per_pair(&parts, cell, opts.pairs),
            _ => Figure::Failed(format!("unexpected line {line:?}")),
        };
        res.insert(cell.to_string(), fig);
    }
    fail_all(&mut res, "instr_pairs printed nothing for this cell".into());
    res
}

/// The address (relative to the load base) of the probe's semaphore in library `so`: the last
/// two bytes of section `.memkind_probe` (`sh_addr + sh_size - 2`), from `readelf -SW`
/// (binutils, installed with the C compiler this mode needs).
fn semaphore_vma(so: &Path) -> Result<u64, String> {
    let o = Command::new("readelf")
        .arg("-SW")
        .arg(so)
        .output()
        .map_err(|e| format!("readelf: {e}"))?;
    let text = String::from_utf8_lossy(&o.stdout);
    section_addr_size(&text, ".memkind_probe")
        .filter(|&(_, size)| size >= 2)
        .map(|(addr, size)| addr + size - 2)
        .ok_or_else(|| {
            format!(
                "{} has no section .memkind_probe (no probe counters)",
                so.display()
            )
        })
}

/// `sh_addr` and `sh_size` of section `name` in `readelf -SW` output.
fn section_addr_size(readelf: &str, name: &str) -> Option<(u64, u64)> {
    readelf.lines().find_map(|l| {
        // "  [16] .memkind_probe     PROGBITS        0000000000148c00 147c00 000008 00  WA  0   0  8"
        let rest = l.split_once(']')?.1;
        let mut w = rest.split_whitespace();
        (w.next()? == name).then_some(())?;
        let _type = w.next()?;
        let addr = u64::from_str_radix(w.next()?, 16).ok()?;
        let _off = w.next()?;
        Some((addr, u64::from_str_radix(w.next()?, 16).ok()?))
    })
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// Kind name without `MEMKIND_`.
    pub kind: String,
    /// Bytes.
    pub size: usize,
    /// memkind 1.14.
    pub memkind: Figure,
    /// Ours.
    pub ours: Figure,
    /// Ours, initial-exec TLS build.
    pub ours_ie: Figure,
    /// Ours with the probe's semaphore set (the counted path, as while `stat` is attached).
    pub ours_attached: Figure,
    /// Our DEFAULT at this size (for the non-default / DEFAULT ratio).
    pub ours_default: Option<f64>,
    /// jemalloc's malloc/free.
    pub je_malloc: Figure,
    /// jemalloc's mallocx/dallocx.
    pub je_mallocx: Figure,
}

fn fig(f: &Figure) -> String {
    match f {
        Figure::Instr(v) => format!("{v:.1}"),
        Figure::Unavail(_) => "unavail".into(),
        Figure::Failed(_) => "FAILED".into(),
    }
}

fn ratio(a: &Figure, b: Option<f64>) -> String {
    match (a.value(), b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "—".into(),
    }
}

/// The table header (markdown).
pub fn table_header() -> String {
    "| kind, size | memkind 1.14 | ours | ours/1.14 | ours/DEFAULT | ours IE | IE/1.14 | jemalloc malloc/free | ours/jemalloc | mallocx/dallocx | ours attached | attached/ours |\n\
     |---|---|---|---|---|---|---|---|---|---|---|---|"
        .into()
}

/// One row (markdown, or a JSON object).
pub fn format_row(r: &Row, f: Format) -> String {
    match f {
        Format::Human => format!(
            "| {} {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.kind,
            size_label(r.size),
            fig(&r.memkind),
            fig(&r.ours),
            ratio(&r.ours, r.memkind.value()),
            if r.kind == "DEFAULT" {
                "—".into()
            } else {
                ratio(&r.ours, r.ours_default)
            },
            fig(&r.ours_ie),
            ratio(&r.ours_ie, r.memkind.value()),
            fig(&r.je_malloc),
            ratio(&r.ours, r.je_malloc.value()),
            fig(&r.je_mallocx),
            fig(&r.ours_attached),
            ratio(&r.ours_attached, r.ours.value()),
        ),
        Format::Json => {
            let j = |f: &Figure| f.value().map_or("null".into(), |v| format!("{v:.2}"));
            format!(
                r#"{{"kind":"{}","size":{},"memkind_instr":{},"ours_instr":{},"ours_ie_instr":{},"jemalloc_malloc_instr":{},"jemalloc_mallocx_instr":{},"ours_attached_instr":{}}}"#,
                r.kind,
                r.size,
                j(&r.memkind),
                j(&r.ours),
                j(&r.ours_ie),
                j(&r.je_malloc),
                j(&r.je_mallocx),
                j(&r.ours_attached)
            )
        }
    }
}

/// Reasons worth printing under the table: failures, and unavailable cells of one contender
/// where another has the kind.
fn notes(rows: &[Row]) -> Vec<String> {
    let mut v = Vec::new();
    for r in rows {
        for (who, f) in [
            ("memkind 1.14", &r.memkind),
            ("ours", &r.ours),
            ("ours IE", &r.ours_ie),
            ("ours attached", &r.ours_attached),
            ("jemalloc malloc/free", &r.je_malloc),
            ("jemalloc mallocx/dallocx", &r.je_mallocx),
        ] {
            let line = match f {
                Figure::Failed(w) => {
                    format!("{} {} {who}: FAILED: {w}", r.kind, size_label(r.size))
                }
                Figure::Unavail(w) => {
                    format!("{} {} {who}: unavail: {w}", r.kind, size_label(r.size))
                }
                Figure::Instr(_) => continue,
            };
            if !v.contains(&line) {
                v.push(line);
            }
        }
    }
    v
}

/// The `--instructions` mode. Returns the exit code.
pub fn run(opts: &Options) -> Result<i32, String> {
    let started = std::time::Instant::now();
    let info = |s: &str| match opts.format {
        Format::Human => println!("{s}"),
        Format::Json => eprintln!("{s}"),
    };
    let missing = missing_tools();
    if !missing.is_empty() {
        return Err(format!(
            "--instructions needs: {} (tests/setup.sh installs all of them)",
            missing.join("; ")
        ));
    }
    let work = memkind_tests::target_dir().join("memkind-bench-instr");
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let exe = compile(&work)?;
    let out_dir = match &opts.keep_dir {
        Some(d) => d.clone(),
        None => work.join(format!("callgrind-{}", std::process::id())),
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;

    let wanted = |k: &str| {
        opts.kinds
            .as_ref()
            .is_none_or(|ks| ks.iter().any(|x| x == k))
    };
    let mut kinds: Vec<String> = static_kinds().iter().map(|s| s.to_string()).collect();
    kinds.push(PMEM.into());
    kinds.push(FIXED.into());
    kinds.retain(|k| wanted(k));
    let cells: Vec<String> = kinds
        .iter()
        .flat_map(|k| opts.sizes.iter().map(move |s| format!("{k}:{s}")))
        .collect();
    let je_cells: Vec<String> = ["malloc", "mallocx"]
        .iter()
        .flat_map(|k| opts.sizes.iter().map(move |s| format!("{k}:{s}")))
        .collect();

    let memkind_env = if opts.memkind == "libmemkind.so.0" {
        Ok(Vec::new())
    } else {
        lib_dir(&work.join("memkind-lib"), Path::new(&opts.memkind))
            .map(|d| vec![("LD_LIBRARY_PATH", d.into_os_string())])
    };
    let mine = |label: &'static str, so: &Path, hint: &str| -> Run {
        let prepared = so
            .canonicalize()
            .map_err(|e| format!("{} not built ({e}): {hint}", so.display()))
            .and_then(|c| lib_dir(&work.join(format!("{label}-lib")), so).map(|d| (d, c)));
        let (env, expect_lib, unavail) = match prepared {
            Ok((d, c)) => (vec![("LD_LIBRARY_PATH", d.into_os_string())], Some(c), None),
            Err(e) => (Vec::new(), None, Some(e)),
        };
        Run {
            label,
            env,
            cells: cells.clone(),
            expect_lib,
            unavail,
        }
    };
    let runs = [
        match memkind_env {
            Ok(env) => Run {
                label: "memkind",
                env,
                cells: cells.clone(),
                expect_lib: None,
                unavail: None,
            },
            Err(e) => Run {
                label: "memkind",
                env: Vec::new(),
                cells: cells.clone(),
                expect_lib: None,
                unavail: Some(e),
            },
        },
        mine("ours", &opts.ours, "cargo build --release -p memkind"),
        {
            let mut r = mine(
                "ours-attached",
                &opts.ours,
                "cargo build --release -p memkind",
            );
            match semaphore_vma(&opts.ours) {
                Ok(a) => r
                    .env
                    .push(("INSTR_PROBE_SEMAPHORE", format!("{a:#x}").into())),
                Err(e) => r.unavail = r.unavail.or(Some(e)),
            }
            r
        },
        mine(
            "ours-ie",
            &opts.ours_ie,
            "cargo build --release -p memkind --no-default-features --target-dir target/ie",
        ),
        Run {
            label: "jemalloc",
            env: vec![("LD_PRELOAD", JEMALLOC.into())],
            cells: je_cells,
            expect_lib: None,
            unavail: (!Path::new(JEMALLOC).exists())
                .then(|| format!("{JEMALLOC} missing: apt-get install libjemalloc2")),
        },
    ];

    info("# memkind-bench --instructions: instructions per malloc/free pair (valgrind --tool=callgrind)");
    info(&format!("# ours      {}", opts.ours.display()));
    info(&format!(
        "# ours IE   {} (initial-exec TLS build)",
        opts.ours_ie.display()
    ));
    info("# attached  ours with the probe's semaphore set by the program (the counted path; no uprobe)");
    info(&format!("# memkind   {} (memkind 1.14)", opts.memkind));
    info(&format!(
        "# jemalloc  {JEMALLOC} under LD_PRELOAD: malloc/free, and mallocx(size, 0)/dallocx(p, 0)"
    ));
    info("# method: tests/c/instr_pairs.c (memkind.h, -lmemkind; the library chosen by LD_LIBRARY_PATH, loaded at start-up);");
    info(&format!(
        "#   per cell {} warm-up pairs, then the loop `p = memkind_malloc(kind, size); p[0] = 1; memkind_free(kind, p)`",
        opts.warmup
    ));
    info(&format!(
        "#   counted with collection toggled on around it: (Ir with {} pairs - Ir with 0) / {}; one thread;",
        opts.pairs, opts.pairs
    ));
    info("#   includes the caller's side: loop counter, compare, branch, argument moves, the store, two calls and");
    info("#   their PLT jumps (12 instructions per memkind pair, 10 per malloc/free pair: 2 arguments fewer)");
    info(&format!(
        "# hugepages: nr_hugepages = {} (HUGETLB needs pages: --reserve-hugepages N)",
        super::hugepages::current().unwrap_or(-1)
    ));

    let results: Vec<Results> = std::thread::scope(|s| {
        let hs: Vec<_> = runs
            .iter()
            .map(|r| {
                let (exe, out_dir) = (&exe, &out_dir);
                s.spawn(move || execute(r, exe, out_dir, opts))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("runner thread"))
            .collect()
    });
    let [mk, ours, att, ie, je]: [Results; 5] = results.try_into().expect("5 runs");
    let get = |r: &Results, c: &str| {
        r.get(c)
            .cloned()
            .unwrap_or_else(|| Figure::Failed("no result".into()))
    };

    let mut rows = Vec::new();
    let mut absent = Vec::new();
    for k in &kinds {
        for &size in &opts.sizes {
            let c = format!("{k}:{size}");
            let row = Row {
                kind: k.clone(),
                size,
                memkind: get(&mk, &c),
                ours: get(&ours, &c),
                ours_ie: get(&ie, &c),
                ours_attached: get(&att, &c),
                ours_default: get(&ours, &format!("DEFAULT:{size}")).value(),
                je_malloc: get(&je, &format!("malloc:{size}")),
                je_mallocx: get(&je, &format!("mallocx:{size}")),
            };
            let none = [&row.memkind, &row.ours, &row.ours_ie]
                .iter()
                .all(|f| matches!(f, Figure::Unavail(_)));
            if none {
                if !absent.contains(k) {
                    absent.push(k.clone());
                }
            } else {
                rows.push(row);
            }
        }
    }
    if opts.format == Format::Human {
        println!();
        println!("{}", table_header());
    }
    for r in &rows {
        println!("{}", format_row(r, opts.format));
    }
    info("");
    if !absent.is_empty() {
        info(&format!(
            "# unavailable here in every library (not shown): {}",
            absent.join(", ")
        ));
    }
    let notes = notes(&rows);
    if !notes.is_empty() {
        info("# notes:");
        for n in &notes {
            info(&format!("#   {n}"));
        }
    }
    match &opts.keep_dir {
        Some(d) => info(&format!(
            "# callgrind files kept in {}: <contender>.out.<part>, each part's `desc: Trigger` line names its cell \
             and count (callgrind_annotate --inclusive=yes FILE)",
            d.display()
        )),
        None => {
            let _ = std::fs::remove_dir_all(&out_dir);
        }
    }
    info(&format!(
        "# total run time {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let failed = rows.iter().any(|r| {
        [&r.memkind, &r.ours, &r.ours_attached, &r.je_malloc]
            .iter()
            .any(|f| matches!(f, Figure::Failed(_)))
    });
    Ok(if failed { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PART: &str = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 1\n\
        cmd:  ./instr_pairs 100 10 DEFAULT:16\npart: 2\n\n\ndesc: I1 cache: \n\
        desc: Timerange: Basic block 1 - 2\ndesc: Trigger: Client Request: DEFAULT:16 n=100\n\n\
        positions: line\nevents: Ir\nsummary: 13309097\n\n\nob=(3) ???\nfn=(1) main\n0 5\n\
        totals: 13309097\n";

    #[test]
    fn parses_a_dump() {
        assert_eq!(
            parse_part(PART),
            Some(("DEFAULT:16 n=100".to_string(), 13309097))
        );
        // The final file at exit has no client-request trigger.
        assert_eq!(
            parse_part("desc: Trigger: Program termination\nsummary: 5\n"),
            None
        );
        assert_eq!(parse_part("garbage"), None);
    }

    #[test]
    fn per_pair_is_the_difference() {
        let mut parts = BTreeMap::new();
        parts.insert("DEFAULT:16 n=0".to_string(), 35);
        parts.insert("DEFAULT:16 n=1000".to_string(), 133_035);
        assert_eq!(per_pair(&parts, "DEFAULT:16", 1000), Figure::Instr(133.0));
        assert!(matches!(
            per_pair(&parts, "REGULAR:16", 1000),
            Figure::Failed(_)
        ));
        assert!(matches!(
            per_pair(&parts, "DEFAULT:16", 10),
            Figure::Failed(_)
        ));
    }

    #[test]
    fn finds_a_section() {
        let out = "  [15] .data.rel.ro       PROGBITS        0000000000146000 145000 001c00 00  WA  0   0 32\n\
                   \x20 [16] .memkind_probe     PROGBITS        0000000000148c00 147c00 000008 00  WA  0   0  8\n\
                   \x20 [ 2] .memkind_probe_trace PROGBITS  0000000000148c08 147c08 000002 00  WA  0   0  2\n";
        assert_eq!(
            section_addr_size(out, ".memkind_probe"),
            Some((0x148c00, 8))
        );
        assert_eq!(
            section_addr_size(out, ".memkind_probe_trace"),
            Some((0x148c08, 2))
        );
        assert_eq!(section_addr_size(out, ".bss"), None);
    }

    #[test]
    fn row_formats() {
        let r = Row {
            kind: "REGULAR".into(),
            size: 16,
            memkind: Figure::Instr(461.2),
            ours: Figure::Instr(257.0),
            ours_ie: Figure::Unavail("not built".into()),
            ours_attached: Figure::Instr(385.6),
            ours_default: Some(133.0),
            je_malloc: Figure::Instr(77.2),
            je_mallocx: Figure::Failed("x".into()),
        };
        assert_eq!(
            format_row(&r, Format::Human),
            "| REGULAR 16B | 461.2 | 257.0 | 0.56x | 1.93x | unavail | — | 77.2 | 3.33x | FAILED | 385.6 | 1.50x |"
        );
        assert_eq!(
            format_row(&r, Format::Json),
            r#"{"kind":"REGULAR","size":16,"memkind_instr":461.20,"ours_instr":257.00,"ours_ie_instr":null,"jemalloc_malloc_instr":77.20,"jemalloc_mallocx_instr":null,"ours_attached_instr":385.60}"#
        );
    }
}
