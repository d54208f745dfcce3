//! Proves the vmtest matrix's cells are what they claim (`kernel_*` targets run inside every
//! cell, see `vmtest/README.md`): the number of NUMA nodes, hugepages reserved on each node, page
//! placement by mbind(2) as reported by move_pages(2), `MAP_SYNC` on the DAX mount, and bpf().
//!
//! On a host these skip (with a reason) what the host lacks; inside a cell that promises a
//! feature (`MEMKIND_RS_CELL_PROVIDES`) a missing feature fails the test. Each test also prints
//! `FEATURE name=yes|no` lines that the matrix runner collects into its per-kernel feature table.

use std::ffi::CString;
use std::io::Write;

use memkind_tests::{cell_provides, need, online_memory_nodes, Feature};

const PAGE: usize = 4096;
const HUGE: usize = 2 << 20;
const MPOL_BIND: libc::c_int = 2;
const MPOL_PREFERRED_MANY: libc::c_int = 5;
const MAP_SHARED_VALIDATE: libc::c_int = 0x03;
const MAP_SYNC: libc::c_int = 0x80000;

/// `MEMKIND_RS_CELL` is `<kernel>-<topology>`; the topology is the part after the last `-`.
fn cell_topology() -> Option<String> {
    let cell = std::env::var("MEMKIND_RS_CELL").ok()?;
    Some(cell.rsplit('-').next().unwrap_or("").to_string())
}

fn expected_nodes() -> Option<usize> {
    match cell_topology()?.as_str() {
        "numa1" => Some(1),
        "numa2" | "pmem" => Some(2),
        other => panic!("unknown topology {other:?} in MEMKIND_RS_CELL"),
    }
}

fn feature(name: &str, present: bool) {
    let line = format!("FEATURE {name}={}", if present { "yes" } else { "no" });
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// An anonymous private mapping, unmapped on drop.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn anon(len: usize, extra_flags: libc::c_int) -> std::io::Result<Self> {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// mbind(2) the mapping strictly to `node`.
fn bind_to(m: &Mapping, node: u32) -> std::io::Result<()> {
    let mask: [u64; 1] = [1u64 << node];
    // SAFETY: the range is our own mapping; the mask is 64 bits long and maxnode says so (+1, as
    // the kernel reads maxnode - 1 bits).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            m.ptr,
            m.len,
            MPOL_BIND,
            mask.as_ptr(),
            65usize,
            0u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Write one byte per `step` bytes so every page is faulted in.
fn touch(m: &Mapping, step: usize) {
    for off in (0..m.len).step_by(step) {
        // SAFETY: off < len, inside our writable mapping.
        unsafe { std::ptr::write_volatile((m.ptr as *mut u8).add(off), 1) };
    }
}

/// Ask move_pages(2) (query mode: nodes = NULL) which node each `step`-sized page is on.
fn nodes_of(m: &Mapping, step: usize) -> Vec<i32> {
    let mut pages: Vec<*mut libc::c_void> = (0..m.len)
        .step_by(step)
        .map(|off| (m.ptr as usize + off) as *mut libc::c_void)
        .collect();
    let mut status = vec![-1i32; pages.len()];
    // SAFETY: pages and status have the same length, pid 0 is this process, nodes NULL = query.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            0,
            pages.len(),
            pages.as_mut_ptr(),
            std::ptr::null::<libc::c_int>(),
            status.as_mut_ptr(),
            0,
        )
    };
    assert_eq!(rc, 0, "move_pages: {}", std::io::Error::last_os_error());
    status
}

fn read_sys(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn node_count_matches_cell() {
    let nodes = online_memory_nodes();
    println!("online memory nodes: {nodes:?}");
    assert!(
        !nodes.is_empty(),
        "no online memory node in /sys/devices/system/node/has_memory"
    );
    if cell_provides(Feature::Numa2) {
        need("node_count_matches_cell", &[Feature::Numa2]);
    }
    match expected_nodes() {
        Some(n) => assert_eq!(
            nodes.len(),
            n,
            "cell {:?} promises {n} node(s)",
            cell_topology()
        ),
        None => {
            println!("SKIP node_count_matches_cell: not in a vmtest cell (MEMKIND_RS_CELL unset)")
        }
    }
}

#[test]
fn mbind_places_pages_on_each_node() {
    for node in online_memory_nodes() {
        let m = Mapping::anon(16 * PAGE, 0).expect("mmap");
        bind_to(&m, node).unwrap_or_else(|e| panic!("mbind to node {node}: {e}"));
        touch(&m, PAGE);
        let st = nodes_of(&m, PAGE);
        assert!(
            st.iter().all(|&s| s == node as i32),
            "pages bound to node {node} are on {st:?}"
        );
        println!("node {node}: 16 pages placed and confirmed by move_pages");
    }
    // MPOL_PREFERRED_MANY (5.15+): what memkind's *_PREFERRED kinds would like on several nodes.
    let m = Mapping::anon(PAGE, 0).expect("mmap");
    let mask: [u64; 1] = [online_memory_nodes().iter().fold(0u64, |a, &n| a | 1 << n)];
    // SAFETY: our own mapping; the mask is 64 bits long.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            m.ptr,
            m.len,
            MPOL_PREFERRED_MANY,
            mask.as_ptr(),
            65usize,
            0u32,
        )
    };
    feature("mpol_preferred_many", rc == 0);
}

#[test]
fn hugepages_reserved_on_each_node() {
    if !need(
        "hugepages_reserved_on_each_node",
        &[Feature::Root, Feature::Hugetlb],
    ) {
        return;
    }
    let in_cell = cell_provides(Feature::Hugetlb);
    for node in online_memory_nodes() {
        let base = format!("/sys/devices/system/node/node{node}/hugepages/hugepages-2048kB");
        let total: u64 = read_sys(&format!("{base}/nr_hugepages"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let free: u64 = read_sys(&format!("{base}/free_hugepages"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        println!("node {node}: {total} x 2 MiB hugepages reserved, {free} free");
        if total == 0 {
            assert!(
                !in_cell,
                "the cell promises hugetlb but node {node} has no 2 MiB hugepages"
            );
            println!(
                "SKIP hugepages_reserved_on_each_node: node {node} has none reserved (not a cell)"
            );
            continue;
        }
        if free == 0 {
            continue;
        }
        // One real hugepage on this node: MAP_HUGETLB + mbind + touch + move_pages.
        let m = Mapping::anon(HUGE, libc::MAP_HUGETLB).expect("mmap MAP_HUGETLB");
        bind_to(&m, node).unwrap_or_else(|e| panic!("mbind hugepage to node {node}: {e}"));
        touch(&m, HUGE);
        let st = nodes_of(&m, HUGE);
        assert_eq!(
            st,
            vec![node as i32],
            "hugepage bound to node {node} is on {st:?}"
        );
    }
}

#[test]
fn map_sync_on_dax_mount() {
    if !need("map_sync_on_dax_mount", &[Feature::Dax]) {
        return;
    }
    let dir = std::env::var("MEMKIND_RS_PMEM_DIR").expect("checked by need");
    let path = format!("{dir}/kernel_topology.{}", std::process::id());
    let cpath = CString::new(path.clone()).expect("no NUL in path");
    // SAFETY: plain open/ftruncate/mmap/munmap/close/unlink on a file we create here.
    unsafe {
        let fd = libc::open(
            cpath.as_ptr(),
            libc::O_CREAT | libc::O_RDWR | libc::O_EXCL,
            0o600,
        );
        assert!(fd >= 0, "open {path}: {}", std::io::Error::last_os_error());
        assert_eq!(libc::ftruncate(fd, HUGE as libc::off_t), 0, "ftruncate");
        let p = libc::mmap(
            std::ptr::null_mut(),
            HUGE,
            libc::PROT_READ | libc::PROT_WRITE,
            MAP_SHARED_VALIDATE | MAP_SYNC,
            fd,
            0,
        );
        let err = std::io::Error::last_os_error();
        feature("map_sync_fsdax", p != libc::MAP_FAILED);
        libc::close(fd);
        libc::unlink(cpath.as_ptr());
        assert!(
            p != libc::MAP_FAILED,
            "MAP_SHARED_VALIDATE|MAP_SYNC mmap of {path}: {err}"
        );
        std::ptr::write_volatile(p as *mut u64, 0xdead_beef);
        assert_eq!(std::ptr::read_volatile(p as *const u64), 0xdead_beef);
        libc::munmap(p, HUGE);
    }
}

// bpf(2) commands and map types (include/uapi/linux/bpf.h).
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_RINGBUF: u32 = 27;

/// bpf(BPF_MAP_CREATE) with the first four fields of `union bpf_attr`; returns the fd or errno.
fn bpf_map_create(
    map_type: u32,
    key: u32,
    value: u32,
    entries: u32,
) -> Result<i32, std::io::Error> {
    let mut attr = [0u32; 16];
    attr[..4].copy_from_slice(&[map_type, key, value, entries]);
    // SAFETY: attr is a zeroed bpf_attr prefix of the size we pass.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(fd as i32)
    }
}

/// bpf() element update/lookup on map `fd`: attr = { map_fd, pad, key ptr, value ptr, flags }.
fn bpf_elem(cmd: libc::c_long, fd: i32, key: &u32, value: *mut u64) -> libc::c_long {
    let mut attr = [0u64; 8];
    attr[0] = fd as u32 as u64;
    attr[1] = key as *const u32 as u64;
    attr[2] = value as u64;
    // SAFETY: attr describes a valid key and value buffer of the map's sizes (4 and 8 bytes).
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    }
}

#[test]
fn bpf_array_map_and_ring_buffer() {
    if !need("bpf_array_map_and_ring_buffer", &[Feature::Bpf]) {
        return;
    }
    // Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK, later ones to the memory cgroup:
    // find out which with the limit at 0, then lift it as libbpf does.
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit on our own process with valid pointers.
    unsafe {
        libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut old);
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: old.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_MEMLOCK, &zero);
    }
    let memcg = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1);
    feature("bpf_memcg_accounting", memcg.is_ok());
    if let Ok(fd) = memcg {
        // SAFETY: closing the fd we created.
        unsafe { libc::close(fd) };
    }
    let inf = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: as above; root may raise the hard limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf) } != 0 {
        // SAFETY: as above; restore what we had.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &old) };
    }
    let fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4).expect("BPF_MAP_CREATE array");
    let key = 2u32;
    let mut v = 0x1234_5678_9abc_u64;
    assert_eq!(
        bpf_elem(BPF_MAP_UPDATE_ELEM, fd, &key, &mut v),
        0,
        "BPF_MAP_UPDATE_ELEM"
    );
    let mut out = 0u64;
    assert_eq!(
        bpf_elem(BPF_MAP_LOOKUP_ELEM, fd, &key, &mut out),
        0,
        "BPF_MAP_LOOKUP_ELEM"
    );
    assert_eq!(out, v);
    // SAFETY: closing the fd we created.
    unsafe { libc::close(fd) };
    feature("bpf_array_map", true);
    // BPF ring buffers exist since 5.8; every kernel of the matrix must have them.
    let ring = bpf_map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, 1 << 16);
    feature("bpf_ringbuf", ring.is_ok());
    let fd = ring.expect("BPF_MAP_CREATE ringbuf");
    // SAFETY: closing the fd we created.
    unsafe { libc::close(fd) };
}

/// Kernel features the probe needs, as the running kernel's BTF and /proc/kallsyms show them. A
/// `tp_btf` program attaches to `btf_trace_<name>`; `uprobe.multi` links are
/// `struct bpf_uprobe_multi_link`; the nop5 uprobe optimization is `arch_uprobe_optimize`.
/// Informational: never fails.
#[test]
fn feature_report() {
    let mut uts: libc::utsname = unsafe_zeroed_utsname();
    // SAFETY: uname fills the struct we own.
    unsafe { libc::uname(&mut uts) };
    // SAFETY: uname NUL-terminates release.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    println!("kernel release: {}", release.to_string_lossy());
    let btf = std::fs::read("/sys/kernel/btf/vmlinux").unwrap_or_default();
    feature("btf", !btf.is_empty());
    let has = |name: &str| {
        let needle = [b"\0", name.as_bytes(), b"\0"].concat();
        btf.windows(needle.len()).any(|w| w == needle.as_slice())
    };
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let sym = |name: &str| {
        kallsyms
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some(name))
    };
    feature("tp_btf_page_fault_user", has("btf_trace_page_fault_user"));
    feature(
        "uprobe_multi",
        has("bpf_uprobe_multi_link") || sym("bpf_uprobe_multi_link_attach"),
    );
    // The nop5 -> call rewrite comes with the uprobe syscall (x86, `arch_uprobe_optimize`).
    feature("uprobe_nop5_optimized", sym("arch_uprobe_optimize"));
    feature("uretprobe_syscall", sym("__x64_sys_uretprobe"));
    feature(
        "uprobe_ref_ctr",
        std::path::Path::new("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset").exists(),
    );
}

fn unsafe_zeroed_utsname() -> libc::utsname {
    // SAFETY: utsname is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}
