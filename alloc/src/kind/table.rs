// The one table of memkind's 26 static kinds (see `static_kinds!`). The file holds nothing but
// the table, so that tools outside the library (the benchmark) can `include!` it and read the
// same list without linking the library (plain comments here: an included file has no inner
// doc comments).

/// The static kinds, once: `static_kinds!(callback)` calls `callback!` with one row per kind:
/// partition number (memkind_deprecated.h's `MEMKIND_PARTITION_*`, also the kind's slot in
/// `kind::KINDS`, so the rows are in partition order), the name after `MEMKIND_`, memkind's kind
/// name, (family, variant), whether memkind_deprecated.h is where C finds the kind, and the
/// exported operations table (`MEMKIND_*_OPS`, the C ABI's `ffi::ops`) the kind's `ops` field
/// points to.
///
/// Every list of the static kinds is generated from it: the registry's first slots,
/// `kind::partition` (`kind::registry!`), the exported `MEMKIND_*`
/// globals (`ffi::globals`), the Rust constants `Memkind::DEFAULT` … (`api`), and the
/// benchmark's list of kinds (`tests/src/bin/memkind-bench/vtable.rs` includes this file).
macro_rules! static_kinds {
    ($callback:ident) => {
        $callback! {
             0 DEFAULT "memkind_default" (default::FAMILY, 0) false MEMKIND_DEFAULT_OPS;
             1 HBW "memkind_hbw" (hbw::FAMILY, hbw::HBW) false MEMKIND_HBW_OPS;
             2 HBW_HUGETLB "memkind_hbw_hugetlb" (hbw::FAMILY_HUGETLB, hbw::HBW_HUGETLB) false MEMKIND_HBW_HUGETLB_OPS;
             3 HBW_PREFERRED "memkind_hbw_preferred" (hbw::FAMILY, hbw::HBW_PREFERRED) false MEMKIND_HBW_PREFERRED_OPS;
             4 HBW_PREFERRED_HUGETLB "memkind_hbw_preferred_hugetlb" (hbw::FAMILY_HUGETLB, hbw::HBW_PREFERRED_HUGETLB) false MEMKIND_HBW_PREFERRED_HUGETLB_OPS;
             5 HUGETLB "memkind_hugetlb" (hugetlb::FAMILY, hugetlb::HUGETLB) false MEMKIND_HUGETLB_OPS;
             6 HBW_GBTLB "memkind_hbw_gbtlb" (hbw::FAMILY_HUGETLB, hbw::HBW_GBTLB) true MEMKIND_HBW_GBTLB_OPS;
             7 HBW_PREFERRED_GBTLB "memkind_hbw_preferred_gbtlb" (hbw::FAMILY_HUGETLB, hbw::HBW_PREFERRED_GBTLB) true MEMKIND_HBW_PREFERRED_GBTLB_OPS;
             8 GBTLB "memkind_gbtlb" (hugetlb::FAMILY, hugetlb::GBTLB) true MEMKIND_GBTLB_OPS;
             9 HBW_INTERLEAVE "memkind_hbw_interleave" (hbw::FAMILY, hbw::HBW_INTERLEAVE) false MEMKIND_HBW_INTERLEAVE_OPS;
            10 INTERLEAVE "memkind_interleave" (interleave::FAMILY, 0) false MEMKIND_INTERLEAVE_OPS;
            11 REGULAR "memkind_regular" (regular::FAMILY, 0) false MEMKIND_REGULAR_OPS;
            12 HBW_ALL "memkind_hbw_all" (hbw::FAMILY, hbw::HBW_ALL) false MEMKIND_HBW_ALL_OPS;
            13 HBW_ALL_HUGETLB "memkind_hbw_all_hugetlb" (hbw::FAMILY_HUGETLB, hbw::HBW_ALL_HUGETLB) false MEMKIND_HBW_ALL_HUGETLB_OPS;
            14 DAX_KMEM "memkind_dax_kmem" (dax_kmem::FAMILY, dax_kmem::DAX_KMEM) false MEMKIND_DAX_KMEM_OPS;
            15 DAX_KMEM_ALL "memkind_dax_kmem_all" (dax_kmem::FAMILY, dax_kmem::DAX_KMEM_ALL) false MEMKIND_DAX_KMEM_ALL_OPS;
            16 DAX_KMEM_PREFERRED "memkind_dax_kmem_preferred" (dax_kmem::FAMILY, dax_kmem::DAX_KMEM_PREFERRED) false MEMKIND_DAX_KMEM_PREFERRED_OPS;
            17 DAX_KMEM_INTERLEAVE "memkind_dax_kmem_interleave" (dax_kmem::FAMILY, dax_kmem::DAX_KMEM_INTERLEAVE) false MEMKIND_DAX_KMEM_INTERLEAVE_OPS;
            18 HIGHEST_CAPACITY "memkind_highest_capacity" (memattr::FAMILY, memattr::HIGHEST_CAPACITY) false MEMKIND_HIGHEST_CAPACITY_OPS;
            19 HIGHEST_CAPACITY_PREFERRED "memkind_highest_capacity_preferred" (memattr::FAMILY, memattr::HIGHEST_CAPACITY_PREFERRED) false MEMKIND_HIGHEST_CAPACITY_PREFERRED_OPS;
            20 HIGHEST_CAPACITY_LOCAL "memkind_highest_capacity_local" (memattr::FAMILY, memattr::HIGHEST_CAPACITY_LOCAL) false MEMKIND_HIGHEST_CAPACITY_LOCAL_OPS;
            21 HIGHEST_CAPACITY_LOCAL_PREFERRED "memkind_highest_capacity_local_preferred" (memattr::FAMILY, memattr::HIGHEST_CAPACITY_LOCAL_PREFERRED) false MEMKIND_HIGHEST_CAPACITY_LOCAL_PREFERRED_OPS;
            22 LOWEST_LATENCY_LOCAL "memkind_lowest_latency_local" (memattr::FAMILY, memattr::LOWEST_LATENCY_LOCAL) false MEMKIND_LOWEST_LATENCY_LOCAL_OPS;
            23 LOWEST_LATENCY_LOCAL_PREFERRED "memkind_lowest_latency_local_preferred" (memattr::FAMILY, memattr::LOWEST_LATENCY_LOCAL_PREFERRED) false MEMKIND_LOWEST_LATENCY_LOCAL_PREFERRED_OPS;
            24 HIGHEST_BANDWIDTH_LOCAL "memkind_highest_bandwidth_local" (memattr::FAMILY, memattr::HIGHEST_BANDWIDTH_LOCAL) false MEMKIND_HIGHEST_BANDWIDTH_LOCAL_OPS;
            25 HIGHEST_BANDWIDTH_LOCAL_PREFERRED "memkind_highest_bandwidth_local_preferred" (memattr::FAMILY, memattr::HIGHEST_BANDWIDTH_LOCAL_PREFERRED) false MEMKIND_HIGHEST_BANDWIDTH_LOCAL_PREFERRED_OPS;
        }
    };
}
