//! The one reader of the `MEMKIND_*` environment variables, read with `secure_getenv`: [`get`]
//! (the allocator's, parsed once at start-up without allocating) and [`nodes`] (the
//! node-selection ones, parsed when a node-bound kind is first used, as 1.14 does).
//!
//! Parsing is pure ([`Env::parse`] takes a lookup function) so tests need no process
//! environment. A malformed value is kept as an error and reported as `MEMKIND_ERROR_ENVIRON` by
//! the kinds it affects, never as a crash.

use std::sync::OnceLock;

use crate::error::Error;
use crate::nodemask::{NodeSpec, NodelistError};

/// memkind's cap on arenas per kind (`MEMKIND_ARENA_NUM_PER_KIND` is at most this).
pub const MAX_ARENAS_PER_KIND: u32 = 256;

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

/// 1.14's reading of MEMKIND_BACKGROUND_THREAD_LIMIT: `strtoul(s, &end, 10)` accepted when
/// `*end == '\0'`, errno is not set and the value is at most `UINT_MAX`. So leading white space
/// and a sign are allowed (a negative value wraps around, so only `-0` passes), the empty string
/// is 0, and trailing characters (even spaces) are refused.
fn strtoul_u32(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut negative = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        negative = b[i] == b'-';
        i += 1;
    }
    let digits = i;
    let mut v: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        // Overflow: strtoul returns ULONG_MAX with ERANGE, which 1.14 refuses.
        v = v.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
        i += 1;
    }
    if i == digits {
        // No number: strtoul leaves `end` at the start of the string.
        return b.is_empty().then_some(0);
    }
    if i != b.len() {
        return None;
    }
    u32::try_from(if negative { v.wrapping_neg() } else { v }).ok()
}

impl Env {
    /// Parse from a lookup function (`secure_getenv` in production). Allocates nothing.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Env {
        let arenas_per_kind = match get("MEMKIND_ARENA_NUM_PER_KIND") {
            None => Ok(None),
            Some(v) => match parse_u64(v) {
                Some(n) if n >= 1 && n <= u64::from(MAX_ARENAS_PER_KIND) => {
                    Ok(Some((n as u32).next_power_of_two()))
                }
                _ => Err(Error::Environ),
            },
        };
        let flag = |name: &str| get(name).is_some_and(|v| v.trim() == "1");
        let background_thread_limit = match get("MEMKIND_BACKGROUND_THREAD_LIMIT") {
            None => Ok(None),
            Some(v) => strtoul_u32(v).map(Some).ok_or(Error::Environ),
        };
        Env {
            arenas_per_kind,
            background_thread_limit,
            hog_memory: flag("MEMKIND_HOG_MEMORY"),
            debug: flag("MEMKIND_DEBUG"),
        }
    }
}

/// `secure_getenv(name)`: the value's bytes in the process environment, without allocating
/// (start-up runs this, and an allocation there may re-enter the library through an interposed
/// `malloc`). Valid until the environment is changed (`setenv`/`putenv` of the same name).
pub fn lookup(name: &str) -> Option<&'static [u8]> {
    let mut buf = [0u8; 64];
    let n = name.len();
    if n >= buf.len() || name.as_bytes().contains(&0) {
        return None;
    }
    buf[..n].copy_from_slice(name.as_bytes());
    extern "C" {
        fn secure_getenv(name: *const libc::c_char) -> *mut libc::c_char;
    }
    #[allow(unsafe_code, reason = "libc call")]
    // SAFETY: `buf` holds a NUL-terminated name; a non-null result points into the environment,
    // a NUL-terminated string that lives as long as that variable is not replaced.
    unsafe {
        let p = secure_getenv(buf.as_ptr().cast());
        (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_bytes())
    }
}

/// [`lookup`] as text; a value that is not UTF-8 reads as U+FFFD (malformed for every variable).
fn lookup_str(name: &str) -> Option<&'static str> {
    lookup(name).map(|b| core::str::from_utf8(b).unwrap_or("\u{fffd}"))
}

/// `secure_getenv(name)` as an owned string (for readers that run after start-up).
pub fn secure_getenv(name: &str) -> Option<String> {
    lookup(name).map(|b| String::from_utf8_lossy(b).into_owned())
}

static ENV: OnceLock<Env> = OnceLock::new();

/// The process's environment, parsed on first use (at start-up).
pub fn get() -> &'static Env {
    ENV.get_or_init(|| Env::parse(lookup_str))
}

/// The parsed environment if parsing finished, without waiting. Parsing allocates, and with an
/// interposed `malloc` (memkind's libmemtier.so.0) those allocations re-enter the library, whose
/// paths must then not wait for the parse they are part of.
pub fn try_get() -> Option<&'static Env> {
    ENV.get()
}

/// The memkind environment variables that steer node selection, already parsed.
///
/// memkind 1.14 reads them with `secure_getenv` when a kind is first used; a malformed value
/// makes only the kinds that read it unavailable (`MEMKIND_ERROR_ENVIRON`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvConfig {
    /// `MEMKIND_HBW_NODES`.
    pub hbw_nodes: Option<Result<NodeSpec, NodelistError>>,
    /// `MEMKIND_DAX_KMEM_NODES`.
    pub dax_kmem_nodes: Option<Result<NodeSpec, NodelistError>>,
    /// `MEMKIND_HBW_THRESHOLD` in MB/s.
    pub hbw_threshold: Option<Result<u64, ThresholdError>>,
}

/// A malformed `MEMKIND_HBW_THRESHOLD`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MEMKIND_HBW_THRESHOLD {0:?}: expected a decimal number of MB/s <= 4294967295")]
pub struct ThresholdError(pub String);

impl EnvConfig {
    /// Parses the three variables from a lookup function (`None` = unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        EnvConfig {
            hbw_nodes: get("MEMKIND_HBW_NODES").map(|s| NodeSpec::parse(&s)),
            dax_kmem_nodes: get("MEMKIND_DAX_KMEM_NODES").map(|s| NodeSpec::parse(&s)),
            hbw_threshold: get("MEMKIND_HBW_THRESHOLD").map(|s| parse_threshold(&s)),
        }
    }
}

/// `strtoull(s, &end, 10)` accepted only if it consumed everything, did not overflow and is
/// `<= UINT_MAX` (memkind_mem_attributes.c `set_closest_numanode_mem_attr`). Like strtoull,
/// leading whitespace and a sign are allowed (`-0` is 0, `-5` wraps and is rejected). Unlike
/// 1.14, an empty string is rejected (strtoull reads it as 0).
pub fn parse_threshold(s: &str) -> Result<u64, ThresholdError> {
    let err = || ThresholdError(s.to_string());
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let v: u64 = digits.parse().map_err(|_| err())?;
    if (neg && v != 0) || v > u64::from(u32::MAX) {
        return Err(err());
    }
    Ok(v)
}

/// The node-selection variables of the process environment, parsed on first use (after start-up:
/// parsing allocates).
pub fn nodes() -> &'static EnvConfig {
    static NODES: OnceLock<EnvConfig> = OnceLock::new();
    NODES.get_or_init(|| EnvConfig::from_lookup(secure_getenv))
}

/// Log a line to stderr when `MEMKIND_DEBUG=1` (nothing while the environment is being parsed).
macro_rules! debug_log {
    ($($arg:tt)*) => {
        if $crate::env::try_get().is_some_and(|e| e.debug) {
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
        Env::parse(|k| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str()))
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
        // strtoul's reading, as 1.14: white space and a sign in front, "" is 0, "-0" is 0.
        assert_eq!(limit(" \t+2"), Ok(Some(2)));
        assert_eq!(limit(""), Ok(Some(0)));
        assert_eq!(limit("-0"), Ok(Some(0)));
        for bad in [
            "4294967296",
            "-1",
            "abc",
            " ",
            "+",
            "2x",
            "2 ",
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

    #[test]
    fn threshold_parsing() {
        assert_eq!(parse_threshold("204800"), Ok(204_800));
        assert_eq!(parse_threshold("0"), Ok(0));
        assert_eq!(parse_threshold(" 7"), Ok(7));
        assert_eq!(parse_threshold("+7"), Ok(7));
        assert_eq!(parse_threshold("-0"), Ok(0));
        assert_eq!(parse_threshold("4294967295"), Ok(4_294_967_295));
        for bad in [
            "",
            " ",
            "4294967296",
            "-1",
            "7 ",
            "7MB",
            "0x10",
            "1e3",
            "99999999999999999999",
        ] {
            assert!(parse_threshold(bad).is_err(), "{bad:?}");
        }
    }
}
