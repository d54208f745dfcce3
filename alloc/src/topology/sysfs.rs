//! The sysfs / procfs reader: [`Topology::read`] under an injectable root (`/` in production, a
//! temp dir in tests), and the queries on a snapshot (hugepages, capacity, locality).

use super::*;

pub(super) fn io_err(path: &Path, source: io::Error) -> TopologyError {
    TopologyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn parse_err(path: &Path, what: impl Into<String>) -> TopologyError {
    TopologyError::Parse {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

pub(super) fn read_string(path: &Path) -> Result<String, TopologyError> {
    fs::read_to_string(path).map_err(|e| io_err(path, e))
}

/// `Ok(None)` if the file does not exist.
pub(super) fn read_opt_string(path: &Path) -> Result<Option<String>, TopologyError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

pub(super) fn parse_u64_text(path: &Path, s: &str) -> Result<u64, TopologyError> {
    s.trim()
        .parse()
        .map_err(|_| parse_err(path, format!("expected a number, got {:?}", s.trim())))
}

pub(super) fn read_opt_u64(path: &Path) -> Result<Option<u64>, TopologyError> {
    read_opt_string(path)?
        .map(|s| parse_u64_text(path, &s))
        .transpose()
}

pub(super) fn read_nodelist(path: &Path) -> Result<Nodemask, TopologyError> {
    let s = read_string(path)?;
    Nodemask::parse_sysfs_list(&s).map_err(|e| parse_err(path, e.to_string()))
}

/// Entries of a directory whose names are `prefix<number><suffix>`, as `(number, path)`;
/// `Ok(empty)` if the directory does not exist.
pub(super) fn numbered_entries(
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
pub(super) fn parse_cpulist(path: &Path, s: &str) -> Result<Vec<u32>, TopologyError> {
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
pub(super) fn parse_meminfo_total(path: &Path, s: &str) -> Result<u64, TopologyError> {
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

pub(super) fn read_hmat(node_dir: &Path) -> Result<Option<Hmat>, TopologyError> {
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

pub(super) fn read_node_hugepages(node_dir: &Path) -> Result<Vec<NodeHugepages>, TopologyError> {
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

pub(super) fn read_pools(root: &Path) -> Result<Option<Vec<HugepagePool>>, TopologyError> {
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
pub(super) fn read_dax_kmem(root: &Path) -> Result<Nodemask, TopologyError> {
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

pub(super) fn read_cpu_model(root: &Path) -> Result<Option<(u32, u32)>, TopologyError> {
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

pub(super) fn read_mems_allowed(root: &Path) -> Result<Option<Nodemask>, TopologyError> {
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
    #[cfg(test)]
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
    pub(super) fn numa_distance(&self, a: u32, b: u32) -> u32 {
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
        let pools = self.hugepage_pools.as_ref().ok_or(code::HUGETLB)?;
        let pool = pools
            .iter()
            .find(|p| p.size_kb == size_kb)
            .ok_or(code::HUGETLB)?;
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
            (0, 0) => Err(code::HUGETLB),
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
    pub(super) fn localities(&self) -> Localities {
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
    pub(super) fn hmat_value(
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
pub(super) type Localities = BTreeMap<u32, Vec<u32>>;

pub(super) fn union_cpus(loc: &Localities, ids: impl Iterator<Item = u32>) -> Vec<u32> {
    let mut v: Vec<u32> = ids.filter_map(|i| loc.get(&i)).flatten().copied().collect();
    v.sort_unstable();
    v.dedup();
    v
}
