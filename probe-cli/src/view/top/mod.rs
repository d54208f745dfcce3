//! `memkind-probe top`: a bpftop-like live table of the kinds.
//!
//! - [`state`]: the pure [`TopState`] (rates, history rings, sort, filter, expand, cursor);
//! - [`draw`]: ratatui code that draws a `TopState` into a frame, nothing else;
//! - [`text`]: the same table as plain text (no terminal, or `--once`);
//! - [`terminal`]: entering and leaving the terminal's raw mode and alternate screen (also on
//!   panic), reading keys as [`Input`]s.
//!
//! The cells both views print come from the functions here, so the TUI and the text table
//! always agree.

pub mod draw;
pub mod state;
pub mod terminal;
pub mod text;

pub use state::{Column, Input, Line, LineKey, Outcome, Sample, Screen, TopState};

use super::thousands;
use state::Ring;

/// The keys, as the help line shows them.
pub const HELP: &str = "q quit  ↑↓ move  Enter/→ expand  ← collapse  e all  s/S sort  1-8 column  f filter  p pause  ⌫ back";

/// A rate: `0`, `0.5`, `12.3`, `1,234`.
pub fn rate(v: f64) -> String {
    if v <= 0.0 {
        "0".into()
    } else if v < 100.0 {
        let t = format!("{v:.1}");
        t.strip_suffix(".0").map_or(t.clone(), str::to_string)
    } else {
        thousands(v.round() as i128)
    }
}

/// Bytes in binary units: `0`, `512B`, `12.0K`, `3.4M`, `1.2G`, `-8.0K`.
pub fn bytes(v: i128) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    if v == 0 {
        return "0".into();
    }
    let neg = v < 0;
    let mut x = v.unsigned_abs() as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    let sign = if neg { "-" } else { "" };
    if u == 0 {
        format!("{sign}{x:.0}B")
    } else {
        format!("{sign}{x:.1}{}", UNITS[u])
    }
}

/// The cells of a line, by column (`-` where the figure is not known).
pub fn cell(l: &Line<'_>, c: Column) -> String {
    let f = &l.track.figures;
    match c {
        Column::Name => l.label.clone(),
        Column::Allocs => rate(f.allocs_s),
        Column::Frees => rate(f.frees_s),
        Column::Live => bytes(f.live()),
        Column::Mapped => f.mapped.map_or_else(|| "-".into(), |m| bytes(m.into())),
        Column::Faults => rate(f.faults_s),
        Column::Misplaced => l
            .placement
            .map_or_else(|| "-".into(), |p| bytes(p.misplaced.into())),
        Column::Pages => l.placement.map_or_else(
            || "-".into(),
            |p| format!("{}/{}", bytes(p.huge.into()), bytes(p.base.into())),
        ),
    }
}

/// `BIND 1` (the kind's asked-for mode and nodes), `-` when unknown.
pub fn asked(l: &Line<'_>) -> String {
    l.asked.unwrap_or("-").to_string()
}

/// `0:1.2M 1:40K` (resident bytes per node; `~` first when sampled), `-` when unknown.
pub fn per_node(l: &Line<'_>) -> String {
    let Some(p) = l.placement else {
        return "-".into();
    };
    let mut s = String::new();
    if p.estimate {
        s.push('~');
    }
    for (i, (n, b)) in p.per_node.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{n}:{}", bytes((*b).into())));
    }
    if p.per_node.is_empty() {
        s.push('0');
    }
    s
}

const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The newest `width` samples of `r` as block characters, scaled to their maximum, right-aligned.
pub fn spark(r: &Ring, width: usize) -> String {
    let n = r.len().min(width);
    let max = r.iter().skip(r.len() - n).fold(0.0, f64::max);
    let mut s = String::with_capacity(width * 3);
    for _ in n..width {
        s.push(' ');
    }
    for v in r.iter().skip(r.len() - n) {
        let i = if max > 0.0 && v > 0.0 {
            ((v / max * 8.0).ceil() as usize).clamp(1, 8)
        } else {
            0
        };
        s.push(BARS[i]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures() {
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(0.5), "0.5");
        assert_eq!(rate(3.0), "3");
        assert_eq!(rate(99.94), "99.9");
        assert_eq!(rate(1234.4), "1,234");
        assert_eq!(rate(1_234_567.6), "1,234,568");
        assert_eq!(bytes(0), "0");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(12 * 1024), "12.0K");
        assert_eq!(bytes(3 * 1024 * 1024 + 400 * 1024), "3.4M");
        assert_eq!(bytes(-8192), "-8.0K");
        assert_eq!(bytes(5 << 40), "5.0T");
    }

    #[test]
    fn sparkline_text() {
        let mut r = Ring::new(10);
        assert_eq!(spark(&r, 4), "    ");
        for v in [0.0, 1.0, 4.0, 8.0] {
            r.push(v);
        }
        assert_eq!(spark(&r, 6), "   ▁▄█");
        assert_eq!(spark(&r, 2), "▄█", "the newest samples");
        assert_eq!(spark(&r, 2).chars().count(), 2);
    }
}
