//! The library's side of the eBPF probe (`alloc/include/memkind_probe.h`, which explains the
//! protocol): the semaphore, the request word, the four nop5-entered functions the probe's
//! uprobes read their records from, and the builders of those records.
//!
//! Everything here is below the kinds and arenas: callers pass ids, addresses and policies in.
//! Nothing allocates through jemalloc, panics or locks (the extent hooks call in), except the
//! per-thread counters' set-up (`crate::counters::thread`, with the library's other counters),
//! which uses the system allocator.
#![allow(
    unsafe_code,
    reason = "the exported semaphore and entry points of the probe ABI"
)]

pub mod records;

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use records::{
    MkpExtent, MkpFlush, MkpKind, MkpTrace, MKP_NAME_LEN, MKP_NODEMASK_WORDS, MKP_VERSION,
};

/// The semaphore and MEMKIND_DEFAULT's fast-path key in one 8-byte word, alone in section
/// `.memkind_probe`: bytes 0..6 hold the address of DEFAULT's kind (x86_64 user addresses fit
/// in 47 bits; written once at start-up by [`set_default_key`]), bytes 6..8 the semaphore, a
/// u16 that the kernel increments while a uprobe attached with its file offset as
/// `ref_ctr_offset` exists (the USDT semaphore mechanism, kernel ≥ 4.20). The probe finds the
/// semaphore as the last two bytes of the section (`bpf/`). So the word equals DEFAULT's
/// address exactly while no probe is attached, and DEFAULT's fast paths test "this is DEFAULT
/// and no probe is attached" with one compare ([`is_default_unprobed`]); before start-up the
/// word is 0 and they take their slow paths, which start the library up. Not exported: a
/// local symbol is reached with one RIP-relative compare.
#[repr(C, align(8))]
struct KeyAndSemaphore {
    /// The low 48 bits of DEFAULT's address, little-endian.
    key: [u16; 3],
    /// Written only by the kernel.
    semaphore: u16,
}

#[unsafe(link_section = ".memkind_probe")]
#[used]
static mut SEMAPHORE: KeyAndSemaphore = KeyAndSemaphore {
    key: [0; 3],
    semaphore: 0,
};

/// Store DEFAULT's address (`kind`, below 2^48) in the key half of [`SEMAPHORE`]'s word; the
/// semaphore half is not touched. Called at start-up (and again harmlessly).
pub(crate) fn set_default_key(kind: *const core::ffi::c_void) {
    let a = kind as usize;
    debug_assert!(a >> 48 == 0);
    for (i, part) in [a as u16, (a >> 16) as u16, (a >> 32) as u16]
        .into_iter()
        .enumerate()
    {
        // SAFETY: writes one u16 of the key half, which only this function writes (the same
        // value each time); the kernel writes only the semaphore half, another two bytes.
        unsafe { core::ptr::write_volatile(&raw mut SEMAPHORE.key[i], part) };
    }
}

/// True when `kind` is MEMKIND_DEFAULT and no probe is attached (and the library is started):
/// one compare of `kind` with [`SEMAPHORE`]'s word and one branch (asm goto, as
/// `semaphore_set!`). False otherwise, including for DEFAULT while a probe is attached.
#[inline(always)]
pub(crate) fn is_default_unprobed(kind: *const core::ffi::c_void) -> bool {
    // SAFETY: reads the 8-byte word whose key half only `set_default_key` writes and whose
    // semaphore half only the kernel writes (a torn or stale read only sends one call to the
    // slow path, which checks everything again); no stack use, flags clobbered as asm! assumes.
    unsafe {
        core::arch::asm!(
            "cmp {word}(%rip), {kind}",
            "je {yes}",
            word = sym SEMAPHORE,
            kind = in(reg) kind,
            yes = label { return true; },
            options(att_syntax, nostack, readonly),
        );
    }
    false
}

/// The trace tier's semaphore: a u16 alone in section `.memkind_probe_trace`, counted up by the
/// kernel while the per-call uprobes on the `memkind_arena_*` entry points are attached (their
/// `ref_ctr_offset`). While it is set, MEMKIND_DEFAULT's calls go through those entry points
/// instead of jemalloc's fast path, so a trace sees them; checked only once [`on`] said a probe
/// is attached.
#[unsafe(link_section = ".memkind_probe_trace")]
#[used]
static mut TRACE_SEMAPHORE: u16 = 0;

/// `memkind_probe_request`: a probe attaching to a running process writes a new value here
/// first; the library then re-announces what exists (see `crate::counters::thread::count`).
#[unsafe(no_mangle)]
#[used]
pub static memkind_probe_request: AtomicU64 = AtomicU64::new(0);

/// Whether the semaphore at byte `$off` of static `$sem` (a u16 only the kernel writes) is
/// non-zero: one compare with 0 and one branch (asm goto, so the compiler cannot spill the
/// loaded value or materialise a bool).
macro_rules! semaphore_set {
    ($sem:ident + $off:literal) => {{
        if !cfg!(feature = "probe") {
            return false;
        }
        // SAFETY: reads a u16 that only the kernel writes (a stale read only delays counting by
        // a call); no stack use, flags clobbered as asm! assumes.
        unsafe {
            core::arch::asm!(
                concat!("cmpw $0, {sem}+", $off, "(%rip)"),
                "jne {on}",
                sem = sym $sem,
                on = label { return true; },
                options(att_syntax, nostack, readonly),
            );
        }
        false
    }};
}

/// True while a probe is attached. Detached, nothing else of the probe runs on any path.
#[inline(always)]
pub(crate) fn on() -> bool {
    semaphore_set!(SEMAPHORE + "6")
}

/// True while the trace tier's per-call uprobes are attached (see [`TRACE_SEMAPHORE`]).
#[inline(always)]
pub(crate) fn tracing() -> bool {
    semaphore_set!(TRACE_SEMAPHORE + "0")
}

/// The current request value.
pub(crate) fn request() -> u64 {
    memkind_probe_request.load(Ordering::Relaxed)
}

/// Define an exported `extern "C"` function of one pointer argument that is a 5-byte NOP, a
/// `jmp` to the next instruction and a `ret`. The probe's uprobe sits on the `jmp` at offset 5
/// (the kernel emulates a jump: no single-step) and reads the record through the first argument
/// register. Not on the NOP: kernel 6.18 rewrites a probed nop5 into a call to a per-process
/// trampoline after its first hit, and a fork() then copies the rewritten code without the
/// trampoline mapping, so the child crashes on its first call (seen here: SIGSEGV in a child
/// forked after a thread's exit flush). The NOP stays, like every `memkind_arena_*` entry's.
/// Being naked, the compiler cannot see that the record is unused, so it is written to memory
/// before the call.
macro_rules! probe_entry {
    ($(#[$m:meta])* fn $name:ident($arg:ident: $ty:ty)) => {
        $(#[$m])*
        #[unsafe(no_mangle)]
        #[unsafe(naked)]
        pub extern "C" fn $name($arg: $ty) {
            core::arch::naked_asm!(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00", "jmp 2f", "2:", "ret")
        }
    };
}

probe_entry!(
    /// `memkind_arena_stats_flush(rec)`: a thread's counter deltas for one kind.
    fn memkind_arena_stats_flush(rec: *const MkpFlush)
);
probe_entry!(
    /// `memkind_arena_extent_event(ev)`: an extent was mapped, purged, destroyed, unmapped or
    /// is re-announced.
    fn memkind_arena_extent_event(ev: *const MkpExtent)
);
probe_entry!(
    /// `memkind_arena_kind_event(ev)`: a kind was created, destroyed or is announced.
    fn memkind_arena_kind_event(ev: *const MkpKind)
);

probe_entry!(
    /// `memkind_arena_trace_event(ev)`: one traced call, timed by the library (the trace tier's
    /// only uprobe on our library: one hit per call).
    fn memkind_arena_trace_event(ev: *const MkpTrace)
);

/// CLOCK_MONOTONIC in ns, read through the vDSO (glibc's `clock_gettime` calls the vDSO's: no
/// system call). The clock of `bpf_ktime_get_ns`, so a traced call's start time and the BPF
/// programs' event times are on one axis.
#[inline]
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Hand one traced call to the probe. `rec.latency_ns` is filled here, from `rec.start_ns`.
#[inline(never)]
pub(crate) fn trace(rec: &mut MkpTrace) {
    rec.version = MKP_VERSION;
    rec.tid = cached_tid();
    rec.latency_ns = now_ns().wrapping_sub(rec.start_ns);
    memkind_arena_trace_event(rec);
}

/// Hand one flush record to the probe.
#[inline(never)]
pub(crate) fn flush(rec: &MkpFlush) {
    memkind_arena_stats_flush(rec);
}

/// What an extent event says about the memory's placement.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Where<'a> {
    /// `enum mkp_backing`.
    pub backing: u32,
    /// Page size of the mapping.
    pub page_size: u64,
    /// MPOL_* asked for, -1 for none.
    pub mbind_mode: i32,
    /// Nodes asked for (words of a node mask; longer masks are cut to 256 nodes).
    pub nodes: &'a [u64],
}

impl Where<'_> {
    /// Anonymous memory without a policy.
    pub(crate) const ANON: Where<'static> = Where {
        backing: records::backing::ANON,
        page_size: 4096,
        mbind_mode: -1,
        nodes: &[],
    };
}

fn mask(nodes: &[u64]) -> [u64; MKP_NODEMASK_WORDS] {
    let mut m = [0; MKP_NODEMASK_WORDS];
    for (d, s) in m.iter_mut().zip(nodes) {
        *d = *s;
    }
    m
}

/// Announce an extent event (no-op while detached). Called from extent hooks: builds the record
/// on the stack, never allocates.
#[inline]
pub(crate) fn extent(op: u32, addr: usize, size: usize, kind: u32, arena: u32, w: &Where<'_>) {
    if !on() {
        return;
    }
    extent2(op, addr, size, 0, 0, kind, arena, w);
}

/// [`extent`] with a second range (SPLIT / MERGE).
#[allow(clippy::too_many_arguments, reason = "the fields of one C record")]
#[cold]
#[inline(never)]
pub(crate) fn extent2(
    op: u32,
    addr: usize,
    size: usize,
    addr2: usize,
    size2: usize,
    kind: u32,
    arena: u32,
    w: &Where<'_>,
) {
    let ev = MkpExtent {
        version: MKP_VERSION,
        op,
        addr: addr as u64,
        size: size as u64,
        addr2: addr2 as u64,
        size2: size2 as u64,
        kind,
        arena,
        mbind_mode: w.mbind_mode,
        backing: w.backing,
        page_size: w.page_size,
        nodemask: mask(w.nodes),
    };
    memkind_arena_extent_event(&ev);
}

/// Announce a kind event (no-op while detached). `name` and `dir` are cut to fit, NUL-ended.
#[cold]
pub(crate) fn kind(op: u32, kind: u16, name: &[u8], dir: &[u8], w: &Where<'_>) {
    if !on() {
        return;
    }
    let mut ev = MkpKind {
        version: MKP_VERSION,
        op,
        kind: u32::from(kind),
        backing: w.backing,
        mbind_mode: w.mbind_mode,
        nodemask: mask(w.nodes),
        ..MkpKind::default()
    };
    copy_cstr(&mut ev.name, name);
    copy_cstr(&mut ev.dir, dir);
    memkind_arena_kind_event(&ev);
}

/// Copy `src` into `dst`, cut to leave room for the terminating NUL.
fn copy_cstr(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len().saturating_sub(1));
    dst[..n].copy_from_slice(&src[..n]);
    if let Some(z) = dst.get_mut(n) {
        *z = 0;
    }
}

/// A kind name in the probe's format: `MEMKIND_HBW` for memkind's `memkind_hbw`.
pub(crate) fn static_name(memkind_name: &str) -> [u8; MKP_NAME_LEN] {
    let mut out = [0u8; MKP_NAME_LEN];
    for (d, s) in out
        .iter_mut()
        .zip(memkind_name.bytes())
        .take(MKP_NAME_LEN - 1)
    {
        *d = s.to_ascii_uppercase();
    }
    out
}

std::thread_local! {
    /// This thread's id once asked (0: not yet); a fork child's thread forgets it
    /// ([`fork_child`]).
    static TID: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

/// Whether this process is in the initial PID namespace, where its thread ids are the ones the
/// probe's programs see: 0 not known yet, 1 yes, 2 no (or not known: no /proc).
static INIT_PIDNS: AtomicU8 = AtomicU8::new(0);

/// `readlink /proc/self/ns/pid` of the initial PID namespace (PROC_PID_INIT_INO, fixed since
/// Linux 3.8).
const INIT_PIDNS_LINK: &[u8] = b"pid:[4026531836]";

fn in_init_pidns() -> bool {
    let mut state = INIT_PIDNS.load(Ordering::Relaxed);
    if state == 0 {
        let mut buf = [0u8; 64];
        // SAFETY: a NUL-terminated path and a buffer of `buf.len()` bytes, which readlink does
        // not overrun (it does not NUL-terminate either).
        let n = unsafe {
            libc::readlink(
                c"/proc/self/ns/pid".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let link = usize::try_from(n).ok().and_then(|n| buf.get(..n));
        state = if link == Some(INIT_PIDNS_LINK) { 1 } else { 2 };
        INIT_PIDNS.store(state, Ordering::Relaxed);
    }
    state == 1
}

/// The calling thread's id for a trace record, asked once per thread: the probe drops a record
/// whose thread is not the one that hit the uprobe. 0 (no check) in a process of another PID
/// namespace (a container), whose ids are not the ones the probe sees.
fn cached_tid() -> u32 {
    TID.with(|t| {
        if t.get() == 0 && in_init_pidns() {
            t.set(gettid());
        }
        t.get()
    })
}

/// In a fork child (the forking thread, which is the child's only thread): its id changed, and
/// so may its PID namespace (a parent that called `unshare(CLONE_NEWPID)`).
pub(crate) fn fork_child() {
    TID.with(|t| t.set(0));
    INIT_PIDNS.store(0, Ordering::Relaxed);
}

/// The calling thread's id.
pub(crate) fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_start_with_nop5() {
        for f in [
            memkind_arena_stats_flush as *const u8,
            memkind_arena_extent_event as *const u8,
            memkind_arena_kind_event as *const u8,
            memkind_arena_trace_event as *const u8,
        ] {
            // SAFETY: reading the first bytes of our own function's code.
            let b = unsafe { core::slice::from_raw_parts(f, 8) };
            assert_eq!(b, [0x0f, 0x1f, 0x44, 0x00, 0x00, 0xeb, 0x00, 0xc3]);
        }
    }

    #[test]
    fn trace_tid_only_in_the_initial_pid_namespace() {
        let init = std::fs::read_link("/proc/self/ns/pid")
            .is_ok_and(|l| l.as_os_str().as_encoded_bytes() == INIT_PIDNS_LINK);
        assert_eq!(in_init_pidns(), init);
        let tid = std::thread::spawn(cached_tid).join().unwrap();
        assert_eq!(tid != 0, init);
        if init {
            assert_ne!(tid, cached_tid(), "per thread");
        }
    }

    #[test]
    fn names_and_cut_strings() {
        let n = static_name("memkind_hbw_preferred");
        assert_eq!(&n[..22], b"MEMKIND_HBW_PREFERRED\0");
        let mut d = [0xffu8; 4];
        copy_cstr(&mut d, b"abcdef");
        assert_eq!(d, *b"abc\0");
        assert!(!on(), "no probe attached in unit tests");
        crate::arena::init::ensure();
        let default = (crate::kind::default_kind() as *const crate::kind::Kind).cast();
        let regular = (&crate::kind::KINDS[crate::kind::partition::REGULAR]
            as *const crate::kind::Kind)
            .cast();
        assert!(is_default_unprobed(default));
        assert!(!is_default_unprobed(regular) && !is_default_unprobed(core::ptr::null()));
        // SAFETY: a test-only write of the semaphore, read back through `on` and the DEFAULT
        // key compare, then restored; nothing else in this test binary attaches probes.
        unsafe {
            core::ptr::write_volatile(&raw mut SEMAPHORE.semaphore, 1);
            let seen = on();
            let fast = is_default_unprobed(default);
            core::ptr::write_volatile(&raw mut SEMAPHORE.semaphore, 0);
            assert_eq!(seen, cfg!(feature = "probe"));
            assert!(!fast, "the semaphore is part of the DEFAULT key's word");
        }
        assert!(is_default_unprobed(default));
    }
}
