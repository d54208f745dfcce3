//! The Rust API: a safe handle on a kind, usable as a `#[global_allocator]` and as an
//! [`allocator_api2`] allocator.
//!
//! ```
//! use memkind::Memkind;
//!
//! // Static kinds are constants; availability depends on the machine.
//! assert!(Memkind::DEFAULT.check_available().is_ok());
//! let kind = if Memkind::HBW.check_available().is_ok() { Memkind::HBW } else { Memkind::DEFAULT };
//!
//! // A collection whose buffer lives in that kind.
//! let mut v = allocator_api2::vec::Vec::new_in(kind);
//! v.extend_from_slice(&[1u64, 2, 3]);
//! assert_eq!(Memkind::detect(v.as_ptr().cast()), Some(kind));
//! ```
//!
//! Errors are [`Error`] values carrying memkind's codes:
//!
//! ```
//! use memkind::{Error, Memkind};
//! // With no high-bandwidth memory (and no MEMKIND_HBW_NODES), HBW is unavailable.
//! if let Err(e) = Memkind::HBW.check_available() {
//!     assert!(matches!(e, Error::MemtypeNotAvailable | Error::Environ));
//!     assert!(e.code() < 0);
//! }
//! ```
//!
//! As the global allocator (the library's own bookkeeping then comes from the system allocator
//! while a kind is being set up):
//!
//! ```no_run
//! #[global_allocator]
//! static GLOBAL: memkind::Memkind = memkind::Memkind::REGULAR;
//! fn main() {
//!     let s = String::from("lives in MEMKIND_REGULAR");
//!     assert_eq!(memkind::Memkind::detect(s.as_ptr()), Some(memkind::Memkind::REGULAR));
//! }
//! ```

#![allow(unsafe_code, reason = "GlobalAlloc and Allocator are unsafe traits")]

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::fmt;
use core::ptr::NonNull;
use std::alloc::System;

use crate::arena::heap::{self, Owner};
use crate::arena::thread;
use crate::error::Error;
use crate::kind::KINDS;

/// A memory kind. Cheap to copy; static kinds are associated constants.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Memkind(u16);

macro_rules! constants {
    ($($part:literal $name:ident $kname:literal ($family:path, $variant:expr) $deprecated:literal $ops:ident;)*) => {
        impl Memkind {
            $(
                #[doc = concat!("`MEMKIND_", stringify!($name), "`")]
                pub const $name: Memkind = Memkind($part);
            )*
        }
    };
}

crate::kind::static_kinds!(constants);

impl Memkind {
    /// Every static kind, in memkind's partition order.
    pub fn all_static() -> impl Iterator<Item = Memkind> {
        (0..crate::kind::STATIC_KINDS as u16).map(Memkind)
    }

    fn kind(self) -> &'static crate::kind::Kind {
        &KINDS[self.0 as usize]
    }

    /// memkind's name of the kind, e.g. `memkind_hbw`.
    pub fn name(self) -> &'static str {
        self.kind().name()
    }

    /// `memkind_check_available`.
    pub fn check_available(self) -> Result<(), Error> {
        self.kind().check_available()
    }

    /// `memkind_get_capacity`: bytes of memory the kind can use, `None` when unknown.
    pub fn capacity(self) -> Option<u64> {
        u64::try_from(self.kind().capacity()).ok()
    }

    /// `memkind_create_kind`: the kind memkind 1.14 maps `(memtype, policy, flags)` onto.
    pub fn create(memtype: u32, policy: i32, flags: u32) -> Result<Memkind, Error> {
        crate::kind::create_kind(memtype, policy, flags).map(|k| Memkind(k.id()))
    }

    /// The kind that owns `ptr`, or `None` for memory this library did not hand out.
    pub fn detect(ptr: *const u8) -> Option<Memkind> {
        match heap::owner(ptr.cast()) {
            Owner::Kind(k) => Some(Memkind(k.id())),
            Owner::Foreign => None,
        }
    }

    /// `memkind_update_cached_stats`: take a fresh snapshot of the statistics
    /// [`Memkind::stat`] reports.
    pub fn update_stats() -> Result<(), Error> {
        crate::stats::update_cached()
    }

    /// `memkind_get_stat`: a statistic of `kind` (`None`: the whole process) as of the last
    /// [`Memkind::update_stats`]. Blocks held in per-thread caches count as allocated.
    ///
    /// ```
    /// use memkind::{Memkind, StatType};
    /// let v = allocator_api2::vec::Vec::<u8, _>::with_capacity_in(4 << 20, Memkind::REGULAR);
    /// Memkind::update_stats().unwrap();
    /// let allocated = Memkind::stat(Some(Memkind::REGULAR), StatType::Allocated).unwrap();
    /// let active = Memkind::stat(Some(Memkind::REGULAR), StatType::Active).unwrap();
    /// assert!(allocated >= 4 << 20 && active >= allocated);
    /// assert!(Memkind::stat(None, StatType::Resident).unwrap() >= active);
    /// drop(v);
    /// ```
    pub fn stat(kind: Option<Memkind>, stat: crate::stats::StatType) -> Result<usize, Error> {
        crate::stats::get(kind.map(Memkind::kind), stat)
    }

    /// Allocate `layout` from this kind.
    pub fn allocate_layout(self, layout: Layout) -> Result<NonNull<u8>, Error> {
        if layout.size() == 0 {
            return Err(Error::Invalid);
        }
        self.kind().check_available()?;
        let p = raw_alloc(self, layout, false);
        NonNull::new(p).ok_or(Error::Malloc)
    }

    /// Free memory from any kind of this library.
    ///
    /// # Safety
    /// `ptr` must come from this library and not be used afterwards.
    pub unsafe fn free(ptr: NonNull<u8>) {
        raw_free(ptr.as_ptr())
    }
}

/// `memkind_mem_usage_policy`: what a PMEM kind does with freed memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsagePolicy {
    /// Keep freed memory for about 10 s (jemalloc's dirty decay), then punch it out of the file.
    #[default]
    Default,
    /// Punch freed memory out of the file at once.
    Conservative,
}

/// Builder of a file-backed PMEM kind ([`Memkind::pmem`]).
#[derive(Debug, Clone)]
pub struct PmemBuilder {
    dir: std::path::PathBuf,
    max: usize,
    policy: UsagePolicy,
}

impl PmemBuilder {
    /// Limit the kind to `bytes` of extents (0 = unlimited, the default; else at least
    /// 16 MiB, rounded up to 2 MiB). Allocations beyond it fail.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max = bytes;
        self
    }

    /// What to do with freed memory.
    pub fn policy(mut self, policy: UsagePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// `memkind_create_pmem_with_config`: create the kind (an unlinked temporary file in the
    /// directory). [`Error::Invalid`] for a bad size or a directory where no file can be made.
    pub fn create(self) -> Result<Memkind, Error> {
        use std::os::unix::ffi::OsStrExt;
        let policy = match self.policy {
            UsagePolicy::Default => crate::kind::pmem::POLICY_DEFAULT,
            UsagePolicy::Conservative => crate::kind::pmem::POLICY_CONSERVATIVE,
        };
        crate::arena::create_pmem(self.dir.as_os_str().as_bytes(), self.max, policy)
            .map(|k| Memkind(k.id()))
    }
}

impl Memkind {
    /// A PMEM kind in `dir` (file-backed memory; on a DAX mount mapped with MAP_SYNC).
    ///
    /// ```
    /// use memkind::{Memkind, UsagePolicy};
    ///
    /// let kind = Memkind::pmem(std::env::temp_dir())
    ///     .max_size(32 << 20)
    ///     .policy(UsagePolicy::Conservative)
    ///     .create()
    ///     .expect("a writable directory");
    /// let mut v = allocator_api2::vec::Vec::new_in(kind);
    /// v.extend_from_slice(b"lives in a file");
    /// assert_eq!(Memkind::detect(v.as_ptr()), Some(kind));
    /// drop(v);
    /// kind.destroy().unwrap();
    ///
    /// // Below 16 MiB is invalid, as in memkind 1.14.
    /// assert!(Memkind::pmem("/tmp").max_size(1 << 20).create().is_err());
    /// ```
    pub fn pmem(dir: impl AsRef<std::path::Path>) -> PmemBuilder {
        PmemBuilder {
            dir: dir.as_ref().to_path_buf(),
            max: 0,
            policy: UsagePolicy::Default,
        }
    }

    /// `memkind_destroy_kind`: a dynamic kind (PMEM) is destroyed with every allocation still
    /// in it (their memory is unmapped: using such a pointer afterwards is a use-after-free;
    /// freeing it is ignored). Static kinds stay usable.
    pub fn destroy(self) -> Result<(), Error> {
        crate::arena::destroy_kind(self.kind())
    }

    /// `memkind_update_memory_usage_policy` of the kind's arenas.
    pub fn set_usage_policy(self, policy: UsagePolicy) -> Result<(), Error> {
        let p = match policy {
            UsagePolicy::Default => crate::kind::pmem::POLICY_DEFAULT,
            UsagePolicy::Conservative => crate::kind::pmem::POLICY_CONSERVATIVE,
        };
        crate::arena::set_usage_policy(self.kind(), p)
    }
}

impl fmt::Debug for Memkind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[inline]
fn raw_alloc(kind: Memkind, layout: Layout, zero: bool) -> *mut u8 {
    if thread::in_init() {
        // The library is setting a kind up on this thread and needs memory itself.
        // SAFETY: layout has a non-zero size (GlobalAlloc / Allocator contracts).
        return unsafe {
            if zero {
                System.alloc_zeroed(layout)
            } else {
                System.alloc(layout)
            }
        };
    }
    let k = kind.kind();
    let p = if layout.align() <= 16 && layout.align() <= layout.size() {
        if zero {
            heap::calloc(k, 1, layout.size())
        } else {
            heap::malloc(k, layout.size())
        }
    } else {
        let p = heap::aligned(k, layout.size(), layout.align());
        if zero && !p.is_null() {
            // SAFETY: p points to at least layout.size() fresh bytes.
            unsafe { core::ptr::write_bytes(p as *mut u8, 0, layout.size()) };
        }
        p
    };
    p.cast()
}

#[inline]
fn raw_free(p: *mut u8) {
    match heap::owner(p as *const c_void) {
        Owner::Kind(_) => heap::free(p.cast()),
        // Not ours: it came from the system allocator while we were initialising.
        // SAFETY: the only foreign pointers the Rust API hands out come from `System`, whose
        // dealloc ignores the layout on Linux (it is libc free).
        Owner::Foreign => unsafe { libc::free(p.cast()) },
    }
}

// SAFETY: allocations are served by jemalloc through the kind's arenas (or the system allocator
// during initialisation, see `raw_alloc`), honour size and alignment, and `dealloc` finds the
// owner from the pointer itself.
unsafe impl GlobalAlloc for Memkind {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        raw_alloc(*self, layout, false)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        raw_alloc(*self, layout, true)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        raw_free(ptr)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let owned = matches!(heap::owner(ptr as *const c_void), Owner::Kind(_));
        if owned && layout.align() <= 16 && layout.align() <= new_size && !thread::in_init() {
            return heap::realloc(Some(self.kind()), ptr.cast(), new_size).cast();
        }
        // SAFETY: new_size is non-zero and the layout is valid (GlobalAlloc::realloc contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let q = raw_alloc(*self, new_layout, false);
        if !q.is_null() {
            // SAFETY: both blocks are live, distinct and at least min(old, new) bytes long.
            unsafe { core::ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size)) };
            raw_free(ptr);
        }
        q
    }
}

// SAFETY: blocks stay valid until deallocated, any Memkind value can free any block (the owner is
// found from the pointer), and copies of a Memkind are the same allocator.
unsafe impl allocator_api2::alloc::Allocator for Memkind {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        if layout.size() == 0 {
            // A dangling, well-aligned pointer for zero-sized requests.
            let p =
                NonNull::new(layout.align() as *mut u8).ok_or(allocator_api2::alloc::AllocError)?;
            return Ok(NonNull::slice_from_raw_parts(p, 0));
        }
        let p = NonNull::new(raw_alloc(*self, layout, false))
            .ok_or(allocator_api2::alloc::AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            raw_free(ptr.as_ptr())
        }
    }
}

/// A fixed kind (`memkind_create_fixed`): allocations are carved from a buffer the caller lends
/// for the kind's lifetime. Allocate through `&FixedKind` (an [`allocator_api2`] allocator), so
/// no block can outlive the kind or the buffer; dropping it destroys the kind.
///
/// ```
/// use core::mem::MaybeUninit;
/// use memkind::{FixedKind, Memkind};
///
/// let mut buf = vec![MaybeUninit::<u8>::uninit(); 8 << 20];
/// let fixed = FixedKind::new(&mut buf).unwrap();
/// let mut v = allocator_api2::vec::Vec::new_in(&fixed);
/// v.extend_from_slice(b"lives in the caller's buffer");
/// let p = v.as_ptr() as usize;
/// assert!(p >= buf_start(&fixed) && p < buf_start(&fixed) + (8 << 20));
/// assert_eq!(Memkind::detect(v.as_ptr()), Some(fixed.kind()));
/// drop(v);
/// drop(fixed); // destroys the kind; the buffer is the caller's again
/// # fn buf_start(f: &FixedKind<'_>) -> usize { f.range().start }
/// ```
pub struct FixedKind<'buf> {
    kind: Memkind,
    generation: u32,
    range: core::ops::Range<usize>,
    _buf: core::marker::PhantomData<&'buf mut [core::mem::MaybeUninit<u8>]>,
}

impl<'buf> FixedKind<'buf> {
    /// A kind over `buf`, borrowed until the kind is dropped. [`Error::Invalid`] when the buffer
    /// overlaps a live fixed kind's.
    pub fn new(buf: &'buf mut [core::mem::MaybeUninit<u8>]) -> Result<FixedKind<'buf>, Error> {
        let start = buf.as_mut_ptr() as usize;
        let k = crate::arena::create_fixed(start, buf.len())?;
        Ok(FixedKind {
            kind: Memkind(k.id()),
            generation: k.generation(),
            range: start..start + buf.len(),
            _buf: core::marker::PhantomData,
        })
    }

    /// The kind, to compare with [`Memkind::detect`] or query ([`Memkind::stat`]). Allocate
    /// through `&self`, not through this value: it stays `Copy` after the kind is gone.
    pub fn kind(&self) -> Memkind {
        self.kind
    }

    /// The buffer's address range.
    pub fn range(&self) -> core::ops::Range<usize> {
        self.range.clone()
    }
}

impl Drop for FixedKind<'_> {
    fn drop(&mut self) {
        // Every block allocated through `&self` is gone (they borrow it); the kind's memory is
        // the caller's buffer, which the destroy leaves alone. If the kind was destroyed already
        // (`fixed.kind().destroy()`), its slot may hold another kind by now: leave that alone.
        let k = self.kind.kind();
        if k.generation() == self.generation {
            let _ = crate::arena::destroy_kind(k);
        }
    }
}

impl fmt::Debug for FixedKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedKind")
            .field("kind", &self.kind)
            .field("range", &self.range)
            .finish()
    }
}

// SAFETY: as for Memkind: blocks come from the kind's arenas over the borrowed buffer and stay
// valid until deallocated or until the FixedKind is dropped, which the borrow of `&FixedKind`
// by every allocation's owner (e.g. a Vec) prevents before they are gone.
unsafe impl allocator_api2::alloc::Allocator for &FixedKind<'_> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        allocator_api2::alloc::Allocator::allocate(&self.kind, layout)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { allocator_api2::alloc::Allocator::deallocate(&self.kind, ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_kind_serves_from_its_buffer_and_destroys_once() {
        let _serial = crate::kind::tests::DYNAMIC_SLOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut buf = vec![core::mem::MaybeUninit::<u8>::uninit(); 4 << 20];
        let fixed = FixedKind::new(&mut buf).unwrap();
        let range = fixed.range();
        {
            let mut v = allocator_api2::vec::Vec::new_in(&fixed);
            v.extend(0..10_000u32);
            assert!(range.contains(&(v.as_ptr() as usize)));
            assert_eq!(Memkind::detect(v.as_ptr().cast()), Some(fixed.kind()));
            assert_eq!(v.iter().map(|&x| x as u64).sum::<u64>(), 49_995_000);
        }
        // Destroyed early through the handle; its slot is then reused by another kind, which the
        // FixedKind's drop must not destroy.
        fixed.kind().destroy().unwrap();
        let mut other_buf = vec![core::mem::MaybeUninit::<u8>::uninit(); 1 << 20];
        let other = FixedKind::new(&mut other_buf).unwrap();
        assert_eq!(other.kind(), fixed.kind(), "the slot is reused");
        drop(fixed);
        let mut v = allocator_api2::vec::Vec::new_in(&other);
        v.push(7u8);
        assert!(other.range().contains(&(v.as_ptr() as usize)));
        drop(v);
        drop(other);
        // A buffer overlapping a live fixed kind's is refused.
        let mut buf2 = vec![core::mem::MaybeUninit::<u8>::uninit(); 1 << 20];
        let a = FixedKind::new(&mut buf2).unwrap();
        let (start, len) = (a.range().start, a.range().len());
        assert_eq!(
            crate::arena::create_fixed(start, len).err(),
            Some(Error::Invalid)
        );
        drop(a);
    }

    #[test]
    fn vec_in_each_available_kind() {
        // The deprecated GBTLB kinds report "available" when 2 MiB pages exist (as 1.14) but
        // need 1 GiB pages to allocate.
        let gbtlb = [
            Memkind::GBTLB,
            Memkind::HBW_GBTLB,
            Memkind::HBW_PREFERRED_GBTLB,
        ];
        for k in Memkind::all_static() {
            if k.check_available().is_err() || gbtlb.contains(&k) {
                continue;
            }
            let mut v = allocator_api2::vec::Vec::new_in(k);
            v.extend(0..10_000u32);
            assert_eq!(v.iter().map(|&x| x as u64).sum::<u64>(), 49_995_000);
            assert_eq!(Memkind::detect(v.as_ptr().cast()), Some(k), "{k:?}");
        }
    }

    #[test]
    fn foreign_pointers_are_not_ours() {
        let b = Box::new(5u8);
        assert_eq!(Memkind::detect(&*b), None);
        assert_eq!(Memkind::detect(core::ptr::null()), None);
    }

    #[test]
    fn layout_alignment_is_honoured() {
        for align in [1usize, 8, 64, 4096, 1 << 21] {
            let l = Layout::from_size_align(100, align).unwrap();
            let p = Memkind::REGULAR.allocate_layout(l).unwrap();
            assert_eq!(p.as_ptr() as usize % align, 0);
            // SAFETY: p came from allocate_layout and is not used again.
            unsafe { Memkind::free(p) };
        }
    }

    #[test]
    fn unavailable_kind_is_an_error() {
        if Memkind::DAX_KMEM.check_available().is_err() {
            let l = Layout::from_size_align(64, 8).unwrap();
            assert!(Memkind::DAX_KMEM.allocate_layout(l).is_err());
        }
    }
}
