//! The only module that talks to the kernel for memory: mmap, munmap, madvise, mbind,
//! move_pages, get_mempolicy, getcpu, fallocate.
//!
//! Every call returns `Result<_, Errno>` through one conversion ([`cvt`]). Logic that decides
//! *what* to call (extent hooks, placement) is written against the [`Os`] trait so it can be unit
//! tested with a recording fake, without root or NUMA hardware.
#![allow(unsafe_code, reason = "raw syscalls live here")]
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "addresses are handed to the kernel, which validates them; nothing is dereferenced here"
)]

use core::ffi::c_void;
use core::ptr::NonNull;
use nix::errno::Errno;
use std::os::fd::{FromRawFd, OwnedFd};

/// Size of a small page on x86_64 Linux.
pub const PAGE_SIZE: usize = 4096;
/// Size of a 2 MiB huge page, also our extent granule.
pub const HUGE_2M: usize = 2 << 20;
/// Size of a 1 GiB huge page.
pub const HUGE_1G: usize = 1 << 30;

/// mbind(2) modes (linux/mempolicy.h).
#[allow(dead_code, reason = "the kernel's whole set of modes, not all used")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum MpolMode {
    /// MPOL_DEFAULT
    Default = 0,
    /// MPOL_PREFERRED
    Preferred = 1,
    /// MPOL_BIND
    Bind = 2,
    /// MPOL_INTERLEAVE
    Interleave = 3,
    /// MPOL_PREFERRED_MANY (Linux 5.15+)
    PreferredMany = 5,
}

/// How an extent is backed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// Anonymous private memory with base pages.
    Anon,
    /// Anonymous MAP_HUGETLB with 2 MiB pages.
    Huge2M,
    /// The deprecated GBTLB kinds, as memkind 1.14 backs them: anonymous MAP_HUGETLB with
    /// 2 MiB pages in mappings whose sizes are rounded up to 1 GiB (1.14's `gbtlb_mmap`).
    Gbtlb,
    /// MAP_SHARED mapping of a file at an offset (PMEM kinds); `sync` adds MAP_SYNC.
    File {
        /// Open file descriptor.
        fd: i32,
        /// Offset of the mapping in the file.
        offset: i64,
        /// Map with MAP_SHARED_VALIDATE | MAP_SYNC (DAX).
        sync: bool,
    },
}

impl Backing {
    /// The page size the mapping must be a multiple of.
    pub fn page_size(self) -> usize {
        match self {
            Backing::Huge2M | Backing::Gbtlb => HUGE_2M,
            _ => PAGE_SIZE,
        }
    }

    /// What one extent's mapping is rounded up to: its page size, but 1 GiB for GBTLB.
    pub fn map_unit(self) -> usize {
        match self {
            Backing::Gbtlb => HUGE_1G,
            b => b.page_size(),
        }
    }
}

/// One conversion from a raw `-1 + errno` return to `Result`.
#[inline]
pub fn cvt(ret: i64) -> Result<i64, Errno> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// The system calls the hook logic needs. [`Linux`] is the real one; tests provide fakes.
pub trait Os {
    /// mmap `len` bytes with `backing` at a kernel-chosen address.
    fn map(&self, len: usize, backing: Backing) -> Result<NonNull<c_void>, Errno>;
    /// munmap(2).
    ///
    /// # Safety
    /// `[addr, addr+len)` is memory of this library that nothing uses any more: no reference or
    /// live allocation points into it (munmap(2): later accesses fault, or hit whatever is mapped
    /// there next).
    unsafe fn unmap(&self, addr: *mut c_void, len: usize) -> Result<(), Errno>;
    /// madvise(2).
    ///
    /// # Safety
    /// `[addr, addr+len)` is memory of this library; with an advice that drops contents
    /// (MADV_DONTNEED, MADV_FREE, MADV_REMOVE) nothing live may be in it (madvise(2): the
    /// pages read back as zeroes or as the file's contents).
    unsafe fn advise(&self, addr: *mut c_void, len: usize, advice: i32) -> Result<(), Errno>;
    /// mbind(addr, len, mode, nodemask, maxnode, 0).
    fn mbind(
        &self,
        addr: *mut c_void,
        len: usize,
        mode: MpolMode,
        mask: &[u64],
    ) -> Result<(), Errno>;
    /// NUMA node of the CPU this thread runs on.
    fn current_node(&self) -> u32;
}

/// The real kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Linux;

impl Os for Linux {
    fn map(&self, len: usize, backing: Backing) -> Result<NonNull<c_void>, Errno> {
        let (flags, fd, off) = match backing {
            // No MAP_NORESERVE (memkind 1.14's flags, memkind_default_get_mmap_flags): under
            // the kernel's overcommit heuristic a request larger than RAM + swap is refused
            // (ENOMEM) instead of succeeding and faulting later.
            Backing::Anon => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0),
            Backing::Huge2M | Backing::Gbtlb => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB | libc::MAP_HUGE_2MB,
                -1,
                0,
            ),
            Backing::File {
                fd,
                offset,
                sync: false,
            } => (libc::MAP_SHARED, fd, offset),
            Backing::File {
                fd,
                offset,
                sync: true,
            } => (libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC, fd, offset),
        };
        // SAFETY: mmap(2) with a NULL hint never touches existing mappings; the arguments are
        // plain values and the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        NonNull::new(p).ok_or(Errno::ENOMEM)
    }

    unsafe fn unmap(&self, addr: *mut c_void, len: usize) -> Result<(), Errno> {
        // SAFETY: munmap(2) on a range this library mapped and no longer hands out (the
        // caller's contract).
        cvt(unsafe { libc::munmap(addr, len) } as i64).map(drop)
    }

    unsafe fn advise(&self, addr: *mut c_void, len: usize, advice: i32) -> Result<(), Errno> {
        // SAFETY: madvise(2) on a range of ours; the advices that drop contents are only used
        // on memory nothing holds live (the caller's contract).
        cvt(unsafe { libc::madvise(addr, len, advice) } as i64).map(drop)
    }

    fn mbind(
        &self,
        addr: *mut c_void,
        len: usize,
        mode: MpolMode,
        mask: &[u64],
    ) -> Result<(), Errno> {
        mbind(addr, len, mode, mask)
    }

    fn current_node(&self) -> u32 {
        current_node()
    }
}

impl MpolMode {
    /// The mode of an `MPOL_*` value (`None` for modes we do not use).
    pub fn from_raw(v: i32) -> Option<MpolMode> {
        Some(match v {
            0 => MpolMode::Default,
            1 => MpolMode::Preferred,
            2 => MpolMode::Bind,
            3 => MpolMode::Interleave,
            5 => MpolMode::PreferredMany,
            _ => return None,
        })
    }
}

/// mmap(2) of `len` anonymous or caller-flagged bytes at the hint `addr` with `flags`, for the
/// operations API (`memkind_default_mmap`): read/write, no file.
pub fn map_raw(addr: *mut c_void, len: usize, flags: i32) -> Result<*mut c_void, Errno> {
    // SAFETY: without MAP_FIXED (callers' flags are the kinds' mmap flags, never MAP_FIXED:
    // checked) the kernel picks a free range, so no existing mapping is touched.
    if flags & libc::MAP_FIXED != 0 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: as above; the result is checked.
    let p = unsafe { libc::mmap(addr, len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        Err(Errno::last())
    } else {
        Ok(p)
    }
}

/// munmap(2) of a range `map_raw` (or the caller) mapped.
///
/// # Safety
/// Nothing may use `[addr, addr+len)` afterwards.
pub unsafe fn unmap_raw(addr: *mut c_void, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller's contract.
    cvt(unsafe { libc::munmap(addr, len) } as i64).map(drop)
}

/// madvise(2) on the caller's range.
///
/// # Safety
/// `advice` must not drop contents the caller still holds (MADV_NOHUGEPAGE and the like only).
pub unsafe fn advise_raw(addr: *mut c_void, len: usize, advice: i32) -> Result<(), Errno> {
    // SAFETY: the caller's contract.
    cvt(unsafe { libc::madvise(addr, len, advice) } as i64).map(drop)
}

/// mbind(2): set the NUMA policy of `[addr, addr+len)`. `mask` holds `64 * mask.len()` node bits.
pub fn mbind(addr: *mut c_void, len: usize, mode: MpolMode, mask: &[u64]) -> Result<(), Errno> {
    let maxnode = (mask.len() * 64 + 1) as u64;
    // SAFETY: mbind(2) reads `maxnode - 1` bits from `mask`, which is exactly its length in
    // bits; it changes only the policy of a range this library mapped.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mbind,
            addr,
            len,
            mode as i32 as i64,
            mask.as_ptr(),
            maxnode,
            0u64,
        )
    })
    .map(drop)
}

/// move_pages(2) in query mode (`nodes == NULL`): fill `status` with the node of each page (or a
/// negative errno for pages not present).
pub fn query_pages(pages: &[*mut c_void], status: &mut [i32]) -> Result<(), Errno> {
    assert_eq!(pages.len(), status.len());
    // SAFETY: move_pages(2) with pid 0 and nodes NULL only reads `pages` and writes `status`,
    // both of `count` elements as asserted above.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            0i64,
            pages.len() as u64,
            pages.as_ptr(),
            core::ptr::null::<i32>(),
            status.as_mut_ptr(),
            0i64,
        )
    })
    .map(drop)
}

/// The NUMA node of the CPU the calling thread is on (0 when unknown).
pub fn current_node() -> u32 {
    let mut cpu = 0u32;
    let mut node = 0u32;
    // SAFETY: getcpu(2) writes two u32 through valid pointers; the third argument is unused.
    let r = unsafe {
        libc::syscall(
            libc::SYS_getcpu,
            &mut cpu as *mut u32,
            &mut node as *mut u32,
            0usize,
        )
    };
    if r == 0 {
        node
    } else {
        0
    }
}

/// posix_fallocate on `fd` (PMEM file growth).
pub fn fallocate(fd: i32, offset: i64, len: i64) -> Result<(), Errno> {
    // SAFETY: posix_fallocate(3) takes plain values; it returns an errno value instead of -1.
    let r = unsafe { libc::posix_fallocate(fd, offset, len) };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(r))
    }
}

/// Punch a hole in `fd` (PMEM purge), keeping the file size.
pub fn punch_hole(fd: i32, offset: i64, len: i64) -> Result<(), Errno> {
    // SAFETY: fallocate(2) takes plain values.
    cvt(unsafe {
        libc::fallocate(
            fd,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
    } as i64)
    .map(drop)
}

/// The calling thread's `pthread_t`, as a number (memtier hashes it to pick a counter bucket).
pub fn thread_self() -> u64 {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() as u64 }
}

/// Read errno.
pub fn errno() -> i32 {
    Errno::last_raw()
}

/// Set errno.
pub fn set_errno(e: i32) {
    Errno::set_raw(e)
}

// --- file backing (PMEM kinds) -------------------------------------------------------------------

// The descriptors of PMEM kinds are shared through atomics and replaced at fork, so the calls
// below take raw `i32`s: a wrong descriptor is at worst EBADF or I/O on the wrong file, never a
// memory error. The two calls that touch memory, [`map_file_fixed`] and [`write_from`], are
// `unsafe fn`.

/// Create `dir/memkind.XXXXXX` (mkostemp, close-on-exec) and unlink it at once: the returned
/// descriptor is the only reference to the file. `dir` is a directory path without the NUL.
pub fn create_temp_file(dir: &[u8]) -> Result<OwnedFd, Errno> {
    let mut path = Vec::with_capacity(dir.len() + 16);
    path.extend_from_slice(dir);
    path.extend_from_slice(b"/memkind.XXXXXX\0");
    if path[..path.len() - 1].contains(&0) {
        return Err(Errno::EINVAL);
    }
    // SAFETY: `path` is a writable NUL-terminated template ending in XXXXXX, as mkostemp(3)
    // requires; it is modified in place.
    let fd = cvt(unsafe { libc::mkostemp(path.as_mut_ptr().cast(), libc::O_CLOEXEC) } as i64)?;
    // SAFETY: `path` now names the file mkostemp created (NUL terminated).
    unsafe { libc::unlink(path.as_ptr().cast()) };
    // SAFETY: mkostemp returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// close(2), errors ignored (the descriptor is gone either way on Linux).
pub fn close(fd: i32) {
    // SAFETY: closes a descriptor this library owns.
    unsafe { libc::close(fd) };
}

/// ftruncate(2).
pub fn ftruncate(fd: i32, len: i64) -> Result<(), Errno> {
    // SAFETY: plain values.
    cvt(unsafe { libc::ftruncate(fd, len) } as i64).map(drop)
}

/// mmap `len` bytes of `fd` at `offset` to exactly `addr`, shared, with MAP_SYNC when `sync`.
///
/// # Safety
/// MAP_FIXED replaces whatever is mapped at `[addr, addr+len)` (mmap(2)): the range is a
/// reservation or a mapping of this library, and whatever lives there may change contents (to
/// the file's) only where the caller intends it (a fork child's copy of the same bytes).
pub unsafe fn map_file_fixed(
    addr: usize,
    len: usize,
    fd: i32,
    offset: i64,
    sync: bool,
) -> Result<(), Errno> {
    let flags = if sync {
        libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC
    } else {
        libc::MAP_SHARED
    };
    // SAFETY: MAP_FIXED over `[addr, addr+len)`, which the caller guarantees may be replaced;
    // the result is checked.
    let p = unsafe {
        libc::mmap(
            addr as *mut c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags | libc::MAP_FIXED,
            fd,
            offset,
        )
    };
    if p == libc::MAP_FAILED {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Reserve `len` bytes (a multiple of 4 KiB) of address space at an `align`-aligned address
/// (`align` a power of two, at least 4 KiB): a reservation of `len + align - 4 KiB` bytes whose
/// head and tail around the aligned range are unmapped again. Returns the aligned start.
pub fn reserve_aligned(len: usize, align: usize) -> Result<usize, Errno> {
    let total = len.checked_add(align - PAGE_SIZE).ok_or(Errno::ENOMEM)?;
    let raw = reserve(total)?;
    let start = (raw + align - 1) & !(align - 1);
    if start > raw {
        // SAFETY: the head of the reservation just made, before the aligned start: never used.
        let _ = unsafe { unmap_raw(raw as *mut c_void, start - raw) };
    }
    let tail = raw + total - (start + len);
    if tail > 0 {
        // SAFETY: its tail after the aligned range: never used.
        let _ = unsafe { unmap_raw((start + len) as *mut c_void, tail) };
    }
    Ok(start)
}

/// Granules (2 MiB) of one [`Window`] reservation.
const WINDOW_GRANULES: u64 = 32;
/// Bits of [`Window`]'s state word holding the granules left.
const WINDOW_LEFT_BITS: u32 = 24;
/// Windows of destroyed kinds kept for the next ones (their bases; 0 = empty slot). Atomics,
/// not a lock: a fork child never finds it held.
static SPARE_WINDOWS: [core::sync::atomic::AtomicUsize; 8] =
    [const { core::sync::atomic::AtomicUsize::new(0) }; 8];

/// A 2 MiB-aligned PROT_NONE reservation handed out from its bottom in 2 MiB-aligned ranges, so
/// a file-backed extent is one `mmap(MAP_FIXED)` over its range instead of a reservation, the
/// mapping and the trimming of the reservation's head and tail (three system calls more, ≈5 µs,
/// at a fresh PMEM kind's first allocation). When a request does not fit what is left, that rest
/// is unmapped and a new window reserved. Lock-free: one word, (next granule << 24) | granules
/// left, changed by compare-and-swap only (extent hooks run concurrently, under jemalloc's locks).
///
/// Granules of the current window are given back as reservation again ([`Window::give_back`]),
/// so a destroyed kind's whole window is one reservation that the next kind made takes over
/// ([`Window::prime`]): new kinds reuse the same addresses, whose pages of jemalloc's page map
/// (its rtree) are already there (a kind at new addresses takes two more page faults at its
/// first allocation).
pub struct Window {
    state: core::sync::atomic::AtomicU64,
    /// Base of the current window (0: none); written only with `state`'s renewals.
    base: core::sync::atomic::AtomicUsize,
    /// A granule of the current window could not be reserved again and was unmapped instead:
    /// someone else may map there, so the window is neither kept for the next kind nor
    /// unmapped whole (only its never-carved rest is).
    holed: core::sync::atomic::AtomicBool,
}

impl Window {
    /// No reservation yet (the first [`Window::carve`] makes one).
    pub const fn new() -> Window {
        Window {
            state: core::sync::atomic::AtomicU64::new(0),
            base: core::sync::atomic::AtomicUsize::new(0),
            holed: core::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Bytes of one window.
    const BYTES: usize = WINDOW_GRANULES as usize * HUGE_2M;

    /// The largest range [`Window::carve`] hands out (larger requests reserve their own).
    pub const MAX_CARVE: usize = (WINDOW_GRANULES as usize / 2) * HUGE_2M;

    /// Give the window its first reservation now (kind creation, not an extent hook): a
    /// destroyed kind's window if one is kept, else a new one. The first carve then makes no
    /// system call.
    pub fn prime(&self) {
        use core::sync::atomic::Ordering;
        if self.state.load(Ordering::Acquire) != 0 {
            return;
        }
        let spare = SPARE_WINDOWS
            .iter()
            .map(|b| b.swap(0, Ordering::AcqRel))
            .find(|&b| b != 0);
        let Some(base) = spare.or_else(|| reserve_aligned(Self::BYTES, HUGE_2M).ok()) else {
            return;
        };
        let fresh = Self::word(base);
        self.base.store(base, Ordering::Release);
        if self
            .state
            .compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            Self::unmap_rest(fresh);
        }
    }

    /// A 2 MiB-aligned range of `len` bytes (a multiple of 2 MiB, at most [`Window::MAX_CARVE`])
    /// of PROT_NONE reservation, the caller's from now on (to map over with MAP_FIXED, to give
    /// back, or to unmap). `None` when `len` is out of range or no address space could be
    /// reserved.
    pub fn carve(&self, len: usize) -> Option<usize> {
        use core::sync::atomic::Ordering;
        if len == 0 || !len.is_multiple_of(HUGE_2M) || len > Self::MAX_CARVE {
            return None;
        }
        let n = (len / HUGE_2M) as u64;
        let mask = (1u64 << WINDOW_LEFT_BITS) - 1;
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let (next, left) = (s >> WINDOW_LEFT_BITS, s & mask);
            if left >= n {
                let to = ((next + n) << WINDOW_LEFT_BITS) | (left - n);
                match self
                    .state
                    .compare_exchange_weak(s, to, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return Some((next as usize) * HUGE_2M),
                    Err(now) => s = now,
                }
                continue;
            }
            // Too little left: a new window, this request at its bottom.
            let base = reserve_aligned(Self::BYTES, HUGE_2M).ok()?;
            let to = Self::word(base + len) - n;
            match self
                .state
                .compare_exchange(s, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // The old window's carved granules are unmapped when they die; only the
                    // current window's come back as reservation.
                    self.base.store(base, Ordering::Release);
                    Self::unmap_rest(s);
                    return Some(base);
                }
                Err(now) => {
                    // Another thread changed the window meanwhile: ours goes, try theirs.
                    // SAFETY: the reservation just made, never handed out.
                    let _ = unsafe { unmap_raw(base as *mut c_void, Self::BYTES) };
                    s = now;
                }
            }
        }
    }

    /// Give back granule `g` (2 MiB-aligned) of a range carved from this window, its contents
    /// already dropped: reserved again (PROT_NONE) when it lies in the current window, so the
    /// window can be kept whole for the next kind, unmapped otherwise.
    ///
    /// A granule given back while the window is renewed by another thread may stay reserved
    /// without being reused (2 MiB of address space, no memory): only a failing `file_alloc`
    /// gives back while others carve.
    ///
    /// # Safety
    /// Nothing may use `[g, g + 2 MiB)` any more: it was carved from this window (or reserved
    /// by the caller) and its mapping is dead.
    pub unsafe fn give_back(&self, g: usize) {
        let base = self.base.load(core::sync::atomic::Ordering::Acquire);
        let mine = base != 0 && (base..base + Self::BYTES).contains(&g);
        if mine {
            // SAFETY: the caller's contract: the granule is dead and ours.
            if unsafe { reserve_fixed(g, HUGE_2M) }.is_ok() {
                return;
            }
            self.holed
                .store(true, core::sync::atomic::Ordering::Release);
        }
        // SAFETY: likewise.
        let _ = unsafe { unmap_raw(g as *mut c_void, HUGE_2M) };
    }

    /// The kind is destroyed. `whole`: every granule carved from the current window was given
    /// back ([`Window::give_back`]), so the whole window is reservation again and is kept for the
    /// next kind (up to a few windows; beyond, unmapped). Otherwise (blocks outlive the kind, or
    /// a granule could not be reserved again) only what was never handed out is unmapped; the
    /// dead granules given back stay reserved (address space, no memory).
    pub fn release(&self, whole: bool) {
        use core::sync::atomic::Ordering;
        let s = self.state.swap(0, Ordering::AcqRel);
        let base = self.base.swap(0, Ordering::AcqRel);
        let holed = self.holed.swap(false, Ordering::AcqRel);
        if whole && !holed && base != 0 && s != 0 {
            let kept = SPARE_WINDOWS.iter().any(|b| {
                b.compare_exchange(0, base, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            });
            if kept {
                return;
            }
            // SAFETY: the whole window is reservation of ours (`whole`), used by nothing.
            let _ = unsafe { unmap_raw(base as *mut c_void, Self::BYTES) };
            return;
        }
        Self::unmap_rest(s);
    }

    /// The state word of a whole window at `base`.
    fn word(base: usize) -> u64 {
        (((base / HUGE_2M) as u64) << WINDOW_LEFT_BITS) | WINDOW_GRANULES
    }

    /// Unmap the granules left in state word `s` (none for 0).
    fn unmap_rest(s: u64) {
        let (next, left) = (s >> WINDOW_LEFT_BITS, s & ((1u64 << WINDOW_LEFT_BITS) - 1));
        if left > 0 {
            // SAFETY: granules of a window reservation never handed out (the state word that
            // described them is gone, so nobody else can carve them).
            let _ = unsafe {
                unmap_raw(
                    (next as usize * HUGE_2M) as *mut c_void,
                    left as usize * HUGE_2M,
                )
            };
        }
    }
}

impl Default for Window {
    fn default() -> Window {
        Window::new()
    }
}

/// Make `[addr, addr + len)` reservation again (PROT_NONE, no memory), replacing what is
/// mapped there in one step, so the range is never free for another mapping to take.
///
/// # Safety
/// The range is ours and nothing in it is used any more (its contents are gone).
pub unsafe fn reserve_fixed(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: MAP_FIXED over a range of ours that the caller says is dead.
    let p = unsafe {
        libc::mmap(
            addr as *mut c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Reserve `len` bytes of address space (PROT_NONE, no memory): a place to map files into.
pub fn reserve(len: usize) -> Result<usize, Errno> {
    // SAFETY: a fresh anonymous mapping at a kernel-chosen address touches nothing existing.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(Errno::last())
    } else {
        Ok(p as usize)
    }
}

/// True when `fd` (of at least one page) can be mapped with MAP_SHARED_VALIDATE | MAP_SYNC,
/// i.e. the file lives on a DAX mount (memkind_check_dax_path's test).
pub fn map_sync_works(fd: i32) -> bool {
    // SAFETY: a fresh mapping at a kernel-chosen address, unmapped right away.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            PAGE_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return false;
    }
    // SAFETY: the mapping just made.
    unsafe { libc::munmap(p, PAGE_SIZE) };
    true
}

/// lseek(fd, off, SEEK_DATA / SEEK_HOLE): `None` past the end of the data (ENXIO) or on error.
pub fn seek(fd: i32, off: i64, data: bool) -> Option<i64> {
    let whence = if data {
        libc::SEEK_DATA
    } else {
        libc::SEEK_HOLE
    };
    // SAFETY: plain values.
    cvt(unsafe { libc::lseek(fd, off, whence) }).ok()
}

/// Copy `len` bytes from `src` at `src_off` to `dst` at `dst_off` inside the kernel
/// (copy_file_range(2)); returns the bytes copied by the last call or the error.
pub fn copy_range(src: i32, src_off: i64, dst: i32, dst_off: i64, len: usize) -> Result<(), Errno> {
    let (mut so, mut d, mut left) = (src_off, dst_off, len);
    while left > 0 {
        // SAFETY: the offsets are plain in/out values on our stack.
        let n = cvt(unsafe { libc::copy_file_range(src, &mut so, dst, &mut d, left, 0) } as i64)?;
        if n == 0 {
            return Err(Errno::EIO);
        }
        left -= n as usize;
    }
    Ok(())
}

/// pwrite(2) all of `[addr, addr+len)` to `fd` at `off`.
///
/// # Safety
/// `[addr, addr+len)` is mapped, readable memory that nobody writes meanwhile (pwrite(2) reads
/// it).
pub unsafe fn write_from(fd: i32, addr: usize, len: usize, off: i64) -> Result<(), Errno> {
    let mut done = 0usize;
    while done < len {
        // SAFETY: `[addr, addr+len)` is readable (the caller's contract).
        let n = cvt(unsafe {
            libc::pwrite(
                fd,
                (addr + done) as *const c_void,
                len - done,
                off + done as i64,
            )
        } as i64)?;
        if n == 0 {
            return Err(Errno::EIO);
        }
        done += n as usize;
    }
    Ok(())
}

/// Total size in bytes of the filesystem holding `fd` (f_blocks × f_frsize).
pub fn fs_size(fd: i32) -> Result<u64, Errno> {
    let mut st = core::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: fstatvfs(3) fills the struct through a valid pointer.
    cvt(unsafe { libc::fstatvfs(fd, st.as_mut_ptr()) } as i64)?;
    // SAFETY: initialised by the successful call (and zeroed before).
    let st = unsafe { st.assume_init() };
    Ok(st.f_blocks.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `addr` lies in a mapping of this process (/proc/self/maps).
    fn mapped(addr: usize) -> bool {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines().any(|l| {
            let r = l.split_whitespace().next().unwrap();
            let (a, b) = r.split_once('-').unwrap();
            let (a, b) = (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            );
            (a..b).contains(&addr)
        })
    }

    #[test]
    fn window_hands_out_aligned_disjoint_reserved_ranges() {
        let w = Window::new();
        w.prime();
        assert_eq!(w.carve(0), None);
        assert_eq!(w.carve(HUGE_2M + PAGE_SIZE), None, "not a granule multiple");
        assert_eq!(
            w.carve(Window::MAX_CARVE + HUGE_2M),
            None,
            "larger than half a window"
        );
        // More than one window's worth, so the window is renewed on the way.
        let mut got = Vec::new();
        for i in 0..3 * WINDOW_GRANULES as usize {
            let len = if i % 7 == 0 { 3 * HUGE_2M } else { HUGE_2M };
            let a = w.carve(len).expect("carve");
            assert_eq!(a % HUGE_2M, 0);
            assert!(
                mapped(a) && mapped(a + len - 1),
                "carved range {a:#x} is reserved"
            );
            got.push((a, len));
        }
        got.sort();
        for pair in got.windows(2) {
            assert!(pair[0].0 + pair[0].1 <= pair[1].0, "overlap: {pair:?}");
        }
        // What is left of the last window goes at release; carved ranges are the caller's.
        let s = w.state.load(core::sync::atomic::Ordering::Acquire);
        let rest = (s >> WINDOW_LEFT_BITS) as usize * HUGE_2M;
        assert!(s & ((1 << WINDOW_LEFT_BITS) - 1) > 0 && mapped(rest));
        w.release(false);
        assert!(!mapped(rest), "the window's rest is unmapped at release");
        assert!(got.iter().all(|&(a, _)| mapped(a)));
        for (a, len) in got {
            // SAFETY: the test's own carved reservations.
            unsafe { unmap_raw(a as *mut c_void, len) }.unwrap();
        }
    }

    #[test]
    fn a_window_given_back_whole_is_kept_reserved_for_the_next() {
        let w = Window::new();
        w.prime();
        let a = w.carve(HUGE_2M).unwrap();
        let b = w.carve(2 * HUGE_2M).unwrap();
        // The extents' file mappings would be here; given back, the granules are reserved again.
        for g in [a, b, b + HUGE_2M] {
            // SAFETY: granules carved above, used by nothing.
            unsafe { w.give_back(g) };
            assert!(mapped(g));
        }
        // A granule outside the window (reserved by the caller) is unmapped.
        let own = reserve_aligned(HUGE_2M, HUGE_2M).unwrap();
        // SAFETY: the test's own reservation.
        unsafe { w.give_back(own) };
        assert!(!mapped(own));
        let base = w.base.load(core::sync::atomic::Ordering::Acquire);
        assert_eq!(base, a);
        w.release(true);
        // Kept whole (for the next kind's window, in the spare list or already taken by one).
        assert!((base..base + Window::BYTES).step_by(HUGE_2M).all(mapped));
        let next = Window::new();
        next.prime();
        let c = next.carve(HUGE_2M).unwrap();
        assert!(mapped(c));
        next.release(false);
    }
}
