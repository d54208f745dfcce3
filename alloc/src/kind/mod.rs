//! Kinds: the types (a [`Kind`] slot, a [`Family`] operations table, a [`Placement`]), the
//! registry (`registry.rs`), placement from the topology (`placement.rs`), creation
//! (`create.rs`), and one file per family.
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
#[macro_use]
mod table;
#[allow(
    clippy::single_component_path_imports,
    reason = "makes the macro a path, crate::kind::static_kinds"
)]
pub(crate) use static_kinds;
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

mod create;
mod placement;
mod registry;
pub(crate) use create::*;
pub(crate) use placement::*;
pub(crate) use registry::*;

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU8, Ordering};

use crate::error::Error;
use crate::sys::{Backing, MpolMode};
use crate::topology::NodeSets;

/// Slots in the registry (see [`crate::counters::MAX_KINDS`]).
pub use crate::counters::MAX_KINDS;

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
    /// The extent hook table the family's arenas get (the tables are the hooks layer's).
    pub hooks: HookSet,
}

/// Which of the hooks layer's extent hook tables a family's arenas use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookSet {
    /// Anonymous memory with an optional mbind policy (`hooks::anon`).
    Anon,
    /// MAP_HUGETLB (`hooks::hugetlb`).
    Hugetlb,
    /// The kind's file (`hooks::file`, PMEM).
    File,
    /// The caller's buffer (`hooks::fixed`).
    Fixed,
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

/// The C ABI's operations tables (`MEMKIND_*_OPS`, 1.14's `struct memkind_ops`) as this layer
/// sees them: opaque. The tables are the C ABI's (`ffi::ops`); the registry refers to them by
/// symbol name (an `extern` static resolved by the linker), so no layer imports from above.
#[repr(C)]
pub struct OpsTable {
    _opaque: [u8; 0],
}

/// A pointer to an [`OpsTable`] that can sit in a `static` (null for kinds with no table).
#[derive(Clone, Copy)]
pub struct OpsPtr(pub *const OpsTable);

// SAFETY: the pointer targets an immutable-from-Rust static table (or is null); only its value is
// shared.
#[allow(unsafe_code, reason = "address of a static table")]
unsafe impl Sync for OpsPtr {}

/// Length of the C-visible name (1.14's `MEMKIND_NAME_LENGTH_PRIV`), NUL included.
pub const NAME_LEN: usize = 64;

/// The generation of every static kind's slot, for its whole life (only dynamic slots are
/// reused, and bumped when they are).
pub(crate) const STATIC_GENERATION: u32 = 1;

/// One memory kind. `memkind_t` in C is a pointer to one of these. 64-byte aligned and 128 bytes,
/// so validating a pointer from C is a subtraction, a compare and a mask.
///
/// The first three fields are 1.14's `struct memkind` (`ops`, `partition`, `name`), which code
/// written against memkind_arena(3) / memkind_default(3) reads (`kind->name`,
/// `kind->ops->malloc(kind, n)`); the rest is ours and C does not see it (1.14's later fields,
/// `init_once`, `arena_map_len`, ..., are its implementation). The probe's trace program
/// (`bpf/src/bpf/trace.bpf.c`) finds a kind's id from its address with the 128-byte stride and
/// checks it against `partition`.
#[repr(C, align(64))]
pub struct Kind {
    /// `struct memkind_ops *ops`.
    ops: AtomicPtr<OpsTable>,
    /// `unsigned int partition`: the slot index.
    partition: u32,
    /// `char name[64]`, NUL-terminated: memkind's name (`memkind_hbw`, `pmem%08x`,
    /// `fixed%p`). Written only while a dynamic slot is taken, before it is published.
    cname: [AtomicU8; NAME_LEN],
    /// Bumped every time a dynamic slot is reused, so stale per-thread caches are noticed.
    generation: AtomicU32,
    /// The family (fixed for static kinds; set when a dynamic slot is taken).
    family: AtomicPtr<Family>,
    /// A dynamic kind's own state (PMEM directory and file, fixed buffer...), null otherwise.
    dynamic: AtomicPtr<Dynamic>,
    placement: AtomicPtr<Placement>,
    runtime: AtomicPtr<Runtime>,
    variant: u8,
    live: AtomicBool,
}

/// The usual `Family::check`: the kind is available when its placement can be computed.
pub fn check_by_placement(k: &Kind) -> Result<(), Error> {
    (k.family().placement)(k).map(drop)
}

impl Kind {
    /// Validate a `memkind_t` from C: `Some` only for the address of a live slot.
    #[inline(always)]
    pub fn from_ptr(p: *const Kind) -> Option<&'static Kind> {
        let (i, k) = Self::slot_of(p)?;
        // Static slots are always live; the load is only needed for dynamic ones.
        (i < STATIC_KINDS || k.live.load(Ordering::Acquire)).then_some(k)
    }

    /// [`Kind::from_ptr`] without the liveness test: `Some` for the address of any slot, live
    /// or not. Only for a fast path whose next test implies liveness (a thread's record of
    /// the kind's current generation exists only for a live kind: records are made by slow
    /// paths that validate the kind with `from_ptr`, and destroying a kind bumps its
    /// generation), falling back to `from_ptr`'s full validation otherwise.
    #[inline(always)]
    pub fn in_table(p: *const Kind) -> Option<&'static Kind> {
        Self::slot_of(p).map(|(_, k)| k)
    }

    /// The slot index and kind of `p` if it is the address of a slot of [`KINDS`].
    #[inline(always)]
    fn slot_of(p: *const Kind) -> Option<(usize, &'static Kind)> {
        const SIZE: usize = core::mem::size_of::<Kind>();
        const _: () = assert!(SIZE.is_power_of_two(), "from_ptr's index is a rotate");
        let base = KINDS.as_ptr() as usize;
        // The slot index, in one rotate: an offset that is not a multiple of the slot size has
        // low bits set, which the rotate moves to the top, so it fails the range test like an
        // address outside the table (NULL included).
        let off = (p as usize).wrapping_sub(base);
        let i = off.rotate_right(SIZE.trailing_zeros());
        if i >= MAX_KINDS {
            return None;
        }
        // Slot `i` is `p` itself: no index arithmetic, and `p` stays in its register (the
        // table's address plus `off` made the compiler load the address again).
        #[allow(unsafe_code, reason = "pointer into a static table")]
        // SAFETY: `i < MAX_KINDS` and the rotate left no low bits, so `off == i * SIZE`: `p`
        // is the address of slot `i` of KINDS, a static that lives for the whole program (C
        // got it from us: the exported kind pointers or memkind_create_*).
        let k: &'static Kind = unsafe {
            // Not null: the table's address plus `off` (the compiler cannot see it).
            core::hint::assert_unchecked(!p.is_null());
            &*p
        };
        Some((i, k))
    }

    /// A dynamic slot in use (static kinds: always).
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Slot index (also the partition of static kinds).
    #[inline(always)]
    pub fn id(&self) -> u16 {
        self.partition as u16
    }

    /// Kind name (memkind's, e.g. `memkind_hbw`; the family's name for dynamic kinds, whose
    /// C-visible name is [`Kind::c_name`]).
    pub fn name(&self) -> &'static str {
        match STATIC_TABLE.get(self.partition as usize) {
            Some((_, _, name)) => name,
            None => self.family().name,
        }
    }

    /// The C-visible name (`kind->name`), without its NUL.
    pub fn c_name(&self) -> Vec<u8> {
        self.cname
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .take_while(|&b| b != 0)
            .collect()
    }

    /// Write the C-visible name and operations table of a slot being taken (caller holds
    /// [`INIT_LOCK`], before the slot is published; longer names are cut to 63 bytes).
    pub(crate) fn set_c_view(&self, ops: OpsPtr, name: &[u8]) {
        let n = name.len().min(NAME_LEN - 1);
        for (i, b) in self.cname.iter().enumerate() {
            b.store(if i < n { name[i] } else { 0 }, Ordering::Relaxed);
        }
        self.ops.store(ops.0 as *mut OpsTable, Ordering::Release);
    }

    /// The kind's operations table (`kind->ops`).
    pub fn ops(&self) -> *const OpsTable {
        self.ops.load(Ordering::Acquire)
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
        self.partition == partition::DEFAULT as u32
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

    /// The mbind mode and target nodes of the kind's memory for a thread on the calling CPU
    /// (what 1.14's `get_mbind_mode` / `get_mbind_nodemask` operations report); `None` for kinds
    /// without a policy; the error is 1.14's code for an unavailable kind.
    pub fn mbind_here(&self) -> Result<Option<(MpolMode, crate::nodemask::Nodemask)>, Error> {
        let computed;
        let p = match self.placement() {
            Some(p) => p,
            None => {
                computed = (self.family().placement)(self)?;
                &computed
            }
        };
        let node = crate::sys::current_node();
        Ok(p.mbind
            .as_ref()
            .map(|m| (m.mode, m.nodes.for_cpu_node(node))))
    }

    /// `memkind_get_capacity`.
    pub fn capacity(&self) -> isize {
        (self.family().capacity)(self)
    }

    /// The kind's arenas if it is initialised, without initialising it.
    pub fn runtime_if_ready(&self) -> Option<&'static Runtime> {
        let r = self.runtime.load(Ordering::Acquire);
        // SAFETY: as for `placement`.
        #[allow(unsafe_code, reason = "published pointer")]
        (!r.is_null()).then(|| unsafe { &*r })
    }

    /// The published placement, computing and publishing it first if needed (caller holds
    /// [`INIT_LOCK`]: the arena layer, before it creates the kind's arenas).
    pub(crate) fn placement_or_publish(&self) -> Result<&'static Placement, Error> {
        if let Some(p) = self.placement() {
            return Ok(p);
        }
        let p = (self.family().placement)(self)?;
        let p: &'static Placement = Box::leak(Box::new(p));
        self.placement
            .store(p as *const _ as *mut _, Ordering::Release);
        Ok(p)
    }

    /// Publish the runtime of a kind whose arenas were just created (caller holds
    /// [`INIT_LOCK`]).
    pub(crate) fn publish_runtime(&self, rt: Box<Runtime>) -> &'static Runtime {
        let rt: &'static Runtime = Box::leak(rt);
        self.runtime
            .store(rt as *const _ as *mut _, Ordering::Release);
        rt
    }

    /// Unpublish the runtime (its arenas are about to be destroyed; caller holds
    /// [`INIT_LOCK`]).
    pub(crate) fn take_runtime(&self) -> Option<Box<Runtime>> {
        let r = self.runtime.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: `r` was published by `publish_runtime` as a leaked box and is now unpublished;
        // callers must not use the kind concurrently with its destruction (memkind's contract).
        #[allow(unsafe_code, reason = "reclaiming the leaked runtime box")]
        (!r.is_null()).then(|| unsafe { Box::from_raw(r) })
    }
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

const _: () = assert!(core::mem::size_of::<Kind>() == 128);
// 1.14's layout of the fields C reads.
const _: () = assert!(core::mem::offset_of!(Kind, ops) == 0);
const _: () = assert!(core::mem::offset_of!(Kind, partition) == 8);
const _: () = assert!(core::mem::offset_of!(Kind, cname) == 12);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::arena::destroy_kind;
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
        hooks: HookSet::Anon,
    };

    /// Tests that create dynamic kinds and expect slot reuse run one at a time.
    pub(crate) static DYNAMIC_SLOTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn dynamic_kinds_are_created_used_destroyed_and_reused() {
        let _serial = DYNAMIC_SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        let k = create_dynamic(
            &TEST_FAMILY,
            Box::new(7u32),
            OpsPtr(core::ptr::null()),
            b"t7",
        )
        .unwrap();
        assert_eq!(k.c_name(), b"t7");
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
        let k2 = create_dynamic(
            &TEST_FAMILY,
            Box::new(8u32),
            OpsPtr(core::ptr::null()),
            b"t8",
        )
        .unwrap();
        assert_eq!(k2.c_name(), b"t8");
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
