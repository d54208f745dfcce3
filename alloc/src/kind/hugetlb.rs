//! MEMKIND_HUGETLB (2 MiB pages) and the deprecated MEMKIND_GBTLB (1 GiB pages): anonymous
//! MAP_HUGETLB memory with no node policy. Available when the 2 MiB pool has pages reserved or
//! may overcommit (for GBTLB too, as 1.14); otherwise MEMKIND_ERROR_HUGETLB (-18).

use super::{Family, Kind, Placement};
use crate::error::Error;
use crate::sys::{Backing, HUGE_1G, HUGE_2M};

/// Variant: 2 MiB pages.
pub const HUGETLB: u8 = 0;
/// Variant: 1 GiB pages.
pub const GBTLB: u8 = 1;

fn page(k: &Kind) -> (Backing, usize) {
    if k.variant() == GBTLB {
        (Backing::Huge1G, HUGE_1G)
    } else {
        (Backing::Huge2M, HUGE_2M)
    }
}

fn placement(k: &Kind) -> Result<Placement, Error> {
    let (backing, size) = page(k);
    super::hugepages_available(size, None)?;
    Ok(Placement {
        backing,
        ..Placement::anon()
    })
}

/// 1.14's check_available is the 2 MiB hugepage check for both variants (MEMKIND_GBTLB_OPS
/// uses `memkind_hugetlb_check_available_2mb`): GBTLB reports available whenever 2 MiB pages
/// exist, while its allocations need 1 GiB pages (ENOMEM when none are reserved).
fn check(_k: &Kind) -> Result<(), Error> {
    super::hugepages_available(HUGE_2M, None)
}

fn capacity(k: &Kind) -> isize {
    super::hugepage_capacity(page(k).1)
}

/// The HUGETLB / GBTLB family.
pub static FAMILY: Family = Family {
    name: "hugetlb",
    placement,
    check,
    capacity,
    hooks: super::HookSet::Hugetlb,
};
