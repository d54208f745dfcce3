//! `trace` output: one JSON object per call and line.

use std::fmt::Write as _;

use crate::model::{Call, KindTable};

/// A JSON string (quotes and escapes) appended to `out`.
fn push_str(out: &mut String, v: &str) {
    out.push('"');
    for ch in v.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One call as a JSON line (with its newline): time (s since start), pid, tid, call, kind (name),
/// arena, size, pointer, result (a pointer), ret (an error code), latency_ns. Fields a call does
/// not have are left out.
#[cfg(test)]
pub fn line(c: &Call, kinds: &KindTable) -> String {
    let mut s = String::with_capacity(192);
    push_line(&mut s, c, kinds);
    s
}

/// [`line`], appended to `out`: written field by field (no intermediate JSON value), since a
/// trace formats hundreds of thousands of them per second.
pub fn push_line(out: &mut String, c: &Call, kinds: &KindTable) {
    let _ = write!(
        out,
        "{{\"time\":{},\"pid\":{},\"tid\":{},\"call\":",
        c.ts_ns as f64 / 1e9,
        c.tgid,
        c.tid
    );
    push_str(out, &c.call);
    if let Some(k) = c.kind {
        out.push_str(",\"kind\":");
        push_str(out, &kinds.name(c.tgid, k));
    }
    if let Some(a) = c.arena {
        let _ = write!(out, ",\"arena\":{a}");
    }
    if let Some(v) = c.size {
        let _ = write!(out, ",\"size\":{v}");
    }
    if let Some(p) = c.ptr {
        let _ = write!(out, ",\"pointer\":\"{p:#x}\"");
    }
    if let Some(r) = c.result {
        let _ = write!(out, ",\"result\":\"{r:#x}\"");
    }
    if let Some(r) = c.ret {
        let _ = write!(out, ",\"ret\":{r}");
    }
    let _ = writeln!(out, ",\"latency_ns\":{}}}", c.latency_ns);
}

/// The closing line of a trace: calls printed and records lost.
pub fn end_line(calls: u64, lost: u64) -> String {
    format!("{{\"end\":true,\"calls\":{calls},\"lost_events\":{lost}}}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn lines() {
        let c = Call {
            ts_ns: 1_500_000_000,
            tgid: 5,
            tid: 6,
            call: "memkind_malloc".into(),
            kind: Some(11),
            arena: Some(3),
            size: Some(64),
            ptr: None,
            result: Some(0x7f00_0000_1000),
            ret: None,
            latency_ns: 420,
        };
        let l = line(&c, &KindTable::new());
        assert_eq!(l, "{\"time\":1.5,\"pid\":5,\"tid\":6,\"call\":\"memkind_malloc\",\"kind\":\"MEMKIND_REGULAR\",\"arena\":3,\"size\":64,\"result\":\"0x7f0000001000\",\"latency_ns\":420}\n");
        let f = Call {
            call: "memkind_posix_memalign".into(),
            ptr: Some(0x10),
            result: Some(0),
            ret: Some(12),
            ..Default::default()
        };
        let v: Value = serde_json::from_str(&line(&f, &KindTable::new())).unwrap();
        assert_eq!(v["pointer"], "0x10");
        assert_eq!(v["result"], "0x0");
        assert_eq!(v["ret"], 12);
        assert!(v.get("kind").is_none());
        // Names are escaped: a PMEM kind's directory may hold any byte.
        let mut out = String::new();
        push_str(&mut out, "PMEM:/a\"b\\c\n");
        assert_eq!(out, "\"PMEM:/a\\\"b\\\\c\\u000a\"");
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "PMEM:/a\"b\\c\n");
        assert_eq!(
            end_line(3, 1),
            "{\"end\":true,\"calls\":3,\"lost_events\":1}\n"
        );
    }
}
