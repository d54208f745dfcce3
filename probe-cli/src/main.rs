//! `memkind-probe`: per-kind, per-arena allocation and page-fault statistics of memkind programs,
//! seen from outside through eBPF (the `memkind-bpf` crate).
//!
//! Layers, each importing only the ones below it:
//! 1. `cli` (arguments) and `commands` (one module per subcommand; wires a collector to a view).
//! 2. `collect` (the probe, perf counters, /proc, spawning the target), `view` (text, JSON,
//!    OpenMetrics, trace lines) and `record` (the recording format): side by side, each using
//!    only `model`.
//! 3. `model`: pure data and arithmetic, no I/O.
#![deny(unsafe_code)]

mod cli;
mod collect;
mod commands;
#[allow(
    dead_code,
    unused_imports,
    reason = "the model is shared by every collector and view; some of its API serves only the top and placement views and the tests"
)]
mod model;
mod record;
mod view;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli.command) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            let code = e.downcast_ref::<collect::ExitError>().map_or(1, |x| x.code);
            // One line: the error and its causes, joined.
            eprintln!("memkind-probe: {e:#}");
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}
