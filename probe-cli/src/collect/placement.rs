//! Placement collection: where the pages of each kind's extents are, asked of the kernel.
//!
//! # Method, and why
//! The extents come from the probe's extent events ([`crate::model::Extents::ranges`]): address
//! ranges owned by one kind and arena, with their backing and page size. For each refresh:
//!
//! 1. **Which pages**: each process × kind × arena × page size is a stratum of N pages (4 KiB,
//!    or the hugetlb page size: one query per huge page). If all strata together have at most
//!    [`Budget::pages`] pages (default 64 Ki = 256 MiB of base pages), every page is queried and
//!    the figures are exact. Beyond that each stratum gets a share of the budget proportional to
//!    its size (at least [`MIN_PER_STRATUM`] pages, so a small kind next to a big one is still
//!    exact or nearly so) and its pages are picked by jittered systematic sampling: one page
//!    drawn uniformly in each of n consecutive runs of N/n pages. The estimator and its error
//!    bound are in [`crate::model::Placement`]'s documentation.
//! 2. **Node of each page: `move_pages(2)` with a NULL `nodes` array** on the target pid. It is
//!    exact (the node of the page frame, looked up in the page tables), tells not-present pages
//!    apart (`-ENOENT`; the shared zero page of a read-only touch is `-EFAULT`), and costs one
//!    syscall per [`CHUNK`] pages with a kernel cost proportional to the pages asked — which is
//!    what makes a budget possible. `/proc/PID/numa_maps` was rejected: it walks every page of
//!    every VMA of the process on each read (cost grows with the whole process, not with a
//!    budget), and counts per VMA, while adjacent anonymous mappings of kinds with the same
//!    policy (DEFAULT and REGULAR on one node, or any two arenas of a kind) merge into one VMA, so
//!    per-kind and per-arena figures cannot be separated.
//! 3. **Device pages (fsdax files of PMEM kinds)**: `move_pages` reports ZONE_DEVICE pages as
//!    `-ENOENT` (the kernel skips them in `do_pages_stat_array`), or on 5.10 as `-EFAULT` (a
//!    4 KiB entry: `follow_page(FOLL_DUMP)` refuses the special devmap entry) or `-EEXIST` (a
//!    2 MiB entry: `follow_devmap_pmd` without `FOLL_GET`). For file-backed extents, every page
//!    it gives an error for is looked up in `/proc/PID/pagemap` (one read per run of
//!    nearby pages): a present entry's page frame number is mapped to a node through the
//!    persistent-memory regions' physical ranges (`/sys/bus/nd/devices/region*/{resource,size,
//!    numa_node}`); a present page outside every region counts as resident on an unknown node.
//! 4. **Huge vs base**: hugetlb extents are huge by their backing (page size from the event).
//!    In other extents, each 2 MiB-aligned chunk holding a queried present page is checked once:
//!    its first such page's frame number (pagemap) and `/proc/kpageflags` `KPF_THP` (bit 22, or
//!    `KPF_HUGE`, bit 17); a THP chunk's queried pages count as huge. One pagemap and one kpageflags read per chunk,
//!    at most [`Budget::thp_chunks`] chunks per refresh (chunks beyond the cap count as base and
//!    the refresh says so in [`Cost::thp_unchecked`]). Without root, pagemap shows no frame
//!    numbers and kpageflags cannot be opened: then everything outside hugetlb counts as base.
//!
//! All system calls of the placement collector are in this file's `sys` module.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::model::{Placement, Range, Sample};

/// `enum mkp_backing`: MAP_HUGETLB.
const BACKING_HUGETLB: u32 = 1;
/// `enum mkp_backing`: a PMEM kind's file.
const BACKING_FILE: u32 = 2;
/// Base page size.
const PAGE: u64 = 4096;
/// A PMD-mapped transparent huge page.
const THP_SIZE: u64 = 2 << 20;
/// `/proc/kpageflags` bit of a page in a transparent huge page.
const KPF_THP: u64 = 1 << 22;
/// `/proc/kpageflags` bit of a hugetlb page (an extent whose event gave no huge page size).
const KPF_HUGE: u64 = 1 << 17;
/// pagemap: page present.
const PM_PRESENT: u64 = 1 << 63;
/// pagemap: page frame number bits.
const PM_PFN: u64 = (1 << 55) - 1;
/// Pages per move_pages call.
pub const CHUNK: usize = 4096;
/// Smallest share of the budget a stratum gets (or all of its pages, if fewer).
pub const MIN_PER_STRATUM: u64 = 256;
/// Reads of consecutive pagemap / kpageflags entries are merged across gaps up to this many
/// entries (reading 128 entries costs about what one more syscall does).
const MERGE_GAP: u64 = 128;

/// How much one refresh may query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Pages queried per refresh (over all processes and kinds), beyond which pages are sampled.
    pub pages: u64,
    /// 2 MiB chunks checked for THP per refresh.
    pub thp_chunks: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            pages: 64 * 1024,
            thp_chunks: 4096,
        }
    }
}

/// What one refresh cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Pages queried with move_pages.
    pub pages_queried: u64,
    /// Pages of all extents.
    pub pages_total: u64,
    /// move_pages calls.
    pub move_pages_calls: u64,
    /// pagemap and kpageflags reads.
    pub reads: u64,
    /// THP chunks left unchecked (over [`Budget::thp_chunks`]).
    pub thp_unchecked: u64,
    /// Wall time of the refresh, s.
    pub wall_s: f64,
    /// CPU time of the refresh (this thread, user + system), s.
    pub cpu_s: f64,
}

/// What the collector asks of the kernel: the test seam (a fake in the unit tests).
pub trait Kernel {
    /// The node of each page of `pid` at `addrs` into `status` (`move_pages(2)`, NULL nodes):
    /// ≥ 0 a node, `-ENOENT` not present (or a device page), `-EFAULT` no page (zero page, no VMA).
    fn page_nodes(&mut self, pid: u32, addrs: &[u64], status: &mut [i32]) -> io::Result<()>;
    /// `/proc/PID/pagemap` entries of `count` consecutive pages from page number `first`.
    fn pagemap(&mut self, pid: u32, first: u64, count: u64) -> io::Result<Vec<u64>>;
    /// `/proc/kpageflags` of `count` consecutive frames from `first`.
    fn kpageflags(&mut self, first: u64, count: u64) -> io::Result<Vec<u64>>;
    /// The node of a device page frame (persistent memory), if known.
    fn device_node(&self, pfn: u64) -> Option<u32>;
    /// CPU time this thread has used, s.
    fn thread_cpu_s(&self) -> f64;
    /// Whether `pid` still has its address space (`VmSize:` in `/proc/PID/status`; an exiting
    /// task drops it in exit_mm, before it is a zombie).
    fn has_mm(&self, pid: u32) -> bool;
}

/// A physical range of persistent memory and its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRange {
    /// First page frame.
    pub start_pfn: u64,
    /// One past the last.
    pub end_pfn: u64,
    /// NUMA node.
    pub node: u32,
}

/// The persistent-memory regions under `sys` (`/sys` on a live system): each
/// `bus/nd/devices/region*` with a `resource` (physical start, hex), `size` and `numa_node`.
pub fn device_ranges(sys: &Path) -> Vec<DeviceRange> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir(sys.join("bus/nd/devices")) else {
        return v;
    };
    for e in dir.flatten() {
        if !e.file_name().to_string_lossy().starts_with("region") {
            continue;
        }
        let read = |f: &str| std::fs::read_to_string(e.path().join(f)).ok();
        let parse = |s: Option<String>| -> Option<u64> {
            let s = s?;
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => s.parse().ok(),
            }
        };
        let (Some(start), Some(size), Some(node)) = (
            parse(read("resource")),
            parse(read("size")),
            read("numa_node").and_then(|s| s.trim().parse::<i64>().ok()),
        ) else {
            continue;
        };
        if size == 0 || node < 0 {
            continue;
        }
        v.push(DeviceRange {
            start_pfn: start / PAGE,
            end_pfn: (start + size) / PAGE,
            node: node as u32,
        });
    }
    v.sort_by_key(|r| r.start_pfn);
    v
}

/// The live system: move_pages, `/proc` and `/sys` (roots injectable for tests of the readers).
pub struct System {
    proc: PathBuf,
    devices: Vec<DeviceRange>,
    kpageflags: Option<File>,
    pagemap: Option<(u32, File)>,
}

impl System {
    /// Readers of `proc` (`/proc`) and `sys` (`/sys`).
    pub fn at(proc: &Path, sys: &Path) -> System {
        System {
            proc: proc.to_path_buf(),
            devices: device_ranges(sys),
            kpageflags: File::open(proc.join("kpageflags")).ok(),
            pagemap: None,
        }
    }

    /// The live system.
    pub fn new() -> System {
        System::at(Path::new("/proc"), Path::new("/sys"))
    }

    fn read_u64s(f: &File, first: u64, count: u64) -> io::Result<Vec<u64>> {
        let mut buf = vec![0u8; count as usize * 8];
        let mut done = 0;
        while done < buf.len() {
            let n = f.read_at(&mut buf[done..], first * 8 + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(buf[..done - done % 8]
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

impl Default for System {
    fn default() -> Self {
        System::new()
    }
}

impl Kernel for System {
    fn page_nodes(&mut self, pid: u32, addrs: &[u64], status: &mut [i32]) -> io::Result<()> {
        sys::move_pages_query(pid, addrs, status)
    }

    fn pagemap(&mut self, pid: u32, first: u64, count: u64) -> io::Result<Vec<u64>> {
        if self.pagemap.as_ref().is_none_or(|(p, _)| *p != pid) {
            let f = File::open(self.proc.join(pid.to_string()).join("pagemap"))?;
            self.pagemap = Some((pid, f));
        }
        let (_, f) = self.pagemap.as_ref().expect("opened above");
        System::read_u64s(f, first, count)
    }

    fn kpageflags(&mut self, first: u64, count: u64) -> io::Result<Vec<u64>> {
        match &self.kpageflags {
            Some(f) => System::read_u64s(f, first, count),
            None => Err(io::Error::from(io::ErrorKind::PermissionDenied)),
        }
    }

    fn device_node(&self, pfn: u64) -> Option<u32> {
        let i = self.devices.partition_point(|r| r.end_pfn <= pfn);
        self.devices
            .get(i)
            .filter(|r| r.start_pfn <= pfn)
            .map(|r| r.node)
    }

    fn thread_cpu_s(&self) -> f64 {
        sys::thread_cpu_s()
    }

    fn has_mm(&self, pid: u32) -> bool {
        std::fs::read_to_string(self.proc.join(pid.to_string()).join("status"))
            .is_ok_and(|s| s.lines().any(|l| l.starts_with("VmSize:")))
    }
}

/// One stratum to query: the extents of one process × kind × arena × page size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Stratum {
    kind: u32,
    arena: u32,
    page_size: u64,
    backing: u32,
    mbind_mode: i32,
    nodemask: [u64; 4],
    /// (start address, pages), ascending.
    extents: Vec<(u64, u64)>,
    pages: u64,
    /// Pages to query.
    n: u64,
}

impl Stratum {
    /// Address of page `i` (0 ≤ i < pages) of the stratum.
    fn addr_of(&self, mut i: u64) -> u64 {
        for &(a, p) in &self.extents {
            if i < p {
                return a + i * self.page_size;
            }
            i -= p;
        }
        unreachable!("page index beyond the stratum")
    }
}

fn strata(ranges: &[Range]) -> Vec<Stratum> {
    let mut m: BTreeMap<(u32, u32, u64), Stratum> = BTreeMap::new();
    for r in ranges {
        let page = if r.backing == BACKING_HUGETLB && r.page_size > PAGE {
            r.page_size
        } else {
            PAGE
        };
        let pages = r.size / page;
        if pages == 0 {
            continue;
        }
        let s = m.entry((r.kind, r.arena, page)).or_insert_with(|| Stratum {
            kind: r.kind,
            arena: r.arena,
            page_size: page,
            backing: r.backing,
            mbind_mode: r.mbind_mode,
            nodemask: r.nodemask,
            ..Default::default()
        });
        s.extents.push((r.addr, pages));
        s.pages += pages;
    }
    m.into_values().collect()
}

/// Give each stratum its number of pages to query within `budget` (see the module doc).
fn allot(strata: &mut [Stratum], budget: u64) {
    let total: u64 = strata.iter().map(|s| s.pages).sum();
    for s in strata.iter_mut() {
        s.n = if total <= budget {
            s.pages
        } else {
            let share = (u128::from(budget) * u128::from(s.pages) / u128::from(total)) as u64;
            share.max(MIN_PER_STRATUM).min(s.pages)
        };
    }
}

/// xorshift64*: a seeded generator for the sampling (no dependency, reproducible in tests).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is mapped to a fixed non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// The page indices to query: all, or one uniform draw in each of `n` runs of `pages/n`.
fn pick(pages: u64, n: u64, rng: &mut Rng) -> Vec<u64> {
    if n >= pages {
        return (0..pages).collect();
    }
    (0..n)
        .map(|j| {
            let lo = (u128::from(j) * u128::from(pages) / u128::from(n)) as u64;
            let hi = (u128::from(j + 1) * u128::from(pages) / u128::from(n)) as u64;
            lo + rng.below(hi - lo)
        })
        .collect()
}

/// Read `items` (sorted keys) through `read(first, count)`, one read per run of keys closer
/// than [`MERGE_GAP`]; returns the entry of each key (`None` where the read failed or was short).
fn read_runs(
    keys: &[u64],
    reads: &mut u64,
    mut read: impl FnMut(u64, u64) -> io::Result<Vec<u64>>,
) -> Vec<Option<u64>> {
    let mut out = vec![None; keys.len()];
    let mut i = 0;
    while i < keys.len() {
        let mut j = i;
        while j + 1 < keys.len() && keys[j + 1] - keys[j] <= MERGE_GAP {
            j += 1;
        }
        let first = keys[i];
        *reads += 1;
        if let Ok(v) = read(first, keys[j] - first + 1) {
            for k in i..=j {
                out[k] = v.get((keys[k] - first) as usize).copied();
            }
        }
        i = j + 1;
    }
    out
}

/// The placement collector of one session.
pub struct Collector<K: Kernel> {
    kernel: K,
    budget: Budget,
    rng: Rng,
}

impl Collector<System> {
    /// On the live system.
    pub fn new(budget: Budget) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Collector::with_kernel(System::new(), budget, seed)
    }
}

impl<K: Kernel> Collector<K> {
    /// Over `kernel`, sampling with `seed`.
    pub fn with_kernel(kernel: K, budget: Budget, seed: u64) -> Self {
        Collector {
            kernel,
            budget,
            rng: Rng::new(seed),
        }
    }

    /// Query the pages of every process's extents (`ranges` per pid) within the budget.
    ///
    /// A process that is gone is left out of the result: move_pages fails with ESRCH (no such
    /// process) or EINVAL (no address space), or the address space was gone once its queries
    /// were done (an exit that tore it down during the queries would otherwise read as "nothing
    /// resident"). Since an address space never comes back, one that exists after the queries
    /// existed during them. Other errors end the refresh.
    pub fn refresh(
        &mut self,
        procs: &[(u32, Vec<Range>)],
        ts_ns: u64,
    ) -> io::Result<(Placement, Cost)> {
        let t0 = Instant::now();
        let c0 = self.kernel.thread_cpu_s();
        let mut cost = Cost::default();
        let mut all: Vec<(u32, Vec<Stratum>)> =
            procs.iter().map(|(p, r)| (*p, strata(r))).collect();
        {
            let mut flat: Vec<Stratum> = all.iter().flat_map(|(_, s)| s.clone()).collect();
            allot(&mut flat, self.budget.pages);
            let mut it = flat.into_iter();
            for (_, ss) in &mut all {
                for s in ss.iter_mut() {
                    s.n = it.next().expect("same strata").n;
                }
            }
        }
        let mut thp_left = self.budget.thp_chunks;
        let mut samples = Vec::new();
        for (pid, ss) in &all {
            match self.process(*pid, ss, &mut cost, &mut thp_left) {
                Ok(mut v) if self.kernel.has_mm(*pid) => samples.append(&mut v),
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ESRCH | libc::EINVAL)) => {}
                Err(e) => return Err(e),
            }
        }
        cost.wall_s = t0.elapsed().as_secs_f64();
        cost.cpu_s = self.kernel.thread_cpu_s() - c0;
        Ok((Placement::from_samples(&samples, ts_ns), cost))
    }

    fn process(
        &mut self,
        pid: u32,
        ss: &[Stratum],
        cost: &mut Cost,
        thp_left: &mut u64,
    ) -> io::Result<Vec<Sample>> {
        let mut out = Vec::with_capacity(ss.len());
        for s in ss {
            let idx = pick(s.pages, s.n, &mut self.rng);
            let addrs: Vec<u64> = idx.iter().map(|&i| s.addr_of(i)).collect();
            let mut status = vec![0i32; addrs.len()];
            for (a, st) in addrs.chunks(CHUNK).zip(status.chunks_mut(CHUNK)) {
                self.kernel.page_nodes(pid, a, st)?;
                cost.move_pages_calls += 1;
            }
            cost.pages_queried += addrs.len() as u64;
            cost.pages_total += s.pages;
            let mut node: Vec<Option<Option<u32>>> = status
                .iter()
                .map(|&st| (st >= 0).then_some(Some(st as u32)))
                .collect();
            // Device pages of files: move_pages says -ENOENT (5.10: -EFAULT or -EEXIST);
            // pagemap knows their frame.
            if s.backing == BACKING_FILE {
                let ask: Vec<usize> = (0..addrs.len()).filter(|&i| status[i] < 0).collect();
                if !ask.is_empty() {
                    let keys: Vec<u64> = ask.iter().map(|&i| addrs[i] / PAGE).collect();
                    let k = &mut self.kernel;
                    let e = read_runs(&keys, &mut cost.reads, |f, c| k.pagemap(pid, f, c));
                    for (&i, e) in ask.iter().zip(e) {
                        if let Some(e) = e.filter(|e| e & PM_PRESENT != 0) {
                            let pfn = e & PM_PFN;
                            node[i] = Some(if pfn == 0 {
                                None
                            } else {
                                self.kernel.device_node(pfn)
                            });
                        }
                    }
                }
            }
            let huge = if s.backing == BACKING_HUGETLB && s.page_size > PAGE {
                vec![true; addrs.len()]
            } else {
                self.thp(pid, &addrs, &node, cost, thp_left)
            };
            let mut present: BTreeMap<(Option<u32>, bool), u64> = BTreeMap::new();
            for (i, n) in node.iter().enumerate() {
                if let Some(n) = n {
                    *present.entry((*n, huge[i])).or_default() += 1;
                }
            }
            out.push(Sample {
                tgid: pid,
                kind: s.kind,
                arena: s.arena,
                page_size: s.page_size,
                mbind_mode: s.mbind_mode,
                nodemask: s.nodemask,
                pages_total: s.pages,
                pages_queried: addrs.len() as u64,
                present,
            });
        }
        Ok(out)
    }

    /// Per queried page: inside a transparent huge page? One check per 2 MiB chunk.
    fn thp(
        &mut self,
        pid: u32,
        addrs: &[u64],
        node: &[Option<Option<u32>>],
        cost: &mut Cost,
        thp_left: &mut u64,
    ) -> Vec<bool> {
        let mut huge = vec![false; addrs.len()];
        // The first present queried page of each chunk (addrs ascend within a stratum).
        let mut reps: Vec<(u64, usize)> = Vec::new(); // (chunk, index of its first present page)
        for (i, a) in addrs.iter().enumerate() {
            if node[i].is_some() && reps.last().is_none_or(|(c, _)| *c != a / THP_SIZE) {
                reps.push((a / THP_SIZE, i));
            }
        }
        let checked = (reps.len() as u64).min(*thp_left) as usize;
        cost.thp_unchecked += (reps.len() - checked) as u64;
        *thp_left -= checked as u64;
        let reps = &reps[..checked];
        if reps.is_empty() {
            return huge;
        }
        let keys: Vec<u64> = reps.iter().map(|&(_, i)| addrs[i] / PAGE).collect();
        let k = &mut self.kernel;
        let entries = read_runs(&keys, &mut cost.reads, |f, c| k.pagemap(pid, f, c));
        let mut pfns: Vec<(u64, u64)> = Vec::new(); // (pfn, chunk)
        for (e, (chunk, _)) in entries.iter().zip(reps) {
            if let Some(e) = e.filter(|e| e & PM_PRESENT != 0 && e & PM_PFN != 0) {
                pfns.push((e & PM_PFN, *chunk));
            }
        }
        if pfns.is_empty() {
            return huge;
        }
        pfns.sort_unstable();
        let keys: Vec<u64> = pfns.iter().map(|p| p.0).collect();
        let k = &mut self.kernel;
        let flags = read_runs(&keys, &mut cost.reads, |f, c| k.kpageflags(f, c));
        let thp_chunks: Vec<u64> = pfns
            .iter()
            .zip(flags)
            .filter(|(_, f)| f.is_some_and(|f| f & (KPF_THP | KPF_HUGE) != 0))
            .map(|((_, c), _)| *c)
            .collect();
        for (i, a) in addrs.iter().enumerate() {
            if node[i].is_some() && thp_chunks.contains(&(a / THP_SIZE)) {
                huge[i] = true;
            }
        }
        huge
    }
}

/// The refresher's CPU is kept under this share of one CPU (the target: ≤ 50 ms of CPU
/// per second), whatever the interval asked.
pub const MAX_CPU_SHARE: f64 = 0.05;

/// Placement taken every `interval` (or less often, see [`MAX_CPU_SHARE`]) while a session runs,
/// the last kept per process.
///
/// Why "every interval, keep the last": the pages of a process can only be queried while it has
/// its address space, and a process drops it in `exit_mm`, before it is a zombie and before the
/// probe's `sched_process_exit` event is even emitted, so nothing seen *at* the exit can still
/// query it. The refresher therefore queries every `--placement-interval` and keeps, per
/// process, the last refresh that completed while the address space existed
/// ([`Collector::refresh`] drops a refresh that raced with the exit). What a command did in its
/// last interval before exiting is not seen: the interval bounds that window (100 ms costs a
/// 1 GiB target ≈ 16 ms of probe CPU per refresh, see docs/probe.md).
pub struct Refresher<K: Kernel = System> {
    collector: Collector<K>,
    interval: std::time::Duration,
    next: Option<Instant>,
    last: Placement,
    /// Cost of the latest refresh.
    pub cost: Cost,
    /// Refreshes done.
    pub refreshes: u64,
    /// CPU seconds of all refreshes.
    pub cpu_s: f64,
}

impl Refresher<System> {
    /// On the live system.
    pub fn new(interval: std::time::Duration, budget: Budget) -> Self {
        Refresher::with_collector(Collector::new(budget), interval)
    }
}

impl<K: Kernel> Refresher<K> {
    /// Around `collector`.
    pub fn with_collector(collector: Collector<K>, interval: std::time::Duration) -> Self {
        Refresher {
            collector,
            interval,
            next: None,
            last: Placement::default(),
            cost: Cost::default(),
            refreshes: 0,
            cpu_s: 0.0,
        }
    }

    /// Refresh now if the interval has passed (or `force`), over every process with extents.
    /// Returns whether it refreshed.
    pub fn tick(
        &mut self,
        extents: &crate::model::Extents,
        ts_ns: u64,
        force: bool,
    ) -> io::Result<bool> {
        let now = Instant::now();
        if !force && self.next.is_some_and(|t| now < t) {
            return Ok(false);
        }
        let procs: Vec<(u32, Vec<Range>)> = extents
            .pids()
            .into_iter()
            .map(|p| (p, extents.ranges(p).collect()))
            .collect();
        let (p, cost) = self.collector.refresh(&procs, ts_ns)?;
        self.last.update(p);
        // At most MAX_CPU_SHARE of one CPU: a refresh that cost c s waits at least c/share.
        let pause = std::time::Duration::from_secs_f64(cost.cpu_s / MAX_CPU_SHARE);
        self.next = Some(now + self.interval.max(pause));
        self.cost = cost;
        self.refreshes += 1;
        self.cpu_s += cost.cpu_s;
        Ok(true)
    }

    /// The last placement of each process.
    pub fn last(&self) -> &Placement {
        &self.last
    }
}

mod sys {
    //! The placement collector's system calls.
    #![allow(
        unsafe_code,
        reason = "move_pages(2) and clock_gettime(2): see each SAFETY comment"
    )]

    use std::io;

    /// The node of each page at `addrs` of process `pid` into `status` (move_pages(2) with a
    /// NULL nodes array: nothing moves).
    pub fn move_pages_query(pid: u32, addrs: &[u64], status: &mut [i32]) -> io::Result<()> {
        assert_eq!(addrs.len(), status.len());
        // SAFETY: move_pages(2): `pages` points to `count` pointer-sized addresses (u64 on the
        // 64-bit targets this crate builds for), `status` to `count` ints it writes; `nodes`
        // NULL only queries. The addresses are not dereferenced by us, only looked up by the
        // kernel in the target's page tables.
        let r = unsafe {
            libc::syscall(
                libc::SYS_move_pages,
                libc::c_long::from(pid as i32),
                addrs.len() as libc::c_ulong,
                addrs.as_ptr(),
                std::ptr::null::<libc::c_int>(),
                status.as_mut_ptr(),
                0 as libc::c_int,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// CPU time (user + system) of the calling thread, in seconds.
    pub fn thread_cpu_s() -> f64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime(2) writes one timespec into the valid `ts`.
        let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if r != 0 {
            return 0.0;
        }
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NONE;

    const MB2: u64 = 2 << 20;

    fn range(addr: u64, size: u64, kind: u32, arena: u32, backing: u32, page: u64) -> Range {
        Range {
            addr,
            size,
            kind,
            arena,
            mbind_mode: if kind == 3 { 1 } else { -1 },
            backing,
            page_size: page,
            nodemask: [if kind == 3 { 2 } else { 0 }, 0, 0, 0],
        }
    }

    /// A fake kernel: pages have nodes by a function of the address; pagemap and kpageflags
    /// from closures; counts the calls.
    struct Fake {
        node: Box<dyn Fn(u64) -> i32>,
        frame: Box<dyn Fn(u64) -> Option<u64>>,
        thp_frames: Box<dyn Fn(u64) -> bool>,
        devices: Vec<DeviceRange>,
        asked: Vec<u64>,
        gone: Vec<u32>,
        exited: Vec<u32>,
    }

    impl Fake {
        fn new(node: impl Fn(u64) -> i32 + 'static) -> Fake {
            Fake {
                node: Box::new(node),
                frame: Box::new(|_| None),
                thp_frames: Box::new(|_| false),
                devices: Vec::new(),
                asked: Vec::new(),
                gone: Vec::new(),
                exited: Vec::new(),
            }
        }
    }

    impl Kernel for Fake {
        fn page_nodes(&mut self, pid: u32, addrs: &[u64], status: &mut [i32]) -> io::Result<()> {
            if self.gone.contains(&pid) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            assert!(addrs.len() <= CHUNK);
            for (a, s) in addrs.iter().zip(status.iter_mut()) {
                self.asked.push(*a);
                *s = (self.node)(*a);
            }
            Ok(())
        }
        fn pagemap(&mut self, _pid: u32, first: u64, count: u64) -> io::Result<Vec<u64>> {
            Ok((first..first + count)
                .map(|p| (self.frame)(p * PAGE).map_or(0, |f| PM_PRESENT | f))
                .collect())
        }
        fn kpageflags(&mut self, first: u64, count: u64) -> io::Result<Vec<u64>> {
            Ok((first..first + count)
                .map(|f| if (self.thp_frames)(f) { KPF_THP } else { 0 })
                .collect())
        }
        fn device_node(&self, pfn: u64) -> Option<u32> {
            self.devices
                .iter()
                .find(|r| r.start_pfn <= pfn && pfn < r.end_pfn)
                .map(|r| r.node)
        }
        fn thread_cpu_s(&self) -> f64 {
            0.0
        }
        fn has_mm(&self, pid: u32) -> bool {
            !self.exited.contains(&pid)
        }
    }

    #[test]
    fn exact_under_budget() {
        // HBW_PREFERRED (kind 3, node 1 asked): 2 extents; the second's upper half on node 0;
        // DEFAULT: one extent, every 4th page not present.
        let base = 0x7f00_0000_0000u64;
        let ranges = vec![
            range(base, MB2, 3, 1, 0, PAGE),
            range(base + 4 * MB2, MB2, 3, 1, 0, PAGE),
            range(base + 8 * MB2, MB2, 0, NONE, 0, PAGE),
        ];
        let fake = Fake::new(move |a| {
            if a >= base + 8 * MB2 {
                if (a / PAGE).is_multiple_of(4) {
                    -libc::ENOENT
                } else {
                    0
                }
            } else if a >= base + 4 * MB2 + MB2 / 2 {
                0
            } else {
                1
            }
        });
        let mut c = Collector::with_kernel(fake, Budget::default(), 1);
        let (p, cost) = c.refresh(&[(42, ranges)], 7).unwrap();
        assert_eq!(cost.pages_queried, 3 * 512);
        assert_eq!(cost.pages_total, 3 * 512);
        let k = p.get(42, 3).unwrap();
        assert!(!k.total.sampled());
        assert_eq!(k.asked_nodes, vec![1]);
        assert_eq!(k.total.node_bytes(1), MB2 + MB2 / 2);
        assert_eq!(k.total.misplaced.bytes, MB2 / 2);
        let d = p.get(42, 0).unwrap();
        assert_eq!(d.total.node_bytes(0), MB2 * 3 / 4);
        assert_eq!(d.total.misplaced.bytes, 0);
        assert_eq!(d.total.base.bytes, MB2 * 3 / 4);
        assert_eq!(p.ts_ns, 7);
        // Every page asked once, in ascending order within a stratum.
        let mut a = c.kernel.asked.clone();
        a.sort_unstable();
        a.dedup();
        assert_eq!(a.len(), 3 * 512);
    }

    #[test]
    fn sampled_over_budget_with_bound() {
        // 256 MiB of kind 3: pages in the upper quarter spilled to node 0; budget 8 Ki pages.
        let base = 0x7f00_0000_0000u64;
        let size = 256u64 << 20;
        let ranges = vec![range(base, size, 3, 0, 0, PAGE)];
        let fake = Fake::new(move |a| if a - base >= size / 4 * 3 { 0 } else { 1 });
        let budget = Budget {
            pages: 8192,
            ..Budget::default()
        };
        let mut c = Collector::with_kernel(fake, budget, 3);
        let (p, cost) = c.refresh(&[(1, ranges)], 0).unwrap();
        assert_eq!(cost.pages_queried, 8192);
        assert_eq!(cost.move_pages_calls, 2);
        let t = &p.get(1, 3).unwrap().total;
        assert!(t.sampled());
        let truth = size / 4;
        let err = t.misplaced.error_bytes();
        assert!(err > 0 && err < size / 100, "{err}");
        assert!(
            t.misplaced.bytes.abs_diff(truth) <= err,
            "{} vs {truth} ± {err}",
            t.misplaced.bytes
        );
        assert_eq!(t.resident.bytes, size);
        // Jittered: one page in each run of 8 pages.
        let asked = &c.kernel.asked;
        assert!(asked
            .iter()
            .enumerate()
            .all(|(j, a)| (a - base) / PAGE / 8 == j as u64));
    }

    #[test]
    fn budget_shares_and_small_strata() {
        let mut s = strata(&[
            range(0x1000_0000, 1 << 30, 0, 0, 0, PAGE),
            range(0x9000_0000, 64 << 10, 11, 0, 0, PAGE),
            range(0xa000_0000, 1000 << 12, 10, 0, 0, PAGE),
            range(0x4000_0000, 4 * MB2, 5, 0, BACKING_HUGETLB, MB2),
        ]);
        allot(&mut s, 65536);
        let by_kind: BTreeMap<u32, (u64, u64)> =
            s.iter().map(|x| (x.kind, (x.pages, x.n))).collect();
        assert_eq!(by_kind[&5], (4, 4), "hugetlb counts huge pages");
        assert_eq!(by_kind[&11], (16, 16), "small strata whole");
        assert_eq!(by_kind[&10], (1000, 256), "at least MIN_PER_STRATUM");
        assert_eq!(by_kind[&0].0, 262_144);
        assert!((65_000..=65_536).contains(&by_kind[&0].1));
        assert_eq!(pick(10, 10, &mut Rng::new(1)), (0..10).collect::<Vec<_>>());
        let p = pick(1000, 10, &mut Rng::new(9));
        assert!(p.iter().enumerate().all(|(j, i)| i / 100 == j as u64));
    }

    #[test]
    fn hugetlb_thp_and_device_pages() {
        let h = 0x4000_0000u64;
        let a = 0x8000_0000u64;
        let f = 0xc000_0000u64;
        let ranges = vec![
            range(h, 2 * MB2, 5, 0, BACKING_HUGETLB, MB2),
            range(a, 2 * MB2, 0, 0, 0, PAGE),
            range(f, MB2, 30, 0, BACKING_FILE, PAGE),
        ];
        let mut fake = Fake::new(move |x| {
            if x >= f + MB2 / 8 * 3 {
                -libc::EEXIST // device pages in a 2 MiB entry, as 5.10 reports them
            } else if x >= f + MB2 / 4 {
                -libc::EFAULT // device pages as 5.10 reports them
            } else if x >= f {
                -libc::ENOENT // device pages
            } else {
                0
            }
        });
        // The anon extent: its first 2 MiB in a THP (frames 0x1000..), the second in base pages.
        // The file: the first half present on a pmem frame range of node 1, the rest absent.
        fake.frame = Box::new(move |x| {
            if (a..a + MB2).contains(&x) {
                Some(0x1000 + (x - a) / PAGE)
            } else if (a + MB2..a + 2 * MB2).contains(&x) {
                Some(0x9_0000 + (x - a) / PAGE * 3)
            } else if (f..f + MB2 / 2).contains(&x) {
                Some(0x10_0000 + (x - f) / PAGE)
            } else {
                None
            }
        });
        fake.thp_frames = Box::new(|fr| (0x1000..0x1200).contains(&fr));
        fake.devices = vec![DeviceRange {
            start_pfn: 0x10_0000,
            end_pfn: 0x20_0000,
            node: 1,
        }];
        let mut c = Collector::with_kernel(fake, Budget::default(), 1);
        let (p, cost) = c.refresh(&[(9, ranges)], 0).unwrap();
        let hp = p.get(9, 5).unwrap();
        assert_eq!(hp.total.huge.bytes, 2 * MB2);
        assert_eq!(hp.total.pages_total, 2);
        let an = p.get(9, 0).unwrap();
        assert_eq!(an.total.huge.bytes, MB2);
        assert_eq!(an.total.base.bytes, MB2);
        let fl = p.get(9, 30).unwrap();
        assert_eq!(fl.total.node_bytes(1), MB2 / 2);
        assert_eq!(fl.total.resident.bytes, MB2 / 2);
        assert_eq!(fl.total.unknown_node.bytes, 0);
        // Few reads: runs merged (pagemap of the file: one; THP: one pagemap + kpageflags per
        // chunk at most).
        assert!(cost.reads <= 1 + 2 * 2 + 2, "{}", cost.reads);
        assert_eq!(cost.thp_unchecked, 0);
    }

    #[test]
    fn thp_cap_and_gone_processes() {
        let a = 0x8000_0000u64;
        let ranges = vec![range(a, 8 * MB2, 0, 0, 0, PAGE)];
        let mut fake = Fake::new(|_| 0);
        fake.gone = vec![2];
        fake.exited = vec![4];
        let budget = Budget {
            thp_chunks: 3,
            ..Budget::default()
        };
        let mut c = Collector::with_kernel(fake, budget, 1);
        let (p, cost) = c
            .refresh(&[(2, ranges.clone()), (3, ranges.clone()), (4, ranges)], 0)
            .unwrap();
        assert!(p.get(2, 0).is_none(), "a process that is gone is left out");
        assert!(
            p.get(4, 0).is_none(),
            "so is one whose address space went during the queries"
        );
        assert_eq!(p.get(3, 0).unwrap().total.resident.bytes, 8 * MB2);
        assert_eq!(
            cost.thp_unchecked,
            5 + 8,
            "pid 4's chunks are over the cap too"
        );
    }

    #[test]
    fn refresher_keeps_the_last_placement_of_a_process_that_exited() {
        use crate::model::{ExtentEvent, ExtentOp, Extents};
        let a = 0x8000_0000u64;
        let mut x = Extents::new();
        x.apply(
            5,
            &ExtentEvent {
                op: ExtentOp::Alloc,
                addr: a,
                size: MB2,
                addr2: 0,
                size2: 0,
                kind: 0,
                arena: 0,
                mbind_mode: -1,
                backing: 0,
                page_size: PAGE,
                nodemask: [0; 4],
            },
        );
        let c = Collector::with_kernel(Fake::new(|_| 0), Budget::default(), 1);
        let mut r = Refresher::with_collector(c, std::time::Duration::from_secs(3600));
        assert!(r.tick(&x, 1, false).unwrap());
        assert!(!r.tick(&x, 2, false).unwrap(), "not due");
        assert_eq!(r.last().get(5, 0).unwrap().total.resident.bytes, MB2);
        // The process exits: its address space is gone; the refresh is dropped, the last stays.
        r.collector.kernel.exited = vec![5];
        assert!(r.tick(&x, 3, true).unwrap());
        assert_eq!(r.last().get(5, 0).unwrap().total.resident.bytes, MB2);
        assert_eq!(r.refreshes, 2);
    }

    #[test]
    fn read_runs_merges_near_keys() {
        let mut reads = 0;
        let mut calls = Vec::new();
        let v = read_runs(&[1, 2, 100, 1000, 1001], &mut reads, |f, c| {
            calls.push((f, c));
            Ok((f..f + c).map(|x| x * 10).collect())
        });
        assert_eq!(calls, vec![(1, 100), (1000, 2)]);
        assert_eq!(reads, 2);
        assert_eq!(
            v,
            vec![Some(10), Some(20), Some(1000), Some(10000), Some(10010)]
        );
    }

    #[test]
    fn pmem_regions_from_sysfs() {
        let d = std::env::temp_dir().join(format!("mkp-sysfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (r, res, size, node) in [
            ("region0", "0x140000000", "536870912", "1"),
            ("region1", "0x100000000", "268435456", "0"),
            ("region2", "0x200000000", "0", "0"),
        ] {
            let p = d.join("bus/nd/devices").join(r);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("resource"), format!("{res}\n")).unwrap();
            std::fs::write(p.join("size"), format!("{size}\n")).unwrap();
            std::fs::write(p.join("numa_node"), format!("{node}\n")).unwrap();
        }
        std::fs::create_dir_all(d.join("bus/nd/devices/ndbus0")).unwrap();
        let v = device_ranges(&d);
        assert_eq!(
            v,
            vec![
                DeviceRange {
                    start_pfn: 0x10_0000,
                    end_pfn: 0x11_0000,
                    node: 0
                },
                DeviceRange {
                    start_pfn: 0x14_0000,
                    end_pfn: 0x16_0000,
                    node: 1
                },
            ]
        );
        let s = System::at(&d, &d);
        assert_eq!(s.device_node(0x15_0000), Some(1));
        assert_eq!(s.device_node(0x10_ffff), Some(0));
        assert_eq!(s.device_node(0x11_0000), None);
        assert_eq!(s.device_node(0x16_0000), None);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn own_pages_on_the_live_system() {
        // move_pages on our own pid needs no privilege: a touched buffer is resident.
        let buf = vec![1u8; 1 << 20];
        let base = buf.as_ptr() as u64 / PAGE * PAGE + PAGE;
        let ranges = vec![range(base, 128 * PAGE, 0, 0, 0, PAGE)];
        let mut c = Collector::new(Budget::default());
        let (p, cost) = c.refresh(&[(std::process::id(), ranges)], 0).unwrap();
        let t = &p.get(std::process::id(), 0).unwrap().total;
        assert_eq!(t.resident.bytes, 128 * PAGE, "{t:?}");
        assert_eq!(t.nodes.values().map(|e| e.bytes).sum::<u64>(), 128 * PAGE);
        assert!(cost.cpu_s >= 0.0 && cost.wall_s > 0.0);
        assert!(System::new().has_mm(std::process::id()));
        assert!(!System::new().has_mm(2), "kthreadd has no address space");
        drop(buf);
    }

    /// The cost figures of docs/probe.md ("Placement"): 1 GiB of touched anonymous memory in
    /// this process (half of it in THP when the kernel allows `madvise`), refreshed with the
    /// default budget (sampled) and with a budget above its page count (exact).
    /// `cargo test --release -p memkind-probe -- --ignored placement_cost --nocapture`
    #[test]
    #[ignore = "a measurement, not a check: prints the cost of a refresh"]
    fn placement_cost() {
        const GIB: usize = 1 << 30;
        // An anonymous 1 GiB mapping, 2 MiB aligned, its second half madvised for THP.
        let mut v: Vec<u8> = Vec::with_capacity(GIB + (2 << 20));
        let base = (v.as_mut_ptr() as u64).next_multiple_of(2 << 20);
        sys_test::madvise_hugepage(base + GIB as u64 / 2, GIB / 2);
        sys_test::fill(base, GIB);
        let ranges = vec![range(base, GIB as u64, 0, 0, 0, PAGE)];
        let pid = std::process::id();
        for (label, budget) in [
            ("sampled (budget 64 Ki pages)", Budget::default()),
            (
                "exact (all 256 Ki pages)",
                Budget {
                    pages: 1 << 20,
                    thp_chunks: 1 << 20,
                },
            ),
        ] {
            let mut c = Collector::new(budget);
            let mut best = Cost {
                cpu_s: f64::MAX,
                ..Cost::default()
            };
            let mut last = None;
            for _ in 0..5 {
                let (p, cost) = c.refresh(&[(pid, ranges.clone())], 0).unwrap();
                if cost.cpu_s < best.cpu_s {
                    best = cost;
                }
                last = Some(p);
            }
            let t = last.unwrap().get(pid, 0).unwrap().total.clone();
            println!(
                "{label}: {} pages queried of {}, {} move_pages calls, {} reads, cpu {:.2} ms, wall {:.2} ms, {:.1} M pages/s; resident {} ± {} (huge {}, base {})",
                best.pages_queried,
                best.pages_total,
                best.move_pages_calls,
                best.reads,
                best.cpu_s * 1e3,
                best.wall_s * 1e3,
                best.pages_queried as f64 / best.cpu_s / 1e6,
                t.resident.bytes,
                t.error_bytes(),
                t.huge.bytes,
                t.base.bytes
            );
        }
        drop(v);
    }
}

#[cfg(test)]
mod sys_test {
    //! madvise for the measurement above.
    #![allow(unsafe_code, reason = "madvise(2) on memory the test owns")]

    /// MADV_HUGEPAGE on `[addr, addr+len)` (ignored where THP is off).
    pub fn madvise_hugepage(addr: u64, len: usize) {
        // SAFETY: the range is inside a live allocation of the caller; MADV_HUGEPAGE changes
        // no contents.
        unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
    }

    /// Touch every byte of `[addr, addr+len)`, which must lie inside memory the caller owns.
    pub fn fill(addr: u64, len: usize) {
        // SAFETY: the caller's allocation covers the range (a Vec's spare capacity).
        unsafe { std::ptr::write_bytes(addr as *mut u8, 1, len) };
    }
}
