//! The root scenarios, shared by `bpf/tests/probe.rs` and the vmtest matrix's
//! `tests/tests/kernel_probe.rs` (which includes this directory by path). Each starts with
//! `require_root!`: it skips with a reason on a host that cannot run it and fails in the VMs.

pub mod ours;
pub mod stock;
pub mod trace;
