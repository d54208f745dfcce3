//! Errors, and their mapping onto memkind 1.14's `MEMKIND_ERROR_*` codes and messages.

use core::fmt;

/// memkind.h's `MEMKIND_MAX_KIND` (used in the TOOMANY message, as 1.14 prints it).
pub const MEMKIND_MAX_KIND: usize = 512;

/// Everything a memkind call can fail with. `code()` gives the C ABI's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The kind cannot be used on this machine (`MEMKIND_ERROR_UNAVAILABLE`, -1).
    #[error("requested memory kind is not available")]
    Unavailable,
    /// mbind(2) failed (`MEMKIND_ERROR_MBIND`, -2).
    #[error("call to mbind() failed")]
    Mbind,
    /// mmap(2) failed (`MEMKIND_ERROR_MMAP`, -3).
    #[error("call to mmap() failed")]
    Mmap,
    /// Internal allocation failed (`MEMKIND_ERROR_MALLOC`, -6).
    #[error("call to malloc() failed")]
    Malloc,
    /// A `MEMKIND_*` environment variable is malformed (`MEMKIND_ERROR_ENVIRON`, -12).
    #[error("error parsing environment variable (MEMKIND_*)")]
    Environ,
    /// Bad arguments (`MEMKIND_ERROR_INVALID`, -13).
    #[error("invalid input arguments to memkind routine")]
    Invalid,
    /// Too many kinds (`MEMKIND_ERROR_TOOMANY`, -15).
    #[error("attempted to initialize more than the maximum number of kinds")]
    TooMany,
    /// Hugepages are not available (`MEMKIND_ERROR_HUGETLB`, -18).
    #[error("unable to allocate huge pages")]
    Hugetlb,
    /// The memory type does not exist here (`MEMKIND_ERROR_MEMTYPE_NOT_AVAILABLE`, -20).
    #[error("requested memory type is not available")]
    MemtypeNotAvailable,
    /// An operation failed (`MEMKIND_ERROR_OPERATION_FAILED`, -21).
    #[error("operation failed")]
    OperationFailed,
    /// jemalloc could not create an arena (`MEMKIND_ERROR_ARENAS_CREATE`, -22).
    #[error("call to jemalloc's arenas.create () failed")]
    ArenasCreate,
    /// Anything else (`MEMKIND_ERROR_RUNTIME`, -255).
    #[error("unspecified run-time error")]
    Runtime,
}

/// memkind.h's error numbers.
pub mod code {
    #![allow(missing_docs, reason = "names are memkind.h's")]
    #![allow(
        dead_code,
        reason = "memkind.h's whole table, not every code is produced"
    )]
    pub const SUCCESS: i32 = 0;
    pub const UNAVAILABLE: i32 = -1;
    pub const MBIND: i32 = -2;
    pub const MMAP: i32 = -3;
    pub const MALLOC: i32 = -6;
    pub const ENVIRON: i32 = -12;
    pub const INVALID: i32 = -13;
    pub const TOOMANY: i32 = -15;
    pub const BADOPS: i32 = -17;
    pub const HUGETLB: i32 = -18;
    pub const MEMTYPE_NOT_AVAILABLE: i32 = -20;
    pub const OPERATION_FAILED: i32 = -21;
    pub const ARENAS_CREATE: i32 = -22;
    pub const RUNTIME: i32 = -255;
}

impl Error {
    /// The `MEMKIND_ERROR_*` value.
    pub fn code(self) -> i32 {
        match self {
            Error::Unavailable => code::UNAVAILABLE,
            Error::Mbind => code::MBIND,
            Error::Mmap => code::MMAP,
            Error::Malloc => code::MALLOC,
            Error::Environ => code::ENVIRON,
            Error::Invalid => code::INVALID,
            Error::TooMany => code::TOOMANY,
            Error::Hugetlb => code::HUGETLB,
            Error::MemtypeNotAvailable => code::MEMTYPE_NOT_AVAILABLE,
            Error::OperationFailed => code::OPERATION_FAILED,
            Error::ArenasCreate => code::ARENAS_CREATE,
            Error::Runtime => code::RUNTIME,
        }
    }

    /// The inverse of [`Error::code`] (`None` for 0 and unknown numbers).
    pub fn from_code(c: i32) -> Option<Error> {
        Some(match c {
            code::UNAVAILABLE => Error::Unavailable,
            code::MBIND => Error::Mbind,
            code::MMAP => Error::Mmap,
            code::MALLOC => Error::Malloc,
            code::ENVIRON => Error::Environ,
            code::INVALID => Error::Invalid,
            code::TOOMANY => Error::TooMany,
            code::HUGETLB => Error::Hugetlb,
            code::MEMTYPE_NOT_AVAILABLE => Error::MemtypeNotAvailable,
            code::OPERATION_FAILED => Error::OperationFailed,
            code::ARENAS_CREATE => Error::ArenasCreate,
            code::RUNTIME => Error::Runtime,
            _ => return None,
        })
    }
}

/// memkind 1.14's `memkind_error_message` text for `err`, written into `out` without allocating.
pub fn message(err: i32, out: &mut impl fmt::Write) -> fmt::Result {
    let fixed = match err {
        code::UNAVAILABLE => "<memkind> Requested memory kind is not available",
        code::MBIND => "<memkind> Call to mbind() failed",
        code::MMAP => "<memkind> Call to mmap() failed",
        code::MALLOC => "<memkind> Call to malloc() failed",
        code::ENVIRON => "<memkind> Error parsing environment variable (MEMKIND_*)",
        code::INVALID => "<memkind> Invalid input arguments to memkind routine",
        code::TOOMANY => {
            return write!(
                out,
                "<memkind> Attempted to initialize more than maximum ({}) number of kinds",
                MEMKIND_MAX_KIND
            )
        }
        code::RUNTIME => "<memkind> Unspecified run-time error",
        libc::EINVAL => "<memkind> Alignment must be a power of two and larger than sizeof(void *)",
        libc::ENOMEM => "<memkind> Call to jemk_mallocx() failed",
        code::HUGETLB => "<memkind> unable to allocate huge pages",
        code::BADOPS => {
            "<memkind> memkind_ops structure is poorly formed (missing or incorrect functions)"
        }
        code::MEMTYPE_NOT_AVAILABLE => "<memkind> Requested memory type is not available",
        code::OPERATION_FAILED => "<memkind> Operation failed",
        code::ARENAS_CREATE => "<memkind> Call to jemalloc's arenas.create () failed",
        _ => return write!(out, "<memkind> Undefined error number: {err}"),
    };
    out.write_str(fixed)
}

/// True when `err` has no fixed message (printed as "Undefined error number").
pub fn is_unknown(err: i32) -> bool {
    !matches!(
        err,
        code::UNAVAILABLE
            | code::MBIND
            | code::MMAP
            | code::MALLOC
            | code::ENVIRON
            | code::INVALID
            | code::TOOMANY
            | code::RUNTIME
            | libc::EINVAL
            | libc::ENOMEM
            | code::HUGETLB
            | code::BADOPS
            | code::MEMTYPE_NOT_AVAILABLE
            | code::OPERATION_FAILED
            | code::ARENAS_CREATE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in [-1, -2, -3, -6, -12, -13, -15, -18, -20, -21, -22, -255] {
            assert_eq!(Error::from_code(c).unwrap().code(), c);
        }
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Error::from_code(-17), None);
    }

    #[test]
    fn messages() {
        let mut s = String::new();
        message(-1, &mut s).unwrap();
        assert_eq!(s, "<memkind> Requested memory kind is not available");
        s.clear();
        message(12345, &mut s).unwrap();
        assert_eq!(s, "<memkind> Undefined error number: 12345");
    }
}
