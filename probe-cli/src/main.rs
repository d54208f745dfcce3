//! `memkind-probe`: per-kind, per-arena allocation and page-fault statistics of memkind programs,
//! seen from outside through eBPF (the `memkind-bpf` crate).
//!
//! Layers, each importing only the ones below it:
//! 1. `commands`: one module per subcommand; wires a collector to a view.
//! 2. `collect` (the probe, perf counters, /proc, spawning the target), `view` (text, JSON,
//!    OpenMetrics) and `record` (the recording format): side by side, each using only `model`.
//! 3. `model`: pure data and arithmetic, no I/O.
#![deny(unsafe_code)]

mod collect;
mod commands {
    //! One module per subcommand (the rest comes with the `cli` branch).
    pub mod top;
}
mod model;
mod record;
mod view;

fn main() {}
