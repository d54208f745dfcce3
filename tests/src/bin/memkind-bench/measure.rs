//! Measurement: the timed loops (patterns), calibration of the iteration count, warm-up, and the
//! interleaved, barrier-started sampling of several contenders in one cell.
//!
//! A *contender* is one allocator configuration (ours / memkind / jemalloc, or a variant such as
//! "free with a NULL kind"). Every contender of a cell is sampled in turn within each sample round
//! (the starting contender rotates per round) so machine noise hits all of them alike. With T
//! threads, all T threads run the same contender concurrently, started by a barrier; the sample's
//! time is wall time (earliest start to latest end) divided by the operations *per thread*.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::vtable::{CoreFns, DetectKindFn, Kind, Memory, MemtierFns};

/// Outstanding allocations in the `batch` pattern.
pub const BATCH: usize = 64;

/// The work of one sample: run `n` operations on the calling thread and return when the timed
/// part started and ended (a job may do untimed setup / teardown around it).
pub type Job = Arc<dyn Fn(u64) -> Result<Span, String> + Send + Sync>;

/// Start and end of the timed part of one job run.
pub type Span = (Stamp, Stamp);

/// A point in time on both clocks the benchmark can report.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// Wall clock (monotonic).
    pub wall: Instant,
    /// CPU time consumed by the calling thread, in ns (CLOCK_THREAD_CPUTIME_ID).
    pub cpu_ns: u64,
}

impl Stamp {
    /// Now, on the calling thread.
    #[inline]
    pub fn now() -> Stamp {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        let cpu_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        Stamp {
            wall: Instant::now(),
            cpu_ns,
        }
    }
}

/// Which clock the reported figures use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Wall time from the first thread's start to the last thread's end (the default).
    Wall,
    /// The largest per-thread CPU time (user + system): ignores time the threads spent preempted
    /// by other processes (use it on a busy shared machine), but it also hides time spent blocked
    /// on locks or mmap_sem, so contended multi-thread cells look too cheap.
    Cpu,
}

/// What a cell reports for one contender.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Median nanoseconds per operation.
    Ns(f64),
    /// Not measured because the allocator or kind is unavailable (reason).
    Unavail(String),
    /// Measured but failed, e.g. malloc returned NULL (reason).
    Failed(String),
}

impl Outcome {
    /// The figure, if measured.
    pub fn ns(&self) -> Option<f64> {
        match self {
            Outcome::Ns(v) => Some(*v),
            _ => None,
        }
    }
}

/// Allocation pattern of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// malloc then free immediately, repeated.
    Pair,
    /// malloc [`BATCH`] blocks, then free them, repeated.
    Batch,
}

impl Pattern {
    /// Name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Pair => "pair",
            Pattern::Batch => "batch",
        }
    }
}

/// Something that allocates and frees; the timed loops are monomorphised per implementation.
pub trait RawAlloc: Send + Sync + 'static {
    /// Allocate `size` bytes (NULL on failure).
    fn alloc(&self, size: usize) -> *mut u8;
    /// Free a block returned by [`RawAlloc::alloc`].
    fn free(&self, p: *mut u8);
}

/// memkind_malloc(kind) / memkind_free(free_kind) through a library's function pointers.
pub struct MemkindAlloc {
    /// The library's functions.
    pub fns: CoreFns,
    /// Kind passed to memkind_malloc.
    pub kind: Kind,
    /// Kind passed to memkind_free: the same kind, or NULL to force kind detection.
    pub free_kind: Kind,
}

impl RawAlloc for MemkindAlloc {
    #[inline(always)]
    fn alloc(&self, size: usize) -> *mut u8 {
        // SAFETY: kind is a live kind of the library these functions belong to.
        unsafe { (self.fns.malloc)(self.kind.0, size) as *mut u8 }
    }
    #[inline(always)]
    fn free(&self, p: *mut u8) {
        // SAFETY: p came from memkind_malloc(kind) of the same library; free_kind is that kind or
        // NULL, both valid for memkind_free.
        unsafe { (self.fns.free)(self.free_kind.0, p.cast()) }
    }
}

/// memtier_malloc(memory) / memtier_free (= memtier_kind_free(NULL, p)) through a library's
/// function pointers.
pub struct MemtierAlloc {
    /// The library's functions.
    pub fns: MemtierFns,
    /// The memory allocated from.
    pub memory: Memory,
}

impl RawAlloc for MemtierAlloc {
    #[inline(always)]
    fn alloc(&self, size: usize) -> *mut u8 {
        // SAFETY: memory is a live memory of the library these functions belong to.
        unsafe { (self.fns.malloc)(self.memory.0, size) as *mut u8 }
    }
    #[inline(always)]
    fn free(&self, p: *mut u8) {
        // SAFETY: p came from memtier_malloc of the same library (memtier_free's call).
        unsafe { (self.fns.free)(std::ptr::null_mut(), p.cast()) }
    }
}

/// Raw jemalloc (tikv-jemalloc-sys, statically linked, `_rjem_` prefixed): mallocx / dallocx.
pub struct Jemalloc;

impl RawAlloc for Jemalloc {
    #[inline(always)]
    fn alloc(&self, size: usize) -> *mut u8 {
        // SAFETY: size > 0 (all benchmark sizes are), flags 0.
        unsafe { tikv_jemalloc_sys::mallocx(size, 0) as *mut u8 }
    }
    #[inline(always)]
    fn free(&self, p: *mut u8) {
        // SAFETY: p came from mallocx above, flags 0.
        unsafe { tikv_jemalloc_sys::dallocx(p.cast(), 0) }
    }
}

#[inline(always)]
fn touch(p: *mut u8, v: u64) {
    // SAFETY: p is a live allocation of at least 1 byte.
    unsafe { std::ptr::write_volatile(p, v as u8) };
}

fn run_pair<A: RawAlloc>(a: &A, size: usize, n: u64) -> Result<Span, String> {
    let t0 = Stamp::now();
    for i in 0..n {
        let p = a.alloc(size);
        if p.is_null() {
            return Err(format!("malloc({size}) returned NULL"));
        }
        touch(p, i);
        a.free(p);
    }
    Ok((t0, Stamp::now()))
}

fn run_batch<A: RawAlloc>(a: &A, size: usize, n: u64) -> Result<Span, String> {
    let t0 = Stamp::now();
    let mut ptrs = [std::ptr::null_mut::<u8>(); BATCH];
    for r in 0..n.div_ceil(BATCH as u64) {
        for j in 0..BATCH {
            let p = a.alloc(size);
            if p.is_null() {
                for &q in &ptrs[..j] {
                    a.free(q);
                }
                return Err(format!("malloc({size}) returned NULL (batch of {BATCH})"));
            }
            touch(p, r ^ j as u64);
            ptrs[j] = p;
        }
        for &p in &ptrs {
            a.free(p);
        }
    }
    Ok((t0, Stamp::now()))
}

/// A job running `pattern` with `size` on allocator `a`.
pub fn alloc_job<A: RawAlloc>(a: A, pattern: Pattern, size: usize) -> Job {
    let a = Arc::new(a);
    match pattern {
        Pattern::Pair => Arc::new(move |n| run_pair(&*a, size, n)),
        Pattern::Batch => Arc::new(move |n| run_batch(&*a, size, n)),
    }
}

/// A job calling `memkind_detect_kind` `n` times, round robin over [`BATCH`] live blocks of `size`
/// from `kind`. The blocks are allocated before and freed after the timed part.
pub fn detect_job(fns: CoreFns, detect: DetectKindFn, kind: Kind, size: usize) -> Job {
    Arc::new(move |n| {
        let kind: Kind = kind; // capture the whole Send wrapper, not its raw-pointer field
        let mut ptrs = [std::ptr::null_mut::<std::ffi::c_void>(); BATCH];
        for (j, slot) in ptrs.iter_mut().enumerate() {
            // SAFETY: kind is a live kind of this library.
            let p = unsafe { (fns.malloc)(kind.0, size) };
            if p.is_null() {
                for &q in &ptrs[..j] {
                    // SAFETY: q came from memkind_malloc(kind) of this library.
                    unsafe { (fns.free)(kind.0, q) };
                }
                return Err(format!("malloc({size}) returned NULL"));
            }
            *slot = p;
        }
        let mut acc = 0usize;
        let t0 = Stamp::now();
        for i in 0..n {
            let p = ptrs[(i as usize) & (BATCH - 1)];
            // SAFETY: p is a live block of this library.
            acc ^= unsafe { detect(black_box(p)) } as usize;
        }
        black_box(acc);
        let t1 = Stamp::now();
        for &p in &ptrs {
            // SAFETY: p came from memkind_malloc(kind) of this library.
            unsafe { (fns.free)(kind.0, p) };
        }
        Ok((t0, t1))
    })
}

/// A spinning barrier: threads leave within well under a microsecond of each other (a futex
/// barrier wakes the sleepers 10-30 us late here, which would be counted as wall time). It yields
/// after a while so it does not starve a thread that shares a CPU with it.
struct SpinBarrier {
    n: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    fn new(n: usize) -> SpinBarrier {
        SpinBarrier {
            n,
            count: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    fn wait(&self) {
        let gen = self.generation.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.count.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == gen {
            spins += 1;
            if spins < 20_000 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

static SAMPLES: AtomicUsize = AtomicUsize::new(0);
static PREEMPTED: AtomicUsize = AtomicUsize::new(0);

/// (samples taken, samples in which some thread got less than 90% of its wall time on a CPU),
/// over the whole run: a measured indicator of how much other processes disturbed wall-clock
/// figures.
pub fn preemption_stats() -> (usize, usize) {
    (
        SAMPLES.load(Ordering::Relaxed),
        PREEMPTED.load(Ordering::Relaxed),
    )
}

/// Sampling parameters.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Samples per contender per cell; the median is reported.
    pub samples: usize,
    /// Target duration of one sample.
    pub sample_time: Duration,
    /// Clock of the reported figures.
    pub clock: Clock,
}

/// Iteration counts are multiples of this (the batch size).
const GRANULE: u64 = BATCH as u64;
/// Smallest iteration count of a sample or warm-up: four batch rounds, so a slow cell (1 MiB
/// PMEM / HUGETLB batch, tens of us per pair) is not judged on a single round.
const MIN_N: u64 = 4 * GRANULE;
const MAX_N: u64 = 1 << 28;

fn time_job(job: &Job, n: u64, clock: Clock) -> Result<Duration, String> {
    let (t0, t1) = job(n)?;
    Ok(match clock {
        Clock::Wall => t1.wall - t0.wall,
        Clock::Cpu => Duration::from_nanos(t1.cpu_ns.saturating_sub(t0.cpu_ns)),
    })
}

/// Pick n so one run of `job` lasts about `target`. Also serves as the first warm-up.
fn calibrate(job: &Job, target: Duration, clock: Clock) -> Result<u64, String> {
    let mut n = GRANULE;
    job(n)?; // first touch: arenas, tcaches, mappings
    loop {
        let t = time_job(job, n, clock)?;
        if t * 8 >= target || n >= MAX_N {
            let per = t.as_secs_f64() / n as f64;
            let want = (target.as_secs_f64() / per.max(1e-10)) as u64;
            return Ok(want
                .div_ceil(GRANULE)
                .saturating_mul(GRANULE)
                .clamp(MIN_N, MAX_N));
        }
        n *= 8;
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Measure every contender of one cell with `threads` threads; `None` contenders are reported
/// as [`Outcome::Unavail`] with the given reason.
pub fn measure_cell(
    contenders: &[Result<Job, String>],
    threads: usize,
    cfg: &Config,
) -> Vec<Outcome> {
    let k = contenders.len();
    // Calibrate on this thread, one contender after the other.
    let mut plan: Vec<Option<(Job, u64)>> = Vec::with_capacity(k);
    let mut out: Vec<Option<Outcome>> = vec![None; k];
    for (i, c) in contenders.iter().enumerate() {
        match c {
            Err(why) => {
                out[i] = Some(Outcome::Unavail(why.clone()));
                plan.push(None);
            }
            Ok(job) => match calibrate(job, cfg.sample_time, cfg.clock) {
                Ok(n) => plan.push(Some((job.clone(), n))),
                Err(e) => {
                    out[i] = Some(Outcome::Failed(e));
                    plan.push(None);
                }
            },
        }
    }
    let threads = threads.max(1);
    let barrier = Arc::new(SpinBarrier::new(threads));
    let plan = Arc::new(plan);
    let samples = cfg.samples.max(1);
    // Each worker returns, per contender, per sample: (start, end) or the error.
    type Times = Vec<Vec<Result<Span, String>>>;
    let results: Vec<Times> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = barrier.clone();
                let plan = plan.clone();
                s.spawn(move || {
                    let mut times: Times = vec![Vec::with_capacity(samples); k];
                    let mut failed: Vec<Option<String>> = vec![None; k];
                    // Warm-up on this thread, concurrently with the other threads.
                    for (i, p) in plan.iter().enumerate() {
                        if let Some((job, n)) = p {
                            if let Err(e) = job((*n / 4)
                                .div_ceil(GRANULE)
                                .saturating_mul(GRANULE)
                                .max(MIN_N))
                            {
                                failed[i] = Some(e);
                            }
                        }
                    }
                    // Line up after the (unequal) warm-ups so the first sample's barrier is short.
                    barrier.wait();
                    for round in 0..samples {
                        for step in 0..k {
                            let i = (round + step) % k;
                            let Some((job, n)) = &plan[i] else { continue };
                            barrier.wait();
                            if let Some(e) = &failed[i] {
                                times[i].push(Err(e.clone()));
                                continue;
                            }
                            match job(*n) {
                                Ok(span) => times[i].push(Ok(span)),
                                Err(e) => {
                                    failed[i] = Some(e.clone());
                                    times[i].push(Err(e));
                                }
                            }
                        }
                    }
                    times
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench worker panicked"))
            .collect()
    });
    for i in 0..k {
        if out[i].is_some() {
            continue;
        }
        let Some((_, n)) = &plan[i] else { continue };
        let mut per_op = Vec::with_capacity(samples);
        let mut err = None;
        for s in 0..samples {
            let mut start: Option<Instant> = None;
            let mut end: Option<Instant> = None;
            let mut cpu: u64 = 0;
            let mut preempted = false;
            for r in &results {
                match &r[i][s] {
                    Ok((a, b)) => {
                        let wall = (b.wall - a.wall).as_nanos() as f64;
                        preempted |= (b.cpu_ns.saturating_sub(a.cpu_ns) as f64) < 0.9 * wall;
                        start = Some(start.map_or(a.wall, |x| x.min(a.wall)));
                        end = Some(end.map_or(b.wall, |x| x.max(b.wall)));
                        cpu = cpu.max(b.cpu_ns.saturating_sub(a.cpu_ns));
                    }
                    Err(e) => err = Some(e.clone()),
                }
            }
            if std::env::var_os("MEMKIND_BENCH_DEBUG").is_some() {
                let v: Vec<String> = results
                    .iter()
                    .filter_map(|r| r[i][s].as_ref().ok())
                    .map(|(a, b)| {
                        format!(
                            "start+{:?} wall {:?} cpu {:?}",
                            a.wall.duration_since(start.unwrap_or(a.wall)),
                            b.wall - a.wall,
                            Duration::from_nanos(b.cpu_ns.saturating_sub(a.cpu_ns))
                        )
                    })
                    .collect();
                eprintln!("contender {i} sample {s} n {n}: {}", v.join(" | "));
            }
            SAMPLES.fetch_add(1, Ordering::Relaxed);
            if preempted {
                PREEMPTED.fetch_add(1, Ordering::Relaxed);
            }
            if let (Some(a), Some(b)) = (start, end) {
                let ns = match cfg.clock {
                    Clock::Wall => (b - a).as_nanos() as f64,
                    Clock::Cpu => cpu as f64,
                };
                per_op.push(ns / *n as f64);
            }
        }
        out[i] = Some(match err {
            Some(e) => Outcome::Failed(e),
            None => Outcome::Ns(median(&mut per_op)),
        });
    }
    out.into_iter()
        .map(|o| o.expect("every contender has an outcome"))
        .collect()
}
