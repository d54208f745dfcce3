//! Where each kind's memory really lands, checked with move_pages(2) and smaps, through the C ABI.
//! A `kernel_*` target: it runs in every cell of the vmtest matrix (two NUMA nodes with node 1
//! designated high-bandwidth by `MEMKIND_HBW_NODES=1`, hugepages reserved on every node), and on
//! a host, where tests that need what the host lacks skip with a reason.
//!
//! Expected node sets are derived here from sysfs and the environment, independently of the
//! library's own topology code.

use core::ffi::c_void;

use memkind_tests::capi::*;
use memkind_tests::{need, online_memory_nodes, parse_node_list, Feature};

const PAGE: usize = 4096;
const SIZE: usize = 8 << 20;

/// Allocate `SIZE` bytes of `kind`, touch every page, return the node of each page.
fn placement(name: &str, kind: MemkindT) -> Vec<i32> {
    assert_eq!(
        memkind_check_available(kind),
        0,
        "{name} should be available here"
    );
    let p = memkind_malloc(kind, SIZE) as *mut u8;
    assert!(!p.is_null(), "{name}: malloc failed");
    assert_eq!(memkind_detect_kind(p.cast()), kind, "{name}: detect_kind");
    // SAFETY: the block is a live allocation of at least that many bytes, just returned by memkind_malloc.
    unsafe { core::ptr::write_bytes(p, 0x5a, SIZE) };
    let pages: Vec<*mut c_void> = (0..SIZE / PAGE)
        // SAFETY: i * PAGE < SIZE, inside the allocation.
        .map(|i| unsafe { p.add(i * PAGE) }.cast())
        .collect();
    let mut status = vec![-1i32; pages.len()];
    memkind::testing::query_pages(&pages, &mut status).expect("move_pages");
    memkind_free(core::ptr::null(), p.cast());
    status
}

fn histogram(status: &[i32]) -> std::collections::BTreeMap<i32, usize> {
    let mut h = std::collections::BTreeMap::new();
    for &s in status {
        *h.entry(s).or_insert(0) += 1;
    }
    h
}

fn assert_on(name: &str, status: &[i32], allowed: &[u32]) {
    let h = histogram(status);
    println!("{name}: pages per node {h:?}, allowed {allowed:?}");
    for (&node, &n) in &h {
        assert!(
            node >= 0 && allowed.contains(&(node as u32)),
            "{name}: {n} pages on node {node}, allowed {allowed:?}: {h:?}"
        );
    }
}

fn cpu_nodes() -> Vec<u32> {
    parse_node_list(
        std::fs::read_to_string("/sys/devices/system/node/has_cpu")
            .unwrap_or_default()
            .trim(),
    )
}

fn mem_total(node: u32) -> u64 {
    let s =
        std::fs::read_to_string(format!("/sys/devices/system/node/node{node}/meminfo")).unwrap();
    s.lines()
        .find(|l| l.contains("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn node_bound_kinds_land_on_their_nodes() {
    if !need("node_bound_kinds_land_on_their_nodes", &[Feature::Numa2]) {
        return;
    }
    let hbw = std::env::var("MEMKIND_HBW_NODES")
        .map(|v| parse_node_list(&v))
        .unwrap_or_default();
    assert!(!hbw.is_empty(), "the two-node cells set MEMKIND_HBW_NODES");
    let nodes = online_memory_nodes();
    for (name, kind) in [
        ("HBW", MEMKIND_HBW),
        ("HBW_ALL", MEMKIND_HBW_ALL),
        ("HBW_PREFERRED", MEMKIND_HBW_PREFERRED),
        ("HBW_INTERLEAVE", MEMKIND_HBW_INTERLEAVE),
    ] {
        assert_on(name, &placement(name, kind), &hbw);
    }
    assert_on(
        "REGULAR",
        &placement("REGULAR", MEMKIND_REGULAR),
        &cpu_nodes(),
    );
    let max = nodes.iter().map(|&n| mem_total(n)).max().unwrap();
    let biggest: Vec<u32> = nodes
        .iter()
        .copied()
        .filter(|&n| mem_total(n) == max)
        .collect();
    assert_on(
        "HIGHEST_CAPACITY",
        &placement("HIGHEST_CAPACITY", MEMKIND_HIGHEST_CAPACITY),
        &biggest,
    );

    // Interleave spreads pages over every node with memory, about evenly.
    let st = placement("INTERLEAVE", MEMKIND_INTERLEAVE);
    assert_on("INTERLEAVE", &st, &nodes);
    let h = histogram(&st);
    for &n in &nodes {
        let share = h.get(&(n as i32)).copied().unwrap_or(0);
        assert!(
            share * 4 >= st.len() / nodes.len(),
            "INTERLEAVE: node {n} got {share} of {} pages: {h:?}",
            st.len()
        );
    }
}

#[test]
fn hbw_is_unavailable_without_hbw_nodes_on_one_node() {
    if online_memory_nodes().len() != 1 || std::env::var_os("MEMKIND_HBW_NODES").is_some() {
        println!("SKIP hbw_is_unavailable_without_hbw_nodes_on_one_node: needs one node and no MEMKIND_HBW_NODES");
        return;
    }
    assert_eq!(memkind_check_available(MEMKIND_HBW), -20);
    assert!(memkind_malloc(MEMKIND_HBW, 64).is_null());
    assert_on("REGULAR", &placement("REGULAR", MEMKIND_REGULAR), &[0]);
    assert_on(
        "INTERLEAVE",
        &placement("INTERLEAVE", MEMKIND_INTERLEAVE),
        &[0],
    );
}

/// Page size (kB) of the mapping that contains `p`, from /proc/self/smaps.
fn kernel_page_kb(p: usize) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ') {
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    inside = (a..b).contains(&p);
                    continue;
                }
            }
        }
        if inside {
            if let Some(v) = line.strip_prefix("KernelPageSize:") {
                return v.trim().trim_end_matches("kB").trim().parse().ok();
            }
        }
    }
    None
}

struct Hugepages(Option<String>);

impl Hugepages {
    fn reserve(n: u64) -> Hugepages {
        let f = "/proc/sys/vm/nr_hugepages";
        let old = std::fs::read_to_string(f).unwrap();
        if old.trim().parse::<u64>().unwrap() >= n {
            return Hugepages(None);
        }
        std::fs::write(f, n.to_string()).unwrap();
        Hugepages(Some(old))
    }
}

impl Drop for Hugepages {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write("/proc/sys/vm/nr_hugepages", old.trim());
        }
    }
}

#[test]
fn hugetlb_kinds_are_backed_by_2mib_pages() {
    if !need(
        "hugetlb_kinds_are_backed_by_2mib_pages",
        &[Feature::Hugetlb],
    ) {
        return;
    }
    let _pages = Hugepages::reserve(32);
    let mut kinds = vec![("HUGETLB", MEMKIND_HUGETLB, None)];
    if online_memory_nodes().len() >= 2 && std::env::var_os("MEMKIND_HBW_NODES").is_some() {
        let hbw = parse_node_list(&std::env::var("MEMKIND_HBW_NODES").unwrap());
        kinds.push(("HBW_HUGETLB", MEMKIND_HBW_HUGETLB, Some(hbw)));
    }
    for (name, kind, nodes) in kinds {
        assert_eq!(memkind_check_available(kind), 0, "{name}");
        let p = memkind_malloc(kind, 1 << 20) as *mut u8;
        assert!(!p.is_null(), "{name}");
        // SAFETY: the block is a live allocation of at least that many bytes, just returned by memkind_malloc.
        unsafe { core::ptr::write_bytes(p, 1, 1 << 20) };
        assert_eq!(
            kernel_page_kb(p as usize),
            Some(2048),
            "{name}: mapping page size"
        );
        if let Some(nodes) = nodes {
            let mut st = [0i32];
            memkind::testing::query_pages(&[p.cast()], &mut st).unwrap();
            assert!(
                st[0] >= 0 && nodes.contains(&(st[0] as u32)),
                "{name} on node {}",
                st[0]
            );
        }
        memkind_free(core::ptr::null(), p.cast());
        // Base-page kinds are not on hugetlb mappings.
        let q = memkind_malloc(MEMKIND_REGULAR, 1 << 20) as *mut u8;
        // SAFETY: the block is a live allocation of at least that many bytes, just returned by memkind_malloc.
        unsafe { core::ptr::write_bytes(q, 1, 4096) };
        assert_eq!(kernel_page_kb(q as usize), Some(4));
        memkind_free(core::ptr::null(), q.cast());
    }
}
