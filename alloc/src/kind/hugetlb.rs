//! MEMKIND_HUGETLB (2 MiB pages) and the deprecated MEMKIND_GBTLB (1 GiB pages): anonymous
//! MAP_HUGETLB memory with no node policy. Available when the pool has pages reserved or may
//! overcommit; otherwise MEMKIND_ERROR_HUGETLB (-18), as 1.14.

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

fn capacity(k: &Kind) -> isize {
    super::hugepage_capacity(page(k).1)
}

/// The HUGETLB / GBTLB family.
pub static FAMILY: Family = Family {
    name: "hugetlb",
    placement,
    capacity,
    hooks: &crate::hooks::hugetlb::HOOKS,
};
