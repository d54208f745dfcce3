//! The mappings each kind holds, replayed from extent events.

use std::collections::BTreeMap;

/// `enum mkp_extent_op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentOp {
    /// Mapped `[addr, addr+size)` for the kind.
    Alloc,
    /// jemalloc gave `[addr, addr+size)` back for good.
    Destroy,
    /// Pages of `[addr, addr+size)` given back, mapping kept.
    Purge,
    /// The extent at `addr` split at `addr2` (second part `size2` bytes).
    Split,
    /// `[addr, addr+size)` and `[addr2, addr2+size2)` merged.
    Merge,
    /// The mapping `[addr, addr+size)` is gone.
    Unmap,
    /// `[addr, addr+size)` exists (re-announced after a probe request).
    Announce,
}

/// An extent event (`struct mkp_extent`), decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtentEvent {
    /// What happened.
    pub op: ExtentOp,
    /// Start.
    pub addr: u64,
    /// Length.
    pub size: u64,
    /// SPLIT / MERGE: the second part.
    pub addr2: u64,
    /// SPLIT / MERGE: the second part's length.
    pub size2: u64,
    /// Kind id.
    pub kind: u32,
    /// Arena, or `NONE`.
    pub arena: u32,
    /// MPOL_* asked for, -1 when none.
    pub mbind_mode: i32,
    /// `enum mkp_backing`.
    pub backing: u32,
    /// Page size of the mapping.
    pub page_size: u64,
    /// Nodes asked for.
    pub nodemask: [u64; 4],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    size: u64,
    kind: u32,
    arena: u32,
    mbind_mode: i32,
    backing: u32,
    page_size: u64,
    nodemask: [u64; 4],
}

/// One live extent, as [`Extents::ranges`] lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// Start.
    pub addr: u64,
    /// Length.
    pub size: u64,
    /// Kind id.
    pub kind: u32,
    /// Arena, or `NONE`.
    pub arena: u32,
    /// MPOL_* asked for, -1 when none.
    pub mbind_mode: i32,
    /// `enum mkp_backing`.
    pub backing: u32,
    /// Page size of the mapping.
    pub page_size: u64,
    /// Nodes asked for.
    pub nodemask: [u64; 4],
}

/// Per process × kind: what the kind has mapped now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtentTotals {
    /// Extents mapped now.
    pub count: u64,
    /// Bytes mapped now.
    pub bytes_mapped: u64,
    /// Bytes purged so far (cumulative).
    pub bytes_purged: u64,
}

/// Live extents per process, by start address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extents {
    live: BTreeMap<(u32, u64), Extent>,
    purged: BTreeMap<(u32, u32), u64>,
}

impl Extents {
    /// No extents.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replay one event of process `tgid`.
    pub fn apply(&mut self, tgid: u32, ev: &ExtentEvent) {
        let ext = Extent {
            size: ev.size,
            kind: ev.kind,
            arena: ev.arena,
            mbind_mode: ev.mbind_mode,
            backing: ev.backing,
            page_size: ev.page_size,
            nodemask: ev.nodemask,
        };
        match ev.op {
            ExtentOp::Alloc | ExtentOp::Announce => {
                self.remove_range(tgid, ev.addr, ev.size);
                self.live.insert((tgid, ev.addr), ext);
            }
            ExtentOp::Destroy | ExtentOp::Unmap => self.remove_range(tgid, ev.addr, ev.size),
            ExtentOp::Purge => *self.purged.entry((tgid, ev.kind)).or_default() += ev.size,
            ExtentOp::Split => {
                if let Some(e) = self.live.get(&(tgid, ev.addr)).copied() {
                    if ev.addr2 > ev.addr && ev.addr2 - ev.addr < e.size {
                        self.live.insert(
                            (tgid, ev.addr),
                            Extent {
                                size: ev.addr2 - ev.addr,
                                ..e
                            },
                        );
                        self.live.insert(
                            (tgid, ev.addr2),
                            Extent {
                                size: ev.size2,
                                ..e
                            },
                        );
                    }
                }
            }
            ExtentOp::Merge => {
                let second = self.live.remove(&(tgid, ev.addr2));
                let first = self.live.entry((tgid, ev.addr)).or_insert(ext);
                first.size = ev.size + second.map_or(ev.size2, |s| s.size);
            }
        }
    }

    /// Remove `[addr, addr+size)` of `tgid`, trimming extents that overlap it in part.
    fn remove_range(&mut self, tgid: u32, addr: u64, size: u64) {
        let end = addr.saturating_add(size);
        let overlapping: Vec<(u64, Extent)> = self
            .live
            .range((tgid, 0)..(tgid, end))
            .filter(|((_, a), e)| a.saturating_add(e.size) > addr)
            .map(|((_, a), e)| (*a, *e))
            .collect();
        for (a, e) in overlapping {
            self.live.remove(&(tgid, a));
            if a < addr {
                self.live.insert(
                    (tgid, a),
                    Extent {
                        size: addr - a,
                        ..e
                    },
                );
            }
            let e_end = a + e.size;
            if e_end > end {
                self.live.insert(
                    (tgid, end),
                    Extent {
                        size: e_end - end,
                        ..e
                    },
                );
            }
        }
    }

    /// The kind and arena owning `addr` in `tgid`, if an extent covers it.
    pub fn owner(&self, tgid: u32, addr: u64) -> Option<(u32, u32)> {
        let ((t, a), e) = self.live.range(..=(tgid, addr)).next_back()?;
        (*t == tgid && addr < a + e.size).then_some((e.kind, e.arena))
    }

    /// Totals per (tgid, kind).
    pub fn totals(&self) -> BTreeMap<(u32, u32), ExtentTotals> {
        let mut m: BTreeMap<(u32, u32), ExtentTotals> = BTreeMap::new();
        for ((t, _), e) in &self.live {
            let x = m.entry((*t, e.kind)).or_default();
            x.count += 1;
            x.bytes_mapped += e.size;
        }
        for (k, p) in &self.purged {
            m.entry(*k).or_default().bytes_purged = *p;
        }
        m
    }

    /// The live extents of `tgid`, ascending by address.
    pub fn ranges(&self, tgid: u32) -> impl Iterator<Item = Range> + '_ {
        self.live
            .range((tgid, 0)..=(tgid, u64::MAX))
            .map(|((_, addr), e)| Range {
                addr: *addr,
                size: e.size,
                kind: e.kind,
                arena: e.arena,
                mbind_mode: e.mbind_mode,
                backing: e.backing,
                page_size: e.page_size,
                nodemask: e.nodemask,
            })
    }

    /// The processes with live extents, ascending.
    pub fn pids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.live.keys().map(|(t, _)| *t).collect();
        v.dedup();
        v
    }

    /// Forget process `tgid`.
    pub fn forget(&mut self, tgid: u32) {
        self.live.retain(|(t, _), _| *t != tgid);
        self.purged.retain(|(t, _), _| *t != tgid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB2: u64 = 2 << 20;

    fn ev(op: ExtentOp, addr: u64, size: u64, kind: u32) -> ExtentEvent {
        ExtentEvent {
            op,
            addr,
            size,
            addr2: 0,
            size2: 0,
            kind,
            arena: 3,
            mbind_mode: -1,
            backing: 0,
            page_size: 4096,
            nodemask: [0; 4],
        }
    }

    fn t(x: &Extents, tgid: u32, kind: u32) -> ExtentTotals {
        x.totals().get(&(tgid, kind)).copied().unwrap_or_default()
    }

    #[test]
    fn alloc_destroy_purge() {
        let mut x = Extents::new();
        x.apply(1, &ev(ExtentOp::Alloc, 10 * MB2, MB2, 0));
        x.apply(1, &ev(ExtentOp::Alloc, 20 * MB2, 2 * MB2, 0));
        x.apply(1, &ev(ExtentOp::Alloc, 40 * MB2, MB2, 11));
        x.apply(2, &ev(ExtentOp::Alloc, 10 * MB2, MB2, 0));
        assert_eq!(
            t(&x, 1, 0),
            ExtentTotals {
                count: 2,
                bytes_mapped: 3 * MB2,
                bytes_purged: 0
            }
        );
        assert_eq!(t(&x, 1, 11).bytes_mapped, MB2);
        assert_eq!(x.owner(1, 21 * MB2 + 5), Some((0, 3)));
        assert_eq!(x.owner(1, 22 * MB2), None);
        assert_eq!(x.owner(3, 10 * MB2), None);

        x.apply(1, &ev(ExtentOp::Purge, 20 * MB2, 4096, 0));
        x.apply(1, &ev(ExtentOp::Destroy, 10 * MB2, MB2, 0));
        // A second announcement of the same extent does not count it twice.
        x.apply(1, &ev(ExtentOp::Announce, 20 * MB2, 2 * MB2, 0));
        assert_eq!(
            t(&x, 1, 0),
            ExtentTotals {
                count: 1,
                bytes_mapped: 2 * MB2,
                bytes_purged: 4096
            }
        );
        // Unmapping the middle of an extent leaves its two ends.
        x.apply(1, &ev(ExtentOp::Unmap, 20 * MB2 + 4096, 8192, 0));
        assert_eq!(t(&x, 1, 0).count, 2);
        assert_eq!(t(&x, 1, 0).bytes_mapped, 2 * MB2 - 8192);
        let r: Vec<Range> = x.ranges(1).collect();
        assert_eq!(r.len(), 3, "two pieces of kind 0, one extent of kind 11");
        assert_eq!((r[2].addr, r[2].kind), (40 * MB2, 11));
        assert_eq!((r[0].addr, r[0].size), (20 * MB2, 4096));
        assert_eq!(
            (r[1].addr, r[1].size, r[1].arena, r[1].page_size),
            (20 * MB2 + 12288, 2 * MB2 - 12288, 3, 4096)
        );
        assert_eq!(x.pids(), vec![1, 2]);
        x.forget(1);
        assert_eq!(t(&x, 1, 0), ExtentTotals::default());
        assert_eq!(t(&x, 2, 0).count, 1);
    }

    #[test]
    fn split_and_merge() {
        let mut x = Extents::new();
        x.apply(1, &ev(ExtentOp::Alloc, 0x1000_0000, 4 * MB2, 5));
        let mut s = ev(ExtentOp::Split, 0x1000_0000, 4 * MB2, 5);
        s.addr2 = 0x1000_0000 + MB2;
        s.size2 = 3 * MB2;
        x.apply(1, &s);
        assert_eq!(
            t(&x, 1, 5),
            ExtentTotals {
                count: 2,
                bytes_mapped: 4 * MB2,
                bytes_purged: 0
            }
        );
        let mut m = ev(ExtentOp::Merge, 0x1000_0000, MB2, 5);
        m.addr2 = 0x1000_0000 + MB2;
        m.size2 = 3 * MB2;
        x.apply(1, &m);
        assert_eq!(
            t(&x, 1, 5),
            ExtentTotals {
                count: 1,
                bytes_mapped: 4 * MB2,
                bytes_purged: 0
            }
        );
        // A split of an extent we never saw (announced later) changes nothing.
        let mut s2 = s;
        s2.addr = 0x9000_0000;
        x.apply(1, &s2);
        assert_eq!(t(&x, 1, 5).count, 1);
    }
}
