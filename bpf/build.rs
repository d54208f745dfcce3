//! Compiles the BPF programs under `src/bpf/` with clang and writes one libbpf skeleton per
//! program to `OUT_DIR` (`memkind.skel.rs`, `trace.skel.rs`, `stock.skel.rs`).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const PROGRAMS: [&str; 3] = ["memkind", "trace", "stock"];
const HEADERS: [&str; 4] = ["vmlinux.h", "events.h", "common.h", "calls.h"];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let bpf_dir = manifest.join("src/bpf");
    // The records the library hands over: the one definition, shared with alloc/.
    let include = manifest.join("../alloc/include");
    let probe_h = include.join("memkind_probe.h");
    println!("cargo:rerun-if-changed={}", probe_h.display());
    for h in HEADERS {
        println!("cargo:rerun-if-changed={}", bpf_dir.join(h).display());
    }
    let clang = env::var_os("CLANG").unwrap_or_else(|| "clang".into());
    println!("cargo:rerun-if-env-changed=CLANG");
    for name in PROGRAMS {
        let src = bpf_dir.join(format!("{name}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        SkeletonBuilder::new()
            .source(&src)
            .clang(&clang)
            .clang_args([
                "-I".into(),
                bpf_dir.clone().into_os_string(),
                "-I".into(),
                include.clone().into_os_string(),
                "-Wall".into(),
                "-Werror".into(),
            ])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {}: {e:#}", src.display()));
    }
}
