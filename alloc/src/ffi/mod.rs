//! The C ABI: memkind 1.14's exported names with its semantics, as thin shims over the kind and
//! arena layers. No logic lives here beyond argument checks and error-code mapping.
//!
//! No panic can cross into C: `extern "C"` functions abort rather than unwind.
#![allow(unsafe_code, reason = "C ABI entry points")]
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "C ABI entry points: the pointer contracts are memkind.h's, stated on each function; \
              marking them `unsafe fn` would not change what C callers may do"
)]

pub mod arena;
pub mod fixed;
pub mod globals;
pub mod hbw;
pub mod memkind;
pub mod memtier;
pub mod stats;

use crate::kind::Kind;

/// `memkind_t`.
pub type MemkindT = *const Kind;

/// A kind argument from C: `None` for NULL or for a pointer that is not one of our kinds.
#[inline(always)]
pub(crate) fn kind_arg(k: MemkindT) -> Option<&'static Kind> {
    Kind::from_ptr(k)
}
