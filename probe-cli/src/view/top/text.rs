//! The `top` table as plain text (stdout not a terminal, or `--once`): the TUI's columns, every
//! kind with its arenas, the process list first when there are several processes.

use std::fmt::Write as _;

use super::draw::status;
use super::{asked, cell, per_node, Column, Line, Screen, TopState};

const KIND_COLS: [Column; 6] = [
    Column::Allocs,
    Column::Frees,
    Column::Live,
    Column::Mapped,
    Column::Faults,
    Column::Misplaced,
];

fn table(out: &mut String, lines: &[Line<'_>], first: &str, processes: bool) {
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(lines.len());
    for l in lines {
        let name = if l.depth > 0 {
            format!("  {}", l.label)
        } else {
            l.label.clone()
        };
        let mut r = vec![name];
        if processes {
            r.push(l.kinds.unwrap_or(0).to_string());
        }
        r.extend(
            KIND_COLS
                .iter()
                .take(if processes { 5 } else { 6 })
                .map(|c| cell(l, *c)),
        );
        if !processes {
            r.push(cell(l, Column::Pages));
            r.push(asked(l));
            r.push(per_node(l));
        }
        rows.push(r);
    }
    let mut head: Vec<&str> = vec![first];
    if processes {
        head.push("KINDS");
    }
    head.extend(
        KIND_COLS
            .iter()
            .take(if processes { 5 } else { 6 })
            .map(|c| c.title()),
    );
    if !processes {
        head.extend([Column::Pages.title(), "ASKED", "PER NODE"]);
    }
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    // Left-aligned: the name and the last two (asked, per node); numbers right-aligned.
    let left = |i: usize| i == 0 || (!processes && i + 2 >= head.len());
    let line = |out: &mut String, cells: &[&str]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            s.push_str("  ");
            if left(i) {
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', pad));
            } else {
                s.extend(std::iter::repeat_n(' ', pad));
                s.push_str(c);
            }
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    line(out, &head);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(out, &cells);
    }
}

/// The table of the current sample.
pub fn render(s: &TopState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "memkind-probe top: {} │ {}", s.title, status(s));
    if s.multi {
        let procs = s.lines_for(Screen::Processes, false);
        if !procs.is_empty() {
            table(&mut out, &procs, "PID COMMAND", true);
            out.push('\n');
        }
    }
    let kinds = s.lines_for(Screen::Kinds(None), true);
    if kinds.is_empty() {
        let _ = writeln!(out, "  no memkind activity seen");
    } else {
        table(&mut out, &kinds, "KIND", false);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArenaRow, Counters, KindRow, ProcessRow, Summary};
    use crate::view::top::Sample;

    fn sample(ts: u64, n: u64, pids: &[u32]) -> Sample {
        let c = Counters {
            allocs: n,
            frees: n,
            bytes_allocated: n * 16,
            bytes_freed: n * 16,
            ..Default::default()
        };
        let k = KindRow {
            name: "MEMKIND_DEFAULT".into(),
            id: 0,
            counters: c,
            arenas: vec![ArenaRow {
                arena: Some(2),
                counters: c,
                page_faults: 0,
            }],
            ..Default::default()
        };
        let mut sum = Summary::default();
        for &p in pids {
            sum.processes.push(ProcessRow {
                pid: p,
                kinds: vec![k.clone()],
                ..Default::default()
            });
        }
        let mut all = k.clone();
        all.counters.allocs *= pids.len() as u64;
        all.counters.frees *= pids.len() as u64;
        all.arenas[0].counters = all.counters;
        sum.kinds = vec![all];
        Sample {
            ts_ns: ts * 1_000_000_000,
            summary: sum,
            ..Default::default()
        }
    }

    #[test]
    fn one_process() {
        let mut s = TopState::new("'./a.out'", 1000, false);
        s.update(sample(1, 1000, &[7]));
        s.update(sample(2, 3500, &[7]));
        let t = render(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("memkind-probe top: './a.out' │ every 1 s"),
            "{t}"
        );
        let cols = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            cols(lines[1]),
            [
                "KIND",
                "ALLOCS/s",
                "FREES/s",
                "LIVE",
                "MAPPED",
                "FAULTS/s",
                "MISPLACED",
                "HUGE/BASE",
                "ASKED",
                "PER",
                "NODE"
            ]
        );
        assert_eq!(
            cols(lines[2]),
            [
                "MEMKIND_DEFAULT",
                "2,500",
                "2,500",
                "0",
                "0",
                "0",
                "-",
                "-",
                "-",
                "-"
            ]
        );
        assert_eq!(cols(lines[3])[..3], ["arena", "2", "2,500"]);
        assert!(lines[3].starts_with("    arena 2"), "{t}");
        let e = render(&TopState::new("x", 1000, false));
        assert!(e.contains("no memkind activity seen"));
    }

    #[test]
    fn processes_first() {
        let mut s = TopState::new("all processes", 1000, true);
        s.update(sample(1, 0, &[7, 8]));
        s.update(sample(2, 100, &[7, 8]));
        let t = render(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[1]
                .trim_start()
                .starts_with("PID COMMAND  KINDS  ALLOCS/s"),
            "{t}"
        );
        assert!(
            lines[2]
                .split_whitespace()
                .eq(["7", "1", "100", "100", "0", "0", "0"]),
            "{t}"
        );
        assert!(t.contains("MEMKIND_DEFAULT"));
        let kinds = t
            .lines()
            .find(|l| l.starts_with("  MEMKIND_DEFAULT"))
            .unwrap();
        assert_eq!(kinds.split_whitespace().nth(1), Some("200"));
    }
}
