//! memkind.h (and the deprecated `memkind_get_kind_by_partition`).

use core::ffi::{c_char, c_int, c_void};

use super::arena as ar;
use super::{kind_arg, MemkindT};
use crate::arena::heap;
use crate::error::code;
use crate::kind::{default_kind, Kind, KINDS, STATIC_KINDS};

/// memkind 1.14.0.
pub const VERSION: c_int = 1_014_000;

/// `memkind_malloc(kind, size)`: NULL for size 0; NULL + ENOMEM for an unavailable kind.
///
/// DEFAULT's fast path is a leaf: one compare that says "DEFAULT, started, no probe attached"
/// (`probe::is_default_unprobed`), one for "size is neither 0 nor oversize" and a tail call
/// into jemalloc. Every other exit is a tail call too, so no frame is built: DEFAULT while a
/// probe is attached (or before start-up) to its counted path, other kinds to the arena
/// layer's entry point.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_malloc(kind: MemkindT, size: usize) -> *mut c_void {
    if crate::probe::is_default_unprobed(kind.cast()) {
        return crate::arena::default::malloc_any(size);
    }
    if core::ptr::eq(kind, default_kind()) {
        return malloc_default_other(size);
    }
    ar::memkind_arena_malloc(kind, size)
}

/// malloc of DEFAULT while a probe is attached, or before start-up: counted, or (traced)
/// through the arena layer's entry point, where the trace tier sees the call (counted there).
/// Size 0 is NULL before either, as detached.
#[cold]
#[inline(never)]
extern "C" fn malloc_default_other(size: usize) -> *mut c_void {
    if !crate::probe::on() {
        return crate::arena::default::malloc_any(size);
    }
    // Counted: first a block from the thread's magazine of DEFAULT, counted in its record (the
    // frameless part); anything else is a tail call.
    if !crate::probe::tracing() {
        if let Some(p) = heap::pop_counted(default_kind(), size) {
            return p;
        }
    }
    malloc_default_probed(size)
}

/// [`malloc_default_other`] past the magazine while a probe is attached.
#[cold]
#[inline(never)]
extern "C" fn malloc_default_probed(size: usize) -> *mut c_void {
    if size == 0 {
        return core::ptr::null_mut();
    }
    if crate::probe::tracing() {
        return ar::memkind_arena_malloc(default_kind(), size);
    }
    heap::counted::malloc_default(size)
}

/// `memkind_calloc(kind, num, size)`: NULL + ENOMEM on overflow.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_calloc(kind: MemkindT, num: usize, size: usize) -> *mut c_void {
    if core::ptr::eq(kind, default_kind()) && !(crate::probe::on() && crate::probe::tracing()) {
        return heap::calloc(default_kind(), num, size);
    }
    ar::memkind_arena_calloc(kind, num, size)
}

/// `memkind_posix_memalign(kind, memptr, alignment, size)`.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_posix_memalign(
    kind: MemkindT,
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    ar::memkind_arena_posix_memalign(kind, memptr, alignment, size)
}

/// `memkind_realloc(kind, ptr, size)`; a NULL kind means "the kind of ptr".
#[unsafe(no_mangle)]
pub extern "C" fn memkind_realloc(kind: MemkindT, ptr: *mut c_void, size: usize) -> *mut c_void {
    if kind.is_null() {
        return ar::memkind_arena_realloc_with_kind_detect(ptr, size);
    }
    ar::memkind_arena_realloc(kind, ptr, size)
}

/// `memkind_free(kind, ptr)`: the owner is taken from the pointer whatever `kind` says.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_free(kind: MemkindT, ptr: *mut c_void) {
    // The owner decides, whatever the caller named. DEFAULT named with no probe attached (the
    // common case, one compare) and DEFAULT memory, recognised from the extent map's id alone,
    // takes jemalloc's fast path; other memory is looked up in full. NULL, or DEFAULT while a
    // probe is attached, takes the same look-up with the probe checked. Any other named kind
    // goes straight to the arena layer's entry point (one owner lookup there, where uprobes
    // see it). Every exit is a tail call, so the fast paths build no frame.
    if crate::probe::is_default_unprobed(kind.cast()) {
        if heap::is_default_memory(ptr) {
            return crate::arena::default::free(ptr);
        }
        return free_by_owner(ptr);
    }
    if kind.is_null() || core::ptr::eq(kind, default_kind()) {
        return free_unnamed(ptr);
    }
    // Not validated here: the arena layer's free looks the owner up from the pointer and never
    // reads `kind` (a trace record validates it for the kind id it names), so a pointer that
    // is no kind of ours ends where a NULL kind does.
    ar::memkind_arena_free(kind, ptr)
}

/// [`memkind_free`] with a NULL kind, or DEFAULT while a probe is attached (or before
/// start-up): DEFAULT memory recognised from the extent map, the probe checked.
#[inline(never)]
extern "C" fn free_unnamed(ptr: *mut c_void) {
    if heap::is_default_memory(ptr) {
        return free_default(ptr);
    }
    free_by_owner(ptr)
}

/// [`memkind_free`] of a pointer that is not plainly DEFAULT's, with DEFAULT or NULL named: the
/// full owner lookup. This and the other out-of-line helpers of the fast paths are `extern "C"`
/// (they cannot unwind: a panic aborts in them), so the fast paths reach them by a tail call
/// instead of a call inside a frame with an abort-on-unwind landing pad.
#[inline(never)]
extern "C" fn free_by_owner(ptr: *mut c_void) {
    match heap::owner(ptr) {
        heap::Owner::Kind(k) if k.is_default() => free_default(ptr),
        heap::Owner::Kind(k) => ar::memkind_arena_free(k, ptr),
        heap::Owner::Foreign => ar::memkind_arena_free_with_kind_detect(ptr),
    }
}

/// Free a block of DEFAULT: jemalloc's fast path, counted while a probe is attached; while a
/// trace is attached, through the arena layer's entry point (where its uprobe sees the call).
#[inline(always)]
fn free_default(ptr: *mut c_void) {
    if crate::probe::on() {
        return free_default_probed(ptr);
    }
    crate::arena::default::free(ptr)
}

/// [`free_default`] while a probe is attached.
#[cold]
#[inline(never)]
extern "C" fn free_default_probed(ptr: *mut c_void) {
    // Counted: into the thread's magazine of DEFAULT, counted in its record (the frameless
    // part); anything else is a tail call.
    if !crate::probe::tracing() && heap::counted::push_default(ptr) {
        return;
    }
    free_default_probed_full(ptr)
}

/// [`free_default_probed`] past the magazine.
#[cold]
#[inline(never)]
extern "C" fn free_default_probed_full(ptr: *mut c_void) {
    if crate::probe::tracing() {
        return ar::memkind_arena_free(default_kind(), ptr);
    }
    heap::counted::free_default(ptr)
}

/// `memkind_malloc_usable_size(kind, ptr)`: 0 for NULL and foreign pointers.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_malloc_usable_size(_kind: MemkindT, ptr: *mut c_void) -> usize {
    ar::memkind_arena_malloc_usable_size(ptr)
}

/// `memkind_detect_kind(ptr)`: NULL for NULL, MEMKIND_DEFAULT for pointers we did not hand out.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_detect_kind(ptr: *mut c_void) -> MemkindT {
    ar::memkind_arena_detect_kind(ptr)
}

/// `memkind_check_available(kind)`.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_check_available(kind: MemkindT) -> c_int {
    match kind_arg(kind) {
        Some(k) => k.check_available().map_or_else(|e| e.code(), |()| 0),
        None => code::INVALID,
    }
}

/// `memkind_get_capacity(kind)`.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_get_capacity(kind: MemkindT) -> isize {
    kind_arg(kind).map_or(-1, Kind::capacity)
}

/// `memkind_get_version()`.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_get_version() -> c_int {
    VERSION
}

/// `memkind_error_message(err, msg, size)`: 1.14's text, truncated to `size` and NUL
/// terminated. Fixed messages zero-fill the rest of the buffer (strncpy), formatted ones do not
/// (snprintf), as 1.14.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_error_message(err: c_int, msg: *mut c_char, size: usize) {
    if msg.is_null() || size == 0 {
        return;
    }
    // SAFETY: the caller provides `size` writable bytes at `msg` (memkind.h contract).
    let out = unsafe { core::slice::from_raw_parts_mut(msg.cast::<u8>(), size) };
    let mut w = Truncating { buf: out, len: 0 };
    let _ = crate::error::message(err, &mut w);
    let len = w.len.min(size - 1);
    let formatted = err == code::TOOMANY || crate::error::is_unknown(err);
    if formatted {
        out[len] = 0;
    } else {
        out[len..].fill(0);
    }
    out[size - 1] = 0;
}

struct Truncating<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
            }
            self.len += 1;
        }
        Ok(())
    }
}

/// `memkind_create_kind(memtype, policy, flags, &kind)`: maps onto a static kind (1.14's table).
#[unsafe(no_mangle)]
#[allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "C ABI entry point: the out pointer is the caller's, per memkind.h"
)]
pub extern "C" fn memkind_create_kind(
    memtype: c_int,
    policy: c_int,
    flags: c_int,
    kind: *mut MemkindT,
) -> c_int {
    if kind.is_null() {
        return code::INVALID;
    }
    match crate::kind::create_kind(memtype as u32, policy, flags as u32) {
        Ok(k) => {
            // SAFETY: non-null out pointer per memkind.h.
            unsafe { *kind = k };
            0
        }
        Err(e) => e.code(),
    }
}

/// `memkind_destroy_kind(kind)`: static kinds stay usable (returns 0, as 1.14).
#[unsafe(no_mangle)]
pub extern "C" fn memkind_destroy_kind(kind: MemkindT) -> c_int {
    match kind_arg(kind) {
        Some(k) => crate::arena::destroy_kind(k).map_or_else(|e| e.code(), |()| 0),
        None => code::INVALID,
    }
}

/// `memkind_get_kind_by_partition(partition, &kind)` (deprecated): -1 and NULL outside 0..26
/// and free slots.
#[unsafe(no_mangle)]
#[allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "C ABI entry point: the out pointer is the caller's, per memkind.h"
)]
pub extern "C" fn memkind_get_kind_by_partition(partition: c_int, kind: *mut MemkindT) -> c_int {
    if kind.is_null() {
        return code::INVALID;
    }
    let found = usize::try_from(partition)
        .ok()
        .and_then(|p| KINDS.get(p))
        .and_then(|k| Kind::from_ptr(k));
    // SAFETY: non-null out pointer.
    unsafe { *kind = found.map_or(core::ptr::null(), |k| k as *const Kind) };
    if found.is_some() {
        0
    } else {
        code::UNAVAILABLE
    }
}

const _: () = assert!(STATIC_KINDS == 26);

/// `memkind_update_cached_stats()`.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_update_cached_stats() -> c_int {
    match crate::jemalloc::refresh_stats() {
        Ok(()) => 0,
        Err(_) => code::OPERATION_FAILED,
    }
}

// --- PMEM kinds (memkind_create_pmem, memkind_config_*, memkind_check_dax_path) ---------------

/// `struct memkind_config` (opaque in memkind.h): the PMEM directory (the caller's string,
/// borrowed until `memkind_create_pmem_with_config`), the maximum size and the usage policy.
#[derive(Debug)]
pub struct MemkindConfig {
    path: *const c_char,
    size: usize,
    policy: c_int,
}

fn path_bytes<'a>(dir: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: memkind.h: `dir` is a NUL-terminated path (checked non-null here).
    (!dir.is_null()).then(|| unsafe { core::ffi::CStr::from_ptr(dir) }.to_bytes())
}

fn create_pmem_into(dir: *const c_char, max: usize, policy: c_int, kind: *mut MemkindT) -> c_int {
    let Some(dir) = path_bytes(dir) else {
        return code::INVALID;
    };
    if kind.is_null() {
        return code::INVALID;
    }
    match crate::arena::create_pmem(dir, max, policy) {
        Ok(k) => {
            // SAFETY: non-null out pointer per memkind.h.
            unsafe { *kind = k };
            0
        }
        Err(e) => e.code(),
    }
}

/// `memkind_create_pmem(dir, max_size, &kind)`: max 0 = unlimited, else ≥ 16 MiB (rounded up to
/// 2 MiB); a directory where no file can be created → MEMKIND_ERROR_INVALID.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_create_pmem(
    dir: *const c_char,
    max_size: usize,
    kind: *mut MemkindT,
) -> c_int {
    create_pmem_into(dir, max_size, crate::kind::pmem::POLICY_DEFAULT, kind)
}

/// `memkind_create_pmem_with_config(cfg, &kind)`.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_create_pmem_with_config(
    cfg: *mut MemkindConfig,
    kind: *mut MemkindT,
) -> c_int {
    if cfg.is_null() {
        return code::INVALID;
    }
    // SAFETY: a config made by `memkind_config_new` (memkind.h contract).
    let cfg = unsafe { &*cfg };
    create_pmem_into(cfg.path, cfg.size, cfg.policy, kind)
}

/// `memkind_config_new()`: an empty config (no path, unlimited, DEFAULT policy).
#[unsafe(no_mangle)]
pub extern "C" fn memkind_config_new() -> *mut MemkindConfig {
    Box::into_raw(Box::new(MemkindConfig {
        path: core::ptr::null(),
        size: 0,
        policy: crate::kind::pmem::POLICY_DEFAULT,
    }))
}

/// `memkind_config_delete(cfg)`.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_config_delete(cfg: *mut MemkindConfig) {
    if !cfg.is_null() {
        // SAFETY: made by `memkind_config_new` and not used afterwards (memkind.h contract).
        drop(unsafe { Box::from_raw(cfg) });
    }
}

fn with_config(cfg: *mut MemkindConfig, f: impl FnOnce(&mut MemkindConfig)) {
    if !cfg.is_null() {
        // SAFETY: a live config made by `memkind_config_new`.
        f(unsafe { &mut *cfg })
    }
}

/// `memkind_config_set_path(cfg, dir)`: the string is used when the kind is created.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_config_set_path(cfg: *mut MemkindConfig, pmem_dir: *const c_char) {
    with_config(cfg, |c| c.path = pmem_dir)
}

/// `memkind_config_set_size(cfg, size)`.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_config_set_size(cfg: *mut MemkindConfig, pmem_size: usize) {
    with_config(cfg, |c| c.size = pmem_size)
}

/// `memkind_config_set_memory_usage_policy(cfg, policy)` (checked at creation: -13).
#[unsafe(no_mangle)]
pub extern "C" fn memkind_config_set_memory_usage_policy(cfg: *mut MemkindConfig, policy: c_int) {
    with_config(cfg, |c| c.policy = policy)
}

/// `memkind_check_dax_path(dir)`: 0 on a DAX mount, -3 elsewhere, -255 when no file can be
/// created in `dir`.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_check_dax_path(pmem_dir: *const c_char) -> c_int {
    match path_bytes(pmem_dir) {
        Some(d) => crate::kind::pmem::check_dax_path(d).map_or_else(|e| e.code(), |()| 0),
        None => code::INVALID,
    }
}
