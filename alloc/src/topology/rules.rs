//! memkind 1.14's node-set rules: [`resolve`] is a pure function of a [`Topology`] snapshot,
//! the environment and a [`Rule`] (see the parent module for the rules, one line each).

use super::*;

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
pub(super) enum Variant {
    /// Nearest target(s); ties allowed.
    Multiple,
    /// Nearest target, which must be unique (the *_PREFERRED kinds).
    Single,
    /// All targets.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attr {
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
    #[cfg(test)]
    pub fn for_cpu(&self, topo: &Topology, cpu: u32) -> Nodemask {
        topo.node_of_cpu(cpu)
            .map_or(self.fallback, |n| self.for_cpu_node(n))
    }

    /// The exact table entry for `node`, if any.
    #[cfg(test)]
    pub fn get(&self, node: u32) -> Option<Nodemask> {
        self.per_node.get(&node).copied()
    }

    /// `(initiator node, mask)` pairs in node order.
    #[cfg(test)]
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
pub(super) fn hbw(topo: &Topology, env: &EnvConfig, variant: Variant) -> Result<NodeSets, i32> {
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
pub(super) fn dax_kmem(
    topo: &Topology,
    env: &EnvConfig,
    variant: Variant,
) -> Result<NodeSets, i32> {
    let mask = match &env.dax_kmem_nodes {
        Some(spec) => env_nodemask(topo, spec)?,
        None => {
            // get_dax_kmem_nodemask: bitmask of numa_max_node()+1 bits; empty → UNAVAILABLE.
            let m = topo
                .dax_kmem_nodes
                .intersection(&Nodemask::first_n(topo.max_node() + 1));
            if m.is_empty() {
                return Err(code::UNAVAILABLE);
            }
            m
        }
    };
    closest_from_mask(topo, &mask, variant)
}

/// memkind_bitmask.c `memkind_env_get_nodemask`: `numa_parse_nodestring` or ENVIRON.
pub(super) fn env_nodemask(
    topo: &Topology,
    spec: &Result<NodeSpec, NodelistError>,
) -> Result<Nodemask, i32> {
    let spec = spec.as_ref().map_err(|_| code::ENVIRON)?;
    spec.resolve(&topo.mems_allowed, topo.configured_mem_nodes())
        .map_err(|_| code::ENVIRON)
}

/// memkind_hbw.c `get_legacy_hbw_nodes_mask`: with 2, 4 or 8 memory nodes, the CPU-less ones
/// among ids `0..count` are HBW, and must be exactly half of them; else UNAVAILABLE.
pub(super) fn legacy_hbw_mask(topo: &Topology) -> Result<Nodemask, i32> {
    let nodes_num = topo.configured_mem_nodes();
    if ![2, 4, 8].contains(&nodes_num) {
        return Err(code::UNAVAILABLE);
    }
    // numa_node_to_cpus on a missing id yields a full mask, so only existing nodes qualify.
    let mask: Nodemask = (0..nodes_num)
        .filter(|&i| topo.node(i).is_some_and(|n| n.cpus.is_empty()))
        .collect();
    if 2 * mask.count() == nodes_num {
        Ok(mask)
    } else {
        Err(code::UNAVAILABLE)
    }
}

/// memkind_bitmask.c `set_closest_numanode`: for each node `0..=max_node` that has CPUs, the
/// destination nodes (ids `<= max_node`) at minimal `numa_distance`, or all of them for
/// `All`; a tie under `Single` is RUNTIME. An initiator may end up with an empty mask (1.14
/// still reports the kind available).
pub(super) fn closest_from_mask(
    topo: &Topology,
    dest: &Nodemask,
    variant: Variant,
) -> Result<NodeSets, i32> {
    let dest = dest.intersection(&Nodemask::first_n(topo.max_node() + 1));
    let mut per_node = BTreeMap::new();
    for init in topo.cpu_nodes().iter() {
        let chosen = match variant {
            Variant::All => dest,
            Variant::Multiple | Variant::Single => nearest(topo, init, dest.iter()),
        };
        if variant == Variant::Single && chosen.count() > 1 {
            return Err(code::RUNTIME);
        }
        per_node.insert(init, chosen);
    }
    Ok(NodeSets::per_node(per_node))
}

/// The candidates at minimal `numa_distance` from `init`.
pub(super) fn nearest(
    topo: &Topology,
    init: u32,
    candidates: impl Iterator<Item = u32>,
) -> Nodemask {
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
pub(super) fn hbw_from_hmat(
    topo: &Topology,
    env: &EnvConfig,
    variant: Variant,
) -> Result<NodeSets, i32> {
    let threshold = match &env.hbw_threshold {
        Some(Ok(t)) => *t,
        Some(Err(_)) => return Err(code::ENVIRON),
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
            return Err(code::MEMTYPE_NOT_AVAILABLE);
        }
        if variant == Variant::Single && chosen.count() > 1 {
            return Err(code::RUNTIME);
        }
        per_node.insert(init.id, chosen);
    }
    Ok(NodeSets::per_node(per_node))
}

/// memkind_capacity.c `memkind_hi_cap_find`: over ids `0..=max_node` with a meminfo, the
/// largest MemTotal (a 0-byte node counts while nothing larger was seen); none →
/// MEMTYPE_NOT_AVAILABLE; a tie under `Single` → MEMTYPE_NOT_AVAILABLE.
pub(super) fn highest_capacity(topo: &Topology, variant: Variant) -> Result<NodeSets, i32> {
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
        return Err(code::MEMTYPE_NOT_AVAILABLE);
    }
    Ok(NodeSets::global(topo, mask))
}

/// memkind_mem_attributes.c `get_per_cpu_local_nodes_mask`: per CPU node, among the nodes
/// whose hwloc locality equals its CPU set, the best by `attr` (capacity: largest non-zero
/// MemTotal; bandwidth: largest; latency: smallest below INT_MAX; nodes without a value are
/// skipped). No node, or a tie under `Single` → MEMTYPE_NOT_AVAILABLE.
pub(super) fn local(topo: &Topology, attr: Attr, variant: Variant) -> Result<NodeSets, i32> {
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
            return Err(code::MEMTYPE_NOT_AVAILABLE);
        }
        per_node.insert(init.id, mask);
    }
    Ok(NodeSets::per_node(per_node))
}

/// memkind_regular.c `regular_nodes_init`: ids `0..numa_num_configured_nodes()` (a count of
/// memory nodes, used as an id bound) whose cpumap is non-empty. 1.14 also sets ids with no
/// `nodeN` directory there (libnuma returns a full cpumap for them); the kernel ignores such
/// bits in mbind, so they are left out here.
pub(super) fn regular_mask(topo: &Topology) -> Nodemask {
    (0..topo.configured_mem_nodes())
        .filter(|&i| topo.node(i).is_some_and(|n| !n.cpus.is_empty()))
        .collect()
}
