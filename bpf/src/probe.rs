//! Loading the BPF objects, filling the filters, attaching every program, and reading back.
#![allow(
    unsafe_code,
    reason = "skeleton storage outliving its borrow; bpf_enable_stats"
)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder, UprobeOpts};

use crate::events::{self, read, stat, Call, Event, MkbGranule, MkbGranuleKey, MkbKey};
use crate::library::{Flavor, Library, SYM_EXTENT, SYM_FLUSH, SYM_KIND, SYM_TRACE};
use crate::records::MkpCounters;
use crate::skel::memkind::{MemkindSkel, MemkindSkelBuilder};
use crate::skel::stock::{StockSkel, StockSkelBuilder};
use crate::skel::trace::{TraceSkel, TraceSkelBuilder};
use crate::sys::{self, Proc};
use crate::Error;

/// Which processes to trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// These running processes (`-p PID,PID`).
    Pids(Vec<u32>),
    /// A child we spawned and hold before exec (see [`crate::HeldChild`]): it and the processes
    /// it forks.
    Tree(u32),
    /// Every process mapping the library, running or started later.
    All,
}

/// What to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The library, or an executable linking the `memkind` crate statically.
    pub library: PathBuf,
    /// Which processes.
    pub scope: Scope,
    /// Only processes in this cgroup v2 directory (e.g. `/sys/fs/cgroup/system.slice/x.service`).
    pub cgroup: Option<PathBuf>,
    /// Per-call events ([`Event::Call`]): a uprobe and a uretprobe per call, slow.
    pub trace: bool,
    /// Copy every counter flush to the ring buffer ([`Event::Flush`]) for `record`.
    pub record: bool,
}

/// (tgid, kind, arena): the key of the counter and fault maps. Stock mode has no arenas
/// (`arena` is `MKP_NONE`), and its `kind` is the memkind 1.14 partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Process.
    pub tgid: u32,
    /// Kind id (a static kind's id is its memkind partition).
    pub kind: u32,
    /// jemalloc arena, or `MKP_NONE`.
    pub arena: u32,
}

/// The BPF maps summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Exact counts per (process, kind, arena).
    pub counters: BTreeMap<Key, MkpCounters>,
    /// User page faults in each kind's memory (ours only).
    pub faults: BTreeMap<Key, u64>,
    /// User page faults outside every kind's memory, per process (ours only).
    pub other_faults: BTreeMap<u32, u64>,
    /// Ring buffer records lost (the buffer was full).
    pub lost_events: u64,
    /// Extent events spanning more granules than one event may map (their tail is not
    /// attributed).
    pub granule_overflows: u64,
    /// Failed map insertions (a map full): counts or attributions lost.
    pub map_full: u64,
    /// Records that could not be read from the traced process.
    pub read_faults: u64,
    /// Records dropped because the probed registers were not consistent (the record pointer
    /// outside the thread's stack; seen only in software-emulated guests); included in
    /// `lost_events`.
    pub bad_regs: u64,
    /// Stock: frees and reallocs of a pointer not seen allocated (bytes freed unknown).
    pub live_misses: u64,
    /// Stock: allocations not remembered (the live-block map is full).
    pub live_full: u64,
    /// Per-call tier: returns whose entry was another call.
    pub unpaired: u64,
}

/// How the trace tier sees calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMode {
    /// The library times each call and hands one record to `memkind_arena_trace_event`: one
    /// uprobe hit per call (memkind-rs with counters, since the record exists).
    OneUprobe,
    /// A uprobe and a uretprobe on every probed function (memkind 1.14, older memkind-rs).
    EntryAndReturn,
}

/// Run-time figures of one loaded BPF program (while [`Probe::enable_run_stats`] is held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgStat {
    /// Program name.
    pub name: String,
    /// Kernel program id.
    pub id: u32,
    /// Runs.
    pub run_cnt: u64,
    /// Total run time.
    pub run_time_ns: u64,
    /// Instructions the verifier processed at load (0 before kernel 5.16).
    pub verified_insns: u32,
}

/// Keeps BPF run-time statistics (`BPF_ENABLE_STATS`) on while alive.
#[derive(Debug)]
pub struct RunStatsGuard {
    _fd: OwnedFd,
}

/// Storage for a skeleton's `OpenObject`, freed after the skeleton that borrows it.
struct Storage(NonNull<MaybeUninit<OpenObject>>);

impl Storage {
    fn new() -> (Storage, &'static mut MaybeUninit<OpenObject>) {
        let p = Box::into_raw(Box::new(MaybeUninit::uninit()));
        // SAFETY: `p` comes from Box::into_raw: valid, aligned, and only reachable through the
        // returned reference (the Storage keeps the pointer solely to free it). Every owner
        // of the reference (an OpenSkel / Skel) is dropped before the Storage: in `Owned` the
        // skeleton field is declared first, and on error paths the skeleton is a later local.
        (Storage(NonNull::new(p).expect("Box is non-null")), unsafe {
            &mut *p
        })
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::into_raw and the skeleton borrowing it is gone.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// A loaded skeleton with the storage it borrows. Field order is drop order.
struct Owned<S> {
    skel: S,
    _storage: Storage,
}

#[derive(Debug, Clone, Copy, Default)]
struct Cfg {
    cgroup_id: u64,
    all: bool,
    follow_forks: bool,
    record: bool,
    trace: bool,
}

macro_rules! set_rodata {
    ($open:expr, $cfg:expr, { $($extra:ident = $val:expr),* }) => {{
        let r = $open
            .maps
            .rodata_data
            .as_deref_mut()
            .expect("the BPF object has read-only configuration");
        r.cfg_cgroup_id = $cfg.cgroup_id;
        r.cfg_all = $cfg.all;
        r.cfg_follow_forks = $cfg.follow_forks;
        $(r.$extra = $val;)*
    }};
}

fn load_memkind(cfg: &Cfg) -> Result<Owned<MemkindSkel<'static>>, Error> {
    let (storage, obj) = Storage::new();
    let mut open = MemkindSkelBuilder::default()
        .open(obj)
        .map_err(Error::bpf("opening memkind.bpf.o"))?;
    set_rodata!(open, cfg, { cfg_record = cfg.record });
    let skel = open.load().map_err(load_error("memkind.bpf.o"))?;
    Ok(Owned {
        skel,
        _storage: storage,
    })
}

fn load_trace(
    cfg: &Cfg,
    lib: &Library,
    main: &MemkindSkel<'_>,
) -> Result<Owned<TraceSkel<'static>>, Error> {
    let (storage, obj) = Storage::new();
    let mut open = TraceSkelBuilder::default()
        .open(obj)
        .map_err(Error::bpf("opening trace.bpf.o"))?;
    // Kind ids from kind pointers: the file addresses of the probed functions and of
    // MEMKIND_DEFAULT (which holds the kind table's slot 0).
    let mut func_vaddr = [0u64; Call::ALL.len() + 1];
    for c in Call::ALL {
        if let Some(s) = c.symbol(Flavor::Ours).and_then(|n| lib.symbol(n)) {
            func_vaddr[c.id() as usize] = s.vaddr;
        }
    }
    let default_vaddr = lib.symbol("MEMKIND_DEFAULT").map_or(0, |s| s.vaddr);
    set_rodata!(open, cfg, { cfg_func_vaddr = func_vaddr, cfg_default_vaddr = default_vaddr });
    let reuse = Error::bpf("sharing maps with trace.bpf.o");
    open.maps
        .traced
        .reuse_fd(main.maps.traced.as_fd())
        .and_then(|()| open.maps.events.reuse_fd(main.maps.events.as_fd()))
        .and_then(|()| open.maps.stats.reuse_fd(main.maps.stats.as_fd()))
        .map_err(reuse)?;
    let skel = open.load().map_err(load_error("trace.bpf.o"))?;
    Ok(Owned {
        skel,
        _storage: storage,
    })
}

fn load_stock(cfg: &Cfg) -> Result<Owned<StockSkel<'static>>, Error> {
    let (storage, obj) = Storage::new();
    let mut open = StockSkelBuilder::default()
        .open(obj)
        .map_err(Error::bpf("opening stock.bpf.o"))?;
    set_rodata!(open, cfg, { cfg_trace = cfg.trace });
    let skel = open.load().map_err(load_error("stock.bpf.o"))?;
    Ok(Owned {
        skel,
        _storage: storage,
    })
}

fn load_error(what: &'static str) -> impl FnOnce(libbpf_rs::Error) -> Error {
    move |e| {
        if e.kind() == libbpf_rs::ErrorKind::PermissionDenied && sys::euid() != 0 {
            Error::MissingCapability {
                missing: "CAP_BPF",
                why: "loading BPF programs",
            }
        } else {
            Error::Bpf {
                what: format!("loading {what}"),
                source: e,
            }
        }
    }
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Root or the capabilities, BTF, uprobes.
fn check_kernel(proc: &Proc) -> Result<(), Error> {
    if sys::euid() != 0 {
        let caps = proc.cap_eff().unwrap_or(0);
        let has = |c: u32| caps & (1 << c) != 0 || caps & (1 << CAP_SYS_ADMIN) != 0;
        if !has(CAP_BPF) {
            return Err(Error::MissingCapability {
                missing: "CAP_BPF",
                why: "loading BPF programs and maps",
            });
        }
        if !has(CAP_PERFMON) {
            return Err(Error::MissingCapability {
                missing: "CAP_PERFMON",
                why: "attaching uprobes and tracepoints",
            });
        }
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(Error::NoBtf);
    }
    if !Path::new("/sys/bus/event_source/devices/uprobe").exists() {
        return Err(Error::NoUprobes);
    }
    Ok(())
}

fn cgroup_id(path: &Path) -> Result<u64, Error> {
    let not = || Error::NotCgroup {
        path: path.to_owned(),
    };
    let md = std::fs::metadata(path).map_err(|_| not())?;
    if !md.is_dir() || !path.join("cgroup.procs").exists() {
        return Err(not());
    }
    // A cgroup v2 id (bpf_get_current_cgroup_id) is its kernfs node id: the directory's inode.
    Ok(md.ino())
}

fn ptrace_error(pid: u32) -> impl FnOnce(std::io::Error) -> Error {
    move |e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Error::MissingCapability {
                missing: "CAP_SYS_PTRACE",
                why: "asking a running process to re-announce its kinds and extents",
            }
        } else if e.raw_os_error() == Some(libc::ESRCH) {
            Error::NoSuchProcess { pid }
        } else {
            Error::Os {
                what: format!("writing memkind_probe_request in process {pid}"),
                source: e,
            }
        }
    }
}

enum Main {
    Ours(Owned<MemkindSkel<'static>>),
    Stock(Owned<StockSkel<'static>>),
}

/// The maps every mode has, and the ones only ours has.
struct Maps<'a> {
    traced: &'a dyn MapCore,
    stats: &'a dyn MapCore,
    counters: &'a dyn MapCore,
    faults: Option<&'a dyn MapCore>,
    other_faults: Option<&'a dyn MapCore>,
    granules: Option<&'a dyn MapCore>,
}

/// An attached probe. Dropping it detaches everything.
///
/// Not `Send`: poll and read it from the thread that attached it.
pub struct Probe {
    // Drop order: the ring buffer, the links, then the objects.
    ring: RingBuffer<'static>,
    links: Vec<Link>,
    trace: Option<Owned<TraceSkel<'static>>>,
    main: Main,
    queue: Rc<RefCell<VecDeque<Event>>>,
    lib: Library,
    proc: Proc,
    trace_mode: Option<TraceMode>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("library", &self.lib.path())
            .field("flavor", &self.lib.flavor())
            .field("links", &self.links.len())
            .field("trace", &self.trace.is_some())
            .finish_non_exhaustive()
    }
}

fn attach_uprobe(
    prog: &libbpf_rs::ProgramMut<'_>,
    lib: &Library,
    sym: &'static str,
    retprobe: bool,
    ref_ctr_offset: u64,
) -> Result<Link, Error> {
    let offset = lib.probe_offset(sym)?;
    prog.attach_uprobe_with_opts(
        -1,
        lib.path(),
        offset as usize,
        UprobeOpts {
            ref_ctr_offset: ref_ctr_offset as usize,
            retprobe,
            ..Default::default()
        },
    )
    .map_err(|e| {
        if e.kind() == libbpf_rs::ErrorKind::PermissionDenied && sys::euid() != 0 {
            Error::MissingCapability {
                missing: "CAP_PERFMON",
                why: "attaching uprobes",
            }
        } else {
            Error::Bpf {
                what: format!(
                    "attaching a {} to {sym} in {}",
                    if retprobe { "uretprobe" } else { "uprobe" },
                    lib.path().display()
                ),
                source: e,
            }
        }
    })
}

fn attach_tp(prog: &libbpf_rs::ProgramMut<'_>, what: &str) -> Result<Link, Error> {
    prog.attach()
        .map_err(Error::bpf(format!("attaching tp_btf/{what}")))
}

macro_rules! attach_calls {
    ($links:expr, $progs:expr, $lib:expr, $flavor:expr, [$(($call:expr, $enter:ident, $ret:ident)),*]) => {
        $(
            if let Some(sym) = $call.symbol($flavor) {
                let sem = $lib.trace_semaphore_offset().unwrap_or(0);
                $links.push(attach_uprobe(&$progs.$enter, $lib, sym, false, sem)?);
                $links.push(attach_uprobe(&$progs.$ret, $lib, sym, true, sem)?);
            }
        )*
    };
}

impl Probe {
    /// Load, fill the filters and attach every program. Nothing stays attached on error.
    ///
    /// On our library with counters: for [`Scope::Pids`] and [`Scope::All`] (processes already
    /// mapping the library), `memkind_probe_request` is bumped in each process before the
    /// counting uprobe is attached, so the library re-announces its kinds and extents and
    /// counts from the attach. On memkind 1.14 ([`Flavor::Stock`]) per-call probes count instead
    /// (a trap per call). On a memkind-rs build without counters only `trace` works
    /// ([`Error::NoCounters`] otherwise).
    pub fn attach(opts: &Options) -> Result<Probe, Error> {
        let proc = Proc::default();
        check_kernel(&proc)?;
        let lib = Library::open(&opts.library)?;
        let cgroup_id = opts
            .cgroup
            .as_deref()
            .map(cgroup_id)
            .transpose()?
            .unwrap_or(0);
        let (initial, existing): (Vec<u32>, Vec<u32>) = match &opts.scope {
            Scope::Pids(pids) => {
                for &pid in pids {
                    check_pid(&proc, &lib, pid)?;
                }
                (pids.clone(), pids.clone())
            }
            Scope::Tree(pid) => {
                if !proc.exists(*pid) {
                    return Err(Error::NoSuchProcess { pid: *pid });
                }
                (vec![*pid], vec![])
            }
            Scope::All => {
                let mapped: Vec<u32> = proc
                    .pids()
                    .map_err(Error::os("listing /proc"))?
                    .into_iter()
                    .filter(|&pid| lib.mapped_by(&proc, pid))
                    .collect();
                (mapped.clone(), mapped)
            }
        };
        let cfg = Cfg {
            cgroup_id,
            all: opts.scope == Scope::All,
            follow_forks: matches!(opts.scope, Scope::Tree(_)),
            record: opts.record,
            trace: opts.trace,
        };
        let queue = Rc::new(RefCell::new(VecDeque::new()));
        let mut links = Vec::new();
        let mut trace_mode = None;
        let (main, trace) = match lib.flavor() {
            Flavor::Ours => {
                let counters = lib.has_counters();
                if !counters && !opts.trace {
                    return Err(Error::NoCounters {
                        path: lib.path().to_owned(),
                    });
                }
                let main = load_memkind(&cfg)?;
                let trace = if opts.trace {
                    Some(load_trace(&cfg, &lib, &main.skel)?)
                } else {
                    None
                };
                let (maps, progs) = (&main.skel.maps, &main.skel.progs);
                fill_traced(&maps.traced, &initial)?;
                links.push(attach_tp(&progs.mkb_page_fault, "page_fault_user")?);
                links.push(attach_tp(&progs.mkb_exit, "sched_process_exit")?);
                if cfg.follow_forks {
                    links.push(attach_tp(&progs.mkb_fork, "sched_process_fork")?);
                }
                if counters {
                    // Kinds and extents first, without the reference counter: nothing calls
                    // them until the semaphore turns on, and then they are already in place.
                    links.push(attach_uprobe(
                        &progs.mkb_kind_event,
                        &lib,
                        SYM_KIND,
                        false,
                        0,
                    )?);
                    links.push(attach_uprobe(
                        &progs.mkb_extent_event,
                        &lib,
                        SYM_EXTENT,
                        false,
                        0,
                    )?);
                    for &pid in &existing {
                        match request(&proc, &lib, pid) {
                            Ok(()) => {}
                            // A process of the "all" scan may be gone already.
                            Err(Error::NoSuchProcess { .. } | Error::NotMapped { .. })
                                if opts.scope == Scope::All => {}
                            Err(e) => return Err(e),
                        }
                    }
                    let sem = lib.semaphore_offset().ok_or_else(|| Error::MissingSymbol {
                        path: lib.path().to_owned(),
                        symbol: "section .memkind_probe (the semaphore)",
                    })?;
                    links.push(attach_uprobe(
                        &progs.mkb_stats_flush,
                        &lib,
                        SYM_FLUSH,
                        false,
                        sem,
                    )?);
                }
                let one_uprobe = counters
                    && lib.symbol(SYM_TRACE).is_some()
                    && lib.trace_semaphore_offset().is_some();
                if let (Some(t), true) = (&trace, one_uprobe) {
                    // The trace semaphore as its reference counter: the library times and
                    // hands over its calls only while this uprobe exists.
                    let sem = lib.trace_semaphore_offset().unwrap_or(0);
                    links.push(attach_uprobe(
                        &t.skel.progs.mkb_trace_event,
                        &lib,
                        SYM_TRACE,
                        false,
                        sem,
                    )?);
                    trace_mode = Some(TraceMode::OneUprobe);
                } else if let Some(t) = &trace {
                    trace_mode = Some(TraceMode::EntryAndReturn);
                    let p = &t.skel.progs;
                    attach_calls!(
                        links,
                        p,
                        &lib,
                        Flavor::Ours,
                        [
                            (Call::Malloc, mkb_malloc_enter, mkb_malloc_return),
                            (Call::Calloc, mkb_calloc_enter, mkb_calloc_return),
                            (
                                Call::PmemCalloc,
                                mkb_pmem_calloc_enter,
                                mkb_pmem_calloc_return
                            ),
                            (
                                Call::PosixMemalign,
                                mkb_posix_memalign_enter,
                                mkb_posix_memalign_return
                            ),
                            (Call::Realloc, mkb_realloc_enter, mkb_realloc_return),
                            (
                                Call::ReallocWithKindDetect,
                                mkb_realloc_detect_enter,
                                mkb_realloc_detect_return
                            ),
                            (Call::Free, mkb_free_enter, mkb_free_return),
                            (
                                Call::FreeWithKindDetect,
                                mkb_free_detect_enter,
                                mkb_free_detect_return
                            )
                        ]
                    );
                }
                (Main::Ours(main), trace)
            }
            Flavor::Stock => {
                let main = load_stock(&cfg)?;
                let (maps, progs) = (&main.skel.maps, &main.skel.progs);
                fill_traced(&maps.traced, &initial)?;
                links.push(attach_tp(&progs.mkb_exit, "sched_process_exit")?);
                if cfg.follow_forks {
                    links.push(attach_tp(&progs.mkb_fork, "sched_process_fork")?);
                }
                attach_calls!(
                    links,
                    progs,
                    &lib,
                    Flavor::Stock,
                    [
                        (Call::Malloc, mkb_malloc_enter, mkb_malloc_return),
                        (Call::Calloc, mkb_calloc_enter, mkb_calloc_return),
                        (
                            Call::PosixMemalign,
                            mkb_posix_memalign_enter,
                            mkb_posix_memalign_return
                        ),
                        (Call::Realloc, mkb_realloc_enter, mkb_realloc_return),
                        (Call::Free, mkb_free_enter, mkb_free_return)
                    ]
                );
                if opts.trace {
                    trace_mode = Some(TraceMode::EntryAndReturn);
                }
                (Main::Stock(main), None)
            }
        };
        let events: &dyn MapCore = match &main {
            Main::Ours(m) => &m.skel.maps.events,
            Main::Stock(m) => &m.skel.maps.events,
        };
        let q = Rc::clone(&queue);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(events, move |bytes: &[u8]| {
                if let Some(e) = events::decode(bytes) {
                    q.borrow_mut().push_back(e);
                }
                0
            })
            .map_err(Error::bpf("setting up the ring buffer"))?;
        let ring = builder
            .build()
            .map_err(Error::bpf("setting up the ring buffer"))?;
        Ok(Probe {
            ring,
            links,
            trace,
            main,
            queue,
            lib,
            proc,
            trace_mode,
        })
    }

    /// How the trace tier sees calls (`None`: no trace attached).
    pub fn trace_mode(&self) -> Option<TraceMode> {
        self.trace_mode
    }

    /// The library attached to.
    pub fn library(&self) -> &Library {
        &self.lib
    }

    /// Trace one more running process (it must map the library). On ours it is asked to
    /// re-announce its kinds and extents.
    pub fn add_pid(&mut self, pid: u32) -> Result<(), Error> {
        check_pid(&self.proc, &self.lib, pid)?;
        fill_traced(self.maps().traced, &[pid])?;
        if matches!(self.main, Main::Ours(_)) && self.lib.has_counters() {
            request(&self.proc, &self.lib, pid)?;
        }
        Ok(())
    }

    /// Wait up to `timeout` (less when a process exits: exit records wake the poller), then
    /// hand every record in the ring buffer to `f`. Records are submitted without wakeup, so
    /// call this on a timer.
    pub fn poll(&mut self, timeout: Duration, mut f: impl FnMut(Event)) -> Result<(), Error> {
        let r = self.ring.poll_raw(timeout);
        if r < 0 && r != -libc::EINTR {
            return Err(Error::Os {
                what: "polling the ring buffer".into(),
                source: std::io::Error::from_raw_os_error(-r),
            });
        }
        self.drain(&mut f)
    }

    /// Hand every record in the ring buffer to `f` without waiting.
    pub fn consume(&mut self, mut f: impl FnMut(Event)) -> Result<(), Error> {
        self.drain(&mut f)
    }

    fn drain(&mut self, f: &mut dyn FnMut(Event)) -> Result<(), Error> {
        let r = self.ring.consume_raw();
        if r < 0 && r != -libc::EINTR {
            return Err(Error::Os {
                what: "reading the ring buffer".into(),
                source: std::io::Error::from_raw_os_error(-r),
            });
        }
        loop {
            let Some(e) = self.queue.borrow_mut().pop_front() else {
                break;
            };
            if let Event::Exit { tgid, .. } = e {
                self.forget_granules(tgid);
            }
            f(e);
        }
        Ok(())
    }

    /// The (kind, arena) the granule map attributes `addr` of process `tgid` to (ours only).
    #[doc(hidden)]
    pub fn granule(&self, tgid: u32, addr: u64) -> Option<(u32, u32)> {
        let key = MkbGranuleKey {
            tgid,
            pad: 0,
            granule: addr >> events::GRANULE_SHIFT,
        };
        let v = self
            .maps()
            .granules?
            .lookup(events::bytes_of(&key), MapFlags::ANY)
            .ok()??;
        read::<MkbGranule>(&v).map(|g| (g.kind, g.arena))
    }

    fn forget_granules(&mut self, tgid: u32) {
        let Some(g) = self.maps().granules else {
            return;
        };
        let stale: Vec<Vec<u8>> = g
            .keys()
            .filter(|k| read::<MkbGranuleKey>(k).is_some_and(|k| k.tgid == tgid))
            .collect();
        for k in stale {
            let _ = g.delete(&k);
        }
    }

    fn maps(&self) -> Maps<'_> {
        match &self.main {
            Main::Ours(m) => {
                let s = &m.skel.maps;
                Maps {
                    traced: &s.traced,
                    stats: &s.stats,
                    counters: &s.counters,
                    faults: Some(&s.faults),
                    other_faults: Some(&s.other_faults),
                    granules: Some(&s.granules),
                }
            }
            Main::Stock(m) => {
                let s = &m.skel.maps;
                Maps {
                    traced: &s.traced,
                    stats: &s.stats,
                    counters: &s.counters,
                    faults: None,
                    other_faults: None,
                    granules: None,
                }
            }
        }
    }

    /// The per-CPU maps summed.
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        let m = self.maps();
        let mut snap = Snapshot::default();
        let err = Error::bpf;
        for kb in m.counters.keys() {
            let Some(k) = read::<MkbKey>(&kb) else {
                continue;
            };
            let Some(vals) = m
                .counters
                .lookup_percpu(&kb, MapFlags::ANY)
                .map_err(err("reading counters"))?
            else {
                continue;
            };
            let sum = snap.counters.entry(key(k)).or_default();
            for v in vals {
                if let Some(c) = read::<MkpCounters>(&v) {
                    add_counters(sum, &c);
                }
            }
        }
        if let Some(faults) = m.faults {
            for kb in faults.keys() {
                let Some(k) = read::<MkbKey>(&kb) else {
                    continue;
                };
                let n = sum_u64(faults, &kb)?;
                *snap.faults.entry(key(k)).or_default() += n;
            }
        }
        if let Some(other) = m.other_faults {
            for kb in other.keys() {
                let Some(tgid) = read::<u32>(&kb) else {
                    continue;
                };
                *snap.other_faults.entry(tgid).or_default() += sum_u64(other, &kb)?;
            }
        }
        let s = |slot: u32| sum_u64(m.stats, &slot.to_ne_bytes());
        snap.bad_regs = s(stat::BAD_REGS)?;
        // A record dropped for inconsistent registers is a lost record too.
        snap.lost_events = s(stat::LOST)? + snap.bad_regs;
        snap.granule_overflows = s(stat::GRANULE_OVERFLOW)?;
        snap.map_full = s(stat::MAP_FULL)?;
        snap.read_faults = s(stat::READ_FAULT)?;
        snap.live_misses = s(stat::LIVE_MISS)?;
        snap.live_full = s(stat::LIVE_FULL)?;
        snap.unpaired = s(stat::UNPAIRED)?;
        Ok(snap)
    }

    /// Turn on the kernel's BPF run-time statistics (`BPF_ENABLE_STATS`) while the guard lives,
    /// for [`Probe::prog_stats`]. Costs two clock reads per program run.
    pub fn enable_run_stats(&self) -> Result<RunStatsGuard, Error> {
        // SAFETY: bpf_enable_stats(3) is a bpf(2) wrapper taking an integer; no memory is shared.
        let fd = unsafe {
            libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
        };
        if fd < 0 {
            return Err(Error::Os {
                what: "BPF_ENABLE_STATS".into(),
                source: std::io::Error::from_raw_os_error(-fd),
            });
        }
        // SAFETY: `fd` is a new descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RunStatsGuard { _fd: fd })
    }

    /// Name, run count and run time of every loaded program (counts grow only while a
    /// [`RunStatsGuard`] is held).
    pub fn prog_stats(&self) -> Vec<ProgStat> {
        let mut ids: HashMap<u32, String> = HashMap::new();
        let mut add = |obj: &libbpf_rs::Object| {
            for p in obj.progs() {
                if let Ok(id) = libbpf_rs::Program::id_from_fd(p.as_fd()) {
                    ids.insert(id, p.name().to_string_lossy().into_owned());
                }
            }
        };
        match &self.main {
            Main::Ours(m) => add(m.skel.object()),
            Main::Stock(m) => add(m.skel.object()),
        }
        if let Some(t) = &self.trace {
            add(t.skel.object());
        }
        let mut out: Vec<ProgStat> = libbpf_rs::query::ProgInfoIter::default()
            .filter_map(|info| {
                let name = ids.get(&info.id)?;
                Some(ProgStat {
                    name: name.clone(),
                    id: info.id,
                    run_cnt: info.run_cnt,
                    run_time_ns: info.run_time_ns,
                    verified_insns: info.verified_insns,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

fn key(k: MkbKey) -> Key {
    Key {
        tgid: k.tgid,
        kind: k.kind,
        arena: k.arena,
    }
}

fn add_counters(a: &mut MkpCounters, b: &MkpCounters) {
    a.allocs += b.allocs;
    a.frees += b.frees;
    a.reallocs += b.reallocs;
    a.bytes_requested += b.bytes_requested;
    a.bytes_allocated += b.bytes_allocated;
    a.bytes_freed += b.bytes_freed;
    for (x, y) in a.size_buckets.iter_mut().zip(b.size_buckets.iter()) {
        *x += y;
    }
}

fn sum_u64(map: &dyn MapCore, key: &[u8]) -> Result<u64, Error> {
    Ok(map
        .lookup_percpu(key, MapFlags::ANY)
        .map_err(Error::bpf(format!(
            "reading {}",
            map.name().to_string_lossy()
        )))?
        .unwrap_or_default()
        .iter()
        .filter_map(|v| read::<u64>(v))
        .sum())
}

fn fill_traced(traced: &dyn MapCore, pids: &[u32]) -> Result<(), Error> {
    for pid in pids {
        traced
            .update(&pid.to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(Error::bpf(format!("adding process {pid} to the filter")))?;
    }
    Ok(())
}

fn check_pid(proc: &Proc, lib: &Library, pid: u32) -> Result<(), Error> {
    if !proc.exists(pid) {
        return Err(Error::NoSuchProcess { pid });
    }
    if !lib.mapped_by(proc, pid) {
        return Err(Error::NotMapped {
            pid,
            path: lib.path().to_owned(),
        });
    }
    Ok(())
}

/// Bump `memkind_probe_request` in a process mapping our library.
fn request(proc: &Proc, lib: &Library, pid: u32) -> Result<(), Error> {
    let maps = proc.maps(pid).map_err(|_| Error::NoSuchProcess { pid })?;
    let addr = lib.request_address(&maps).ok_or_else(|| Error::NotMapped {
        pid,
        path: lib.path().to_owned(),
    })?;
    sys::write_u64(pid, addr, sys::monotonic_ns()).map_err(ptrace_error(pid))
}
