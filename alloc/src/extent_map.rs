//! Address → kind map for every byte our extent hooks hand to jemalloc.
//!
//! The user address space (47 bits on x86_64) is cut into 2 MiB granules. Our hooks only ever
//! map whole, 2 MiB-aligned granules, so a granule belongs to at most one kind. A two-level radix
//! table (8192 top slots × leaves of 8192 granules) answers "which kind owns this address" with two
//! dependent loads and never reads outside its own tables, whatever pointer it is given: a pointer
//! we never handed out finds an empty slot and yields `None`.
//!
//! Each leaf entry packs `kind_id + 1` (low 16 bits, 0 = not ours) and the number of live 4 KiB
//! pages jemalloc holds in the granule (high 16 bits). The low halves are mirrored in one flat
//! array of a `u16` per granule of the whole address space (2^26 entries, 128 MiB of address
//! space reserved with MAP_NORESERVE, touched only where granules are registered), which is what
//! [`ExtentMap::lookup`] reads: one bounds compare and one load on the free path, instead of two
//! dependent loads and a null test. The radix table keeps the page counts and is what the
//! rare walks over every granule read. When the last live page of a granule is
//! destroyed, the whole granule is unmapped, so a granule is never half-reused by someone else.
//! Leaves come straight from mmap: this module runs inside extent hooks and must not allocate
//! through jemalloc.

#![allow(unsafe_code, reason = "leaves are raw mmap'd tables")]

use core::sync::atomic::{AtomicPtr, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::sys::{Backing, Linux, Os, HUGE_2M, PAGE_SIZE};

/// log2 of the granule size (2 MiB).
pub const GRANULE_SHIFT: u32 = 21;
const LEAF_BITS: u32 = 13;
const TOP_BITS: u32 = 47 - GRANULE_SHIFT - LEAF_BITS;
const LEAF_LEN: usize = 1 << LEAF_BITS;
const TOP_LEN: usize = 1 << TOP_BITS;
/// Entries of the flat mirror: one per granule below 2^47.
const FLAT_LEN: usize = TOP_LEN * LEAF_LEN;
/// Bytes of the flat mirror's mapping.
const FLAT_BYTES: usize = FLAT_LEN * core::mem::size_of::<AtomicU16>();
const COUNT_SHIFT: u32 = 16;
/// Set in a granule's entry when a fixed kind's buffer (`memkind_create_fixed`) lies in it: the
/// granule's kind is then not the answer for every address in it, and [`ExtentMap::lookup`]
/// yields an id ≥ [`OVERLAY_ID`] so the caller takes its slow path (the fixed-range table).
/// Kind ids fit in 11 bits, so bit 15 of the id half is free. Sticky until the granule dies.
const OVERLAY: u32 = 0x8000;
/// The page count of a granule "pinned" to a fixed kind ([`ExtentMap::pin`]): memory of the
/// caller's buffer, not ours to unmap, so never a real count (at most 512) and left out of the
/// walks over our granules.
const PINNED: u32 = 0xffff;
/// Lowest id [`ExtentMap::lookup`] returns for a granule marked with a fixed-kind overlay.
#[cfg(test)]
pub const OVERLAY_ID: u16 = (OVERLAY - 1) as u16;

#[repr(C)]
struct Leaf {
    slots: [AtomicU32; LEAF_LEN],
}

/// log2 of the address span of one leaf of jemalloc's own page map (its rtree): 2^18 pages of
/// 4 KiB with 48-bit addresses (`rtree.h`: two levels of `RTREE_NSB / 2` bits).
const JE_LEAF_SHIFT: u32 = 30;
const JE_LEAVES: usize = 1 << (47 - JE_LEAF_SHIFT);

/// The table. One instance per process ([`MAP`]); tests make their own.
pub struct ExtentMap {
    top: [AtomicPtr<Leaf>; TOP_LEN],
    /// The flat mirror of the entries' low halves (`kind_id + 1 | OVERLAY`, 0 = not ours), one
    /// per granule; null until the first registration maps it.
    flat: AtomicPtr<AtomicU16>,
    /// Entries readable at `flat`: 0 until it is mapped, then [`FLAT_LEN`] (stored after `flat`
    /// with Release). Lookups compare the granule index with it, so they need no null test.
    flat_len: AtomicUsize,
    /// What the hot paths' lookups ([`ExtentMap::lookup_fast`]) read: [`NOT_OURS`] (one zero
    /// entry) until the mirror is mapped, then the mirror (stored before `fast_mask`).
    fast: AtomicPtr<AtomicU16>,
    /// The mask of granule indices [`ExtentMap::lookup_fast`] applies instead of a bounds
    /// compare: 0 until `fast` is the mirror (stored after it with Release), then
    /// `FLAT_LEN - 1`; it stays 0 where the kernel hands out addresses above 2^47 (5-level
    /// page tables), since such an address would alias one below.
    fast_mask: AtomicUsize,
    /// One bit per 1 GiB region in which jemalloc's page map has a leaf for sure (see
    /// [`ExtentMap::note_je_leaf`]). Bits are never cleared: jemalloc never frees its leaves.
    je_leaves: [AtomicU64; JE_LEAVES / 64],
}

/// The process's map.
pub static MAP: ExtentMap = ExtentMap::new();

/// The one entry [`ExtentMap::lookup_fast`] reads before the mirror is mapped (always 0).
static NOT_OURS: AtomicU16 = AtomicU16::new(0);

/// True when the kernel may hand this process addresses at or above 2^47 (x86_64 5-level page
/// tables, which it does only for a mapping asked for there): a hint above 2^47 is honoured.
fn high_addresses_possible() -> bool {
    let hint = (1usize << 48) as *mut core::ffi::c_void;
    match crate::sys::map_raw(
        hint,
        PAGE_SIZE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
    ) {
        Ok(p) => {
            // SAFETY: the page just mapped, unused.
            let _ = unsafe { Linux.unmap(p, PAGE_SIZE) };
            p as usize >> 47 != 0
        }
        Err(_) => false,
    }
}

#[inline(always)]
fn split(addr: usize) -> Option<(usize, usize)> {
    let g = addr >> GRANULE_SHIFT;
    let top = g >> LEAF_BITS;
    (top < TOP_LEN).then_some((top, g & (LEAF_LEN - 1)))
}

impl ExtentMap {
    /// An empty map.
    pub const fn new() -> Self {
        ExtentMap {
            top: [const { AtomicPtr::new(core::ptr::null_mut()) }; TOP_LEN],
            flat: AtomicPtr::new(core::ptr::null_mut()),
            flat_len: AtomicUsize::new(0),
            fast: AtomicPtr::new((&raw const NOT_OURS).cast_mut()),
            fast_mask: AtomicUsize::new(0),
            je_leaves: [const { AtomicU64::new(0) }; JE_LEAVES / 64],
        }
    }

    /// The flat mirror's entry for `addr` (`kind_id + 1 | OVERLAY`, 0 = not ours): any address
    /// is safe, one outside the mirror (or before it is mapped) reads as 0.
    #[inline(always)]
    fn flat_entry(&self, addr: usize) -> u16 {
        let g = addr >> GRANULE_SHIFT;
        if g >= self.flat_len.load(Ordering::Acquire) {
            return 0;
        }
        let flat = self.flat.load(Ordering::Relaxed);
        // SAFETY: `flat_len` is non-zero only once `flat` points to a mapping of FLAT_LEN
        // entries (published before it with Release, read after it with Acquire), which is
        // never unmapped while the map is alive; `g < flat_len`.
        unsafe { &*flat.add(g) }.load(Ordering::Relaxed)
    }

    /// Note that jemalloc registers (or has registered) a page of `addr` in its page map: it
    /// does so for the first and the last page of every extent a hook hands it, and on both
    /// sides of every split, creating the page map's leaf for that 1 GiB region if missing.
    /// Called from those hooks ([`ExtentMap::register`], the split hook, the fixed kinds'
    /// carve), just before jemalloc registers the pages.
    pub fn note_je_leaf(&self, addr: usize) {
        let r = addr >> JE_LEAF_SHIFT;
        if r < JE_LEAVES {
            let (w, bit) = (&self.je_leaves[r / 64], 1u64 << (r % 64));
            // Read first: the split hook runs on every large allocation, from every thread, and
            // the bit is almost always set already (no write, no cache-line ping-pong).
            if w.load(Ordering::Relaxed) & bit == 0 {
                w.fetch_or(bit, Ordering::Release);
            }
        }
    }

    /// True when jemalloc's page map surely has a leaf for `addr`'s 1 GiB region, so that its
    /// lookups of `addr` (which assume the leaf exists) read no wild pointer. Every address of
    /// a block of 1 GiB or less, and the first page of any block, passes: its extent's first and
    /// last pages were noted. The middle of a larger block may not.
    #[inline]
    pub fn je_leaf(&self, addr: usize) -> bool {
        let r = addr >> JE_LEAF_SHIFT;
        r < JE_LEAVES && self.je_leaves[r / 64].load(Ordering::Acquire) & (1 << (r % 64)) != 0
    }

    /// The mirror's entry for `addr` as the hot paths read it: a mask instead of a bounds
    /// compare, so one `and`, two loads and no branch. Any address is safe. It reads 0 ("not
    /// ours") for every address until the mirror is mapped, and on a machine with more than 47
    /// bits of user addresses; callers then take their slow paths, which ask
    /// [`ExtentMap::lookup_base`].
    #[inline(always)]
    fn fast_entry(&self, addr: usize) -> u16 {
        let g = (addr >> GRANULE_SHIFT) & self.fast_mask.load(Ordering::Acquire);
        let base = self.fast.load(Ordering::Relaxed);
        // SAFETY: `fast_mask` is 0 (so `g` is 0) until `fast` points to the mirror of FLAT_LEN
        // entries, stored before the mask with Release and read after it here with Acquire;
        // either pointer is valid at index 0, the mirror at every index up to `FLAT_LEN - 1`,
        // and neither is ever unmapped while the map is alive.
        unsafe { &*base.add(g) }.load(Ordering::Relaxed)
    }

    /// True when `addr`'s granule in the process's [`MAP`] belongs to kind `ID` with no
    /// fixed-kind overlay; false may also mean "ask [`ExtentMap::lookup_base`]" (a hot-path
    /// read, see [`ExtentMap::fast_entry`]). Written out so that it costs five instructions:
    /// shift, `and` with the mask in memory, the mirror pointer's load, a 16-bit compare with
    /// the entry in memory, the branch.
    #[inline(always)]
    pub fn is_in_map<const ID: u16>(addr: usize) -> bool {
        // SAFETY: the same reads as `fast_entry` on MAP, in the same order (the mask with
        // Acquire semantics, as every x86 load, then the pointer; the entry is in bounds of
        // whichever pointer goes with the mask read); no stack use, flags clobbered as asm!
        // assumes. `g` is the input register, overwritten (declared as a clobbered output).
        unsafe {
            core::arch::asm!(
                "shr ${shift}, {g}",
                "and {map}+{mask}(%rip), {g}",
                "mov {map}+{fast}(%rip), {base}",
                "cmpw ${id}, ({base},{g},2)",
                "je {yes}",
                shift = const GRANULE_SHIFT,
                map = sym MAP,
                mask = const core::mem::offset_of!(ExtentMap, fast_mask),
                fast = const core::mem::offset_of!(ExtentMap, fast),
                id = const ID + 1,
                g = inout(reg) addr => _,
                base = out(reg) _,
                yes = label { return true; },
                options(att_syntax, nostack, readonly),
            );
        }
        false
    }

    /// As [`ExtentMap::lookup`] for the hot paths: `None` may also mean "ask
    /// [`ExtentMap::lookup_base`]" (see [`ExtentMap::fast_entry`]).
    #[inline(always)]
    pub fn lookup_fast(&self, addr: usize) -> Option<u16> {
        // Entries are `kind_id + 1`, 0 = not ours.
        self.fast_entry(addr).checked_sub(1)
    }

    /// The kind id owning `addr`, or `None` for an address we never mapped.
    #[inline(always)]
    pub fn lookup(&self, addr: usize) -> Option<u16> {
        // Entries are `kind_id + 1`, 0 = not ours.
        self.flat_entry(addr).checked_sub(1)
    }

    /// As [`ExtentMap::lookup`], ignoring a fixed-kind overlay mark: the kind whose extent
    /// holds the granule.
    pub fn lookup_base(&self, addr: usize) -> Option<u16> {
        let v = self.flat_entry(addr) & !(OVERLAY as u16);
        (v != 0).then(|| v - 1)
    }

    /// The flat mirror, mapped on first use; `None` when it cannot be mapped.
    fn flat(&self) -> Option<*mut AtomicU16> {
        let f = self.flat.load(Ordering::Acquire);
        if !f.is_null() {
            return Some(f);
        }
        // Real memory whatever OS seam the caller tests with, as for leaves; zeroed anonymous
        // memory is a valid mirror (every entry 0). MAP_NORESERVE: 128 MiB of address space of
        // which a few pages are ever written must not be charged to the commit limit (the
        // kinds' own extents are, as 1.14's).
        let fresh = crate::sys::map_raw(
            core::ptr::null_mut(),
            FLAT_BYTES,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        )
        .ok()?;
        // Only a few of its pages are ever written: no transparent huge pages for them.
        // SAFETY: our fresh mapping, nothing in it yet; the advice drops no contents.
        let _ = unsafe { Linux.advise(fresh, FLAT_BYTES, libc::MADV_NOHUGEPAGE) };
        let fresh = fresh as *mut AtomicU16;
        let f = match self.flat.compare_exchange(
            core::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: the mirror just mapped, which lost the race and was never published.
                let _ = unsafe { Linux.unmap(fresh.cast(), FLAT_BYTES) };
                winner
            }
        };
        self.flat_len.store(FLAT_LEN, Ordering::Release);
        if self.fast_mask.load(Ordering::Acquire) == 0 && !high_addresses_possible() {
            self.fast.store(f, Ordering::Release);
            self.fast_mask.store(FLAT_LEN - 1, Ordering::Release);
        }
        Some(f)
    }

    /// The flat mirror's entry for granule-aligned `g`, if the mirror is mapped and covers it.
    fn flat_slot(&self, g: usize) -> Option<&AtomicU16> {
        let i = g >> GRANULE_SHIFT;
        let f = self.flat.load(Ordering::Acquire);
        // SAFETY: a non-null `flat` is a mapping of FLAT_LEN entries that lives as long as the
        // map; `i < FLAT_LEN`.
        (!f.is_null() && i < FLAT_LEN).then(|| unsafe { &*f.add(i) })
    }

    /// Mirror a leaf entry's new value into the flat array.
    fn mirror(&self, g: usize, entry: u32) {
        if let Some(s) = self.flat_slot(g) {
            s.store((entry & 0xffff) as u16, Ordering::Release);
        }
    }

    /// Mark every registered granule that `[addr, addr+len)` touches as holding (part of) a
    /// fixed kind's buffer, so lookups there take the slow path. Unregistered granules need no
    /// mark: a miss already takes it.
    pub fn mark_overlay(&self, addr: usize, len: usize) {
        let Some(end) = addr.checked_add(len) else {
            return;
        };
        let mut g = addr & !(HUGE_2M - 1);
        while g < end {
            if let Some(s) = self.existing_slot(g) {
                if s.load(Ordering::Acquire) & 0xffff != 0 {
                    let v = s.fetch_or(OVERLAY, Ordering::AcqRel) | OVERLAY;
                    self.mirror(g, v);
                }
            }
            match g.checked_add(HUGE_2M) {
                Some(n) => g = n,
                None => break,
            }
        }
    }

    /// Register to fixed kind `kind` every granule that lies wholly inside `[addr, addr+len)`
    /// (its buffer, the caller's memory) and is not registered yet, so that frees of its
    /// blocks there take the hot path instead of the fixed-range table. A granule wholly
    /// inside the buffer holds nothing else, so the answer is right for every address in it.
    /// Pinned granules are never retired or unmapped and the walks over our granules skip
    /// them; [`ExtentMap::unpin`] forgets them. Registered granules (a buffer carved from our
    /// own memory) are left as they are (see [`ExtentMap::mark_overlay`]). Best effort: a
    /// granule whose leaf cannot be mapped stays unregistered (the slow path finds it).
    pub fn pin(&self, addr: usize, len: usize, kind: u16) {
        let Some(end) = addr.checked_add(len) else {
            return;
        };
        if self.flat().is_none() {
            return;
        }
        let mut g = addr.next_multiple_of(HUGE_2M);
        while g.checked_add(HUGE_2M).is_some_and(|e| e <= end) {
            if let Some(s) = self.slot(g) {
                let entry = (kind as u32 + 1) | (PINNED << COUNT_SHIFT);
                if s.compare_exchange(0, entry, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    self.mirror(g, entry);
                }
            }
            g += HUGE_2M;
        }
    }

    /// Forget the granules [`ExtentMap::pin`] gave to `kind` in `[addr, addr+len)` (its
    /// destruction); an entry that is no longer that pin (the buffer unmapped and the range
    /// reused for an extent of ours) is left alone.
    pub fn unpin(&self, addr: usize, len: usize, kind: u16) {
        let Some(end) = addr.checked_add(len) else {
            return;
        };
        let entry = (kind as u32 + 1) | (PINNED << COUNT_SHIFT);
        let mut g = addr.next_multiple_of(HUGE_2M);
        while g.checked_add(HUGE_2M).is_some_and(|e| e <= end) {
            if let Some(s) = self.existing_slot(g) {
                if s.compare_exchange(entry, 0, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    self.mirror(g, 0);
                }
            }
            g += HUGE_2M;
        }
    }

    fn slot(&self, addr: usize) -> Option<&AtomicU32> {
        let (t, l) = split(addr)?;
        let mut leaf = self.top[t].load(Ordering::Acquire);
        if leaf.is_null() {
            // Leaves are always real memory, whatever OS seam the caller tests with.
            let fresh = Linux
                .map(core::mem::size_of::<Leaf>(), Backing::Anon)
                .ok()?
                .as_ptr() as *mut Leaf;
            // Zeroed anonymous memory is a valid Leaf (all AtomicU32 zero).
            match self.top[t].compare_exchange(
                core::ptr::null_mut(),
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => leaf = fresh,
                Err(winner) => {
                    // SAFETY: the leaf just mapped, which lost the race and was never published.
                    let _ = unsafe { Linux.unmap(fresh.cast(), core::mem::size_of::<Leaf>()) };
                    leaf = winner;
                }
            }
        }
        // SAFETY: leaves are mapped once and never unmapped, so the reference stays valid.
        Some(&unsafe { &*leaf }.slots[l])
    }

    /// Record that `[addr, addr+len)` (granule-aligned start) now belongs to `kind`.
    /// Returns false if the range is outside the table or a leaf could not be mapped.
    /// jemalloc then registers the extent's first and last pages in its own page map (noted
    /// here, see [`ExtentMap::note_je_leaf`]).
    pub fn register(&self, addr: usize, len: usize, kind: u16) -> bool {
        debug_assert_eq!(addr % HUGE_2M, 0);
        if self.flat().is_none() {
            return false;
        }
        if len > 0 {
            self.note_je_leaf(addr);
            self.note_je_leaf(addr + len - 1);
        }
        let mut g = addr;
        let end = addr + len;
        while g < end {
            let pages = ((end.min(g + HUGE_2M) - g) / PAGE_SIZE) as u32;
            let Some(slot) = self.slot(g) else {
                // Roll back what we registered.
                self.clear(addr, g - addr);
                return false;
            };
            let entry = (kind as u32 + 1) | (pages << COUNT_SHIFT);
            slot.store(entry, Ordering::Release);
            self.mirror(g, entry);
            g += HUGE_2M;
        }
        true
    }

    fn clear(&self, addr: usize, len: usize) {
        let mut g = addr;
        while g < addr + len {
            if let Some(s) = self.existing_slot(g) {
                s.store(0, Ordering::Release);
                self.mirror(g, 0);
            }
            g += HUGE_2M;
        }
    }

    fn existing_slot(&self, addr: usize) -> Option<&AtomicU32> {
        let (t, l) = split(addr)?;
        let leaf = self.top[t].load(Ordering::Acquire);
        // SAFETY: as in `lookup`.
        (!leaf.is_null()).then(|| &unsafe { &*leaf }.slots[l])
    }

    /// jemalloc destroyed `[addr, addr+len)` (page aligned, anywhere inside our granules).
    /// Calls `release(granule_addr)` for every granule whose last live page this was; the caller
    /// unmaps it. The slot is cleared before `release` runs.
    pub fn retire(&self, addr: usize, len: usize, mut release: impl FnMut(usize)) {
        let end = addr + len;
        let mut p = addr;
        while p < end {
            let g = p & !(HUGE_2M - 1);
            let chunk_end = end.min(g + HUGE_2M);
            let pages = ((chunk_end - p) / PAGE_SIZE) as u32;
            if let Some(slot) = self
                .existing_slot(g)
                .filter(|s| s.load(Ordering::Acquire) >> COUNT_SHIFT != PINNED)
            {
                let old = slot.fetch_sub(pages << COUNT_SHIFT, Ordering::AcqRel);
                if old >> COUNT_SHIFT == pages {
                    slot.store(0, Ordering::Release);
                    self.mirror(g, 0);
                    release(g);
                }
            }
            p = chunk_end;
        }
    }
}

impl ExtentMap {
    /// Call `f(granule_addr)` for every granule registered to `kind`, in address order. Reads
    /// only the map's own tables (used by PMEM fork handling, single threaded or under
    /// `INIT_LOCK`).
    pub fn for_each_granule_of(&self, kind: u16, mut f: impl FnMut(usize)) {
        self.for_each_granule(|g, id| {
            if id == kind {
                f(g)
            }
        });
    }

    /// Call `f(granule_addr, kind)` for every registered granule, in address order (a granule
    /// shared with a fixed kind's buffer gives its underlying kind; granules pinned to a fixed
    /// kind, the caller's memory, are left out).
    pub fn for_each_granule(&self, mut f: impl FnMut(usize, u16)) {
        for (t, top) in self.top.iter().enumerate() {
            let leaf = top.load(Ordering::Acquire);
            if leaf.is_null() {
                continue;
            }
            // SAFETY: as in `lookup`.
            let leaf = unsafe { &*leaf };
            for (l, s) in leaf.slots.iter().enumerate() {
                let v = s.load(Ordering::Acquire);
                let id = v & 0xffff & !OVERLAY;
                if id != 0 && v >> COUNT_SHIFT != PINNED {
                    f(((t << LEAF_BITS) | l) << GRANULE_SHIFT, (id - 1) as u16);
                }
            }
        }
    }

    /// Forget every granule still registered to `kind` and call `release(granule_addr)` for
    /// each, after its slot is cleared (a destroyed kind's leftovers: jemalloc never destroys
    /// an arena's metadata blocks through the destroy hook).
    pub fn sweep_kind(&self, kind: u16, mut release: impl FnMut(usize)) {
        self.for_each_granule_of(kind, |g| {
            if let Some(s) = self.existing_slot(g) {
                s.store(0, Ordering::Release);
                self.mirror(g, 0);
                release(g);
            }
        });
    }
}

impl Drop for ExtentMap {
    /// Unmap the flat mirror (maps made by tests; the process's [`MAP`] is never dropped).
    /// Leaves stay mapped, as ever.
    fn drop(&mut self) {
        let f = *self.flat.get_mut();
        if !f.is_null() {
            // SAFETY: the map is going away (`&mut self`), so nothing reads the mirror any more.
            let _ = unsafe { Linux.unmap(f.cast(), FLAT_BYTES) };
        }
    }
}

impl Default for ExtentMap {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_granules_are_whole_ones_and_never_retired() {
        let m = Box::new(ExtentMap::new());
        let g = 0x7e00_0000_0000usize;
        // A registered granule stays as it is; the partial ones at both ends are not pinned.
        assert!(m.register(g + 2 * HUGE_2M, HUGE_2M, 3));
        m.pin(g + 5, 4 * HUGE_2M, 9);
        assert_eq!(m.lookup(g), None);
        assert_eq!(m.lookup(g + HUGE_2M), Some(9));
        assert_eq!(m.lookup(g + 2 * HUGE_2M), Some(3));
        assert_eq!(m.lookup(g + 3 * HUGE_2M + 77), Some(9));
        assert_eq!(m.lookup(g + 4 * HUGE_2M), None);
        // Not walked, never retired (so never released for unmapping).
        let mut seen = Vec::new();
        m.for_each_granule(|a, id| seen.push((a, id)));
        assert_eq!(seen, vec![(g + 2 * HUGE_2M, 3)]);
        let mut released = Vec::new();
        m.retire(g + HUGE_2M, HUGE_2M, |a| released.push(a));
        assert!(released.is_empty());
        assert_eq!(m.lookup(g + HUGE_2M), Some(9));
        // Unpinned: only the pins of that kind go.
        m.unpin(g + 5, 4 * HUGE_2M, 8);
        assert_eq!(m.lookup(g + HUGE_2M), Some(9));
        m.unpin(g + 5, 4 * HUGE_2M, 9);
        assert_eq!(m.lookup(g + HUGE_2M), None);
        assert_eq!(m.lookup(g + 3 * HUGE_2M), None);
        assert_eq!(m.lookup(g + 2 * HUGE_2M), Some(3));
    }

    #[test]
    fn unknown_addresses_are_none() {
        let m = Box::new(ExtentMap::new());
        assert_eq!(m.lookup(0), None);
        assert_eq!(m.lookup(usize::MAX), None);
        assert_eq!(m.lookup(0x7fff_ffff_f000), None);
        let x = 5u8;
        assert_eq!(m.lookup(&x as *const u8 as usize), None);
    }

    #[test]
    fn register_lookup_retire() {
        let m = Box::new(ExtentMap::new());
        let base = 0x7f00_0000_0000usize; // granule aligned
                                          // 2 granules + 3 pages.
        let len = 2 * HUGE_2M + 3 * PAGE_SIZE;
        assert!(m.register(base, len, 7));
        assert_eq!(m.lookup(base), Some(7));
        // The hot paths' read agrees, unless this machine hands out addresses above 2^47
        // (then it always says "ask lookup_base").
        let fast = m.fast_mask.load(Ordering::Relaxed) != 0;
        assert_eq!(fast, !high_addresses_possible());
        assert_eq!(m.lookup_fast(base), fast.then_some(7));
        assert_eq!(m.lookup_base(base), Some(7));
        // Addresses outside the mirror stay unknown once it is mapped.
        assert_eq!(m.lookup(1 << 47), None);
        assert_eq!(m.lookup(usize::MAX), None);
        assert_eq!(m.lookup_fast(1 << 47), None);
        assert_eq!(m.lookup_fast(usize::MAX), None);
        assert_eq!(m.lookup(base + HUGE_2M + 5), Some(7));
        assert_eq!(m.lookup(base + 2 * HUGE_2M + 3 * PAGE_SIZE + 100), Some(7)); // padding
        assert_eq!(m.lookup(base + 3 * HUGE_2M), None);
        let mut released = Vec::new();
        // Destroy the first granule in two pieces, not aligned to the granule.
        m.retire(base, 4096 * 10, |g| released.push(g));
        assert!(released.is_empty());
        m.retire(base + 4096 * 10, HUGE_2M - 4096 * 10, |g| released.push(g));
        assert_eq!(released, vec![base]);
        assert_eq!(m.lookup(base), None);
        // A piece straddling granule 2 and the 3-page tail.
        m.retire(base + HUGE_2M, HUGE_2M + 3 * PAGE_SIZE, |g| {
            released.push(g)
        });
        assert_eq!(released, vec![base, base + HUGE_2M, base + 2 * HUGE_2M]);
        assert_eq!(m.lookup(base + 2 * HUGE_2M), None);
    }

    #[test]
    fn je_leaves_are_noted_at_extent_ends() {
        let m = Box::new(ExtentMap::new());
        let gib = 1usize << 30;
        let base = 0x7d00_0000_0000usize - HUGE_2M; // the extent crosses a 1 GiB boundary
        assert!(!m.je_leaf(base) && !m.je_leaf(base + HUGE_2M));
        assert!(m.register(base, 2 * HUGE_2M, 3));
        assert!(m.je_leaf(base) && m.je_leaf(base + HUGE_2M) && m.je_leaf(base + gib - 1));
        assert!(!m.je_leaf(base + 2 * gib));
        assert!(!m.je_leaf(usize::MAX));
        m.note_je_leaf(base + 2 * gib + 5);
        assert!(m.je_leaf(base + 2 * gib));
    }

    #[test]
    fn overlay_marks_send_lookups_to_the_slow_path() {
        let m = Box::new(ExtentMap::new());
        let base = 0x7e00_0000_0000usize;
        assert!(m.register(base, 2 * HUGE_2M, 9));
        // A buffer straddling both granules and one unregistered granule.
        m.mark_overlay(base + HUGE_2M + 100, HUGE_2M + 5);
        assert_eq!(m.lookup(base), Some(9));
        assert_eq!(m.lookup_base(base), Some(9));
        let v = m.lookup(base + HUGE_2M).unwrap();
        assert!(v >= OVERLAY_ID);
        assert_eq!(m.lookup_base(base + HUGE_2M), Some(9));
        assert_eq!(m.lookup(base + 2 * HUGE_2M), None);
        // The page count is untouched by the mark: the granule still dies with its last page.
        let mut released = Vec::new();
        m.retire(base + HUGE_2M, HUGE_2M, |g| released.push(g));
        assert_eq!(released, vec![base + HUGE_2M]);
        assert_eq!(m.lookup(base + HUGE_2M), None);
    }
}
