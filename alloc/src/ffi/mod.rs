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
pub mod operations;
pub mod ops;
pub mod stats;

use crate::kind::Kind;

/// `memkind_t`.
pub type MemkindT = *const Kind;

/// A kind argument from C: `None` for NULL or for a pointer that is not one of our kinds.
#[inline(always)]
pub(crate) fn kind_arg(k: MemkindT) -> Option<&'static Kind> {
    Kind::from_ptr(k)
}

#[cfg(test)]
mod tests {
    /// The proof that no panic crosses the C boundary: a panic that reaches an `extern "C"`
    /// function aborts the process instead of unwinding into the caller (Rust >= 1.81). Every
    /// entry point C can reach (this module's functions, the extent hooks, the fork, thread-exit
    /// and constructor callbacks) is `extern "C"`, and none is `extern "C-unwind"`.
    #[test]
    fn panic_in_extern_c_aborts() {
        extern "C" fn boom() {
            panic!("must not unwind into C");
        }
        // SAFETY: fork(2); the child only calls `boom` and exits, the parent waits for it.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // Quiet: the expected panic message is not a test failure.
            std::panic::set_hook(Box::new(|_| {}));
            boom();
            // Not reached when the panic aborts; exit 0 would mean it unwound past `boom`.
            // SAFETY: _exit(2) in the forked child.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child, `status` is a valid out-parameter.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGABRT,
            "status {status:#x}"
        );
    }
}
