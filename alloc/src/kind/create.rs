//! Kind creation: `memkind_create_kind`'s table of static kinds, and the dynamic slots' life
//! (taken by [`create_dynamic`], freed by [`release_slot`]; their arenas are the arena layer's).

use core::sync::atomic::Ordering;

use super::*;

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

/// Take a free slot for a dynamic kind of `family` with `state`, and give it the C-visible
/// operations table and name. MEMKIND_ERROR_TOOMANY when all `MAX_KINDS - STATIC_KINDS` dynamic
/// slots are in use.
pub(crate) fn create_dynamic(
    family: &'static Family,
    state: Box<dyn core::any::Any + Send + Sync>,
    ops: OpsPtr,
    name: &[u8],
) -> Result<&'static Kind, Error> {
    let _g = INIT_LOCK.lock();
    let k = KINDS[STATIC_KINDS..]
        .iter()
        .find(|k| !k.live.load(Ordering::Acquire))
        .ok_or(Error::TooMany)?;
    k.family
        .store(family as *const Family as *mut Family, Ordering::Release);
    k.set_c_view(ops, name);
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

/// Free the slot of a dynamic kind whose arenas are gone (the arena layer's `destroy_kind`;
/// caller holds [`INIT_LOCK`]): the kind stops being one, its placement and state are dropped
/// and its counters start again from zero.
pub(crate) fn release_slot(k: &'static Kind) {
    debug_assert!(k.id() as usize >= STATIC_KINDS);
    crate::counters::reset(k.id());
    k.live.store(false, Ordering::Release);
    k.generation.fetch_add(1, Ordering::AcqRel);
    let p = k.placement.swap(core::ptr::null_mut(), Ordering::AcqRel);
    let d = k.dynamic.swap(core::ptr::null_mut(), Ordering::AcqRel);
    k.family.store(
        &FREE_SLOT as *const Family as *mut Family,
        Ordering::Release,
    );
    k.set_c_view(OpsPtr(core::ptr::null()), b"");
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
}
