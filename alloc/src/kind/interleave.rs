//! MEMKIND_INTERLEAVE: MPOL_INTERLEAVE over every node with memory, and MADV_NOHUGEPAGE so the
//! interleave is per 4 KiB page (as 1.14).

use super::{node_bound, Family, Kind, Placement, Rule};
use crate::error::Error;
use crate::sys::{Backing, MpolMode};

fn placement(_k: &Kind) -> Result<Placement, Error> {
    node_bound(Rule::Interleave, MpolMode::Interleave, Backing::Anon, true)
}

fn capacity(_k: &Kind) -> isize {
    super::capacity(Rule::Interleave)
}

/// The INTERLEAVE family.
pub static FAMILY: Family = Family {
    name: "interleave",
    placement,
    check: super::check_by_placement,
    capacity,
    hooks: super::HookSet::Anon,
};
