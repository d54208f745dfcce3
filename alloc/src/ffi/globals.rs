//! The static kinds as exported `memkind_t` globals (`extern memkind_t MEMKIND_DEFAULT;` …).
#![allow(non_upper_case_globals, reason = "C names")]

use crate::kind::{partition as p, Kind, KINDS};

/// A `memkind_t` as a C global: pointer-sized, immutable.
#[repr(transparent)]
pub struct KindPtr(pub *const Kind);

// SAFETY: the pointer targets a `static` of only atomics and immutable data; sharing the pointer
// value between threads is what C does with these globals.
unsafe impl Sync for KindPtr {}

macro_rules! kinds {
    ($($name:ident = $part:expr;)*) => {$(
        #[doc = concat!("`", stringify!($name), "`")]
        #[unsafe(no_mangle)]
        pub static $name: KindPtr = KindPtr(&KINDS[$part]);
    )*};
}

kinds! {
    MEMKIND_DEFAULT = p::DEFAULT;
    MEMKIND_HBW = p::HBW;
    MEMKIND_HBW_HUGETLB = p::HBW_HUGETLB;
    MEMKIND_HBW_PREFERRED = p::HBW_PREFERRED;
    MEMKIND_HBW_PREFERRED_HUGETLB = p::HBW_PREFERRED_HUGETLB;
    MEMKIND_HUGETLB = p::HUGETLB;
    MEMKIND_HBW_GBTLB = p::HBW_GBTLB;
    MEMKIND_HBW_PREFERRED_GBTLB = p::HBW_PREFERRED_GBTLB;
    MEMKIND_GBTLB = p::GBTLB;
    MEMKIND_HBW_INTERLEAVE = p::HBW_INTERLEAVE;
    MEMKIND_INTERLEAVE = p::INTERLEAVE;
    MEMKIND_REGULAR = p::REGULAR;
    MEMKIND_HBW_ALL = p::HBW_ALL;
    MEMKIND_HBW_ALL_HUGETLB = p::HBW_ALL_HUGETLB;
    MEMKIND_DAX_KMEM = p::DAX_KMEM;
    MEMKIND_DAX_KMEM_ALL = p::DAX_KMEM_ALL;
    MEMKIND_DAX_KMEM_PREFERRED = p::DAX_KMEM_PREFERRED;
    MEMKIND_DAX_KMEM_INTERLEAVE = p::DAX_KMEM_INTERLEAVE;
    MEMKIND_HIGHEST_CAPACITY = p::HIGHEST_CAPACITY;
    MEMKIND_HIGHEST_CAPACITY_PREFERRED = p::HIGHEST_CAPACITY_PREFERRED;
    MEMKIND_HIGHEST_CAPACITY_LOCAL = p::HIGHEST_CAPACITY_LOCAL;
    MEMKIND_HIGHEST_CAPACITY_LOCAL_PREFERRED = p::HIGHEST_CAPACITY_LOCAL_PREFERRED;
    MEMKIND_LOWEST_LATENCY_LOCAL = p::LOWEST_LATENCY_LOCAL;
    MEMKIND_LOWEST_LATENCY_LOCAL_PREFERRED = p::LOWEST_LATENCY_LOCAL_PREFERRED;
    MEMKIND_HIGHEST_BANDWIDTH_LOCAL = p::HIGHEST_BANDWIDTH_LOCAL;
    MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED = p::HIGHEST_BANDWIDTH_LOCAL_PREFERRED;
}
