//! `memkind_create_fixed` (memkind.h).

use core::ffi::{c_int, c_void};

use super::MemkindT;
use crate::error::code;

/// `memkind_create_fixed(addr, size, &kind)`: a kind allocating from the caller's buffer
/// `[addr, addr+size)`, which must stay mapped and untouched by the caller until the kind is
/// destroyed. MEMKIND_ERROR_INVALID for a NULL `kind` or `addr`, a range that wraps, or one
/// that overlaps a live fixed kind's (1.14 accepts the last three); TOOMANY when every dynamic
/// slot is taken.
#[unsafe(no_mangle)]
pub extern "C" fn memkind_create_fixed(
    addr: *mut c_void,
    size: usize,
    kind: *mut MemkindT,
) -> c_int {
    if kind.is_null() {
        return code::INVALID;
    }
    match crate::arena::create_fixed(addr as usize, size) {
        Ok(k) => {
            // SAFETY: non-null out pointer per memkind.h.
            unsafe { *kind = k };
            0
        }
        Err(e) => e.code(),
    }
}
