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

nop5_entry!(
    /// `memkind_arena_malloc(kind, size)`.
    fn memkind_arena_malloc(kind: MemkindT, size: usize) -> *mut c_void => arena_malloc
);
pub(crate) extern "C" fn arena_malloc(kind: MemkindT, size: usize) -> *mut c_void {
    match kind_arg(kind) {
        Some(k) if size > 0 => heap::malloc(k, size),
        Some(_) => core::ptr::null_mut(),
        None => {
            set_errno(libc::EINVAL);
            core::ptr::null_mut()
        }
    }
}

nop5_entry!(
    /// `memkind_arena_calloc(kind, num, size)`: NULL + ENOMEM on overflow.
    fn memkind_arena_calloc(kind: MemkindT, num: usize, size: usize) -> *mut c_void => arena_calloc
);
pub(crate) extern "C" fn arena_calloc(kind: MemkindT, num: usize, size: usize) -> *mut c_void {
    match kind_arg(kind) {
        Some(k) => heap::calloc(k, num, size),
        None => {
            set_errno(libc::EINVAL);
            core::ptr::null_mut()
        }
    }
}

nop5_entry!(
    /// `memkind_arena_pmem_calloc(kind, num, size)`: calloc for file-backed kinds (fresh file
    /// extents read as zero, jemalloc tracks that like for anonymous memory).
    fn memkind_arena_pmem_calloc(kind: MemkindT, num: usize, size: usize) -> *mut c_void => arena_calloc
);

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
    let saved = errno();
    let r = posix_memalign(kind, memptr, alignment, size);
    set_errno(saved);
    r
}

fn posix_memalign(
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
    let p = heap::aligned(k, size, alignment);
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
    realloc(kind_arg(kind), ptr, size)
}

/// realloc semantics of memkind 1.14 for a (possibly absent) kind.
pub(crate) fn realloc(kind: Option<&'static Kind>, ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        return match kind {
            Some(k) if size > 0 => heap::malloc(k, size),
            Some(_) => core::ptr::null_mut(),
            None => {
                set_errno(libc::EINVAL);
                core::ptr::null_mut()
            }
        };
    }
    if size == 0 {
        heap::free(ptr);
        return core::ptr::null_mut();
    }
    heap::realloc(kind, ptr, size)
}

nop5_entry!(
    /// `memkind_arena_realloc_with_kind_detect(ptr, size)`.
    fn memkind_arena_realloc_with_kind_detect(ptr: *mut c_void, size: usize) -> *mut c_void => arena_realloc_detect
);
extern "C" fn arena_realloc_detect(ptr: *mut c_void, size: usize) -> *mut c_void {
    realloc(None, ptr, size)
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
pub(crate) extern "C" fn arena_free(_kind: MemkindT, ptr: *mut c_void) {
    if !ptr.is_null() {
        heap::free(ptr);
    }
}

nop5_entry!(
    /// `memkind_arena_free_with_kind_detect(ptr)`.
    fn memkind_arena_free_with_kind_detect(ptr: *mut c_void) => arena_free_detect
);
extern "C" fn arena_free_detect(ptr: *mut c_void) {
    if !ptr.is_null() {
        heap::free(ptr);
    }
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
