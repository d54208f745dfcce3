//! A perf-stat-like table: one row per kind, its arenas below it, then the page-fault summary.

use std::fmt::Write as _;

use super::{thousands, Context};
use crate::model::{ArenaRow, KindRow, Summary};

/// Arena rows shown under a kind; the rest are summed into one "… more arenas" row.
pub const MAX_ARENA_ROWS: usize = 8;

const HEADER: [&str; 9] = [
    "allocs",
    "frees",
    "reallocs",
    "requested",
    "allocated",
    "freed",
    "live",
    "faults",
    "mapped",
];

fn cells(c: &crate::model::Counters, faults: u64, mapped: Option<u64>) -> [String; 9] {
    [
        thousands(c.allocs),
        thousands(c.frees),
        thousands(c.reallocs),
        thousands(c.bytes_requested),
        thousands(c.bytes_allocated),
        thousands(c.bytes_freed),
        thousands(c.live_bytes()),
        thousands(faults),
        mapped.map_or_else(String::new, thousands),
    ]
}

fn table(out: &mut String, kinds: &[KindRow]) {
    let mut rows: Vec<(String, [String; 9])> = Vec::new();
    for k in kinds {
        rows.push((
            k.name.clone(),
            cells(&k.counters, k.page_faults, Some(k.extents.bytes_mapped)),
        ));
        if k.arenas.len() > 1 || k.arenas.first().is_some_and(|a| a.arena.is_some()) {
            let mut arenas: Vec<&ArenaRow> = k.arenas.iter().collect();
            arenas.sort_by(|a, b| {
                b.counters
                    .allocs
                    .cmp(&a.counters.allocs)
                    .then(a.arena.cmp(&b.arena))
            });
            for a in arenas.iter().take(MAX_ARENA_ROWS) {
                let label = a
                    .arena
                    .map_or_else(|| "  (no arena)".to_string(), |i| format!("  arena {i}"));
                rows.push((label, cells(&a.counters, a.page_faults, None)));
            }
            if arenas.len() > MAX_ARENA_ROWS {
                let mut rest = ArenaRow::default();
                for a in &arenas[MAX_ARENA_ROWS..] {
                    rest.counters.add(&a.counters);
                    rest.page_faults += a.page_faults;
                }
                let label = format!("  {} more arenas", arenas.len() - MAX_ARENA_ROWS);
                rows.push((label, cells(&rest.counters, rest.page_faults, None)));
            }
        }
    }
    let name_w = rows
        .iter()
        .map(|r| r.0.len())
        .chain(["kind".len()])
        .max()
        .unwrap_or(4);
    let mut w: Vec<usize> = HEADER.iter().map(|h| h.len()).collect();
    for (_, c) in &rows {
        for (i, v) in c.iter().enumerate() {
            w[i] = w[i].max(v.len());
        }
    }
    let _ = write!(out, "  {:<name_w$}", "kind");
    for (i, h) in HEADER.iter().enumerate() {
        let _ = write!(out, "  {:>width$}", h, width = w[i]);
    }
    out.push('\n');
    for (name, c) in &rows {
        let _ = write!(out, "  {name:<name_w$}");
        for (i, v) in c.iter().enumerate() {
            let _ = write!(out, "  {:>width$}", v, width = w[i]);
        }
        let _ = writeln!(out);
    }
}

/// The summary as a table. Byte columns are exact byte counts.
pub fn render(s: &Summary, ctx: &Context) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n memkind statistics for {}:", ctx.target);
    let _ = writeln!(
        out,
        " (library {}{})\n",
        ctx.library,
        if ctx.stock {
            ", Intel memkind 1.14 through per-call uprobes"
        } else {
            ""
        }
    );
    if s.kinds.is_empty() {
        let _ = writeln!(out, "  no memkind activity seen");
    } else {
        table(&mut out, &s.kinds);
    }
    if s.processes.len() > 1 {
        let _ = writeln!(
            out,
            "\n  {:>8}  {:>14}  {:>14}  {:>16}  {:>10}",
            "pid", "allocs", "frees", "live", "faults"
        );
        for p in &s.processes {
            let mut c = crate::model::Counters::default();
            let mut f = 0;
            for k in &p.kinds {
                c.add(&k.counters);
                f += k.page_faults;
            }
            let _ = writeln!(
                out,
                "  {:>8}  {:>14}  {:>14}  {:>16}  {:>10}",
                p.pid,
                thousands(c.allocs),
                thousands(c.frees),
                thousands(c.live_bytes()),
                thousands(f)
            );
        }
    }
    let kf = s.kind_page_faults();
    let total = s.process_faults.total();
    let share = |n: u64| {
        if total > 0 {
            format!(
                "  ({:.1}% of the process's)",
                n as f64 * 100.0 / total as f64
            )
        } else {
            String::new()
        }
    };
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:>16}  page faults (process-wide: {} minor, {} major)",
        thousands(total),
        thousands(s.process_faults.minor),
        thousands(s.process_faults.major)
    );
    let _ = writeln!(
        out,
        "  {:>16}  page faults in kind memory{}",
        thousands(kf),
        share(kf)
    );
    let _ = writeln!(
        out,
        "  {:>16}  page faults elsewhere{}",
        thousands(s.other_page_faults),
        share(s.other_page_faults)
    );
    let _ = writeln!(out, "  {:>16}  lost events", thousands(s.lost_events));
    let _ = writeln!(
        out,
        "\n  {:>16.6}  seconds time elapsed\n",
        s.duration_ns as f64 / 1e9
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Counters;
    use crate::view::fixture::sample;

    #[test]
    fn table() {
        let ctx = Context {
            target: "'./a.out 1'".into(),
            library: "/x/libmemkind.so.0".into(),
            stock: false,
        };
        let t = render(&sample(), &ctx);
        assert!(t.contains("memkind statistics for './a.out 1':"), "{t}");
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with("MEMKIND_DEFAULT"))
            .unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "MEMKIND_DEFAULT",
                "10",
                "4",
                "0",
                "0",
                "1,000",
                "400",
                "600",
                "3",
                "2,097,152"
            ]
        );
        assert!(
            t.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["arena", "1", "4", "0", "0", "0", "400", "0", "400", "2"]),
            "{t}"
        );
        assert!(
            t.contains("21  page faults (process-wide: 20 minor, 1 major)"),
            "{t}"
        );
        assert!(
            t.contains("3  page faults in kind memory  (14.3% of the process's)"),
            "{t}"
        );
        assert!(t.contains("1.500000  seconds time elapsed"), "{t}");
        // Every table row has the same width as the header.
        let rows: Vec<&str> = t
            .lines()
            .filter(|l| {
                l.starts_with("  kind") || l.starts_with("  MEMKIND") || l.starts_with("    arena")
            })
            .collect();
        assert!(rows.len() >= 3);
        assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{rows:?}");
    }

    #[test]
    fn many_arenas_are_folded_and_stock_is_labelled() {
        let mut s = sample();
        s.kinds[0].arenas = (0..12)
            .map(|i| ArenaRow {
                arena: Some(i),
                counters: Counters {
                    allocs: 1,
                    ..Default::default()
                },
                page_faults: 0,
            })
            .collect();
        let t = render(
            &s,
            &Context {
                stock: true,
                ..Default::default()
            },
        );
        assert!(t.contains("4 more arenas"), "{t}");
        assert_eq!(
            t.lines()
                .filter(|l| l.trim_start().starts_with("arena "))
                .count(),
            MAX_ARENA_ROWS
        );
        assert!(t.contains("per-call uprobes"));
        let e = render(&Summary::default(), &Context::default());
        assert!(e.contains("no memkind activity seen"));
    }
}
