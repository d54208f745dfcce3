//! The pure model: what the probe measured, as plain data, with no I/O. Everything here is
//! unit-tested without root: the collectors (`crate::collect`) and the recording reader
//! (`crate::record`) fill it, the views (`crate::view`) draw it.
//!
//! - [`Snapshot`]: cumulative counters of one moment (per process × kind × arena), page faults,
//!   lost events; [`Snapshot::delta`] for intervals and time windows.
//! - [`KindTable`]: kind id → name, from kind events (static kinds named as in memkind.h).
//! - [`Extents`]: the mappings each kind holds, from extent events.
//! - [`Summary`]: the rows a view draws, built by [`Summary::build`].
//! - [`Placement`]: where each kind's pages are per NUMA node, asked vs actual, from sampled
//!   page queries ([`Sample`]); [`Summary::add_placement`] puts it into the rows.

mod extents;
mod kinds;
mod placement;
mod snapshot;
mod summary;
mod trace;

pub use extents::{ExtentEvent, ExtentOp, ExtentTotals, Extents, Range};
pub use kinds::{KindEvent, KindInfo, KindOp, KindTable, STATIC_KINDS};
pub use placement::{
    mask_nodes, merge_into, mode_name, Est, Figures, KindPlacement, Placement, Sample,
};
pub use snapshot::{Counters, Key, ProcessFaults, Snapshot, SIZE_BUCKETS};
pub use summary::{ArenaRow, KindRow, ProcessRow, Summary};
pub use trace::Call;

/// `MKP_NONE`: no kind / no arena.
pub const NONE: u32 = 0xffff_ffff;

/// The upper bound (inclusive) of size bucket `i` in bytes, `None` for the last (open) bucket.
/// Bucket 0 holds n <= 16, bucket i (1..14) holds 2^(i+3) < n <= 2^(i+4), bucket 15 the rest.
pub fn bucket_upper_bound(i: usize) -> Option<u64> {
    if i + 1 >= SIZE_BUCKETS {
        None
    } else {
        Some(1u64 << (i + 4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds() {
        assert_eq!(bucket_upper_bound(0), Some(16));
        assert_eq!(bucket_upper_bound(1), Some(32));
        assert_eq!(bucket_upper_bound(14), Some(256 * 1024));
        assert_eq!(bucket_upper_bound(15), None);
    }
}
