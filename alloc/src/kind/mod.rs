//! Kinds: the registry, the per-family operations table, and kind initialisation.
//!
//! A kind is a slot in one static table ([`KINDS`]). Static kinds occupy slots 0..26 in
//! memkind's partition order (so `memkind_get_kind_by_partition` is an index); dynamic kinds
//! (PMEM, fixed) take free slots above. A `memkind_t` handed to C is the address of a slot, so
//! validating a pointer from C is a range check ([`Kind::from_ptr`]).
//!
//! Each family fills one [`Family`] table in its own file. Initialisation runs in two published
//! steps: first the [`Placement`] (what the extent hooks need: backing, mbind policy), then the
//! arenas, because jemalloc calls our hooks while it creates an arena.

pub mod dax_kmem;
pub mod default;
pub mod fixed;
pub mod hbw;
pub mod hugetlb;
pub mod interleave;
pub mod memattr;
pub mod pmem;
pub(crate) mod probe;
pub mod regular;

pub(crate) use probe::announce_all;

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

use crate::error::Error;
use crate::jemalloc::ExtentHooks;
use crate::sys::{Backing, MpolMode};
use crate::topology::NodeSets;

/// memkind.h's `MEMKIND_MAX_KIND` (used in the TOOMANY message, as 1.14 prints it).
pub const MEMKIND_MAX_KIND: usize = 512;
/// Number of static kinds (`MEMKIND_NUM_BASE_KIND`).
pub const STATIC_KINDS: usize = 26;
/// Slots in the registry: the static kinds plus room for 1030 dynamic kinds at once (memkind
/// 1.14 allows 512 in all and in practice stops at 14-29 PMEM kinds).
pub const MAX_KINDS: usize = 1056;

/// How many arenas a kind uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArenaCount {
    /// jemalloc's automatic arenas (DEFAULT).
    Automatic,
    /// Several arenas, handed to threads in turn (`memkind_thread_get_arena`).
    PerThread,
    /// One arena (`memkind_bijective_get_arena`).
    Single,
    /// As `PerThread`, at most this many, and fewer when jemalloc runs out of arenas (dynamic
    /// kinds, of which there may be a thousand).
    PerThreadUpTo(u32),
}

impl ArenaCount {
    /// May the kind go on with fewer arenas than asked for?
    pub fn may_degrade(self) -> bool {
        matches!(self, ArenaCount::PerThreadUpTo(_))
    }
}

/// An mbind policy: a mode and, per CPU node, the target nodes.
#[derive(Debug, Clone)]
pub struct MbindPolicy {
    /// MPOL_* mode.
    pub mode: MpolMode,
    /// Target nodes for a thread on each CPU node.
    pub nodes: NodeSets,
}

/// Where a kind's memory comes from. Published before the kind's arenas exist; read by hooks.
#[derive(Debug, Clone)]
pub struct Placement {
    /// mmap flavour.
    pub backing: Backing,
    /// mbind after mmap, if any.
    pub mbind: Option<MbindPolicy>,
    /// madvise(MADV_NOHUGEPAGE) (interleave kinds, as 1.14).
    pub nohugepage: bool,
    /// MEMKIND_HOG_MEMORY: never purge.
    pub hog: bool,
    /// Arena layout.
    pub arenas: ArenaCount,
}

impl Placement {
    /// Anonymous memory, no policy, per-thread arenas.
    pub fn anon() -> Placement {
        Placement {
            backing: Backing::Anon,
            mbind: None,
            nohugepage: false,
            hog: crate::env::get().hog_memory,
            arenas: ArenaCount::PerThread,
        }
    }
}

/// A family's operations table (memkind's `memkind_ops`, reduced to what differs per family:
/// the heap operations themselves are the shared arena layer).
pub struct Family {
    /// Family name, for logs.
    pub name: &'static str,
    /// The placement the kind's hooks use; its error is why the kind cannot be initialised.
    pub placement: fn(&Kind) -> Result<Placement, Error>,
    /// `memkind_check_available`: 0 or 1.14's code. Most families use [`check_by_placement`];
    /// the deprecated GBTLB kinds check 2 MiB pages but place on 1 GiB pages.
    pub check: fn(&Kind) -> Result<(), Error>,
    /// `memkind_get_capacity`.
    pub capacity: fn(&Kind) -> isize,
    /// The extent hook table for the family's backing.
    pub hooks: &'static ExtentHooks,
}

/// Arenas of an initialised kind.
#[derive(Debug)]
pub struct Runtime {
    /// jemalloc arena indices (empty for automatic).
    pub arenas: Box<[u32]>,
    /// Threads take the kind's arenas in turn (the first thread arena 0, the next arena 1...),
    /// so concurrent threads of a kind do not queue on one arena's locks by chance.
    pub next_arena: core::sync::atomic::AtomicU32,
}

impl Runtime {
    /// A runtime over `arenas`.
    pub fn new(arenas: Box<[u32]>) -> Runtime {
        Runtime {
            arenas,
            next_arena: core::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The arena for a thread that starts using the kind now.
    pub fn take_arena(&self) -> u32 {
        let i = self.next_arena.fetch_add(1, Ordering::Relaxed) as usize;
        self.arenas[i % self.arenas.len()]
    }
}

/// One memory kind. `memkind_t` in C is a pointer to one of these. 64-byte aligned and sized,
/// so validating a pointer from C is a subtraction, a compare and a mask.
#[repr(align(64))]
pub struct Kind {
    id: u16,
    /// The family (fixed for static kinds; set when a dynamic slot is taken).
    family: AtomicPtr<Family>,
    variant: u8,
    name: &'static str,
    /// A dynamic kind's own state (PMEM directory and file, fixed buffer...), null otherwise.
    dynamic: AtomicPtr<Dynamic>,
    /// Bumped every time a dynamic slot is reused, so stale per-thread caches are noticed.
    generation: AtomicU32,
    live: AtomicBool,
    placement: AtomicPtr<Placement>,
    runtime: AtomicPtr<Runtime>,
}

const fn static_kind(id: u16, family: &'static Family, variant: u8, name: &'static str) -> Kind {
    Kind {
        id,
        family: AtomicPtr::new(family as *const Family as *mut Family),
        variant,
        name,
        dynamic: AtomicPtr::new(core::ptr::null_mut()),
        generation: AtomicU32::new(1),
        live: AtomicBool::new(true),
        placement: AtomicPtr::new(core::ptr::null_mut()),
        runtime: AtomicPtr::new(core::ptr::null_mut()),
    }
}

/// The static kinds in partition order: (family, variant, name).
const STATIC_TABLE: [(&Family, u8, &str); STATIC_KINDS] = [
    (&default::FAMILY, 0, "memkind_default"),
    (&hbw::FAMILY, hbw::HBW, "memkind_hbw"),
    (
        &hbw::FAMILY_HUGETLB,
        hbw::HBW_HUGETLB,
        "memkind_hbw_hugetlb",
    ),
    (&hbw::FAMILY, hbw::HBW_PREFERRED, "memkind_hbw_preferred"),
    (
        &hbw::FAMILY_HUGETLB,
        hbw::HBW_PREFERRED_HUGETLB,
        "memkind_hbw_preferred_hugetlb",
    ),
    (&hugetlb::FAMILY, hugetlb::HUGETLB, "memkind_hugetlb"),
    (&hbw::FAMILY_HUGETLB, hbw::HBW_GBTLB, "memkind_hbw_gbtlb"),
    (
        &hbw::FAMILY_HUGETLB,
        hbw::HBW_PREFERRED_GBTLB,
        "memkind_hbw_preferred_gbtlb",
    ),
    (&hugetlb::FAMILY, hugetlb::GBTLB, "memkind_gbtlb"),
    (&hbw::FAMILY, hbw::HBW_INTERLEAVE, "memkind_hbw_interleave"),
    (&interleave::FAMILY, 0, "memkind_interleave"),
    (&regular::FAMILY, 0, "memkind_regular"),
    (&hbw::FAMILY, hbw::HBW_ALL, "memkind_hbw_all"),
    (
        &hbw::FAMILY_HUGETLB,
        hbw::HBW_ALL_HUGETLB,
        "memkind_hbw_all_hugetlb",
    ),
    (&dax_kmem::FAMILY, dax_kmem::DAX_KMEM, "memkind_dax_kmem"),
    (
        &dax_kmem::FAMILY,
        dax_kmem::DAX_KMEM_ALL,
        "memkind_dax_kmem_all",
    ),
    (
        &dax_kmem::FAMILY,
        dax_kmem::DAX_KMEM_PREFERRED,
        "memkind_dax_kmem_preferred",
    ),
    (
        &dax_kmem::FAMILY,
        dax_kmem::DAX_KMEM_INTERLEAVE,
        "memkind_dax_kmem_interleave",
    ),
    (
        &memattr::FAMILY,
        memattr::HIGHEST_CAPACITY,
        "memkind_highest_capacity",
    ),
    (
        &memattr::FAMILY,
        memattr::HIGHEST_CAPACITY_PREFERRED,
        "memkind_highest_capacity_preferred",
    ),
    (
        &memattr::FAMILY,
        memattr::HIGHEST_CAPACITY_LOCAL,
        "memkind_highest_capacity_local",
    ),
    (
        &memattr::FAMILY,
        memattr::HIGHEST_CAPACITY_LOCAL_PREFERRED,
        "memkind_highest_capacity_local_preferred",
    ),
    (
        &memattr::FAMILY,
        memattr::LOWEST_LATENCY_LOCAL,
        "memkind_lowest_latency_local",
    ),
    (
        &memattr::FAMILY,
        memattr::LOWEST_LATENCY_LOCAL_PREFERRED,
        "memkind_lowest_latency_local_preferred",
    ),
    (
        &memattr::FAMILY,
        memattr::HIGHEST_BANDWIDTH_LOCAL,
        "memkind_highest_bandwidth_local",
    ),
    (
        &memattr::FAMILY,
        memattr::HIGHEST_BANDWIDTH_LOCAL_PREFERRED,
        "memkind_highest_bandwidth_local_preferred",
    ),
];

/// The usual `Family::check`: the kind is available when its placement can be computed.
pub fn check_by_placement(k: &Kind) -> Result<(), Error> {
    (k.family().placement)(k).map(drop)
}

/// Placeholder family of free dynamic slots: never available.
static FREE_SLOT: Family = Family {
    name: "free",
    placement: |_| Err(Error::Unavailable),
    check: |_| Err(Error::Unavailable),
    capacity: |_| -1,
    hooks: &crate::hooks::anon::HOOKS,
};

const fn build_table() -> [Kind; MAX_KINDS] {
    let mut t = [const { static_kind(0, &FREE_SLOT, 0, "") }; MAX_KINDS];
    let mut i = 0;
    while i < MAX_KINDS {
        if i < STATIC_KINDS {
            let (f, v, n) = STATIC_TABLE[i];
            t[i] = static_kind(i as u16, f, v, n);
        } else {
            t[i] = static_kind(i as u16, &FREE_SLOT, 0, "");
            t[i].live = AtomicBool::new(false);
        }
        i += 1;
    }
    t
}

/// The registry.
pub static KINDS: [Kind; MAX_KINDS] = build_table();

/// Serialises kind initialisation and creation (never taken on the allocation fast path and
/// never from an extent hook).
pub(crate) static INIT_LOCK: crate::sync::ForkLock<()> = crate::sync::ForkLock::new(());

/// Partition numbers of the static kinds (memkind_deprecated.h).
#[allow(missing_docs, reason = "names are memkind's")]
pub mod partition {
    pub const DEFAULT: usize = 0;
    pub const HBW: usize = 1;
    pub const HBW_HUGETLB: usize = 2;
    pub const HBW_PREFERRED: usize = 3;
    pub const HBW_PREFERRED_HUGETLB: usize = 4;
    pub const HUGETLB: usize = 5;
    pub const HBW_GBTLB: usize = 6;
    pub const HBW_PREFERRED_GBTLB: usize = 7;
    pub const GBTLB: usize = 8;
    pub const HBW_INTERLEAVE: usize = 9;
    pub const INTERLEAVE: usize = 10;
    pub const REGULAR: usize = 11;
    pub const HBW_ALL: usize = 12;
    pub const HBW_ALL_HUGETLB: usize = 13;
    pub const DAX_KMEM: usize = 14;
    pub const DAX_KMEM_ALL: usize = 15;
    pub const DAX_KMEM_PREFERRED: usize = 16;
    pub const DAX_KMEM_INTERLEAVE: usize = 17;
    pub const HIGHEST_CAPACITY: usize = 18;
    pub const HIGHEST_CAPACITY_PREFERRED: usize = 19;
    pub const HIGHEST_CAPACITY_LOCAL: usize = 20;
    pub const HIGHEST_CAPACITY_LOCAL_PREFERRED: usize = 21;
    pub const LOWEST_LATENCY_LOCAL: usize = 22;
    pub const LOWEST_LATENCY_LOCAL_PREFERRED: usize = 23;
    pub const HIGHEST_BANDWIDTH_LOCAL: usize = 24;
    pub const HIGHEST_BANDWIDTH_LOCAL_PREFERRED: usize = 25;
}

/// MEMKIND_DEFAULT.
pub fn default_kind() -> &'static Kind {
    &KINDS[partition::DEFAULT]
}

impl Kind {
    /// Validate a `memkind_t` from C: `Some` only for the address of a live slot.
    #[inline(always)]
    pub fn from_ptr(p: *const Kind) -> Option<&'static Kind> {
        let base = KINDS.as_ptr() as usize;
        let off = (p as usize).wrapping_sub(base);
        let sz = core::mem::size_of::<Kind>();
        if off < MAX_KINDS * sz && off.is_multiple_of(sz) {
            let k = &KINDS[off / sz];
            // Static slots are always live; the load is only needed for dynamic ones.
            (k.id < STATIC_KINDS as u16 || k.live.load(Ordering::Acquire)).then_some(k)
        } else {
            None
        }
    }

    /// A dynamic slot in use (static kinds: always).
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Slot index (also the partition of static kinds).
    #[inline(always)]
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Kind name (memkind's, e.g. `memkind_hbw`; the family's name for dynamic kinds).
    pub fn name(&self) -> &'static str {
        if (self.id as usize) < STATIC_KINDS {
            self.name
        } else {
            self.family().name
        }
    }

    /// The kind's family (operations table).
    pub fn family(&self) -> &'static Family {
        // SAFETY: the pointer always targets one of the `static` family tables.
        #[allow(unsafe_code, reason = "pointer to a static table")]
        unsafe {
            &*self.family.load(Ordering::Acquire)
        }
    }

    /// A dynamic kind's state of type `T` (None for static kinds or another type).
    pub fn state<T: 'static>(&self) -> Option<&T> {
        let d = self.dynamic.load(Ordering::Acquire);
        // SAFETY: published by `create_dynamic`, freed only by `destroy_kind` (memkind's
        // contract: a kind is not used while it is destroyed).
        #[allow(unsafe_code, reason = "published dynamic state")]
        let d = (!d.is_null()).then(|| unsafe { &*d })?;
        d.state.downcast_ref()
    }

    /// Family-specific variant number.
    pub fn variant(&self) -> u8 {
        self.variant
    }

    /// Current generation of the slot.
    #[inline(always)]
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Relaxed)
    }

    /// True for MEMKIND_DEFAULT.
    #[inline(always)]
    pub fn is_default(&self) -> bool {
        self.id == partition::DEFAULT as u16
    }

    /// The published placement, if the kind has been initialised this far.
    #[inline]
    pub fn placement(&self) -> Option<&'static Placement> {
        let p = self.placement.load(Ordering::Acquire);
        // SAFETY: placements are leaked boxes, published once and only replaced when a dynamic
        // slot is recycled (after its arenas are destroyed, so no hook can still run for it).
        #[allow(unsafe_code, reason = "published pointer")]
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// `memkind_check_available`: 0 or the 1.14 error code. Not cached, so reserving hugepages
    /// later makes HUGETLB available, as in 1.14.
    pub fn check_available(&self) -> Result<(), Error> {
        if self.runtime.load(Ordering::Acquire).is_null() {
            (self.family().check)(self)?;
            if (self.family().placement)(self).is_ok_and(|p| {
                matches!(
                    p.arenas,
                    ArenaCount::PerThread | ArenaCount::PerThreadUpTo(_)
                )
            }) {
                // A malformed MEMKIND_ARENA_NUM_PER_KIND makes every arena kind unusable.
                crate::env::get().arenas_per_kind?;
            }
            Ok(())
        } else {
            Ok(())
        }
    }

    /// `memkind_get_capacity`.
    pub fn capacity(&self) -> isize {
        (self.family().capacity)(self)
    }

    /// The initialised kind's arenas, initialising on first use.
    #[inline]
    pub fn runtime(&'static self) -> Result<&'static Runtime, Error> {
        let r = self.runtime.load(Ordering::Acquire);
        if !r.is_null() {
            // SAFETY: as for `placement`.
            #[allow(unsafe_code, reason = "published pointer")]
            return Ok(unsafe { &*r });
        }
        self.init_slow()
    }

    /// The kind's arenas if it is initialised, without initialising it.
    pub fn runtime_if_ready(&self) -> Option<&'static Runtime> {
        let r = self.runtime.load(Ordering::Acquire);
        // SAFETY: as for `placement`.
        #[allow(unsafe_code, reason = "published pointer")]
        (!r.is_null()).then(|| unsafe { &*r })
    }

    #[cold]
    fn init_slow(&'static self) -> Result<&'static Runtime, Error> {
        crate::init::ensure();
        let _reentry = crate::arena::thread::InitGuard::enter();
        let _g = INIT_LOCK.lock();
        let r = self.runtime.load(Ordering::Acquire);
        if !r.is_null() {
            #[allow(unsafe_code, reason = "published pointer")]
            // SAFETY: as for `placement`.
            return Ok(unsafe { &*r });
        }
        let placement = match self.placement() {
            Some(p) => p,
            None => {
                let p = (self.family().placement)(self)?;
                let p: &'static Placement = Box::leak(Box::new(p));
                self.placement
                    .store(p as *const _ as *mut _, Ordering::Release);
                p
            }
        };
        let arenas = crate::arena::create_arenas(self, placement, self.family().hooks)?;
        let rt: &'static Runtime = Box::leak(Box::new(Runtime::new(arenas)));
        self.runtime
            .store(rt as *const _ as *mut _, Ordering::Release);
        crate::env::debug_log!("kind {} ready with {} arenas", self.name, rt.arenas.len());
        Ok(rt)
    }
}

/// Map a nodeset computation result (the rules live in `topology`) into a placement.
pub(crate) fn bound(
    mode: MpolMode,
    nodes: NodeSets,
    backing: Backing,
    nohugepage: bool,
) -> Placement {
    Placement {
        backing,
        mbind: Some(MbindPolicy { mode, nodes }),
        nohugepage,
        ..Placement::anon()
    }
}

pub use crate::topology::Rule;
use crate::topology::{EnvConfig, RuleOutcome, Topology, HUGEPAGE_1G_KB, HUGEPAGE_2M_KB};

/// The machine's topology, read once (nodes do not change under a running process).
fn topology() -> Result<&'static Topology, Error> {
    static TOPO: std::sync::OnceLock<Result<Topology, Error>> = std::sync::OnceLock::new();
    TOPO.get_or_init(|| {
        Topology::read(std::path::Path::new("/")).map_err(|e| {
            crate::env::debug_log!("reading the NUMA topology failed: {e}");
            Error::Runtime
        })
    })
    .as_ref()
    .map_err(|e| *e)
}

fn env_config() -> &'static EnvConfig {
    static ENV: std::sync::OnceLock<EnvConfig> = std::sync::OnceLock::new();
    ENV.get_or_init(|| EnvConfig::from_lookup(crate::env::secure_getenv))
}

fn code_error(c: i32) -> Error {
    Error::from_code(c).unwrap_or(Error::Runtime)
}

/// The node sets of `rule` on this machine, or 1.14's error for the kind.
pub(crate) fn node_sets(rule: Rule) -> Result<NodeSets, Error> {
    match crate::topology::resolve(topology()?, env_config(), rule) {
        RuleOutcome::Available(sets) => Ok(sets),
        RuleOutcome::Unavailable(c) => Err(code_error(c)),
    }
}

/// `memkind_get_capacity` of a kind bound to `rule` with `mode`: 1.14 reports -1 for the
/// PREFERRED kinds, else [`capacity`].
pub(crate) fn bound_capacity(rule: Rule, mode: MpolMode) -> isize {
    if mode == MpolMode::Preferred {
        -1
    } else {
        capacity(rule)
    }
}

/// `memkind_get_capacity` of a rule: MemTotal summed over the calling thread's target nodes.
pub(crate) fn capacity(rule: Rule) -> isize {
    let Ok(sets) = node_sets(rule) else { return -1 };
    let Ok(topo) = topology() else { return -1 };
    sets.capacity(topo, crate::sys::current_node())
        .map_or(-1, |c| c as isize)
}

fn page_kb(page_size: usize) -> u64 {
    if page_size >= crate::sys::HUGE_1G {
        HUGEPAGE_1G_KB
    } else {
        HUGEPAGE_2M_KB
    }
}

/// Hugepage counts change at run time (an administrator reserves pages), so read them fresh.
fn fresh_topology() -> Result<Topology, Error> {
    Topology::read(std::path::Path::new("/")).map_err(|_| Error::Hugetlb)
}

/// MEMKIND_ERROR_HUGETLB unless pages of `page_size` are reserved or may be overcommitted on
/// `nodes` (all nodes when `None`).
pub(crate) fn hugepages_available(page_size: usize, nodes: Option<&NodeSets>) -> Result<(), Error> {
    let topo = fresh_topology()?;
    let mask = match nodes {
        Some(n) => n.for_cpu_node(crate::sys::current_node()),
        None => crate::nodemask::Nodemask::first_n(crate::nodemask::MAX_NUMA_NODES as u32),
    };
    topo.hugetlb_check_available(page_kb(page_size), &mask)
        .map_err(code_error)
}

/// `memkind_get_capacity` of the hugetlb pool of `page_size` pages.
pub(crate) fn hugepage_capacity(page_size: usize) -> isize {
    let Ok(topo) = fresh_topology() else {
        return -1;
    };
    if page_kb(page_size) == HUGEPAGE_2M_KB {
        topo.hugetlb_capacity().map_or(-1, |c| c as isize)
    } else {
        0
    }
}

/// Placement for a kind bound to `rule`'s nodes with `mode`, on `backing` pages.
pub(crate) fn node_bound(
    rule: Rule,
    mode: MpolMode,
    backing: Backing,
    nohugepage: bool,
) -> Result<Placement, Error> {
    let nodes = node_sets(rule)?;
    if backing != Backing::Anon {
        hugepages_available(backing.page_size(), Some(&nodes))?;
    }
    Ok(bound(mode, nodes, backing, nohugepage))
}

/// memkind.h's memtype bits.
const MEMTYPE_DEFAULT: u32 = 1;
const MEMTYPE_HIGH_BANDWIDTH: u32 = 2;
/// `MEMKIND_MASK_PAGE_SIZE_2MB` (a value, not a bit, in 1.14).
const PAGE_SIZE_2MB: u32 = 21;
/// memkind.h's policies.
const BIND_LOCAL: i32 = 0;
const BIND_ALL: i32 = 1;
const PREFERRED_LOCAL: i32 = 2;
const INTERLEAVE_ALL: i32 = 4;
const POLICY_MAX: i32 = 5;

/// `memkind_create_kind`: the ten (memtype, policy, flags) triples 1.14 supports, each a static
/// kind. Unavailable: MEMKIND_DEFAULT for PREFERRED_LOCAL, else MEMTYPE_NOT_AVAILABLE.
pub fn create_kind(memtype: u32, policy: i32, flags: u32) -> Result<&'static Kind, Error> {
    use partition as p;
    if memtype == 0 || memtype & !(MEMTYPE_DEFAULT | MEMTYPE_HIGH_BANDWIDTH) != 0 {
        return Err(Error::Invalid);
    }
    if flags & !PAGE_SIZE_2MB != 0 || !(0..POLICY_MAX).contains(&policy) {
        return Err(Error::Invalid);
    }
    const HBW: u32 = MEMTYPE_HIGH_BANDWIDTH;
    const DEF: u32 = MEMTYPE_DEFAULT;
    let part = match (memtype, policy, flags) {
        (HBW, BIND_LOCAL, 0) => p::HBW,
        (HBW, BIND_LOCAL, PAGE_SIZE_2MB) => p::HBW_HUGETLB,
        (HBW, BIND_ALL, 0) => p::HBW_ALL,
        (HBW, BIND_ALL, PAGE_SIZE_2MB) => p::HBW_ALL_HUGETLB,
        (HBW, PREFERRED_LOCAL, 0) => p::HBW_PREFERRED,
        (HBW, PREFERRED_LOCAL, PAGE_SIZE_2MB) => p::HBW_PREFERRED_HUGETLB,
        (HBW, INTERLEAVE_ALL, 0) => p::HBW_INTERLEAVE,
        (DEF, PREFERRED_LOCAL, 0) => p::DEFAULT,
        (DEF, PREFERRED_LOCAL, PAGE_SIZE_2MB) => p::HUGETLB,
        (m, INTERLEAVE_ALL, 0) if m == HBW | DEF => p::INTERLEAVE,
        _ => return Err(Error::Invalid),
    };
    let k = &KINDS[part];
    match k.check_available() {
        Ok(()) => Ok(k),
        Err(_) if policy == PREFERRED_LOCAL => Ok(default_kind()),
        Err(_) => Err(Error::MemtypeNotAvailable),
    }
}

/// State of a dynamic kind, owned by its slot from `create_dynamic` to `destroy_kind`.
pub struct Dynamic {
    /// Family-specific state (dropped when the kind is destroyed: closes files, etc.).
    pub state: Box<dyn core::any::Any + Send + Sync>,
}

/// Take a free slot for a dynamic kind of `family` with `state`. MEMKIND_ERROR_TOOMANY when
/// all `MAX_KINDS - STATIC_KINDS` dynamic slots are in use.
pub(crate) fn create_dynamic(
    family: &'static Family,
    state: Box<dyn core::any::Any + Send + Sync>,
) -> Result<&'static Kind, Error> {
    crate::init::ensure();
    let _g = INIT_LOCK.lock();
    let k = KINDS[STATIC_KINDS..]
        .iter()
        .find(|k| !k.live.load(Ordering::Acquire))
        .ok_or(Error::TooMany)?;
    k.family
        .store(family as *const Family as *mut Family, Ordering::Release);
    let d = Box::into_raw(Box::new(Dynamic { state }));
    k.dynamic.store(d, Ordering::Release);
    k.placement.store(core::ptr::null_mut(), Ordering::Release);
    k.runtime.store(core::ptr::null_mut(), Ordering::Release);
    // A new generation: per-thread records of the slot's previous kind are stale from now on.
    k.generation.fetch_add(1, Ordering::AcqRel);
    k.live.store(true, Ordering::Release);
    probe::kind_event(k, crate::probe::records::kind_op::CREATE);
    Ok(k)
}

/// `memkind_destroy_kind`: static kinds are left as they are (0, as 1.14). A dynamic kind's
/// arenas are destroyed with every allocation still in them (their memory is unmapped: using
/// such a pointer afterwards is a use-after-free, and freeing it is ignored, since it is no
/// longer ours), its state is dropped and its slot freed for reuse.
pub fn destroy_kind(k: &'static Kind) -> Result<(), Error> {
    if (k.id() as usize) < STATIC_KINDS {
        return Ok(());
    }
    let _g = INIT_LOCK.lock();
    crate::probe::counters::flush_kind(k.id());
    probe::kind_event(k, crate::probe::records::kind_op::DESTROY);
    let result = destroy_arenas_locked(k);
    crate::memtier::reset_counters(k);
    k.live.store(false, Ordering::Release);
    k.generation.fetch_add(1, Ordering::AcqRel);
    let p = k.placement.swap(core::ptr::null_mut(), Ordering::AcqRel);
    let d = k.dynamic.swap(core::ptr::null_mut(), Ordering::AcqRel);
    k.family.store(
        &FREE_SLOT as *const Family as *mut Family,
        Ordering::Release,
    );
    #[allow(unsafe_code, reason = "reclaiming boxes published by this module")]
    // SAFETY: both were leaked boxes of this slot; the arenas are gone, so no hook reads the
    // placement any more, and the kind is not used during its destruction (contract).
    unsafe {
        if !p.is_null() {
            drop(Box::from_raw(p));
        }
        if !d.is_null() {
            drop(Box::from_raw(d));
        }
    }
    result
}

/// `memkind_arena_destroy`: static kinds keep their arenas.
pub fn destroy_arenas_of(k: &'static Kind) -> Result<(), Error> {
    if (k.id() as usize) < STATIC_KINDS {
        return Ok(());
    }
    let _g = INIT_LOCK.lock();
    destroy_arenas_locked(k)
}

fn destroy_arenas_locked(k: &'static Kind) -> Result<(), Error> {
    let r = k.runtime.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if r.is_null() {
        return Ok(());
    }
    // SAFETY: `r` was published by `init_slow` as a leaked box and is now unpublished; callers
    // must not use the kind concurrently with its destruction (memkind's contract).
    #[allow(unsafe_code, reason = "reclaiming the leaked runtime box")]
    let rt = unsafe { Box::from_raw(r) };
    crate::arena::destroy_arenas(k, &rt.arenas)
}

/// memkind_mem_usage_policy: DEFAULT keeps freed pages for jemalloc's default decay (10 s),
/// CONSERVATIVE returns them at once.
pub fn set_usage_policy(k: &'static Kind, policy: i32) -> Result<(), Error> {
    let ms: isize = match policy {
        0 => 10_000,
        1 => 0,
        _ => return Err(Error::Invalid),
    };
    let rt = k.runtime()?;
    for &a in rt.arenas.iter() {
        crate::jemalloc::arena_set_decay(a, ms, ms.min(0)).map_err(|_| Error::OperationFailed)?;
    }
    Ok(())
}

impl Kind {
    /// The kind is destroyed with blocks still allocated: a PMEM kind keeps its mappings (and
    /// file) so they stay usable; other kinds' memory is the caller's (fixed) or not dynamic.
    pub(crate) fn detach_mappings(&self) {
        if let Some(st) = self.state::<pmem::PmemState>() {
            st.detach();
        }
    }

    /// Publish a placement and runtime kept for good by the caller (DEFAULT at start-up, which
    /// must not allocate).
    pub(crate) fn publish_static(&self, placement: &'static Placement, runtime: &'static Runtime) {
        self.placement
            .store(placement as *const _ as *mut _, Ordering::Release);
        self.runtime
            .store(runtime as *const _ as *mut _, Ordering::Release);
    }
}

const _: () = assert!(core::mem::size_of::<Kind>() == 64);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::arena::heap;

    /// A dynamic family for tests: anonymous memory, one arena, state = a marker number.
    static TEST_FAMILY: Family = Family {
        name: "test_dynamic",
        placement: |_| {
            Ok(Placement {
                arenas: ArenaCount::Single,
                ..Placement::anon()
            })
        },
        check: check_by_placement,
        capacity: |_| -1,
        hooks: &crate::hooks::anon::HOOKS,
    };

    /// Tests that create dynamic kinds and expect slot reuse run one at a time.
    pub(crate) static DYNAMIC_SLOTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn dynamic_kinds_are_created_used_destroyed_and_reused() {
        let _serial = DYNAMIC_SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        let k = create_dynamic(&TEST_FAMILY, Box::new(7u32)).unwrap();
        assert!(k.id() as usize >= STATIC_KINDS);
        assert_eq!(k.state::<u32>(), Some(&7));
        assert_eq!(k.name(), "test_dynamic");
        assert!(Kind::from_ptr(k).is_some());
        let gen = k.generation();
        let small = heap::malloc(k, 64);
        let big = heap::malloc(k, 1 << 20);
        assert!(!small.is_null() && !big.is_null());
        assert!(matches!(heap::owner(small), heap::Owner::Kind(o) if o.id() == k.id()));
        heap::free(small); // into this thread's magazine of the kind
        let id = k.id();
        destroy_kind(k).unwrap();
        assert!(
            Kind::from_ptr(k).is_none(),
            "destroyed kinds are not kinds any more"
        );
        assert!(k.generation() > gen);
        // The kind's memory went with it: its pointers are foreign now and freeing is ignored.
        // (Tests running alongside may have mapped that address again meanwhile, for another
        // kind: then it must not be attributed to the destroyed one, and is left alone.)
        match heap::owner(big) {
            heap::Owner::Foreign => heap::free(big),
            heap::Owner::Kind(o) => assert_ne!(o.id(), k.id(), "a destroyed kind owns memory"),
        }
        // The slot is reused, with a fresh generation and no stale per-thread state.
        let k2 = create_dynamic(&TEST_FAMILY, Box::new(8u32)).unwrap();
        assert_eq!(k2.id(), id);
        assert_eq!(k2.state::<u32>(), Some(&8));
        let p = heap::malloc(k2, 64);
        assert!(matches!(heap::owner(p), heap::Owner::Kind(o) if o.id() == id));
        heap::free(p);
        destroy_kind(k2).unwrap();
    }

    #[test]
    fn static_kinds_survive_destroy() {
        let k = &KINDS[partition::REGULAR];
        destroy_kind(k).unwrap();
        let p = heap::malloc(k, 32);
        assert!(!p.is_null());
        heap::free(p);
    }
}
