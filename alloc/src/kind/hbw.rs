//! The high-bandwidth family: HBW, HBW_ALL, HBW_PREFERRED, their HUGETLB and GBTLB variants, and
//! HBW_INTERLEAVE. HBW nodes come from MEMKIND_HBW_NODES or HMAT bandwidth (see
//! `topology::Rule::Hbw`); "closest" variants bind to the HBW nodes nearest the CPU that grows
//! the arena, `_ALL` variants to every HBW node.

use super::{node_bound, Family, Kind, Placement, Rule};
use crate::error::Error;
use crate::nodemask::Nodemask;
use crate::sys::{Backing, MpolMode, HUGE_2M};
use crate::topology::NodeSets;

/// Variants.
pub const HBW: u8 = 0;
/// HBW on 2 MiB pages.
pub const HBW_HUGETLB: u8 = 1;
/// Preferred (falls back to other nodes).
pub const HBW_PREFERRED: u8 = 2;
/// Preferred on 2 MiB pages.
pub const HBW_PREFERRED_HUGETLB: u8 = 3;
/// HBW, GBTLB (deprecated): 2 MiB pages in 1 GiB mappings, as 1.14.
pub const HBW_GBTLB: u8 = 4;
/// Preferred, GBTLB (deprecated).
pub const HBW_PREFERRED_GBTLB: u8 = 5;
/// Interleave over all HBW nodes.
pub const HBW_INTERLEAVE: u8 = 6;
/// Bind to all HBW nodes.
pub const HBW_ALL: u8 = 7;
/// Bind to all HBW nodes, 2 MiB pages.
pub const HBW_ALL_HUGETLB: u8 = 8;

fn spec(v: u8) -> (Rule, MpolMode, Backing) {
    match v {
        HBW_HUGETLB => (Rule::Hbw, MpolMode::Bind, Backing::Huge2M),
        HBW_PREFERRED => (Rule::HbwPreferred, MpolMode::Preferred, Backing::Anon),
        HBW_PREFERRED_HUGETLB => (Rule::HbwPreferred, MpolMode::Preferred, Backing::Huge2M),
        HBW_GBTLB => (Rule::Hbw, MpolMode::Bind, Backing::Gbtlb),
        HBW_PREFERRED_GBTLB => (Rule::HbwPreferred, MpolMode::Preferred, Backing::Gbtlb),
        HBW_INTERLEAVE => (Rule::HbwInterleave, MpolMode::Interleave, Backing::Anon),
        HBW_ALL => (Rule::HbwAll, MpolMode::Bind, Backing::Anon),
        HBW_ALL_HUGETLB => (Rule::HbwAll, MpolMode::Bind, Backing::Huge2M),
        _ => (Rule::Hbw, MpolMode::Bind, Backing::Anon),
    }
}

fn placement(k: &Kind) -> Result<Placement, Error> {
    let (rule, mode, backing) = spec(k.variant());
    node_bound(rule, mode, backing, k.variant() == HBW_INTERLEAVE)
}

/// `memkind_check_available`. The GBTLB variants use 1.14's plain 2 MiB hugepage check over the
/// kind's nodemask (MEMKIND_HBW_GBTLB_OPS: `memkind_hugetlb_check_available_2mb`), not the HBW
/// check first: with HBW nodes they are available as soon as 2 MiB pages exist there, although
/// their allocations need 512 free 2 MiB pages (a 1 GiB mapping). When the HBW nodes cannot be
/// determined 1.14 reads an uninitialised nodemask (its answer depends on stack garbage); ours uses the empty mask, so
/// only overcommittable pages make the kind available.
fn check(k: &Kind) -> Result<(), Error> {
    match k.variant() {
        HBW_GBTLB | HBW_PREFERRED_GBTLB => {
            let nodes = super::node_sets(spec(k.variant()).0)
                .unwrap_or_else(|_| NodeSets::uniform(Nodemask::new()));
            super::hugepages_available(HUGE_2M, Some(&nodes))
        }
        _ => super::check_by_placement(k),
    }
}

/// `memkind_get_capacity`, as 1.14: -1 for the preferred variants and for HBW_HUGETLB /
/// HBW_ALL_HUGETLB (even when available); otherwise the size of the kind's nodes (0 for an
/// empty MEMKIND_HBW_NODES), -1 when they cannot be determined.
fn capacity(k: &Kind) -> isize {
    let (rule, mode, _) = spec(k.variant());
    if mode == MpolMode::Preferred || matches!(k.variant(), HBW_HUGETLB | HBW_ALL_HUGETLB) {
        return -1;
    }
    super::capacity(rule)
}

/// The HBW family.
pub static FAMILY: Family = Family {
    name: "hbw",
    placement,
    check,
    capacity,
    hooks: super::HookSet::Anon,
};

/// The HBW family on hugetlb pages uses the hugetlb hooks.
pub static FAMILY_HUGETLB: Family = Family {
    name: "hbw_hugetlb",
    placement,
    check,
    capacity,
    hooks: super::HookSet::Hugetlb,
};
