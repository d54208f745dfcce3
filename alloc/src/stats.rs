//! Statistics, defragmentation and background threads: `memkind_update_cached_stats`,
//! `memkind_get_stat`, `memkind_stats_print`, `memkind_defrag_reallocate`,
//! `memkind_set_bg_threads`.
//!
//! Statistics are jemalloc's, read after the last `epoch` refresh (`update_cached_stats`), as in
//! memkind 1.14: per kind, the sum over the kind's arenas of `stats.arenas.<i>.resident`,
//! `pactive` × page size (ACTIVE) and `small.allocated + large.allocated` (ALLOCATED); DEFAULT
//! sums jemalloc's initialised automatic arenas; no kind means the whole process
//! (`stats.resident`, `stats.active`, `stats.allocated`). A kind whose arenas do not exist yet
//! reports 0 (it is not initialised by asking).
//!
//! Blocks held in per-thread caches count as allocated: jemalloc counts the blocks in its
//! thread caches as allocated, and our magazines are the same kind of cache (their blocks are
//! jemalloc allocations handed to no one yet), so ALLOCATED can exceed what the program holds by
//! at most the caches' contents (up to 64 blocks ≤ 4 KiB per size class, thread and kind, plus
//! jemalloc's tcache). Allocations above jemalloc's tcache limit (32 KiB) are never cached.
#![allow(
    unsafe_code,
    reason = "the stats printer's callback contract; copying a block when defragmenting"
)]

use core::ffi::{c_char, c_void};

use crate::arena::{self, heap};
use crate::error::Error;
use crate::jemalloc::{self, Name};
use crate::kind::Kind;

/// `memkind_stat_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatType {
    /// Bytes in physically resident data pages (MEMKIND_STAT_TYPE_RESIDENT).
    Resident,
    /// Bytes in active pages (MEMKIND_STAT_TYPE_ACTIVE).
    Active,
    /// Bytes allocated (MEMKIND_STAT_TYPE_ALLOCATED).
    Allocated,
}

impl StatType {
    /// From memkind.h's value; `None` for anything ≥ MEMKIND_STAT_TYPE_MAX_VALUE.
    pub fn from_raw(v: u32) -> Option<StatType> {
        match v {
            0 => Some(StatType::Resident),
            1 => Some(StatType::Active),
            2 => Some(StatType::Allocated),
            _ => None,
        }
    }
}

/// `memkind_update_cached_stats`: refresh jemalloc's statistics snapshot.
pub fn update_cached() -> Result<(), Error> {
    jemalloc::refresh_stats().map_err(|_| Error::OperationFailed)
}

/// `memkind_get_stat`: `kind` None is the whole process.
pub fn get(kind: Option<&'static Kind>, stat: StatType) -> Result<usize, Error> {
    let read = |name: &core::ffi::CStr| jemalloc::read_size(name).map_err(|_| Error::Invalid);
    let Some(kind) = kind else {
        return read(match stat {
            StatType::Resident => c"stats.resident",
            StatType::Active => c"stats.active",
            StatType::Allocated => c"stats.allocated",
        });
    };
    let mut total = 0usize;
    let mut add_arena = |ind: u32| -> Result<(), Error> {
        let one = |suffix: &str| read(Name::indexed("stats.arenas.", ind as u64, suffix).as_cstr());
        let v = match stat {
            StatType::Resident => one(".resident")?,
            StatType::Active => {
                let page = jemalloc::page_size().map_err(|_| Error::Invalid)?;
                one(".pactive")?.saturating_mul(page)
            }
            StatType::Allocated => {
                one(".small.allocated")?.saturating_add(one(".large.allocated")?)
            }
        };
        total = total.saturating_add(v);
        Ok(())
    };
    if kind.is_default() {
        let n = jemalloc::narenas_auto().map_err(|_| Error::Invalid)?;
        for ind in 0..n {
            if jemalloc::arena_initialized(ind).map_err(|_| Error::Invalid)? {
                add_arena(ind)?;
            }
        }
    } else if let Some(rt) = kind.runtime_if_ready() {
        for &ind in rt.arenas.iter() {
            add_arena(ind)?;
        }
    }
    Ok(total)
}

/// Bits of `memkind_stat_print_opt` and the jemalloc option letter each maps to.
const PRINT_OPTS: [(u32, u8); 9] = [
    (1 << 0, b'J'),
    (1 << 1, b'g'),
    (1 << 2, b'm'),
    (1 << 3, b'd'),
    (1 << 4, b'a'),
    (1 << 5, b'b'),
    (1 << 6, b'l'),
    (1 << 7, b'x'),
    (1 << 8, b'e'),
];

/// jemalloc's option string for `memkind_stat_print_opt` bits; `None` for unknown bits.
pub fn print_options(opts: u32) -> Option<[u8; 10]> {
    let known = PRINT_OPTS.iter().fold(0, |a, (b, _)| a | b);
    if opts & !known != 0 {
        return None;
    }
    let mut s = [0u8; 10];
    let mut i = 0;
    for &(bit, c) in &PRINT_OPTS {
        if opts & bit != 0 {
            s[i] = c;
            i += 1;
        }
    }
    Some(s)
}

/// The callback type of `memkind_stats_print`.
pub type WriteCb = unsafe extern "C" fn(*mut c_void, *const c_char);

/// `memkind_stats_print`: jemalloc's `malloc_stats_print` with the mapped options; a `None`
/// callback writes to stderr (jemalloc's default).
///
/// # Safety
/// `cb`, if any, must be callable with `opaque` and NUL-terminated strings.
pub unsafe fn print(cb: Option<WriteCb>, opaque: *mut c_void, opts: u32) -> Result<(), Error> {
    let s = print_options(opts).ok_or(Error::Invalid)?;
    let opts = core::ffi::CStr::from_bytes_until_nul(&s).map_err(|_| Error::Invalid)?;
    // SAFETY: forwarded contract.
    unsafe { jemalloc::stats_print(cb, opaque, opts) };
    Ok(())
}

/// Should the small object whose slab has `u` move? Like jemalloc's own defragmentation hint:
/// not when its slab is full or is the one the bin allocates from next, and only when its slab
/// is used less than the bin's slabs on average.
pub fn should_move(p: usize, u: &jemalloc::Utilization) -> bool {
    if u.nregs <= 1 || u.nfree == 0 || u.bin_nregs == 0 {
        return false; // large, full slab, or no bin statistics
    }
    let cur = u.slabcur as usize;
    if cur != 0 && p >= cur && p - cur < u.size {
        return false;
    }
    let used = (u.nregs - u.nfree) as u128;
    let bin_used = (u.bin_nregs.saturating_sub(u.bin_nfree)) as u128;
    used * (u.bin_nregs as u128) < bin_used * (u.nregs as u128)
}

/// `memkind_defrag_reallocate`: move `p` to a fresh block of its owner (bypassing this thread's
/// caches, so the block comes from the bin's current slab) when its slab is under-used;
/// otherwise (and for NULL, foreign or large pointers) NULL. The named kind is not trusted: the
/// owner decides, as for every other call.
pub fn defrag(_kind: Option<&'static Kind>, p: *mut c_void) -> *mut c_void {
    if p.is_null() {
        return core::ptr::null_mut();
    }
    let heap::Owner::Kind(owner) = heap::owner(p) else {
        return core::ptr::null_mut();
    };
    let Ok(u) = jemalloc::utilization(p) else {
        return core::ptr::null_mut();
    };
    if !should_move(p as usize, &u) {
        return core::ptr::null_mut();
    }
    let size = heap::usable_size(p);
    let flags = if owner.is_default() {
        tikv_jemalloc_sys::MALLOCX_TCACHE_NONE
    } else {
        match arena::thread_arena(owner) {
            Ok(a) => {
                tikv_jemalloc_sys::MALLOCX_ARENA(a as usize)
                    | tikv_jemalloc_sys::MALLOCX_TCACHE_NONE
            }
            Err(_) => return core::ptr::null_mut(),
        }
    };
    let Some(q) = jemalloc::mallocx(size, flags) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `p` is a live block of `size` usable bytes (its owner vouches), `q` a fresh block
    // of at least `size` bytes; distinct allocations.
    unsafe { core::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, size) };
    jemalloc::dallocx(p, tikv_jemalloc_sys::MALLOCX_TCACHE_NONE);
    q
}

/// `memkind_set_bg_threads`: jemalloc's `background_thread`; MEMKIND_ERROR_INVALID on failure
/// (1.14's code), MEMKIND_ERROR_ENVIRON while MEMKIND_BACKGROUND_THREAD_LIMIT is malformed.
pub fn set_bg_threads(on: bool) -> Result<(), Error> {
    crate::arena::init::ensure();
    crate::env::get().background_thread_limit?;
    jemalloc::set_background_thread(on).map_err(|_| Error::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_option_letters() {
        let s = |o| {
            print_options(o).map(|b| {
                String::from_utf8(b.iter().copied().take_while(|&c| c != 0).collect()).unwrap()
            })
        };
        assert_eq!(s(0).as_deref(), Some(""));
        assert_eq!(s(1).as_deref(), Some("J"));
        assert_eq!(s(0x1ff).as_deref(), Some("Jgmdablxe"));
        assert_eq!(s(0x200), None);
        assert_eq!(s(u32::MAX), None);
    }

    #[test]
    fn kind_statistics_follow_allocations() {
        // A kind of its own (a fixed kind over a private buffer), so tests running alongside
        // cannot change its figures.
        let _serial = crate::kind::tests::DYNAMIC_SLOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let buf = vec![0u8; 32 << 20];
        let k = crate::kind::fixed::create(buf.as_ptr() as usize, buf.len()).unwrap();
        let p = heap::malloc(k, 1); // initialise the kind's arena before the snapshot
        update_cached().unwrap();
        let before = get(Some(k), StatType::Allocated).unwrap();
        let blocks: Vec<_> = (0..8).map(|_| heap::malloc(k, 1 << 20)).collect();
        update_cached().unwrap();
        let after = get(Some(k), StatType::Allocated).unwrap();
        assert!(after >= before + (8 << 20));
        let active = get(Some(k), StatType::Active).unwrap();
        let resident = get(Some(k), StatType::Resident).unwrap();
        assert!(resident >= active && active >= after);
        assert!(get(None, StatType::Allocated).unwrap() >= after);
        for b in blocks {
            heap::free(b);
        }
        update_cached().unwrap();
        assert!(get(Some(k), StatType::Allocated).unwrap() + (8 << 20) <= after);
        heap::free(p);
        crate::arena::destroy_kind(k).unwrap();
        let d = crate::kind::default_kind();
        assert!(get(Some(d), StatType::Resident).unwrap() > 0);
    }

    #[test]
    fn defrag_keeps_data_and_refuses_large_and_foreign() {
        let k = &crate::kind::KINDS[crate::kind::partition::REGULAR];
        let mut v: Vec<*mut c_void> = (0..2048).map(|_| heap::malloc(k, 40)).collect();
        for (i, &p) in v.iter().enumerate() {
            // SAFETY: 40-byte live blocks.
            unsafe { core::ptr::write_bytes(p as *mut u8, i as u8, 40) };
        }
        for (i, p) in v.iter_mut().enumerate() {
            if i % 16 != 0 {
                heap::free(*p);
                *p = core::ptr::null_mut();
            }
        }
        let mut moved = 0;
        for (i, p) in v.iter_mut().enumerate().filter(|(_, p)| !p.is_null()) {
            let q = defrag(None, *p);
            if !q.is_null() {
                moved += 1;
                *p = q;
            }
            // SAFETY: a live 40-byte block (moved or not).
            let bytes = unsafe { core::slice::from_raw_parts(*p as *const u8, 40) };
            assert!(bytes.iter().all(|&b| b == i as u8));
            assert!(matches!(heap::owner(*p), heap::Owner::Kind(o) if o.id() == k.id()));
        }
        for p in v.into_iter().filter(|p| !p.is_null()) {
            heap::free(p);
        }
        let _ = moved; // how many move depends on the caches; the data is what must hold
        let big = heap::malloc(k, 1 << 20);
        assert!(defrag(Some(k), big).is_null());
        heap::free(big);
        let x = 5u64;
        assert!(defrag(None, &x as *const u64 as *mut c_void).is_null());
        assert!(defrag(None, core::ptr::null_mut()).is_null());
    }

    #[test]
    fn move_rule() {
        let u = |nfree, bin_nfree, bin_nregs| jemalloc::Utilization {
            slabcur: core::ptr::null_mut(),
            nfree,
            nregs: 8,
            size: 4096,
            bin_nfree,
            bin_nregs,
        };
        assert!(should_move(0x1000, &u(7, 8, 32))); // 1/8 used vs 24/32
        assert!(!should_move(0x1000, &u(0, 8, 32))); // full slab
        assert!(!should_move(0x1000, &u(4, 16, 32))); // at the average
        assert!(!should_move(0x1000, &u(7, 0, 0))); // no bin statistics
        let mut cur = u(7, 8, 32);
        cur.slabcur = 0x1000 as *mut c_void;
        assert!(!should_move(0x1800, &cur)); // the current slab
        let large = jemalloc::Utilization {
            nregs: 1,
            ..u(0, 0, 0)
        };
        assert!(!should_move(0x1000, &large));
    }
}
