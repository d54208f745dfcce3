//! MEMKIND_REGULAR: bound (MPOL_BIND) to the regular nodes (memkind 1.14: every node that is
//! not high-bandwidth, i.e. the nodes with CPUs; see `topology::Rule::Regular`).

use super::{node_bound, Family, Kind, Placement, Rule};
use crate::error::Error;
use crate::sys::{Backing, MpolMode};

fn placement(_k: &Kind) -> Result<Placement, Error> {
    node_bound(Rule::Regular, MpolMode::Bind, Backing::Anon, false)
}

fn capacity(_k: &Kind) -> isize {
    super::capacity(Rule::Regular)
}

/// The REGULAR family.
pub static FAMILY: Family = Family {
    name: "regular",
    placement,
    check: super::check_by_placement,
    capacity,
    hooks: super::HookSet::Anon,
};
