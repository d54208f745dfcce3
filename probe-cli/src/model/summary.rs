//! The rows a view draws: per kind (over all processes) and per process × kind × arena.

use std::collections::BTreeMap;

use super::{
    merge_into, Counters, ExtentTotals, Extents, KindPlacement, KindTable, Placement,
    ProcessFaults, Snapshot, NONE,
};

/// One arena of one kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArenaRow {
    /// jemalloc arena index; `None` for counts of threads that used no arena of the kind.
    pub arena: Option<u32>,
    /// Counters.
    pub counters: Counters,
    /// Page faults in the arena's extents.
    pub page_faults: u64,
}

/// One kind (of one process, or summed by name over the processes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindRow {
    /// Display name (`MEMKIND_DEFAULT`, `PMEM:<dir>`, `kind#<id>`).
    pub name: String,
    /// Kind id (the smallest, when processes differ).
    pub id: u32,
    /// Sum over the arenas.
    pub counters: Counters,
    /// Page faults in the kind's memory.
    pub page_faults: u64,
    /// The kind's mappings now.
    pub extents: ExtentTotals,
    /// Per arena, ascending (`None` first).
    pub arenas: Vec<ArenaRow>,
    /// Where its pages are (set by [`Summary::add_placement`]).
    pub placement: Option<KindPlacement>,
}

impl KindRow {
    /// bytes_allocated − bytes_freed.
    pub fn live_bytes(&self) -> i128 {
        self.counters.live_bytes()
    }

    fn add_arena(&mut self, arena: u32, c: &Counters, faults: u64) {
        let arena = (arena != NONE).then_some(arena);
        self.counters.add(c);
        self.page_faults += faults;
        match self.arenas.binary_search_by(|r| r.arena.cmp(&arena)) {
            Ok(i) => {
                self.arenas[i].counters.add(c);
                self.arenas[i].page_faults += faults;
            }
            Err(i) => self.arenas.insert(
                i,
                ArenaRow {
                    arena,
                    counters: *c,
                    page_faults: faults,
                },
            ),
        }
    }

    fn merge(&mut self, o: &KindRow) {
        self.id = self.id.min(o.id);
        self.extents.count += o.extents.count;
        self.extents.bytes_mapped += o.extents.bytes_mapped;
        self.extents.bytes_purged += o.extents.bytes_purged;
        for a in &o.arenas {
            self.add_arena(a.arena.unwrap_or(NONE), &a.counters, a.page_faults);
        }
    }
}

/// One process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessRow {
    /// Process id.
    pub pid: u32,
    /// Its kinds, by id.
    pub kinds: Vec<KindRow>,
    /// Page faults outside kind memory.
    pub other_page_faults: u64,
    /// Process-wide page faults (perf).
    pub process_faults: ProcessFaults,
}

/// Everything a view shows for one snapshot (or one interval).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Length of the measured period in ns.
    pub duration_ns: u64,
    /// The processes, ascending by pid.
    pub processes: Vec<ProcessRow>,
    /// Kinds summed by name over the processes, by id.
    pub kinds: Vec<KindRow>,
    /// Sum of the processes' `other_page_faults`.
    pub other_page_faults: u64,
    /// Sum of the processes' process-wide faults.
    pub process_faults: ProcessFaults,
    /// Records lost on the way.
    pub lost_events: u64,
}

impl Summary {
    /// Rows of `snap` (cumulative, or a delta), kinds named by `kinds`, mappings from `extents`.
    /// A kind shows up when it counted something, faulted, or maps memory.
    pub fn build(snap: &Snapshot, kinds: &KindTable, extents: &Extents) -> Summary {
        let mut procs: BTreeMap<u32, ProcessRow> = BTreeMap::new();
        let mut rows: BTreeMap<(u32, u32), KindRow> = BTreeMap::new();
        fn row<'a>(
            rows: &'a mut BTreeMap<(u32, u32), KindRow>,
            kinds: &KindTable,
            tgid: u32,
            kind: u32,
        ) -> &'a mut KindRow {
            rows.entry((tgid, kind)).or_insert_with(|| KindRow {
                name: kinds.name(tgid, kind),
                id: kind,
                ..Default::default()
            })
        }
        for (k, c) in &snap.counters {
            row(&mut rows, kinds, k.tgid, k.kind).add_arena(k.arena, c, 0);
        }
        for (k, f) in &snap.faults {
            row(&mut rows, kinds, k.tgid, k.kind).add_arena(k.arena, &Counters::default(), *f);
        }
        for ((tgid, kind), t) in extents.totals() {
            if t.count > 0 || t.bytes_purged > 0 {
                row(&mut rows, kinds, tgid, kind).extents = t;
            }
        }
        for pid in snap.pids().into_iter().chain(rows.keys().map(|(t, _)| *t)) {
            procs.entry(pid).or_insert_with(|| ProcessRow {
                pid,
                ..Default::default()
            });
        }
        for ((tgid, _), r) in rows {
            procs.get_mut(&tgid).expect("inserted above").kinds.push(r);
        }
        for (pid, f) in &snap.other_faults {
            procs
                .get_mut(pid)
                .expect("inserted above")
                .other_page_faults = *f;
        }
        for (pid, f) in &snap.process_faults {
            procs.get_mut(pid).expect("inserted above").process_faults = *f;
        }

        let mut by_name: BTreeMap<String, KindRow> = BTreeMap::new();
        let mut s = Summary {
            duration_ns: snap.ts_ns,
            lost_events: snap.lost_events,
            ..Default::default()
        };
        for p in procs.values() {
            s.other_page_faults += p.other_page_faults;
            s.process_faults.minor += p.process_faults.minor;
            s.process_faults.major += p.process_faults.major;
            for k in &p.kinds {
                by_name
                    .entry(k.name.clone())
                    .or_insert_with(|| KindRow {
                        name: k.name.clone(),
                        id: k.id,
                        ..Default::default()
                    })
                    .merge(k);
            }
        }
        s.kinds = by_name.into_values().collect();
        s.kinds
            .sort_by(|a, b| (a.id, &a.name).cmp(&(b.id, &b.name)));
        s.processes = procs.into_values().collect();
        s
    }

    /// Put `p` into the rows: each process's kind gets its placement, and the kinds summed by
    /// name get the sum over the processes. A kind with placement and no row gets a row.
    pub fn add_placement(&mut self, p: &Placement, kinds: &KindTable) {
        for ((tgid, kind), kp) in &p.kinds {
            let Some(proc) = self.processes.iter_mut().find(|r| r.pid == *tgid) else {
                continue;
            };
            match proc.kinds.iter_mut().find(|r| r.id == *kind) {
                Some(r) => r.placement = Some(kp.clone()),
                None => {
                    let row = KindRow {
                        name: kinds.name(*tgid, *kind),
                        id: *kind,
                        placement: Some(kp.clone()),
                        ..Default::default()
                    };
                    let at = proc.kinds.partition_point(|r| r.id < *kind);
                    proc.kinds.insert(at, row);
                    if !self.kinds.iter().any(|r| r.name == proc.kinds[at].name) {
                        let mut sum = proc.kinds[at].clone();
                        sum.placement = None;
                        let at = self
                            .kinds
                            .partition_point(|r| (r.id, &r.name) < (sum.id, &sum.name));
                        self.kinds.insert(at, sum);
                    }
                }
            }
        }
        for k in &mut self.kinds {
            k.placement = None;
            for proc in &self.processes {
                for r in proc.kinds.iter().filter(|r| r.name == k.name) {
                    if let Some(kp) = &r.placement {
                        merge_into(&mut k.placement, kp);
                    }
                }
            }
        }
    }

    /// The process ids, ascending.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(|p| p.pid).collect()
    }

    /// Page faults in kind memory (all kinds, all processes).
    pub fn kind_page_faults(&self) -> u64 {
        self.kinds.iter().map(|k| k.page_faults).sum()
    }

    /// The kind row named `name`, if any.
    pub fn kind(&self, name: &str) -> Option<&KindRow> {
        self.kinds.iter().find(|k| k.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExtentEvent, ExtentOp, Key, KindEvent, KindOp};

    fn c(allocs: u64, frees: u64, ba: u64, bf: u64) -> Counters {
        Counters {
            allocs,
            frees,
            bytes_allocated: ba,
            bytes_freed: bf,
            ..Default::default()
        }
    }

    fn key(tgid: u32, kind: u32, arena: u32) -> Key {
        Key { tgid, kind, arena }
    }

    #[test]
    fn rows_per_process_kind_arena_and_by_name() {
        let mut snap = Snapshot {
            ts_ns: 5_000_000_000,
            lost_events: 1,
            ..Default::default()
        };
        snap.counters.insert(key(10, 0, 0), c(3, 1, 300, 100));
        snap.counters.insert(key(10, 0, 1), c(2, 2, 200, 200));
        snap.counters.insert(key(10, 11, NONE), c(1, 0, 64, 0));
        snap.counters.insert(key(20, 0, 0), c(10, 0, 1000, 0));
        snap.counters.insert(key(20, 30, 7), c(4, 4, 4096, 4096));
        snap.faults.insert(key(10, 0, 1), 5);
        snap.faults.insert(key(20, 30, 7), 2);
        snap.other_faults.insert(10, 50);
        snap.other_faults.insert(20, 60);
        snap.process_faults.insert(
            10,
            ProcessFaults {
                minor: 100,
                major: 1,
            },
        );
        snap.process_faults.insert(
            20,
            ProcessFaults {
                minor: 200,
                major: 0,
            },
        );

        let mut kinds = KindTable::new();
        kinds.apply(
            20,
            &KindEvent {
                op: KindOp::Create,
                kind: 30,
                backing: 2,
                mbind_mode: -1,
                nodemask: [0; 4],
                name: "PMEM:/mnt/pmem".into(),
                dir: "/mnt/pmem".into(),
            },
        );
        let mut ext = Extents::new();
        ext.apply(
            20,
            &ExtentEvent {
                op: ExtentOp::Alloc,
                addr: 1 << 30,
                size: 2 << 20,
                addr2: 0,
                size2: 0,
                kind: 30,
                arena: 7,
                mbind_mode: -1,
                backing: 2,
                page_size: 4096,
                nodemask: [0; 4],
            },
        );
        // A kind that only maps memory (counted nothing yet) still shows.
        ext.apply(
            10,
            &ExtentEvent {
                op: ExtentOp::Alloc,
                addr: 1 << 31,
                size: 2 << 20,
                addr2: 0,
                size2: 0,
                kind: 1,
                arena: 9,
                mbind_mode: 1,
                backing: 0,
                page_size: 4096,
                nodemask: [2, 0, 0, 0],
            },
        );

        let s = Summary::build(&snap, &kinds, &ext);
        assert_eq!(s.pids(), vec![10, 20]);
        assert_eq!(s.duration_ns, 5_000_000_000);
        assert_eq!(s.lost_events, 1);
        assert_eq!(s.other_page_faults, 110);
        assert_eq!(
            s.process_faults,
            ProcessFaults {
                minor: 300,
                major: 1
            }
        );
        assert_eq!(s.kind_page_faults(), 7);

        let names: Vec<&str> = s.kinds.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "MEMKIND_DEFAULT",
                "MEMKIND_HBW",
                "MEMKIND_REGULAR",
                "PMEM:/mnt/pmem"
            ]
        );
        let d = s.kind("MEMKIND_DEFAULT").unwrap();
        assert_eq!(d.counters, c(15, 3, 1500, 300));
        assert_eq!(d.live_bytes(), 1200);
        assert_eq!(d.page_faults, 5);
        assert_eq!(d.arenas.len(), 2, "arena 0 of both processes summed");
        assert_eq!(d.arenas[0].counters, c(13, 1, 1300, 100));
        assert_eq!(d.arenas[1].page_faults, 5);
        let r = s.kind("MEMKIND_REGULAR").unwrap();
        assert_eq!(r.arenas[0].arena, None);
        let p = s.kind("PMEM:/mnt/pmem").unwrap();
        assert_eq!(p.extents.bytes_mapped, 2 << 20);
        assert_eq!(p.live_bytes(), 0);
        assert_eq!(s.kind("MEMKIND_HBW").unwrap().extents.count, 1);

        let p10 = &s.processes[0];
        assert_eq!(p10.pid, 10);
        assert_eq!(p10.kinds.len(), 3);
        assert_eq!(p10.other_page_faults, 50);
        assert_eq!(p10.kinds[0].arenas.len(), 2);
        assert_eq!(s.processes[1].kinds[1].name, "PMEM:/mnt/pmem");
    }

    #[test]
    fn placement_goes_into_process_and_name_rows() {
        use crate::model::Sample;
        let mut snap = Snapshot::default();
        snap.counters.insert(key(10, 0, 0), c(1, 0, 64, 0));
        snap.counters.insert(key(20, 0, 0), c(1, 0, 64, 0));
        let mut s = Summary::build(&snap, &KindTable::new(), &Extents::new());
        let smp = |tgid, kind, node, n| Sample {
            tgid,
            kind,
            arena: 0,
            page_size: 4096,
            mbind_mode: -1,
            nodemask: [0; 4],
            pages_total: n,
            pages_queried: n,
            present: [((Some(node), false), n)].into_iter().collect(),
        };
        let p =
            Placement::from_samples(&[smp(10, 0, 0, 3), smp(20, 0, 1, 5), smp(20, 11, 0, 2)], 0);
        s.add_placement(&p, &KindTable::new());
        let d = s
            .kind("MEMKIND_DEFAULT")
            .unwrap()
            .placement
            .as_ref()
            .unwrap();
        assert_eq!(d.total.node_bytes(0), 3 * 4096);
        assert_eq!(d.total.node_bytes(1), 5 * 4096);
        assert_eq!(
            s.processes[0].kinds[0]
                .placement
                .as_ref()
                .unwrap()
                .total
                .resident
                .bytes,
            3 * 4096
        );
        // A kind seen only by placement gets rows.
        let r = s.kind("MEMKIND_REGULAR").unwrap();
        assert_eq!(r.placement.as_ref().unwrap().total.node_bytes(0), 2 * 4096);
        assert_eq!(s.processes[1].kinds[1].name, "MEMKIND_REGULAR");
        let names: Vec<&str> = s.kinds.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["MEMKIND_DEFAULT", "MEMKIND_REGULAR"]);
        // Adding again (a later refresh) replaces, not adds.
        s.add_placement(&p, &KindTable::new());
        let d = s
            .kind("MEMKIND_DEFAULT")
            .unwrap()
            .placement
            .as_ref()
            .unwrap();
        assert_eq!(d.total.node_bytes(1), 5 * 4096);
    }

    #[test]
    fn empty() {
        let s = Summary::build(&Snapshot::default(), &KindTable::new(), &Extents::new());
        assert!(s.kinds.is_empty() && s.processes.is_empty());
        assert_eq!(s.kind_page_faults(), 0);
    }
}
