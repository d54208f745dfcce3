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

    /// Bin of a block whose jemalloc size-class index is `ind` ([`jemalloc::block_szind`]), if
    /// that class is cached.
    #[inline(always)]
    pub fn bin_of_szind(&self, ind: usize) -> Option<usize> {
        (ind < self.direct).then_some(ind)
    }

    /// Size of class `bin`.
    #[inline(always)]
    pub fn size(&self, bin: usize) -> usize {
        self.size[bin] as usize
    }
}

/// One magazine.
#[repr(C)]
pub struct Bin {
    n: u32,
    items: [*mut c_void; CAPACITY],
}

impl Bin {
    /// An empty magazine.
    #[cfg(test)]
    pub const EMPTY: Bin = Bin {
        n: 0,
        items: [core::ptr::null_mut(); CAPACITY],
    };

    /// Take a block.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<*mut c_void> {
        // One compare for both "empty" (the index wraps past the end) and the bounds.
        let i = self.n.wrapping_sub(1) as usize;
        let p = *self.items.get(i)?;
        self.n = i as u32;
        Some(p)
    }

    /// Keep a block; `false` when full.
    #[inline(always)]
    pub fn push(&mut self, p: *mut c_void) -> bool {
        // `get_mut` is the "full" test and the bounds check in one compare.
        let i = self.n as usize;
        let Some(slot) = self.items.get_mut(i) else {
            return false;
        };
        *slot = p;
        self.n = i as u32 + 1;
        true
    }

    /// Forget every block (a record's reuse: its magazines were drained when it was released).
    pub fn forget_all(&mut self) {
        self.n = 0;
    }

    /// Give back the oldest `count` blocks (the bottom of the stack) with `flags`; returns how
    /// many were given back.
    pub fn drain(&mut self, count: usize, flags: i32) -> usize {
        let count = count.min(self.n as usize);
        for &p in &self.items[..count] {
            jemalloc::dallocx(p, flags);
        }
        self.items.copy_within(count..self.n as usize, 0);
        self.n -= count as u32;
        count
    }

    /// Refill with up to `count` fresh blocks of `size` bytes; returns how many were added.
    ///
    /// jemalloc hands out a fresh slab's regions lowest address first; they are stacked in
    /// reverse (the first one on top) so that pops return them in jemalloc's order, ascending,
    /// as memkind 1.14's callers see them. The pop / push fast paths stay as they are.
    pub fn refill(&mut self, size: usize, count: usize, flags: i32) -> usize {
        self.refill_with(count, || jemalloc::mallocx(size, flags))
    }

    /// [`Bin::refill`] with blocks from `alloc` (a test seam).
    fn refill_with(
        &mut self,
        count: usize,
        mut alloc: impl FnMut() -> Option<*mut c_void>,
    ) -> usize {
        let n = self.n as usize;
        let want = count.min(CAPACITY - n);
        let mut added = 0;
        while added < want {
            match alloc() {
                Some(p) => {
                    self.items[n + want - 1 - added] = p;
                    added += 1;
                }
                None => break,
            }
        }
        if added < want {
            // Short of blocks: close the gap below the ones taken (their order is kept).
            self.items.copy_within(n + want - added..n + want, n);
        }
        self.n += added as u32;
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
            assert_eq!(
                c.bin_of_szind(jemalloc::block_szind(p)),
                Some(b),
                "size {size}"
            );
            jemalloc::dallocx(p, 0);
        }
        let big = jemalloc::mallocx(MAX_SMALL + 1, 0).unwrap();
        assert_eq!(c.bin_of_szind(jemalloc::block_szind(big)), None);
        jemalloc::dallocx(big, 0);
    }

    #[test]
    fn bin_is_lifo_and_bounded() {
        let mut b = Bin::EMPTY;
        assert_eq!(b.pop(), None);
        for i in 1..=CAPACITY {
            assert!(b.push(i as *mut c_void));
        }
        assert!(!b.push(999 as *mut c_void));
        assert_eq!(b.pop(), Some(CAPACITY as *mut c_void));
    }

    #[test]
    fn refill_pops_in_allocation_order() {
        let mut b = Bin::EMPTY;
        assert!(b.push(1000 as *mut c_void));
        let mut next = 0usize;
        let ascending = || {
            next += 1;
            Some(next as *mut c_void)
        };
        assert_eq!(b.refill_with(8, ascending), 8);
        let got: Vec<usize> = (0..8).map(|_| b.pop().unwrap() as usize).collect();
        assert_eq!(
            got,
            (1..=8).collect::<Vec<_>>(),
            "first allocated comes out first"
        );
        assert_eq!(b.pop(), Some(1000 as *mut c_void));
        // Short refill: 3 of 8, still in order, below them the older block.
        assert!(b.push(1000 as *mut c_void));
        let mut next = 0usize;
        let short = || {
            next += 1;
            (next <= 3).then_some(next as *mut c_void)
        };
        assert_eq!(b.refill_with(8, short), 3);
        let got: Vec<usize> = (0..4).map(|_| b.pop().unwrap() as usize).collect();
        assert_eq!(got, vec![1, 2, 3, 1000]);
        assert_eq!(b.pop(), None);
        // A full magazine takes nothing.
        for i in 0..CAPACITY {
            assert!(b.push((i + 8) as *mut c_void));
        }
        assert_eq!(b.refill_with(8, || Some(1000 as *mut c_void)), 0);
    }
}
