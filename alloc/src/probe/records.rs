//! The records of `alloc/include/memkind_probe.h`, mirrored with `#[repr(C)]` (layout checked
//! against the header by `tests/tests/abi.rs`). The library hands them to the uprobes; the BPF
//! programs copy them into maps and the ring buffer, from where [`crate`] decodes them.

/// `MKP_VERSION`.
pub const MKP_VERSION: u32 = 1;
/// `MKP_FLUSH_EVERY`: counted events of one thread and kind between two flushes, at most.
pub const MKP_FLUSH_EVERY: u32 = 1024;
/// `MKP_SIZE_BUCKETS`.
pub const MKP_SIZE_BUCKETS: usize = 16;
/// `MKP_NAME_LEN`.
pub const MKP_NAME_LEN: usize = 64;
/// `MKP_DIR_LEN`.
pub const MKP_DIR_LEN: usize = 192;
/// `MKP_NODEMASK_WORDS`.
pub const MKP_NODEMASK_WORDS: usize = 4;
/// `MKP_NONE`: no kind / no arena.
pub const MKP_NONE: u32 = 0xffff_ffff;

/// `struct mkp_counters`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MkpCounters {
    /// Successful malloc, calloc, posix_memalign, realloc(NULL, n).
    pub allocs: u64,
    /// free of a non-NULL pointer, realloc(p, 0).
    pub frees: u64,
    /// Successful realloc of a live block to n > 0.
    pub reallocs: u64,
    /// Sizes asked for by allocs and reallocs.
    pub bytes_requested: u64,
    /// Usable size of the blocks handed out.
    pub bytes_allocated: u64,
    /// Usable size of the blocks given back.
    pub bytes_freed: u64,
    /// Allocs and reallocs by requested size (see [`size_bucket`]).
    pub size_buckets: [u64; MKP_SIZE_BUCKETS],
}

/// `enum mkp_flush_reason`.
pub mod flush_reason {
    /// `MKP_FLUSH_EVENTS`.
    pub const EVENTS: u32 = 1;
    /// `MKP_FLUSH_THREAD_EXIT`.
    pub const THREAD_EXIT: u32 = 2;
    /// `MKP_FLUSH_KIND_DESTROY`.
    pub const KIND_DESTROY: u32 = 3;
    /// `MKP_FLUSH_PROCESS_EXIT`.
    pub const PROCESS_EXIT: u32 = 4;
}

/// `struct mkp_flush`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MkpFlush {
    /// `MKP_VERSION`.
    pub version: u32,
    /// One of [`flush_reason`].
    pub reason: u32,
    /// Kind id.
    pub kind: u32,
    /// Arena index, or [`MKP_NONE`].
    pub arena: u32,
    /// Thread whose counts these are.
    pub tid: u32,
    /// Padding.
    pub pad: u32,
    /// The counts since the thread's last flush.
    pub delta: MkpCounters,
}

/// `enum mkp_extent_op`.
pub mod extent_op {
    /// `MKP_EXTENT_ALLOC`.
    pub const ALLOC: u32 = 1;
    /// `MKP_EXTENT_DESTROY`.
    pub const DESTROY: u32 = 2;
    /// `MKP_EXTENT_PURGE`.
    pub const PURGE: u32 = 3;
    /// `MKP_EXTENT_SPLIT`.
    pub const SPLIT: u32 = 4;
    /// `MKP_EXTENT_MERGE`.
    pub const MERGE: u32 = 5;
    /// `MKP_EXTENT_UNMAP`.
    pub const UNMAP: u32 = 6;
    /// `MKP_EXTENT_ANNOUNCE`.
    pub const ANNOUNCE: u32 = 7;
}

/// `enum mkp_backing`.
pub mod backing {
    /// `MKP_BACKING_ANON`.
    pub const ANON: u32 = 0;
    /// `MKP_BACKING_HUGETLB`.
    pub const HUGETLB: u32 = 1;
    /// `MKP_BACKING_FILE`.
    pub const FILE: u32 = 2;
    /// `MKP_BACKING_FIXED`.
    pub const FIXED: u32 = 3;
}

/// `struct mkp_extent`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MkpExtent {
    /// `MKP_VERSION`.
    pub version: u32,
    /// One of [`extent_op`].
    pub op: u32,
    /// Start.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// SPLIT / MERGE: the second part.
    pub addr2: u64,
    /// SPLIT / MERGE: the second part's length.
    pub size2: u64,
    /// Kind id.
    pub kind: u32,
    /// Arena index, or [`MKP_NONE`].
    pub arena: u32,
    /// MPOL_* asked for, -1 when none.
    pub mbind_mode: i32,
    /// One of [`backing`].
    pub backing: u32,
    /// Page size of the mapping.
    pub page_size: u64,
    /// Nodes asked for.
    pub nodemask: [u64; MKP_NODEMASK_WORDS],
}

/// `enum mkp_kind_op`.
pub mod kind_op {
    /// `MKP_KIND_CREATE`.
    pub const CREATE: u32 = 1;
    /// `MKP_KIND_DESTROY`.
    pub const DESTROY: u32 = 2;
    /// `MKP_KIND_ANNOUNCE`.
    pub const ANNOUNCE: u32 = 3;
}

/// `struct mkp_kind`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MkpKind {
    /// `MKP_VERSION`.
    pub version: u32,
    /// One of [`kind_op`].
    pub op: u32,
    /// Kind id.
    pub kind: u32,
    /// One of [`backing`].
    pub backing: u32,
    /// MPOL_* asked for, -1 when none.
    pub mbind_mode: i32,
    /// Padding.
    pub pad: u32,
    /// Nodes asked for.
    pub nodemask: [u64; MKP_NODEMASK_WORDS],
    /// NUL-terminated name.
    pub name: [u8; MKP_NAME_LEN],
    /// NUL-terminated PMEM directory, else empty.
    pub dir: [u8; MKP_DIR_LEN],
}

impl Default for MkpKind {
    fn default() -> Self {
        Self {
            version: 0,
            op: 0,
            kind: 0,
            backing: 0,
            mbind_mode: -1,
            pad: 0,
            nodemask: [0; MKP_NODEMASK_WORDS],
            name: [0; MKP_NAME_LEN],
            dir: [0; MKP_DIR_LEN],
        }
    }
}

/// `enum mkp_call` (the same ids as `enum mkb_call_id`).
pub mod call {
    /// `MKP_CALL_MALLOC`.
    pub const MALLOC: u32 = 1;
    /// `MKP_CALL_CALLOC`.
    pub const CALLOC: u32 = 2;
    /// `MKP_CALL_PMEM_CALLOC`.
    pub const PMEM_CALLOC: u32 = 3;
    /// `MKP_CALL_POSIX_MEMALIGN`.
    pub const POSIX_MEMALIGN: u32 = 4;
    /// `MKP_CALL_REALLOC`.
    pub const REALLOC: u32 = 5;
    /// `MKP_CALL_REALLOC_DETECT`.
    pub const REALLOC_DETECT: u32 = 6;
    /// `MKP_CALL_FREE`.
    pub const FREE: u32 = 7;
    /// `MKP_CALL_FREE_DETECT`.
    pub const FREE_DETECT: u32 = 8;
}

/// `struct mkp_trace`: one traced call, measured by the library.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MkpTrace {
    /// `MKP_VERSION`.
    pub version: u32,
    /// One of [`call`].
    pub call: u32,
    /// The named kind's id, or [`MKP_NONE`].
    pub kind: u32,
    /// Arena index, or [`MKP_NONE`].
    pub arena: u32,
    /// The kind pointer argument (0 for the `*_detect` calls).
    pub kind_ptr: u64,
    /// Size argument (calloc: the element size).
    pub size: u64,
    /// calloc's element count.
    pub num: u64,
    /// posix_memalign's alignment.
    pub align: u64,
    /// The pointer argument (realloc, free).
    pub ptr: u64,
    /// The pointer handed out (posix_memalign: `*memptr` on success).
    pub result: u64,
    /// posix_memalign's return value, else 0.
    pub ret: i32,
    /// errno after a call that handed out NULL for a size > 0, else 0.
    pub err: i32,
    /// CLOCK_MONOTONIC at entry, ns.
    pub start_ns: u64,
    /// Entry to return, ns.
    pub latency_ns: u64,
    /// The calling thread (gettid); 0 outside the initial PID namespace (not checked).
    pub tid: u32,
    /// Zero.
    pub pad: u32,
}

/// The size bucket of a request of `n` bytes (see `MKP_SIZE_BUCKETS`).
pub const fn size_bucket(n: u64) -> usize {
    if n <= 16 {
        return 0;
    }
    // ceil(log2(n)) - 4, clamped to the last bucket.
    let lg = 64 - (n - 1).leading_zeros() as usize;
    let b = lg - 4;
    if b >= MKP_SIZE_BUCKETS {
        MKP_SIZE_BUCKETS - 1
    } else {
        b
    }
}
