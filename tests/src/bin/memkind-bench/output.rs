//! Output: the human table, JSON lines, and the target summary (PASS / MISS computed from the
//! measured rows only).

use super::measure::Outcome;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned table on stdout, notes and summary after it.
    Human,
    /// One JSON object per row on stdout; header, notes and summary go to stderr.
    Json,
}

/// One printed row.
#[derive(Clone, Debug)]
pub struct Row {
    /// Kind name without the `MEMKIND_` prefix.
    pub kind: String,
    /// Allocation size in bytes.
    pub size: usize,
    /// Threads running concurrently.
    pub threads: usize,
    /// `pair`, `batch`, `free_kind`, `free_null` or `detect_kind`.
    pub pattern: &'static str,
    /// Our library.
    pub ours: Outcome,
    /// Debian's memkind 1.14.
    pub memkind: Outcome,
    /// Raw jemalloc mallocx/dallocx (the floor); `Unavail` where it has no equivalent.
    pub jemalloc: Outcome,
}

/// `16B`, `4K`, `1M`.
pub fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{}M", size >> 20)
    } else if size >= 1 << 10 && size.is_multiple_of(1 << 10) {
        format!("{}K", size >> 10)
    } else {
        format!("{size}B")
    }
}

fn cell(o: &Outcome) -> String {
    match o {
        Outcome::Ns(v) if *v >= 100.0 => format!("{v:.0}"),
        Outcome::Ns(v) => format!("{v:.1}"),
        Outcome::Unavail(_) => "unavail".into(),
        Outcome::Failed(_) => "FAILED".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Column header of the human table.
pub fn table_header() -> String {
    format!(
        "{:<34} {:>5} {:>3} {:<11} {:>10} {:>10} {:>11} {:>8} {:>8}\n{}",
        "kind",
        "size",
        "thr",
        "pattern",
        "ours_ns",
        "memkind_ns",
        "jemalloc_ns",
        "ours/mk",
        "ours/je",
        "-".repeat(106)
    )
}

/// One row in the requested format (no trailing newline).
pub fn format_row(r: &Row, f: Format) -> String {
    match f {
        Format::Human => {
            let speedup =
                ratio(r.memkind.ns(), r.ours.ns()).map_or("-".into(), |v| format!("{v:.2}x"));
            let vs_je =
                ratio(r.ours.ns(), r.jemalloc.ns()).map_or("-".into(), |v| format!("{v:.2}"));
            format!(
                "{:<34} {:>5} {:>3} {:<11} {:>10} {:>10} {:>11} {:>8} {:>8}",
                r.kind,
                size_label(r.size),
                r.threads,
                r.pattern,
                cell(&r.ours),
                cell(&r.memkind),
                cell(&r.jemalloc),
                speedup,
                vs_je
            )
        }
        Format::Json => {
            let num = |o: &Outcome| o.ns().map_or("null".to_string(), |v| format!("{v:.2}"));
            format!(
                "{{\"kind\":\"{}\",\"size\":{},\"threads\":{},\"pattern\":\"{}\",\"ours_ns\":{},\"memkind_ns\":{},\"jemalloc_ns\":{}}}",
                json_escape(&r.kind),
                r.size,
                r.threads,
                r.pattern,
                num(&r.ours),
                num(&r.memkind),
                num(&r.jemalloc)
            )
        }
    }
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// Why cells were not measured or failed, deduplicated, for the notes section.
pub fn notes(rows: &[Row]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in rows {
        for (who, o) in [
            ("ours", &r.ours),
            ("memkind", &r.memkind),
            ("jemalloc", &r.jemalloc),
        ] {
            let line = match o {
                Outcome::Failed(e) => format!("FAILED {who} {} {}: {e}", r.kind, r.pattern),
                Outcome::Unavail(e) if !e.is_empty() => format!("unavail {who} {}: {e}", r.kind),
                _ => continue,
            };
            if !v.contains(&line) {
                v.push(line);
            }
        }
    }
    v
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

const SMALL: usize = 4096;

/// The target summary. Every figure comes from `rows`; a target with no measured data says so.
pub fn summary(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    let small = |r: &&Row| r.size <= SMALL;
    let is_alloc = |r: &&Row| r.pattern == "pair" || r.pattern == "batch";
    let unmeasured = |n: usize| {
        if n > 0 {
            format!(", {n} cells unmeasured")
        } else {
            String::new()
        }
    };

    // 1. DEFAULT ours/jemalloc at 16 B .. 4 KiB, every pattern and thread count.
    let mut worst: Option<(f64, &Row)> = None;
    let mut missing = 0;
    let mut all = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.kind == "DEFAULT")
        .filter(small)
        .filter(is_alloc)
    {
        match ratio(r.ours.ns(), r.jemalloc.ns()) {
            Some(v) => {
                all.push(v);
                if worst.is_none_or(|(w, _)| v > w) {
                    worst = Some((v, r));
                }
            }
            None => missing += 1,
        }
    }
    all.sort_by(|a, b| a.total_cmp(b));
    out.push(match worst {
        Some((v, r)) => format!(
            "{}  DEFAULT ours/jemalloc, 16B-4K, max over {} cells = {v:.2} (target <= 1.10; worst {} {}thr {}; median cell {:.2}){}",
            verdict(v <= 1.10 && missing == 0),
            all.len(),
            size_label(r.size),
            r.threads,
            r.pattern,
            all[all.len() / 2],
            unmeasured(missing)
        ),
        None => "NO DATA  DEFAULT ours/jemalloc 16B-4K (target <= 1.10): ours not measured".into(),
    });

    // 2. Per kind: speedup vs memkind, min over sizes <= 4 KiB (all patterns and thread counts).
    let mut kinds: Vec<&str> = Vec::new();
    for r in rows.iter().filter(is_alloc) {
        if !kinds.contains(&r.kind.as_str()) {
            kinds.push(&r.kind);
        }
    }
    for k in kinds {
        // A memtier memory is DEFAULT and REGULAR behind a policy: its target is "never slower
        // than 1.14", at every size.
        let memtier = k.starts_with("MEMTIER_");
        let (target, over) = if memtier {
            (1.0, "every size")
        } else {
            (1.5, "<= 4K")
        };
        let mut worst: Option<(f64, &Row)> = None;
        let mut missing = 0;
        let mut all = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r.kind == k)
            .filter(|r| memtier || small(r))
            .filter(is_alloc)
        {
            match ratio(r.memkind.ns(), r.ours.ns()) {
                Some(v) => {
                    all.push(v);
                    if worst.is_none_or(|(w, _)| v < w) {
                        worst = Some((v, r));
                    }
                }
                None => missing += 1,
            }
        }
        all.sort_by(|a, b| a.total_cmp(b));
        out.push(match worst {
            Some((v, r)) => format!(
                "{}  {k}: speedup vs memkind, min over {} cells {over} = {v:.2}x (target >= {target:.1}x; at {} {}thr {}; median cell {:.2}x){}",
                verdict(v >= target && missing == 0),
                all.len(),
                size_label(r.size),
                r.threads,
                r.pattern,
                all[all.len() / 2],
                unmeasured(missing)
            ),
            None => format!("NO DATA  {k}: speedup vs memkind (target >= {target:.1}x): ours not measured"),
        });
        if k == "DEFAULT" {
            out.push(
                "      (memkind 1.14's DEFAULT is jemalloc's own malloc/free fast path, ~1.05x raw jemalloc: \
                 1.5x faster than it would be below raw jemalloc; DEFAULT's own target is the ours/jemalloc line)"
                    .into(),
            );
        }
    }

    // 3. free(NULL) - free(kind), sizes <= 4 KiB, max over kinds; memkind's figure for comparison.
    //    Both rows of a pair come from the same interleaved cell.
    let delta = |who: fn(&Row) -> &Outcome| {
        let mut worst: Option<(f64, String)> = None;
        let (mut measured, mut cells) = (0, 0);
        for n in rows
            .iter()
            .filter(|r| r.pattern == "free_null")
            .filter(small)
        {
            let Some(k) = rows.iter().find(|r| {
                r.pattern == "free_kind"
                    && r.kind == n.kind
                    && r.size == n.size
                    && r.threads == n.threads
            }) else {
                continue;
            };
            cells += 1;
            if let (Some(a), Some(b)) = (who(n).ns(), who(k).ns()) {
                measured += 1;
                let d = a - b;
                if worst.as_ref().is_none_or(|(w, _)| d > *w) {
                    worst = Some((d, format!("{} {}", n.kind, size_label(n.size))));
                }
            }
        }
        worst.map(|(d, at)| (d, at, measured, cells))
    };
    let mk =
        delta(|r| &r.memkind).map_or("n/a".into(), |(d, at, _, _)| format!("{d:.1} ns at {at}"));
    out.push(match delta(|r| &r.ours) {
        Some((d, at, measured, cells)) => format!(
            "{}  free(NULL) - free(kind), ours, max over {measured} of {cells} kind x size cells <= 4K = {d:.1} ns (target <= 3 ns; at {at}; memkind: {mk})",
            verdict(d <= 3.0 && measured == cells)
        ),
        None => format!("NO DATA  free(NULL) - free(kind) for ours (target <= 3 ns; memkind: {mk})"),
    });

    // 4. HUGETLB 1 MiB batch, every thread count.
    let hug: Vec<&Row> = rows
        .iter()
        .filter(|r| r.kind == "HUGETLB" && r.size == 1 << 20 && r.pattern == "batch")
        .collect();
    let measured: Vec<(usize, f64)> = hug
        .iter()
        .filter_map(|r| r.ours.ns().map(|v| (r.threads, v)))
        .collect();
    let mk: Vec<String> = hug
        .iter()
        .map(|r| {
            format!(
                "{}thr {}",
                r.threads,
                r.memkind
                    .ns()
                    .map_or("n/a".into(), |v| format!("{v:.0} ns"))
            )
        })
        .collect();
    if hug.is_empty() {
        out.push(
            "NO DATA  HUGETLB 1M batch ours (target <= 2000 ns): not in this run (HUGETLB unavailable in memkind? try --reserve-hugepages 512)"
                .into(),
        );
    } else if measured.len() < hug.len() {
        out.push(format!(
            "{}  HUGETLB 1M batch ours (target <= 2000 ns): {} of {} cells unmeasured/failed (see notes; the hugepage pool is global, other processes may hold it); memkind: {}",
            if measured.is_empty() { "NO DATA" } else { "MISS" },
            hug.len() - measured.len(),
            hug.len(),
            mk.join(", ")
        ));
    } else {
        let worst = measured.iter().map(|(_, v)| *v).fold(0.0, f64::max);
        let list: Vec<String> = measured
            .iter()
            .map(|(t, v)| format!("{t}thr {v:.0} ns"))
            .collect();
        out.push(format!(
            "{}  HUGETLB 1M batch ours: {} (target <= 2000 ns; memkind: {})",
            verdict(worst <= 2000.0),
            list.join(", "),
            mk.join(", ")
        ));
    }
    out
}
