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

/// Size of a small page on x86_64 Linux.
pub const PAGE_SIZE: usize = 4096;
/// Size of a 2 MiB huge page, also our extent granule.
pub const HUGE_2M: usize = 2 << 20;
/// Size of a 1 GiB huge page.
pub const HUGE_1G: usize = 1 << 30;

/// mbind(2) modes (linux/mempolicy.h).
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
    /// Anonymous MAP_HUGETLB with 1 GiB pages.
    Huge1G,
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
            Backing::Huge1G => HUGE_1G,
            Backing::Huge2M => HUGE_2M,
            _ => PAGE_SIZE,
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
    /// munmap.
    fn unmap(&self, addr: *mut c_void, len: usize) -> Result<(), Errno>;
    /// madvise.
    fn advise(&self, addr: *mut c_void, len: usize, advice: i32) -> Result<(), Errno>;
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
            Backing::Anon => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            ),
            Backing::Huge2M => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB | libc::MAP_HUGE_2MB,
                -1,
                0,
            ),
            Backing::Huge1G => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB | libc::MAP_HUGE_1GB,
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

    fn unmap(&self, addr: *mut c_void, len: usize) -> Result<(), Errno> {
        // SAFETY: munmap(2) on a range this library mapped and no longer hands out (callers
        // guarantee the range is ours and dead).
        cvt(unsafe { libc::munmap(addr, len) } as i64).map(drop)
    }

    fn advise(&self, addr: *mut c_void, len: usize, advice: i32) -> Result<(), Errno> {
        // SAFETY: madvise(2) on a range of ours; the advices used (DONTNEED, FREE, REMOVE,
        // NOHUGEPAGE) only drop contents the allocator no longer holds live.
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

/// Read errno.
pub fn errno() -> i32 {
    Errno::last_raw()
}

/// Set errno.
pub fn set_errno(e: i32) {
    Errno::set_raw(e)
}
