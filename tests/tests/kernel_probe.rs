//! kernel_probe: memkind-bpf's root scenarios in every vmtest cell (5.10, 6.1, 6.12, newest ×
//! numa1, numa2, pmem): workloads of known counts per kind against our libmemkind.so (counters
//! tier: exact counts with short-lived threads and a PMEM kind, extents, faults attributed to the
//! touched kind, zero lost events; `-p` attach re-announces extents) and against Debian's memkind
//! 1.14 (per-call tier), and the trace tier. The scenarios live in `bpf/tests/scenarios/` and
//! also run on the host through `cargo test -p memkind-bpf`; they skip with a reason without
//! root or BTF, and fail instead inside a cell that promises `bpf`.

#[path = "../../bpf/tests/common/mod.rs"]
mod common;
#[path = "../../bpf/tests/scenarios/mod.rs"]
mod scenarios;

use scenarios::{ours, stock, trace};

fn feature(name: &str, yes: bool) {
    println!("FEATURE {name}={}", if yes { "yes" } else { "no" });
}

#[test]
fn probe_counts_extents_and_faults() {
    ours::counts_extents_and_faults_are_exact();
    feature(
        "probe counters tier (uprobe ref_ctr, tp_btf faults)",
        common::cannot_run().is_none(),
    );
}

#[test]
fn probe_attach_to_running_process() {
    ours::attach_to_running_process_reannounces();
}

#[test]
fn probe_errors() {
    ours::errors_say_what_is_wrong();
}

#[test]
fn probe_stock_memkind() {
    stock::stock_counts_are_exact();
}

#[test]
fn probe_trace_ours() {
    trace::trace_ours();
}

// In the software-emulated guests a record may be lost (a consumer short of CPU) or dropped
// (kernel 7.2: a probe hit that saw another thread's registers, counted as bad_regs or as a read
// fault); then every call must be delivered or counted, and the per-call checks are skipped.
#[test]
fn probe_trace_ours_exact() {
    trace::trace_ours_exact();
}

#[test]
fn probe_trace_stock() {
    trace::trace_stock();
}
