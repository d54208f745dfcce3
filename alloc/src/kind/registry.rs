//! The registry: one static table of [`MAX_KINDS`] slots ([`KINDS`]), the static kinds in the
//! first ones (generated from the one table, `table.rs`), dynamic kinds in free slots above, the
//! lock that serialises kind set-up, and the arena index → kind table.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU16, AtomicU32, AtomicU8, Ordering};

use super::*;

const fn static_kind(
    id: u16,
    family: &'static Family,
    variant: u8,
    name: &'static str,
    ops: *const OpsTable,
) -> Kind {
    let mut cname = [const { AtomicU8::new(0) }; NAME_LEN];
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() && i < NAME_LEN - 1 {
        cname[i] = AtomicU8::new(b[i]);
        i += 1;
    }
    Kind {
        ops: AtomicPtr::new(ops as *mut OpsTable),
        partition: id as u32,
        cname,
        generation: AtomicU32::new(super::STATIC_GENERATION),
        family: AtomicPtr::new(family as *const Family as *mut Family),
        dynamic: AtomicPtr::new(core::ptr::null_mut()),
        placement: AtomicPtr::new(core::ptr::null_mut()),
        runtime: AtomicPtr::new(core::ptr::null_mut()),
        variant,
        live: AtomicBool::new(true),
    }
}

/// From [`static_kinds`]: the registry's table (in partition order) and [`partition`].
macro_rules! registry {
    ($($part:literal $name:ident $kname:literal ($family:path, $variant:expr) $deprecated:literal $ops:ident;)*) => {
        // The C ABI's tables (`ffi::ops`), by symbol name.
        #[allow(unsafe_code, reason = "declarations of statics the C ABI layer defines")]
        unsafe extern "C" {
            $(static $ops: OpsTable;)*
        }

        /// Number of static kinds (`MEMKIND_NUM_BASE_KIND`).
        pub const STATIC_KINDS: usize = [$($part),*].len();

        /// The static kinds in partition order: (family, variant, name).
        pub(super) const STATIC_TABLE: [(&Family, u8, &str); STATIC_KINDS] = [$((&$family, $variant, $kname)),*];

        /// Their operations tables, in partition order.
        const STATIC_OPS: [OpsPtr; STATIC_KINDS] = [$(OpsPtr(&raw const $ops)),*];

        // The rows are in partition order, so a partition is an index.
        const _: () = {
            let parts = [$($part),*];
            let mut i = 0;
            while i < parts.len() {
                assert!(parts[i] == i, "static_kinds! rows must be in partition order");
                i += 1;
            }
        };

        /// Partition numbers of the static kinds (memkind_deprecated.h).
        #[allow(missing_docs, reason = "names are memkind's")]
        #[allow(dead_code, reason = "one for every static kind, not all named in code")]
        pub mod partition {
            $(pub const $name: usize = $part;)*
        }
    };
}

static_kinds!(registry);

/// Placeholder family of free dynamic slots: never available.
pub(crate) static FREE_SLOT: Family = Family {
    name: "free",
    placement: |_| Err(Error::Unavailable),
    check: |_| Err(Error::Unavailable),
    capacity: |_| -1,
    hooks: HookSet::Anon,
};

const fn build_table() -> [Kind; MAX_KINDS] {
    let none = core::ptr::null();
    let mut t = [const { static_kind(0, &FREE_SLOT, 0, "", core::ptr::null()) }; MAX_KINDS];
    let mut i = 0;
    while i < MAX_KINDS {
        if i < STATIC_KINDS {
            let (f, v, n) = STATIC_TABLE[i];
            t[i] = static_kind(i as u16, f, v, n, STATIC_OPS[i].0);
        } else {
            t[i] = static_kind(i as u16, &FREE_SLOT, 0, "", none);
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

/// MEMKIND_DEFAULT.
pub fn default_kind() -> &'static Kind {
    &KINDS[partition::DEFAULT]
}

// --- arena index → kind --------------------------------------------------------------------

/// jemalloc's limit on arena indices (MALLOCX_ARENA_LIMIT).
pub const ARENA_LIMIT: usize = 4095;

/// arena index → kind id + 1 (0: not ours).
static ARENA_KIND: [AtomicU16; ARENA_LIMIT + 1] = [const { AtomicU16::new(0) }; ARENA_LIMIT + 1];
/// Kind id + 1 of the kind whose arenas are being created right now (under `INIT_LOCK`): jemalloc
/// calls our alloc hook for the new arena's metadata before `arenas.create` returns its index.
static PENDING: AtomicU16 = AtomicU16::new(0);

/// `get_kind_by_arena`: the kind owning jemalloc arena `ind`.
pub fn kind_of_arena(ind: u32) -> Option<&'static Kind> {
    let v = ARENA_KIND.get(ind as usize)?.load(Ordering::Acquire);
    (v != 0).then(|| &KINDS[(v - 1) as usize])
}

/// As [`kind_of_arena`], also answering for an arena under construction (hooks only).
pub(crate) fn kind_of_arena_for_hook(ind: u32) -> Option<&'static Kind> {
    kind_of_arena(ind).or_else(|| {
        let v = PENDING.load(Ordering::Acquire);
        (v != 0).then(|| &KINDS[(v - 1) as usize])
    })
}

/// Record that arena `ind` belongs to `kind` (`None`: to nobody any more).
pub(crate) fn set_arena_kind(ind: u32, kind: Option<&Kind>) {
    if let Some(slot) = ARENA_KIND.get(ind as usize) {
        slot.store(kind.map_or(0, |k| k.id() + 1), Ordering::Release);
    }
}

/// `kind`'s arenas are being created (`None`: done), for hooks called before an arena has its
/// index (caller holds [`INIT_LOCK`]).
pub(crate) fn set_pending(kind: Option<&Kind>) {
    PENDING.store(kind.map_or(0, |k| k.id() + 1), Ordering::Release);
}
