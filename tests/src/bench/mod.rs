//! memkind-bench internals: the loaded-library vtable, measurement, output, hugepage reservation.

pub mod hugepages;
pub mod measure;
pub mod output;
pub mod vtable;
