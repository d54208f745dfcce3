//! OpenMetrics text exposition (`application/openmetrics-text; version=1.0.0`).
//!
//! Families (counters are exposed as `<family>_total`):
//!
//! | family | type | labels |
//! |---|---|---|
//! | `memkind_allocs`, `memkind_frees`, `memkind_reallocs` | counter | pid, kind, arena |
//! | `memkind_bytes_requested`, `memkind_bytes_allocated`, `memkind_bytes_freed` | counter | pid, kind, arena |
//! | `memkind_page_faults` | counter | pid, kind, arena |
//! | `memkind_live_bytes` | gauge | pid, kind, arena |
//! | `memkind_allocs_by_size` | counter | pid, kind, size_max (bytes, `+Inf` for the last bucket) |
//! | `memkind_mapped_bytes`, `memkind_extents` | gauge | pid, kind |
//! | `memkind_bytes_purged` | counter | pid, kind |
//! | `memkind_other_page_faults` | counter | pid |
//! | `memkind_process_page_faults` | counter | pid, type (`minor` / `major`) |
//! | `memkind_lost_events` | counter | — |
//! | `memkind_resident_bytes` | gauge | pid, kind, node (resident bytes of the kind per NUMA node) |
//! | `memkind_misplaced_bytes` | gauge | pid, kind (resident on a node outside the asked-for set) |
//! | `memkind_huge_bytes`, `memkind_base_bytes` | gauge | pid, kind (resident in huge / base pages) |
//! | `memkind_placement_error_bytes` | gauge | pid, kind (95 % bound of the sampled figures; 0 = exact) |
//!
//! The placement families appear when placement was taken; `node` is bounded by the machine's
//! NUMA nodes.
//!
//! **Label cardinality is bounded** ([`Limits`]): per process and kind, the `max_arenas` arenas
//! with the most allocations and frees keep their own `arena` label (the arena index, or `none`
//! for counts of threads that used no arena); the rest are folded into `arena="other"`. Beyond
//! `max_processes` processes (by allocations), the rest are folded into `pid="other"`. With the
//! defaults (8 arenas, 64 processes) and the 26 static kinds plus a few dynamic ones, a scrape
//! stays within a few thousand series.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{
    bucket_upper_bound, merge_into, Counters, KindPlacement, KindRow, ProcessRow, Summary,
    SIZE_BUCKETS,
};

/// The HTTP content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Label cardinality bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Arenas per process × kind with a label of their own.
    pub max_arenas: usize,
    /// Processes with a label of their own.
    pub max_processes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_arenas: 8,
            max_processes: 64,
        }
    }
}

/// Escape a label value: backslash, double quote and newline.
pub fn escape(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

#[derive(Default, Clone)]
struct Row {
    c: Counters,
    faults: u64,
}

/// Rows by (pid label, kind, arena label) after folding, and per (pid label, kind) extras.
#[derive(Default)]
struct Folded {
    rows: BTreeMap<(String, String, String), Row>,
    kinds: BTreeMap<(String, String), (Counters, u64, u64, u64)>, // counters, extents, mapped, purged
    other: BTreeMap<String, u64>,
    minor: BTreeMap<String, u64>,
    major: BTreeMap<String, u64>,
    placement: BTreeMap<(String, String), Option<KindPlacement>>,
}

fn fold(s: &Summary, lim: &Limits) -> Folded {
    let mut procs: Vec<&ProcessRow> = s.processes.iter().collect();
    let allocs = |p: &ProcessRow| p.kinds.iter().map(|k| k.counters.allocs).sum::<u64>();
    procs.sort_by(|a, b| allocs(b).cmp(&allocs(a)).then(a.pid.cmp(&b.pid)));
    let mut f = Folded::default();
    for (i, p) in procs.iter().enumerate() {
        let pid = if i < lim.max_processes {
            p.pid.to_string()
        } else {
            "other".to_string()
        };
        *f.other.entry(pid.clone()).or_default() += p.other_page_faults;
        *f.minor.entry(pid.clone()).or_default() += p.process_faults.minor;
        *f.major.entry(pid.clone()).or_default() += p.process_faults.major;
        for k in &p.kinds {
            fold_kind(&mut f, &pid, k, lim);
        }
    }
    f
}

fn fold_kind(f: &mut Folded, pid: &str, k: &KindRow, lim: &Limits) {
    let mut arenas: Vec<_> = k.arenas.iter().collect();
    let act = |c: &Counters| c.allocs + c.frees + c.reallocs;
    arenas.sort_by(|a, b| {
        act(&b.counters)
            .cmp(&act(&a.counters))
            .then(a.arena.cmp(&b.arena))
    });
    for (i, a) in arenas.iter().enumerate() {
        let label = if i < lim.max_arenas {
            a.arena
                .map_or_else(|| "none".to_string(), |x| x.to_string())
        } else {
            "other".to_string()
        };
        let r = f
            .rows
            .entry((pid.to_string(), k.name.clone(), label))
            .or_default();
        r.c.add(&a.counters);
        r.faults += a.page_faults;
    }
    let e = f
        .kinds
        .entry((pid.to_string(), k.name.clone()))
        .or_default();
    e.0.add(&k.counters);
    e.1 += k.extents.count;
    e.2 += k.extents.bytes_mapped;
    e.3 += k.extents.bytes_purged;
    if let Some(p) = &k.placement {
        merge_into(
            f.placement
                .entry((pid.to_string(), k.name.clone()))
                .or_default(),
            p,
        );
    }
}

struct Out {
    s: String,
}

impl Out {
    fn family(&mut self, name: &str, ty: &str, help: &str) {
        let _ = writeln!(self.s, "# TYPE {name} {ty}");
        let _ = writeln!(self.s, "# HELP {name} {help}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        self.s.push_str(name);
        if !labels.is_empty() {
            self.s.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.s.push(',');
                }
                let _ = write!(self.s, "{k}=\"{}\"", escape(val));
            }
            self.s.push('}');
        }
        let _ = writeln!(self.s, " {v}");
    }
}

fn placement(o: &mut Out, f: &Folded) {
    let kinds: Vec<(&(String, String), &KindPlacement)> = f
        .placement
        .iter()
        .filter_map(|(k, p)| p.as_ref().map(|p| (k, p)))
        .collect();
    if kinds.is_empty() {
        return;
    }
    o.family(
        "memkind_resident_bytes",
        "gauge",
        "Resident bytes of the kind on the NUMA node (estimated when sampled).",
    );
    for ((pid, kind), p) in &kinds {
        for (node, e) in &p.total.nodes {
            o.sample(
                "memkind_resident_bytes",
                &[("pid", pid), ("kind", kind), ("node", &node.to_string())],
                e.bytes,
            );
        }
    }
    type Get = fn(&KindPlacement) -> u64;
    let per_kind: [(&str, &str, Get); 4] = [
        (
            "memkind_misplaced_bytes",
            "Resident bytes of the kind on a node outside the node set it asked for.",
            |p| p.total.misplaced.bytes,
        ),
        (
            "memkind_huge_bytes",
            "Resident bytes of the kind in huge pages (hugetlb or transparent).",
            |p| p.total.huge.bytes,
        ),
        (
            "memkind_base_bytes",
            "Resident bytes of the kind in base pages.",
            |p| p.total.base.bytes,
        ),
        (
            "memkind_placement_error_bytes",
            "Half-width of the 95% interval of the kind's sampled placement figures (0: exact).",
            |p| p.total.error_bytes(),
        ),
    ];
    for (name, help, get) in per_kind {
        o.family(name, "gauge", help);
        for ((pid, kind), p) in &kinds {
            o.sample(name, &[("pid", pid), ("kind", kind)], get(p));
        }
    }
}

/// The summary in OpenMetrics text, ending with `# EOF`.
pub fn render(s: &Summary, lim: &Limits) -> String {
    let f = fold(s, lim);
    let mut o = Out { s: String::new() };
    type Get = fn(&Row) -> u64;
    let per_arena: [(&str, &str, Get); 7] = [
        (
            "memkind_allocs",
            "Successful allocations (malloc, calloc, posix_memalign, realloc of NULL).",
            |r| r.c.allocs,
        ),
        (
            "memkind_frees",
            "Frees of non-NULL pointers and reallocs to size 0.",
            |r| r.c.frees,
        ),
        (
            "memkind_reallocs",
            "Successful reallocs of live blocks.",
            |r| r.c.reallocs,
        ),
        (
            "memkind_bytes_requested",
            "Bytes asked for by allocations and reallocs.",
            |r| r.c.bytes_requested,
        ),
        ("memkind_bytes_allocated", "Usable bytes handed out.", |r| {
            r.c.bytes_allocated
        }),
        ("memkind_bytes_freed", "Usable bytes given back.", |r| {
            r.c.bytes_freed
        }),
        (
            "memkind_page_faults",
            "User page faults in the kind's memory.",
            |r| r.faults,
        ),
    ];
    for (name, help, get) in per_arena {
        o.family(name, "counter", help);
        let sample = format!("{name}_total");
        for ((pid, kind, arena), r) in &f.rows {
            o.sample(
                &sample,
                &[("pid", pid), ("kind", kind), ("arena", arena)],
                get(r),
            );
        }
    }
    o.family(
        "memkind_live_bytes",
        "gauge",
        "Bytes allocated and not freed (allocated - freed).",
    );
    for ((pid, kind, arena), r) in &f.rows {
        o.sample(
            "memkind_live_bytes",
            &[("pid", pid), ("kind", kind), ("arena", arena)],
            r.c.live_bytes(),
        );
    }
    o.family("memkind_allocs_by_size", "counter", "Allocations and reallocs by requested size (size_max: largest size of the bucket in bytes).");
    for ((pid, kind), (c, ..)) in &f.kinds {
        for i in 0..SIZE_BUCKETS {
            let max = bucket_upper_bound(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            o.sample(
                "memkind_allocs_by_size_total",
                &[("pid", pid), ("kind", kind), ("size_max", &max)],
                c.size_buckets[i],
            );
        }
    }
    o.family(
        "memkind_extents",
        "gauge",
        "Extents the kind has mapped now.",
    );
    for ((pid, kind), (_, n, ..)) in &f.kinds {
        o.sample("memkind_extents", &[("pid", pid), ("kind", kind)], n);
    }
    o.family(
        "memkind_mapped_bytes",
        "gauge",
        "Bytes the kind has mapped now.",
    );
    for ((pid, kind), (_, _, b, _)) in &f.kinds {
        o.sample("memkind_mapped_bytes", &[("pid", pid), ("kind", kind)], b);
    }
    o.family(
        "memkind_bytes_purged",
        "counter",
        "Bytes of the kind's extents purged (pages given back, mapping kept).",
    );
    for ((pid, kind), (.., p)) in &f.kinds {
        o.sample(
            "memkind_bytes_purged_total",
            &[("pid", pid), ("kind", kind)],
            p,
        );
    }
    o.family(
        "memkind_other_page_faults",
        "counter",
        "User page faults outside kind memory.",
    );
    for (pid, v) in &f.other {
        o.sample("memkind_other_page_faults_total", &[("pid", pid)], v);
    }
    o.family(
        "memkind_process_page_faults",
        "counter",
        "Process-wide user page faults (total from the BPF fault program, major from perf).",
    );
    for (pid, v) in &f.minor {
        o.sample(
            "memkind_process_page_faults_total",
            &[("pid", pid), ("type", "minor")],
            v,
        );
        o.sample(
            "memkind_process_page_faults_total",
            &[("pid", pid), ("type", "major")],
            f.major[pid],
        );
    }
    placement(&mut o, &f);
    o.family(
        "memkind_lost_events",
        "counter",
        "Records the probe lost (ring buffer or map full).",
    );
    o.sample("memkind_lost_events_total", &[], s.lost_events);
    o.s.push_str("# EOF\n");
    o.s
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::model::ArenaRow;
    use crate::view::fixture::sample;

    /// A parser-level check of the exposition: metadata before samples, every sample in a
    /// declared family with the suffix its type allows, no family declared twice, no label set
    /// repeated, values numeric, `# EOF` last. Returns sample name{labels} → value.
    fn parse(text: &str) -> BTreeMap<String, f64> {
        assert!(text.ends_with("# EOF\n"), "ends with # EOF");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.iter().filter(|l| **l == "# EOF").count(), 1);
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut current: Option<String> = None;
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut samples = BTreeMap::new();
        for l in &lines[..lines.len() - 1] {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge"].contains(&ty), "{l}");
                if let Some(c) = current.replace(name.to_string()) {
                    done.insert(c);
                }
                assert!(
                    !done.contains(name) && types.insert(name.into(), ty.into()).is_none(),
                    "family {name} declared twice"
                );
            } else if let Some(rest) = l.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert_eq!(Some(name), current.as_deref(), "HELP of the current family");
                assert!(!help.is_empty());
            } else {
                assert!(!l.starts_with('#'), "unknown comment {l}");
                let (series, value) = l.rsplit_once(' ').unwrap();
                let v: f64 = value.parse().unwrap_or_else(|_| panic!("value in {l}"));
                let name = series.split('{').next().unwrap();
                let fam = current.as_deref().expect("sample before any family");
                let ok = match types[fam].as_str() {
                    "counter" => name == format!("{fam}_total"),
                    _ => name == fam,
                };
                assert!(ok, "sample {name} outside its family {fam}");
                if let Some(labels) = series.strip_prefix(name) {
                    if !labels.is_empty() {
                        assert!(labels.starts_with('{') && labels.ends_with('}'), "{l}");
                    }
                }
                assert!(
                    samples.insert(series.to_string(), v).is_none(),
                    "series repeated: {series}"
                );
            }
        }
        samples
    }

    #[test]
    fn exposition_is_well_formed() {
        let text = render(&sample(), &Limits::default());
        let m = parse(&text);
        assert_eq!(
            m["memkind_allocs_total{pid=\"42\",kind=\"MEMKIND_DEFAULT\",arena=\"0\"}"],
            6.0
        );
        assert_eq!(
            m["memkind_allocs_total{pid=\"42\",kind=\"MEMKIND_DEFAULT\",arena=\"1\"}"],
            4.0
        );
        assert_eq!(
            m["memkind_page_faults_total{pid=\"42\",kind=\"MEMKIND_DEFAULT\",arena=\"1\"}"],
            2.0
        );
        assert_eq!(
            m["memkind_live_bytes{pid=\"42\",kind=\"MEMKIND_DEFAULT\",arena=\"0\"}"],
            200.0
        );
        assert_eq!(
            m["memkind_frees_total{pid=\"42\",kind=\"PMEM:/mnt/\\\"x\\\"\",arena=\"none\"}"],
            1.0
        );
        assert_eq!(
            m["memkind_allocs_by_size_total{pid=\"42\",kind=\"MEMKIND_DEFAULT\",size_max=\"16\"}"],
            10.0
        );
        assert_eq!(m["memkind_allocs_by_size_total{pid=\"42\",kind=\"MEMKIND_DEFAULT\",size_max=\"+Inf\"}"], 0.0);
        assert_eq!(
            m["memkind_mapped_bytes{pid=\"42\",kind=\"MEMKIND_DEFAULT\"}"],
            f64::from(2u32 << 20)
        );
        assert_eq!(
            m["memkind_process_page_faults_total{pid=\"42\",type=\"minor\"}"],
            20.0
        );
        assert_eq!(
            m["memkind_process_page_faults_total{pid=\"42\",type=\"major\"}"],
            1.0
        );
        assert_eq!(m["memkind_other_page_faults_total{pid=\"42\"}"], 7.0);
        assert_eq!(m["memkind_lost_events_total"], 0.0);
    }

    #[test]
    fn empty_summary_is_well_formed() {
        let m = parse(&render(&Summary::default(), &Limits::default()));
        assert_eq!(m.len(), 1, "only lost events: {m:?}");
    }

    #[test]
    fn cardinality_is_bounded() {
        let mut s = sample();
        let k = &mut s.processes[0].kinds[0];
        k.arenas = (0..20)
            .map(|i| ArenaRow {
                arena: Some(i),
                counters: Counters {
                    allocs: u64::from(i) + 1,
                    ..Default::default()
                },
                page_faults: 1,
            })
            .collect();
        let mut p2 = s.processes[0].clone();
        p2.pid = 43;
        s.processes.push(p2);
        let lim = Limits {
            max_arenas: 4,
            max_processes: 1,
        };
        let m = parse(&render(&s, &lim));
        let allocs: Vec<_> = m
            .iter()
            .filter(|(k, _)| {
                k.starts_with("memkind_allocs_total{") && k.contains("MEMKIND_DEFAULT")
            })
            .collect();
        // One process of its own and "other", each 4 arenas + "other".
        assert_eq!(allocs.len(), 10, "{allocs:?}");
        // Arenas 19..16 (most allocations) keep their labels; the 16 others are summed.
        assert_eq!(
            m["memkind_allocs_total{pid=\"42\",kind=\"MEMKIND_DEFAULT\",arena=\"19\"}"],
            20.0
        );
        assert_eq!(
            m["memkind_allocs_total{pid=\"42\",kind=\"MEMKIND_DEFAULT\",arena=\"other\"}"],
            (1..=16).sum::<u32>() as f64
        );
        assert_eq!(
            m["memkind_page_faults_total{pid=\"other\",kind=\"MEMKIND_DEFAULT\",arena=\"other\"}"],
            16.0
        );
        let total: f64 = allocs.iter().map(|(_, v)| **v).sum();
        assert_eq!(
            total,
            2.0 * (1..=20).sum::<u32>() as f64,
            "folding loses nothing"
        );
    }

    #[test]
    fn placement_families() {
        use crate::model::{KindTable, Placement, Sample};
        let mut s = sample();
        let smp = Sample {
            tgid: 42,
            kind: 0,
            arena: 0,
            page_size: 4096,
            mbind_mode: 2,
            nodemask: [0b10, 0, 0, 0],
            pages_total: 10,
            pages_queried: 10,
            present: [((Some(1), false), 6), ((Some(0), true), 4)]
                .into_iter()
                .collect(),
        };
        s.add_placement(&Placement::from_samples(&[smp], 0), &KindTable::new());
        let m = parse(&render(&s, &Limits::default()));
        let k = "pid=\"42\",kind=\"MEMKIND_DEFAULT\"";
        assert_eq!(
            m[&format!("memkind_resident_bytes{{{k},node=\"1\"}}")],
            6.0 * 4096.0
        );
        assert_eq!(
            m[&format!("memkind_resident_bytes{{{k},node=\"0\"}}")],
            4.0 * 4096.0
        );
        assert_eq!(m[&format!("memkind_misplaced_bytes{{{k}}}")], 4.0 * 4096.0);
        assert_eq!(m[&format!("memkind_huge_bytes{{{k}}}")], 4.0 * 4096.0);
        assert_eq!(m[&format!("memkind_base_bytes{{{k}}}")], 6.0 * 4096.0);
        assert_eq!(m[&format!("memkind_placement_error_bytes{{{k}}}")], 0.0);
        assert!(!m
            .keys()
            .any(|k| k.contains("PMEM") && k.starts_with("memkind_resident")));
        assert!(!render(&sample(), &Limits::default()).contains("memkind_resident_bytes"));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
