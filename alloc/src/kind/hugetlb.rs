//! MEMKIND_HUGETLB (2 MiB pages) and the deprecated MEMKIND_GBTLB: anonymous MAP_HUGETLB memory
//! with no node policy. GBTLB is what memkind 1.14 makes of it: 2 MiB pages too, in extents
//! whose mappings are rounded up to 1 GiB ([`Backing::Gbtlb`]), so its first allocation needs
//! 512 free 2 MiB pages. Both are available when the 2 MiB pool has pages reserved or may
//! overcommit (as 1.14); otherwise MEMKIND_ERROR_HUGETLB (-18).

use super::{Family, Kind, Placement};
use crate::error::Error;
use crate::sys::{Backing, HUGE_1G, HUGE_2M};

/// Variant: 2 MiB pages.
pub const HUGETLB: u8 = 0;
/// Variant: GBTLB (2 MiB pages in 1 GiB mappings).
pub const GBTLB: u8 = 1;

/// The backing and the page size `memkind_get_capacity` counts (1 GiB pages for GBTLB, whose
/// capacity 1.14 reports as 0 without 1 GiB pages).
fn page(k: &Kind) -> (Backing, usize) {
    if k.variant() == GBTLB {
        (Backing::Gbtlb, HUGE_1G)
    } else {
        (Backing::Huge2M, HUGE_2M)
    }
}

fn placement(k: &Kind) -> Result<Placement, Error> {
    let (backing, _) = page(k);
    super::hugepages_available(backing.page_size(), None)?;
    Ok(Placement {
        backing,
        ..Placement::anon()
    })
}

/// 1.14's check_available is the 2 MiB hugepage check for both variants (MEMKIND_GBTLB_OPS
/// uses `memkind_hugetlb_check_available_2mb`): GBTLB reports available whenever 2 MiB pages
/// exist, while its first allocation needs 512 of them free (ENOMEM otherwise).
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
