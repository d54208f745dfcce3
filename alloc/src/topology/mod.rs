//! NUMA topology reader and memkind 1.14's node-set rules.
//!
//! [`Topology::read`] takes a snapshot of sysfs/procfs under an injectable root (`/` in
//! production, a temp dir in tests). [`resolve`] is a pure function of that snapshot, the
//! memkind environment ([`EnvConfig`]) and a [`Rule`]: it answers either
//! [`RuleOutcome::Unavailable`] with the exact `MEMKIND_ERROR_*` code memkind 1.14 returns from
//! `memkind_check_available`, or [`NodeSets`]: for every initiator (CPU-bearing) node, the
//! node mask 1.14 passes to `mbind(2)` for a thread running on that node. Nothing is cached
//! here; the caller reads once and keeps the result.
//!
//! # The rules (what 1.14 binds to, one line each)
//! - `Hbw`: per CPU node, the nearest (by SLIT distance) HBW nodes; HBW nodes come from
//!   `MEMKIND_HBW_NODES`, else Knights Landing/Mill detection (CPU-less nodes), else HMAT
//!   bandwidth `>= MEMKIND_HBW_THRESHOLD` seen from that CPU node.
//! - `HbwAll` / `HbwInterleave`: per CPU node, all HBW nodes (HMAT: all seen from that node).
//! - `HbwPreferred`: as `Hbw`, but a tie between several nearest nodes is an error (-255).
//! - `DaxKmem` / `DaxKmemAll` / `DaxKmemInterleave` / `DaxKmemPreferred`: the same four shapes
//!   over `MEMKIND_DAX_KMEM_NODES`, else the target nodes of dax devices bound to `kmem`.
//! - `HighestCapacity` (+`Preferred`): the node(s) with the largest MemTotal, for every CPU.
//! - `HighestCapacityLocal` (+`Preferred`): per CPU node, the largest of its *local* nodes
//!   (hwloc locality: same CPU set, CPU-less nodes attached by HMAT initiators or distance).
//! - `LowestLatencyLocal` / `HighestBandwidthLocal` (+`Preferred`): per CPU node, the local
//!   node(s) with the best HMAT latency / bandwidth; no HMAT data means unavailable (-20).
//! - `Regular`: nodes that have CPUs, among ids `0..count(nodes with memory)`.
//! - `Interleave` (and `DEFAULT`'s capacity): the process's allowed memory nodes
//!   (`Mems_allowed`, libnuma's `numa_all_nodes_ptr`).
//!
//! Capacity ([`Topology::capacity_of`], [`NodeSets::capacity`]) is memkind_get_capacity's sum
//! of MemTotal over the mask of the *calling CPU's* node; hugetlb capacity is
//! `(persistent + overcommit 2 MiB pages) × 2 MiB` ([`Topology::hugetlb_capacity`]).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::env::EnvConfig;
use crate::error::code;
pub use crate::nodemask::{NodeSpec, NodelistError, Nodemask, MAX_NUMA_NODES};

/// Default `MEMKIND_HBW_THRESHOLD` in MB/s (200 GB/s), `MEMKIND_HBW_THRESHOLD_DEFAULT`.
pub const HBW_THRESHOLD_DEFAULT: u64 = 200 * 1024;

/// 2 MiB hugepages, the only size memkind 1.14's HUGETLB kinds use.
pub const HUGEPAGE_2M_KB: u64 = 2048;
/// 1 GiB hugepages (the deprecated GBTLB kinds).
pub const HUGEPAGE_1G_KB: u64 = 1024 * 1024;

/// Failure to read the topology; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A required file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file was read but its content is not what the kernel writes there.
    #[error("malformed {path}: {what}")]
    Parse {
        /// The malformed file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
}

/// HMAT attributes of one memory node, as exported by the kernel under
/// `nodeN/access{0,1}/initiators/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hmat {
    /// Access class the numbers come from: 1 (CPU initiators only) when `access1` exists,
    /// else 0. hwloc 2.9 (memkind 1.14's source of HMAT data) prefers `access1` the same way.
    pub access_class: u8,
    /// `read_bandwidth`, MB/s.
    pub read_bandwidth: Option<u64>,
    /// `write_bandwidth`, MB/s.
    pub write_bandwidth: Option<u64>,
    /// `read_latency`, ns.
    pub read_latency: Option<u64>,
    /// `write_latency`, ns.
    pub write_latency: Option<u64>,
    /// The `nodeM` entries of `access0/initiators/` (the node's best initiators).
    pub initiators: Nodemask,
}

impl Hmat {
    /// hwloc's `HWLOC_MEMATTR_ID_BANDWIDTH`: the mean of read and write bandwidth, only when
    /// both are known and non-zero (topology-linux.c `read_node_local_memattrs`).
    pub fn bandwidth(&self) -> Option<u64> {
        mean_if_both(self.read_bandwidth, self.write_bandwidth)
    }

    /// hwloc's `HWLOC_MEMATTR_ID_LATENCY`, same rule as [`Hmat::bandwidth`].
    pub fn latency(&self) -> Option<u64> {
        mean_if_both(self.read_latency, self.write_latency)
    }
}

fn mean_if_both(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) if a > 0 && b > 0 => Some((a + b) / 2),
        _ => None,
    }
}

/// Hugepages of one size on one node (`nodeN/hugepages/hugepages-<size>kB/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeHugepages {
    /// Page size in KiB.
    pub size_kb: u64,
    /// `nr_hugepages`.
    pub nr: u64,
    /// `free_hugepages`.
    pub free: u64,
}

/// System-wide hugepages of one size (`/sys/kernel/mm/hugepages/hugepages-<size>kB/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugepagePool {
    /// Page size in KiB.
    pub size_kb: u64,
    /// `nr_hugepages` (persistent pool).
    pub nr: u64,
    /// `free_hugepages`.
    pub free: u64,
    /// `nr_overcommit_hugepages` (0 when unreadable, as in memkind's `get_sysfs_entry_value`).
    pub overcommit: u64,
}

/// One NUMA node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node id.
    pub id: u32,
    /// MemTotal from `nodeN/meminfo`, in bytes (libnuma's `numa_node_size64`).
    pub mem_total: u64,
    /// CPUs from `nodeN/cpulist`, increasing.
    pub cpus: Vec<u32>,
    /// `nodeN/distance`, paired with the online nodes in increasing id order.
    pub distances: Vec<(u32, u32)>,
    /// HMAT attributes, if the kernel exports any for this node.
    pub hmat: Option<Hmat>,
    /// Per-size hugepage counts on this node.
    pub hugepages: Vec<NodeHugepages>,
}

/// A snapshot of the machine's NUMA topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// `node/online`.
    pub online: Nodemask,
    /// `node/possible`.
    pub possible: Nodemask,
    /// `node/has_memory` (N_MEMORY).
    pub has_memory: Nodemask,
    /// `node/has_cpu`.
    pub has_cpu: Nodemask,
    /// `node/has_normal_memory`.
    pub has_normal_memory: Nodemask,
    /// `Mems_allowed_list` of `proc/self/status` (libnuma's `numa_all_nodes_ptr`); falls back
    /// to `has_memory` when that file is absent (fake trees).
    pub mems_allowed: Nodemask,
    /// Every `nodeN` directory, by increasing id.
    pub nodes: Vec<NodeInfo>,
    /// Target nodes of dax devices bound to the `kmem` driver (what libdaxctl's
    /// `daxctl_dev_get_memory` finds).
    pub dax_kmem_nodes: Nodemask,
    /// `/sys/kernel/mm/hugepages/*`; `None` if that directory is missing.
    pub hugepage_pools: Option<Vec<HugepagePool>>,
    /// `/proc/sys/vm/nr_hugepages` (default hugepage size), if readable.
    pub vm_nr_hugepages: Option<u64>,
    /// `/proc/sys/vm/nr_overcommit_hugepages`, if readable.
    pub vm_nr_overcommit_hugepages: Option<u64>,
    /// `(cpu family, model)` of the first CPU in `proc/cpuinfo`, if present.
    pub cpu_model: Option<(u32, u32)>,
}

mod rules;
mod sysfs;

#[allow(
    unused_imports,
    reason = "the readers' and rules' helpers, for the unit tests"
)]
use rules::*;
pub use rules::{resolve, NodeSets, Rule, RuleOutcome};
#[allow(unused_imports, reason = "as above")]
use sysfs::*;

#[cfg(test)]
mod tests;
