//! What `top` shows, as plain data: per-kind and per-arena rates from consecutive cumulative
//! summaries, a ring of the last minute's samples per row, sorting, filtering, the expanded
//! kinds, the cursor, pause and the process list with its drill-down. No terminal and no I/O:
//! the event loop feeds it [`Sample`]s and [`Input`]s, the drawing code ([`super::draw`]) and the
//! text table ([`super::text`]) read it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::model::{
    Counters, Figures as PlacementFigures, KindPlacement, KindRow, KindTable, Summary,
};

/// How far back the history rings reach.
pub const HISTORY_MS: u64 = 60_000;
/// The most samples a ring keeps (a 100 ms interval over a minute).
pub const MAX_HISTORY: usize = 600;

/// A fixed ring of samples, oldest first; allocated once.
#[derive(Clone, Debug, PartialEq)]
pub struct Ring {
    buf: Vec<f64>,
    head: usize,
    len: usize,
}

impl Ring {
    /// Room for `cap` (at least 1) samples.
    pub fn new(cap: usize) -> Ring {
        Ring {
            buf: vec![0.0; cap.max(1)],
            head: 0,
            len: 0,
        }
    }

    /// Add the newest sample, dropping the oldest when full.
    pub fn push(&mut self, v: f64) {
        let cap = self.buf.len();
        self.buf[(self.head + self.len) % cap] = v;
        if self.len < cap {
            self.len += 1;
        } else {
            self.head = (self.head + 1) % cap;
        }
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No samples yet.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Capacity.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Oldest to newest.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = f64> + ExactSizeIterator + '_ {
        let cap = self.buf.len();
        (0..self.len).map(move |i| self.buf[(self.head + i) % cap])
    }

    /// The newest sample.
    pub fn last(&self) -> Option<f64> {
        self.iter().next_back()
    }

    /// The largest sample (0 when empty).
    pub fn max(&self) -> f64 {
        self.iter().fold(0.0, f64::max)
    }
}

/// Where a kind's (or an arena's) pages are, as `top` shows it: from the placement model's
/// [`PlacementFigures`] (`None` in a row while placement is not collected).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// Resident bytes per NUMA node, ascending by node.
    pub per_node: Vec<(u32, u64)>,
    /// Resident bytes on nodes outside the asked-for set.
    pub misplaced: u64,
    /// Resident bytes in huge pages.
    pub huge: u64,
    /// Resident bytes in base pages.
    pub base: u64,
    /// Sampled (an estimate) rather than every page queried.
    pub estimate: bool,
    /// The estimate's 95% bound, bytes (0 when exact).
    pub error: u64,
}

impl Placement {
    /// The display figures of the model's.
    pub fn of(f: &PlacementFigures) -> Placement {
        Placement {
            per_node: f.nodes.iter().map(|(n, e)| (*n, e.bytes)).collect(),
            misplaced: f.misplaced.bytes,
            huge: f.huge.bytes,
            base: f.base.bytes,
            estimate: f.sampled(),
            error: if f.sampled() { f.error_bytes() } else { 0 },
        }
    }
}

/// A BPF program's cumulative run-time figures (`BPF_ENABLE_STATS`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgSample {
    /// Program name.
    pub name: String,
    /// Runs so far.
    pub run_cnt: u64,
    /// Run time so far.
    pub run_time_ns: u64,
}

/// A program's cost over the last interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgCost {
    /// Program name.
    pub name: String,
    /// Δrun_time / Δwall, in percent of one CPU.
    pub cpu_pct: f64,
    /// Runs per second.
    pub runs_per_s: f64,
}

/// One refresh's input: figures since the probe attached.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// When, ns on a monotonic clock.
    pub ts_ns: u64,
    /// The cumulative summary.
    pub summary: Summary,
    /// The kinds' asked-for node sets and modes.
    pub kinds: KindTable,
    /// The collector queried placement (the rows' `placement`) for this sample.
    pub placement: bool,
    /// The last placement refresh: pages queried, pages in all extents, CPU seconds.
    pub placement_cost: Option<(u64, u64, f64)>,
    /// BPF program run times, when enabled.
    pub progs: Vec<ProgSample>,
    /// Why `progs` is empty (run-time statistics off or unavailable), if it is.
    pub progs_note: Option<String>,
    /// Process names (`comm`) by pid.
    pub names: BTreeMap<u32, String>,
}

/// Columns of the kind table, in display order. `Name` … `Misplaced` sort (keys 1–8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    /// Kind name (arena index in arena rows; pid in the process list).
    Name,
    /// Allocations per second.
    Allocs,
    /// Frees per second.
    Frees,
    /// Bytes allocated minus bytes freed since the probe attached.
    Live,
    /// Bytes the kind's extents map now.
    Mapped,
    /// Page faults per second in the kind's memory.
    Faults,
    /// Resident bytes outside the asked-for node set.
    Misplaced,
    /// Resident bytes in huge pages (then in base pages).
    Pages,
}

impl Column {
    /// Every sortable column, in the order `s` cycles through them and keys 1–8 name them.
    pub const SORTABLE: [Column; 8] = [
        Column::Name,
        Column::Allocs,
        Column::Frees,
        Column::Live,
        Column::Mapped,
        Column::Faults,
        Column::Misplaced,
        Column::Pages,
    ];

    /// Header text.
    pub fn title(self) -> &'static str {
        match self {
            Column::Name => "KIND",
            Column::Allocs => "ALLOCS/s",
            Column::Frees => "FREES/s",
            Column::Live => "LIVE",
            Column::Mapped => "MAPPED",
            Column::Faults => "FAULTS/s",
            Column::Misplaced => "MISPLACED",
            Column::Pages => "HUGE/BASE",
        }
    }

    /// Larger first by default, names ascending.
    fn descending(self) -> bool {
        self != Column::Name
    }
}

/// What a line of the table is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LineKey {
    /// A process in the process list.
    Process(u32),
    /// A kind, by name.
    Kind(String),
    /// An arena of a kind (`None`: threads that used no arena of it).
    Arena(String, Option<u32>),
}

/// Figures of one line since the probe attached, and per second over the last interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Cumulative counters.
    pub counters: Counters,
    /// Cumulative page faults.
    pub faults: u64,
    /// Mapped bytes now (kinds only).
    pub mapped: Option<u64>,
    /// Allocations per second.
    pub allocs_s: f64,
    /// Frees per second.
    pub frees_s: f64,
    /// Page faults per second.
    pub faults_s: f64,
}

impl Figures {
    /// Bytes allocated minus bytes freed since the probe attached.
    pub fn live(&self) -> i128 {
        self.counters.live_bytes()
    }
}

/// A row's figures, rates and history.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    /// Now.
    pub figures: Figures,
    /// Allocations per second, one sample per refresh.
    pub allocs_hist: Ring,
    /// Live bytes, one sample per refresh.
    pub live_hist: Ring,
    seen: u64,
}

impl Track {
    fn new(cap: usize) -> Track {
        Track {
            figures: Figures::default(),
            allocs_hist: Ring::new(cap),
            live_hist: Ring::new(cap),
            seen: 0,
        }
    }

    /// New cumulative figures at `tick`, `dt_s` seconds after the previous ones (0: the first).
    fn update(&mut self, tick: u64, dt_s: f64, c: &Counters, faults: u64, mapped: Option<u64>) {
        let f = &mut self.figures;
        // A row first seen now (not at the first refresh) started within this interval: its
        // whole count is this interval's.
        let first = self.seen + 1 != tick;
        let (pc, pf) = if first {
            (Counters::default(), 0)
        } else {
            (f.counters, f.faults)
        };
        if dt_s > 0.0 {
            f.allocs_s = c.allocs.saturating_sub(pc.allocs) as f64 / dt_s;
            f.frees_s = c.frees.saturating_sub(pc.frees) as f64 / dt_s;
            f.faults_s = faults.saturating_sub(pf) as f64 / dt_s;
        }
        f.counters = *c;
        f.faults = faults;
        f.mapped = mapped;
        if dt_s > 0.0 {
            self.allocs_hist.push(f.allocs_s);
            self.live_hist.push(f.live() as f64);
        }
        self.seen = tick;
    }

    fn sort_value(&self, col: Column, placement: Option<&Placement>) -> f64 {
        let f = &self.figures;
        match col {
            Column::Name => 0.0,
            Column::Allocs => f.allocs_s,
            Column::Frees => f.frees_s,
            Column::Live => f.live() as f64,
            Column::Mapped => f.mapped.unwrap_or(0) as f64,
            Column::Faults => f.faults_s,
            Column::Misplaced => placement.map_or(-1.0, |p| p.misplaced as f64),
            Column::Pages => placement.map_or(-1.0, |p| p.huge as f64 * 1e18 + p.base as f64),
        }
    }
}

/// A kind's tracks: the kind and its arenas.
#[derive(Clone, Debug)]
struct KindTracks {
    id: u32,
    track: Track,
    arenas: BTreeMap<Option<u32>, Track>,
    asked: Option<String>,
    placement: Option<Placement>,
    arena_placement: BTreeMap<Option<u32>, Placement>,
}

/// Which screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    /// The processes (`--all`, several pids).
    Processes,
    /// The kinds of every process summed (`None`), or of one process.
    Kinds(Option<u32>),
}

/// One line to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Line<'a> {
    /// What it is.
    pub key: LineKey,
    /// First column: kind name, `arena N`, or the process's pid and name.
    pub label: String,
    /// 0 for kinds and processes, 1 for arenas.
    pub depth: u8,
    /// Has arenas to show (kinds), or can be entered (processes).
    pub expandable: bool,
    /// Its arenas are shown.
    pub expanded: bool,
    /// Figures and history.
    pub track: &'a Track,
    /// Asked-for mode and nodes (`BIND 1`), when the kind said.
    pub asked: Option<&'a str>,
    /// Where its pages are, when known.
    pub placement: Option<&'a Placement>,
    /// Kinds of a process (process list).
    pub kinds: Option<usize>,
}

/// A key press, decoupled from the terminal library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// ↑, k.
    Up,
    /// ↓, j.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home.
    Home,
    /// End.
    End,
    /// Enter.
    Enter,
    /// →.
    Right,
    /// ←.
    Left,
    /// Backspace.
    Backspace,
    /// Esc.
    Esc,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-L: repaint the whole screen.
    Repaint,
    /// A printable character.
    Char(char),
}

/// What the loop should do after an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changed.
    Ignored,
    /// Draw again.
    Redraw,
    /// Clear the terminal and draw everything again (output of the command under `top` may
    /// have written over the frame).
    Repaint,
    /// Leave.
    Quit,
}

/// The whole state of `top`.
#[derive(Clone, Debug)]
pub struct TopState {
    /// The target as the user wrote it.
    pub title: String,
    /// Refresh interval.
    pub interval_ms: u64,
    /// Sorted by.
    pub sort: Column,
    /// Sort order reversed from the column's default.
    pub reverse: bool,
    /// Name filter (case-insensitive substring).
    pub filter: String,
    /// Typing the filter.
    pub editing_filter: bool,
    /// Figures frozen (samples are not taken in).
    pub paused: bool,
    /// Current screen.
    pub screen: Screen,
    /// Start on the process list (and come back to it with Backspace).
    pub multi: bool,
    /// Refreshes taken in.
    pub ticks: u64,
    /// Length of the last interval in seconds (0 before the second sample).
    pub last_dt_s: f64,
    /// Lost events so far.
    pub lost_events: u64,
    /// Lost events per second over the last interval.
    pub lost_s: f64,
    /// BPF programs' cost over the last interval (empty: not enabled).
    pub progs: Vec<ProgCost>,
    /// Why program costs are missing, if they are.
    pub progs_note: Option<String>,
    /// The placement model was there in the last sample.
    pub placement_wired: bool,
    /// The last placement refresh: pages queried, pages in all extents, CPU seconds.
    pub placement_cost: Option<(u64, u64, f64)>,
    /// Why no more samples come (the command exited, …): the figures stay as they were.
    pub ended: Option<String>,
    /// Rows scrolled in the table (the view keeps the cursor visible).
    pub page_rows: usize,
    expanded: BTreeSet<String>,
    selected: Option<LineKey>,
    cursor: usize,
    cap: usize,
    last_ts: Option<u64>,
    prev_progs: Vec<ProgSample>,
    procs: BTreeMap<u32, (Track, String, usize)>,
    /// Kind tracks per scope (None: every process summed).
    kinds: BTreeMap<Option<u32>, BTreeMap<String, KindTracks>>,
}

/// "BIND 0,2", "INTERLEAVE 0-3", "PREFERRED 1"; `None` without a mode.
pub fn asked_label(mode: i32, mask: &[u64; 4]) -> Option<String> {
    let m = match mode {
        0 => "DEFAULT",
        1 => "PREFERRED",
        2 => "BIND",
        3 => "INTERLEAVE",
        4 => "LOCAL",
        5 => "PREF_MANY",
        6 => "WEIGHTED_IL",
        _ => return None,
    };
    let mut out = String::from(m);
    let nodes: Vec<u32> = (0..256u32)
        .filter(|&n| mask[(n / 64) as usize] & (1 << (n % 64)) != 0)
        .collect();
    let mut i = 0;
    let mut sep = ' ';
    while i < nodes.len() {
        let mut j = i;
        while j + 1 < nodes.len() && nodes[j + 1] == nodes[j] + 1 {
            j += 1;
        }
        out.push(sep);
        sep = ',';
        if j > i {
            let _ = write!(out, "{}-{}", nodes[i], nodes[j]);
        } else {
            let _ = write!(out, "{}", nodes[i]);
        }
        i = j + 1;
    }
    Some(out)
}

fn arena_sum(arenas: &[crate::model::ArenaRow], arena: Option<u32>) -> (Counters, u64) {
    arenas
        .iter()
        .filter(|a| a.arena == arena)
        .fold((Counters::default(), 0), |(mut c, f), a| {
            c.add(&a.counters);
            (c, f + a.page_faults)
        })
}

impl TopState {
    /// Nothing seen yet. `multi`: start on the process list.
    pub fn new(title: impl Into<String>, interval_ms: u64, multi: bool) -> TopState {
        let interval_ms = interval_ms.max(1);
        let cap = (HISTORY_MS.div_ceil(interval_ms) as usize).clamp(2, MAX_HISTORY);
        TopState {
            title: title.into(),
            interval_ms,
            sort: Column::Allocs,
            reverse: false,
            filter: String::new(),
            editing_filter: false,
            paused: false,
            screen: if multi {
                Screen::Processes
            } else {
                Screen::Kinds(None)
            },
            multi,
            ticks: 0,
            last_dt_s: 0.0,
            lost_events: 0,
            lost_s: 0.0,
            progs: Vec::new(),
            progs_note: None,
            placement_wired: false,
            ended: None,
            placement_cost: None,
            page_rows: 10,
            expanded: BTreeSet::new(),
            selected: None,
            cursor: 0,
            cap,
            last_ts: None,
            prev_progs: Vec::new(),
            procs: BTreeMap::new(),
            kinds: BTreeMap::new(),
        }
    }

    /// Samples a history ring holds.
    #[cfg(test)]
    pub fn history_len(&self) -> usize {
        self.cap
    }

    /// Take in one refresh (ignored while paused). The first sample only sets the baseline.
    pub fn update(&mut self, s: Sample) {
        if self.paused {
            return;
        }
        self.ticks += 1;
        let tick = self.ticks;
        let dt_s = match self.last_ts {
            Some(t) if s.ts_ns > t => (s.ts_ns - t) as f64 / 1e9,
            _ => 0.0,
        };
        self.last_ts = Some(s.ts_ns);
        self.last_dt_s = dt_s;
        if dt_s > 0.0 {
            self.lost_s = s.summary.lost_events.saturating_sub(self.lost_events) as f64 / dt_s;
        }
        self.lost_events = s.summary.lost_events;
        self.update_progs(&s.progs, dt_s);
        self.progs_note = s.progs_note;
        self.placement_wired = s.placement;
        self.placement_cost = s.placement_cost;

        let cap = self.cap;
        // Every process summed.
        let all = self.kinds.entry(None).or_default();
        for k in &s.summary.kinds {
            // A kind summed by name: its asked-for set from the first process that names it.
            let asked = s
                .summary
                .processes
                .iter()
                .find_map(|p| {
                    let pk = p.kinds.iter().find(|pk| pk.name == k.name)?;
                    asked_of(&s.kinds, p.pid, pk)
                })
                .or_else(|| k.placement.as_ref().and_then(asked_of_placement));
            update_kind(all, cap, tick, dt_s, k, asked);
        }
        all.retain(|_, t| t.track.seen == tick);
        // Per process (only when they are shown one by one).
        if self.multi {
            for p in &s.summary.processes {
                let mut c = Counters::default();
                let mut f = 0;
                let mut mapped = 0;
                for k in &p.kinds {
                    c.add(&k.counters);
                    f += k.page_faults;
                    mapped += k.extents.bytes_mapped;
                }
                let name = s.names.get(&p.pid).cloned().unwrap_or_default();
                let e = self
                    .procs
                    .entry(p.pid)
                    .or_insert_with(|| (Track::new(cap), String::new(), 0));
                e.0.update(tick, dt_s, &c, f, Some(mapped));
                e.1 = name;
                e.2 = p.kinds.len();
                let scope = self.kinds.entry(Some(p.pid)).or_default();
                for k in &p.kinds {
                    update_kind(scope, cap, tick, dt_s, k, asked_of(&s.kinds, p.pid, k));
                }
                scope.retain(|_, t| t.track.seen == tick);
            }
            self.procs.retain(|_, t| t.0.seen == tick);
            let procs = &self.procs;
            self.kinds
                .retain(|scope, _| scope.is_none_or(|p| procs.contains_key(&p)));
        }
        self.clamp_cursor();
    }

    fn update_progs(&mut self, now: &[ProgSample], dt_s: f64) {
        if dt_s > 0.0 {
            self.progs = now
                .iter()
                .map(|p| {
                    let prev = self.prev_progs.iter().find(|q| q.name == p.name);
                    let (rc, rt) = prev.map_or((0, 0), |q| (q.run_cnt, q.run_time_ns));
                    ProgCost {
                        name: p.name.clone(),
                        cpu_pct: p.run_time_ns.saturating_sub(rt) as f64 / (dt_s * 1e9) * 100.0,
                        runs_per_s: p.run_cnt.saturating_sub(rc) as f64 / dt_s,
                    }
                })
                .collect();
        }
        self.prev_progs.clear();
        self.prev_progs.extend_from_slice(now);
    }

    /// Larger values first in the current order.
    pub fn sort_descending_now(&self) -> bool {
        self.sort.descending() != self.reverse
    }

    /// The probe's own CPU over the last interval, percent of one CPU (sum over programs).
    pub fn probe_cpu_pct(&self) -> f64 {
        self.progs.iter().map(|p| p.cpu_pct).sum()
    }

    fn matches(&self, name: &str) -> bool {
        self.filter.is_empty() || contains_ignore_case(name, &self.filter)
    }

    fn order(&self, a: (&str, f64), b: (&str, f64)) -> std::cmp::Ordering {
        let o = if self.sort == Column::Name {
            a.0.cmp(b.0)
        } else {
            a.1.total_cmp(&b.1).then_with(|| b.0.cmp(a.0))
        };
        let o = if self.sort.descending() {
            o.reverse()
        } else {
            o
        };
        if self.reverse {
            o.reverse()
        } else {
            o
        }
    }

    /// The lines of the current screen: filtered, sorted, arenas under expanded kinds.
    pub fn lines(&self) -> Vec<Line<'_>> {
        self.lines_for(self.screen, false)
    }

    /// The lines of `screen`, filtered and sorted; every kind's arenas with `expand_all`.
    pub fn lines_for(&self, screen: Screen, expand_all: bool) -> Vec<Line<'_>> {
        let mut out = Vec::new();
        match screen {
            Screen::Processes => {
                let mut v: Vec<(&u32, &(Track, String, usize))> = self
                    .procs
                    .iter()
                    .filter(|(pid, (_, name, _))| {
                        self.filter.is_empty()
                            || contains_ignore_case(name, &self.filter)
                            || pid.to_string().contains(&self.filter)
                    })
                    .collect();
                let label = |pid: u32, name: &str| format!("{pid} {name}");
                v.sort_by(|a, b| {
                    let la = label(*a.0, &a.1 .1);
                    let lb = label(*b.0, &b.1 .1);
                    if self.sort == Column::Name {
                        self.order((&la, 0.0), (&lb, 0.0))
                            .then_with(|| a.0.cmp(b.0))
                    } else {
                        self.order(
                            (&la, a.1 .0.sort_value(self.sort, None)),
                            (&lb, b.1 .0.sort_value(self.sort, None)),
                        )
                    }
                });
                for (pid, (t, name, n)) in v {
                    out.push(Line {
                        key: LineKey::Process(*pid),
                        label: label(*pid, name),
                        depth: 0,
                        expandable: true,
                        expanded: false,
                        track: t,
                        asked: None,
                        placement: None,
                        kinds: Some(*n),
                    });
                }
            }
            Screen::Kinds(scope) => {
                let Some(kinds) = self.kinds.get(&scope) else {
                    return out;
                };
                let mut v: Vec<(&String, &KindTracks)> =
                    kinds.iter().filter(|(n, _)| self.matches(n)).collect();
                v.sort_by(|a, b| {
                    self.order(
                        (a.0, a.1.track.sort_value(self.sort, a.1.placement.as_ref())),
                        (b.0, b.1.track.sort_value(self.sort, b.1.placement.as_ref())),
                    )
                    .then_with(|| a.1.id.cmp(&b.1.id))
                });
                for (name, k) in v {
                    let expanded = expand_all || self.expanded.contains(name.as_str());
                    out.push(Line {
                        key: LineKey::Kind(name.clone()),
                        label: name.clone(),
                        depth: 0,
                        expandable: !k.arenas.is_empty(),
                        expanded,
                        track: &k.track,
                        asked: k.asked.as_deref(),
                        placement: k.placement.as_ref(),
                        kinds: None,
                    });
                    if expanded {
                        let mut a: Vec<(&Option<u32>, &Track)> = k.arenas.iter().collect();
                        let label = |x: &Option<u32>| {
                            x.map_or_else(|| "(no arena)".to_string(), |i| format!("arena {i}"))
                        };
                        a.sort_by(|x, y| {
                            if self.sort == Column::Name {
                                let o = x.0.cmp(y.0);
                                if self.reverse {
                                    o.reverse()
                                } else {
                                    o
                                }
                            } else {
                                self.order(
                                    (
                                        &label(x.0),
                                        x.1.sort_value(self.sort, k.arena_placement.get(x.0)),
                                    ),
                                    (
                                        &label(y.0),
                                        y.1.sort_value(self.sort, k.arena_placement.get(y.0)),
                                    ),
                                )
                            }
                        });
                        for (arena, t) in a {
                            out.push(Line {
                                key: LineKey::Arena(name.clone(), *arena),
                                label: label(arena),
                                depth: 1,
                                expandable: false,
                                expanded: false,
                                track: t,
                                asked: k.asked.as_deref(),
                                placement: k.arena_placement.get(arena),
                                kinds: None,
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// Index of the selected line in [`TopState::lines`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The selected line's key.
    #[cfg(test)]
    pub fn selected(&self) -> Option<&LineKey> {
        self.selected.as_ref()
    }

    /// Re-find the selected key after the lines changed (sorting, filtering, a new sample).
    fn clamp_cursor(&mut self) {
        let lines = self.lines();
        let found = self
            .selected
            .as_ref()
            .and_then(|k| lines.iter().position(|l| &l.key == k));
        let cursor = match found {
            Some(i) => i,
            None => self.cursor.min(lines.len().saturating_sub(1)),
        };
        let sel = lines.get(cursor).map(|l| l.key.clone());
        drop(lines);
        self.cursor = cursor;
        self.selected = sel;
    }

    fn move_to(&mut self, i: usize) {
        let lines = self.lines();
        let i = i.min(lines.len().saturating_sub(1));
        let sel = lines.get(i).map(|l| l.key.clone());
        drop(lines);
        self.cursor = i;
        self.selected = sel;
    }

    /// Expand the selected kind (or drill into the selected process).
    fn expand(&mut self) -> Outcome {
        match self.selected.clone() {
            Some(LineKey::Kind(n)) => {
                if self.expanded.insert(n) {
                    Outcome::Redraw
                } else {
                    Outcome::Ignored
                }
            }
            Some(LineKey::Process(pid)) => {
                self.screen = Screen::Kinds(Some(pid));
                self.selected = None;
                self.cursor = 0;
                self.filter.clear();
                self.clamp_cursor();
                Outcome::Redraw
            }
            _ => Outcome::Ignored,
        }
    }

    /// Collapse the selected kind, or the kind of the selected arena (the cursor goes to it).
    fn collapse(&mut self) -> Outcome {
        match self.selected.clone() {
            Some(LineKey::Kind(n)) => {
                if self.expanded.remove(&n) {
                    Outcome::Redraw
                } else {
                    Outcome::Ignored
                }
            }
            Some(LineKey::Arena(n, _)) => {
                self.expanded.remove(&n);
                self.selected = Some(LineKey::Kind(n));
                self.clamp_cursor();
                Outcome::Redraw
            }
            _ => Outcome::Ignored,
        }
    }

    /// Expanded kinds.
    #[cfg(test)]
    pub fn is_expanded(&self, kind: &str) -> bool {
        self.expanded.contains(kind)
    }

    /// Handle one key.
    pub fn input(&mut self, i: Input) -> Outcome {
        match i {
            Input::Interrupt => return Outcome::Quit,
            Input::Repaint => return Outcome::Repaint,
            _ => {}
        }
        if self.editing_filter {
            match i {
                Input::Char(c) => self.filter.push(c),
                Input::Backspace => {
                    self.filter.pop();
                }
                Input::Enter => self.editing_filter = false,
                Input::Esc => {
                    self.editing_filter = false;
                    self.filter.clear();
                }
                _ => return Outcome::Ignored,
            }
            self.clamp_cursor();
            return Outcome::Redraw;
        }
        let n = self.lines().len();
        match i {
            Input::Char('q') | Input::Esc => return Outcome::Quit,
            Input::Up | Input::Char('k') => self.move_to(self.cursor.saturating_sub(1)),
            Input::Down | Input::Char('j') => self.move_to(self.cursor + 1),
            Input::PageUp => self.move_to(self.cursor.saturating_sub(self.page_rows.max(1))),
            Input::PageDown => self.move_to(self.cursor + self.page_rows.max(1)),
            Input::Home | Input::Char('g') => self.move_to(0),
            Input::End | Input::Char('G') => self.move_to(n.saturating_sub(1)),
            Input::Right | Input::Char('l') => return self.expand(),
            Input::Left | Input::Char('h') => return self.collapse(),
            Input::Enter => {
                return match self.selected {
                    Some(LineKey::Kind(ref k)) if self.expanded.contains(k) => self.collapse(),
                    _ => self.expand(),
                }
            }
            Input::Backspace if self.multi && self.screen != Screen::Processes => {
                let back = match self.screen {
                    Screen::Kinds(Some(p)) => Some(LineKey::Process(p)),
                    _ => None,
                };
                self.screen = Screen::Processes;
                self.selected = back;
                self.filter.clear();
                self.clamp_cursor();
            }
            Input::Char('s') => {
                let i = Column::SORTABLE
                    .iter()
                    .position(|c| *c == self.sort)
                    .unwrap_or(0);
                self.sort = Column::SORTABLE[(i + 1) % Column::SORTABLE.len()];
                self.clamp_cursor();
            }
            Input::Char('S') | Input::Char('r') => {
                self.reverse = !self.reverse;
                self.clamp_cursor();
            }
            Input::Char(c @ '1'..='8') => {
                let col = Column::SORTABLE[(c as u8 - b'1') as usize];
                if self.sort == col {
                    self.reverse = !self.reverse;
                } else {
                    self.sort = col;
                    self.reverse = false;
                }
                self.clamp_cursor();
            }
            Input::Char('f') | Input::Char('/') => {
                self.editing_filter = true;
            }
            Input::Char('p') | Input::Char(' ') => self.paused = !self.paused,
            Input::Char('e') => {
                // Expand every kind on screen, or collapse them all when all are expanded.
                let names: Vec<String> = self
                    .lines()
                    .iter()
                    .filter_map(|l| match &l.key {
                        LineKey::Kind(n) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                if names.iter().all(|n| self.expanded.contains(n)) {
                    self.expanded.clear();
                } else {
                    self.expanded.extend(names);
                }
                self.clamp_cursor();
            }
            _ => return Outcome::Ignored,
        }
        Outcome::Redraw
    }
}

fn asked_of(kinds: &KindTable, pid: u32, k: &KindRow) -> Option<String> {
    kinds
        .info(pid, k.id)
        .and_then(|i| asked_label(i.mbind_mode, &i.nodemask))
        .or_else(|| k.placement.as_ref().and_then(asked_of_placement))
}

fn asked_of_placement(p: &KindPlacement) -> Option<String> {
    let mut mask = [0u64; 4];
    for &n in p.asked_nodes.iter().filter(|n| **n < 256) {
        mask[(n / 64) as usize] |= 1 << (n % 64);
    }
    asked_label(p.mbind_mode, &mask)
}

fn update_kind(
    scope: &mut BTreeMap<String, KindTracks>,
    cap: usize,
    tick: u64,
    dt_s: f64,
    k: &KindRow,
    asked: Option<String>,
) {
    let kt = match scope.get_mut(k.name.as_str()) {
        Some(kt) => kt,
        None => scope.entry(k.name.clone()).or_insert_with(|| KindTracks {
            id: k.id,
            track: Track::new(cap),
            arenas: BTreeMap::new(),
            asked: None,
            placement: None,
            arena_placement: BTreeMap::new(),
        }),
    };
    kt.id = k.id;
    kt.track.update(
        tick,
        dt_s,
        &k.counters,
        k.page_faults,
        Some(k.extents.bytes_mapped),
    );
    for a in &k.arenas {
        if kt.arenas.get(&a.arena).is_some_and(|t| t.seen == tick) {
            continue;
        }
        let (c, f) = arena_sum(&k.arenas, a.arena);
        kt.arenas
            .entry(a.arena)
            .or_insert_with(|| Track::new(cap))
            .update(tick, dt_s, &c, f, None);
    }
    kt.arenas.retain(|_, t| t.seen == tick);
    if asked.is_some() {
        kt.asked = asked;
    }
    kt.placement = k.placement.as_ref().map(|p| Placement::of(&p.total));
    kt.arena_placement = k
        .placement
        .as_ref()
        .map(|p| {
            p.arenas
                .iter()
                .map(|(a, f)| (*a, Placement::of(f)))
                .collect()
        })
        .unwrap_or_default();
}

fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    let n: Vec<char> = needle.chars().flat_map(char::to_lowercase).collect();
    let h: Vec<char> = hay.chars().flat_map(char::to_lowercase).collect();
    n.is_empty() || h.windows(n.len()).any(|w| w == n.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArenaRow, ExtentTotals, KindEvent, KindOp, ProcessRow};

    fn counters(allocs: u64, frees: u64, ba: u64, bf: u64) -> Counters {
        Counters {
            allocs,
            frees,
            bytes_allocated: ba,
            bytes_freed: bf,
            ..Default::default()
        }
    }

    fn kind(name: &str, id: u32, arenas: &[(Option<u32>, u64, u64)], faults: u64) -> KindRow {
        let mut k = KindRow {
            name: name.into(),
            id,
            page_faults: faults,
            extents: ExtentTotals {
                count: 1,
                bytes_mapped: 2 << 20,
                bytes_purged: 0,
            },
            ..Default::default()
        };
        for &(a, allocs, frees) in arenas {
            let c = counters(allocs, frees, allocs * 64, frees * 64);
            k.counters.add(&c);
            k.arenas.push(ArenaRow {
                arena: a,
                counters: c,
                page_faults: 0,
            });
        }
        k
    }

    fn sample(ts_s: f64, procs: Vec<(u32, Vec<KindRow>)>) -> Sample {
        let mut summary = Summary::default();
        let mut by_name: BTreeMap<String, KindRow> = BTreeMap::new();
        for (pid, kinds) in procs {
            for k in &kinds {
                let e = by_name.entry(k.name.clone()).or_insert_with(|| KindRow {
                    name: k.name.clone(),
                    id: k.id,
                    ..Default::default()
                });
                e.counters.add(&k.counters);
                e.page_faults += k.page_faults;
                e.extents.bytes_mapped += k.extents.bytes_mapped;
                for a in &k.arenas {
                    e.arenas.push(a.clone());
                }
            }
            summary.processes.push(ProcessRow {
                pid,
                kinds,
                ..Default::default()
            });
        }
        summary.kinds = by_name.into_values().collect();
        let mut names = BTreeMap::new();
        names.insert(10, "alpha".to_string());
        names.insert(20, "beta".to_string());
        Sample {
            ts_ns: (ts_s * 1e9) as u64,
            summary,
            names,
            ..Default::default()
        }
    }

    fn labels(s: &TopState) -> Vec<String> {
        s.lines().iter().map(|l| l.label.clone()).collect()
    }

    #[test]
    fn ring_keeps_the_newest() {
        let mut r = Ring::new(3);
        assert!(r.is_empty() && r.last().is_none() && r.max() == 0.0);
        for v in 1..=5 {
            r.push(v as f64);
        }
        assert_eq!(r.iter().collect::<Vec<_>>(), [3.0, 4.0, 5.0]);
        assert_eq!(
            (r.len(), r.capacity(), r.last(), r.max()),
            (3, 3, Some(5.0), 5.0)
        );
        // A minute of samples at the interval, bounded.
        assert_eq!(TopState::new("", 1000, false).history_len(), 60);
        assert_eq!(TopState::new("", 250, false).history_len(), 240);
        assert_eq!(TopState::new("", 1, false).history_len(), MAX_HISTORY);
        assert_eq!(TopState::new("", 120_000, false).history_len(), 2);
    }

    #[test]
    fn rates_from_two_snapshots() {
        let mut s = TopState::new("t", 1000, false);
        s.update(sample(
            1.0,
            vec![(
                10,
                vec![kind("MEMKIND_DEFAULT", 0, &[(Some(0), 100, 50)], 4)],
            )],
        ));
        let l = s.lines();
        assert_eq!(l.len(), 1);
        assert_eq!(
            l[0].track.figures.allocs_s, 0.0,
            "one sample: a baseline only"
        );
        assert!(l[0].track.allocs_hist.is_empty());
        drop(l);
        s.update(sample(
            3.0,
            vec![(
                10,
                vec![
                    kind(
                        "MEMKIND_DEFAULT",
                        0,
                        &[(Some(0), 300, 150), (Some(1), 40, 0)],
                        10,
                    ),
                    kind("MEMKIND_REGULAR", 11, &[(None, 20, 20)], 0),
                ],
            )],
        ));
        assert_eq!(s.last_dt_s, 2.0);
        let l = s.lines();
        let d = l.iter().find(|l| l.label == "MEMKIND_DEFAULT").unwrap();
        let f = &d.track.figures;
        // (340 - 100) / 2 s, (150 - 50) / 2 s, (10 - 4) / 2 s.
        assert_eq!((f.allocs_s, f.frees_s, f.faults_s), (120.0, 50.0, 3.0));
        assert_eq!(f.live(), (340 - 150) * 64);
        assert_eq!(f.mapped, Some(2 << 20));
        assert_eq!(d.track.allocs_hist.iter().collect::<Vec<_>>(), [120.0]);
        assert_eq!(d.track.live_hist.last(), Some(((340 - 150) * 64) as f64));
        // A kind new in this interval: its whole count is this interval's.
        let r = l.iter().find(|l| l.label == "MEMKIND_REGULAR").unwrap();
        assert_eq!(r.track.figures.allocs_s, 10.0);
        drop(l);
        // Counters that went down (pid reuse) read as 0/s, never negative or 2^64.
        s.update(sample(
            4.0,
            vec![(10, vec![kind("MEMKIND_DEFAULT", 0, &[(Some(0), 1, 1)], 0)])],
        ));
        let l = s.lines();
        assert_eq!(
            labels(&s),
            ["MEMKIND_DEFAULT"],
            "a kind gone from the summary goes"
        );
        assert_eq!(l[0].track.figures.allocs_s, 0.0);
        assert_eq!(l[0].track.allocs_hist.len(), 2);
    }

    fn three_kinds(s: &mut TopState) {
        let k = |a1: u64, a2: u64, a3: u64| {
            vec![(
                10,
                vec![
                    kind(
                        "MEMKIND_DEFAULT",
                        0,
                        &[(Some(0), a1, 0), (Some(3), a1 * 2, 0)],
                        0,
                    ),
                    kind("MEMKIND_HBW", 1, &[(Some(5), a2, a2)], a2 / 5),
                    kind("MEMKIND_REGULAR", 11, &[(None, a3, 0)], 0),
                ],
            )]
        };
        s.update(sample(0.0, k(0, 0, 0)));
        s.update(sample(1.0, k(10, 500, 50)));
    }

    #[test]
    fn sorting() {
        let mut s = TopState::new("t", 1000, false);
        three_kinds(&mut s);
        // Allocs/s descending by default: DEFAULT 30, HBW 500, REGULAR 50.
        assert_eq!(
            labels(&s),
            ["MEMKIND_HBW", "MEMKIND_REGULAR", "MEMKIND_DEFAULT"]
        );
        s.input(Input::Char('S'));
        assert!(s.reverse);
        assert_eq!(
            labels(&s),
            ["MEMKIND_DEFAULT", "MEMKIND_REGULAR", "MEMKIND_HBW"]
        );
        // Key 1: by name, ascending.
        s.input(Input::Char('1'));
        assert_eq!((s.sort, s.reverse), (Column::Name, false));
        assert_eq!(
            labels(&s),
            ["MEMKIND_DEFAULT", "MEMKIND_HBW", "MEMKIND_REGULAR"]
        );
        // The same number again reverses.
        s.input(Input::Char('1'));
        assert_eq!(
            labels(&s),
            ["MEMKIND_REGULAR", "MEMKIND_HBW", "MEMKIND_DEFAULT"]
        );
        // `s` cycles: Name -> Allocs -> Frees -> Live -> Mapped -> Faults -> ... -> Name.
        s.input(Input::Char('1'));
        s.input(Input::Char('s'));
        assert_eq!(s.sort, Column::Allocs);
        s.input(Input::Char('s'));
        assert_eq!(s.sort, Column::Frees);
        assert_eq!(labels(&s)[0], "MEMKIND_HBW");
        s.input(Input::Char('s'));
        assert_eq!(s.sort, Column::Live);
        // Live: DEFAULT 30*64, HBW 0, REGULAR 50*64.
        assert_eq!(
            labels(&s),
            ["MEMKIND_REGULAR", "MEMKIND_DEFAULT", "MEMKIND_HBW"]
        );
        s.input(Input::Char('6'));
        assert_eq!(s.sort, Column::Faults);
        assert_eq!(labels(&s)[0], "MEMKIND_HBW");
        for _ in 0..Column::SORTABLE.len() - 5 {
            s.input(Input::Char('s'));
        }
        assert_eq!(s.sort, Column::Name);
        // The cursor follows its line through a re-sort.
        s.input(Input::Char('2'));
        s.input(Input::Home);
        s.input(Input::Down);
        assert_eq!(s.selected(), Some(&LineKey::Kind("MEMKIND_REGULAR".into())));
        s.input(Input::Char('S'));
        assert_eq!(s.cursor(), 1);
        s.input(Input::Char('1'));
        assert_eq!(s.cursor(), 2);
        assert_eq!(s.selected(), Some(&LineKey::Kind("MEMKIND_REGULAR".into())));
    }

    #[test]
    fn filtering() {
        let mut s = TopState::new("t", 1000, false);
        three_kinds(&mut s);
        assert_eq!(s.input(Input::Char('f')), Outcome::Redraw);
        assert!(s.editing_filter);
        for c in "hb".chars() {
            s.input(Input::Char(c));
        }
        // While typing, `q` is a letter, not quit.
        assert_eq!(s.input(Input::Char('q')), Outcome::Redraw);
        assert_eq!(s.filter, "hbq");
        assert!(labels(&s).is_empty());
        s.input(Input::Backspace);
        assert_eq!(labels(&s), ["MEMKIND_HBW"], "case-insensitive substring");
        s.input(Input::Enter);
        assert!(!s.editing_filter);
        assert_eq!(s.filter, "hb");
        // The filter stays across samples.
        three_kinds(&mut s);
        assert_eq!(labels(&s), ["MEMKIND_HBW"]);
        // Esc while typing clears it.
        s.input(Input::Char('f'));
        s.input(Input::Char('x'));
        s.input(Input::Esc);
        assert!(s.filter.is_empty() && !s.editing_filter);
        assert_eq!(labels(&s).len(), 3);
        assert_eq!(
            s.input(Input::Esc),
            Outcome::Quit,
            "Esc outside the filter quits"
        );
    }

    #[test]
    fn expand_and_collapse() {
        let mut s = TopState::new("t", 1000, false);
        three_kinds(&mut s);
        s.input(Input::Char('1'));
        assert_eq!(s.selected(), Some(&LineKey::Kind("MEMKIND_DEFAULT".into())));
        assert!(s.lines()[0].expandable);
        assert_eq!(s.input(Input::Enter), Outcome::Redraw);
        assert!(s.is_expanded("MEMKIND_DEFAULT"));
        assert_eq!(
            labels(&s),
            [
                "MEMKIND_DEFAULT",
                "arena 0",
                "arena 3",
                "MEMKIND_HBW",
                "MEMKIND_REGULAR"
            ]
        );
        let l = s.lines();
        assert!(l[0].expanded);
        assert_eq!((l[1].depth, l[2].track.figures.allocs_s), (1, 20.0));
        drop(l);
        // Arenas sort by the same column: allocs/s puts arena 3 (20/s) before arena 0 (10/s).
        s.input(Input::Char('2'));
        let order: Vec<String> = labels(&s);
        let d = order.iter().position(|x| x == "MEMKIND_DEFAULT").unwrap();
        assert_eq!(&order[d + 1..d + 3], ["arena 3", "arena 0"]);
        // ← on an arena collapses its kind and selects it.
        s.input(Input::Char('1'));
        s.input(Input::Home);
        s.input(Input::Down);
        assert_eq!(
            s.selected(),
            Some(&LineKey::Arena("MEMKIND_DEFAULT".into(), Some(0)))
        );
        assert_eq!(s.input(Input::Left), Outcome::Redraw);
        assert_eq!(s.selected(), Some(&LineKey::Kind("MEMKIND_DEFAULT".into())));
        assert_eq!(labels(&s).len(), 3);
        // → expands, Enter on an expanded kind collapses.
        s.input(Input::Right);
        assert_eq!(labels(&s).len(), 5);
        s.input(Input::Enter);
        assert_eq!(labels(&s).len(), 3);
        // `e` expands all, again collapses all.
        s.input(Input::Char('e'));
        assert_eq!(labels(&s).len(), 3 + 2 + 1 + 1);
        assert_eq!(labels(&s)[6], "(no arena)");
        s.input(Input::Char('e'));
        assert_eq!(labels(&s).len(), 3);
        // Expansion survives a refresh; the cursor stays in range.
        s.input(Input::Right);
        three_kinds(&mut s);
        assert_eq!(labels(&s).len(), 5);
        s.input(Input::End);
        assert_eq!(s.cursor(), 4);
        s.input(Input::Down);
        assert_eq!(s.cursor(), 4);
    }

    #[test]
    fn pause_freezes_the_figures() {
        let mut s = TopState::new("t", 1000, false);
        three_kinds(&mut s);
        s.input(Input::Char('p'));
        assert!(s.paused);
        let before = s.ticks;
        s.update(sample(
            2.0,
            vec![(
                10,
                vec![kind("MEMKIND_DEFAULT", 0, &[(Some(0), 9999, 0)], 0)],
            )],
        ));
        assert_eq!(s.ticks, before);
        assert_eq!(labels(&s).len(), 3);
        s.input(Input::Char(' '));
        assert!(!s.paused);
    }

    #[test]
    fn processes_then_drill_down() {
        let mut s = TopState::new("all", 1000, true);
        let k = |n: u64| {
            vec![
                (10, vec![kind("MEMKIND_DEFAULT", 0, &[(Some(0), n, 0)], 0)]),
                (
                    20,
                    vec![
                        kind("MEMKIND_DEFAULT", 0, &[(Some(1), 3 * n, 0)], 0),
                        kind("PMEM:/mnt/pmem", 30, &[(None, n, 0)], 0),
                    ],
                ),
            ]
        };
        s.update(sample(0.0, k(0)));
        s.update(sample(1.0, k(100)));
        assert_eq!(s.screen, Screen::Processes);
        assert_eq!(labels(&s), ["20 beta", "10 alpha"]);
        let l = s.lines();
        assert_eq!((l[0].track.figures.allocs_s, l[0].kinds), (400.0, Some(2)));
        drop(l);
        // Filter by name or pid.
        s.input(Input::Char('f'));
        s.input(Input::Char('1'));
        s.input(Input::Enter);
        assert_eq!(labels(&s), ["10 alpha"]);
        s.input(Input::Enter);
        assert_eq!(s.screen, Screen::Kinds(Some(10)));
        assert!(s.filter.is_empty(), "the filter was the process list's");
        assert_eq!(labels(&s), ["MEMKIND_DEFAULT"]);
        assert_eq!(
            s.lines()[0].track.figures.allocs_s,
            100.0,
            "this process's only"
        );
        assert_eq!(s.input(Input::Backspace), Outcome::Redraw);
        assert_eq!(s.screen, Screen::Processes);
        assert_eq!(s.selected(), Some(&LineKey::Process(10)));
        s.input(Input::Up);
        s.input(Input::Right);
        assert_eq!(s.screen, Screen::Kinds(Some(20)));
        assert_eq!(labels(&s), ["MEMKIND_DEFAULT", "PMEM:/mnt/pmem"]);
        // A process that exits leaves the list.
        s.update(sample(2.0, vec![(20, k(200).remove(1).1)]));
        s.input(Input::Backspace);
        assert_eq!(labels(&s), ["20 beta"]);
        // Single-target mode has no process list to go back to.
        let mut one = TopState::new("one", 1000, false);
        three_kinds(&mut one);
        assert_eq!(one.input(Input::Backspace), Outcome::Ignored);
    }

    #[test]
    fn asked_node_sets_placement_and_probe_cost() {
        assert_eq!(asked_label(-1, &[0; 4]), None);
        assert_eq!(asked_label(2, &[0b10, 0, 0, 0]).as_deref(), Some("BIND 1"));
        assert_eq!(
            asked_label(3, &[0b1111, 0, 0, 0]).as_deref(),
            Some("INTERLEAVE 0-3")
        );
        assert_eq!(
            asked_label(1, &[0b1101, 0, 0, 1]).as_deref(),
            Some("PREFERRED 0,2-3,192")
        );
        assert_eq!(asked_label(0, &[0; 4]).as_deref(), Some("DEFAULT"));

        let mut s = TopState::new("t", 1000, false);
        let mut a = sample(
            0.0,
            vec![(10, vec![kind("MEMKIND_HBW", 1, &[(Some(4), 1, 0)], 0)])],
        );
        let mut kt = KindTable::new();
        kt.apply(
            10,
            &KindEvent {
                op: KindOp::Announce,
                kind: 1,
                backing: 0,
                mbind_mode: 2,
                nodemask: [2, 0, 0, 0],
                name: "MEMKIND_HBW".into(),
                dir: String::new(),
            },
        );
        a.kinds = kt.clone();
        a.progs = vec![ProgSample {
            name: "stats_flush".into(),
            run_cnt: 10,
            run_time_ns: 1_000_000,
        }];
        s.update(a);
        assert!(!s.placement_wired);
        assert!(s.lines()[0].placement.is_none());
        let mut b = sample(
            0.5,
            vec![(10, vec![kind("MEMKIND_HBW", 1, &[(Some(4), 2, 0)], 0)])],
        );
        b.kinds = kt;
        // Placement of HBW (BIND 1) in pid 10, arena 4: 1 page on node 0 (misplaced), 2 on node 1.
        let smp = crate::model::Sample {
            tgid: 10,
            kind: 1,
            arena: 4,
            page_size: 4096,
            mbind_mode: 2,
            nodemask: [2, 0, 0, 0],
            pages_total: 3,
            pages_queried: 3,
            present: [((Some(0), false), 1), ((Some(1), false), 2)]
                .into_iter()
                .collect(),
        };
        let pm = crate::model::Placement::from_samples(&[smp], 0);
        let kp = pm.kinds[&(10, 1)].clone();
        b.summary.kinds[0].placement = Some(kp.clone());
        b.summary.processes[0].kinds[0].placement = Some(kp);
        b.placement = true;
        b.progs = vec![ProgSample {
            name: "stats_flush".into(),
            run_cnt: 60,
            run_time_ns: 6_000_000,
        }];
        b.summary.lost_events = 7;
        s.update(b);
        assert!(s.placement_wired);
        let l = s.lines();
        assert_eq!(l[0].asked, Some("BIND 1"));
        assert_eq!(l[0].placement.unwrap().misplaced, 4096);
        assert_eq!(l[0].placement.unwrap().per_node, [(0, 4096), (1, 8192)]);
        drop(l);
        s.input(Input::Right);
        assert_eq!(s.lines()[1].label, "arena 4");
        let ap = s.lines()[1].placement.cloned().unwrap();
        assert_eq!(
            (ap.base, ap.huge, ap.estimate, ap.error),
            (3 * 4096, 0, false, 0)
        );
        // 5 ms of BPF run time in 0.5 s: 1% of a CPU, 100 runs/s.
        assert_eq!(s.progs.len(), 1);
        assert!((s.progs[0].cpu_pct - 1.0).abs() < 1e-9, "{:?}", s.progs);
        assert!((s.progs[0].runs_per_s - 100.0).abs() < 1e-9);
        assert!((s.probe_cpu_pct() - 1.0).abs() < 1e-9);
        assert_eq!((s.lost_events, s.lost_s), (7, 14.0));
        // Misplaced sorts.
        s.input(Input::Char('7'));
        assert_eq!(s.sort, Column::Misplaced);
        // Without a kind event, the asked-for set comes from the placement model.
        let mut c = sample(
            1.0,
            vec![(10, vec![kind("MEMKIND_HBW", 1, &[(Some(4), 3, 0)], 0)])],
        );
        c.summary.kinds[0].placement = Some(pm.kinds[&(10, 1)].clone());
        s.update(c);
        assert_eq!(s.lines()[0].asked, Some("BIND 1"));
    }

    #[test]
    fn quit_keys() {
        let mut s = TopState::new("t", 1000, false);
        assert_eq!(s.input(Input::Char('q')), Outcome::Quit);
        assert_eq!(s.input(Input::Interrupt), Outcome::Quit);
        s.input(Input::Char('f'));
        assert_eq!(
            s.input(Input::Interrupt),
            Outcome::Quit,
            "Ctrl-C quits even while typing"
        );
        assert_eq!(s.input(Input::Char('z')), Outcome::Redraw);
        s.input(Input::Enter);
        assert_eq!(s.input(Input::Char('z')), Outcome::Ignored);
        assert!(contains_ignore_case("MEMKIND_Default", "defAULT"));
        assert!(!contains_ignore_case("abc", "abcd"));
    }
}
