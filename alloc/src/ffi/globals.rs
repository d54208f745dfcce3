//! The static kinds as exported `memkind_t` globals (`extern memkind_t MEMKIND_DEFAULT;` …).
#![allow(non_upper_case_globals, reason = "C names")]

use crate::kind::{Kind, KINDS};

/// A `memkind_t` as a C global: pointer-sized, immutable.
#[repr(transparent)]
pub struct KindPtr(pub *const Kind);

// SAFETY: the pointer targets a `static` of only atomics and immutable data; sharing the pointer
// value between threads is what C does with these globals.
unsafe impl Sync for KindPtr {}

macro_rules! globals {
    ($($part:literal $name:ident $kname:literal ($family:path, $variant:expr) $deprecated:literal $ops:ident;)*) => {$(
        #[doc = concat!("`MEMKIND_", stringify!($name), "`")]
        #[unsafe(export_name = concat!("MEMKIND_", stringify!($name)))]
        pub static $name: KindPtr = KindPtr(&KINDS[$part]);
    )*};
}

crate::kind::static_kinds!(globals);
