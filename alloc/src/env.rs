//! The `MEMKIND_*` environment variables that steer the allocator, read once with
//! `secure_getenv` (the node-selection ones are parsed by `topology::EnvConfig`).
//!
//! Parsing is pure ([`Env::parse`] takes a lookup function) so tests need no process
//! environment. A malformed value is kept as an error and reported as `MEMKIND_ERROR_ENVIRON` by
//! the kinds it affects, never as a crash.

use std::ffi::CString;
use std::sync::OnceLock;

use crate::error::Error;

/// Parsed environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// `MEMKIND_ARENA_NUM_PER_KIND`: arenas per kind, rounded up to a power of two.
    pub arenas_per_kind: Result<Option<u32>, Error>,
    /// `MEMKIND_HOG_MEMORY=1`: never give memory back to the OS.
    pub hog_memory: bool,
    /// `MEMKIND_DEBUG=1`: log to stderr.
    pub debug: bool,
    /// `MEMKIND_BACKGROUND_THREAD_LIMIT`: cap on jemalloc's background threads (0 = jemalloc's
    /// default). Malformed or above `UINT_MAX`: an error (1.14 aborts the process at load).
    pub background_thread_limit: Result<Option<u32>, Error>,
}

fn parse_u64(s: &str) -> Option<u64> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

impl Env {
    /// Parse from a lookup function (`secure_getenv` in production).
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Env {
        let arenas_per_kind = match get("MEMKIND_ARENA_NUM_PER_KIND") {
            None => Ok(None),
            Some(v) => match parse_u64(&v) {
                Some(n) if n >= 1 && n <= u64::from(crate::arena::MAX_ARENAS_PER_KIND) => {
                    Ok(Some((n as u32).next_power_of_two()))
                }
                _ => Err(Error::Environ),
            },
        };
        let flag = |name: &str| get(name).is_some_and(|v| v.trim() == "1");
        let background_thread_limit = match get("MEMKIND_BACKGROUND_THREAD_LIMIT") {
            None => Ok(None),
            Some(v) => match parse_u64(&v) {
                Some(n) if n <= u64::from(u32::MAX) => Ok(Some(n as u32)),
                _ => Err(Error::Environ),
            },
        };
        Env {
            arenas_per_kind,
            background_thread_limit,
            hog_memory: flag("MEMKIND_HOG_MEMORY"),
            debug: flag("MEMKIND_DEBUG"),
        }
    }
}

/// `secure_getenv(name)` as an owned string.
pub fn secure_getenv(name: &str) -> Option<String> {
    let c = CString::new(name).ok()?;
    extern "C" {
        fn secure_getenv(name: *const libc::c_char) -> *mut libc::c_char;
    }
    #[allow(unsafe_code, reason = "libc call")]
    // SAFETY: `c` is a valid NUL-terminated string; the returned pointer, if non-null, points
    // into the environment and is copied before any other environment call.
    unsafe {
        let p = secure_getenv(c.as_ptr());
        if p.is_null() {
            None
        } else {
            Some(std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }
}

/// The process's environment, parsed on first use.
pub fn get() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env::parse(secure_getenv))
}

/// Log a line to stderr when `MEMKIND_DEBUG=1`.
macro_rules! debug_log {
    ($($arg:tt)*) => {
        if $crate::env::get().debug {
            eprintln!("MEMKIND_DEBUG: {}", format_args!($($arg)*));
        }
    };
}
pub(crate) use debug_log;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Env::parse(move |k| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone()))
    }

    #[test]
    fn defaults() {
        let e = env(&[]);
        assert_eq!(e.arenas_per_kind, Ok(None));
        assert_eq!(e.background_thread_limit, Ok(None));
        assert!(!e.hog_memory && !e.debug);
    }

    #[test]
    fn background_thread_limit_is_a_u32() {
        let limit =
            |v: &str| env(&[("MEMKIND_BACKGROUND_THREAD_LIMIT", v)]).background_thread_limit;
        assert_eq!(limit("0"), Ok(Some(0)));
        assert_eq!(limit("2"), Ok(Some(2)));
        assert_eq!(limit("4294967295"), Ok(Some(u32::MAX)));
        for bad in [
            "4294967296",
            "-1",
            "abc",
            "",
            "2x",
            "99999999999999999999999",
        ] {
            assert_eq!(limit(bad), Err(Error::Environ), "{bad}");
        }
    }

    #[test]
    fn arena_num_rounds_up_and_rejects_garbage() {
        assert_eq!(
            env(&[("MEMKIND_ARENA_NUM_PER_KIND", "3")]).arenas_per_kind,
            Ok(Some(4))
        );
        assert_eq!(
            env(&[("MEMKIND_ARENA_NUM_PER_KIND", "1")]).arenas_per_kind,
            Ok(Some(1))
        );
        for bad in ["0", "abc", "-1", "", "99999999999999999999", "4x"] {
            assert_eq!(
                env(&[("MEMKIND_ARENA_NUM_PER_KIND", bad)]).arenas_per_kind,
                Err(Error::Environ),
                "{bad}"
            );
        }
    }

    #[test]
    fn flags_and_threshold() {
        let e = env(&[("MEMKIND_HOG_MEMORY", "1")]);
        assert!(e.hog_memory);
    }
}
