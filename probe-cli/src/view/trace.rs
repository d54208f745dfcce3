//! `trace` output: one JSON object per call and line.

use serde_json::{Map, Value};

use crate::model::{Call, KindTable};

fn hex(v: u64) -> Value {
    Value::String(format!("{v:#x}"))
}

/// One call as a JSON line (with its newline): time (s since start), pid, tid, call, kind (name),
/// arena, size, pointer, result (a pointer), ret (an error code), latency_ns. Fields a call does not have are left out.
pub fn line(c: &Call, kinds: &KindTable) -> String {
    let mut m = Map::new();
    m.insert("time".into(), Value::from(c.ts_ns as f64 / 1e9));
    m.insert("pid".into(), c.tgid.into());
    m.insert("tid".into(), c.tid.into());
    m.insert("call".into(), c.call.clone().into());
    if let Some(k) = c.kind {
        m.insert("kind".into(), kinds.name(c.tgid, k).into());
    }
    if let Some(a) = c.arena {
        m.insert("arena".into(), a.into());
    }
    if let Some(s) = c.size {
        m.insert("size".into(), s.into());
    }
    if let Some(p) = c.ptr {
        m.insert("pointer".into(), hex(p));
    }
    if let Some(r) = c.result {
        m.insert("result".into(), hex(r));
    }
    if let Some(r) = c.ret {
        m.insert("ret".into(), r.into());
    }
    m.insert("latency_ns".into(), c.latency_ns.into());
    let mut s = Value::Object(m).to_string();
    s.push('\n');
    s
}

/// The closing line of a trace: calls printed and records lost.
pub fn end_line(calls: u64, lost: u64) -> String {
    format!("{{\"end\":true,\"calls\":{calls},\"lost_events\":{lost}}}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            end_line(3, 1),
            "{\"end\":true,\"calls\":3,\"lost_events\":1}\n"
        );
    }
}
