//! Fixed kinds (`memkind_create_fixed`): a dynamic kind whose memory is the caller's buffer
//! `[addr, addr + size)`.
//!
//! memkind 1.14 (src/memkind_fixed.c) carves extents from the buffer with a bump pointer under a
//! mutex, never gives memory back (dalloc, decommit and purge opt out, destroy does nothing) and
//! reports the buffer size as the kind's capacity. It accepts any input: a NULL address, a size
//! of 0, and a buffer overlapping another fixed kind's (so two kinds hand out the same bytes).
//! Ours refuses a NULL address, a range that wraps around the address space and overlaps with a
//! live fixed kind (MEMKIND_ERROR_INVALID); sizes too small for any extent are accepted, as in
//! 1.14, and every allocation from them fails with ENOMEM.
//!
//! The buffer is neither 2 MiB aligned nor ours, so its first and last granules are shared with
//! other memory and must not be registered in the extent map (foreign pointers next to the
//! buffer would look like the kind's). Every live fixed kind publishes its range in [`RANGES`], a
//! lock-free table indexed by kind slot; `heap::owner` consults it when the granule lookup misses
//! or hits a granule marked as shared with a fixed buffer
//! ([`crate::extent_map::ExtentMap::mark_overlay`]). The granules wholly inside the buffer are
//! pinned to the kind in the extent map ([`crate::extent_map::ExtentMap::pin`], unless they are
//! already registered: a buffer carved from our own memory), so frees there take the same hot
//! path as other kinds' (184 → 124 instructions per malloc/free pair, memkind-bench
//! --instructions).
//!
//! Differences from 1.14 beyond input checking: one arena per fixed kind (1.14 makes 4 per CPU,
//! each retaining its own pieces of the small buffer), and extents are handed to jemalloc as not
//! zeroed unless the hook zeroes them itself (1.14 claims zeroed memory, so `calloc` can return
//! the buffer's old bytes).

use core::sync::atomic::{fence, AtomicU32, AtomicUsize, Ordering};

use super::{ArenaCount, Family, Kind, Placement, KINDS, MAX_KINDS, STATIC_KINDS};
use crate::error::Error;

/// A fixed kind's buffer and its bump cursor (the kind's dynamic state).
#[derive(Debug)]
pub struct FixedState {
    /// First byte of the buffer.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// Next free byte; moves up only.
    cursor: AtomicUsize,
    /// Range slot of the kind (to unpublish the range on drop); `usize::MAX` until published.
    slot: AtomicUsize,
}

impl FixedState {
    /// Carve `size` bytes aligned to `align` (a power of two) from the buffer; lock-free.
    /// `None` when the rest of the buffer is too small.
    pub fn carve(&self, size: usize, align: usize) -> Option<usize> {
        if size == 0 || !align.is_power_of_two() {
            return None;
        }
        let mut cur = self.cursor.load(Ordering::Relaxed);
        loop {
            let start = cur.checked_add(align - 1)? & !(align - 1);
            let next = start.checked_add(size)?;
            if next > self.end {
                return None;
            }
            match self
                .cursor
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    // jemalloc registers the extent's first and last pages (for `usable_size`).
                    crate::extent_map::MAP.note_je_leaf(start);
                    crate::extent_map::MAP.note_je_leaf(next - 1);
                    return Some(start);
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Does `[addr, addr+len)` lie in the buffer?
    #[cfg(test)]
    pub fn contains(&self, addr: usize, len: usize) -> bool {
        addr >= self.start && addr.checked_add(len).is_some_and(|e| e <= self.end)
    }
}

impl Drop for FixedState {
    fn drop(&mut self) {
        // The kind's arenas are gone (destroy_kind drops the state after them): its pointers
        // are foreign from now on.
        let slot = *self.slot.get_mut();
        if let Some(r) = RANGES.get(slot) {
            crate::extent_map::MAP.unpin(
                self.start,
                self.end - self.start,
                (STATIC_KINDS + slot) as u16,
            );
            r.tag.store(0, Ordering::SeqCst);
        }
    }
}

/// One published range: `tag` is the kind's generation while live (0 when free); readers check
/// it before and after reading the bounds (a seqlock without a writer lock: a slot has one
/// writer, its kind's creation or destruction).
struct Range {
    start: AtomicUsize,
    end: AtomicUsize,
    tag: AtomicU32,
}

const DYNAMIC: usize = MAX_KINDS - STATIC_KINDS;

static RANGES: [Range; DYNAMIC] = [const {
    Range {
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        tag: AtomicU32::new(0),
    }
}; DYNAMIC];
/// One past the highest range slot ever used (scans stop there).
static HIGH: AtomicUsize = AtomicUsize::new(0);

/// The live fixed kind whose buffer holds `addr`, if any.
pub fn owner_of(addr: usize) -> Option<&'static Kind> {
    let high = HIGH.load(Ordering::Acquire).min(DYNAMIC);
    for (i, r) in RANGES[..high].iter().enumerate() {
        let tag = r.tag.load(Ordering::Acquire);
        if tag == 0 {
            continue;
        }
        let (s, e) = (
            r.start.load(Ordering::Relaxed),
            r.end.load(Ordering::Relaxed),
        );
        fence(Ordering::Acquire);
        if addr >= s && addr < e && r.tag.load(Ordering::Relaxed) == tag {
            let k = &KINDS[STATIC_KINDS + i];
            if k.generation() == tag && Kind::from_ptr(k).is_some() {
                return Some(k);
            }
        }
    }
    None
}

/// A fixed kind's state (None for other kinds).
pub(crate) fn state_of(k: &Kind) -> Option<&FixedState> {
    k.state::<FixedState>()
}

/// Call `f(kind, start, end)` for every live fixed kind's buffer.
pub(crate) fn for_each_range(mut f: impl FnMut(&'static Kind, usize, usize)) {
    let high = HIGH.load(Ordering::Acquire).min(DYNAMIC);
    for i in 0..high {
        let k = &KINDS[STATIC_KINDS + i];
        if let Some(st) = Kind::from_ptr(k).and_then(state_of) {
            f(k, st.start, st.end);
        }
    }
}

fn placement(_k: &Kind) -> Result<Placement, Error> {
    Ok(Placement {
        hog: true,
        arenas: ArenaCount::Single,
        ..Placement::anon()
    })
}

fn capacity(k: &Kind) -> isize {
    k.state::<FixedState>()
        .map_or(-1, |s| (s.end - s.start) as isize)
}

/// The fixed family.
pub static FAMILY: Family = Family {
    name: "fixed",
    placement,
    check: |_| Ok(()),
    capacity,
    hooks: super::HookSet::Fixed,
};

// The C ABI's table of fixed kinds (`ffi::ops`), by symbol name.
#[allow(
    unsafe_code,
    reason = "declaration of a static the C ABI layer defines"
)]
unsafe extern "C" {
    static MEMKIND_FIXED_OPS: super::OpsTable;
}

/// The kind half of `memkind_create_fixed(addr, size, &kind)` (see `arena::create_fixed`).
pub fn create(addr: usize, size: usize) -> Result<&'static Kind, Error> {
    if addr == 0 {
        return Err(Error::Invalid);
    }
    let end = addr.checked_add(size).ok_or(Error::Invalid)?;
    // The slot is only known once the kind exists: create it, then publish the range.
    // 1.14's name: "fixed" and the address as printf's %p writes it.
    let name = format!("fixed{addr:#x}");
    let k = super::create_dynamic(
        &FAMILY,
        Box::new(FixedState {
            start: addr,
            end,
            cursor: AtomicUsize::new(addr),
            slot: AtomicUsize::new(usize::MAX),
        }),
        super::OpsPtr(&raw const MEMKIND_FIXED_OPS),
        name.as_bytes(),
    )?;
    let slot = k.id() as usize - STATIC_KINDS;
    if size > 0 && !publish(slot, addr, end, k.generation()) {
        // No arenas yet: the arena layer's destroy without arenas (the probe saw the kind
        // created, so it hears of its destruction as well).
        let _g = super::INIT_LOCK.lock();
        crate::counters::thread::flush_kind(k.id());
        super::probe::kind_event(k, crate::probe::records::kind_op::DESTROY);
        super::release_slot(k);
        return Err(Error::Invalid);
    }
    if let Some(st) = k.state::<FixedState>() {
        st.slot.store(slot, Ordering::Release);
    }
    crate::extent_map::MAP.mark_overlay(addr, size);
    crate::extent_map::MAP.pin(addr, size, k.id());
    Ok(k)
}

/// Publish `[start, end)` in range slot `slot`, then check for overlaps with every other live
/// range. Two concurrent creations of overlapping ranges each see the other (sequentially
/// consistent stores then loads) and both back off; never both succeed.
fn publish(slot: usize, start: usize, end: usize, generation: u32) -> bool {
    let r = &RANGES[slot];
    r.tag.store(0, Ordering::SeqCst);
    r.start.store(start, Ordering::SeqCst);
    r.end.store(end, Ordering::SeqCst);
    r.tag.store(generation, Ordering::SeqCst);
    HIGH.fetch_max(slot + 1, Ordering::SeqCst);
    let high = HIGH.load(Ordering::SeqCst).min(DYNAMIC);
    let clash = RANGES[..high].iter().enumerate().any(|(i, o)| {
        i != slot
            && o.tag.load(Ordering::SeqCst) != 0
            && o.start.load(Ordering::SeqCst) < end
            && start < o.end.load(Ordering::SeqCst)
    });
    if clash {
        r.tag.store(0, Ordering::SeqCst);
    }
    !clash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::heap;
    use crate::stats::{self, StatType};

    fn buffer(len: usize) -> (Vec<u8>, usize) {
        let v = vec![0u8; len];
        let a = v.as_ptr() as usize;
        (v, a)
    }

    #[test]
    fn carve_is_aligned_bounded_and_monotonic() {
        let st = FixedState {
            start: 0x1003,
            end: 0x1003 + 5 * 4096,
            cursor: AtomicUsize::new(0x1003),
            slot: AtomicUsize::new(usize::MAX),
        };
        assert_eq!(st.carve(4096, 4096), Some(0x2000));
        assert_eq!(st.carve(8192, 8192), Some(0x4000));
        assert_eq!(st.carve(4096, 4096), None); // 0x6000 + 4096 > end (0x6003)
        assert_eq!(st.carve(0, 4096), None);
        assert_eq!(st.carve(1, 3), None);
        assert!(st.contains(0x1003, 5 * 4096) && !st.contains(0x1002, 1));
        // The failed carves did not move the cursor.
        assert_eq!(st.carve(3, 1), Some(0x6000));
    }

    #[test]
    fn fixed_kind_allocates_inside_its_buffer_and_is_found_by_pointer() {
        let _serial = super::super::tests::DYNAMIC_SLOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (_keep, addr) = buffer(8 << 20);
        let k = create(addr + 5, 6 << 20).unwrap();
        assert_eq!(k.capacity(), 6 << 20);
        let inside = |p: *mut core::ffi::c_void, n: usize| {
            (p as usize) >= addr + 5 && (p as usize) + n <= addr + 5 + (6 << 20)
        };
        let small = heap::malloc(k, 100);
        let big = heap::malloc(k, 1 << 20);
        assert!(inside(small, 100) && inside(big, 1 << 20));
        assert!(matches!(heap::owner(small), heap::Owner::Kind(o) if o.id() == k.id()));
        assert!(matches!(heap::owner(big), heap::Owner::Kind(o) if o.id() == k.id()));
        // Bytes next to the buffer are not the kind's.
        assert!(matches!(
            heap::owner((addr + 2) as *const _),
            heap::Owner::Foreign
        ));
        // The granules wholly inside the buffer (not our memory: the system allocator's) are
        // the kind's in the extent map; the partial ones at its ends are not registered.
        use crate::extent_map::MAP;
        let (lo, hi) = (addr + 5, addr + 5 + (6 << 20));
        let whole: Vec<usize> = (lo.next_multiple_of(2 << 20)..hi)
            .step_by(2 << 20)
            .filter(|g| g + (2 << 20) <= hi)
            .collect();
        assert!(!whole.is_empty());
        for &g in &whole {
            assert_eq!(MAP.lookup(g + 12345), Some(k.id()), "granule {g:#x}");
        }
        assert_eq!(MAP.lookup(lo), None);
        assert_eq!(MAP.lookup(hi - 1), None);
        let mut walked = false;
        MAP.for_each_granule_of(k.id(), |_| walked = true);
        assert!(!walked, "pinned granules are not ours to walk (or unmap)");
        // Overlapping ranges are refused; adjacent ones are fine.
        assert!(matches!(create(addr + 4096, 4096), Err(Error::Invalid)));
        let tail = create(addr + 5 + (6 << 20), 4096).unwrap();
        // Statistics: the kind's arena holds at least the big block.
        stats::update_cached().unwrap();
        assert!(stats::get(Some(k), StatType::Allocated).unwrap() >= 1 << 20);
        // Exhaustion gives NULL, never memory outside the buffer.
        let mut blocks = Vec::new();
        loop {
            let p = heap::malloc(k, 1 << 20);
            if p.is_null() {
                break;
            }
            assert!(inside(p, 1 << 20));
            blocks.push(p);
        }
        assert!(blocks.len() < 6);
        for p in blocks {
            heap::free(p);
        }
        heap::free(small);
        heap::free(big);
        crate::arena::destroy_kind(k).unwrap();
        crate::arena::destroy_kind(tail).unwrap();
        assert!(owner_of(addr + 100).is_none());
        for &g in &whole {
            assert_eq!(MAP.lookup(g), None, "granule {g:#x} unpinned");
        }
        // The range is free again.
        let again = create(addr + 4096, 4096).unwrap();
        crate::arena::destroy_kind(again).unwrap();
    }

    #[test]
    fn bad_input_is_invalid() {
        let _serial = super::super::tests::DYNAMIC_SLOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        assert!(matches!(create(0, 4096), Err(Error::Invalid)));
        assert!(matches!(create(usize::MAX - 10, 4096), Err(Error::Invalid)));
    }
}
