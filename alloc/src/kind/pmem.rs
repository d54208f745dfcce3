//! File-backed PMEM kinds (`memkind_create_pmem`): each kind owns an unlinked temporary file
//! `memkind.XXXXXX` in its directory; its single arena's extents are shared mappings of that
//! file ([`crate::hooks::file`]), with MAP_SYNC when the directory is on a DAX mount.
//!
//! 1.14's rules: `max` 0 is unlimited, else at least [`PMEM_MIN_SIZE`] (16 MiB), rounded up to
//! 2 MiB; a directory where the file cannot be created is MEMKIND_ERROR_INVALID (nothing is
//! created: no slot taken, no descriptor left open); exceeding `max` is NULL + ENOMEM.
//!
//! Beyond 1.14: one arena per kind (so over a thousand kinds fit under jemalloc's arena limit),
//! per-thread caches (the arena layer), and fork safety: the fork handlers give every PMEM kind
//! of the child a fresh file holding a copy of the parent's data, mapped at the same addresses,
//! so parent and child never share file blocks after `fork` ([`fork_prepare`]).
#![allow(unsafe_code, reason = "the chunk log is a raw mmap'd table")]

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::os::fd::{AsRawFd, IntoRawFd};

use super::{ArenaCount, Family, Kind, Placement, KINDS, STATIC_KINDS};
use crate::error::Error;
use crate::extent_map::MAP;
use crate::sys::{self, Backing, Linux, Os, HUGE_2M};

/// `MEMKIND_PMEM_MIN_SIZE`.
pub const PMEM_MIN_SIZE: usize = 16 << 20;
/// `MEMKIND_MEM_USAGE_POLICY_DEFAULT`: freed memory kept for jemalloc's dirty decay (10 s).
pub const POLICY_DEFAULT: i32 = 0;
/// `MEMKIND_MEM_USAGE_POLICY_CONSERVATIVE`: freed memory returned at once.
pub const POLICY_CONSERVATIVE: i32 = 1;

/// Chunks a kind can map in its life (one per alloc hook call: jemalloc grows its arenas
/// geometrically, so this is far more than any heap needs). The log is mmap'd lazily.
const LOG_CAP: usize = 4096;

/// Append-only log of the kind's mappings `(address, length, file offset)`, written by the
/// alloc hook (lock-free: a slot index from `fetch_add`, the address published last) and read by
/// the fork handlers to find the file range behind every mapped granule.
pub(crate) struct ChunkLog {
    base: usize,
    len: AtomicUsize,
}

impl ChunkLog {
    fn new() -> Result<ChunkLog, Error> {
        let p = Linux
            .map(LOG_CAP * 16, Backing::Anon)
            .map_err(|_| Error::Malloc)?;
        Ok(ChunkLog {
            base: p.as_ptr() as usize,
            len: AtomicUsize::new(0),
        })
    }

    fn slots(&self) -> &[AtomicU64] {
        // SAFETY: `base` is a live, zero-initialised mapping of LOG_CAP * 2 u64 words owned by
        // this log until drop; AtomicU64 has the layout of u64.
        unsafe { core::slice::from_raw_parts(self.base as *const AtomicU64, LOG_CAP * 2) }
    }

    /// Record a mapping (granule-aligned address, length and offset). False when full.
    pub(crate) fn push(&self, addr: usize, len: usize, off: i64) -> bool {
        if len / HUGE_2M >= HUGE_2M {
            return false;
        }
        let i = self.len.fetch_add(1, Ordering::AcqRel);
        if i >= LOG_CAP {
            return false;
        }
        let s = self.slots();
        s[2 * i + 1].store(off as u64 | (len / HUGE_2M) as u64, Ordering::Relaxed);
        s[2 * i].store(addr as u64, Ordering::Release);
        true
    }

    /// Complete records, oldest first: `(address, length, offset)`.
    fn entries(&self) -> impl DoubleEndedIterator<Item = (usize, usize, i64)> + '_ {
        let n = self.len.load(Ordering::Acquire).min(LOG_CAP);
        let s = self.slots();
        (0..n).filter_map(move |i| {
            let addr = s[2 * i].load(Ordering::Acquire) as usize;
            let w = s[2 * i + 1].load(Ordering::Relaxed);
            let mask = (HUGE_2M - 1) as u64;
            (addr != 0).then_some((addr, (w & mask) as usize * HUGE_2M, (w & !mask) as i64))
        })
    }

    /// Empty the log (fork child only: single threaded).
    fn reset(&self) {
        let n = self.len.load(Ordering::Acquire).min(LOG_CAP);
        for w in &self.slots()[..2 * n] {
            w.store(0, Ordering::Relaxed);
        }
        self.len.store(0, Ordering::Release);
    }
}

impl Drop for ChunkLog {
    fn drop(&mut self) {
        // SAFETY: the log's own mapping, used by nothing once the log is dropped.
        let _ = unsafe { Linux.unmap(self.base as *mut core::ffi::c_void, LOG_CAP * 16) };
    }
}

/// A PMEM kind's state (the slot's dynamic state).
pub struct PmemState {
    /// Directory of the file (bytes of the path, no NUL).
    pub(crate) dir: Vec<u8>,
    /// Maximum bytes of extents, 0 = unlimited (rounded up to 2 MiB).
    pub(crate) max: usize,
    /// Map with MAP_SYNC (the directory is on a DAX mount).
    pub(crate) sync: bool,
    /// The file (replaced in a fork child).
    pub(crate) fd: AtomicI32,
    /// Next free file offset (bump allocator, 2 MiB multiples).
    pub(crate) next_off: AtomicU64,
    /// Bytes of extents jemalloc holds (what `max` limits).
    pub(crate) mapped: AtomicUsize,
    /// Every mapping made (for fork).
    pub(crate) log: ChunkLog,
    /// Address space the extents are mapped into (hooks/file.rs).
    pub(crate) window: sys::Window,
    /// The slot's id once created (u16::MAX before).
    kind_id: AtomicU16,
    /// The kind is being destroyed with blocks still allocated: its mappings are kept (and its
    /// file, through them) so those blocks stay usable, only forgotten by the extent map.
    detached: AtomicBool,
    /// `MEMKIND_MEM_USAGE_POLICY_CONSERVATIVE`: freed blocks go straight back to jemalloc (no
    /// per-thread caching), so freed memory is returned at once and reusable by any size class.
    uncached: AtomicBool,
}

impl PmemState {
    /// Reserve `bytes` against `max`; false (nothing reserved) when that would exceed it.
    pub(crate) fn charge(&self, bytes: usize) -> bool {
        let prev = self.mapped.fetch_add(bytes, Ordering::AcqRel);
        if self.max != 0 && prev.saturating_add(bytes) > self.max {
            self.mapped.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Give back `bytes` charged earlier.
    pub(crate) fn uncharge(&self, bytes: usize) {
        let _ = self
            .mapped
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| {
                Some(m.saturating_sub(bytes))
            });
    }

    /// Keep the mappings through the coming destroy (blocks are still allocated).
    pub(crate) fn detach(&self) {
        self.detached.store(true, Ordering::Release);
    }

    /// See [`PmemState::detach`].
    pub(crate) fn is_detached(&self) -> bool {
        self.detached.load(Ordering::Acquire)
    }

    /// Cache nothing for this kind from now on (CONSERVATIVE) or cache again (DEFAULT).
    pub(crate) fn set_uncached(&self, on: bool) {
        self.uncached.store(on, Ordering::Release);
    }

    /// See [`PmemState::set_uncached`].
    pub(crate) fn is_uncached(&self) -> bool {
        self.uncached.load(Ordering::Acquire)
    }

    /// Bytes of extents currently charged against `max`.
    #[cfg(test)]
    pub fn mapped_bytes(&self) -> usize {
        self.mapped.load(Ordering::Acquire)
    }
}

impl Drop for PmemState {
    fn drop(&mut self) {
        // The arenas are destroyed, and with them every extent (arena metadata is not in the
        // file). Sweep whatever granule is still registered to the kind, so nothing can leak.
        let id = self.kind_id.load(Ordering::Acquire);
        let keep = self.is_detached();
        if id != u16::MAX {
            MAP.sweep_kind(id, |g| {
                if !keep {
                    // SAFETY: the kind is destroyed with nothing allocated (not detached): its granules hold no live block.
                    let _ = unsafe {
                        Linux.advise(g as *mut core::ffi::c_void, HUGE_2M, libc::MADV_REMOVE)
                    };
                    // SAFETY: likewise; the kind is being destroyed: nothing carves.
                    unsafe { self.window.give_back(g) };
                }
            });
        }
        // The address window: kept whole for the next kind (every granule is reservation again),
        // or, when a detached kind's blocks stay mapped, what was never handed out unmapped.
        self.window.release(!keep);
        sys::close(self.fd.load(Ordering::Acquire));
    }
}

fn placement(k: &Kind) -> Result<Placement, Error> {
    let st = k.state::<PmemState>().ok_or(Error::Unavailable)?;
    Ok(Placement {
        backing: Backing::File {
            fd: st.fd.load(Ordering::Acquire),
            offset: 0,
            sync: st.sync,
        },
        // A few arenas so threads allocating large blocks do not queue on one arena's lock;
        // few enough that a thousand PMEM kinds fit in jemalloc's 4095 arenas.
        arenas: ArenaCount::PerThreadUpTo(4),
        ..Placement::anon()
    })
}

fn capacity(k: &Kind) -> isize {
    let Some(st) = k.state::<PmemState>() else {
        return -1;
    };
    if st.max != 0 {
        return st.max as isize;
    }
    sys::fs_size(st.fd.load(Ordering::Acquire)).map_or(-1, |s| s as isize)
}

/// The PMEM family.
pub static FAMILY: Family = Family {
    name: "pmem",
    placement,
    check: super::check_by_placement,
    capacity,
    hooks: super::HookSet::File,
};

// The C ABI's table of PMEM kinds (`ffi::ops`), by symbol name.
#[allow(
    unsafe_code,
    reason = "declaration of a static the C ABI layer defines"
)]
unsafe extern "C" {
    static MEMKIND_PMEM_OPS: super::OpsTable;
}

/// True when `k` is a PMEM kind.
pub fn is_pmem(k: &Kind) -> bool {
    core::ptr::eq(k.family(), &FAMILY)
}

/// The kind half of `memkind_create_pmem` / `_with_config` (see `arena::create_pmem`): a new
/// PMEM kind in `dir` (path bytes, no NUL); `policy` is only checked here.
pub fn create(dir: &[u8], max: usize, policy: i32) -> Result<&'static Kind, Error> {
    if max != 0 && max < PMEM_MIN_SIZE {
        crate::env::debug_log!("Cannot create pmem: invalid size.");
        return Err(Error::Invalid);
    }
    if !(POLICY_DEFAULT..=POLICY_CONSERVATIVE).contains(&policy) {
        crate::env::debug_log!("Cannot create pmem: invalid memory usage policy {policy}.");
        return Err(Error::Invalid);
    }
    let max = if max == 0 {
        0
    } else {
        max.checked_add(HUGE_2M - 1).ok_or(Error::Invalid)? & !(HUGE_2M - 1)
    };
    let fd = sys::create_temp_file(dir).map_err(|e| {
        crate::env::debug_log!("Could not create temporary file: errno={}.", e as i32);
        Error::Invalid
    })?;
    let sync = sys::ftruncate(fd.as_raw_fd(), sys::PAGE_SIZE as i64).is_ok()
        && sys::map_sync_works(fd.as_raw_fd());
    let _ = sys::ftruncate(fd.as_raw_fd(), 0);
    let log = match ChunkLog::new() {
        Ok(l) => l,
        Err(e) => {
            drop(fd);
            return Err(e);
        }
    };
    let state = PmemState {
        dir: dir.to_vec(),
        max,
        sync,
        // The state owns the descriptor from here on (closed on drop, replaced at fork).
        fd: AtomicI32::new(fd.into_raw_fd()),
        next_off: AtomicU64::new(0),
        mapped: AtomicUsize::new(0),
        log,
        window: sys::Window::new(),
        kind_id: AtomicU16::new(u16::MAX),
        detached: AtomicBool::new(false),
        uncached: AtomicBool::new(policy == POLICY_CONSERVATIVE),
    };
    // 1.14 names a PMEM kind after its file descriptor.
    let name = format!("pmem{:08x}", state.fd.load(Ordering::Relaxed));
    // On error the state is dropped: the file is closed (and gone: it is unlinked).
    let ops = super::OpsPtr(&raw const MEMKIND_PMEM_OPS);
    let k = super::create_dynamic(&FAMILY, Box::new(state), ops, name.as_bytes())?;
    if let Some(st) = k.state::<PmemState>() {
        st.kind_id.store(k.id(), Ordering::Release);
        // The first extent's address space now: the first allocation maps the file at once.
        st.window.prime();
    }
    // The usage policy (CONSERVATIVE needs the arenas) is applied by the arena layer.
    Ok(k)
}

/// `memkind_check_dax_path`: 0 when a file in `dir` can be mapped with MAP_SYNC (a DAX mount),
/// MEMKIND_ERROR_MMAP when it cannot, MEMKIND_ERROR_RUNTIME when no file can be created there.
pub fn check_dax_path(dir: &[u8]) -> Result<(), Error> {
    let fd = sys::create_temp_file(dir).map_err(|e| {
        crate::env::debug_log!("Could not create temporary file: errno={}.", e as i32);
        Error::Runtime
    })?;
    let ok = sys::ftruncate(fd.as_raw_fd(), sys::PAGE_SIZE as i64).is_ok()
        && sys::map_sync_works(fd.as_raw_fd());
    drop(fd);
    if ok {
        Ok(())
    } else {
        crate::env::debug_log!(
            "{}: mmap with MAP_SYNC failed",
            String::from_utf8_lossy(dir)
        );
        Err(Error::Mmap)
    }
}

// --- fork -----------------------------------------------------------------------------------------

/// A child's copy of one kind, made before the fork.
struct Snapshot {
    kind: u16,
    fd: i32,
    /// (granule address, offset in `fd`), in the order copied.
    granules: Vec<(usize, i64)>,
    end: i64,
}

static SNAPSHOTS: crate::sync::ForkLock<Vec<Snapshot>> = crate::sync::ForkLock::new(Vec::new());

fn live_pmem_kinds() -> impl Iterator<Item = (&'static Kind, &'static PmemState)> {
    KINDS[STATIC_KINDS..]
        .iter()
        .filter(|k| Kind::from_ptr(*k).is_some() && is_pmem(k))
        .filter_map(|k| k.state::<PmemState>().map(|s| (k, s)))
}

/// Copy the data of file range `[src_off, src_off + 2 MiB)` (mapped at `g`) to `dst` at
/// `dst_off`, hole by hole: only data extents are copied (in the kernel), so the copy is as
/// sparse as the original.
fn copy_granule(src: i32, src_off: i64, dst: i32, dst_off: i64, g: usize) {
    let end = src_off + HUGE_2M as i64;
    let mut pos = src_off;
    while pos < end {
        let Some(d) = sys::seek(src, pos, true) else {
            break;
        };
        if d >= end {
            break;
        }
        let h = sys::seek(src, d, false).unwrap_or(end).min(end);
        let rel = d - src_off;
        let n = (h - d) as usize;
        if sys::copy_range(src, d, dst, dst_off + rel, n).is_err() {
            // SAFETY: `[g, g + 2 MiB)` is a mapped granule of the kind (logged, and in the extent map).
            let _ = unsafe { sys::write_from(dst, g + rel as usize, n, dst_off + rel) };
        }
        pos = h;
    }
}

/// Before `fork` (our prepare handler, `INIT_LOCK` held): for every PMEM kind, a fresh file
/// with a copy of every mapped granule's data. The child maps it over the same addresses
/// ([`fork_child`]); the parent closes it ([`fork_parent`]). Copying before the fork makes the
/// child see exactly what happened before `fork` was called; the forking thread's later writes
/// never reach it.
pub(crate) fn fork_prepare() {
    let mut snaps = Vec::new();
    for (k, st) in live_pmem_kinds() {
        let fd = match sys::create_temp_file(&st.dir) {
            Ok(fd) => fd.into_raw_fd(),
            Err(e) => {
                crate::env::debug_log!("fork: no new file for pmem kind {}: {e}", k.id());
                continue;
            }
        };
        let old = st.fd.load(Ordering::Acquire);
        let mut seen = std::collections::HashSet::new();
        let mut granules = Vec::new();
        let mut end = 0i64;
        // Newest first: if a destroyed arena's address was reused, the newest record is true.
        for (addr, len, off) in st.log.entries().rev() {
            for i in 0..len / HUGE_2M {
                let g = addr + i * HUGE_2M;
                if MAP.lookup(g) != Some(k.id()) || !seen.insert(g) {
                    continue;
                }
                let _ = sys::ftruncate(fd, end + HUGE_2M as i64);
                copy_granule(old, off + (i * HUGE_2M) as i64, fd, end, g);
                granules.push((g, end));
                end += HUGE_2M as i64;
            }
        }
        snaps.push(Snapshot {
            kind: k.id(),
            fd,
            granules,
            end,
        });
    }
    *SNAPSHOTS.lock() = snaps;
}

/// After `fork`, in the parent: drop the copies.
pub(crate) fn fork_parent() {
    for s in core::mem::take(&mut *SNAPSHOTS.lock()) {
        sys::close(s.fd);
    }
}

/// After `fork`, in the child (single threaded, `INIT_LOCK` held): map every kind's copy over
/// its granules (MAP_FIXED, same addresses), move granules mapped while the copy was made (by
/// other threads of the parent) by copying them from memory, and switch the kind to the new
/// file. From here on parent and child use different files.
pub(crate) fn fork_child() {
    let mut snaps = core::mem::take(&mut *SNAPSHOTS.lock());
    for (k, st) in live_pmem_kinds() {
        let (fd, mut granules, mut end) = match snaps.iter().position(|s| s.kind == k.id()) {
            Some(i) => {
                let s = snaps.swap_remove(i);
                (s.fd, s.granules, s.end)
            }
            None => match sys::create_temp_file(&st.dir) {
                Ok(fd) => (fd.into_raw_fd(), Vec::new(), 0),
                Err(e) => {
                    crate::env::debug_log!("fork: pmem kind {} stays shared: {e}", k.id());
                    continue;
                }
            },
        };
        for &(g, off) in &granules {
            // SAFETY: the fork child, single threaded: the granule is the kind's, and the new file
            // holds a copy of its bytes, so the mapping's contents do not change.
            if let Err(e) = unsafe { sys::map_file_fixed(g, HUGE_2M, fd, off, st.sync) } {
                crate::env::debug_log!("fork: remapping pmem granule {g:#x} failed: {e}");
            }
        }
        granules.sort_unstable();
        let mut extra = Vec::new();
        MAP.for_each_granule_of(k.id(), |g| {
            if granules.binary_search_by_key(&g, |&(a, _)| a).is_err() {
                extra.push(g);
            }
        });
        for g in extra {
            let _ = sys::ftruncate(fd, end + HUGE_2M as i64);
            // SAFETY: as above: the granule is the kind's and mapped; it is copied to the file
            // first, so mapping the file over it keeps its contents.
            if unsafe { sys::write_from(fd, g, HUGE_2M, end) }.is_ok()
                // SAFETY: as above.
                && unsafe { sys::map_file_fixed(g, HUGE_2M, fd, end, st.sync) }.is_ok()
            {
                granules.push((g, end));
                end += HUGE_2M as i64;
            }
        }
        granules.sort_unstable();
        // The log now describes the new file: runs contiguous in memory and in the file merge.
        st.log.reset();
        let mut run: Option<(usize, usize, i64)> = None;
        for &(g, off) in &granules {
            run = match run {
                Some((a, l, o)) if a + l == g && o + l as i64 == off => Some((a, l + HUGE_2M, o)),
                Some(r) => {
                    st.log.push(r.0, r.1, r.2);
                    Some((g, HUGE_2M, off))
                }
                None => Some((g, HUGE_2M, off)),
            };
        }
        if let Some(r) = run {
            st.log.push(r.0, r.1, r.2);
        }
        st.next_off.store(end as u64, Ordering::Release);
        let old = st.fd.swap(fd, Ordering::AcqRel);
        sys::close(old);
    }
    for s in snaps {
        sys::close(s.fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::heap;

    #[test]
    fn create_rules_and_allocation() {
        // Creates a dynamic kind: serialised with the tests that expect a given slot to be reused.
        let _serial = super::super::tests::DYNAMIC_SLOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir();
        let d = dir.as_os_str().as_encoded_bytes();
        assert_eq!(create(d, PMEM_MIN_SIZE - 1, 0).err(), Some(Error::Invalid));
        assert_eq!(
            create(b"/nonexistent/memkind-rs", 0, 0).err(),
            Some(Error::Invalid)
        );
        assert_eq!(create(d, 0, 7).err(), Some(Error::Invalid));
        let k = create(d, PMEM_MIN_SIZE + 1, 0).unwrap();
        assert_eq!(k.capacity(), (18 << 20) as isize);
        let p = heap::malloc(k, 100);
        assert!(!p.is_null());
        assert!(matches!(heap::owner(p), heap::Owner::Kind(o) if o.id() == k.id()));
        heap::free(p);
        let st = k.state::<PmemState>().unwrap();
        assert!(st.mapped_bytes() > 0 && st.mapped_bytes() <= 18 << 20);
        crate::arena::destroy_kind(k).unwrap();
    }
}
