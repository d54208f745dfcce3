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

pub use crate::nodemask::{NodeSpec, NodelistError, Nodemask, MAX_NUMA_NODES};

/// memkind 1.14 error codes produced by this module (values from memkind.h).
pub mod codes {
    /// `MEMKIND_ERROR_UNAVAILABLE`
    pub const UNAVAILABLE: i32 = -1;
    /// `MEMKIND_ERROR_ENVIRON`
    pub const ENVIRON: i32 = -12;
    /// `MEMKIND_ERROR_HUGETLB`
    pub const HUGETLB: i32 = -18;
    /// `MEMKIND_ERROR_MEMTYPE_NOT_AVAILABLE`
    pub const MEMTYPE_NOT_AVAILABLE: i32 = -20;
    /// `MEMKIND_ERROR_OPERATION_FAILED`
    pub const OPERATION_FAILED: i32 = -21;
    /// `MEMKIND_ERROR_RUNTIME`
    pub const RUNTIME: i32 = -255;
}

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

/// The memkind environment variables that steer node selection, already parsed.
///
/// memkind 1.14 reads them with `secure_getenv` when a kind is first used; a malformed value
/// makes only the kinds that read it unavailable (`MEMKIND_ERROR_ENVIRON`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvConfig {
    /// `MEMKIND_HBW_NODES`.
    pub hbw_nodes: Option<Result<NodeSpec, NodelistError>>,
    /// `MEMKIND_DAX_KMEM_NODES`.
    pub dax_kmem_nodes: Option<Result<NodeSpec, NodelistError>>,
    /// `MEMKIND_HBW_THRESHOLD` in MB/s.
    pub hbw_threshold: Option<Result<u64, ThresholdError>>,
}

/// A malformed `MEMKIND_HBW_THRESHOLD`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MEMKIND_HBW_THRESHOLD {0:?}: expected a decimal number of MB/s <= 4294967295")]
pub struct ThresholdError(pub String);

impl EnvConfig {
    /// Parses the three variables from a lookup function (`None` = unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        EnvConfig {
            hbw_nodes: get("MEMKIND_HBW_NODES").map(|s| NodeSpec::parse(&s)),
            dax_kmem_nodes: get("MEMKIND_DAX_KMEM_NODES").map(|s| NodeSpec::parse(&s)),
            hbw_threshold: get("MEMKIND_HBW_THRESHOLD").map(|s| parse_threshold(&s)),
        }
    }

    /// Reads the process environment with `std::env::var` (not `secure_getenv`: a setuid
    /// caller that must ignore the environment should pass its own lookup).
    pub fn from_process_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// `strtoull(s, &end, 10)` accepted only if it consumed everything, did not overflow and is
/// `<= UINT_MAX` (memkind_mem_attributes.c `set_closest_numanode_mem_attr`). Like strtoull,
/// leading whitespace and a sign are allowed (`-0` is 0, `-5` wraps and is rejected). Unlike
/// 1.14, an empty string is rejected (strtoull reads it as 0).
pub fn parse_threshold(s: &str) -> Result<u64, ThresholdError> {
    let err = || ThresholdError(s.to_string());
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let v: u64 = digits.parse().map_err(|_| err())?;
    if (neg && v != 0) || v > u64::from(u32::MAX) {
        return Err(err());
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

fn io_err(path: &Path, source: io::Error) -> TopologyError {
    TopologyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn parse_err(path: &Path, what: impl Into<String>) -> TopologyError {
    TopologyError::Parse {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn read_string(path: &Path) -> Result<String, TopologyError> {
    fs::read_to_string(path).map_err(|e| io_err(path, e))
}

/// `Ok(None)` if the file does not exist.
fn read_opt_string(path: &Path) -> Result<Option<String>, TopologyError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

fn parse_u64_text(path: &Path, s: &str) -> Result<u64, TopologyError> {
    s.trim()
        .parse()
        .map_err(|_| parse_err(path, format!("expected a number, got {:?}", s.trim())))
}

fn read_opt_u64(path: &Path) -> Result<Option<u64>, TopologyError> {
    read_opt_string(path)?
        .map(|s| parse_u64_text(path, &s))
        .transpose()
}

fn read_nodelist(path: &Path) -> Result<Nodemask, TopologyError> {
    let s = read_string(path)?;
    Nodemask::parse_sysfs_list(&s).map_err(|e| parse_err(path, e.to_string()))
}

/// Entries of a directory whose names are `prefix<number><suffix>`, as `(number, path)`;
/// `Ok(empty)` if the directory does not exist.
fn numbered_entries(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> Result<Vec<(u64, PathBuf)>, TopologyError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| io_err(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(num) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
        else {
            continue;
        };
        if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = num.parse() {
                out.push((n, ent.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A CPU list (`0-3,8`); unlike node lists, CPU ids are not capped at 1024.
fn parse_cpulist(path: &Path, s: &str) -> Result<Vec<u32>, TopologyError> {
    const MAX_CPUS: u32 = 1 << 20;
    let bad = || parse_err(path, format!("bad cpu list {:?}", s.trim()));
    let t = s.trim();
    let mut cpus = Vec::new();
    if t.is_empty() {
        return Ok(cpus);
    }
    for item in t.split(',') {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a, b),
            None => (item, item),
        };
        let lo: u32 = lo.parse().map_err(|_| bad())?;
        let hi: u32 = hi.parse().map_err(|_| bad())?;
        if hi < lo || hi >= MAX_CPUS {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// `Node 0 MemTotal:  6121684 kB` → bytes.
fn parse_meminfo_total(path: &Path, s: &str) -> Result<u64, TopologyError> {
    for line in s.lines() {
        let Some((_, rest)) = line.split_once("MemTotal:") else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let (Some(num), Some("kB"), None) = (it.next(), it.next(), it.next()) else {
            return Err(parse_err(path, format!("bad MemTotal line {line:?}")));
        };
        let kb: u64 = num
            .parse()
            .map_err(|_| parse_err(path, format!("bad MemTotal line {line:?}")))?;
        return kb
            .checked_mul(1024)
            .ok_or_else(|| parse_err(path, "MemTotal overflows"));
    }
    Err(parse_err(path, "no MemTotal line"))
}

fn read_hmat(node_dir: &Path) -> Result<Option<Hmat>, TopologyError> {
    let acc1 = node_dir.join("access1/initiators");
    let acc0 = node_dir.join("access0/initiators");
    let (class, dir) = if acc1.is_dir() {
        (1, acc1)
    } else if acc0.is_dir() {
        (0, acc0.clone())
    } else {
        return Ok(None);
    };
    let initiators = numbered_entries(&acc0, "node", "")?
        .into_iter()
        .filter_map(|(n, _)| u32::try_from(n).ok())
        .collect();
    Ok(Some(Hmat {
        access_class: class,
        read_bandwidth: read_opt_u64(&dir.join("read_bandwidth"))?,
        write_bandwidth: read_opt_u64(&dir.join("write_bandwidth"))?,
        read_latency: read_opt_u64(&dir.join("read_latency"))?,
        write_latency: read_opt_u64(&dir.join("write_latency"))?,
        initiators,
    }))
}

fn read_node_hugepages(node_dir: &Path) -> Result<Vec<NodeHugepages>, TopologyError> {
    let mut out = Vec::new();
    for (size_kb, dir) in numbered_entries(&node_dir.join("hugepages"), "hugepages-", "kB")? {
        out.push(NodeHugepages {
            size_kb,
            nr: read_opt_u64(&dir.join("nr_hugepages"))?.unwrap_or(0),
            free: read_opt_u64(&dir.join("free_hugepages"))?.unwrap_or(0),
        });
    }
    Ok(out)
}

fn read_pools(root: &Path) -> Result<Option<Vec<HugepagePool>>, TopologyError> {
    let dir = root.join("sys/kernel/mm/hugepages");
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (size_kb, d) in numbered_entries(&dir, "hugepages-", "kB")? {
        out.push(HugepagePool {
            size_kb,
            nr: read_opt_u64(&d.join("nr_hugepages"))?.unwrap_or(0),
            free: read_opt_u64(&d.join("free_hugepages"))?.unwrap_or(0),
            overcommit: read_opt_u64(&d.join("nr_overcommit_hugepages"))?.unwrap_or(0),
        });
    }
    Ok(Some(out))
}

/// libdaxctl's view (memkind_dax_kmem.c `get_dax_kmem_nodemask`): a dax device has memory
/// when it is bound to the `kmem` driver; its `target_node` is then a DAX_KMEM node.
fn read_dax_kmem(root: &Path) -> Result<Nodemask, TopologyError> {
    let dir = root.join("sys/bus/dax/devices");
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Nodemask::new()),
        Err(e) => return Err(io_err(&dir, e)),
    };
    let mut mask = Nodemask::new();
    for ent in rd {
        let dev = ent.map_err(|e| io_err(&dir, e))?.path();
        let Ok(driver) = fs::read_link(dev.join("driver")) else {
            continue;
        };
        if driver.file_name().and_then(|n| n.to_str()) != Some("kmem") {
            continue;
        }
        let tn = dev.join("target_node");
        let s = read_string(&tn)?;
        let node: i64 = s
            .trim()
            .parse()
            .map_err(|_| parse_err(&tn, "expected a node id"))?;
        if let Ok(n) = u32::try_from(node) {
            mask.set(n);
        }
    }
    Ok(mask)
}

fn read_cpu_model(root: &Path) -> Result<Option<(u32, u32)>, TopologyError> {
    let path = root.join("proc/cpuinfo");
    let Some(s) = read_opt_string(&path)? else {
        return Ok(None);
    };
    let field = |key: &str| -> Option<u32> {
        s.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == key)
            .and_then(|(_, v)| v.trim().parse().ok())
    };
    Ok(field("cpu family").zip(field("model")))
}

fn read_mems_allowed(root: &Path) -> Result<Option<Nodemask>, TopologyError> {
    let path = root.join("proc/self/status");
    let Some(s) = read_opt_string(&path)? else {
        return Ok(None);
    };
    match s.lines().find_map(|l| l.strip_prefix("Mems_allowed_list:")) {
        Some(v) => Nodemask::parse_sysfs_list(v)
            .map(Some)
            .map_err(|e| parse_err(&path, e.to_string())),
        None => Ok(None),
    }
}

impl Topology {
    /// Reads the topology under `root` (`Path::new("/")` on a real system).
    ///
    /// Required: `sys/devices/system/node/{online,possible,has_memory,has_cpu,
    /// has_normal_memory}` and, for every `nodeN` directory, `meminfo` (with MemTotal),
    /// `distance` (one entry per online node) and `cpulist`. Everything else (HMAT, hugepages,
    /// dax devices, `proc/cpuinfo`, `proc/self/status`, `proc/sys/vm/*`) is optional.
    pub fn read(root: &Path) -> Result<Topology, TopologyError> {
        let ndir = root.join("sys/devices/system/node");
        let online = read_nodelist(&ndir.join("online"))?;
        let possible = read_nodelist(&ndir.join("possible"))?;
        let has_memory = read_nodelist(&ndir.join("has_memory"))?;
        let has_cpu = read_nodelist(&ndir.join("has_cpu"))?;
        let has_normal_memory = read_nodelist(&ndir.join("has_normal_memory"))?;

        let mut nodes = Vec::new();
        for (id, dir) in numbered_entries(&ndir, "node", "")? {
            let id = u32::try_from(id)
                .ok()
                .filter(|&n| (n as usize) < MAX_NUMA_NODES)
                .ok_or_else(|| parse_err(&dir, "node id out of range"))?;
            let mi = dir.join("meminfo");
            let mem_total = parse_meminfo_total(&mi, &read_string(&mi)?)?;
            let cl = dir.join("cpulist");
            let cpus = parse_cpulist(&cl, &read_string(&cl)?)?;
            let dp = dir.join("distance");
            let ds = read_string(&dp)?;
            let dvals: Vec<u32> = ds
                .split_whitespace()
                .map(|t| {
                    t.parse()
                        .map_err(|_| parse_err(&dp, format!("bad distance {t:?}")))
                })
                .collect::<Result<_, _>>()?;
            if dvals.len() != online.count() as usize {
                return Err(parse_err(
                    &dp,
                    format!(
                        "{} distances for {} online nodes",
                        dvals.len(),
                        online.count()
                    ),
                ));
            }
            let distances = online.iter().zip(dvals).collect();
            nodes.push(NodeInfo {
                id,
                mem_total,
                cpus,
                distances,
                hmat: read_hmat(&dir)?,
                hugepages: read_node_hugepages(&dir)?,
            });
        }
        if nodes.is_empty() {
            return Err(parse_err(&ndir, "no nodeN directories"));
        }

        let vm = root.join("proc/sys/vm");
        Ok(Topology {
            online,
            possible,
            has_memory,
            has_cpu,
            has_normal_memory,
            mems_allowed: read_mems_allowed(root)?.unwrap_or(has_memory),
            nodes,
            dax_kmem_nodes: read_dax_kmem(root)?,
            hugepage_pools: read_pools(root)?,
            vm_nr_hugepages: read_opt_u64(&vm.join("nr_hugepages"))?,
            vm_nr_overcommit_hugepages: read_opt_u64(&vm.join("nr_overcommit_hugepages"))?,
            cpu_model: read_cpu_model(root)?,
        })
    }

    /// The node with this id, if it has a `nodeN` directory.
    pub fn node(&self, id: u32) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Highest node id (libnuma `numa_max_node`).
    pub fn max_node(&self) -> u32 {
        self.nodes.iter().map(|n| n.id).max().unwrap_or(0)
    }

    /// Nodes with MemTotal > 0 (libnuma's `numa_memnode_ptr`).
    pub fn memory_nodes(&self) -> Nodemask {
        self.nodes
            .iter()
            .filter(|n| n.mem_total > 0)
            .map(|n| n.id)
            .collect()
    }

    /// libnuma `numa_num_configured_nodes()`: the *number* of nodes with memory. memkind
    /// 1.14 iterates `0..this` as if node ids were dense; kept where it matters.
    pub fn configured_mem_nodes(&self) -> u32 {
        self.memory_nodes().count()
    }

    /// Nodes with at least one CPU: the initiators.
    pub fn cpu_nodes(&self) -> Nodemask {
        self.nodes
            .iter()
            .filter(|n| !n.cpus.is_empty())
            .map(|n| n.id)
            .collect()
    }

    /// The node a CPU belongs to.
    pub fn node_of_cpu(&self, cpu: u32) -> Option<u32> {
        self.nodes
            .iter()
            .find(|n| n.cpus.binary_search(&cpu).is_ok())
            .map(|n| n.id)
    }

    /// SLIT distance from `a` to `b`, if both are known.
    pub fn distance(&self, a: u32, b: u32) -> Option<u32> {
        self.node(a)?
            .distances
            .iter()
            .find(|(n, _)| *n == b)
            .map(|&(_, d)| d)
    }

    /// libnuma `numa_distance`: 0 when unknown.
    fn numa_distance(&self, a: u32, b: u32) -> u32 {
        self.distance(a, b).unwrap_or(0)
    }

    /// Knights Landing / Knights Mill (family 6, model 0x57 / 0x85): memkind_hbw.c
    /// `is_hbm_legacy_supported`, which reads CPUID; here read from `proc/cpuinfo`.
    pub fn is_knl(&self) -> bool {
        matches!(self.cpu_model, Some((6, 0x57)) | Some((6, 0x85)))
    }

    /// memkind_get_capacity: sum of MemTotal over `mask`; `None` (1.14: -1) if a node in the
    /// mask does not exist.
    pub fn capacity_of(&self, mask: &Nodemask) -> Option<u64> {
        mask.iter().map(|n| self.node(n).map(|i| i.mem_total)).sum()
    }

    /// `(persistent, overcommit)` hugepages of `size_kb` over `nodes`, as memkind_hugetlb.c
    /// `get_nr_hugepages_cached` / `get_nr_overcommit_hugepages_cached` compute them:
    /// persistent = per-node `nr_hugepages` summed over node ids `0..configured_mem_nodes()`
    /// present in `nodes`; overcommit = the global `nr_overcommit_hugepages`. Errors with
    /// `MEMKIND_ERROR_HUGETLB` when `/sys/kernel/mm/hugepages` or that size is missing.
    pub fn hugetlb_pages(&self, size_kb: u64, nodes: &Nodemask) -> Result<(u64, u64), i32> {
        let pools = self.hugepage_pools.as_ref().ok_or(codes::HUGETLB)?;
        let pool = pools
            .iter()
            .find(|p| p.size_kb == size_kb)
            .ok_or(codes::HUGETLB)?;
        let persistent = (0..self.configured_mem_nodes())
            .filter(|&i| nodes.contains(i))
            .filter_map(|i| self.node(i))
            .flat_map(|n| n.hugepages.iter().filter(|h| h.size_kb == size_kb))
            .map(|h| h.nr)
            .sum();
        Ok((persistent, pool.overcommit))
    }

    /// memkind_hugetlb.c `memkind_hugetlb_check_available`: `MEMKIND_ERROR_HUGETLB` unless
    /// some persistent or overcommit page of `size_kb` exists on `nodes` (all nodes for
    /// HUGETLB, the calling CPU's nodemask for HBW_*HUGETLB).
    pub fn hugetlb_check_available(&self, size_kb: u64, nodes: &Nodemask) -> Result<(), i32> {
        match self.hugetlb_pages(size_kb, nodes)? {
            (0, 0) => Err(codes::HUGETLB),
            _ => Ok(()),
        }
    }

    /// memkind_get_capacity(MEMKIND_HUGETLB): `(persistent + overcommit) × 2 MiB` over all
    /// nodes; `Err(MEMKIND_ERROR_HUGETLB)` as in [`Topology::hugetlb_pages`] (1.14 then
    /// returns -1).
    pub fn hugetlb_capacity(&self) -> Result<u64, i32> {
        let all = Nodemask::first_n(MAX_NUMA_NODES as u32);
        let (p, o) = self.hugetlb_pages(HUGEPAGE_2M_KB, &all)?;
        Ok((p + o) << 21)
    }

    /// hwloc's locality (CPU set) of each node: its own CPUs; for a CPU-less node the CPUs of
    /// its `access0/initiators`, else of its nearest nodes by distance when that is
    /// unambiguous (topology-linux.c `read_node_initiators`,
    /// `fixup_cpuless_node_locality_from_distances`); else empty.
    fn localities(&self) -> Localities {
        let mut loc: Localities = self.nodes.iter().map(|n| (n.id, n.cpus.clone())).collect();
        for n in self.nodes.iter().filter(|n| n.cpus.is_empty()) {
            let inits = n.hmat.as_ref().map(|h| h.initiators).unwrap_or_default();
            let mut cpus = union_cpus(&loc, inits.iter().filter(|&i| i != n.id));
            if cpus.is_empty() {
                cpus = self.locality_from_distances(n, &loc);
            }
            loc.insert(n.id, cpus);
        }
        loc
    }

    /// hwloc `fixup_cpuless_node_locality_from_distances`: the union of the nearest other
    /// nodes' localities, unless the nearest is not farther than the node itself or all other
    /// nodes are equally near.
    fn locality_from_distances(&self, n: &NodeInfo, loc: &Localities) -> Vec<u32> {
        let others: Vec<(u32, u32)> = n
            .distances
            .iter()
            .copied()
            .filter(|&(j, _)| j != n.id && self.node(j).is_some())
            .collect();
        let Some(min) = others.iter().map(|&(_, d)| d).min() else {
            return Vec::new();
        };
        let nearest = others.iter().filter(|&&(_, d)| d == min).map(|&(j, _)| j);
        if min <= self.numa_distance(n.id, n.id) || nearest.clone().count() + 1 == self.nodes.len()
        {
            return Vec::new();
        }
        union_cpus(loc, nearest)
    }

    /// HMAT bandwidth of `target` as seen from initiator node `init`: hwloc stores it for the
    /// target's locality and `hwloc_memattr_get_value` finds it for any initiator whose CPUs
    /// are included in that locality.
    fn hmat_value(
        &self,
        loc: &Localities,
        init: &NodeInfo,
        target: &NodeInfo,
        f: fn(&Hmat) -> Option<u64>,
    ) -> Option<u64> {
        let value = target.hmat.as_ref().and_then(f)?;
        let tloc = loc.get(&target.id)?;
        let included =
            !init.cpus.is_empty() && init.cpus.iter().all(|c| tloc.binary_search(c).is_ok());
        included.then_some(value)
    }
}

/// Node id → hwloc locality (sorted CPU ids).
type Localities = BTreeMap<u32, Vec<u32>>;

fn union_cpus(loc: &Localities, ids: impl Iterator<Item = u32>) -> Vec<u32> {
    let mut v: Vec<u32> = ids.filter_map(|i| loc.get(&i)).flatten().copied().collect();
    v.sort_unstable();
    v.dedup();
    v
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/// The node-bound kinds of memkind 1.14, by the nodemask rule they use. HUGETLB variants
/// share the rule of their base kind (e.g. HBW_HUGETLB → [`Rule::Hbw`]); add the hugepage
/// check ([`Topology::hugetlb_check_available`]) on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// MEMKIND_HBW (and HBW_HUGETLB).
    Hbw,
    /// MEMKIND_HBW_ALL (and HBW_ALL_HUGETLB).
    HbwAll,
    /// MEMKIND_HBW_PREFERRED (and HBW_PREFERRED_HUGETLB).
    HbwPreferred,
    /// MEMKIND_HBW_INTERLEAVE.
    HbwInterleave,
    /// MEMKIND_DAX_KMEM.
    DaxKmem,
    /// MEMKIND_DAX_KMEM_ALL.
    DaxKmemAll,
    /// MEMKIND_DAX_KMEM_PREFERRED.
    DaxKmemPreferred,
    /// MEMKIND_DAX_KMEM_INTERLEAVE.
    DaxKmemInterleave,
    /// MEMKIND_HIGHEST_CAPACITY.
    HighestCapacity,
    /// MEMKIND_HIGHEST_CAPACITY_PREFERRED.
    HighestCapacityPreferred,
    /// MEMKIND_HIGHEST_CAPACITY_LOCAL.
    HighestCapacityLocal,
    /// MEMKIND_HIGHEST_CAPACITY_LOCAL_PREFERRED.
    HighestCapacityLocalPreferred,
    /// MEMKIND_LOWEST_LATENCY_LOCAL.
    LowestLatencyLocal,
    /// MEMKIND_LOWEST_LATENCY_LOCAL_PREFERRED.
    LowestLatencyLocalPreferred,
    /// MEMKIND_HIGHEST_BANDWIDTH_LOCAL.
    HighestBandwidthLocal,
    /// MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED.
    HighestBandwidthLocalPreferred,
    /// MEMKIND_REGULAR.
    Regular,
    /// MEMKIND_INTERLEAVE (its mask is also what DEFAULT's capacity sums).
    Interleave,
}

/// memkind's `memkind_node_variant_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Nearest target(s); ties allowed.
    Multiple,
    /// Nearest target, which must be unique (the *_PREFERRED kinds).
    Single,
    /// All targets.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    Capacity,
    Bandwidth,
    Latency,
}

/// Result of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOutcome {
    /// The kind is unavailable; the `MEMKIND_ERROR_*` code 1.14's check_available returns.
    Unavailable(i32),
    /// The kind is available, with these node masks.
    Available(NodeSets),
}

/// Per initiator node, the node mask to bind to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSets {
    per_node: BTreeMap<u32, Nodemask>,
    fallback: Nodemask,
}

impl NodeSets {
    fn per_node(per_node: BTreeMap<u32, Nodemask>) -> Self {
        let fallback = per_node.values().fold(Nodemask::new(), |a, m| a.union(m));
        NodeSets { per_node, fallback }
    }

    /// The same mask for every CPU node.
    pub fn uniform(mask: Nodemask) -> Self {
        NodeSets {
            per_node: BTreeMap::new(),
            fallback: mask,
        }
    }

    fn global(topo: &Topology, mask: Nodemask) -> Self {
        let per_node = topo.cpu_nodes().iter().map(|n| (n, mask)).collect();
        NodeSets {
            per_node,
            fallback: mask,
        }
    }

    /// The mask for a thread on a CPU of `node`. For a node not in the table (a CPU-less node,
    /// or a CPU that appeared later), the union of all masks: 1.14 would instead hand mbind an
    /// empty mask and fail with MEMKIND_ERROR_MBIND. Global rules return their one mask.
    pub fn for_cpu_node(&self, node: u32) -> Nodemask {
        self.per_node.get(&node).copied().unwrap_or(self.fallback)
    }

    /// The mask for a thread on `cpu` (via [`Topology::node_of_cpu`], else the fallback).
    pub fn for_cpu(&self, topo: &Topology, cpu: u32) -> Nodemask {
        topo.node_of_cpu(cpu)
            .map_or(self.fallback, |n| self.for_cpu_node(n))
    }

    /// The exact table entry for `node`, if any.
    pub fn get(&self, node: u32) -> Option<Nodemask> {
        self.per_node.get(&node).copied()
    }

    /// `(initiator node, mask)` pairs in node order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, Nodemask)> + '_ {
        self.per_node.iter().map(|(&n, &m)| (n, m))
    }

    /// Words of the union of every mask (for the probe's records).
    pub fn fallback_words(&self) -> &[u64] {
        self.fallback.as_words()
    }

    /// Union of every mask (the fallback).
    pub fn union(&self) -> Nodemask {
        self.fallback
    }

    /// memkind_get_capacity for a thread on a CPU of `cpu_node`: 1.14 asks the kind for the
    /// calling thread's nodemask and sums MemTotal over it; `None` is 1.14's -1. (The
    /// *_PREFERRED kinds have no capacity in 1.14: -1; the caller handles that.)
    pub fn capacity(&self, topo: &Topology, cpu_node: u32) -> Option<u64> {
        topo.capacity_of(&self.for_cpu_node(cpu_node))
    }
}

/// Decides, as memkind 1.14 would, whether `rule`'s kind is available on `topo` under `env`
/// and which nodes it binds to.
pub fn resolve(topo: &Topology, env: &EnvConfig, rule: Rule) -> RuleOutcome {
    use Rule::*;
    use Variant::*;
    let result = match rule {
        Hbw => hbw(topo, env, Multiple),
        HbwAll | HbwInterleave => hbw(topo, env, All),
        HbwPreferred => hbw(topo, env, Single),
        DaxKmem => dax_kmem(topo, env, Multiple),
        DaxKmemAll | DaxKmemInterleave => dax_kmem(topo, env, All),
        DaxKmemPreferred => dax_kmem(topo, env, Single),
        HighestCapacity => highest_capacity(topo, Multiple),
        HighestCapacityPreferred => highest_capacity(topo, Single),
        HighestCapacityLocal => local(topo, Attr::Capacity, Multiple),
        HighestCapacityLocalPreferred => local(topo, Attr::Capacity, Single),
        LowestLatencyLocal => local(topo, Attr::Latency, Multiple),
        LowestLatencyLocalPreferred => local(topo, Attr::Latency, Single),
        HighestBandwidthLocal => local(topo, Attr::Bandwidth, Multiple),
        HighestBandwidthLocalPreferred => local(topo, Attr::Bandwidth, Single),
        Regular => Ok(NodeSets::global(topo, regular_mask(topo))),
        // memkind_default_get_mbind_nodemask: numa_all_nodes_ptr; INTERLEAVE has no
        // check_available op, so it is always available.
        Interleave => Ok(NodeSets::global(topo, topo.mems_allowed)),
    };
    match result {
        Ok(sets) => RuleOutcome::Available(sets),
        Err(code) => RuleOutcome::Unavailable(code),
    }
}

/// memkind_hbw.c `memkind_hbw_closest_numanode_init` and friends: env list, else KNL legacy
/// detection, else HMAT (`set_closest_numanode_mem_attr`).
fn hbw(topo: &Topology, env: &EnvConfig, variant: Variant) -> Result<NodeSets, i32> {
    if let Some(spec) = &env.hbw_nodes {
        let mask = env_nodemask(topo, spec)?;
        return closest_from_mask(topo, &mask, variant);
    }
    if topo.is_knl() {
        let mask = legacy_hbw_mask(topo)?;
        return closest_from_mask(topo, &mask, variant);
    }
    hbw_from_hmat(topo, env, variant)
}

/// memkind_dax_kmem.c `memkind_dax_kmem_get_nodemask` + `set_closest_numanode`.
fn dax_kmem(topo: &Topology, env: &EnvConfig, variant: Variant) -> Result<NodeSets, i32> {
    let mask = match &env.dax_kmem_nodes {
        Some(spec) => env_nodemask(topo, spec)?,
        None => {
            // get_dax_kmem_nodemask: bitmask of numa_max_node()+1 bits; empty → UNAVAILABLE.
            let m = topo
                .dax_kmem_nodes
                .intersection(&Nodemask::first_n(topo.max_node() + 1));
            if m.is_empty() {
                return Err(codes::UNAVAILABLE);
            }
            m
        }
    };
    closest_from_mask(topo, &mask, variant)
}

/// memkind_bitmask.c `memkind_env_get_nodemask`: `numa_parse_nodestring` or ENVIRON.
fn env_nodemask(topo: &Topology, spec: &Result<NodeSpec, NodelistError>) -> Result<Nodemask, i32> {
    let spec = spec.as_ref().map_err(|_| codes::ENVIRON)?;
    spec.resolve(&topo.mems_allowed, topo.configured_mem_nodes())
        .map_err(|_| codes::ENVIRON)
}

/// memkind_hbw.c `get_legacy_hbw_nodes_mask`: with 2, 4 or 8 memory nodes, the CPU-less ones
/// among ids `0..count` are HBW, and must be exactly half of them; else UNAVAILABLE.
fn legacy_hbw_mask(topo: &Topology) -> Result<Nodemask, i32> {
    let nodes_num = topo.configured_mem_nodes();
    if ![2, 4, 8].contains(&nodes_num) {
        return Err(codes::UNAVAILABLE);
    }
    // numa_node_to_cpus on a missing id yields a full mask, so only existing nodes qualify.
    let mask: Nodemask = (0..nodes_num)
        .filter(|&i| topo.node(i).is_some_and(|n| n.cpus.is_empty()))
        .collect();
    if 2 * mask.count() == nodes_num {
        Ok(mask)
    } else {
        Err(codes::UNAVAILABLE)
    }
}

/// memkind_bitmask.c `set_closest_numanode`: for each node `0..=max_node` that has CPUs, the
/// destination nodes (ids `<= max_node`) at minimal `numa_distance`, or all of them for
/// `All`; a tie under `Single` is RUNTIME. An initiator may end up with an empty mask (1.14
/// still reports the kind available).
fn closest_from_mask(topo: &Topology, dest: &Nodemask, variant: Variant) -> Result<NodeSets, i32> {
    let dest = dest.intersection(&Nodemask::first_n(topo.max_node() + 1));
    let mut per_node = BTreeMap::new();
    for init in topo.cpu_nodes().iter() {
        let chosen = match variant {
            Variant::All => dest,
            Variant::Multiple | Variant::Single => nearest(topo, init, dest.iter()),
        };
        if variant == Variant::Single && chosen.count() > 1 {
            return Err(codes::RUNTIME);
        }
        per_node.insert(init, chosen);
    }
    Ok(NodeSets::per_node(per_node))
}

/// The candidates at minimal `numa_distance` from `init`.
fn nearest(topo: &Topology, init: u32, candidates: impl Iterator<Item = u32>) -> Nodemask {
    let mut best = u32::MAX;
    let mut out = Nodemask::new();
    for c in candidates {
        let d = topo.numa_distance(init, c);
        if d < best {
            best = d;
            out = Nodemask::single(c);
        } else if d == best {
            out.set(c);
        }
    }
    out
}

/// memkind_mem_attributes.c `set_closest_numanode_mem_attr`: per CPU node, targets whose
/// HMAT bandwidth seen from it is `>= MEMKIND_HBW_THRESHOLD`; nearest of them (or all).
/// No target for some CPU node → MEMTYPE_NOT_AVAILABLE; a tie under `Single` → RUNTIME.
fn hbw_from_hmat(topo: &Topology, env: &EnvConfig, variant: Variant) -> Result<NodeSets, i32> {
    let threshold = match &env.hbw_threshold {
        Some(Ok(t)) => *t,
        Some(Err(_)) => return Err(codes::ENVIRON),
        None => HBW_THRESHOLD_DEFAULT,
    };
    let loc = topo.localities();
    let mut per_node = BTreeMap::new();
    for init in topo.nodes.iter().filter(|n| !n.cpus.is_empty()) {
        let targets = topo.nodes.iter().filter(|t| {
            topo.hmat_value(&loc, init, t, Hmat::bandwidth)
                .is_some_and(|bw| bw >= threshold)
        });
        let chosen = match variant {
            Variant::All => targets.map(|t| t.id).collect(),
            _ => nearest(topo, init.id, targets.map(|t| t.id)),
        };
        if chosen.is_empty() {
            return Err(codes::MEMTYPE_NOT_AVAILABLE);
        }
        if variant == Variant::Single && chosen.count() > 1 {
            return Err(codes::RUNTIME);
        }
        per_node.insert(init.id, chosen);
    }
    Ok(NodeSets::per_node(per_node))
}

/// memkind_capacity.c `memkind_hi_cap_find`: over ids `0..=max_node` with a meminfo, the
/// largest MemTotal (a 0-byte node counts while nothing larger was seen); none →
/// MEMTYPE_NOT_AVAILABLE; a tie under `Single` → MEMTYPE_NOT_AVAILABLE.
fn highest_capacity(topo: &Topology, variant: Variant) -> Result<NodeSets, i32> {
    let mut best = 0u64;
    let mut mask = Nodemask::new();
    for n in &topo.nodes {
        if n.mem_total > best {
            best = n.mem_total;
            mask = Nodemask::new();
        }
        if n.mem_total == best {
            mask.set(n.id);
        }
    }
    if mask.is_empty() || (variant == Variant::Single && mask.count() > 1) {
        return Err(codes::MEMTYPE_NOT_AVAILABLE);
    }
    Ok(NodeSets::global(topo, mask))
}

/// memkind_mem_attributes.c `get_per_cpu_local_nodes_mask`: per CPU node, among the nodes
/// whose hwloc locality equals its CPU set, the best by `attr` (capacity: largest non-zero
/// MemTotal; bandwidth: largest; latency: smallest below INT_MAX; nodes without a value are
/// skipped). No node, or a tie under `Single` → MEMTYPE_NOT_AVAILABLE.
fn local(topo: &Topology, attr: Attr, variant: Variant) -> Result<NodeSets, i32> {
    let loc = topo.localities();
    let mut per_node = BTreeMap::new();
    for init in topo.nodes.iter().filter(|n| !n.cpus.is_empty()) {
        let mut best: Option<u64> = None;
        let mut mask = Nodemask::new();
        for t in topo
            .nodes
            .iter()
            .filter(|t| loc.get(&t.id) == Some(&init.cpus))
        {
            let (value, better): (Option<u64>, fn(u64, u64) -> bool) = match attr {
                Attr::Capacity => (Some(t.mem_total).filter(|&m| m > 0), |v, b| v > b),
                Attr::Bandwidth => (topo.hmat_value(&loc, init, t, Hmat::bandwidth), |v, b| {
                    v > b
                }),
                Attr::Latency => (
                    topo.hmat_value(&loc, init, t, Hmat::latency)
                        .filter(|&l| l < i32::MAX as u64),
                    |v, b| v < b,
                ),
            };
            let Some(v) = value else { continue };
            match best {
                Some(b) if v == b => {
                    mask.set(t.id);
                }
                Some(b) if !better(v, b) => {}
                _ => {
                    best = Some(v);
                    mask = Nodemask::single(t.id);
                }
            }
        }
        if mask.is_empty() || (variant == Variant::Single && mask.count() > 1) {
            return Err(codes::MEMTYPE_NOT_AVAILABLE);
        }
        per_node.insert(init.id, mask);
    }
    Ok(NodeSets::per_node(per_node))
}

/// memkind_regular.c `regular_nodes_init`: ids `0..numa_num_configured_nodes()` (a count of
/// memory nodes, used as an id bound) whose cpumap is non-empty. 1.14 also sets ids with no
/// `nodeN` directory there (libnuma returns a full cpumap for them); the kernel ignores such
/// bits in mbind, so they are left out here.
fn regular_mask(topo: &Topology) -> Nodemask {
    (0..topo.configured_mem_nodes())
        .filter(|&i| topo.node(i).is_some_and(|n| !n.cpus.is_empty()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const GIB_KB: u64 = 1024 * 1024;

    /// A fake sysfs/procfs tree in a temp dir.
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        /// Node-level files; `online` is also `possible` and `has_normal_memory`.
        fn new(online: &str, has_memory: &str, has_cpu: &str) -> Fake {
            let f = Fake {
                dir: tempfile::tempdir().unwrap(),
            };
            let n = "sys/devices/system/node";
            f.write(&format!("{n}/online"), &format!("{online}\n"));
            f.write(&format!("{n}/possible"), &format!("{online}\n"));
            f.write(&format!("{n}/has_memory"), &format!("{has_memory}\n"));
            f.write(&format!("{n}/has_cpu"), &format!("{has_cpu}\n"));
            f.write(
                &format!("{n}/has_normal_memory"),
                &format!("{has_memory}\n"),
            );
            f
        }

        fn write(&self, rel: &str, content: &str) {
            let p = self.dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }

        fn node(&self, id: u32, mem_kb: u64, cpulist: &str, distance: &str) -> &Self {
            let d = format!("sys/devices/system/node/node{id}");
            self.write(
                &format!("{d}/meminfo"),
                &format!("Node {id} MemTotal:       {mem_kb} kB\nNode {id} MemFree:        1 kB\n"),
            );
            self.write(&format!("{d}/cpulist"), &format!("{cpulist}\n"));
            self.write(&format!("{d}/distance"), &format!("{distance}\n"));
            self
        }

        /// HMAT numbers in `access{class}`, initiator links in access0.
        fn hmat(&self, id: u32, class: u8, bw: (u64, u64), lat: (u64, u64), inits: &[u32]) {
            let d = format!("sys/devices/system/node/node{id}");
            let a = format!("{d}/access{class}/initiators");
            self.write(&format!("{a}/read_bandwidth"), &format!("{}\n", bw.0));
            self.write(&format!("{a}/write_bandwidth"), &format!("{}\n", bw.1));
            self.write(&format!("{a}/read_latency"), &format!("{}\n", lat.0));
            self.write(&format!("{a}/write_latency"), &format!("{}\n", lat.1));
            for i in inits {
                fs::create_dir_all(
                    self.dir
                        .path()
                        .join(format!("{d}/access0/initiators/node{i}")),
                )
                .unwrap();
            }
        }

        fn topo(&self) -> Topology {
            Topology::read(self.dir.path()).unwrap()
        }
    }

    fn env(hbw: Option<&str>, dax: Option<&str>, thr: Option<&str>) -> EnvConfig {
        EnvConfig::from_lookup(|k| match k {
            "MEMKIND_HBW_NODES" => hbw.map(String::from),
            "MEMKIND_DAX_KMEM_NODES" => dax.map(String::from),
            "MEMKIND_HBW_THRESHOLD" => thr.map(String::from),
            _ => None,
        })
    }

    fn no_env() -> EnvConfig {
        EnvConfig::default()
    }

    fn nm(s: &str) -> Nodemask {
        Nodemask::parse_sysfs_list(s).unwrap()
    }

    /// The per-node table as "node:mask" strings, e.g. ["0:1", "1:1"].
    fn table(o: &RuleOutcome) -> Vec<String> {
        match o {
            RuleOutcome::Available(s) => s.iter().map(|(n, m)| format!("{n}:{m}")).collect(),
            RuleOutcome::Unavailable(c) => panic!("unavailable {c}"),
        }
    }

    fn sets(o: RuleOutcome) -> NodeSets {
        match o {
            RuleOutcome::Available(s) => s,
            RuleOutcome::Unavailable(c) => panic!("unavailable {c}"),
        }
    }

    fn unavailable(o: &RuleOutcome) -> i32 {
        match o {
            RuleOutcome::Unavailable(c) => *c,
            RuleOutcome::Available(s) => panic!("available: {s:?}"),
        }
    }

    fn one_node() -> Fake {
        let f = Fake::new("0", "0", "0");
        f.node(0, 8 * GIB_KB, "0-1", "10");
        f.write(
            "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
            "0\n",
        );
        f.write(
            "sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages",
            "0\n",
        );
        f.write(
            "sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
            "0\n",
        );
        f.write(
            "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages",
            "0\n",
        );
        f.write(
            "sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages",
            "0\n",
        );
        f.write(
            "proc/cpuinfo",
            "processor\t: 0\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: X\n",
        );
        f
    }

    #[test]
    fn one_node_like_this_host() {
        let t = one_node().topo();
        assert_eq!(t.nodes.len(), 1);
        assert_eq!(t.node(0).unwrap().mem_total, 8 << 30);
        assert_eq!(t.node(0).unwrap().cpus, vec![0, 1]);
        assert_eq!(t.node_of_cpu(1), Some(0));
        assert_eq!(t.node_of_cpu(2), None);
        assert_eq!(t.distance(0, 0), Some(10));
        assert_eq!(t.mems_allowed, nm("0"));
        assert_eq!(t.cpu_model, Some((26, 2)));
        assert!(!t.is_knl());
        let e = no_env();
        // The notes' observed 1.14 behaviour on a 1-node host without HBW / HMAT / dax.
        for r in [
            Rule::Hbw,
            Rule::HbwAll,
            Rule::HbwPreferred,
            Rule::HbwInterleave,
        ] {
            assert_eq!(
                unavailable(&resolve(&t, &e, r)),
                codes::MEMTYPE_NOT_AVAILABLE,
                "{r:?}"
            );
        }
        for r in [
            Rule::DaxKmem,
            Rule::DaxKmemAll,
            Rule::DaxKmemPreferred,
            Rule::DaxKmemInterleave,
        ] {
            assert_eq!(
                unavailable(&resolve(&t, &e, r)),
                codes::UNAVAILABLE,
                "{r:?}"
            );
        }
        for r in [
            Rule::LowestLatencyLocal,
            Rule::LowestLatencyLocalPreferred,
            Rule::HighestBandwidthLocal,
            Rule::HighestBandwidthLocalPreferred,
        ] {
            assert_eq!(
                unavailable(&resolve(&t, &e, r)),
                codes::MEMTYPE_NOT_AVAILABLE,
                "{r:?}"
            );
        }
        for r in [
            Rule::HighestCapacity,
            Rule::HighestCapacityPreferred,
            Rule::HighestCapacityLocal,
            Rule::HighestCapacityLocalPreferred,
            Rule::Regular,
            Rule::Interleave,
        ] {
            let s = sets(resolve(&t, &e, r));
            assert_eq!(s.for_cpu_node(0), nm("0"), "{r:?}");
            assert_eq!(s.capacity(&t, 0), Some(8 << 30), "{r:?}");
        }
        // HUGETLB with nothing reserved: -18; capacity 0.
        assert_eq!(
            t.hugetlb_check_available(HUGEPAGE_2M_KB, &nm("0")),
            Err(codes::HUGETLB)
        );
        assert_eq!(t.hugetlb_capacity(), Ok(0));
        assert_eq!(
            t.hugetlb_check_available(HUGEPAGE_1G_KB, &nm("0")),
            Err(codes::HUGETLB)
        );
    }

    #[test]
    fn real_root_has_node0() {
        let t = match Topology::read(Path::new("/")) {
            Ok(t) => t,
            Err(e) if !Path::new("/sys/devices/system/node/online").exists() => {
                eprintln!("skipping: no NUMA sysfs on this host ({e})");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let n0 = t.node(0).expect("node 0");
        assert!(n0.mem_total > 0);
        assert!(t.online.contains(0));
        assert!(!t.cpu_nodes().is_empty());
        // Global rules never depend on HMAT or env.
        let s = sets(resolve(&t, &no_env(), Rule::Interleave));
        assert!(!s.union().is_empty());
        if t.nodes.len() == 1 && n0.hmat.is_none() && !t.is_knl() {
            let e = no_env();
            assert_eq!(unavailable(&resolve(&t, &e, Rule::Hbw)), -20);
            assert_eq!(table(&resolve(&t, &e, Rule::Regular)), vec!["0:0"]);
            if t.dax_kmem_nodes.is_empty() {
                assert_eq!(unavailable(&resolve(&t, &e, Rule::DaxKmem)), -1);
            }
        }
    }

    /// Node 0: CPUs + DDR; node 1: CPU-less (HBM or PMEM).
    fn two_nodes() -> Fake {
        let f = Fake::new("0-1", "0-1", "0");
        f.node(0, 16 * GIB_KB, "0-3", "10 21")
            .node(1, 4 * GIB_KB, "", "21 10");
        f
    }

    #[test]
    fn two_nodes_hbw_by_env() {
        let t = two_nodes().topo();
        assert_eq!(t.cpu_nodes(), nm("0"));
        let e = env(Some("1"), None, None);
        for r in [
            Rule::Hbw,
            Rule::HbwAll,
            Rule::HbwPreferred,
            Rule::HbwInterleave,
        ] {
            let s = sets(resolve(&t, &e, r));
            assert_eq!(s.iter().count(), 1, "only CPU nodes are initiators");
            assert_eq!(s.get(0), Some(nm("1")), "{r:?}");
            // CPU-less node 1 is not in the table: fallback = union.
            assert_eq!(s.get(1), None);
            assert_eq!(s.for_cpu_node(1), nm("1"));
            assert_eq!(s.for_cpu(&t, 3), nm("1"));
            assert_eq!(s.capacity(&t, 0), Some(4 << 30));
        }
        // Env problems: ENVIRON, not a fallback to detection.
        for bad in ["2", "x", "1-0", "0-2"] {
            let e = env(Some(bad), None, None);
            assert_eq!(
                unavailable(&resolve(&t, &e, Rule::Hbw)),
                codes::ENVIRON,
                "{bad:?}"
            );
        }
        // The empty string is the empty set (libnuma): available, no nodes, capacity 0; the
        // preferred variant too (no node at all is not a tie). " 0" is node 0 (strtoul).
        let e = env(Some(""), None, None);
        for r in [Rule::Hbw, Rule::HbwAll, Rule::HbwPreferred] {
            assert_eq!(table(&resolve(&t, &e, r)), vec!["0:"], "{r:?}");
        }
        assert_eq!(sets(resolve(&t, &e, Rule::Hbw)).capacity(&t, 0), Some(0));
        let e = env(Some(" 0"), None, None);
        assert_eq!(table(&resolve(&t, &e, Rule::Hbw)), vec!["0:0"]);
        // "all" → both nodes; node 0 is nearer to itself.
        let e = env(Some("all"), None, None);
        assert_eq!(table(&resolve(&t, &e, Rule::Hbw)), vec!["0:0"]);
        assert_eq!(table(&resolve(&t, &e, Rule::HbwAll)), vec!["0:0-1"]);
        // "!0" flips 0..2 → {1}.
        let e = env(Some("!0"), None, None);
        assert_eq!(table(&resolve(&t, &e, Rule::Hbw)), vec!["0:1"]);
        // No env, no HMAT, not KNL → MEMTYPE_NOT_AVAILABLE.
        assert_eq!(unavailable(&resolve(&t, &no_env(), Rule::Hbw)), -20);
        // Other rules on this machine.
        let e = no_env();
        assert_eq!(table(&resolve(&t, &e, Rule::Regular)), vec!["0:0"]);
        assert_eq!(table(&resolve(&t, &e, Rule::Interleave)), vec!["0:0-1"]);
        assert_eq!(table(&resolve(&t, &e, Rule::HighestCapacity)), vec!["0:0"]);
        let s = sets(resolve(&t, &e, Rule::Interleave));
        assert_eq!(s.capacity(&t, 0), Some(20 << 30));
        // DAX via env.
        let e = env(None, Some("1"), None);
        assert_eq!(table(&resolve(&t, &e, Rule::DaxKmem)), vec!["0:1"]);
        assert_eq!(table(&resolve(&t, &e, Rule::DaxKmemPreferred)), vec!["0:1"]);
        assert_eq!(
            unavailable(&resolve(&t, &env(None, Some("5"), None), Rule::DaxKmem)),
            -12
        );
    }

    #[test]
    fn preferred_tie_is_runtime_error() {
        let f = Fake::new("0-2", "0-2", "0");
        f.node(0, GIB_KB, "0", "10 20 20")
            .node(1, GIB_KB, "", "20 10 20")
            .node(2, GIB_KB, "", "20 20 10");
        let t = f.topo();
        let e = env(Some("1,2"), None, None);
        assert_eq!(table(&resolve(&t, &e, Rule::Hbw)), vec!["0:1-2"]);
        assert_eq!(
            unavailable(&resolve(&t, &e, Rule::HbwPreferred)),
            codes::RUNTIME
        );
        // HIGHEST_CAPACITY tie: fine for the multi-node kind, -20 for PREFERRED.
        assert_eq!(
            table(&resolve(&t, &e, Rule::HighestCapacity)),
            vec!["0:0-2"]
        );
        assert_eq!(
            unavailable(&resolve(&t, &e, Rule::HighestCapacityPreferred)),
            -20
        );
    }

    /// Knights Landing SNC-4 flat: DDR nodes 0-3 with CPUs, MCDRAM nodes 4-7 CPU-less.
    fn knl(family_model: (u32, u32)) -> Fake {
        let f = Fake::new("0-7", "0-7", "0-3");
        let rows = [
            "10 21 21 21 31 41 41 41",
            "21 10 21 21 41 31 41 41",
            "21 21 10 21 41 41 31 41",
            "21 21 21 10 41 41 41 31",
            "31 41 41 41 10 41 41 41",
            "41 31 41 41 41 10 41 41",
            "41 41 31 41 41 41 10 41",
            "41 41 41 31 41 41 41 10",
        ];
        for (i, row) in rows.iter().enumerate() {
            let i = i as u32;
            if i < 4 {
                let cpus = format!("{}-{}", i * 16, i * 16 + 15);
                f.node(i, 24 * GIB_KB, &cpus, row);
            } else {
                f.node(i, 4 * GIB_KB, "", row);
            }
        }
        f.write(
            "proc/cpuinfo",
            &format!(
                "processor\t: 0\ncpu family\t: {}\nmodel\t\t: {}\n",
                family_model.0, family_model.1
            ),
        );
        f
    }

    #[test]
    fn knl_legacy_detection() {
        let t = knl((6, 0x57)).topo();
        assert!(t.is_knl());
        let e = no_env();
        let want = vec!["0:4", "1:5", "2:6", "3:7"];
        assert_eq!(table(&resolve(&t, &e, Rule::Hbw)), want);
        assert_eq!(table(&resolve(&t, &e, Rule::HbwPreferred)), want);
        assert_eq!(
            table(&resolve(&t, &e, Rule::HbwAll)),
            vec!["0:4-7", "1:4-7", "2:4-7", "3:4-7"]
        );
        let s = sets(resolve(&t, &e, Rule::Hbw));
        assert_eq!(s.for_cpu(&t, 17), nm("5"));
        assert_eq!(s.capacity(&t, 2), Some(4 << 30));
        // Regular = CPU nodes; global capacity tie among DDR nodes.
        assert_eq!(sets(resolve(&t, &e, Rule::Regular)).union(), nm("0-3"));
        assert_eq!(
            sets(resolve(&t, &e, Rule::HighestCapacity)).union(),
            nm("0-3")
        );
        assert_eq!(
            unavailable(&resolve(&t, &e, Rule::HighestCapacityPreferred)),
            -20
        );
        // hwloc attaches MCDRAM i+4 to DDR i by distance: local capacity picks the DDR node.
        assert_eq!(
            table(&resolve(&t, &e, Rule::HighestCapacityLocal)),
            vec!["0:0", "1:1", "2:2", "3:3"]
        );
        // Env overrides detection.
        let e = env(Some("4-5"), None, None);
        assert_eq!(
            table(&resolve(&t, &e, Rule::Hbw)),
            vec!["0:4", "1:5", "2:4-5", "3:4-5"]
        );
        // Knights Mill too; any other CPU goes to HMAT, which is absent here.
        assert!(knl((6, 0x85)).topo().is_knl());
        let t = knl((6, 0x55)).topo();
        assert_eq!(unavailable(&resolve(&t, &no_env(), Rule::Hbw)), -20);
    }

    #[test]
    fn knl_legacy_rejects_odd_layouts() {
        // 3 memory nodes: not 2/4/8 → UNAVAILABLE.
        let f = Fake::new("0-2", "0-2", "0-1");
        f.node(0, GIB_KB, "0", "10 20 20")
            .node(1, GIB_KB, "1", "20 10 20")
            .node(2, GIB_KB, "", "20 20 10");
        f.write("proc/cpuinfo", "cpu family\t: 6\nmodel\t\t: 87\n");
        assert_eq!(
            unavailable(&resolve(&f.topo(), &no_env(), Rule::Hbw)),
            codes::UNAVAILABLE
        );
        // 2 nodes, both with CPUs: no CPU-less half → UNAVAILABLE.
        let f = Fake::new("0-1", "0-1", "0-1");
        f.node(0, GIB_KB, "0", "10 20")
            .node(1, GIB_KB, "1", "20 10");
        f.write("proc/cpuinfo", "cpu family\t: 6\nmodel\t\t: 87\n");
        assert_eq!(
            unavailable(&resolve(&f.topo(), &no_env(), Rule::Hbw)),
            codes::UNAVAILABLE
        );
    }

    /// Node 0: CPUs, DDR 100 GB/s; node 1: CPU-less HBM 300 GB/s whose initiator is node 0;
    /// node 2: CPUs, DDR, no HMAT data.
    fn hmat_machine() -> Fake {
        let f = Fake::new("0-2", "0-2", "0,2");
        f.node(0, 32 * GIB_KB, "0-1", "10 11 20")
            .node(1, 8 * GIB_KB, "", "11 10 20")
            .node(2, 32 * GIB_KB, "2-3", "20 20 10");
        f.hmat(0, 1, (100_000, 100_000), (100, 100), &[0]);
        f.hmat(1, 1, (300_000, 310_000), (150, 170), &[0]);
        f
    }

    #[test]
    fn hmat_bandwidth_threshold() {
        let f = hmat_machine();
        let t = f.topo();
        let h1 = t.node(1).unwrap().hmat.clone().unwrap();
        assert_eq!(
            (h1.access_class, h1.bandwidth(), h1.latency()),
            (1, Some(305_000), Some(160))
        );
        assert_eq!(h1.initiators, nm("0"));
        // Node 2 sees no HBW node → the whole kind is unavailable (1.14 semantics).
        assert_eq!(unavailable(&resolve(&t, &no_env(), Rule::Hbw)), -20);
        assert_eq!(unavailable(&resolve(&t, &no_env(), Rule::HbwAll)), -20);

        // Same machine without node 2.
        let f = Fake::new("0-1", "0-1", "0");
        f.node(0, 32 * GIB_KB, "0-1", "10 11")
            .node(1, 8 * GIB_KB, "", "11 10");
        f.hmat(0, 1, (100_000, 100_000), (100, 100), &[0]);
        f.hmat(1, 1, (300_000, 310_000), (150, 170), &[0]);
        let t = f.topo();
        let e = no_env();
        assert_eq!(table(&resolve(&t, &e, Rule::Hbw)), vec!["0:1"]);
        assert_eq!(table(&resolve(&t, &e, Rule::HbwPreferred)), vec!["0:1"]);
        // Threshold above node 1 → none; below node 0 → both, nearest is node 0.
        let hi = env(None, None, Some("305001"));
        assert_eq!(unavailable(&resolve(&t, &hi, Rule::Hbw)), -20);
        let eq = env(None, None, Some("305000"));
        assert_eq!(table(&resolve(&t, &eq, Rule::Hbw)), vec!["0:1"]);
        let lo = env(None, None, Some("1000"));
        assert_eq!(table(&resolve(&t, &lo, Rule::Hbw)), vec!["0:0"]);
        assert_eq!(table(&resolve(&t, &lo, Rule::HbwAll)), vec!["0:0-1"]);
        assert_eq!(table(&resolve(&t, &lo, Rule::HbwInterleave)), vec!["0:0-1"]);
        // Bad threshold → ENVIRON; MEMKIND_HBW_NODES short-circuits HMAT (threshold unused).
        let bad = env(None, None, Some("12MB"));
        assert_eq!(unavailable(&resolve(&t, &bad, Rule::Hbw)), codes::ENVIRON);
        let bad_but_env = env(Some("0"), None, Some("12MB"));
        assert_eq!(table(&resolve(&t, &bad_but_env, Rule::Hbw)), vec!["0:0"]);
        // Local kinds: node 1 is local to node 0 via its HMAT initiator.
        assert_eq!(
            table(&resolve(&t, &e, Rule::HighestBandwidthLocal)),
            vec!["0:1"]
        );
        assert_eq!(
            table(&resolve(&t, &e, Rule::LowestLatencyLocal)),
            vec!["0:0"]
        );
        assert_eq!(
            table(&resolve(&t, &e, Rule::HighestCapacityLocal)),
            vec!["0:0"]
        );
        assert_eq!(
            table(&resolve(&t, &e, Rule::LowestLatencyLocalPreferred)),
            vec!["0:0"]
        );
    }

    #[test]
    fn hmat_access0_only_and_missing_write_side() {
        let f = Fake::new("0-1", "0-1", "0");
        f.node(0, GIB_KB, "0", "10 20").node(1, GIB_KB, "", "20 10");
        f.hmat(1, 0, (400_000, 400_000), (50, 50), &[0]);
        // Node 0 has only read numbers: no combined bandwidth (hwloc needs both).
        f.write(
            "sys/devices/system/node/node0/access0/initiators/read_bandwidth",
            "500000\n",
        );
        let t = f.topo();
        assert_eq!(t.node(1).unwrap().hmat.as_ref().unwrap().access_class, 0);
        assert_eq!(t.node(0).unwrap().hmat.as_ref().unwrap().bandwidth(), None);
        assert_eq!(table(&resolve(&t, &no_env(), Rule::Hbw)), vec!["0:1"]);
        // Equal latency/bandwidth ties between local nodes: fine, PREFERRED is -20.
        f.hmat(0, 0, (400_000, 400_000), (50, 50), &[0]);
        let t = f.topo();
        assert_eq!(
            table(&resolve(&t, &no_env(), Rule::HighestBandwidthLocal)),
            vec!["0:0-1"]
        );
        assert_eq!(
            unavailable(&resolve(
                &t,
                &no_env(),
                Rule::HighestBandwidthLocalPreferred
            )),
            -20
        );
    }

    #[test]
    fn dax_kmem_from_sysfs() {
        let f = two_nodes();
        let root = f.dir.path();
        f.write("sys/bus/dax/drivers/kmem/.keep", "");
        f.write("sys/bus/dax/drivers/device_dax/.keep", "");
        f.write("sys/bus/dax/devices/dax0.0/target_node", "1\n");
        f.write("sys/bus/dax/devices/dax1.0/target_node", "0\n");
        symlink(
            root.join("sys/bus/dax/drivers/kmem"),
            root.join("sys/bus/dax/devices/dax0.0/driver"),
        )
        .unwrap();
        symlink(
            root.join("sys/bus/dax/drivers/device_dax"),
            root.join("sys/bus/dax/devices/dax1.0/driver"),
        )
        .unwrap();
        // An unbound device: no driver link.
        f.write("sys/bus/dax/devices/dax2.0/target_node", "0\n");
        let t = f.topo();
        assert_eq!(t.dax_kmem_nodes, nm("1"));
        let e = no_env();
        for r in [
            Rule::DaxKmem,
            Rule::DaxKmemAll,
            Rule::DaxKmemPreferred,
            Rule::DaxKmemInterleave,
        ] {
            let s = sets(resolve(&t, &e, r));
            assert_eq!(s.get(0), Some(nm("1")), "{r:?}");
            assert_eq!(s.capacity(&t, 0), Some(4 << 30));
        }
        // Env overrides sysfs.
        let e = env(None, Some("0"), None);
        assert_eq!(table(&resolve(&t, &e, Rule::DaxKmem)), vec!["0:0"]);
    }

    #[test]
    fn hugepages() {
        let f = two_nodes();
        let hp = "sys/kernel/mm/hugepages";
        f.write(&format!("{hp}/hugepages-2048kB/nr_hugepages"), "7\n");
        f.write(&format!("{hp}/hugepages-2048kB/free_hugepages"), "6\n");
        f.write(
            &format!("{hp}/hugepages-2048kB/nr_overcommit_hugepages"),
            "3\n",
        );
        f.write(&format!("{hp}/hugepages-1048576kB/nr_hugepages"), "1\n");
        let n = "sys/devices/system/node";
        f.write(
            &format!("{n}/node0/hugepages/hugepages-2048kB/nr_hugepages"),
            "5\n",
        );
        f.write(
            &format!("{n}/node0/hugepages/hugepages-2048kB/free_hugepages"),
            "4\n",
        );
        f.write(
            &format!("{n}/node1/hugepages/hugepages-2048kB/nr_hugepages"),
            "2\n",
        );
        f.write(
            &format!("{n}/node1/hugepages/hugepages-1048576kB/nr_hugepages"),
            "1\n",
        );
        f.write("proc/sys/vm/nr_hugepages", "7\n");
        f.write("proc/sys/vm/nr_overcommit_hugepages", "3\n");
        let t = f.topo();
        assert_eq!(t.vm_nr_hugepages, Some(7));
        assert_eq!(t.vm_nr_overcommit_hugepages, Some(3));
        let pools = t.hugepage_pools.clone().unwrap();
        assert_eq!(pools.len(), 2);
        assert_eq!(
            t.node(0).unwrap().hugepages,
            vec![NodeHugepages {
                size_kb: 2048,
                nr: 5,
                free: 4
            }]
        );
        assert_eq!(t.hugetlb_pages(HUGEPAGE_2M_KB, &nm("0-1")), Ok((7, 3)));
        assert_eq!(t.hugetlb_pages(HUGEPAGE_2M_KB, &nm("1")), Ok((2, 3)));
        assert_eq!(t.hugetlb_capacity(), Ok(10 << 21));
        assert_eq!(t.hugetlb_check_available(HUGEPAGE_2M_KB, &nm("0")), Ok(()));
        assert_eq!(t.hugetlb_pages(HUGEPAGE_1G_KB, &nm("0-1")), Ok((1, 0)));
        assert_eq!(t.hugetlb_pages(64, &nm("0")), Err(codes::HUGETLB));
        // No /sys/kernel/mm/hugepages at all.
        let t = two_nodes().topo();
        assert_eq!(t.hugepage_pools, None);
        assert_eq!(t.hugetlb_capacity(), Err(codes::HUGETLB));
    }

    #[test]
    fn mems_allowed_from_status() {
        let f = two_nodes();
        f.write(
            "proc/self/status",
            "Name:\tx\nMems_allowed:\t00000001\nMems_allowed_list:\t0\n",
        );
        let t = f.topo();
        assert_eq!(t.mems_allowed, nm("0"));
        assert_eq!(
            table(&resolve(&t, &no_env(), Rule::Interleave)),
            vec!["0:0"]
        );
        // Node 1 is not allowed: MEMKIND_HBW_NODES=1 is rejected like libnuma does.
        assert_eq!(
            unavailable(&resolve(&t, &env(Some("1"), None, None), Rule::Hbw)),
            -12
        );
    }

    #[test]
    fn regular_uses_count_as_id_bound() {
        // Sparse ids {0, 2}: count of memory nodes is 2, so 1.14 only looks at ids 0 and 1.
        let f = Fake::new("0,2", "0,2", "0,2");
        f.node(0, GIB_KB, "0", "10 20")
            .node(2, GIB_KB, "1", "20 10");
        let t = f.topo();
        assert_eq!(t.distance(2, 0), Some(20));
        assert_eq!(t.distance(0, 2), Some(20));
        assert_eq!(t.distance(0, 1), None);
        assert_eq!(
            table(&resolve(&t, &no_env(), Rule::Regular)),
            vec!["0:0", "2:0"]
        );
        assert_eq!(
            sets(resolve(&t, &no_env(), Rule::Interleave)).union(),
            nm("0,2")
        );
    }

    #[test]
    fn malformed_files_are_errors() {
        let path_of = |e: TopologyError| match e {
            TopologyError::Io { path, .. } | TopologyError::Parse { path, .. } => path,
        };
        // Garbage meminfo.
        let f = one_node();
        f.write(
            "sys/devices/system/node/node0/meminfo",
            "Node 0 MemTotal: lots kB\n",
        );
        let e = Topology::read(f.dir.path()).unwrap_err();
        assert!(matches!(e, TopologyError::Parse { .. }), "{e}");
        assert!(path_of(e).ends_with("node0/meminfo"));
        // No MemTotal line at all.
        f.write(
            "sys/devices/system/node/node0/meminfo",
            "Node 0 MemFree: 1 kB\n",
        );
        assert!(matches!(
            Topology::read(f.dir.path()),
            Err(TopologyError::Parse { .. })
        ));
        // Missing distance.
        let f = one_node();
        fs::remove_file(f.dir.path().join("sys/devices/system/node/node0/distance")).unwrap();
        let e = Topology::read(f.dir.path()).unwrap_err();
        assert!(e.to_string().contains("node0/distance"), "{e}");
        assert!(matches!(e, TopologyError::Io { .. }));
        // Distance count does not match online nodes.
        let f = one_node();
        f.write("sys/devices/system/node/node0/distance", "10 20\n");
        assert!(matches!(
            Topology::read(f.dir.path()),
            Err(TopologyError::Parse { .. })
        ));
        f.write("sys/devices/system/node/node0/distance", "ten\n");
        assert!(matches!(
            Topology::read(f.dir.path()),
            Err(TopologyError::Parse { .. })
        ));
        // Garbage node list, cpulist, hugepage count, HMAT value, dax target_node.
        for (file, bad) in [
            ("sys/devices/system/node/has_cpu", "zero\n"),
            ("sys/devices/system/node/node0/cpulist", "1-0\n"),
            (
                "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages",
                "many\n",
            ),
            (
                "sys/devices/system/node/node0/access0/initiators/read_bandwidth",
                "fast\n",
            ),
            (
                "sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages",
                "-1\n",
            ),
        ] {
            let f = one_node();
            f.write(file, bad);
            let e = Topology::read(f.dir.path()).unwrap_err();
            assert!(path_of(e).ends_with(file), "{file}");
        }
        // Missing node-level file and missing root.
        let f = one_node();
        fs::remove_file(f.dir.path().join("sys/devices/system/node/online")).unwrap();
        assert!(matches!(
            Topology::read(f.dir.path()),
            Err(TopologyError::Io { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(Topology::read(empty.path()).is_err());
        // A node dir without nodes.
        let f = Fake::new("0", "0", "0");
        assert!(matches!(
            Topology::read(f.dir.path()),
            Err(TopologyError::Parse { .. })
        ));
    }

    #[test]
    fn threshold_parsing() {
        assert_eq!(parse_threshold("204800"), Ok(204_800));
        assert_eq!(parse_threshold("0"), Ok(0));
        assert_eq!(parse_threshold(" 7"), Ok(7));
        assert_eq!(parse_threshold("+7"), Ok(7));
        assert_eq!(parse_threshold("-0"), Ok(0));
        assert_eq!(parse_threshold("4294967295"), Ok(4_294_967_295));
        for bad in [
            "",
            " ",
            "4294967296",
            "-1",
            "7 ",
            "7MB",
            "0x10",
            "1e3",
            "99999999999999999999",
        ] {
            assert!(parse_threshold(bad).is_err(), "{bad:?}");
        }
    }
}
