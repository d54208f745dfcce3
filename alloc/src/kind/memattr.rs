//! Memory-attribute kinds: HIGHEST_CAPACITY (+ _PREFERRED, _LOCAL, _LOCAL_PREFERRED),
//! LOWEST_LATENCY_LOCAL (+ _PREFERRED), HIGHEST_BANDWIDTH_LOCAL (+ _PREFERRED). Capacity comes
//! from node sizes, latency and bandwidth from HMAT access attributes in sysfs.

use super::{node_bound, Family, Kind, Placement, Rule};
use crate::error::Error;
use crate::sys::{Backing, MpolMode};

#[allow(missing_docs, reason = "names are memkind's kinds")]
mod variants {
    pub const HIGHEST_CAPACITY: u8 = 0;
    pub const HIGHEST_CAPACITY_PREFERRED: u8 = 1;
    pub const HIGHEST_CAPACITY_LOCAL: u8 = 2;
    pub const HIGHEST_CAPACITY_LOCAL_PREFERRED: u8 = 3;
    pub const LOWEST_LATENCY_LOCAL: u8 = 4;
    pub const LOWEST_LATENCY_LOCAL_PREFERRED: u8 = 5;
    pub const HIGHEST_BANDWIDTH_LOCAL: u8 = 6;
    pub const HIGHEST_BANDWIDTH_LOCAL_PREFERRED: u8 = 7;
}
pub use variants::*;

fn spec(v: u8) -> (Rule, MpolMode) {
    let mode = if v % 2 == 1 {
        MpolMode::Preferred
    } else {
        MpolMode::Bind
    };
    let rule = match v {
        HIGHEST_CAPACITY => Rule::HighestCapacity,
        HIGHEST_CAPACITY_PREFERRED => Rule::HighestCapacityPreferred,
        HIGHEST_CAPACITY_LOCAL => Rule::HighestCapacityLocal,
        HIGHEST_CAPACITY_LOCAL_PREFERRED => Rule::HighestCapacityLocalPreferred,
        LOWEST_LATENCY_LOCAL => Rule::LowestLatencyLocal,
        LOWEST_LATENCY_LOCAL_PREFERRED => Rule::LowestLatencyLocalPreferred,
        HIGHEST_BANDWIDTH_LOCAL => Rule::HighestBandwidthLocal,
        _ => Rule::HighestBandwidthLocalPreferred,
    };
    (rule, mode)
}

fn placement(k: &Kind) -> Result<Placement, Error> {
    let (rule, mode) = spec(k.variant());
    node_bound(rule, mode, Backing::Anon, false)
}

fn capacity(k: &Kind) -> isize {
    let (rule, mode) = spec(k.variant());
    super::bound_capacity(rule, mode)
}

/// The memory-attribute family.
pub static FAMILY: Family = Family {
    name: "memattr",
    placement,
    check: super::check_by_placement,
    capacity,
    hooks: super::HookSet::Anon,
};
