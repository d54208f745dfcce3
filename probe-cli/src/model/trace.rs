//! One traced call (trace mode).

/// A call of the memkind API, as `trace` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Call {
    /// Entry time, ns since the session start.
    pub ts_ns: u64,
    /// Process.
    pub tgid: u32,
    /// Thread.
    pub tid: u32,
    /// The function (`memkind_malloc`, `memkind_arena_malloc`, …).
    pub call: &'static str,
    /// Kind id, when the call names one.
    pub kind: Option<u32>,
    /// Arena, when known.
    pub arena: Option<u32>,
    /// Size asked for (`calloc`: num × size).
    pub size: Option<u64>,
    /// The pointer argument (free, realloc, usable_size).
    pub ptr: Option<u64>,
    /// The pointer handed out (posix_memalign: `*memptr` on success).
    pub result: Option<u64>,
    /// An integer return value (posix_memalign's error code).
    pub ret: Option<i32>,
    /// Entry to return, ns.
    pub latency_ns: u64,
}
