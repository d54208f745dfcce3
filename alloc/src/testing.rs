//! What the end-to-end tests in `tests/` need from inside the library, and nothing else: the one
//! door to the internals, hidden from the docs and not part of the API. Everything here is safe
//! to call with any argument: no raw pointer is dereferenced, no memory is freed or unmapped.
//! (The tests reach the C ABI as C does, through `extern "C"` declarations of its exported
//! symbols.)

use core::ffi::c_void;

/// Explicit jemalloc thread caches alive right now (one per thread and non-default kind used).
pub fn live_thread_caches() -> usize {
    crate::arena::live_thread_caches()
}

/// The NUMA node of each page in `pages` (or a negative errno), from move_pages(2) without
/// moving anything: only the page tables are read, never the memory. `pages` and `status` have
/// the same length.
pub fn query_pages(pages: &[*mut c_void], status: &mut [i32]) -> Result<(), i32> {
    crate::sys::query_pages(pages, status).map_err(|e| e as i32)
}
