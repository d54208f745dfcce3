//! Fuzz target: sequences of calls on memkind's exported C ABI (the `memkind` rlib linked in, its
//! `#[no_mangle]` symbols called as a C program calls them), checked against a model.
//!
//! The input is decoded into operations (see [`Op`]) over several kinds at once: static kinds
//! (DEFAULT, REGULAR, INTERLEAVE, HIGHEST_CAPACITY*, HBW_PREFERRED, HBW, which is usually
//! unavailable here, and HUGETLB, only allocated and freed, never touched), PMEM kinds in a temp directory, fixed kinds on buffers the
//! harness owns, and memtier memories built over them. The model checks, after every call:
//! - live blocks never overlap (over their usable sizes) and keep their fill pattern (head and
//!   tail bytes), across realloc too; calloc gives zeros;
//! - usable size ≥ requested; alignment honoured;
//! - `memkind_detect_kind` names the kind for DEFAULT, REGULAR, INTERLEAVE, PMEM and fixed
//!   blocks; memtier blocks belong to one of the memory's tiers;
//! - 1.14's documented errors: malloc(k, 0) = NULL; posix_memalign EINVAL for a bad alignment
//!   with `*memptr` and errno untouched, size 0 → NULL and 0; realloc(k, p, 0) frees;
//!   realloc(NULL, NULL, n) = NULL + EINVAL; calloc overflow = NULL + ENOMEM; unavailable kinds
//!   NULL + ENOMEM;
//! - foreign pointers (a glibc block, a stack address, a fixed buffer's unused bytes) and
//!   interior pointers never crash: detect_kind, usable_size (0, or the containing block's
//!   usable size: `alloc/src/arena/heap.rs`, `usable_size`), free (ignored), realloc (EINVAL).
//!
//! Each input starts from an empty model and ends by freeing, deleting and destroying what it
//! made, so inputs do not depend on each other (beyond the library's caches).
#![no_main]
#![allow(
    clippy::missing_safety_doc,
    unsafe_code,
    reason = "a fuzz target over a C ABI"
)]

#[allow(dead_code, reason = "the shared declarations; not every one is fuzzed")]
#[path = "../../src/capi.rs"]
mod capi;

use capi::*;
use core::ffi::{c_int, c_void};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::OnceLock;

/// Caps that keep one input cheap.
const MAX_OPS: usize = 512;
const MAX_BLOCKS: usize = 96;
const MAX_LIVE_BYTES: usize = 160 << 20;
const MAX_PMEM: usize = 2;
const MAX_FIXED: usize = 2;
const MAX_MEMORIES: usize = 2;
/// Bytes of a block's head and tail that carry its fill pattern.
const HEAD: usize = 512;
const TAIL: usize = 64;

/// memkind's error for an unsupported argument (`MEMKIND_ERROR_INVALID`).
const ERROR_INVALID: c_int = -13;

/// Byte reader: yields zeros once the input is exhausted.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// A size: mostly small, sometimes large, rarely a few MiB, now and then 0 or absurd.
    fn size(&mut self) -> usize {
        let class = self.u8();
        match class % 16 {
            0 => 0,
            1..=6 => 1 + (self.u8() as usize),
            7..=10 => 1 + (self.u16() as usize % 16384),
            11..=12 => 1 + (self.u32() as usize % (1 << 20)),
            13 => 1 + (self.u32() as usize % (8 << 20)),
            14 => [
                4096,
                8192,
                12288,
                14336,
                16384,
                16385,
                2 << 20,
                (2 << 20) + 1,
            ][self.u8() as usize % 8],
            _ => match self.u8() % 4 {
                0 => usize::MAX,
                1 => usize::MAX / 2 + 1,
                2 => 1 << 48,
                _ => isize::MAX as usize,
            },
        }
    }
    /// An alignment for posix_memalign: valid most of the time.
    fn align(&mut self) -> usize {
        let b = self.u8();
        match b % 8 {
            0 => [0, 1, 2, 4, 3, 24, 48, 4097, usize::MAX, 1 << 63][self.u8() as usize % 10],
            1..=5 => 8 << (self.u8() % 10),
            6 => 4096 << (self.u8() % 4),
            _ => 2 << 20,
        }
    }
}

/// errno of this thread.
fn errno() -> i32 {
    capi::errno()
}

fn set_errno(e: i32) {
    capi::set_errno(e)
}

/// Which kind a slot is.
enum SlotKind {
    /// A static kind: `exact` when detect_kind must name it.
    Static { exact: bool },
    /// A PMEM kind (its max size: 0 = unlimited).
    Pmem { max: usize },
    /// A fixed kind on a buffer the harness owns (`layout` of the allocation at `buf`).
    Fixed {
        buf: *mut u8,
        layout: std::alloc::Layout,
        start: usize,
        len: usize,
    },
}

struct Slot {
    kind: MemkindT,
    name: &'static str,
    available: bool,
    what: SlotKind,
}

impl Slot {
    fn exact(&self) -> bool {
        !matches!(self.what, SlotKind::Static { exact: false })
    }
    /// May run out of memory for ordinary sizes (bounded kinds).
    fn bounded(&self) -> bool {
        match self.what {
            SlotKind::Static { .. } => false,
            SlotKind::Pmem { max } => max != 0,
            SlotKind::Fixed { .. } => true,
        }
    }
    fn dynamic(&self) -> bool {
        !matches!(self.what, SlotKind::Static { .. })
    }
}

/// Where a block came from.
#[derive(Clone, Copy, PartialEq)]
enum From {
    /// A memkind_* call on kind slot `i` (by its handle, kept even after the slot moves).
    Kind(MemkindT),
    /// A memtier_* call on memory `m` (one of its tiers' kinds owns it: `owner`).
    Tier,
}

#[derive(Clone, Copy)]
struct Block {
    req: usize,
    usable: usize,
    from: From,
    /// What detect_kind said at allocation (validated then).
    owner: MemkindT,
    seed: u8,
}

struct Memory {
    mem: MemoryT,
    tiers: Vec<MemkindT>,
}

struct Model {
    slots: Vec<Slot>,
    blocks: BTreeMap<usize, Block>,
    live_bytes: usize,
    memories: Vec<Memory>,
    next_seed: u8,
    /// A glibc block and a static: foreign memory.
    glibc: *mut u8,
}

fn pmem_dir() -> &'static CString {
    static DIR: OnceLock<CString> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("memkind-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir for PMEM kinds");
        CString::new(d.into_os_string().into_encoded_bytes()).unwrap()
    })
}

/// The static kinds the harness uses, with availability read once.
fn static_slots() -> Vec<Slot> {
    let list: [(MemkindT, &'static str, bool); 8] = [
        (MEMKIND_DEFAULT, "DEFAULT", true),
        (MEMKIND_REGULAR, "REGULAR", true),
        (MEMKIND_INTERLEAVE, "INTERLEAVE", true),
        (MEMKIND_HIGHEST_CAPACITY, "HIGHEST_CAPACITY", false),
        (
            MEMKIND_HIGHEST_CAPACITY_PREFERRED,
            "HIGHEST_CAPACITY_PREFERRED",
            false,
        ),
        (
            MEMKIND_HIGHEST_CAPACITY_LOCAL,
            "HIGHEST_CAPACITY_LOCAL",
            false,
        ),
        (MEMKIND_HBW_PREFERRED, "HBW_PREFERRED", false),
        (MEMKIND_HBW, "HBW", false),
    ];
    list.into_iter()
        .map(|(kind, name, exact)| Slot {
            kind,
            name,
            available: memkind_check_available(kind) == 0,
            what: SlotKind::Static { exact },
        })
        .collect()
}

/// Fill pattern byte `i` of a block seeded `seed`.
#[inline]
fn pat(seed: u8, i: usize) -> u8 {
    seed.wrapping_add((i as u8).wrapping_mul(31)) ^ ((i >> 8) as u8)
}

/// The offsets of a block of `n` bytes that carry the pattern.
fn marked(n: usize) -> impl Iterator<Item = usize> {
    let head = n.min(HEAD);
    let tail_start = n.saturating_sub(TAIL).max(head);
    (0..head).chain(tail_start..n)
}

fn fill(p: *mut u8, n: usize, seed: u8) {
    for i in marked(n) {
        // SAFETY: `p` is a live block of at least `n` bytes.
        unsafe { p.add(i).write(pat(seed, i)) };
    }
}

fn check_fill(p: *const u8, n: usize, seed: u8, what: &str) {
    for i in marked(n) {
        // SAFETY: `p` is a live block of at least `n` bytes.
        let b = unsafe { p.add(i).read() };
        assert_eq!(
            b,
            pat(seed, i),
            "{what}: block {p:p} (n {n}) byte {i} changed"
        );
    }
}

impl Model {
    fn new() -> Model {
        static STATICS: OnceLock<Vec<(usize, &'static str, bool, bool)>> = OnceLock::new();
        let statics = STATICS.get_or_init(|| {
            static_slots()
                .into_iter()
                .map(|s| (s.kind as usize, s.name, s.available, s.exact()))
                .collect()
        });
        Model {
            slots: statics
                .iter()
                .map(|&(k, name, available, exact)| Slot {
                    kind: k as MemkindT,
                    name,
                    available,
                    what: SlotKind::Static { exact },
                })
                .collect(),
            blocks: BTreeMap::new(),
            live_bytes: 0,
            memories: Vec::new(),
            next_seed: 1,
            // SAFETY: plain glibc malloc.
            glibc: unsafe { libc::malloc(256) }.cast(),
        }
    }

    fn slot_of(&self, kind: MemkindT) -> Option<&Slot> {
        self.slots.iter().find(|s| s.kind == kind)
    }

    fn pick_slot(&self, b: u8) -> usize {
        b as usize % self.slots.len()
    }

    /// The key of the `b`-th live block (cyclic), if any.
    fn pick_block(&self, b: u16) -> Option<usize> {
        if self.blocks.is_empty() {
            return None;
        }
        self.blocks
            .keys()
            .nth(b as usize % self.blocks.len())
            .copied()
    }

    fn room(&self, size: usize) -> bool {
        self.blocks.len() < MAX_BLOCKS && self.live_bytes.saturating_add(size) <= MAX_LIVE_BYTES
    }

    /// The kinds a block allocated from `from` may belong to.
    fn check_owner(&self, p: *mut c_void, from: From, tiers: &[MemkindT]) -> MemkindT {
        let d = memkind_detect_kind(p);
        match from {
            From::Kind(k) => {
                if let Some(s) = self.slot_of(k) {
                    if s.exact() {
                        assert_eq!(d, k, "detect_kind of a {} block {p:p}", s.name);
                    }
                }
            }
            From::Tier => {
                if tiers
                    .iter()
                    .all(|&k| self.slot_of(k).is_some_and(Slot::exact))
                {
                    assert!(
                        tiers.contains(&d),
                        "memtier block {p:p} in a kind of no tier"
                    );
                }
            }
        }
        assert!(!d.is_null(), "detect_kind of a live block is NULL");
        d
    }

    /// Record a fresh block: checks, then the fill pattern.
    fn add(
        &mut self,
        p: *mut c_void,
        req: usize,
        align: usize,
        from: From,
        tiers: &[MemkindT],
        zeroed: bool,
    ) {
        let a = p as usize;
        assert_eq!(a % align.max(1), 0, "{p:p} not aligned to {align}");
        let usable = memkind_malloc_usable_size(core::ptr::null(), p);
        assert!(usable >= req, "usable {usable} < requested {req} at {p:p}");
        assert_eq!(memtier_usable_size(p), usable);
        let owner = self.check_owner(p, from, tiers);
        if let From::Kind(k) = from {
            assert_eq!(memkind_malloc_usable_size(k, p), usable);
        }
        // No overlap with the neighbours (usable extents).
        if let Some((&q, b)) = self.blocks.range(..=a).next_back() {
            assert!(
                q + b.usable <= a,
                "{p:p} overlaps the block at {q:#x} (+{})",
                b.usable
            );
        }
        if let Some((&q, _)) = self.blocks.range(a..).next() {
            assert!(
                a + usable <= q,
                "{p:p} (+{usable}) overlaps the block at {q:#x}"
            );
        }
        if zeroed {
            for i in marked(req) {
                // SAFETY: a live block of `req` bytes.
                assert_eq!(
                    unsafe { *(p as *const u8).add(i) },
                    0,
                    "calloc byte {i} of {p:p}"
                );
            }
        }
        let seed = self.next_seed;
        self.next_seed = self.next_seed.wrapping_add(37);
        fill(p.cast(), req, seed);
        self.live_bytes += req;
        self.blocks.insert(
            a,
            Block {
                req,
                usable,
                from,
                owner,
                seed,
            },
        );
    }

    fn take(&mut self, a: usize) -> Block {
        let b = self.blocks.remove(&a).expect("live block");
        check_fill(a as *const u8, b.req, b.seed, "before free/realloc");
        self.live_bytes -= b.req;
        b
    }

    fn tiers_of(&self, from: From, owner: MemkindT) -> Vec<MemkindT> {
        match from {
            From::Kind(_) => Vec::new(),
            From::Tier => vec![owner],
        }
    }

    /// NULL from an allocation of `req` bytes in `slot`: allowed only for bounded or unavailable
    /// kinds and for sizes beyond the cap, always with ENOMEM.
    fn null_ok(&self, kind: MemkindT, req: usize, e: i32, what: &str) {
        let s = self.slot_of(kind);
        // HUGETLB's availability follows the system's hugepage pool, which other processes
        // change: asked again.
        let excused = req > (1usize << 40)
            || s.is_none_or(|s| s.bounded() || !s.available)
            || memkind_check_available(kind) != 0;
        assert!(
            excused,
            "{what}: NULL from {} for {req} bytes",
            s.map_or("?", |s| s.name)
        );
        assert_eq!(e, libc::ENOMEM, "{what}: NULL without ENOMEM ({e})");
    }

    fn malloc(&mut self, slot: usize, size: usize) {
        let kind = self.slots[slot].kind;
        if size == 0 {
            assert!(memkind_malloc(kind, 0).is_null(), "malloc(0) is NULL");
            return;
        }
        if !self.room(size) {
            return;
        }
        set_errno(0);
        let p = memkind_malloc(kind, size);
        if p.is_null() {
            return self.null_ok(kind, size, errno(), "malloc");
        }
        self.add(p, size, 1, From::Kind(kind), &[], false);
    }

    fn calloc(&mut self, slot: usize, num: usize, size: usize) {
        let kind = self.slots[slot].kind;
        let total = num.checked_mul(size);
        if total.is_some_and(|t| !self.room(t)) {
            return;
        }
        set_errno(0);
        let p = memkind_calloc(kind, num, size);
        match total {
            None => {
                assert!(p.is_null(), "calloc overflow gave a block");
                assert_eq!(errno(), libc::ENOMEM, "calloc overflow errno");
            }
            Some(0) => assert!(p.is_null(), "calloc of 0 bytes"),
            Some(t) if p.is_null() => self.null_ok(kind, t, errno(), "calloc"),
            Some(t) => self.add(p, t, 1, From::Kind(kind), &[], true),
        }
    }

    fn memalign(&mut self, slot: usize, align: usize, size: usize) {
        let kind = self.slots[slot].kind;
        if !self.room(size) {
            return;
        }
        let sentinel = 0x5a5a_usize as *mut c_void;
        let mut out = sentinel;
        set_errno(1234);
        let rc = memkind_posix_memalign(kind, &mut out, align, size);
        assert_eq!(errno(), 1234, "posix_memalign changed errno");
        let valid = align.is_power_of_two() && align >= core::mem::size_of::<*mut c_void>();
        if !valid {
            assert_eq!(rc, libc::EINVAL, "alignment {align}");
            assert_eq!(out, sentinel, "*memptr written on EINVAL");
            return;
        }
        if size == 0 {
            assert_eq!(rc, 0, "size 0");
            assert!(out.is_null(), "size 0 gives NULL");
            return;
        }
        if rc != 0 {
            assert_eq!(rc, libc::ENOMEM, "posix_memalign rc");
            let s = self.slot_of(kind);
            assert!(
                size > (1 << 40)
                    || align > (1 << 30)
                    || s.is_none_or(|s| s.bounded() || !s.available)
                    || memkind_check_available(kind) != 0,
                "posix_memalign({align}, {size}) failed on {}",
                s.map_or("?", |s| s.name)
            );
            return;
        }
        self.add(out, size, align, From::Kind(kind), &[], false);
    }

    /// realloc a live block through `how` (0 its kind, 1 NULL kind, 2 another slot's kind).
    fn realloc(&mut self, key: usize, how: u8, other: usize, size: usize) {
        let b = self.blocks[&key];
        let target = match (how % 3, b.from) {
            (0, From::Kind(k)) => Some(k),
            (0, From::Tier) => None,
            (1, _) => None,
            _ => Some(self.slots[other].kind),
        };
        if size != 0 && !self.room(size.saturating_sub(b.req)) {
            return;
        }
        let p = key as *mut c_void;
        check_fill(p as *const u8, b.req, b.seed, "before realloc");
        set_errno(0);
        let q = memkind_realloc(target.unwrap_or(core::ptr::null()), p, size);
        if size == 0 {
            assert!(q.is_null(), "realloc(p, 0) is NULL");
            self.blocks.remove(&key);
            self.live_bytes -= b.req;
            return;
        }
        if q.is_null() {
            // The block is untouched.
            let e = errno();
            check_fill(p as *const u8, b.req, b.seed, "after a failed realloc");
            let kind = target.unwrap_or(b.owner);
            return self.null_ok(kind, size, e, "realloc");
        }
        self.blocks.remove(&key);
        self.live_bytes -= b.req;
        let keep = b.req.min(size);
        for i in marked(b.req).filter(|&i| i < keep) {
            // SAFETY: q is a live block of at least `size` bytes.
            let v = unsafe { *(q as *const u8).add(i) };
            assert_eq!(
                v,
                pat(b.seed, i),
                "realloc lost byte {i} ({} -> {size})",
                b.req
            );
        }
        let from = match target {
            Some(k) => From::Kind(k),
            None => match b.from {
                From::Kind(_) => From::Kind(b.owner),
                From::Tier => From::Tier,
            },
        };
        // A realloc with a NULL kind keeps the owner; a named kind is where the block lands.
        let tiers = self.tiers_of(from, b.owner);
        self.add(q, size, 1, from, &tiers, false);
    }

    fn free(&mut self, key: usize, how: u8, other: usize) {
        let b = self.take(key);
        let p = key as *mut c_void;
        match how % 4 {
            0 => match b.from {
                From::Kind(k) => memkind_free(k, p),
                From::Tier => memtier_kind_free(core::ptr::null(), p),
            },
            1 => memkind_free(core::ptr::null(), p),
            2 => memkind_free(self.slots[other].kind, p),
            _ => memtier_kind_free(core::ptr::null(), p),
        }
    }

    /// Calls on an address inside a live block: never crash; detect_kind names the block's
    /// kind; usable size is 0 or the block's.
    fn interior(&mut self, key: usize, frac: u16) {
        let b = self.blocks[&key];
        if b.usable < 2 {
            return;
        }
        let off = 1 + (frac as usize * (b.usable - 1)) / 65536;
        let q = (key + off) as *mut c_void;
        assert_eq!(
            memkind_detect_kind(q),
            b.owner,
            "detect_kind of {key:#x}+{off}"
        );
        for n in [
            memkind_malloc_usable_size(core::ptr::null(), q),
            memtier_usable_size(q),
        ] {
            assert!(
                n == 0 || n == b.usable,
                "usable size of {key:#x}+{off}: {n} (block {})",
                b.usable
            );
        }
    }

    /// Calls on pointers memkind never handed out.
    fn foreign(&mut self, which: u8, op: u8) {
        let local = [0u64; 4];
        let fixed_gap = self.slots.iter().find_map(|s| match s.what {
            SlotKind::Fixed { start, len, .. } if len > 0 => Some(start + len - 1),
            _ => None,
        });
        let (p, ours_maybe) = match which % 4 {
            0 => (self.glibc.cast::<c_void>(), false),
            1 => (local.as_ptr() as *mut c_void, false),
            2 => (usize::MAX as *mut c_void, false),
            // The last byte of a fixed kind's buffer: a byte of ours that may or may not be in a
            // block: only the read-only calls.
            _ => match fixed_gap {
                Some(a) => (a as *mut c_void, true),
                None => return,
            },
        };
        if ours_maybe {
            let _ = memkind_detect_kind(p);
            let _ = memkind_malloc_usable_size(core::ptr::null(), p);
            let _ = memtier_usable_size(p);
            return;
        }
        match op % 5 {
            0 => assert_eq!(
                memkind_detect_kind(p),
                MEMKIND_DEFAULT,
                "detect of foreign {p:p}"
            ),
            1 => {
                assert_eq!(memkind_malloc_usable_size(core::ptr::null(), p), 0);
                assert_eq!(memtier_usable_size(p), 0);
            }
            2 => {
                memkind_free(core::ptr::null(), p);
                memkind_free(MEMKIND_REGULAR, p);
                memtier_kind_free(core::ptr::null(), p);
            }
            3 => {
                set_errno(0);
                assert!(memkind_realloc(core::ptr::null(), p, 64).is_null());
                assert_eq!(errno(), libc::EINVAL, "realloc of a foreign pointer");
            }
            _ => {
                set_errno(0);
                assert!(memkind_realloc(MEMKIND_DEFAULT, p, 64).is_null());
                assert_eq!(errno(), libc::EINVAL, "realloc of a foreign pointer");
            }
        }
        if which % 4 == 0 {
            // The glibc block is still glibc's.
            // SAFETY: a live 256-byte glibc block.
            unsafe { self.glibc.write_bytes(0x11, 256) };
        }
    }

    fn check(&self, key: usize) {
        let b = &self.blocks[&key];
        check_fill(key as *const u8, b.req, b.seed, "check");
        assert_eq!(
            memkind_malloc_usable_size(core::ptr::null(), key as *mut c_void),
            b.usable
        );
        assert_eq!(memkind_detect_kind(key as *mut c_void), b.owner);
    }

    fn create_pmem(&mut self, sel: u8) {
        if self
            .slots
            .iter()
            .filter(|s| matches!(s.what, SlotKind::Pmem { .. }))
            .count()
            >= MAX_PMEM
        {
            return;
        }
        let max = match sel % 4 {
            0 | 1 => 0,
            2 => (16 << 20) + (sel as usize) * 4096,
            _ => 4096,
        };
        let mut k: MemkindT = core::ptr::null();
        let rc = memkind_create_pmem(pmem_dir().as_ptr(), max, &mut k);
        if max != 0 && max < 16 << 20 {
            assert_eq!(rc, ERROR_INVALID, "create_pmem with max {max}");
            return;
        }
        assert_eq!(rc, 0, "create_pmem({max})");
        assert!(!k.is_null());
        assert_eq!(memkind_check_available(k), 0);
        self.slots.push(Slot {
            kind: k,
            name: "PMEM",
            available: true,
            what: SlotKind::Pmem { max },
        });
    }

    fn create_fixed(&mut self, sel: u8, off: u8) {
        if self
            .slots
            .iter()
            .filter(|s| matches!(s.what, SlotKind::Fixed { .. }))
            .count()
            >= MAX_FIXED
        {
            return;
        }
        let len = [4096usize, 65536, 1 << 20, (3 << 20) + 123, 300][sel as usize % 5];
        let off = off as usize % 64;
        let layout = std::alloc::Layout::from_size_align(len + 64, 4096).unwrap();
        // SAFETY: a non-zero layout.
        let buf = unsafe { std::alloc::alloc(layout) };
        assert!(!buf.is_null());
        let start = buf as usize + off;
        let mut k: MemkindT = core::ptr::null();
        let rc = memkind_create_fixed(start as *mut c_void, len, &mut k);
        if rc != 0 {
            // SAFETY: allocated above, not handed to memkind.
            unsafe { std::alloc::dealloc(buf, layout) };
            return;
        }
        self.slots.push(Slot {
            kind: k,
            name: "FIXED",
            available: true,
            what: SlotKind::Fixed {
                buf,
                layout,
                start,
                len,
            },
        });
    }

    /// Destroy dynamic slot `i`: memories over it first, its blocks go with it.
    fn destroy(&mut self, i: usize) {
        let k = self.slots[i].kind;
        let mut j = 0;
        while j < self.memories.len() {
            if self.memories[j].tiers.contains(&k) {
                self.delete_memory(j);
            } else {
                j += 1;
            }
        }
        let gone: Vec<usize> = self
            .blocks
            .iter()
            .filter(|(_, b)| b.owner == k)
            .map(|(&a, _)| a)
            .collect();
        for a in gone {
            let b = self.blocks.remove(&a).unwrap();
            self.live_bytes -= b.req;
        }
        assert_eq!(memkind_destroy_kind(k), 0, "destroy {}", self.slots[i].name);
        let s = self.slots.remove(i);
        if let SlotKind::Fixed { buf, layout, .. } = s.what {
            // SAFETY: the kind over the buffer is destroyed.
            unsafe { std::alloc::dealloc(buf, layout) };
        }
    }

    fn build_memory(&mut self, policy: u8, picks: [u8; 3], ratios: [u8; 3]) {
        if self.memories.len() >= MAX_MEMORIES {
            return;
        }
        let b = memtier_builder_new((policy % 3) as c_int);
        if b.is_null() {
            assert!(policy % 3 >= 2, "builder_new({})", policy % 3);
            return;
        }
        let ntiers = 1 + (picks[0] as usize % 3);
        let mut tiers = Vec::new();
        for t in 0..ntiers {
            let s = &self.slots[self.pick_slot(picks[t])];
            let rc = memtier_builder_add_tier(b, s.kind, 1 + (ratios[t] % 4) as u32);
            if rc == 0 {
                tiers.push(s.kind);
            }
        }
        let m = memtier_builder_construct_memtier_memory(b);
        memtier_builder_delete(b);
        if !m.is_null() {
            assert!(!tiers.is_empty());
            self.memories.push(Memory { mem: m, tiers });
        }
    }

    fn delete_memory(&mut self, j: usize) {
        let m = self.memories.remove(j);
        memtier_delete_memtier_memory(m.mem);
    }

    fn tier_op(&mut self, j: u8, op: u8, size: usize, align: usize, key: u16) {
        if self.memories.is_empty() {
            return;
        }
        let j = j as usize % self.memories.len();
        let mem = self.memories[j].mem;
        let tiers = self.memories[j].tiers.clone();
        let any_bounded_or_off = tiers.iter().any(|&k| {
            self.slot_of(k)
                .is_none_or(|s| s.bounded() || !s.available || s.dynamic())
                || memkind_check_available(k) != 0
        });
        match op % 4 {
            0 | 1 if size > 0 && self.room(size) => {
                let zero = op % 4 == 1;
                set_errno(0);
                let p = if zero {
                    memtier_calloc(mem, 1, size)
                } else {
                    memtier_malloc(mem, size)
                };
                if p.is_null() {
                    assert!(
                        size > 1 << 40 || any_bounded_or_off,
                        "memtier alloc of {size} failed"
                    );
                    return;
                }
                self.add(p, size, 1, From::Tier, &tiers, zero);
            }
            2 if size > 0 && self.room(size) => {
                let mut out: *mut c_void = core::ptr::null_mut();
                let rc = memtier_posix_memalign(mem, &mut out, align, size);
                let valid = align.is_power_of_two() && align >= 8;
                if !valid {
                    assert_eq!(rc, libc::EINVAL, "memtier_posix_memalign({align})");
                    return;
                }
                if rc != 0 {
                    assert!(size > 1 << 40 || align > 1 << 30 || any_bounded_or_off);
                    return;
                }
                self.add(out, size, align, From::Tier, &tiers, false);
            }
            3 => {
                // memtier_realloc of a live memtier block into this memory.
                let Some(a) = self.pick_block(key) else {
                    return;
                };
                let b = self.blocks[&a];
                if b.from != From::Tier || size == 0 || !self.room(size) {
                    return;
                }
                check_fill(a as *const u8, b.req, b.seed, "before memtier_realloc");
                let q = memtier_realloc(mem, a as *mut c_void, size);
                if q.is_null() {
                    check_fill(
                        a as *const u8,
                        b.req,
                        b.seed,
                        "after failed memtier_realloc",
                    );
                    return;
                }
                self.blocks.remove(&a);
                self.live_bytes -= b.req;
                let keep = b.req.min(size);
                for i in marked(b.req).filter(|&i| i < keep) {
                    // SAFETY: a live block of `size` bytes.
                    assert_eq!(unsafe { *(q as *const u8).add(i) }, pat(b.seed, i));
                }
                // In place or in one of this memory's tiers, or (moved within its kind) the
                // old kind.
                let mut ok = tiers.clone();
                ok.push(b.owner);
                self.add(q, size, 1, From::Tier, &ok, false);
            }
            _ => {}
        }
    }

    /// Free everything, delete memories, destroy dynamic kinds.
    fn teardown(mut self) {
        let keys: Vec<usize> = self.blocks.keys().copied().collect();
        for a in keys {
            self.free(a, 1, 0);
        }
        while !self.memories.is_empty() {
            self.delete_memory(0);
        }
        while let Some(i) = self.slots.iter().position(Slot::dynamic) {
            self.destroy(i);
        }
        // SAFETY: the glibc block of `new`.
        unsafe { libc::free(self.glibc.cast()) };
    }
}

/// One decoded operation, named for the corpus's sake (see tests/fuzz/README.md).
#[derive(Debug)]
enum Op {
    Malloc,
    Calloc,
    Memalign,
    Realloc,
    ReallocNull,
    Free,
    Interior,
    Foreign,
    Check,
    CreatePmem,
    CreateFixed,
    Destroy,
    BuildMemory,
    TierOp,
    DeleteMemory,
    Unavailable,
}

const OPS: [Op; 16] = [
    Op::Malloc,
    Op::Calloc,
    Op::Memalign,
    Op::Realloc,
    Op::ReallocNull,
    Op::Free,
    Op::Interior,
    Op::Foreign,
    Op::Check,
    Op::CreatePmem,
    Op::CreateFixed,
    Op::Destroy,
    Op::BuildMemory,
    Op::TierOp,
    Op::DeleteMemory,
    Op::Unavailable,
];

fn run(data: &[u8]) {
    let mut m = Model::new();
    let mut inp = Input { data, pos: 0 };
    let mut n = 0;
    while !inp.done() && n < MAX_OPS {
        n += 1;
        let op = &OPS[inp.u8() as usize % OPS.len()];
        match op {
            Op::Malloc => {
                let s = m.pick_slot(inp.u8());
                let size = inp.size();
                m.malloc(s, size);
            }
            Op::Calloc => {
                let s = m.pick_slot(inp.u8());
                let (num, size) = match inp.u8() % 4 {
                    0 => (usize::MAX / 2, 3),
                    1 => (0, inp.size()),
                    _ => (1 + inp.u8() as usize % 16, inp.size().min(1 << 20)),
                };
                m.calloc(s, num, size);
            }
            Op::Memalign => {
                let s = m.pick_slot(inp.u8());
                let align = inp.align();
                let size = inp.size();
                m.memalign(s, align, size);
            }
            Op::Realloc => {
                let k = inp.u16();
                let how = inp.u8();
                let other = m.pick_slot(inp.u8());
                let size = inp.size();
                if let Some(a) = m.pick_block(k) {
                    m.realloc(a, how, other, size);
                }
            }
            Op::ReallocNull => {
                let s = m.pick_slot(inp.u8());
                let size = inp.size();
                let kind = m.slots[s].kind;
                set_errno(0);
                assert!(memkind_realloc(core::ptr::null(), core::ptr::null_mut(), size).is_null());
                assert_eq!(errno(), libc::EINVAL, "realloc(NULL, NULL, n)");
                if size == 0 {
                    assert!(memkind_realloc(kind, core::ptr::null_mut(), 0).is_null());
                } else if m.room(size) {
                    set_errno(0);
                    let p = memkind_realloc(kind, core::ptr::null_mut(), size);
                    if p.is_null() {
                        m.null_ok(kind, size, errno(), "realloc(k, NULL, n)");
                    } else {
                        m.add(p, size, 1, From::Kind(kind), &[], false);
                    }
                }
            }
            Op::Free => {
                let k = inp.u16();
                let how = inp.u8();
                let other = m.pick_slot(inp.u8());
                if let Some(a) = m.pick_block(k) {
                    m.free(a, how, other);
                } else {
                    memkind_free(m.slots[other].kind, core::ptr::null_mut());
                }
            }
            Op::Interior => {
                let k = inp.u16();
                let frac = inp.u16();
                if let Some(a) = m.pick_block(k) {
                    m.interior(a, frac);
                }
            }
            Op::Foreign => {
                let (w, o) = (inp.u8(), inp.u8());
                m.foreign(w, o);
            }
            Op::Check => {
                let k = inp.u16();
                if let Some(a) = m.pick_block(k) {
                    m.check(a);
                }
            }
            Op::CreatePmem => {
                let s = inp.u8();
                m.create_pmem(s);
            }
            Op::CreateFixed => {
                let (s, o) = (inp.u8(), inp.u8());
                m.create_fixed(s, o);
            }
            Op::Destroy => {
                let b = inp.u8();
                let dynamic: Vec<usize> = (0..m.slots.len())
                    .filter(|&i| m.slots[i].dynamic())
                    .collect();
                if !dynamic.is_empty() {
                    m.destroy(dynamic[b as usize % dynamic.len()]);
                }
            }
            Op::BuildMemory => {
                let policy = inp.u8();
                let picks = [inp.u8(), inp.u8(), inp.u8()];
                let ratios = [inp.u8(), inp.u8(), inp.u8()];
                m.build_memory(policy, picks, ratios);
            }
            Op::TierOp => {
                let (j, op) = (inp.u8(), inp.u8());
                let size = inp.size();
                let align = inp.align();
                let key = inp.u16();
                m.tier_op(j, op, size, align, key);
            }
            Op::DeleteMemory => {
                let j = inp.u8();
                if !m.memories.is_empty() {
                    let j = j as usize % m.memories.len();
                    m.delete_memory(j);
                }
            }
            Op::Unavailable => {
                // Every unavailable kind: NULL + ENOMEM, whatever the size.
                let size = 1 + inp.u8() as usize;
                // HUGETLB is only asked here, never written to: when hugepages are reserved,
                // a purged (MADV_DONTNEED) hugetlb range that jemalloc reuses faults with
                // SIGBUS once the pool is empty (found by the long run while other jobs changed
                // nr_hugepages; left to the hugetlb hooks, see tests/fuzz/README.md).
                let hugetlb = Slot {
                    kind: MEMKIND_HUGETLB,
                    name: "HUGETLB",
                    available: false,
                    what: SlotKind::Static { exact: false },
                };
                let probe = m.slots.iter().filter(|s| !s.available).chain([&hugetlb]);
                for s in probe {
                    set_errno(0);
                    let p = memkind_malloc(s.kind, size);
                    if p.is_null() {
                        assert_eq!(errno(), libc::ENOMEM, "{}", s.name);
                    } else {
                        // Hugepages reserved since start-up (another process): available now.
                        assert_eq!(
                            memkind_check_available(s.kind),
                            0,
                            "{} is unavailable",
                            s.name
                        );
                        memkind_free(s.kind, p);
                    }
                }
            }
        }
    }
    m.teardown();
}

fuzz_target!(|data: &[u8]| run(data));
