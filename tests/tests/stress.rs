//! Stress through the C ABI, several kinds at once (DEFAULT, REGULAR, a PMEM kind in /tmp, a
//! fixed kind on a buffer of the test's):
//! - `threads_kinds_fork_and_kind_churn`: threads allocate, fill, realloc and free blocks of
//!   every kind, handing blocks to each other (most frees happen in another thread than the
//!   allocation); two of them go through a memtier memory; the main thread forks now and then
//!   (the child allocates and frees in every kind, checks detect_kind and exits 0); one thread
//!   creates, uses and destroys PMEM kinds all along (live blocks included); one runs storms of
//!   short-lived threads. Every block's fill pattern is checked when it changes hands.
//! - `churn_rss_stays_bounded`: threads replace blocks of a bounded working set for
//!   `MEMKIND_RS_STRESS_SECS` seconds (default 20; the long form is e.g. 600), sampling VmRSS
//!   every second: the second half's peak must stay within the first half's peak + 25 % + 48 MiB.
//!
//! The two run one at a time (one lock): the second measures the process's RSS.

use core::ffi::c_void;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memkind_tests::capi::*;

static SERIAL: Mutex<()> = Mutex::new(());

const MIB: usize = 1 << 20;

/// xorshift64*: deterministic per thread, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Mostly small, some large, a few MiB-sized.
    fn size(&mut self) -> usize {
        match self.below(100) {
            0..=69 => 1 + self.below(512),
            70..=94 => 1 + self.below(64 << 10),
            95..=98 => 1 + self.below(512 << 10),
            _ => 1 + self.below(3 * MIB),
        }
    }
}

/// The kinds under test; the PMEM directory and the fixed buffer live as long as this.
struct Kinds {
    list: Vec<(&'static str, MemkindT)>,
    dir: std::path::PathBuf,
    _buf: Vec<u8>,
}

// SAFETY: the raw kind handles name process-wide memkind kinds, usable from any thread.
unsafe impl Send for Kinds {}
// SAFETY: as above.
unsafe impl Sync for Kinds {}

impl Kinds {
    fn new(tag: &str, fixed_len: usize) -> Kinds {
        let dir = std::path::Path::new("/tmp")
            .join(format!("memkind-rs-stress-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = CString::new(dir.to_str().unwrap()).unwrap();
        let mut pmem: MemkindT = core::ptr::null();
        assert_eq!(memkind_create_pmem(c.as_ptr(), 0, &mut pmem), 0);
        let mut buf = vec![0u8; fixed_len];
        let mut fixed: MemkindT = core::ptr::null();
        assert_eq!(
            memkind_create_fixed(buf.as_mut_ptr().cast(), buf.len(), &mut fixed),
            0
        );
        Kinds {
            list: vec![
                ("DEFAULT", MEMKIND_DEFAULT),
                ("REGULAR", MEMKIND_REGULAR),
                ("PMEM", pmem),
                ("FIXED", fixed),
            ],
            dir,
            _buf: buf,
        }
    }
    /// Kinds that may run out (the fixed buffer).
    fn bounded(&self, k: MemkindT) -> bool {
        k == self.list[3].1
    }
}

impl Drop for Kinds {
    fn drop(&mut self) {
        assert_eq!(memkind_destroy_kind(self.list[2].1), 0);
        assert_eq!(memkind_destroy_kind(self.list[3].1), 0);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A block in flight between threads (addresses as usize: Send).
#[derive(Clone, Copy)]
struct Block {
    p: usize,
    n: usize,
    seed: u8,
    kind: usize,
    /// From memtier_malloc: in one of the memory's tiers, not necessarily `kind`.
    tiered: bool,
}

fn pat(seed: u8, i: usize) -> u8 {
    seed.wrapping_add((i as u8).wrapping_mul(29)) ^ ((i >> 9) as u8)
}

/// Head and tail bytes carry the pattern (cheap for big blocks).
fn marked(n: usize) -> impl Iterator<Item = usize> {
    let head = n.min(256);
    (0..head).chain(n.saturating_sub(64).max(head)..n)
}

fn fill(b: &Block) {
    for i in marked(b.n) {
        // SAFETY: a live block of b.n bytes owned by this thread now.
        unsafe { (b.p as *mut u8).add(i).write(pat(b.seed, i)) };
    }
}

fn check(b: &Block, what: &str) {
    for i in marked(b.n) {
        // SAFETY: as in `fill`.
        let v = unsafe { (b.p as *const u8).add(i).read() };
        assert_eq!(v, pat(b.seed, i), "{what}: {:#x} (n {}) byte {i}", b.p, b.n);
    }
}

fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

/// One worker step: allocate into the shared pool, or take a block (often another thread's),
/// check it, realloc or free it.
fn step(rng: &mut Rng, kinds: &Kinds, pool: &Mutex<Vec<Block>>, tier: Option<MemoryT>) {
    let take = {
        let mut pool = pool.lock().unwrap();
        if pool.len() > 64 && rng.below(2) == 0 || pool.len() > 512 {
            let i = rng.below(pool.len());
            Some(pool.swap_remove(i))
        } else {
            None
        }
    };
    match take {
        None => {
            let ki = rng.below(kinds.list.len());
            let (name, k) = kinds.list[ki];
            let n = rng.size();
            let tiered = tier.is_some() && rng.below(3) == 0;
            let p = match (tier, rng.below(2)) {
                (Some(m), _) if tiered => memtier_malloc(m, n),
                (_, 0) => memkind_calloc(k, 1, n),
                _ => memkind_malloc(k, n),
            };
            if p.is_null() {
                assert!(kinds.bounded(k), "{name}: NULL for {n} bytes");
                return;
            }
            let usable = memkind_malloc_usable_size(core::ptr::null(), p);
            assert!(usable >= n, "{name}: usable {usable} < {n}");
            let b = Block {
                p: p as usize,
                n,
                seed: rng.next() as u8,
                kind: ki,
                tiered,
            };
            fill(&b);
            pool.lock().unwrap().push(b);
        }
        Some(b) => {
            check(&b, "handed over");
            let p = b.p as *mut c_void;
            let k = kinds.list[b.kind].1;
            let owner = memkind_detect_kind(p);
            if b.tiered {
                assert!(owner == MEMKIND_DEFAULT || owner == MEMKIND_REGULAR);
            } else {
                assert_eq!(owner, k, "{}", kinds.list[b.kind].0);
            }
            match rng.below(3) {
                0 => {
                    let n = rng.size();
                    let named = rng.below(2) == 0;
                    let q = memkind_realloc(if named { k } else { core::ptr::null() }, p, n);
                    if q.is_null() {
                        assert!(kinds.bounded(k), "realloc to {n} failed");
                        memkind_free(core::ptr::null(), p);
                        return;
                    }
                    let kept = Block {
                        p: q as usize,
                        tiered: b.tiered && !named,
                        ..b
                    };
                    for i in marked(b.n).filter(|&i| i < n) {
                        // SAFETY: a live block of at least n bytes.
                        let v = unsafe { (q as *const u8).add(i).read() };
                        assert_eq!(v, pat(b.seed, i), "realloc {} -> {n} byte {i}", b.n);
                    }
                    let nb = Block { n, ..kept };
                    fill(&nb);
                    pool.lock().unwrap().push(nb);
                }
                1 => memtier_kind_free(core::ptr::null(), p),
                _ => memkind_free(
                    if rng.below(2) == 0 {
                        k
                    } else {
                        core::ptr::null()
                    },
                    p,
                ),
            }
        }
    }
}

/// The child of a fork: every kind allocates, checks and frees; exit 0 on success.
fn child(kinds: &Kinds) -> ! {
    let mut ok = true;
    for &(_, k) in &kinds.list {
        for n in [16usize, 4096, 100_000, 2 * MIB] {
            let p = memkind_malloc(k, n);
            if p.is_null() {
                ok &= kinds.bounded(k);
                continue;
            }
            ok &= memkind_detect_kind(p) == k;
            // SAFETY: a live block of n bytes.
            unsafe { core::ptr::write_bytes(p as *mut u8, 0xa5, n) };
            let q = memkind_realloc(k, p, n * 2);
            ok &= !q.is_null() || kinds.bounded(k);
            memkind_free(core::ptr::null(), if q.is_null() { p } else { q });
        }
    }
    // SAFETY: _exit in the forked child: no atexit handlers, no unwinding.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

fn fork_and_check(kinds: &Kinds) {
    // SAFETY: the child only calls memkind and _exit (see `child`).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        child(kinds);
    }
    let mut status = 0;
    // SAFETY: our own child, a valid status pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "fork child status {status:#x}"
    );
}

#[test]
fn threads_kinds_fork_and_kind_churn() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let kinds = Arc::new(Kinds::new("mix", 64 * MIB));
    let pool = Arc::new(Mutex::new(Vec::<Block>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let secs = 6;
    // A memtier memory over DEFAULT and REGULAR.
    let b = memtier_builder_new(0);
    assert!(!b.is_null());
    assert_eq!(memtier_builder_add_tier(b, MEMKIND_DEFAULT, 1), 0);
    assert_eq!(memtier_builder_add_tier(b, MEMKIND_REGULAR, 2), 0);
    let mem = memtier_builder_construct_memtier_memory(b) as usize;
    memtier_builder_delete(b);
    assert_ne!(mem, 0);

    let steps = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for t in 0..6u64 {
        let (kinds, pool, stop, steps) = (kinds.clone(), pool.clone(), stop.clone(), steps.clone());
        hs.push(std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
            let tier = (t < 2).then_some(mem as MemoryT);
            while !stop.load(Ordering::Relaxed) {
                step(&mut rng, &kinds, &pool, tier);
                steps.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // PMEM kinds created, used and destroyed while the others run.
    let created = Arc::new(AtomicUsize::new(0));
    {
        let (kinds, stop, created) = (kinds.clone(), stop.clone(), created.clone());
        hs.push(std::thread::spawn(move || {
            let c = CString::new(kinds.dir.to_str().unwrap()).unwrap();
            let mut rng = Rng(77);
            while !stop.load(Ordering::Relaxed) {
                let mut k: MemkindT = core::ptr::null();
                assert_eq!(memkind_create_pmem(c.as_ptr(), 0, &mut k), 0);
                let ps: Vec<_> = (0..64).map(|_| memkind_malloc(k, rng.size())).collect();
                assert!(ps.iter().all(|p| !p.is_null()));
                assert!(ps.iter().all(|&p| memkind_detect_kind(p) == k));
                // Half freed, half left to the destroy.
                ps.iter().step_by(2).for_each(|&p| memkind_free(k, p));
                assert_eq!(memkind_destroy_kind(k), 0);
                created.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Storms of short-lived threads.
    let storms = Arc::new(AtomicUsize::new(0));
    {
        let (kinds, stop, storms) = (kinds.clone(), stop.clone(), storms.clone());
        hs.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = (0..50)
                    .map(|i| {
                        let kinds = kinds.clone();
                        std::thread::spawn(move || {
                            for &(_, k) in &kinds.list {
                                let p = memkind_malloc(k, 16 << (i % 12));
                                assert!(!p.is_null() || kinds.bounded(k));
                                memkind_free(core::ptr::null(), p);
                            }
                        })
                    })
                    .collect();
                batch.into_iter().for_each(|h| h.join().unwrap());
                storms.fetch_add(50, Ordering::Relaxed);
            }
        }));
    }
    let t0 = Instant::now();
    let mut forks = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(700));
        fork_and_check(&kinds);
        forks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    hs.into_iter().for_each(|h| h.join().unwrap());
    for b in pool.lock().unwrap().drain(..) {
        check(&b, "at the end");
        memkind_free(core::ptr::null(), b.p as *mut c_void);
    }
    memtier_delete_memtier_memory(mem as MemoryT);
    let (s, c, st) = (
        steps.load(Ordering::Relaxed),
        created.load(Ordering::Relaxed),
        storms.load(Ordering::Relaxed),
    );
    println!("stress: {s} steps, {forks} forks, {c} PMEM kinds created and destroyed, {st} short-lived threads");
    assert!(
        forks >= 3 && c >= 3 && st >= 100 && s > 10_000,
        "too little work done"
    );
}

#[test]
fn churn_rss_stays_bounded() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let secs: u64 = std::env::var("MEMKIND_RS_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let kinds = Arc::new(Kinds::new("churn", 128 * MIB));
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..4u64)
        .map(|t| {
            let (kinds, stop, ops) = (kinds.clone(), stop.clone(), ops.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x1234_5678 ^ (t + 1));
                // A working set of at most 1500 blocks (~40 MiB expected per thread).
                let mut set: Vec<Option<Block>> = vec![None; 1500];
                while !stop.load(Ordering::Relaxed) {
                    let i = rng.below(set.len());
                    if let Some(b) = set[i].take() {
                        check(&b, "churn");
                        memkind_free(core::ptr::null(), b.p as *mut c_void);
                    }
                    let ki = rng.below(kinds.list.len());
                    let k = kinds.list[ki].1;
                    let n = rng.size();
                    let p = memkind_malloc(k, n);
                    if p.is_null() {
                        assert!(kinds.bounded(k));
                        continue;
                    }
                    let b = Block {
                        p: p as usize,
                        n,
                        seed: rng.next() as u8,
                        kind: ki,
                        tiered: false,
                    };
                    fill(&b);
                    set[i] = Some(b);
                    ops.fetch_add(1, Ordering::Relaxed);
                }
                for b in set.into_iter().flatten() {
                    memkind_free(core::ptr::null(), b.p as *mut c_void);
                }
            })
        })
        .collect();
    let mut samples = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        samples.push(rss_kib());
    }
    stop.store(true, Ordering::Relaxed);
    hs.into_iter().for_each(|h| h.join().unwrap());
    let half = samples.len() / 2;
    let first = *samples[..half].iter().max().unwrap();
    let second = *samples[half..].iter().max().unwrap();
    println!(
        "churn: {secs} s, {} allocations, VmRSS KiB per second: {samples:?}; peak first half {first}, second half {second}",
        ops.load(Ordering::Relaxed)
    );
    assert!(
        second <= first + first / 4 + 48 * 1024,
        "RSS grew: first half peak {first} KiB, second half {second} KiB"
    );
}
