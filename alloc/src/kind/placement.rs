//! Placement glue: a kind's node sets, capacity and hugepage checks from the machine's topology
//! (read once) and 1.14's rules (`crate::topology`), for the families' `placement` and
//! `capacity` entries.

use super::*;

/// Map a nodeset computation result (the rules live in `topology`) into a placement.
pub(crate) fn bound(
    mode: MpolMode,
    nodes: NodeSets,
    backing: Backing,
    nohugepage: bool,
) -> Placement {
    Placement {
        backing,
        mbind: Some(MbindPolicy { mode, nodes }),
        nohugepage,
        ..Placement::anon()
    }
}

pub use crate::topology::Rule;
use crate::topology::{RuleOutcome, Topology, HUGEPAGE_1G_KB, HUGEPAGE_2M_KB};

/// The machine's topology, read once (nodes do not change under a running process).
fn topology() -> Result<&'static Topology, Error> {
    static TOPO: std::sync::OnceLock<Result<Topology, Error>> = std::sync::OnceLock::new();
    TOPO.get_or_init(|| {
        Topology::read(std::path::Path::new("/")).map_err(|e| {
            crate::env::debug_log!("reading the NUMA topology failed: {e}");
            Error::Runtime
        })
    })
    .as_ref()
    .map_err(|e| *e)
}

/// The nodes with memory (memkind_default_get_mbind_nodemask: libnuma's `numa_all_nodes`).
pub fn memory_nodes() -> Result<crate::nodemask::Nodemask, Error> {
    Ok(topology()?.memory_nodes())
}

fn code_error(c: i32) -> Error {
    Error::from_code(c).unwrap_or(Error::Runtime)
}

/// The node sets of `rule` on this machine, or 1.14's error for the kind.
pub(crate) fn node_sets(rule: Rule) -> Result<NodeSets, Error> {
    match crate::topology::resolve(topology()?, crate::env::nodes(), rule) {
        RuleOutcome::Available(sets) => Ok(sets),
        RuleOutcome::Unavailable(c) => Err(code_error(c)),
    }
}

/// `memkind_get_capacity` of a kind bound to `rule` with `mode`: 1.14 reports -1 for the
/// PREFERRED kinds, else [`capacity`].
pub(crate) fn bound_capacity(rule: Rule, mode: MpolMode) -> isize {
    if mode == MpolMode::Preferred {
        -1
    } else {
        capacity(rule)
    }
}

/// `memkind_get_capacity` of a rule: MemTotal summed over the calling thread's target nodes.
pub(crate) fn capacity(rule: Rule) -> isize {
    let Ok(sets) = node_sets(rule) else { return -1 };
    let Ok(topo) = topology() else { return -1 };
    sets.capacity(topo, crate::sys::current_node())
        .map_or(-1, |c| c as isize)
}

fn page_kb(page_size: usize) -> u64 {
    if page_size >= crate::sys::HUGE_1G {
        HUGEPAGE_1G_KB
    } else {
        HUGEPAGE_2M_KB
    }
}

/// Hugepage counts change at run time (an administrator reserves pages), so read them fresh.
fn fresh_topology() -> Result<Topology, Error> {
    Topology::read(std::path::Path::new("/")).map_err(|_| Error::Hugetlb)
}

/// MEMKIND_ERROR_HUGETLB unless pages of `page_size` are reserved or may be overcommitted on
/// `nodes` (all nodes when `None`).
pub(crate) fn hugepages_available(page_size: usize, nodes: Option<&NodeSets>) -> Result<(), Error> {
    let topo = fresh_topology()?;
    let mask = match nodes {
        Some(n) => n.for_cpu_node(crate::sys::current_node()),
        None => crate::nodemask::Nodemask::first_n(crate::nodemask::MAX_NUMA_NODES as u32),
    };
    topo.hugetlb_check_available(page_kb(page_size), &mask)
        .map_err(code_error)
}

/// `memkind_get_capacity` of the hugetlb pool of `page_size` pages.
pub(crate) fn hugepage_capacity(page_size: usize) -> isize {
    let Ok(topo) = fresh_topology() else {
        return -1;
    };
    if page_kb(page_size) == HUGEPAGE_2M_KB {
        topo.hugetlb_capacity().map_or(-1, |c| c as isize)
    } else {
        0
    }
}

/// Placement for a kind bound to `rule`'s nodes with `mode`, on `backing` pages.
pub(crate) fn node_bound(
    rule: Rule,
    mode: MpolMode,
    backing: Backing,
    nohugepage: bool,
) -> Result<Placement, Error> {
    let nodes = node_sets(rule)?;
    if backing != Backing::Anon {
        hugepages_available(backing.page_size(), Some(&nodes))?;
    }
    Ok(bound(mode, nodes, backing, nohugepage))
}
