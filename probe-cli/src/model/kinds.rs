//! Kind id → name, from the library's kind events.

use std::collections::BTreeMap;

/// The static kinds by id (their memkind partition, memkind_deprecated.h), named as in memkind.h.
pub const STATIC_KINDS: [&str; 26] = [
    "MEMKIND_DEFAULT",
    "MEMKIND_HBW",
    "MEMKIND_HBW_HUGETLB",
    "MEMKIND_HBW_PREFERRED",
    "MEMKIND_HBW_PREFERRED_HUGETLB",
    "MEMKIND_HUGETLB",
    "MEMKIND_HBW_GBTLB",
    "MEMKIND_HBW_PREFERRED_GBTLB",
    "MEMKIND_GBTLB",
    "MEMKIND_HBW_INTERLEAVE",
    "MEMKIND_INTERLEAVE",
    "MEMKIND_REGULAR",
    "MEMKIND_HBW_ALL",
    "MEMKIND_HBW_ALL_HUGETLB",
    "MEMKIND_DAX_KMEM",
    "MEMKIND_DAX_KMEM_ALL",
    "MEMKIND_DAX_KMEM_PREFERRED",
    "MEMKIND_DAX_KMEM_INTERLEAVE",
    "MEMKIND_HIGHEST_CAPACITY",
    "MEMKIND_HIGHEST_CAPACITY_PREFERRED",
    "MEMKIND_HIGHEST_CAPACITY_LOCAL",
    "MEMKIND_HIGHEST_CAPACITY_LOCAL_PREFERRED",
    "MEMKIND_LOWEST_LATENCY_LOCAL",
    "MEMKIND_LOWEST_LATENCY_LOCAL_PREFERRED",
    "MEMKIND_HIGHEST_BANDWIDTH_LOCAL",
    "MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED",
];

/// `enum mkp_kind_op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindOp {
    /// `MKP_KIND_CREATE`.
    Create,
    /// `MKP_KIND_DESTROY`.
    Destroy,
    /// `MKP_KIND_ANNOUNCE`: exists (static kind, or re-announced after a probe request).
    Announce,
}

/// `enum mkp_backing` value for a PMEM kind's file.
pub const BACKING_FILE: u32 = 2;

/// A kind event (`struct mkp_kind`), decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindEvent {
    /// What happened.
    pub op: KindOp,
    /// Kind id.
    pub kind: u32,
    /// `enum mkp_backing`.
    pub backing: u32,
    /// MPOL_* asked for, -1 when none.
    pub mbind_mode: i32,
    /// Nodes asked for.
    pub nodemask: [u64; 4],
    /// The library's name ("MEMKIND_DEFAULT", "PMEM:<dir>" truncated, "FIXED:0x…").
    pub name: String,
    /// PMEM directory, else empty.
    pub dir: String,
}

/// What is known of one kind of one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// Kind id.
    pub id: u32,
    /// Display name (see [`KindTable::name`]).
    pub name: String,
    /// `enum mkp_backing`.
    pub backing: u32,
    /// MPOL_* asked for, -1 when none.
    pub mbind_mode: i32,
    /// Nodes asked for.
    pub nodemask: [u64; 4],
    /// Destroyed since (its counts stay).
    pub destroyed: bool,
}

/// Kind names per process (a dynamic kind's id means different kinds in different processes).
///
/// An id reused after a destroy takes the new kind's name; counts keyed by the id then add up
/// under the newest name (the library reuses ids only after a destroy).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindTable {
    kinds: BTreeMap<(u32, u32), KindInfo>,
}

impl KindTable {
    /// An empty table (static kinds are named without events).
    pub fn new() -> Self {
        Self::default()
    }

    /// Learn from one kind event of process `tgid`.
    pub fn apply(&mut self, tgid: u32, ev: &KindEvent) {
        match ev.op {
            KindOp::Destroy => {
                if let Some(k) = self.kinds.get_mut(&(tgid, ev.kind)) {
                    k.destroyed = true;
                } else {
                    let mut info = Self::info_of(ev);
                    info.destroyed = true;
                    self.kinds.insert((tgid, ev.kind), info);
                }
            }
            KindOp::Create | KindOp::Announce => {
                self.kinds.insert((tgid, ev.kind), Self::info_of(ev));
            }
        }
    }

    fn info_of(ev: &KindEvent) -> KindInfo {
        let name = if ev.backing == BACKING_FILE && !ev.dir.is_empty() {
            // The event's name is truncated to 63 bytes; the directory field is longer.
            format!("PMEM:{}", ev.dir)
        } else if !ev.name.is_empty() {
            ev.name.clone()
        } else {
            static_or_numbered(ev.kind)
        };
        KindInfo {
            id: ev.kind,
            name,
            backing: ev.backing,
            mbind_mode: ev.mbind_mode,
            nodemask: ev.nodemask,
            destroyed: false,
        }
    }

    /// The name of kind `id` in process `tgid`: from its events, else the static kind's name,
    /// else `kind#<id>`.
    pub fn name(&self, tgid: u32, id: u32) -> String {
        match self.kinds.get(&(tgid, id)) {
            Some(k) => k.name.clone(),
            None => static_or_numbered(id),
        }
    }

    /// [`KindTable::name`] without a copy (allocates only for a `kind#<id>` name).
    pub fn name_str(&self, tgid: u32, id: u32) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self.kinds.get(&(tgid, id)) {
            Some(k) => Cow::Borrowed(k.name.as_str()),
            None => match STATIC_KINDS.get(id as usize) {
                Some(n) => Cow::Borrowed(n),
                None => Cow::Owned(format!("kind#{id}")),
            },
        }
    }

    /// What the events said about kind `id` of `tgid`.
    pub fn info(&self, tgid: u32, id: u32) -> Option<&KindInfo> {
        self.kinds.get(&(tgid, id))
    }

    /// Every kind known from events, by (tgid, id).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &KindInfo)> {
        self.kinds.iter().map(|((t, _), k)| (*t, k))
    }

    /// Forget process `tgid` (it exited and its pid may be reused).
    pub fn forget(&mut self, tgid: u32) {
        self.kinds.retain(|(t, _), _| *t != tgid);
    }
}

fn static_or_numbered(id: u32) -> String {
    match STATIC_KINDS.get(id as usize) {
        Some(n) => (*n).to_string(),
        None => format!("kind#{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(op: KindOp, kind: u32, name: &str, dir: &str, backing: u32) -> KindEvent {
        KindEvent {
            op,
            kind,
            backing,
            mbind_mode: -1,
            nodemask: [0; 4],
            name: name.into(),
            dir: dir.into(),
        }
    }

    #[test]
    fn static_kinds_are_named_without_events() {
        let t = KindTable::new();
        assert_eq!(t.name(1, 0), "MEMKIND_DEFAULT");
        assert_eq!(t.name(1, 11), "MEMKIND_REGULAR");
        assert_eq!(t.name(1, 25), "MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED");
        assert_eq!(t.name(1, 26), "kind#26");
        assert_eq!(t.name(1, 511), "kind#511");
    }

    #[test]
    fn dynamic_kinds_by_event_per_process() {
        let mut t = KindTable::new();
        let long = format!("/mnt/{}", "d".repeat(100));
        t.apply(
            1,
            &ev(KindOp::Create, 30, "PMEM:/mnt/trunc", &long, BACKING_FILE),
        );
        t.apply(2, &ev(KindOp::Create, 30, "FIXED:0x7f0000", "", 3));
        t.apply(1, &ev(KindOp::Announce, 11, "MEMKIND_REGULAR", "", 0));
        t.apply(1, &ev(KindOp::Create, 31, "", "", 0));
        assert_eq!(
            t.name(1, 30),
            format!("PMEM:{long}"),
            "the full directory, not the truncated name"
        );
        assert_eq!(t.name(2, 30), "FIXED:0x7f0000");
        assert_eq!(t.name(1, 11), "MEMKIND_REGULAR");
        assert_eq!(t.name(1, 31), "kind#31", "a nameless dynamic kind");
        assert_eq!(t.name(3, 30), "kind#30", "unknown in another process");

        t.apply(1, &ev(KindOp::Destroy, 30, "", "", BACKING_FILE));
        assert!(t.info(1, 30).unwrap().destroyed);
        assert_eq!(
            t.name(1, 30),
            format!("PMEM:{long}"),
            "a destroyed kind keeps its name"
        );
        t.apply(1, &ev(KindOp::Create, 30, "PMEM:/b", "/b", BACKING_FILE));
        assert_eq!(t.name(1, 30), "PMEM:/b", "a reused id takes the new name");
        assert!(!t.info(1, 30).unwrap().destroyed);

        t.apply(4, &ev(KindOp::Destroy, 40, "X", "", 0));
        assert!(t.info(4, 40).unwrap().destroyed);
        assert_eq!(t.iter().count(), 5);
        t.forget(1);
        assert_eq!(t.name(1, 30), "kind#30");
    }
}
