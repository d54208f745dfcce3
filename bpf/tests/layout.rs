//! The `#[repr(C)]` mirrors against the C headers they mirror (`alloc/include/memkind_probe.h`,
//! `bpf/src/bpf/events.h`): a C program generated from one table prints every size and field
//! offset, compared with the Rust side's `size_of` / `offset_of!`. Needs only `cc`.

mod common;

use std::mem::{offset_of, size_of};
use std::process::Command;

use memkind_bpf::events::{
    MkbCallEv, MkbExitEv, MkbExtentEv, MkbFlushEv, MkbGranule, MkbGranuleKey, MkbHdr, MkbKey,
    MkbKindEv,
};
use memkind_bpf::records::{MkpCounters, MkpExtent, MkpFlush, MkpKind, MkpTrace};

/// A C struct's name, the Rust mirror's size, and (C field, Rust field offset) pairs.
type Layout = (&'static str, usize, Vec<(&'static str, usize)>);

/// [`Layout`]s from one list of field names.
macro_rules! layouts {
    ($($c:literal => $t:ty { $($cf:ident $(= $rf:ident)?),* $(,)? })*) => {
        vec![$(
            ($c, size_of::<$t>(), vec![$((stringify!($cf), layouts!(@off $t, $cf $(, $rf)?))),*]),
        )*]
    };
    (@off $t:ty, $cf:ident) => { offset_of!($t, $cf) };
    (@off $t:ty, $cf:ident, $rf:ident) => { offset_of!($t, $rf) };
}

#[test]
fn mirrors_match_the_headers() {
    let table: Vec<Layout> = layouts! {
        "mkp_counters" => MkpCounters { allocs, frees, reallocs, bytes_requested, bytes_allocated, bytes_freed, size_buckets }
        "mkp_flush" => MkpFlush { version, reason, kind, arena, tid, pad, delta }
        "mkp_extent" => MkpExtent { version, op, addr, size, addr2, size2, kind, arena, mbind_mode, backing, page_size, nodemask }
        "mkp_kind" => MkpKind { version, op, kind, backing, mbind_mode, pad, nodemask, name, dir }
        "mkp_trace" => MkpTrace { version, call, kind, arena, kind_ptr, size, num, align, ptr, result, ret, err, start_ns, latency_ns, tid, pad }
        "mkb_hdr" => MkbHdr { type = kind, tgid, ts_ns }
        "mkb_flush_ev" => MkbFlushEv { hdr, rec }
        "mkb_extent_ev" => MkbExtentEv { hdr, rec }
        "mkb_kind_ev" => MkbKindEv { hdr, rec }
        "mkb_exit_ev" => MkbExitEv { hdr, code, pad }
        "mkb_call_ev" => MkbCallEv { hdr, tid, call, kind, size, num, align, ptr, result, ret, latency_ns, kind_id, pad }
        "mkb_key" => MkbKey { tgid, kind, arena }
        "mkb_granule_key" => MkbGranuleKey { tgid, pad, granule }
        "mkb_granule" => MkbGranule { kind, arena, backing, mbind_mode }
    };
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include \"events.h\"\nint main(void) {\n",
    );
    let mut want = String::new();
    for (s, size, fields) in &table {
        c.push_str(&format!("printf(\"{s} %zu\\n\", sizeof(struct {s}));\n"));
        want.push_str(&format!("{s} {size}\n"));
        for (f, off) in fields {
            c.push_str(&format!(
                "printf(\"{s}.{f} %zu\\n\", offsetof(struct {s}, {f}));\n"
            ));
            want.push_str(&format!("{s}.{f} {off}\n"));
        }
    }
    c.push_str("return 0; }\n");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("layout.c");
    std::fs::write(&src, c).unwrap();
    let exe = dir.path().join("layout");
    let m = common::manifest_dir();
    let st = Command::new("cc")
        .arg(format!("-I{}", m.join("src/bpf").display()))
        .arg(format!("-I{}", m.join("../alloc/include").display()))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(st.success());
    let out = Command::new(&exe).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
}
