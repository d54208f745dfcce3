//! Per-thread, per-kind magazines: small free blocks kept in front of jemalloc.
//!
//! jemalloc's fast path (`malloc`/`free`) serves only its automatic thread cache, which is shared
//! by everything the thread allocates, so kinds cannot use it. Going through `mallocx`/`dallocx`
//! with an explicit cache costs the generic path every time (≈230 instructions per pair). A
//! magazine is a LIFO stack of free blocks of one jemalloc size class, owned by one thread for
//! one kind: a malloc pops, a free pushes, and jemalloc is called only to refill an empty
//! magazine or to drain a full one. Blocks in a magazine are real jemalloc allocations of the
//! class size, so `malloc_usable_size` and every other jemalloc answer stay exact.

use core::ffi::c_void;
use std::sync::OnceLock;

use crate::jemalloc;

/// Largest request served from magazines.
pub const MAX_SMALL: usize = 4096;
/// Size classes cached (jemalloc has 29 up to 4 KiB with 4 KiB pages; more are not cached).
pub const MAX_BINS: usize = 32;
/// Blocks a magazine holds at most.
pub const CAPACITY: usize = 64;

/// jemalloc's size classes up to [`MAX_SMALL`], read from jemalloc itself.
pub struct Classes {
    /// Class index for request `(size + 7) / 8`.
    of: [u8; MAX_SMALL / 8 + 1],
    /// Size of each class.
    size: [u32; MAX_BINS],
    /// Number of classes.
    count: usize,
    /// Largest request the table covers (MAX_SMALL unless jemalloc has more than MAX_BINS
    /// classes up to it).
    limit: usize,
    /// Bins `0..direct` are jemalloc's size classes of the same index (checked against
    /// jemalloc's own table), so a block's size-class index below it is its bin.
    direct: usize,
}

static CLASSES: OnceLock<Classes> = OnceLock::new();

impl Classes {
    fn build() -> Classes {
        let mut c = Classes {
            of: [0; MAX_SMALL / 8 + 1],
            size: [0; MAX_BINS],
            count: 0,
            limit: 0,
            direct: 0,
        };
        for slot in 1..=MAX_SMALL / 8 {
            let usable = jemalloc::nallocx(slot * 8, 0);
            if c.count == 0 || c.size[c.count - 1] as usize != usable {
                if c.count == MAX_BINS {
                    break;
                }
                c.size[c.count] = usable as u32;
                c.count += 1;
            }
            c.of[slot] = (c.count - 1) as u8;
            c.limit = slot * 8;
        }
        c.of[0] = 0;
        c.direct = (0..c.count)
            .take_while(|&b| jemalloc::size_of_index(b) == Some(c.size[b] as usize))
            .count();
        c
    }

    /// The table, built on first use (from start-up).
    #[inline(always)]
    pub fn get() -> &'static Classes {
        CLASSES.get_or_init(Classes::build)
    }

    /// Bin of a request of `size` (1..=[`Classes::limit`]) bytes.
    #[inline(always)]
    pub fn bin_of(&self, size: usize) -> usize {
        self.of[size.div_ceil(8)] as usize
    }

    /// Largest request served from magazines.
    #[inline(always)]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bins `0..direct()` are jemalloc's size classes of the same index.
    pub fn direct(&self) -> usize {
        self.direct
    }

    /// Bin of a block whose usable size is `usable`, if it is exactly a class.
    #[inline(always)]
    pub fn bin_of_usable(&self, usable: usize) -> Option<usize> {
        if usable == 0 || usable > self.limit {
            return None;
        }
        // Class sizes are multiples of 8: `usable / 8` is their slot (a usable size that is not
        // one fails the compare below).
        let b = self.of[usable / 8] as usize;
        (self.size[b] as usize == usable).then_some(b)
    }

    /// Size of every class (0 past the class count).
    #[inline(always)]
    pub fn sizes(&self) -> &[u32; MAX_BINS] {
        &self.size
    }

    /// Size of class `bin`.
    #[inline(always)]
    pub fn size(&self, bin: usize) -> usize {
        self.size[bin] as usize
    }
}

/// One record's magazines, one per cached class: the block counts side by side (words, so the
/// fast paths index with them as they are; four cache lines), then the stacks, each
/// [`CAPACITY`] pointers (512 bytes, a power of two), so a fast path reaches magazine `b`'s
/// count with a scaled index and its stack with one shift.
#[repr(C)]
pub struct Magazines {
    n: [usize; MAX_BINS],
    items: [[*mut c_void; CAPACITY]; MAX_BINS],
}

impl Magazines {
    /// Every magazine empty.
    #[cfg(test)]
    pub const EMPTY: Magazines = Magazines {
        n: [0; MAX_BINS],
        items: [[core::ptr::null_mut(); CAPACITY]; MAX_BINS],
    };

    /// Take a block from magazine `b` (below [`MAX_BINS`]; a larger index is taken modulo
    /// [`MAX_BINS`], which costs the fast paths one `and` instead of a bounds check).
    #[inline(always)]
    pub fn pop(&mut self, b: usize) -> Option<*mut c_void> {
        debug_assert!(b < MAX_BINS);
        let b = b % MAX_BINS;
        // One compare for both "empty" (the index wraps past the end) and the bounds.
        let i = self.n[b].wrapping_sub(1);
        let p = *self.items[b].get(i)?;
        self.n[b] = i;
        Some(p)
    }

    /// Keep a block in magazine `b` (as in [`Magazines::pop`]); `false` when full.
    #[inline(always)]
    pub fn push(&mut self, b: usize, p: *mut c_void) -> bool {
        debug_assert!(b < MAX_BINS);
        let b = b % MAX_BINS;
        // `get_mut` is the "full" test and the bounds check in one compare.
        let i = self.n[b];
        let Some(slot) = self.items[b].get_mut(i) else {
            return false;
        };
        *slot = p;
        self.n[b] = i + 1;
        true
    }

    /// Forget every block (a record's reuse: its magazines were drained when it was released).
    /// Writes the counts only.
    pub fn forget_all(&mut self) {
        self.n = [0; MAX_BINS];
    }

    /// True when no magazine holds a block.
    #[cfg(test)]
    pub fn all_empty(&self) -> bool {
        self.n.iter().all(|&n| n == 0)
    }

    /// Give back the oldest `count` blocks of magazine `b` (the bottom of the stack) with
    /// `flags`; returns how many were given back.
    pub fn drain(&mut self, b: usize, count: usize, flags: i32) -> usize {
        let n = self.n[b];
        let items = &mut self.items[b];
        let count = count.min(n);
        for &p in &items[..count] {
            jemalloc::dallocx(p, flags);
        }
        items.copy_within(count..n, 0);
        self.n[b] = n - count;
        count
    }

    /// Give back every block of every magazine with `flags`; returns how many.
    pub fn drain_all(&mut self, flags: i32) -> usize {
        (0..MAX_BINS).map(|b| self.drain(b, CAPACITY, flags)).sum()
    }

    /// Refill magazine `b` with up to `count` fresh blocks of `size` bytes; returns how many
    /// were added.
    ///
    /// jemalloc hands out a fresh slab's regions lowest address first; they are stacked in
    /// reverse (the first one on top) so that pops return them in jemalloc's order, ascending,
    /// as memkind 1.14's callers see them. The pop / push fast paths stay as they are.
    pub fn refill(&mut self, b: usize, size: usize, count: usize, flags: i32) -> usize {
        self.refill_with(b, count, || jemalloc::mallocx(size, flags))
    }

    /// [`Magazines::refill`] with blocks from `alloc` (a test seam).
    fn refill_with(
        &mut self,
        b: usize,
        count: usize,
        mut alloc: impl FnMut() -> Option<*mut c_void>,
    ) -> usize {
        let n = self.n[b];
        let items = &mut self.items[b];
        let want = count.min(CAPACITY - n);
        let mut added = 0;
        while added < want {
            match alloc() {
                Some(p) => {
                    items[n + want - 1 - added] = p;
                    added += 1;
                }
                None => break,
            }
        }
        if added < want {
            // Short of blocks: close the gap below the ones taken (their order is kept).
            items.copy_within(n + want - added..n + want, n);
        }
        self.n[b] += added;
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_jemalloc() {
        let c = Classes::get();
        assert!(c.count >= 20 && c.count <= MAX_BINS, "{}", c.count);
        assert_eq!(c.limit(), MAX_SMALL);
        for size in 1..=MAX_SMALL {
            let b = c.bin_of(size);
            assert_eq!(c.size(b), jemalloc::nallocx(size, 0), "size {size}");
            assert_eq!(c.bin_of_usable(c.size(b)), Some(b));
        }
        assert_eq!(c.bin_of_usable(MAX_SMALL + 1), None);
        assert_eq!(c.bin_of_usable(0), None);
        // Every cached class is jemalloc's class of the same index: a block's index is its bin.
        assert_eq!(c.direct, c.count);
        for size in [1, 8, 9, 16, 100, 1024, 3000, MAX_SMALL] {
            let p = jemalloc::mallocx(size, 0).unwrap();
            let b = c.bin_of(size);
            let ind = jemalloc::block_szind(p);
            assert!(ind < c.direct() && ind == b, "size {size}: index {ind}");
            jemalloc::dallocx(p, 0);
        }
        let big = jemalloc::mallocx(MAX_SMALL + 1, 0).unwrap();
        assert!(jemalloc::block_szind(big) >= c.direct());
        // The fast paths' unchecked assumptions (thread.rs): every bin and `direct` fit.
        assert!(c.direct() <= c.count && c.count <= MAX_BINS);
        assert!((1..=c.limit()).all(|n| c.bin_of(n) < c.count));
        jemalloc::dallocx(big, 0);
    }

    #[test]
    fn bin_is_lifo_and_bounded() {
        let mut m = Box::new(Magazines::EMPTY);
        assert_eq!(m.pop(3), None);
        for i in 1..=CAPACITY {
            assert!(m.push(3, i as *mut c_void));
        }
        assert!(!m.push(3, 999 as *mut c_void));
        assert_eq!(m.pop(3), Some(CAPACITY as *mut c_void));
        // The magazines are separate.
        assert_eq!(m.pop(4), None);
        assert!(!m.all_empty());
        m.forget_all();
        assert!(m.all_empty() && m.pop(3).is_none());
        // The stacks' stride is a power of two (the fast paths' shift).
        assert!(core::mem::size_of::<[*mut c_void; CAPACITY]>().is_power_of_two());
    }

    #[test]
    fn refill_pops_in_allocation_order() {
        let mut m = Box::new(Magazines::EMPTY);
        assert!(m.push(3, 1000 as *mut c_void));
        let mut next = 0usize;
        let ascending = || {
            next += 1;
            Some(next as *mut c_void)
        };
        assert_eq!(m.refill_with(3, 8, ascending), 8);
        let got: Vec<usize> = (0..8).map(|_| m.pop(3).unwrap() as usize).collect();
        assert_eq!(
            got,
            (1..=8).collect::<Vec<_>>(),
            "first allocated comes out first"
        );
        assert_eq!(m.pop(3), Some(1000 as *mut c_void));
        // Short refill: 3 of 8, still in order, below them the older block.
        assert!(m.push(3, 1000 as *mut c_void));
        let mut next = 0usize;
        let short = || {
            next += 1;
            (next <= 3).then_some(next as *mut c_void)
        };
        assert_eq!(m.refill_with(3, 8, short), 3);
        let got: Vec<usize> = (0..4).map(|_| m.pop(3).unwrap() as usize).collect();
        assert_eq!(got, vec![1, 2, 3, 1000]);
        assert_eq!(m.pop(3), None);
        // A full magazine takes nothing.
        for i in 0..CAPACITY {
            assert!(m.push(3, (i + 8) as *mut c_void));
        }
        assert_eq!(m.refill_with(3, 8, || Some(1000 as *mut c_void)), 0);
    }
}
