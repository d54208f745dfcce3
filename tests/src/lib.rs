//! End-to-end test support for memkind-rs: locating the built libraries and deciding whether a
//! test that needs a kernel feature may run here.
//!
//! # Skipping rules
//! A test that needs root, hugepages, two NUMA nodes, a DAX mount or BPF calls [`need`] first.
//! On a host that lacks the feature it prints `SKIP <test>: <reason>` and the test returns early.
//! Inside the vmtest matrix the cell lists what it provides in `MEMKIND_RS_CELL_PROVIDES`
//! (comma separated: `root,hugetlb,numa2,dax,bpf`); a listed feature that is missing makes the test
//! fail instead of skipping.

use std::path::{Path, PathBuf};

pub mod capi;
pub mod cc_cache;
pub mod differential;

/// A kernel or machine feature a test may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Running as root (uid 0).
    Root,
    /// 2 MiB hugepages can be reserved (root and the hugetlb pool exists).
    Hugetlb,
    /// At least two online NUMA nodes with memory.
    Numa2,
    /// A DAX-mounted directory named by `MEMKIND_RS_PMEM_DIR`.
    Dax,
    /// The bpf() syscall works (root, BTF present).
    Bpf,
}

impl Feature {
    fn name(self) -> &'static str {
        match self {
            Feature::Root => "root",
            Feature::Hugetlb => "hugetlb",
            Feature::Numa2 => "numa2",
            Feature::Dax => "dax",
            Feature::Bpf => "bpf",
        }
    }

    /// Why the feature is missing here, or `None` when it is present.
    pub fn missing(self) -> Option<String> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        match self {
            Feature::Root => (!root).then(|| "needs root".to_string()),
            Feature::Hugetlb => {
                if !root {
                    Some("needs root to reserve hugepages".into())
                } else if !Path::new("/proc/sys/vm/nr_hugepages").exists() {
                    Some("kernel has no hugetlbfs pool".into())
                } else {
                    None
                }
            }
            Feature::Numa2 => {
                let n = online_memory_nodes().len();
                (n < 2).then(|| format!("needs 2 NUMA nodes with memory, host has {n}"))
            }
            Feature::Dax => match std::env::var("MEMKIND_RS_PMEM_DIR") {
                Ok(d) if is_dax_mount(Path::new(&d)) => None,
                Ok(d) => Some(format!("MEMKIND_RS_PMEM_DIR={d} is not mounted -o dax")),
                Err(_) => Some("no DAX mount (MEMKIND_RS_PMEM_DIR unset)".into()),
            },
            Feature::Bpf => {
                if !root {
                    Some("needs root for bpf()".into())
                } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
                    Some("kernel has no BTF".into())
                } else {
                    None
                }
            }
        }
    }
}

/// True when the vmtest cell we run in promises `f`.
pub fn cell_provides(f: Feature) -> bool {
    std::env::var("MEMKIND_RS_CELL_PROVIDES")
        .map(|v| v.split(',').any(|s| s.trim() == f.name()))
        .unwrap_or(false)
}

/// Decide whether test `test` may run. Returns false (after printing why) when a needed feature
/// is missing on a host; panics when it is missing inside a vmtest cell that promises it.
pub fn need(test: &str, features: &[Feature]) -> bool {
    for &f in features {
        if let Some(why) = f.missing() {
            if cell_provides(f) {
                panic!("{test}: the vmtest cell promises {} but: {why}", f.name());
            }
            println!("SKIP {test}: {why}");
            eprintln!("SKIP {test}: {why}");
            return false;
        }
    }
    true
}

/// Online NUMA nodes that have memory, from sysfs.
pub fn online_memory_nodes() -> Vec<u32> {
    let s = std::fs::read_to_string("/sys/devices/system/node/has_memory").unwrap_or_default();
    parse_node_list(s.trim())
}

/// Parse a kernel node list such as `0-2,5`.
pub fn parse_node_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.push(a);
                }
            }
        }
    }
    out
}

fn is_dax_mount(dir: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return false;
    };
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3
            && Path::new(f[1]) == dir
            && f[3].split(',').any(|o| o == "dax" || o == "dax=always")
    })
}

/// The workspace's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
}
