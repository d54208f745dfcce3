//! TEMPORARY (replaced by the topology branch).
#![allow(missing_docs)]
use crate::error::Error;
use crate::nodemask::Nodemask;
#[derive(Debug, Clone)]
pub struct NodeSets { pub all: Nodemask }
impl NodeSets { pub fn for_cpu_node(&self, _node: u32) -> Nodemask { self.all } pub fn all(&self) -> Nodemask { self.all } }
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule { All, Regular, Hbw, HbwAll, DaxKmem, DaxKmemAll, HighestCapacity, HighestCapacityLocal, LowestLatencyLocal, HighestBandwidthLocal }
pub fn node_sets(rule: Rule) -> Result<NodeSets, Error> {
    match rule {
        Rule::All | Rule::Regular | Rule::HighestCapacity | Rule::HighestCapacityLocal => Ok(NodeSets { all: Nodemask::single(0) }),
        Rule::DaxKmem | Rule::DaxKmemAll => Err(Error::Unavailable),
        _ => Err(Error::MemtypeNotAvailable),
    }
}
pub fn capacity(_r: Rule) -> isize { -1 }
pub fn hugepages_available(_page: usize) -> Result<(), Error> {
    let n: u64 = std::fs::read_to_string("/proc/sys/vm/nr_hugepages").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    if n > 0 { Ok(()) } else { Err(Error::Hugetlb) }
}
pub fn hugepage_capacity(_page: usize) -> isize { 0 }
