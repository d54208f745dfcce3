//! memkind-rs: a drop-in, faster re-implementation of memkind 1.14 (`libmemkind.so.0`).
//!
//! Kinds of memory (DEFAULT, REGULAR, HUGETLB, INTERLEAVE, HBW, DAX_KMEM, capacity / latency /
//! bandwidth NUMA nodes, PMEM, fixed buffers) split the heap; each non-default kind has its own
//! jemalloc arenas whose extents come from our hooks (mmap + mbind), and its own per-thread
//! caches. The data path: C ABI (`ffi`) → arena layer (`arena::heap`: DEFAULT or a kind's
//! thread cache) → jemalloc `mallocx`/`dallocx` → extent hooks (`hooks`) → `sys`.
//!
//! The Rust API is [`Memkind`], [`FixedKind`], [`PmemBuilder`], [`UsagePolicy`], [`StatType`]
//! and [`Error`]; the C ABI is the exported `memkind_*`, `hbw_*`, `memtier_*` symbols and
//! `MEMKIND_*` globals. Every module is private; `testing` is the end-to-end tests' door
//! (hidden, nothing unsound).
//!
//! # Layers
//!
//! Each module imports only from the layers below it, never from its own layer or one above
//! (`tests/check-layers.sh` reads this list and checks every `crate::` path, from
//! `tests/test.sh`), so there is no import cycle between modules. A module that needs something
//! from above is in the wrong place. From the top:
//!
//! 1. `ffi`, `api`, `testing`: the C ABI, the Rust API, the tests' door
//! 2. `stats`, `memtier`: statistics and tiered memories, over the memkind operations
//! 3. `arena`: the heap operations (the one place DEFAULT and the other kinds part), thread
//!    caches and magazines, a kind's arenas from creation to destruction, start-up, fork
//! 4. `hooks`: jemalloc's extent hooks, one table per backing
//! 5. `kind`: the registry (the static-kind table, dynamic slots, arena → kind), the families
//!    and their placement rules
//! 6. `counters`: per-kind counters (memtier bytes, outstanding blocks) and the probe's
//!    per-thread counters
//! 7. `probe`: the probe's semaphore, records and nop5 entry points
//! 8. `topology`: the sysfs reader and 1.14's node-selection rules
//! 9. `env`: the one reader of the `MEMKIND_*` environment
//! 10. `nodemask`, `extent_map`, `jemalloc`, `sync`: node sets, the address → kind map,
//!     checked `mallctl`, the fork-safe lock
//! 11. `error`: the `MEMKIND_ERROR_*` table
//! 12. `sys`: every system call, one errno conversion, the `Os` test seam
#![deny(unsafe_code)]

mod api;
mod arena;
mod counters;
mod env;
mod error;
mod extent_map;
mod ffi;
mod hooks;
mod jemalloc;
mod kind;
mod memtier;
mod nodemask;
mod probe;
mod stats;
mod sync;
mod sys;
mod topology;

#[doc(hidden)]
pub mod testing;

pub use api::{FixedKind, Memkind, PmemBuilder, UsagePolicy};
pub use error::Error;
/// The statistics of [`Memkind::stat`] (`memkind_stat_type`).
pub use stats::StatType;
