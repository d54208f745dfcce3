//! Cumulative counters at one moment, and the difference of two moments.

use std::collections::BTreeMap;

/// Number of request size buckets (`MKP_SIZE_BUCKETS`).
pub const SIZE_BUCKETS: usize = 16;

/// The counts of `struct mkp_counters`, summed over threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Successful malloc, calloc, posix_memalign, realloc(NULL, n).
    pub allocs: u64,
    /// free of a non-NULL pointer, realloc(p, 0).
    pub frees: u64,
    /// Successful realloc of a live block to n > 0.
    pub reallocs: u64,
    /// Sizes asked for by allocs and reallocs.
    pub bytes_requested: u64,
    /// Usable size of the blocks handed out.
    pub bytes_allocated: u64,
    /// Usable size of the blocks given back.
    pub bytes_freed: u64,
    /// Allocs and reallocs by requested size.
    pub size_buckets: [u64; SIZE_BUCKETS],
}

impl Counters {
    /// `self += other`.
    pub fn add(&mut self, o: &Counters) {
        self.allocs = self.allocs.wrapping_add(o.allocs);
        self.frees = self.frees.wrapping_add(o.frees);
        self.reallocs = self.reallocs.wrapping_add(o.reallocs);
        self.bytes_requested = self.bytes_requested.wrapping_add(o.bytes_requested);
        self.bytes_allocated = self.bytes_allocated.wrapping_add(o.bytes_allocated);
        self.bytes_freed = self.bytes_freed.wrapping_add(o.bytes_freed);
        for (a, b) in self.size_buckets.iter_mut().zip(o.size_buckets.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// `self - earlier`, each field saturating at 0 (a counter never goes down; a reset, e.g. a
    /// process that reused a pid, must not show as 2^64).
    pub fn since(&self, e: &Counters) -> Counters {
        let mut b = [0; SIZE_BUCKETS];
        for (i, v) in b.iter_mut().enumerate() {
            *v = self.size_buckets[i].saturating_sub(e.size_buckets[i]);
        }
        Counters {
            allocs: self.allocs.saturating_sub(e.allocs),
            frees: self.frees.saturating_sub(e.frees),
            reallocs: self.reallocs.saturating_sub(e.reallocs),
            bytes_requested: self.bytes_requested.saturating_sub(e.bytes_requested),
            bytes_allocated: self.bytes_allocated.saturating_sub(e.bytes_allocated),
            bytes_freed: self.bytes_freed.saturating_sub(e.bytes_freed),
            size_buckets: b,
        }
    }

    /// Bytes allocated and not given back (bytes_allocated − bytes_freed; can be negative within a
    /// window when the window frees blocks allocated before it).
    pub fn live_bytes(&self) -> i128 {
        i128::from(self.bytes_allocated) - i128::from(self.bytes_freed)
    }

    /// True when every count is zero.
    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }
}

/// One row of the probe's maps: a process, a kind, an arena (`NONE` when the thread used none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Process (thread group) id.
    pub tgid: u32,
    /// Kind id.
    pub kind: u32,
    /// jemalloc arena index, or `NONE`.
    pub arena: u32,
}

/// Process-wide user page faults, minor and major.
///
/// On memkind-rs's library (see [`Snapshot::set_process_faults`]): the total is the BPF
/// `page_fault_user` program's own count (the kinds' faults + `other`), `major` the
/// `PERF_COUNT_SW_PAGE_FAULTS_MAJ` software counter, `minor` the rest. On memkind 1.14 (no fault
/// program) both come from the `PAGE_FAULTS_MIN` / `_MAJ` software counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessFaults {
    /// User faults that were not major.
    pub minor: u64,
    /// `PERF_COUNT_SW_PAGE_FAULTS_MAJ`: faults that waited for I/O (or were retried).
    pub major: u64,
}

impl ProcessFaults {
    /// minor + major.
    pub fn total(&self) -> u64 {
        self.minor + self.major
    }
}

/// Cumulative figures at one moment since the probe attached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// When, in ns since the start of the session (monotonic).
    pub ts_ns: u64,
    /// Counters per process × kind × arena.
    pub counters: BTreeMap<Key, Counters>,
    /// Page faults in kind memory per process × kind × arena.
    pub faults: BTreeMap<Key, u64>,
    /// Page faults outside kind memory, per process.
    pub other_faults: BTreeMap<u32, u64>,
    /// Process-wide page faults (perf), per process.
    pub process_faults: BTreeMap<u32, ProcessFaults>,
    /// Records the BPF side could not hand over (ring buffer full, map full).
    pub lost_events: u64,
}

impl Snapshot {
    /// What happened between `earlier` and `self`: every figure `self − earlier` (saturating).
    /// Keys present only in `earlier` are gone from the result.
    pub fn delta(&self, earlier: &Snapshot) -> Snapshot {
        let counters = self
            .counters
            .iter()
            .map(|(k, c)| (*k, earlier.counters.get(k).map_or(*c, |e| c.since(e))))
            .collect();
        let sub = |m: &BTreeMap<Key, u64>, e: &BTreeMap<Key, u64>| -> BTreeMap<Key, u64> {
            m.iter()
                .map(|(k, v)| (*k, v.saturating_sub(e.get(k).copied().unwrap_or(0))))
                .collect()
        };
        Snapshot {
            ts_ns: self.ts_ns.saturating_sub(earlier.ts_ns),
            counters,
            faults: sub(&self.faults, &earlier.faults),
            other_faults: self
                .other_faults
                .iter()
                .map(|(p, v)| {
                    (
                        *p,
                        v.saturating_sub(earlier.other_faults.get(p).copied().unwrap_or(0)),
                    )
                })
                .collect(),
            process_faults: self
                .process_faults
                .iter()
                .map(|(p, f)| {
                    let e = earlier.process_faults.get(p).copied().unwrap_or_default();
                    (
                        *p,
                        ProcessFaults {
                            minor: f.minor.saturating_sub(e.minor),
                            major: f.major.saturating_sub(e.major),
                        },
                    )
                })
                .collect(),
            lost_events: self.lost_events.saturating_sub(earlier.lost_events),
        }
    }

    /// Process-wide faults from the BPF program's own counts and the perf major-fault counters:
    /// for every process the snapshot mentions, total = its kinds' faults + its `other` faults
    /// (the `page_fault_user` program counts each user-mode fault of a traced process once, in
    /// a kind or in `other`), `major` = `majors[pid]` (0 without a counter), `minor` = total −
    /// major (saturating: the two are read at slightly different moments, and in `-- CMD` mode
    /// the command's inherited counter also counts its child processes' major faults).
    pub fn set_process_faults(&mut self, majors: &BTreeMap<u32, u64>) {
        let mut total: BTreeMap<u32, u64> = BTreeMap::new();
        for (k, n) in &self.faults {
            *total.entry(k.tgid).or_default() += n;
        }
        for (p, n) in &self.other_faults {
            *total.entry(*p).or_default() += n;
        }
        for p in self.pids().into_iter().chain(majors.keys().copied()) {
            let t = total.get(&p).copied().unwrap_or(0);
            let major = majors.get(&p).copied().unwrap_or(0);
            self.process_faults.insert(
                p,
                ProcessFaults {
                    minor: t.saturating_sub(major),
                    major,
                },
            );
        }
    }

    /// Every process id the snapshot mentions, ascending.
    pub fn pids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .counters
            .keys()
            .chain(self.faults.keys())
            .map(|k| k.tgid)
            .chain(self.other_faults.keys().copied())
            .chain(self.process_faults.keys().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(allocs: u64, frees: u64, ba: u64, bf: u64) -> Counters {
        let mut x = Counters {
            allocs,
            frees,
            bytes_allocated: ba,
            bytes_freed: bf,
            ..Default::default()
        };
        x.size_buckets[1] = allocs;
        x
    }

    const K: Key = Key {
        tgid: 7,
        kind: 0,
        arena: 1,
    };

    #[test]
    fn add_and_since() {
        let mut a = c(1, 2, 3, 4);
        a.add(&c(10, 20, 30, 40));
        assert_eq!(a, c(11, 22, 33, 44));
        assert_eq!(a.since(&c(1, 2, 3, 4)), c(10, 20, 30, 40));
        // A counter that went down (pid reuse) saturates instead of wrapping.
        assert_eq!(c(1, 1, 1, 1).since(&c(5, 5, 5, 5)), Counters::default());
    }

    #[test]
    fn live_bytes_may_be_negative_in_a_window() {
        assert_eq!(c(0, 0, 100, 40).live_bytes(), 60);
        assert_eq!(c(0, 0, 0, 40).live_bytes(), -40);
    }

    #[test]
    fn delta_of_snapshots() {
        let mut a = Snapshot {
            ts_ns: 1_000,
            lost_events: 2,
            ..Default::default()
        };
        a.counters.insert(K, c(5, 1, 500, 100));
        a.faults.insert(K, 3);
        a.other_faults.insert(7, 10);
        a.process_faults.insert(
            7,
            ProcessFaults {
                minor: 100,
                major: 1,
            },
        );
        let mut b = a.clone();
        b.ts_ns = 3_000;
        b.lost_events = 5;
        b.counters.insert(K, c(8, 4, 800, 400));
        let k2 = Key {
            tgid: 7,
            kind: 11,
            arena: 2,
        };
        b.counters.insert(k2, c(1, 0, 64, 0));
        b.faults.insert(K, 4);
        b.other_faults.insert(7, 15);
        b.process_faults.insert(
            7,
            ProcessFaults {
                minor: 130,
                major: 2,
            },
        );

        let d = b.delta(&a);
        assert_eq!(d.ts_ns, 2_000);
        assert_eq!(d.lost_events, 3);
        assert_eq!(d.counters[&K], c(3, 3, 300, 300));
        assert_eq!(
            d.counters[&k2],
            c(1, 0, 64, 0),
            "a key new in the later snapshot is kept whole"
        );
        assert_eq!(d.faults[&K], 1);
        assert_eq!(d.other_faults[&7], 5);
        assert_eq!(
            d.process_faults[&7],
            ProcessFaults {
                minor: 30,
                major: 1
            }
        );
        assert_eq!(d.process_faults[&7].total(), 31);
        // Delta against an empty snapshot is the snapshot itself.
        let z = b.delta(&Snapshot::default());
        assert_eq!(z.counters, b.counters);
        assert_eq!(b.pids(), vec![7]);
    }

    #[test]
    fn process_faults_from_the_bpf_counts() {
        let mut s = Snapshot::default();
        s.faults.insert(K, 30);
        s.faults.insert(
            Key {
                tgid: 7,
                kind: 11,
                arena: 2,
            },
            5,
        );
        s.other_faults.insert(7, 65);
        s.other_faults.insert(9, 4);
        s.counters.insert(
            Key {
                tgid: 12,
                kind: 0,
                arena: 0,
            },
            c(1, 1, 8, 8),
        );
        s.set_process_faults(&BTreeMap::from([(7, 2), (9, 6), (20, 1)]));
        let pf = |minor, major| ProcessFaults { minor, major };
        // 30 + 5 in kinds, 65 elsewhere: 100 in all, 2 of them major.
        assert_eq!(s.process_faults[&7], pf(98, 2));
        assert_eq!(s.process_faults[&7].total(), 100);
        // More majors than faults seen (read later, or a child's): minor saturates at 0.
        assert_eq!(s.process_faults[&9], pf(0, 6));
        // A process that counted but never faulted, and one with only a perf counter.
        assert_eq!(s.process_faults[&12], pf(0, 0));
        assert_eq!(s.process_faults[&20], pf(0, 1));
    }
}
