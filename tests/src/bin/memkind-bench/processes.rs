//! `--processes N`: the same run in N fresh processes, one after another, and per cell the
//! median over the processes of each process's median.
//!
//! Why: above the thread caches (64 KiB and 1 MiB blocks) a pair's cost is set by the heap's
//! layout, which a process keeps for its life: whether the freed extent has a free neighbour
//! that jemalloc coalesces with it (and the next allocation splits again), where its random
//! cache-colouring offset falls. One process draws one layout, so a cell of one process swings
//! between about 250 and 500 ns per 1 MiB pair, for memkind 1.14 and raw jemalloc as much as
//! for ours (2026-12-03). The median over processes samples the layouts instead of one.

use std::collections::HashMap;
use std::process::{Command, Stdio};

use super::measure::Outcome;
use super::output::{self, Format, Row};

/// Arguments of this run for a child: everything but `--processes`, `--format` (a child writes
/// JSON rows) and `--reserve-hugepages` (the parent holds the reservation for all of them).
pub fn child_args() -> Vec<String> {
    let mut out = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let flag = a.split_once('=').map_or(a.as_str(), |(f, _)| f);
        if matches!(flag, "--processes" | "--format" | "--reserve-hugepages") {
            if !a.contains('=') {
                it.next();
            }
            continue;
        }
        out.push(a);
    }
    out
}

/// The pattern names rows carry (a row's pattern is a `&'static str`).
const PATTERNS: [&str; 7] = [
    "pair",
    "batch",
    "free_kind",
    "free_null",
    "detect_kind",
    "create",
    "first_alloc",
];

/// A cell: kind, size, threads, pattern.
type Cell = (String, usize, usize, &'static str);
/// ours, memkind, jemalloc ns (None: not measured).
type Figures = [Option<f64>; 3];

/// One row of a child's JSON output: its cell and figures.
fn parse_row(line: &str) -> Option<(Cell, Figures)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let pattern = v["pattern"].as_str()?;
    let pattern = PATTERNS.iter().find(|p| **p == pattern)?;
    Some((
        (
            v["kind"].as_str()?.to_string(),
            usize::try_from(v["size"].as_u64()?).ok()?,
            usize::try_from(v["threads"].as_u64()?).ok()?,
            pattern,
        ),
        [
            v["ours_ns"].as_f64(),
            v["memkind_ns"].as_f64(),
            v["jemalloc_ns"].as_f64(),
        ],
    ))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Run `n` children with `args`, print the aggregated rows, the spread of the ratio where
/// single processes disagree on who is faster, and the target summary. Exit code 0, or 1 when
/// a child failed.
pub fn run(n: usize, args: &[String], format: Format) -> Result<i32, String> {
    let info = |s: &str| match format {
        Format::Human => println!("{s}"),
        Format::Json => eprintln!("{s}"),
    };
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let started = std::time::Instant::now();
    let mut order: Vec<Cell> = Vec::new();
    let mut runs: HashMap<Cell, Vec<Figures>> = HashMap::new();
    let mut failed = 0;
    for i in 0..n {
        let out = Command::new(&exe)
            .args(args)
            .args(["--format", "json"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("running {}: {e}", exe.display()))?;
        if i == 0 {
            // The first child's header (libraries, method, machine, kinds: everything before
            // its first blank line) describes every child.
            for l in String::from_utf8_lossy(&out.stderr)
                .lines()
                .take_while(|l| !l.is_empty())
            {
                info(l);
            }
        }
        if !out.status.success() {
            failed += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            let last: Vec<&str> = err.lines().rev().take(3).collect();
            info(&format!(
                "# process {}: {} (its rows are kept); it said last: {}",
                i + 1,
                out.status,
                last.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((key, figs)) = parse_row(line) else {
                continue;
            };
            let e = runs.entry(key.clone()).or_default();
            if e.is_empty() {
                order.push(key);
            }
            e.push(figs);
        }
    }
    info(&format!(
        "# processes: {n} (--processes), one after another; each figure is the median over the \
         processes of each one's median ({failed} failed)"
    ));
    if format == Format::Human {
        println!("{}", output::table_header());
    }
    let outcome = |v: Option<f64>| v.map_or(Outcome::Unavail(String::new()), Outcome::Ns);
    let mut rows = Vec::new();
    let mut split = Vec::new();
    for key in &order {
        let figs = &runs[key];
        let col = |i: usize| median(figs.iter().filter_map(|f| f[i]).collect());
        let r = Row {
            kind: key.0.clone(),
            size: key.1,
            threads: key.2,
            pattern: key.3,
            ours: outcome(col(0)),
            memkind: outcome(col(1)),
            jemalloc: outcome(col(2)),
        };
        println!("{}", output::format_row(&r, format));
        let speedups: Vec<f64> = figs
            .iter()
            .filter_map(|f| Some(f[1]? / f[0]?))
            .filter(|v| v.is_finite())
            .collect();
        let lo = speedups.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = speedups.iter().copied().fold(0.0, f64::max);
        if lo < 1.0 && hi > 1.0 {
            split.push(format!(
                "{} {} {}thr {}: {lo:.2}x-{hi:.2}x",
                r.kind,
                output::size_label(r.size),
                r.threads,
                r.pattern
            ));
        }
        rows.push(r);
    }
    info("");
    if !split.is_empty() {
        info("# cells where single processes disagree (ours/memkind speedup, lowest-highest process):");
        for s in &split {
            info(&format!("#   {s}"));
        }
    }
    info("# targets (from the rows above; speedup = memkind_ns / ours_ns):");
    for s in output::summary(&rows) {
        info(&format!("#   {s}"));
    }
    info(&format!(
        "# total run time {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(i32::from(failed > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_and_medians() {
        let r = parse_row(r#"{"kind":"PMEM","size":65536,"threads":2,"pattern":"batch","ours_ns":7.50,"memkind_ns":null,"jemalloc_ns":3.00}"#)
            .unwrap();
        assert_eq!(r.0, ("PMEM".to_string(), 65536, 2, "batch"));
        assert_eq!(r.1, [Some(7.5), None, Some(3.0)]);
        assert!(parse_row("not json").is_none());
        assert!(parse_row(r#"{"kind":"X","size":1,"threads":1,"pattern":"nope"}"#).is_none());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
