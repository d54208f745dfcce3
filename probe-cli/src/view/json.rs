//! JSON: one document per summary.
//!
//! ```text
//! {"pids": [P...], "duration_ns": N, "library": PATH, "flavor": "ours"|"stock",
//!  "kinds": [{"kind": NAME, "id": N, "allocs": N, "frees": N, "reallocs": N,
//!             "bytes_requested": N, "bytes_allocated": N, "bytes_freed": N, "live_bytes": N,
//!             "page_faults": N, "extents": N, "bytes_mapped": N, "bytes_purged": N,
//!             "size_buckets": [N x 16],
//!             "arenas": [{"arena": I|null, "allocs": N, "frees": N, "reallocs": N,
//!                         "bytes_requested": N, "bytes_allocated": N, "bytes_freed": N,
//!                         "live_bytes": N, "page_faults": N,
//!                         ...placement of the arena: "nodes", "misplaced_bytes", "huge_bytes",
//!                         "base_bytes", "resident_bytes"...}],
//!             ...placement, when it was taken (see below)...}],
//!  "kind_page_faults": N, "other_page_faults": N, "process_page_faults": N,
//!  "process_minor_faults": N, "process_major_faults": N, "lost_events": N,
//!  "size_bucket_max_bytes": [16, 32, ..., 262144, null],
//!  "processes": [{"pid": P, "kinds": [...as above...], "other_page_faults": N,
//!                 "process_page_faults": N, "process_minor_faults": N, "process_major_faults": N}]}
//! ```
//! Placement fields of a kind (present when placement was taken and the kind maps memory):
//! ```text
//!   "nodes": [{"node": N, "bytes": B}], "asked_nodes": [N...],
//!   "mbind_mode": "bind"|"preferred"|"interleave"|"preferred_many"|"local"|"none",
//!   "resident_bytes": N, "misplaced_bytes": N, "unknown_node_bytes": N,
//!   "huge_bytes": N, "base_bytes": N, "interleave_imbalance": X|null,
//!   "placement_sampled": bool, "placement_error_bytes": N,
//!   "placement_pages_queried": N, "placement_pages_total": N
//! ```
//! `nodes` are resident bytes per node (estimates when `placement_sampled`; the 95 % half-width
//! of the least certain figure is `placement_error_bytes`); `misplaced_bytes` are resident on a
//! node outside `asked_nodes`; `interleave_imbalance` is the largest relative deviation of a
//! node's share from the even share, for interleave kinds.
//!
//! `process_page_faults` is every user-mode page fault of the process (on memkind-rs's library the
//! BPF `page_fault_user` program's count: `kind_page_faults` + `other_page_faults`; it includes
//! faults that end in SIGSEGV, and excludes faults the kernel takes on user addresses inside
//! system calls); `process_major_faults` is perf's `PAGE_FAULTS_MAJ` counter (in `-- CMD` mode
//! inherited: the command's row also holds its children's), `process_minor_faults` the rest
//! (saturating at 0). On memkind 1.14 both come from perf's `PAGE_FAULTS_MIN` / `_MAJ` counters.
//! See docs/probe.md, "Fresh-page faults".
//!
//! `kinds` sums the processes by kind name (arena rows by arena index); `processes` has the same
//! rows per process. `live_bytes` can be negative for an interval that frees older blocks.

use serde_json::{json, Map, Value};

use super::Context;
use crate::model::{
    bucket_upper_bound, mode_name, ArenaRow, Counters, Figures, KindPlacement, KindRow, Summary,
    SIZE_BUCKETS,
};

fn clamp(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn counters(m: &mut Map<String, Value>, c: &Counters) {
    m.insert("allocs".into(), c.allocs.into());
    m.insert("frees".into(), c.frees.into());
    m.insert("reallocs".into(), c.reallocs.into());
    m.insert("bytes_requested".into(), c.bytes_requested.into());
    m.insert("bytes_allocated".into(), c.bytes_allocated.into());
    m.insert("bytes_freed".into(), c.bytes_freed.into());
    m.insert("live_bytes".into(), clamp(c.live_bytes()).into());
}

fn figures(m: &mut Map<String, Value>, f: &Figures) {
    let nodes: Vec<Value> = f
        .nodes
        .iter()
        .map(|(n, e)| json!({"node": n, "bytes": e.bytes}))
        .collect();
    m.insert("nodes".into(), nodes.into());
    m.insert("resident_bytes".into(), f.resident.bytes.into());
    m.insert("misplaced_bytes".into(), f.misplaced.bytes.into());
    m.insert("huge_bytes".into(), f.huge.bytes.into());
    m.insert("base_bytes".into(), f.base.bytes.into());
}

fn placement(m: &mut Map<String, Value>, p: &KindPlacement) {
    figures(m, &p.total);
    m.insert("asked_nodes".into(), p.asked_nodes.clone().into());
    m.insert("mbind_mode".into(), mode_name(p.mbind_mode).into());
    m.insert(
        "unknown_node_bytes".into(),
        p.total.unknown_node.bytes.into(),
    );
    m.insert(
        "interleave_imbalance".into(),
        p.interleave_imbalance().map_or(Value::Null, Value::from),
    );
    m.insert("placement_sampled".into(), p.total.sampled().into());
    m.insert("placement_error_bytes".into(), p.total.error_bytes().into());
    m.insert(
        "placement_pages_queried".into(),
        p.total.pages_queried.into(),
    );
    m.insert("placement_pages_total".into(), p.total.pages_total.into());
}

fn arena(a: &ArenaRow, p: Option<&KindPlacement>) -> Value {
    let mut m = Map::new();
    m.insert("arena".into(), a.arena.map_or(Value::Null, Value::from));
    counters(&mut m, &a.counters);
    m.insert("page_faults".into(), a.page_faults.into());
    if let Some(f) = p.and_then(|p| p.arenas.get(&a.arena)) {
        figures(&mut m, f);
    }
    Value::Object(m)
}

fn kind(k: &KindRow) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), k.name.clone().into());
    m.insert("id".into(), k.id.into());
    counters(&mut m, &k.counters);
    m.insert("page_faults".into(), k.page_faults.into());
    m.insert("extents".into(), k.extents.count.into());
    m.insert("bytes_mapped".into(), k.extents.bytes_mapped.into());
    m.insert("bytes_purged".into(), k.extents.bytes_purged.into());
    m.insert(
        "size_buckets".into(),
        k.counters.size_buckets.to_vec().into(),
    );
    m.insert(
        "arenas".into(),
        k.arenas
            .iter()
            .map(|a| arena(a, k.placement.as_ref()))
            .collect::<Vec<_>>()
            .into(),
    );
    if let Some(p) = &k.placement {
        placement(&mut m, p);
    }
    Value::Object(m)
}

/// The summary as a JSON value.
pub fn value(s: &Summary, ctx: &Context) -> Value {
    let bounds: Vec<Value> = (0..SIZE_BUCKETS)
        .map(|i| bucket_upper_bound(i).map_or(Value::Null, Value::from))
        .collect();
    json!({
        "pids": s.pids(),
        "duration_ns": s.duration_ns,
        "library": ctx.library,
        "flavor": if ctx.stock { "stock" } else { "ours" },
        "kinds": s.kinds.iter().map(kind).collect::<Vec<_>>(),
        "kind_page_faults": s.kind_page_faults(),
        "other_page_faults": s.other_page_faults,
        "process_page_faults": s.process_faults.total(),
        "process_minor_faults": s.process_faults.minor,
        "process_major_faults": s.process_faults.major,
        "lost_events": s.lost_events,
        "size_bucket_max_bytes": bounds,
        "processes": s.processes.iter().map(|p| json!({
            "pid": p.pid,
            "kinds": p.kinds.iter().map(kind).collect::<Vec<_>>(),
            "other_page_faults": p.other_page_faults,
            "process_page_faults": p.process_faults.total(),
            "process_minor_faults": p.process_faults.minor,
            "process_major_faults": p.process_faults.major,
        })).collect::<Vec<_>>(),
    })
}

/// The summary as one line of JSON and a newline.
pub fn render(s: &Summary, ctx: &Context) -> String {
    let mut out = value(s, ctx).to_string();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::fixture::sample;

    #[test]
    fn shape() {
        let ctx = Context {
            target: "pid 42".into(),
            library: "/lib/libmemkind.so.0".into(),
            stock: false,
        };
        let text = render(&sample(), &ctx);
        assert!(
            text.ends_with('\n') && !text.trim_end().contains('\n'),
            "one line"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["pids"], json!([42]));
        assert_eq!(v["flavor"], "ours");
        let k = &v["kinds"][0];
        assert_eq!(k["kind"], "MEMKIND_DEFAULT");
        for (f, n) in [
            ("allocs", 10),
            ("frees", 4),
            ("reallocs", 0),
            ("bytes_allocated", 1000),
            ("bytes_freed", 400),
            ("live_bytes", 600),
            ("page_faults", 3),
            ("extents", 1),
        ] {
            assert_eq!(k[f], n, "{f}");
        }
        assert_eq!(k["size_buckets"].as_array().unwrap().len(), 16);
        assert_eq!(k["size_buckets"][0], 10);
        assert_eq!(k["arenas"][1]["arena"], 1);
        assert_eq!(k["arenas"][1]["allocs"], 4);
        assert_eq!(k["arenas"][1]["page_faults"], 2);
        assert_eq!(v["kinds"][1]["kind"], "PMEM:/mnt/\"x\"");
        assert_eq!(v["kinds"][1]["arenas"][0]["arena"], Value::Null);
        assert_eq!(v["other_page_faults"], 7);
        assert_eq!(v["process_page_faults"], 21);
        assert_eq!(v["kind_page_faults"], 3);
        assert_eq!(v["lost_events"], 0);
        assert_eq!(v["size_bucket_max_bytes"][0], 16);
        assert_eq!(v["size_bucket_max_bytes"][15], Value::Null);
        assert_eq!(v["processes"][0]["pid"], 42);
        assert_eq!(v["processes"][0]["kinds"][0]["allocs"], 10);
        assert!(
            k.get("nodes").is_none(),
            "no placement taken, no placement fields"
        );
        // The keys come in the documented order: "kind" first.
        assert!(text.contains("{\"kind\":\"MEMKIND_DEFAULT\",\"id\":0,\"allocs\":10"));
    }

    #[test]
    fn placement_fields() {
        use crate::model::{Placement, Sample};
        let mut s = sample();
        let smp = Sample {
            tgid: 42,
            kind: 0,
            arena: 1,
            page_size: 4096,
            mbind_mode: 1,
            nodemask: [0b10, 0, 0, 0],
            pages_total: 100,
            pages_queried: 50,
            present: [((Some(1), false), 30), ((Some(0), true), 10)]
                .into_iter()
                .collect(),
        };
        let p = Placement::from_samples(&[smp], 0);
        s.add_placement(&p, &crate::model::KindTable::new());
        let v: Value = serde_json::from_str(&render(&s, &Context::default())).unwrap();
        let k = &v["kinds"][0];
        assert_eq!(
            k["nodes"],
            json!([{"node": 0, "bytes": 20 * 4096}, {"node": 1, "bytes": 60 * 4096}])
        );
        assert_eq!(k["asked_nodes"], json!([1]));
        assert_eq!(k["mbind_mode"], "preferred");
        assert_eq!(k["misplaced_bytes"], 20 * 4096);
        assert_eq!(k["huge_bytes"], 20 * 4096);
        assert_eq!(k["base_bytes"], 60 * 4096);
        assert_eq!(k["resident_bytes"], 80 * 4096);
        assert_eq!(k["placement_sampled"], true);
        assert!(k["placement_error_bytes"].as_u64().unwrap() > 0);
        assert_eq!(k["interleave_imbalance"], Value::Null);
        assert_eq!(k["arenas"][1]["misplaced_bytes"], 20 * 4096);
        assert!(
            k["arenas"][0].get("nodes").is_none(),
            "arena 0 has no extents"
        );
        assert_eq!(v["processes"][0]["kinds"][0]["misplaced_bytes"], 20 * 4096);
        assert!(v["kinds"][1].get("nodes").is_none());
    }
}
