//! The arena layer's 19 exported functions (memkind_arena(3)).
//!
//! Each exported symbol is a naked stub whose first instruction is a 5-byte NOP
//! (`0f 1f 44 00 00`) followed by a jump to the Rust body: a uprobe on a nop5 is turned into a
//! call by the kernel (≈0.5 µs per hit) instead of single-stepping a normal prologue (≈9 µs).
//!
//! `struct memkind *` is our [`Kind`]; the `ops`, `name` and `hooks` arguments of the create
//! functions exist for ABI compatibility: a kind's operations and hooks are fixed by its family.

use core::ffi::{c_char, c_int, c_uint, c_void};

use super::{kind_arg, MemkindT};
use crate::arena::{self, heap};
use crate::error::{code, Error};
use crate::jemalloc::ExtentHooks;
use crate::kind::Kind;
use crate::probe::{
    self,
    records::{call, MkpTrace, MKP_NONE},
};
use crate::sys::{errno, set_errno};

/// Define an exported `extern "C"` function that starts with a nop5 and jumps to `$body`,
/// which must have the same signature.
macro_rules! nop5_entry {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $body:ident) => {
        $(#[$m])*
        #[unsafe(no_mangle)]
        #[unsafe(naked)]
        pub extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            core::arch::naked_asm!(
                ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00",
                "jmp {body}",
                body = sym $body,
            )
        }
    };
}

fn rc(r: Result<(), Error>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

nop5_entry!(
    /// `memkind_arena_create(kind, ops, name)`: initialise the kind's arenas.
    fn memkind_arena_create(kind: MemkindT, ops: *mut c_void, name: *const c_char) -> c_int => arena_create
);
extern "C" fn arena_create(kind: MemkindT, _ops: *mut c_void, _name: *const c_char) -> c_int {
    match kind_arg(kind) {
        Some(k) => rc(crate::arena::runtime(k).map(drop)),
        None => code::INVALID,
    }
}

nop5_entry!(
    /// `memkind_arena_create_map(kind, hooks)`: create the kind's arena map. `hooks` must be NULL
    /// (the kind's own hooks are used); foreign hooks would hand out memory the extent map cannot
    /// vouch for, so they are refused with MEMKIND_ERROR_INVALID.
    fn memkind_arena_create_map(kind: MemkindT, hooks: *mut ExtentHooks) -> c_int => arena_create_map
);
extern "C" fn arena_create_map(kind: MemkindT, hooks: *mut ExtentHooks) -> c_int {
    match kind_arg(kind) {
        Some(k) if hooks.is_null() => rc(crate::arena::runtime(k).map(drop)),
        _ => code::INVALID,
    }
}

nop5_entry!(
    /// `memkind_arena_destroy(kind)`: release a dynamic kind's arenas (static kinds: no-op).
    fn memkind_arena_destroy(kind: MemkindT) -> c_int => arena_destroy
);
extern "C" fn arena_destroy(kind: MemkindT) -> c_int {
    match kind_arg(kind) {
        Some(k) => rc(crate::arena::destroy_arenas_of(k)),
        None => code::INVALID,
    }
}

/// The heap operations of the traced entry points' bodies. `P`: a probe is attached, so the
/// counted operations (`heap::malloc` & co., which read the semaphore again); otherwise the
/// uncounted ones, the entry point having read the semaphore once already. Detached, an entry
/// point pays the one load and branch it paid before, in the entry instead of in `heap`.
mod h {
    use super::*;

    #[inline(always)]
    pub(super) fn malloc<const P: bool>(k: &'static Kind, size: usize) -> *mut c_void {
        if P {
            heap::malloc(k, size)
        } else {
            heap::malloc_uncounted(k, size)
        }
    }

    #[inline(always)]
    pub(super) fn calloc<const P: bool>(k: &'static Kind, num: usize, size: usize) -> *mut c_void {
        if P {
            heap::calloc(k, num, size)
        } else {
            heap::calloc_uncounted(k, num, size)
        }
    }

    #[inline(always)]
    pub(super) fn aligned<const P: bool>(
        k: &'static Kind,
        size: usize,
        align: usize,
    ) -> *mut c_void {
        if P {
            heap::aligned(k, size, align)
        } else {
            heap::aligned_uncounted(k, size, align)
        }
    }

    #[inline(always)]
    pub(super) fn free<const P: bool>(ptr: *mut c_void) {
        if P {
            heap::free(ptr)
        } else {
            heap::free_uncounted(ptr)
        }
    }

    #[inline(always)]
    pub(super) fn realloc<const P: bool>(
        target: Option<&'static Kind>,
        ptr: *mut c_void,
        size: usize,
    ) -> *mut c_void {
        if P {
            heap::realloc(target, ptr, size)
        } else {
            heap::realloc_uncounted(target, ptr, size)
        }
    }
}

/// The trace tier's record of one call: a call of `call` naming `kind` (NULL: none), started at
/// `start_ns`. The remaining fields are filled by the caller.
#[inline(always)]
fn traced(call: u32, kind: MemkindT, start_ns: u64) -> MkpTrace {
    MkpTrace {
        call,
        kind: kind_arg(kind).map_or(MKP_NONE, |k| u32::from(k.id())),
        arena: MKP_NONE,
        kind_ptr: kind as u64,
        start_ns,
        ..MkpTrace::default()
    }
}

/// errno for a record of an allocation that handed out `r` for a request of `size` bytes.
#[inline(always)]
fn alloc_err(r: *mut c_void, size: usize) -> i32 {
    if r.is_null() && size > 0 {
        errno()
    } else {
        0
    }
}

nop5_entry!(
    /// `memkind_arena_malloc(kind, size)`.
    fn memkind_arena_malloc(kind: MemkindT, size: usize) -> *mut c_void => arena_malloc
);
pub(crate) extern "C" fn arena_malloc(kind: MemkindT, size: usize) -> *mut c_void {
    // Detached, first a block from the thread's magazine, with no more checks than that needs
    // (see `heap::pop`); everything else takes the full path.
    if probe::on() {
        return malloc_attached(kind, size);
    }
    if let Some(k) = Kind::in_table(kind) {
        if let Some(p) = heap::pop(k, size) {
            return p;
        }
    }
    arena_malloc_full(kind, size)
}

/// [`arena_malloc`] while a probe is attached.
#[cold]
#[inline(never)]
extern "C" fn malloc_attached(kind: MemkindT, size: usize) -> *mut c_void {
    // Counted (no trace): first a block from the thread's magazine, counted in its record, with
    // the checks of the detached fast path.
    if !probe::tracing() {
        if let Some(k) = Kind::in_table(kind) {
            if let Some(p) = heap::pop_counted(k, size) {
                return p;
            }
        }
    }
    match kind_arg(kind) {
        Some(k) if size > 0 => malloc_probed(k, size),
        _ => malloc_rare_probed(kind, size),
    }
}

/// [`arena_malloc`] past the magazine. `extern "C"` (a panic aborts here), reached by a tail
/// call.
#[inline(never)]
extern "C" fn arena_malloc_full(kind: MemkindT, size: usize) -> *mut c_void {
    // Detached, this is the code it was before the trace tier: `heap::malloc_or` is
    // `heap::malloc` with another target for the probed branch. The rare exits read the
    // semaphore too, so that a trace sees them.
    match kind_arg(kind) {
        Some(k) if size > 0 => heap::malloc_or(k, size, malloc_probed),
        _ if probe::on() => malloc_rare_probed(kind, size),
        Some(_) => core::ptr::null_mut(),
        None => {
            set_errno(libc::EINVAL);
            core::ptr::null_mut()
        }
    }
}

/// [`arena_malloc`] of `size` > 0 from a valid kind while a probe is attached: counted, and
/// (while a trace is attached) timed and handed to the trace tier, as every traced entry point
/// below. Frameless (a tail call either way): the record lives in the traced function's frame.
#[cold]
#[inline(never)]
extern "C" fn malloc_probed(k: &'static Kind, size: usize) -> *mut c_void {
    if probe::tracing() {
        return malloc_traced(k as *const Kind, size);
    }
    heap::counted::malloc(k, size)
}

/// [`arena_malloc`] of size 0 or with a bad kind while a probe is attached.
#[cold]
#[inline(never)]
extern "C" fn malloc_rare_probed(kind: MemkindT, size: usize) -> *mut c_void {
    if probe::tracing() {
        return malloc_traced(kind, size);
    }
    malloc_body::<true>(kind, size)
}

#[inline(always)]
fn malloc_body<const P: bool>(kind: MemkindT, size: usize) -> *mut c_void {
    match kind_arg(kind) {
        Some(k) if size > 0 => h::malloc::<P>(k, size),
        Some(_) => core::ptr::null_mut(),
        None => {
            set_errno(libc::EINVAL);
            core::ptr::null_mut()
        }
    }
}

#[inline(never)]
extern "C" fn malloc_traced(kind: MemkindT, size: usize) -> *mut c_void {
    let t = probe::now_ns();
    let r = malloc_body::<true>(kind, size);
    let mut rec = traced(call::MALLOC, kind, t);
    rec.size = size as u64;
    rec.result = r as u64;
    rec.err = alloc_err(r, size);
    probe::trace(&mut rec);
    r
}

nop5_entry!(
    /// `memkind_arena_calloc(kind, num, size)`: NULL + ENOMEM on overflow.
    fn memkind_arena_calloc(kind: MemkindT, num: usize, size: usize) -> *mut c_void => arena_calloc
);
pub(crate) extern "C" fn arena_calloc(kind: MemkindT, num: usize, size: usize) -> *mut c_void {
    if probe::on() {
        return calloc_probed(kind, num, size, call::CALLOC);
    }
    calloc_body::<false>(kind, num, size)
}

#[inline(always)]
fn calloc_body<const P: bool>(kind: MemkindT, num: usize, size: usize) -> *mut c_void {
    match kind_arg(kind) {
        Some(k) => h::calloc::<P>(k, num, size),
        None => {
            set_errno(libc::EINVAL);
            core::ptr::null_mut()
        }
    }
}

#[cold]
#[inline(never)]
extern "C" fn calloc_probed(kind: MemkindT, num: usize, size: usize, id: u32) -> *mut c_void {
    if probe::tracing() {
        return calloc_traced(kind, num, size, id);
    }
    calloc_body::<true>(kind, num, size)
}

#[inline(never)]
extern "C" fn calloc_traced(kind: MemkindT, num: usize, size: usize, id: u32) -> *mut c_void {
    let t = probe::now_ns();
    let r = calloc_body::<true>(kind, num, size);
    let mut rec = traced(id, kind, t);
    rec.num = num as u64;
    rec.size = size as u64;
    rec.result = r as u64;
    rec.err = alloc_err(r, num.saturating_mul(size));
    probe::trace(&mut rec);
    r
}

nop5_entry!(
    /// `memkind_arena_pmem_calloc(kind, num, size)`: calloc for file-backed kinds (fresh file
    /// extents read as zero, jemalloc tracks that like for anonymous memory).
    fn memkind_arena_pmem_calloc(kind: MemkindT, num: usize, size: usize) -> *mut c_void => arena_pmem_calloc
);
extern "C" fn arena_pmem_calloc(kind: MemkindT, num: usize, size: usize) -> *mut c_void {
    if probe::on() {
        return calloc_probed(kind, num, size, call::PMEM_CALLOC);
    }
    calloc_body::<false>(kind, num, size)
}

nop5_entry!(
    /// `memkind_arena_posix_memalign(kind, memptr, alignment, size)`: errno preserved; on
    /// EINVAL `*memptr` is left as it was, on ENOMEM non-default kinds set it to NULL.
    fn memkind_arena_posix_memalign(kind: MemkindT, memptr: *mut *mut c_void, alignment: usize, size: usize) -> c_int => arena_posix_memalign
);
pub(crate) extern "C" fn arena_posix_memalign(
    kind: MemkindT,
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    if probe::on() {
        return posix_memalign_probed(kind, memptr, alignment, size);
    }
    let saved = errno();
    let r = posix_memalign::<false>(kind, memptr, alignment, size);
    set_errno(saved);
    r
}

#[cold]
#[inline(never)]
extern "C" fn posix_memalign_probed(
    kind: MemkindT,
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    if probe::tracing() {
        return posix_memalign_traced(kind, memptr, alignment, size);
    }
    let saved = errno();
    let r = posix_memalign::<true>(kind, memptr, alignment, size);
    set_errno(saved);
    r
}

#[inline(never)]
extern "C" fn posix_memalign_traced(
    kind: MemkindT,
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    let saved = errno();
    let t = probe::now_ns();
    let r = posix_memalign::<true>(kind, memptr, alignment, size);
    set_errno(saved);
    let mut rec = traced(call::POSIX_MEMALIGN, kind, t);
    rec.align = alignment as u64;
    rec.size = size as u64;
    rec.ret = r;
    if r == 0 && !memptr.is_null() {
        // SAFETY: the call succeeded, so `memptr` is the caller's writable pointer it just set.
        rec.result = unsafe { *memptr } as u64;
    }
    probe::trace(&mut rec);
    r
}

fn posix_memalign<const P: bool>(
    kind: MemkindT,
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    if memptr.is_null()
        || !alignment.is_power_of_two()
        || alignment < core::mem::size_of::<*mut c_void>()
    {
        return libc::EINVAL;
    }
    let Some(k) = kind_arg(kind) else {
        return libc::EINVAL;
    };
    if size == 0 {
        // SAFETY: memptr is non-null and, per posix_memalign(3), points to a writable pointer.
        unsafe { *memptr = core::ptr::null_mut() };
        return 0;
    }
    let p = h::aligned::<P>(k, size, alignment);
    if p.is_null() {
        // 1.14: arena kinds (also unavailable ones) clear *memptr on ENOMEM, DEFAULT
        // (jemalloc's posix_memalign) leaves it. On EINVAL ours leaves it for every kind.
        if !k.is_default() {
            // SAFETY: as below.
            unsafe { *memptr = core::ptr::null_mut() };
        }
        return libc::ENOMEM;
    }
    // SAFETY: as above.
    unsafe { *memptr = p };
    0
}

nop5_entry!(
    /// `memkind_arena_realloc(kind, ptr, size)`.
    fn memkind_arena_realloc(kind: MemkindT, ptr: *mut c_void, size: usize) -> *mut c_void => arena_realloc
);
pub(crate) extern "C" fn arena_realloc(
    kind: MemkindT,
    ptr: *mut c_void,
    size: usize,
) -> *mut c_void {
    if probe::on() {
        return realloc_probed(kind, ptr, size, call::REALLOC);
    }
    realloc::<false>(kind_arg(kind), ptr, size)
}

/// [`arena_realloc`] and [`arena_realloc_detect`] while a probe is attached (`kind` NULL: the
/// kind-detecting call).
#[cold]
#[inline(never)]
extern "C" fn realloc_probed(
    kind: MemkindT,
    ptr: *mut c_void,
    size: usize,
    id: u32,
) -> *mut c_void {
    if probe::tracing() {
        return realloc_traced(kind, ptr, size, id);
    }
    realloc::<true>(kind_arg(kind), ptr, size)
}

#[inline(never)]
extern "C" fn realloc_traced(
    kind: MemkindT,
    ptr: *mut c_void,
    size: usize,
    id: u32,
) -> *mut c_void {
    let t = probe::now_ns();
    let r = realloc::<true>(kind_arg(kind), ptr, size);
    let mut rec = traced(id, kind, t);
    rec.ptr = ptr as u64;
    rec.size = size as u64;
    rec.result = r as u64;
    rec.err = alloc_err(r, size);
    probe::trace(&mut rec);
    r
}

/// realloc semantics of memkind 1.14 for a (possibly absent) kind.
fn realloc<const P: bool>(
    kind: Option<&'static Kind>,
    ptr: *mut c_void,
    size: usize,
) -> *mut c_void {
    if ptr.is_null() {
        return match kind {
            Some(k) if size > 0 => h::malloc::<P>(k, size),
            Some(_) => core::ptr::null_mut(),
            None => {
                set_errno(libc::EINVAL);
                core::ptr::null_mut()
            }
        };
    }
    if size == 0 {
        h::free::<P>(ptr);
        return core::ptr::null_mut();
    }
    h::realloc::<P>(kind, ptr, size)
}

nop5_entry!(
    /// `memkind_arena_realloc_with_kind_detect(ptr, size)`.
    fn memkind_arena_realloc_with_kind_detect(ptr: *mut c_void, size: usize) -> *mut c_void => arena_realloc_detect
);
extern "C" fn arena_realloc_detect(ptr: *mut c_void, size: usize) -> *mut c_void {
    if probe::on() {
        return realloc_probed(core::ptr::null(), ptr, size, call::REALLOC_DETECT);
    }
    realloc::<false>(None, ptr, size)
}

nop5_entry!(
    /// `memkind_thread_get_arena(kind, &arena, size)`: this thread's arena of `kind`.
    fn memkind_thread_get_arena(kind: MemkindT, arena: *mut c_uint, size: usize) -> c_int => thread_get_arena
);
extern "C" fn thread_get_arena(kind: MemkindT, out: *mut c_uint, _size: usize) -> c_int {
    get_arena(kind, out, arena::thread_arena)
}

nop5_entry!(
    /// `memkind_bijective_get_arena(kind, &arena, size)`: the kind's single arena.
    fn memkind_bijective_get_arena(kind: MemkindT, arena: *mut c_uint, size: usize) -> c_int => bijective_get_arena
);
extern "C" fn bijective_get_arena(kind: MemkindT, out: *mut c_uint, _size: usize) -> c_int {
    get_arena(kind, out, arena::bijective_arena)
}

fn get_arena(
    kind: MemkindT,
    out: *mut c_uint,
    f: fn(&'static Kind) -> Result<u32, Error>,
) -> c_int {
    let Some(k) = kind_arg(kind) else {
        return code::INVALID;
    };
    if out.is_null() {
        return code::INVALID;
    }
    match f(k) {
        Ok(a) => {
            // SAFETY: `out` is non-null and points to an `unsigned` per the man page.
            unsafe { *out = a };
            0
        }
        Err(e) => e.code(),
    }
}

nop5_entry!(
    /// `get_kind_by_arena(arena_ind)`: NULL for arenas that are not ours.
    fn get_kind_by_arena(arena_ind: c_uint) -> MemkindT => kind_by_arena
);
extern "C" fn kind_by_arena(arena_ind: c_uint) -> MemkindT {
    crate::kind::kind_of_arena(arena_ind).map_or(core::ptr::null(), |k| k as *const Kind)
}

nop5_entry!(
    /// `memkind_arena_detect_kind(ptr)`: the owning kind; NULL for NULL (as 1.14),
    /// MEMKIND_DEFAULT for foreign pointers.
    fn memkind_arena_detect_kind(ptr: *mut c_void) -> MemkindT => arena_detect_kind
);
pub(crate) extern "C" fn arena_detect_kind(ptr: *mut c_void) -> MemkindT {
    if ptr.is_null() {
        return core::ptr::null();
    }
    match heap::owner(ptr) {
        heap::Owner::Kind(k) => k,
        heap::Owner::Foreign => crate::kind::default_kind(),
    }
}

nop5_entry!(
    /// `memkind_arena_finalize(kind)`: flush this thread's cache of the kind (called at exit).
    fn memkind_arena_finalize(kind: MemkindT) -> c_int => arena_finalize
);
extern "C" fn arena_finalize(kind: MemkindT) -> c_int {
    match kind_arg(kind) {
        Some(_) => 0,
        None => code::INVALID,
    }
}

nop5_entry!(
    /// `memkind_arena_init(kind)`: create the arena map (errors surface on first allocation).
    fn memkind_arena_init(kind: MemkindT) => arena_init
);
extern "C" fn arena_init(kind: MemkindT) {
    if let Some(k) = kind_arg(kind) {
        let _ = crate::arena::runtime(k);
    }
}

nop5_entry!(
    /// `memkind_arena_free(kind, ptr)`: the pointer goes to the cache of the kind that owns it.
    fn memkind_arena_free(kind: MemkindT, ptr: *mut c_void) => arena_free
);
pub(crate) extern "C" fn arena_free(kind: MemkindT, ptr: *mut c_void) {
    // Detached, the code it was before the trace tier (see `arena_malloc`); free(NULL) takes a
    // tail call that reads the semaphore, so that a trace sees it.
    let _ = kind;
    if !ptr.is_null() {
        heap::free_or(ptr, free_probed)
    }
}

/// free(NULL): nothing to do, but a trace sees the call (`kind` as named).
#[cold]
#[inline(never)]
extern "C" fn free_null(kind: MemkindT, id: u32) {
    if probe::on() && probe::tracing() {
        let mut rec = traced(id, kind, probe::now_ns());
        probe::trace(&mut rec);
    }
}

/// [`arena_free`] of a non-NULL pointer while a probe is attached.
#[cold]
#[inline(never)]
extern "C" fn free_probed(ptr: *mut c_void) {
    if probe::tracing() {
        return free_traced(ptr, call::FREE);
    }
    heap::counted::free_inline(ptr)
}

/// [`arena_free_detect`] of a non-NULL pointer while a probe is attached.
#[cold]
#[inline(never)]
extern "C" fn free_detect_probed(ptr: *mut c_void) {
    if probe::tracing() {
        return free_traced(ptr, call::FREE_DETECT);
    }
    heap::counted::free(ptr)
}

/// A traced free: the record names the block's owner (`memkind_arena_free` frees into the
/// owner whatever kind is named; memkind_free names the owner), none for the kind-detecting
/// call.
#[inline(never)]
extern "C" fn free_traced(ptr: *mut c_void, id: u32) {
    let t = probe::now_ns();
    let kind = match heap::owner(ptr) {
        heap::Owner::Kind(k) if id == call::FREE => k as *const Kind,
        _ => core::ptr::null(),
    };
    h::free::<true>(ptr);
    let mut rec = traced(id, kind, t);
    rec.ptr = ptr as u64;
    probe::trace(&mut rec);
}

nop5_entry!(
    /// `memkind_arena_free_with_kind_detect(ptr)`.
    fn memkind_arena_free_with_kind_detect(ptr: *mut c_void) => arena_free_detect
);
extern "C" fn arena_free_detect(ptr: *mut c_void) {
    if ptr.is_null() {
        return free_null(core::ptr::null(), call::FREE_DETECT);
    }
    heap::free_or(ptr, free_detect_probed)
}

nop5_entry!(
    /// `memkind_arena_malloc_usable_size(ptr)`: 0 for NULL and foreign pointers.
    fn memkind_arena_malloc_usable_size(ptr: *mut c_void) -> usize => arena_usable_size
);
pub(crate) extern "C" fn arena_usable_size(ptr: *mut c_void) -> usize {
    if ptr.is_null() {
        0
    } else {
        heap::usable_size(ptr)
    }
}

nop5_entry!(
    /// `memkind_arena_update_memory_usage_policy(kind, policy)`: DEFAULT (0) keeps freed memory
    /// for jemalloc's decay time (10 s), CONSERVATIVE (1) gives it back at once.
    fn memkind_arena_update_memory_usage_policy(kind: MemkindT, policy: c_int) -> c_int => arena_update_policy
);
extern "C" fn arena_update_policy(kind: MemkindT, policy: c_int) -> c_int {
    let Some(k) = kind_arg(kind) else {
        return code::INVALID;
    };
    rc(crate::arena::set_usage_policy(k, policy))
}
