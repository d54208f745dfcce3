//! Draws a [`TopState`] with ratatui: a title, a status line, the table, a graph panel for the
//! selected line and the help line. Reads the state, never changes it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TextLine, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table, TableState};
use ratatui::Frame;

use super::state::Ring;
use super::{asked, bytes, cell, per_node, rate, spark, Column, Line, Screen, TopState, HELP};

/// What a table column shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    /// A sortable figure.
    Fig(Column),
    /// Kinds of a process.
    Kinds,
    /// Asked-for mode and nodes.
    Asked,
    /// Bytes per node.
    Nodes,
    /// Allocs/s over the last minute.
    History,
}

impl Col {
    fn title(self, screen: Screen) -> &'static str {
        match self {
            Col::Fig(Column::Name) if screen == Screen::Processes => "PID COMMAND",
            Col::Fig(c) => c.title(),
            Col::Kinds => "KINDS",
            Col::Asked => "ASKED",
            Col::Nodes => "PER NODE",
            Col::History => "ALLOCS/s, LAST MINUTE",
        }
    }

    fn width(self) -> u16 {
        match self {
            Col::Fig(Column::Name) => 20,
            Col::Fig(Column::Allocs | Column::Frees) => 11,
            Col::Fig(Column::Live | Column::Mapped | Column::Faults) => 9,
            Col::Fig(Column::Misplaced) => 9,
            Col::Fig(Column::Pages) => 10,
            Col::Kinds => 5,
            Col::Asked => 14,
            Col::Nodes => 18,
            Col::History => 12,
        }
    }

    /// Lower goes first when the terminal is too narrow.
    fn keep(self) -> u8 {
        match self {
            Col::Fig(Column::Name) => 255,
            Col::History => 1,
            Col::Fig(Column::Pages) => 2,
            Col::Fig(Column::Mapped) => 3,
            Col::Asked => 4,
            Col::Nodes => 5,
            Col::Kinds => 5,
            Col::Fig(Column::Misplaced) => 6,
            Col::Fig(Column::Frees) => 7,
            Col::Fig(Column::Faults) => 8,
            Col::Fig(Column::Live) => 9,
            Col::Fig(Column::Allocs) => 10,
        }
    }

    fn right(self) -> bool {
        !matches!(
            self,
            Col::Fig(Column::Name) | Col::Asked | Col::Nodes | Col::History
        )
    }
}

const KIND_COLS: [Col; 11] = [
    Col::Fig(Column::Name),
    Col::Fig(Column::Allocs),
    Col::Fig(Column::Frees),
    Col::Fig(Column::Live),
    Col::Fig(Column::Mapped),
    Col::Fig(Column::Faults),
    Col::Asked,
    Col::Nodes,
    Col::Fig(Column::Misplaced),
    Col::Fig(Column::Pages),
    Col::History,
];

const PROCESS_COLS: [Col; 8] = [
    Col::Fig(Column::Name),
    Col::Kinds,
    Col::Fig(Column::Allocs),
    Col::Fig(Column::Frees),
    Col::Fig(Column::Live),
    Col::Fig(Column::Mapped),
    Col::Fig(Column::Faults),
    Col::History,
];

/// The columns that fit in `width`, name widened to `name_w` when there is room.
fn fit(cols: &[Col], width: u16, name_w: u16) -> Vec<(Col, u16)> {
    let mut v: Vec<(Col, u16)> = cols.iter().map(|c| (*c, c.width())).collect();
    let total = |v: &[(Col, u16)]| -> u16 {
        v.iter().map(|c| c.1).sum::<u16>() + v.len().saturating_sub(1) as u16
    };
    while total(&v) > width && v.len() > 1 {
        let i = v
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.0.keep())
            .map(|(i, _)| i)
            .unwrap_or(0);
        v.remove(i);
    }
    // Spare room: the name first (up to its longest), then the history.
    let spare = width.saturating_sub(total(&v));
    let name_extra = name_w.saturating_sub(v[0].1).min(spare);
    v[0].1 += name_extra;
    let spare = spare - name_extra;
    if let Some(h) = v.iter_mut().find(|c| c.0 == Col::History) {
        h.1 += spare;
    } else if v[0].1 < name_w.max(20) + 10 {
        v[0].1 += spare.min(10);
    }
    v
}

fn label(l: &Line<'_>) -> String {
    match l.depth {
        0 if matches!(l.key, super::LineKey::Process(_)) => format!("  {}", l.label),
        0 if l.expandable && l.expanded => format!("▾ {}", l.label),
        0 if l.expandable => format!("▸ {}", l.label),
        0 => format!("  {}", l.label),
        _ => format!("    {}", l.label),
    }
}

fn text_of(l: &Line<'_>, c: Col, w: u16) -> String {
    match c {
        Col::Fig(Column::Name) => label(l),
        Col::Fig(col) => cell(l, col),
        Col::Kinds => l.kinds.map_or_else(String::new, |n| n.to_string()),
        Col::Asked => asked(l),
        Col::Nodes => per_node(l),
        Col::History => spark(&l.track.allocs_hist, w as usize),
    }
}

/// The status line: interval, counts, lost events, the probe's own cost, sort, filter, pause.
pub fn status(s: &TopState) -> String {
    let mut out = format!("every {}", secs(s.interval_ms));
    if s.last_dt_s > 0.0 {
        out.push_str(&format!(" (last {:.2} s)", s.last_dt_s));
    } else {
        out.push_str(" (first sample)");
    }
    out.push_str(&format!(
        " │ lost events {} ({}/s)",
        super::super::thousands(s.lost_events),
        rate(s.lost_s)
    ));
    if s.progs.is_empty() {
        out.push_str(&format!(
            " │ probe cost: {}",
            s.progs_note.as_deref().unwrap_or("-")
        ));
    } else {
        out.push_str(&format!(" │ probe {:.2}% CPU:", s.probe_cpu_pct()));
        for p in s
            .progs
            .iter()
            .filter(|p| p.runs_per_s > 0.0 || p.cpu_pct > 0.0)
        {
            out.push_str(&format!(
                " {} {:.2}% {}/s",
                p.name,
                p.cpu_pct,
                rate(p.runs_per_s)
            ));
        }
    }
    match (s.placement_wired, s.placement_cost) {
        (false, _) => out.push_str(" │ placement: not collected"),
        (true, Some((q, t, cpu))) if t > 0 => out.push_str(&format!(
            " │ placement: {} of {} pages, {:.1} ms",
            super::super::thousands(q),
            super::super::thousands(t),
            cpu * 1e3
        )),
        (true, _) => {}
    }
    if let Some(e) = &s.ended {
        out.push_str(&format!(" │ {e}"));
    }
    out
}

fn secs(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// What the table header row says about sort, filter and pause.
fn mode_line(s: &TopState) -> String {
    let dir = if s.sort_descending_now() {
        "↓"
    } else {
        "↑"
    };
    let mut out = format!("sort {} {dir}", s.sort.title());
    if !s.filter.is_empty() || s.editing_filter {
        out.push_str(&format!(" │ filter \"{}\"", s.filter));
    }
    if let Screen::Kinds(Some(p)) = s.screen {
        out.push_str(&format!(" │ process {p}"));
    }
    if s.paused {
        out.push_str(" │ PAUSED");
    }
    out
}

/// Draw `s` into `f`; `table` keeps the scroll position between frames. Returns the number of
/// table rows visible (for page up / down).
pub fn draw(f: &mut Frame<'_>, s: &TopState, table: &mut TableState) -> usize {
    let area = f.area();
    let graphs = area.height >= 24;
    let [title, status_a, body, graph_a, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(if graphs { 7 } else { 0 }),
        Constraint::Length(1),
    ])
    .areas(area);

    let bold = Style::default().add_modifier(Modifier::BOLD);
    let screen = match s.screen {
        Screen::Processes => "processes",
        Screen::Kinds(_) => "kinds",
    };
    f.render_widget(
        Paragraph::new(TextLine::from(vec![
            Span::styled(" memkind-probe top ", bold.add_modifier(Modifier::REVERSED)),
            Span::raw(format!(" {} │ {screen} │ {}", s.title, mode_line(s))),
        ])),
        title,
    );
    f.render_widget(
        Paragraph::new(format!(" {}", status(s))).style(Style::default().fg(Color::Cyan)),
        status_a,
    );

    let lines = s.lines();
    let cols: &[Col] = match s.screen {
        Screen::Processes => &PROCESS_COLS,
        Screen::Kinds(_) => &KIND_COLS,
    };
    let name_w = lines
        .iter()
        .map(|l| label(l).chars().count() as u16)
        .max()
        .unwrap_or(0);
    let fitted = fit(cols, body.width, name_w);
    let header = Row::new(fitted.iter().map(|(c, w)| {
        let mut t = c.title(s.screen).to_string();
        let sorted = matches!(c, Col::Fig(x) if *x == s.sort);
        if sorted {
            t.push(if s.sort_descending_now() {
                '▼'
            } else {
                '▲'
            });
        }
        let t = if c.right() {
            format!("{t:>w$}", w = *w as usize)
        } else {
            t
        };
        let st = if sorted { bold.fg(Color::Yellow) } else { bold };
        Cell::from(t).style(st)
    }))
    .style(Style::default().bg(Color::DarkGray));
    let rows = lines.iter().map(|l| {
        let cells = fitted.iter().map(|(c, w)| {
            let t = text_of(l, *c, *w);
            let t = if c.right() {
                format!("{t:>w$}", w = *w as usize)
            } else {
                t
            };
            let mut st = Style::default();
            if *c == Col::Fig(Column::Misplaced) && l.placement.is_some_and(|p| p.misplaced > 0) {
                st = st.fg(Color::Red).add_modifier(Modifier::BOLD);
            }
            if *c == Col::History {
                st = st.fg(Color::Green);
            }
            Cell::from(t).style(st)
        });
        let st = if l.depth > 0 {
            Style::default().fg(Color::Gray)
        } else {
            Style::default()
        };
        Row::new(cells).style(st)
    });
    let empty = lines.is_empty();
    let widths: Vec<Constraint> = fitted.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let t = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    table.select(if empty { None } else { Some(s.cursor()) });
    f.render_stateful_widget(t, body, table);
    if empty {
        let msg = if s.ticks == 0 {
            "waiting for the first sample…"
        } else if !s.filter.is_empty() {
            "nothing matches the filter"
        } else {
            "no memkind activity seen yet"
        };
        if body.height > 2 {
            f.render_widget(
                Paragraph::new(format!("  {msg}")),
                Rect {
                    y: body.y + 1,
                    height: 1,
                    ..body
                },
            );
        }
    }

    if graphs {
        graph_panel(f, s, graph_a, &lines);
    }

    let help_text = if s.editing_filter {
        format!(" filter: {}█   (Enter keep, Esc clear)", s.filter)
    } else {
        format!(" {HELP}")
    };
    f.render_widget(
        Paragraph::new(help_text).style(Style::default().fg(Color::Black).bg(Color::Gray)),
        help,
    );
    body.height.saturating_sub(1) as usize
}

fn ring_data(r: &Ring, width: u16) -> Vec<u64> {
    let n = r.len().min(width as usize);
    r.iter()
        .skip(r.len() - n)
        .map(|v| v.max(0.0) as u64)
        .collect()
}

fn graph_panel(f: &mut Frame<'_>, s: &TopState, area: Rect, lines: &[Line<'_>]) {
    let Some(l) = lines.get(s.cursor()) else {
        f.render_widget(
            Block::default()
                .borders(Borders::ALL)
                .title(" last minute "),
            area,
        );
        return;
    };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let t = l.track;
    let a = Sparkline::default()
        .block(Block::default().borders(Borders::ALL).title(format!(
            " {} allocs/s, last {} s: now {} max {} ",
            l.label,
            t.allocs_hist.capacity() as u64 * s.interval_ms / 1000,
            rate(t.allocs_hist.last().unwrap_or(0.0)),
            rate(t.allocs_hist.max())
        )))
        .data(ring_data(&t.allocs_hist, left.width.saturating_sub(2)))
        .style(Style::default().fg(Color::Green));
    f.render_widget(a, left);
    let live_max = t.live_hist.max();
    let b = Sparkline::default()
        .block(Block::default().borders(Borders::ALL).title(format!(
            " live bytes: now {} max {} ",
            bytes(t.figures.live()),
            bytes(live_max as i128)
        )))
        .data(ring_data(&t.live_hist, right.width.saturating_sub(2)))
        .style(Style::default().fg(Color::Magenta));
    f.render_widget(b, right);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArenaRow, Counters, KindRow, ProcessRow, Summary};
    use crate::view::top::Sample;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn sample(ts: u64, n: u64) -> Sample {
        let c = |a: u64| Counters {
            allocs: a,
            frees: a / 2,
            bytes_allocated: a * 64,
            bytes_freed: a * 32,
            ..Default::default()
        };
        let k = |name: &str, id, m| {
            let mut r = KindRow {
                name: name.into(),
                id,
                counters: c(n * m),
                ..Default::default()
            };
            r.arenas = vec![
                ArenaRow {
                    arena: Some(0),
                    counters: c(n * m / 2),
                    page_faults: 0,
                },
                ArenaRow {
                    arena: Some(1),
                    counters: c(n * m / 2),
                    page_faults: 0,
                },
            ];
            r
        };
        let kinds = vec![k("MEMKIND_DEFAULT", 0, 1), k("MEMKIND_REGULAR", 11, 3)];
        Sample {
            ts_ns: ts * 1_000_000_000,
            summary: Summary {
                processes: vec![ProcessRow {
                    pid: 5,
                    kinds: kinds.clone(),
                    ..Default::default()
                }],
                kinds,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn screen(t: &Terminal<TestBackend>) -> Vec<String> {
        let b = t.backend().buffer();
        (0..b.area.height)
            .map(|y| {
                (0..b.area.width)
                    .map(|x| b[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect()
    }

    #[test]
    fn draws_rows_and_keeps_to_the_width() {
        let mut s = TopState::new("'./work'", 1000, false);
        for i in 0..5 {
            s.update(sample(i, i * 1000));
        }
        let mut ts = TableState::default();
        for (w, h) in [(160, 40), (80, 24), (40, 10)] {
            let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
            t.draw(|f| {
                draw(f, &s, &mut ts);
            })
            .unwrap();
            let rows = screen(&t);
            let all = rows.join("\n");
            assert!(all.contains("MEMKIND_REGULAR"), "{all}");
            assert!(rows.iter().all(|r| r.chars().count() == w as usize));
            if w >= 80 {
                assert!(all.contains("ALLOCS/s▼"), "{all}");
                assert!(all.contains("3,000"), "REGULAR's 3,000 allocs/s: {all}");
                assert!(rows[h as usize - 1].contains("q quit"), "{all}");
            }
            if w == 160 {
                assert!(all.contains("placement: not collected"), "{all}");
                assert!(all.contains("last 60 s"), "{all}");
                assert!(all.contains("▸ MEMKIND_DEFAULT"), "{all}");
            }
        }
        s.input(crate::view::top::Input::Right);
        let mut t = Terminal::new(TestBackend::new(120, 30)).unwrap();
        t.draw(|f| {
            draw(f, &s, &mut ts);
        })
        .unwrap();
        let all = screen(&t).join("\n");
        // The cursor stayed on the line it was on (DEFAULT, first by name at the first sample).
        assert!(all.contains("▾ MEMKIND_DEFAULT"), "{all}");
        assert!(all.contains("    arena 1"), "{all}");
    }

    #[test]
    fn columns_fit() {
        let v = fit(&KIND_COLS, 160, 30);
        assert_eq!(v.len(), KIND_COLS.len());
        assert_eq!(v.iter().map(|c| c.1).sum::<u16>() + v.len() as u16 - 1, 160);
        let v = fit(&KIND_COLS, 60, 30);
        assert!(v.iter().map(|c| c.1).sum::<u16>() + v.len() as u16 - 1 <= 60);
        assert!(v.iter().any(|c| c.0 == Col::Fig(Column::Allocs)));
        assert!(!v.iter().any(|c| c.0 == Col::History));
        assert_eq!(fit(&KIND_COLS, 5, 30).len(), 1);
    }
}
