//! The DAX_KMEM family: persistent memory onlined as system RAM (kmem) NUMA nodes, from
//! MEMKIND_DAX_KMEM_NODES or sysfs (see `topology::Rule::DaxKmem`).

use super::{node_bound, Family, Kind, Placement, Rule};
use crate::error::Error;
use crate::sys::{Backing, MpolMode};

/// Bind to the closest DAX_KMEM nodes.
pub const DAX_KMEM: u8 = 0;
/// Bind to all DAX_KMEM nodes.
pub const DAX_KMEM_ALL: u8 = 1;
/// Prefer the closest DAX_KMEM nodes.
pub const DAX_KMEM_PREFERRED: u8 = 2;
/// Interleave over all DAX_KMEM nodes.
pub const DAX_KMEM_INTERLEAVE: u8 = 3;

fn spec(v: u8) -> (Rule, MpolMode) {
    match v {
        DAX_KMEM_ALL => (Rule::DaxKmemAll, MpolMode::Bind),
        DAX_KMEM_PREFERRED => (Rule::DaxKmemPreferred, MpolMode::Preferred),
        DAX_KMEM_INTERLEAVE => (Rule::DaxKmemInterleave, MpolMode::Interleave),
        _ => (Rule::DaxKmem, MpolMode::Bind),
    }
}

fn placement(k: &Kind) -> Result<Placement, Error> {
    let (rule, mode) = spec(k.variant());
    node_bound(
        rule,
        mode,
        Backing::Anon,
        k.variant() == DAX_KMEM_INTERLEAVE,
    )
}

fn capacity(k: &Kind) -> isize {
    let (rule, mode) = spec(k.variant());
    super::bound_capacity(rule, mode)
}

/// The DAX_KMEM family.
pub static FAMILY: Family = Family {
    name: "dax_kmem",
    placement,
    check: super::check_by_placement,
    capacity,
    hooks: super::HookSet::Anon,
};
