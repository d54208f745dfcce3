//! memkind-rs: a drop-in, faster re-implementation of memkind 1.14 (`libmemkind.so.0`).
//!
//! The data path, one module each: C ABI ([`ffi`]) → [`kind`] → [`arena`] → [`jemalloc`] →
//! extent [`hooks`] → [`sys`]. Kinds of memory (DEFAULT, REGULAR, HUGETLB, INTERLEAVE, HBW,
//! DAX_KMEM, capacity / latency / bandwidth NUMA nodes) split the heap; each non-default kind has
//! its own jemalloc arenas whose extents come from our hooks (mmap + mbind), and its own
//! per-thread cache. [`memtier`] builds tiered memories on top of the memkind API.
//!
//! # Layers
//!
//! Each module imports only from the layers below it, never from its own layer or one above
//! (`tests/check-layers.sh` checks it in `tests/test.sh`), so there is no import cycle between
//! modules. From the top:
//!
//! 1. `ffi`, `api`: the C ABI and the Rust API
//! 2. `stats`, `memtier`
//! 3. `arena`
//! 4. `hooks`
//! 5. `kind`
//! 6. `counters`, `probe`
//! 7. `topology`
//! 8. `env`
//! 9. `nodemask`, `extent_map`, `jemalloc`, `sync`
//! 10. `error`
//! 11. `sys`
#![deny(unsafe_code)]

pub mod api;
pub mod arena;
pub mod counters;
pub mod env;
pub mod error;
pub mod extent_map;
pub mod ffi;
pub mod hooks;
pub mod jemalloc;
pub mod kind;
pub mod memtier;
pub mod nodemask;
pub mod probe;
pub mod stats;
pub mod sync;
pub mod sys;
pub mod topology;

pub use api::{FixedKind, Memkind, PmemBuilder, UsagePolicy};
pub use error::Error;
