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
            code::MEMTYPE_NOT_AVAILABLE,
            "{r:?}"
        );
    }
    for r in [
        Rule::DaxKmem,
        Rule::DaxKmemAll,
        Rule::DaxKmemPreferred,
        Rule::DaxKmemInterleave,
    ] {
        assert_eq!(unavailable(&resolve(&t, &e, r)), code::UNAVAILABLE, "{r:?}");
    }
    for r in [
        Rule::LowestLatencyLocal,
        Rule::LowestLatencyLocalPreferred,
        Rule::HighestBandwidthLocal,
        Rule::HighestBandwidthLocalPreferred,
    ] {
        assert_eq!(
            unavailable(&resolve(&t, &e, r)),
            code::MEMTYPE_NOT_AVAILABLE,
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
        Err(code::HUGETLB)
    );
    assert_eq!(t.hugetlb_capacity(), Ok(0));
    assert_eq!(
        t.hugetlb_check_available(HUGEPAGE_1G_KB, &nm("0")),
        Err(code::HUGETLB)
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
            code::ENVIRON,
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
        code::RUNTIME
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
        code::UNAVAILABLE
    );
    // 2 nodes, both with CPUs: no CPU-less half → UNAVAILABLE.
    let f = Fake::new("0-1", "0-1", "0-1");
    f.node(0, GIB_KB, "0", "10 20")
        .node(1, GIB_KB, "1", "20 10");
    f.write("proc/cpuinfo", "cpu family\t: 6\nmodel\t\t: 87\n");
    assert_eq!(
        unavailable(&resolve(&f.topo(), &no_env(), Rule::Hbw)),
        code::UNAVAILABLE
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
    assert_eq!(unavailable(&resolve(&t, &bad, Rule::Hbw)), code::ENVIRON);
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
    assert_eq!(t.hugetlb_pages(64, &nm("0")), Err(code::HUGETLB));
    // No /sys/kernel/mm/hugepages at all.
    let t = two_nodes().topo();
    assert_eq!(t.hugepage_pools, None);
    assert_eq!(t.hugetlb_capacity(), Err(code::HUGETLB));
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
