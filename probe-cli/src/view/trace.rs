//! `trace` output: one JSON object per call and line.

use std::fmt::Write as _;

use crate::model::{Call, KindTable};

/// A JSON string (quotes and escapes) appended to `out`.
fn push_str(out: &mut String, v: &str) {
    out.push('"');
    if !v.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(v);
    } else {
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
    }
    out.push('"');
}

/// `v` in decimal, appended to `out` (no `fmt` machinery: a trace writes millions).
fn push_u64(out: &mut String, mut v: u64) {
    let mut b = [0u8; 20];
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // The digits are ASCII.
    out.push_str(core::str::from_utf8(&b[i..]).unwrap_or_default());
}

fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_u64(out, v.unsigned_abs());
}

/// `"0x…"` (lower-case hex, as `{:#x}`), appended to `out`.
fn push_hex(out: &mut String, mut v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; 20];
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = HEX[(v & 15) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    i -= 3;
    b[i] = b'"';
    b[i + 1] = b'0';
    b[i + 2] = b'x';
    out.push_str(core::str::from_utf8(&b[i..]).unwrap_or_default());
    out.push('"');
}

/// Seconds since the start, from `ns`, as `ns as f64 / 1e9` prints with `{}` (the shortest
/// decimal that reads back as that double): below 2^21 s (24 days) that is the exact quotient
/// without trailing zeros, since a double there is closer than 1e-9 / 2 to a single decimal of
/// at most 9 places; beyond, the float's own formatting.
fn push_secs(out: &mut String, ns: u64) {
    let secs = ns / 1_000_000_000;
    if secs >= 1 << 21 {
        let _ = write!(out, "{}", ns as f64 / 1e9);
        return;
    }
    push_u64(out, secs);
    let mut frac = ns % 1_000_000_000;
    if frac == 0 {
        return;
    }
    let mut digits = 9;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    let mut b = [b'0'; 10];
    b[0] = b'.';
    let mut i = digits;
    while frac > 0 {
        b[i] = b'0' + (frac % 10) as u8;
        frac /= 10;
        i -= 1;
    }
    out.push_str(core::str::from_utf8(&b[..=digits]).unwrap_or_default());
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

/// [`line`], appended to `out`: written field by field, integers and pointers by hand, no
/// allocation (a trace formats millions of them per second).
pub fn push_line(out: &mut String, c: &Call, kinds: &KindTable) {
    out.push_str("{\"time\":");
    push_secs(out, c.ts_ns);
    out.push_str(",\"pid\":");
    push_u64(out, u64::from(c.tgid));
    out.push_str(",\"tid\":");
    push_u64(out, u64::from(c.tid));
    out.push_str(",\"call\":");
    push_str(out, c.call);
    if let Some(k) = c.kind {
        out.push_str(",\"kind\":");
        push_str(out, &kinds.name_str(c.tgid, k));
    }
    if let Some(a) = c.arena {
        out.push_str(",\"arena\":");
        push_u64(out, u64::from(a));
    }
    if let Some(v) = c.size {
        out.push_str(",\"size\":");
        push_u64(out, v);
    }
    if let Some(p) = c.ptr {
        out.push_str(",\"pointer\":");
        push_hex(out, p);
    }
    if let Some(r) = c.result {
        out.push_str(",\"result\":");
        push_hex(out, r);
    }
    if let Some(r) = c.ret {
        out.push_str(",\"ret\":");
        push_i64(out, i64::from(r));
    }
    out.push_str(",\"latency_ns\":");
    push_u64(out, c.latency_ns);
    out.push_str("}\n");
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
            call: "memkind_malloc",
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
            call: "memkind_posix_memalign",
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
        // The hand-written numbers print as `format!` does.
        let old = |c: &Call| {
            let mut s = format!(
                "{{\"time\":{},\"pid\":{},\"tid\":{},\"call\":\"{}\"",
                c.ts_ns as f64 / 1e9,
                c.tgid,
                c.tid,
                c.call
            );
            if let Some(v) = c.size {
                s += &format!(",\"size\":{v}");
            }
            if let Some(p) = c.ptr {
                s += &format!(",\"pointer\":\"{p:#x}\"");
            }
            if let Some(r) = c.result {
                s += &format!(",\"result\":\"{r:#x}\"");
            }
            if let Some(r) = c.ret {
                s += &format!(",\"ret\":{r}");
            }
            s + &format!(",\"latency_ns\":{}}}\n", c.latency_ns)
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut times = vec![
            0,
            1,
            9,
            10,
            999_999_999,
            1_000_000_000,
            1_000_000_001,
            1_500_000_000,
        ];
        times.extend([
            u64::MAX,
            (1 << 21) * 1_000_000_000 - 1,
            (1 << 21) * 1_000_000_000,
        ]);
        for _ in 0..200_000 {
            let r = next();
            times.push(r % (10_000 * 1_000_000_000));
            times.push(r % 1_000_000);
            times.push(r % ((1 << 21) * 1_000_000_000));
        }
        for t in times {
            let c = Call {
                ts_ns: t,
                tgid: next() as u32,
                tid: 0,
                call: "memkind_arena_free",
                size: Some(next() >> (next() % 64)),
                ptr: Some(next() >> (next() % 64)),
                result: Some(0),
                ret: Some(-(next() as i32 >> 1).abs()),
                latency_ns: next() % 100_000,
                ..Default::default()
            };
            assert_eq!(line(&c, &KindTable::new()), old(&c), "{t}");
        }
        assert_eq!(
            end_line(3, 1),
            "{\"end\":true,\"calls\":3,\"lost_events\":1}\n"
        );
    }

    /// `cargo test --release -p memkind-probe -- --ignored trace_lines_per_second --nocapture`:
    /// the writer's rate on one CPU (issue target: >= 1 M lines/s).
    #[test]
    #[ignore = "a measurement: run in release"]
    fn trace_lines_per_second() {
        let kinds = KindTable::new();
        let mut c = Call {
            ts_ns: 12_345_678_901,
            tgid: 4242,
            tid: 4243,
            call: "memkind_arena_malloc",
            kind: Some(1),
            size: Some(16),
            result: Some(0x7f12_3456_7000),
            latency_ns: 85,
            ..Default::default()
        };
        let mut out = String::with_capacity(1 << 20);
        let n = 3_000_000u64;
        let t = std::time::Instant::now();
        let mut bytes = 0;
        for i in 0..n {
            c.ts_ns += 397;
            c.result = Some(0x7f12_3456_7000 + (i << 4));
            push_line(&mut out, &c, &kinds);
            if out.len() > (1 << 20) - 256 {
                bytes += out.len();
                std::hint::black_box(&out);
                out.clear();
            }
        }
        bytes += out.len();
        let s = t.elapsed().as_secs_f64();
        println!(
            "trace writer: {n} lines in {s:.3} s = {:.2} M lines/s ({:.0} MB/s)",
            n as f64 / s / 1e6,
            bytes as f64 / s / 1e6
        );
    }
}
