//! A kind's life at the arena layer: its arenas are created on first use ([`runtime`]) and
//! destroyed with the kind ([`destroy_kind`], [`destroy_arenas_of`]); dynamic kinds are created
//! here ([`create_pmem`], [`create_fixed`]) on top of the registry's slots, after start-up.
//!
//! Initialisation runs in two published steps: first the kind's placement (what the extent hooks
//! need: backing, mbind policy), then the arenas, because jemalloc calls our hooks while it
//! creates an arena.

use crate::error::Error;
use crate::kind::{self, fixed, pmem, Kind, Runtime, INIT_LOCK, STATIC_KINDS};

/// The initialised kind's arenas, initialising the kind on first use.
#[inline]
pub fn runtime(kind: &'static Kind) -> Result<&'static Runtime, Error> {
    match kind.runtime_if_ready() {
        Some(rt) => Ok(rt),
        None => init_slow(kind),
    }
}

#[cold]
fn init_slow(kind: &'static Kind) -> Result<&'static Runtime, Error> {
    super::init::ensure();
    let _reentry = super::thread::InitGuard::enter();
    let _g = INIT_LOCK.lock();
    if let Some(rt) = kind.runtime_if_ready() {
        return Ok(rt);
    }
    let placement = kind.placement_or_publish()?;
    let arenas = super::create_arenas(kind, placement, kind.family().hooks)?;
    let rt = kind.publish_runtime(Box::new(Runtime::new(arenas)));
    crate::env::debug_log!("kind {} ready with {} arenas", kind.name(), rt.arenas.len());
    Ok(rt)
}

/// `memkind_bijective_get_arena`: the kind's first (for bijective kinds, only) arena.
pub fn bijective_arena(kind: &'static Kind) -> Result<u32, Error> {
    runtime(kind)?
        .arenas
        .first()
        .copied()
        .ok_or(Error::Unavailable)
}

/// `memkind_create_pmem` / `_with_config`: a new PMEM kind in `dir` (path bytes, no NUL) with
/// usage `policy`. Its arenas are made here, as 1.14 makes them (so the kind's first allocation
/// costs what any allocation of a new extent costs, not the arenas' creation as well).
pub fn create_pmem(dir: &[u8], max: usize, policy: i32) -> Result<&'static Kind, Error> {
    super::init::ensure();
    let k = pmem::create(dir, max, policy)?;
    let ready = if policy == pmem::POLICY_CONSERVATIVE {
        set_usage_policy(k, policy)
    } else {
        runtime(k).map(drop)
    };
    if let Err(e) = ready {
        let _ = destroy_kind(k);
        return Err(e);
    }
    if let Some(st) = k.state::<pmem::PmemState>() {
        crate::env::debug_log!(
            "pmem kind {} in {} (max {}, MAP_SYNC {})",
            k.id(),
            String::from_utf8_lossy(dir),
            st.max,
            st.sync
        );
    }
    Ok(k)
}

/// `memkind_create_fixed(addr, size, &kind)`.
pub fn create_fixed(addr: usize, size: usize) -> Result<&'static Kind, Error> {
    super::init::ensure();
    fixed::create(addr, size)
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
    crate::counters::thread::flush_kind(k.id());
    super::thread::flush_kind_counts(k);
    kind::probe::kind_event(k, crate::probe::records::kind_op::DESTROY);
    let result = destroy_arenas_locked(k);
    kind::release_slot(k);
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
    match k.take_runtime() {
        Some(rt) => super::destroy_arenas(k, &rt.arenas),
        None => Ok(()),
    }
}

/// memkind_mem_usage_policy: DEFAULT keeps freed pages for jemalloc's default decay (10 s),
/// CONSERVATIVE returns them at once. A CONSERVATIVE PMEM kind also caches no freed blocks
/// (as 1.14, which has no thread cache for PMEM kinds): cached free blocks would keep their
/// slabs alive and scatter them over the kind's `max`, so refilling a kind emptied by frees
/// would fit less than its first fill did. Threads that already cache blocks of the kind (other
/// than the caller) keep doing so until they exit.
pub fn set_usage_policy(k: &'static Kind, policy: i32) -> Result<(), Error> {
    let ms: isize = match policy {
        0 => 10_000,
        1 => 0,
        _ => return Err(Error::Invalid),
    };
    let rt = runtime(k)?;
    for &a in rt.arenas.iter() {
        crate::jemalloc::arena_set_decay(a, ms, ms.min(0)).map_err(|_| Error::OperationFailed)?;
    }
    if let Some(st) = k.state::<pmem::PmemState>() {
        st.set_uncached(policy == pmem::POLICY_CONSERVATIVE);
        super::thread::forget_own_record(k);
    }
    Ok(())
}
