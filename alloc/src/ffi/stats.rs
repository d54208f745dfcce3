//! Statistics, defragmentation and background threads (memkind.h).

use core::ffi::{c_char, c_int, c_void};

use super::{kind_arg, MemkindT};
use crate::error::code;
use crate::stats::{self, StatType};

/// `memkind_get_stat(kind, stat, &value)`: `kind` NULL is the whole process. Values are from
/// the last `memkind_update_cached_stats`. MEMKIND_ERROR_INVALID for an unknown stat type, a
/// NULL `value` or a pointer that is not a kind (`*value` untouched), and for a kind with an
/// arena created since the last update (jemalloc has no statistics for it yet; `*value` is 0,
/// as in 1.14).
#[unsafe(no_mangle)]
pub extern "C" fn memkind_get_stat(kind: MemkindT, stat: u32, value: *mut usize) -> c_int {
    let Some(stat) = StatType::from_raw(stat) else {
        return code::INVALID;
    };
    if value.is_null() {
        return code::INVALID;
    }
    let kind = if kind.is_null() {
        None
    } else {
        match kind_arg(kind) {
            Some(k) => Some(k),
            None => return code::INVALID,
        }
    };
    if kind.is_some() {
        // 1.14 zeroes the value before summing a kind's arenas, so it is 0 on failure (e.g. an
        // arena created since the last update_cached_stats).
        // SAFETY: non-null out pointer per memkind.h.
        unsafe { *value = 0 };
    }
    match stats::get(kind, stat) {
        Ok(v) => {
            // SAFETY: non-null out pointer per memkind.h.
            unsafe { *value = v };
            0
        }
        Err(e) => e.code(),
    }
}

/// `memkind_stats_print(write_cb, cbopaque, opts)`: jemalloc's statistics printer; a NULL
/// callback writes to stderr. MEMKIND_ERROR_INVALID for unknown option bits.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_stats_print(
    write_cb: Option<unsafe extern "C" fn(*mut c_void, *const c_char)>,
    cbopaque: *mut c_void,
    opts: u32,
) -> c_int {
    crate::arena::init::ensure();
    // SAFETY: the callback contract is memkind.h's (callable with `cbopaque` and C strings).
    match unsafe { stats::print(write_cb, cbopaque, opts) } {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

/// `memkind_defrag_reallocate(kind, ptr)`: the moved block, or NULL when `ptr` stays.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_defrag_reallocate(kind: MemkindT, ptr: *mut c_void) -> *mut c_void {
    stats::defrag(kind_arg(kind), ptr)
}

/// `memkind_set_bg_threads(state)`: 0 or MEMKIND_ERROR_INVALID (1.14's code).
#[unsafe(no_mangle)]
pub extern "C" fn memkind_set_bg_threads(state: bool) -> c_int {
    match stats::set_bg_threads(state) {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}
