//! MEMKIND_DEFAULT: jemalloc's automatic arenas and thread cache, with our anonymous-memory hooks
//! installed on every automatic arena at start-up (so every DEFAULT byte is in the extent map and
//! a foreign pointer can be told apart). Its heap operations are the arena layer's
//! (`arena::default`).

use super::{ArenaCount, Family, Kind, Placement};
use crate::error::Error;

fn placement(_k: &Kind) -> Result<Placement, Error> {
    Ok(Placement {
        arenas: ArenaCount::Automatic,
        ..Placement::anon()
    })
}

fn capacity(_k: &Kind) -> isize {
    super::capacity(crate::topology::Rule::Interleave)
}

/// The DEFAULT family.
pub static FAMILY: Family = Family {
    name: "default",
    placement,
    check: super::check_by_placement,
    capacity,
    hooks: super::HookSet::Anon,
};
