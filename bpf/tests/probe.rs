//! memkind-bpf's root tests on this host: the counters tier on our library, the per-call tier on
//! ours and on memkind 1.14, errors. The same scenarios run in every vmtest cell through
//! `tests/tests/kernel_probe.rs`.

mod common;
mod scenarios;

use scenarios::{ours, stock, trace};

#[test]
fn ours_counts_extents_and_faults_are_exact() {
    ours::counts_extents_and_faults_are_exact();
}

#[test]
fn ours_attach_to_running_process_reannounces() {
    ours::attach_to_running_process_reannounces();
}

#[test]
fn ours_errors_say_what_is_wrong() {
    ours::errors_say_what_is_wrong();
}

#[test]
fn stock_counts_are_exact() {
    stock::stock_counts_are_exact();
}

#[test]
fn trace_ours() {
    trace::trace_ours();
}

#[test]
fn trace_ours_exact() {
    trace::trace_ours_exact();
}

#[test]
fn trace_stock() {
    trace::trace_stock();
}
