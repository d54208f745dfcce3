//! memkind-rs: a drop-in, faster re-implementation of memkind 1.14 (`libmemkind.so.0`).
//!
//! The data path, one module each: C ABI ([`ffi`]) → [`kind`] → [`arena`] → [`jemalloc`] →
//! extent [`hooks`] → [`sys`]. Kinds of memory (DEFAULT, REGULAR, HUGETLB, INTERLEAVE, HBW,
//! DAX_KMEM, capacity / latency / bandwidth NUMA nodes) split the heap; each non-default kind has
//! its own jemalloc arenas whose extents come from our hooks (mmap + mbind), and its own
//! per-thread cache. [`memtier`] builds tiered memories on top of the memkind API.
#![deny(unsafe_code)]

pub mod api;
pub mod arena;
pub mod env;
pub mod error;
pub mod extent_map;
pub mod ffi;
pub mod hooks;
pub mod init;
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
