//! A perf-stat-like table: one row per kind, its arenas below it, then the placement of the kinds
//! (when it was taken: bytes per node, asked-for nodes and mode, misplaced, huge and base), then
//! the page-fault summary.

use std::fmt::Write as _;

use super::{thousands, Context};
use crate::model::{mode_name, ArenaRow, KindPlacement, KindRow, Summary};

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

/// The placement table: one row per kind with placement (arenas below it when there are several),
/// one column per node seen. Estimates are marked `~` and their 95 % bound is the last column.
fn placement_table(out: &mut String, kinds: &[KindRow]) {
    let with: Vec<&KindRow> = kinds.iter().filter(|k| k.placement.is_some()).collect();
    if with.is_empty() {
        return;
    }
    let mut nodes: Vec<u32> = with
        .iter()
        .flat_map(|k| {
            k.placement
                .as_ref()
                .expect("filtered")
                .total
                .nodes
                .keys()
                .copied()
        })
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut header: Vec<String> = vec!["mode".into(), "asked".into(), "resident".into()];
    header.extend(nodes.iter().map(|n| format!("node{n}")));
    header.extend(["misplaced", "huge", "base", "±95%"].map(String::from));
    let row =
        |f: &crate::model::Figures, mode: String, asked: String, k: Option<&KindPlacement>| {
            let mark = if f.sampled() { "~" } else { "" };
            let mut c = vec![
                mode,
                asked,
                format!("{mark}{}", thousands(f.resident.bytes)),
            ];
            c.extend(nodes.iter().map(|n| thousands(f.node_bytes(*n))));
            let mut mis = thousands(f.misplaced.bytes);
            if f.misplaced.bytes > 0 {
                mis.push('!');
            }
            if let Some(i) = k.and_then(|k| k.interleave_imbalance()) {
                mis.push_str(&format!(" ({:.0}% off even)", i * 100.0));
            }
            c.push(mis);
            c.push(thousands(f.huge.bytes));
            c.push(thousands(f.base.bytes));
            c.push(if f.sampled() {
                thousands(f.error_bytes())
            } else {
                "exact".into()
            });
            c
        };
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for k in with {
        let p = k.placement.as_ref().expect("filtered");
        let asked = if p.asked_nodes.is_empty() {
            "-".to_string()
        } else {
            p.asked_nodes
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        rows.push((
            k.name.clone(),
            row(&p.total, mode_name(p.mbind_mode), asked, Some(p)),
        ));
        if p.arenas.len() > 1 {
            for (a, f) in p.arenas.iter().take(MAX_ARENA_ROWS) {
                let label =
                    a.map_or_else(|| "  (no arena)".to_string(), |i| format!("  arena {i}"));
                rows.push((label, row(f, String::new(), String::new(), None)));
            }
        }
    }
    let name_w = rows
        .iter()
        .map(|r| r.0.len())
        .chain(["placement".len()])
        .max()
        .unwrap_or(9);
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for (_, c) in &rows {
        for (i, v) in c.iter().enumerate() {
            w[i] = w[i].max(v.chars().count());
        }
    }
    let _ = write!(out, "\n  {:<name_w$}", "placement");
    for (i, h) in header.iter().enumerate() {
        let pad = w[i] - h.chars().count();
        let _ = write!(out, "  {}{h}", " ".repeat(pad));
    }
    out.push('\n');
    for (name, c) in &rows {
        let _ = write!(out, "  {name:<name_w$}");
        for (i, v) in c.iter().enumerate() {
            let pad = w[i] - v.chars().count();
            let _ = write!(out, "  {}{v}", " ".repeat(pad));
        }
        out.push('\n');
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
        placement_table(&mut out, &s.kinds);
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

    #[test]
    fn placement_rows() {
        use crate::model::{Placement, Sample};
        let mut s = sample();
        let smp = |arena, node, n| Sample {
            tgid: 42,
            kind: 0,
            arena,
            page_size: 4096,
            mbind_mode: 3,
            nodemask: [0b11, 0, 0, 0],
            pages_total: 256,
            pages_queried: 256,
            present: [((Some(node), false), n)].into_iter().collect(),
        };
        let p = Placement::from_samples(&[smp(0, 0, 128), smp(1, 1, 128)], 0);
        s.add_placement(&p, &crate::model::KindTable::new());
        let t = render(&s, &Context::default());
        let head = t
            .lines()
            .find(|l| l.trim_start().starts_with("placement"))
            .expect(&t);
        assert_eq!(
            head.split_whitespace().collect::<Vec<_>>(),
            [
                "placement",
                "mode",
                "asked",
                "resident",
                "node0",
                "node1",
                "misplaced",
                "huge",
                "base",
                "±95%"
            ]
        );
        let line = t
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("placement"))
            .find(|l| l.trim_start().starts_with("MEMKIND_DEFAULT"))
            .expect(&t);
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>(),
            [
                "MEMKIND_DEFAULT",
                "interleave",
                "0,1",
                "1,048,576",
                "524,288",
                "524,288",
                "0",
                "(0%",
                "off",
                "even)",
                "0",
                "1,048,576",
                "exact"
            ]
        );
        assert!(
            t.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["arena", "1", "524,288", "0", "524,288", "0", "0", "524,288", "exact"]),
            "{t}"
        );
        assert!(!render(&sample(), &Context::default()).contains("placement"));
    }
}
