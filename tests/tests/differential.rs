//! Differential conformance suite: every case runs one C program of `tests/c/` against memkind
//! 1.14 and against ours and compares exit status and stdout; `ours_only_*` cases run where 1.14
//! is buggy. The harness (modes, hugepage handling, diffs) is `memkind_tests::differential`.

use std::path::Path;

use memkind_tests::differential::*;
use memkind_tests::target_dir;

macro_rules! diff {
    ($name:ident, $prog:expr, [$($a:expr),*], [$($k:expr => $v:expr),*], $huge:expr) => {
        #[test]
        fn $name() {
            diff_case(stringify!($name), $prog, &[$($a),*], &[$(($k, $v)),*], $huge);
        }
    };
}

macro_rules! ours_only {
    ($name:ident, $prog:expr, [$($a:expr),*], [$($k:expr => $v:expr),*]) => {
        #[test]
        fn $name() {
            ours_only_case(stringify!($name), $prog, &[$($a),*], &[$(($k, $v)),*]);
        }
    };
}

const HBW: &str = "MEMKIND_HBW_NODES";
const DAX: &str = "MEMKIND_DAX_KMEM_NODES";
const ARENAS: &str = "MEMKIND_ARENA_NUM_PER_KIND";

// --- every kind: availability, capacity sign, allocation battery ------------------------------
diff!(kinds_plain, "kinds", [], [], Huge::Host);
diff!(kinds_hbw_nodes_0, "kinds", [], [HBW => "0"], Huge::Host);
diff!(kinds_dax_kmem_nodes_0, "kinds", [], [DAX => "0"], Huge::Host);
diff!(kinds_hbw_and_dax_nodes_0, "kinds", [], [HBW => "0", DAX => "0"], Huge::Host);
diff!(kinds_arena_num_1, "kinds", [], [ARENAS => "1"], Huge::Host);
diff!(kinds_arena_num_3, "kinds", [], [ARENAS => "3"], Huge::Host);
diff!(kinds_hog_memory, "kinds", [], [HBW => "0", "MEMKIND_HOG_MEMORY" => "1"], Huge::Host);
diff!(kinds_hugetlb, "kinds", [], [], Huge::Reserve);
diff!(kinds_hugetlb_hbw_nodes_0, "kinds", [], [HBW => "0"], Huge::Reserve);
diff!(kinds_hugetlb_dax_nodes_0, "kinds", [], [DAX => "0"], Huge::Reserve);
diff!(kinds_no_hugepages, "kinds", [], [], Huge::Empty);

// --- environment parsing (availability only) ----------------------------------------------------
diff!(env_hbw_nodes_abc, "kinds", ["avail"], [HBW => "abc"], Huge::Host);
diff!(env_hbw_nodes_dash, "kinds", ["avail"], [HBW => "0-"], Huge::Host);
diff!(env_hbw_nodes_99, "kinds", ["avail"], [HBW => "99"], Huge::Host);
diff!(env_hbw_nodes_1, "kinds", ["avail"], [HBW => "1"], Huge::Host);
diff!(env_hbw_nodes_0_1, "kinds", ["avail"], [HBW => "0-1"], Huge::Host);
diff!(env_hbw_nodes_0_0, "kinds", ["avail"], [HBW => "0-0"], Huge::Host);
diff!(env_hbw_nodes_0_comma_0, "kinds", ["avail"], [HBW => "0,0"], Huge::Host);
diff!(env_hbw_nodes_space_0, "kinds", ["avail"], [HBW => " 0"], Huge::Host);
diff!(env_hbw_nodes_empty, "kinds", ["avail"], [HBW => ""], Huge::Host);
diff!(env_dax_nodes_abc, "kinds", ["avail"], [DAX => "abc"], Huge::Host);
diff!(env_dax_nodes_99, "kinds", ["avail"], [DAX => "99"], Huge::Host);
diff!(env_dax_nodes_dash, "kinds", ["avail"], [DAX => "0-"], Huge::Host);
diff!(env_dax_nodes_empty, "kinds", ["avail"], [DAX => ""], Huge::Host);

// --- API edge cases, messages, version ----------------------------------------------------------
diff!(edge_plain, "edge", [], [], Huge::Host);
diff!(edge_hbw_nodes_0, "edge", [], [HBW => "0"], Huge::Host);
diff!(edge_hugetlb, "edge", [], [], Huge::Reserve);

// --- memkind_create_kind / memkind_get_kind_by_partition ----------------------------------------
diff!(create_kind_plain, "create_kind", [], [], Huge::Host);
diff!(create_kind_hbw_nodes_0, "create_kind", [], [HBW => "0"], Huge::Host);
diff!(create_kind_hugetlb, "create_kind", [], [], Huge::Reserve);
diff!(create_kind_hugetlb_hbw_nodes_0, "create_kind", [], [HBW => "0"], Huge::Reserve);

// --- hbwmalloc.h, one policy per process --------------------------------------------------------
diff!(hbw_default, "hbw", ["default"], [], Huge::Host);
diff!(hbw_set_bind, "hbw", ["set", "1"], [], Huge::Host);
diff!(hbw_set_preferred, "hbw", ["set", "2"], [], Huge::Host);
diff!(hbw_set_interleave, "hbw", ["set", "3"], [], Huge::Host);
diff!(hbw_set_bind_all, "hbw", ["set", "4"], [], Huge::Host);
diff!(
    hbw_invalid_then_interleave,
    "hbw",
    ["invalid", "3"],
    [],
    Huge::Host
);
diff!(hbw_nodes_0_default, "hbw", ["default"], [HBW => "0"], Huge::Host);
diff!(hbw_nodes_0_set_bind, "hbw", ["set", "1"], [HBW => "0"], Huge::Host);
diff!(hbw_nodes_0_set_preferred, "hbw", ["set", "2"], [HBW => "0"], Huge::Host);
diff!(hbw_nodes_0_set_interleave, "hbw", ["set", "3"], [HBW => "0"], Huge::Host);
diff!(hbw_nodes_0_set_bind_all, "hbw", ["set", "4"], [HBW => "0"], Huge::Host);
diff!(hbw_nodes_0_invalid_then_bind, "hbw", ["invalid", "1"], [HBW => "0"], Huge::Host);
diff!(hbw_hugetlb_default, "hbw", ["default"], [], Huge::Reserve);
diff!(hbw_hugetlb_nodes_0_default, "hbw", ["default"], [HBW => "0"], Huge::Reserve);
diff!(hbw_hugetlb_nodes_0_set_bind, "hbw", ["set", "1"], [HBW => "0"], Huge::Reserve);
diff!(hbw_hugetlb_nodes_0_set_bind_all, "hbw", ["set", "4"], [HBW => "0"], Huge::Reserve);
diff!(hbw_hugetlb_nodes_0_set_interleave, "hbw", ["set", "3"], [HBW => "0"], Huge::Reserve);

// --- threads and fork ----------------------------------------------------------------------------
diff!(threads_plain, "threads", [], [], Huge::Host);
diff!(threads_hbw_nodes_0, "threads", [], [HBW => "0"], Huge::Host);
diff!(threads_arena_num_1, "threads", [], [ARENAS => "1"], Huge::Host);
diff!(threads_arena_num_3, "threads", [], [ARENAS => "3"], Huge::Host);
diff!(threads_hugetlb, "threads", ["hugetlb"], [HBW => "0"], Huge::Reserve);

// --- statistics, stats_print, background threads, defragmentation, fixed kinds -----------------
diff!(stats_print_bg_defrag, "stats", [], [], Huge::Host);
diff!(stats_print_bg_defrag_arena_num_1, "stats", [], [ARENAS => "1"], Huge::Host);
diff!(fixed_kinds, "fixed", [], [], Huge::Host);
diff!(fixed_kinds_arena_num_3, "fixed", [], [ARENAS => "3"], Huge::Host);

// --- stats, bg threads, DAX path check, PMEM and fixed kinds ----------------------------------
/// A directory for a case's PMEM kinds under the target directory (created if missing).
fn pmem_dir(name: &str) -> String {
    let dir = target_dir().join("difftest-tmp").join(name);
    std::fs::create_dir_all(&dir).expect("create pmem dir");
    dir.to_str().expect("utf-8 temp path").to_string()
}

#[test]
fn misc_pmem_fixed_stats() {
    let dir = pmem_dir("pmem-dir");
    diff_case("misc_pmem_fixed_stats", "misc", &[&dir], &[], Huge::Host);
}

// --- the operations API (tests/c/ops.c): MEMKIND_*_OPS tables, struct memkind's leading fields,
// memkind_default_* / hbw / hugetlb / pmem / fixed operations ---------------------------------
#[test]
fn operations_api() {
    let dir = pmem_dir("ops-pmem-dir");
    diff_case("operations_api", "ops", &[&dir], &[], Huge::Host);
}

#[test]
fn operations_api_hugetlb() {
    let dir = pmem_dir("ops-pmem-dir-huge");
    diff_case("operations_api_hugetlb", "ops", &[&dir], &[], Huge::Reserve);
}

// --- PMEM kinds (tests/c/pmem.c) on ext4 (/tmp) and tmpfs (/dev/shm) ---------------------------
fn pmem_case(test: &str, base: &str) {
    let dir = Path::new(base).join(format!("memkind-rs-diff-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create pmem dir");
    let d = dir.to_str().expect("utf-8 temp path").to_string();
    diff_case(test, "pmem", &[&d], &[], Huge::Host);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pmem_tmp_ext4() {
    pmem_case("pmem_tmp_ext4", "/tmp");
}

#[test]
fn pmem_dev_shm_tmpfs() {
    pmem_case("pmem_dev_shm_tmpfs", "/dev/shm");
}

// --- memtier (tests/c/memtier.c): builders, both policies, counters, ctl_set, a PMEM tier ------
fn memtier_case(test: &str, env: &[(&str, &str)]) {
    let dir = pmem_dir("memtier-pmem-dir");
    diff_case(test, "memtier", &[&dir], env, Huge::Host);
}

#[test]
fn memtier_api() {
    memtier_case("memtier_api", &[]);
}

#[test]
fn memtier_api_arena_num_1() {
    memtier_case("memtier_api_arena_num_1", &[(ARENAS, "1")]);
}

// --- ours only: where 1.14 is buggy ---------------------------------------------------------------
ours_only!(ours_only_memtier_input, "ours_only_memtier_input", [], []);
ours_only!(ours_only_fixed_input, "ours_only_fixed_input", [], []);

// memkind 1.14's malloc interposer (libmemtier.so.0, in Debian's libmemkind0) over our library:
// every malloc of the program, of libc and of our own start-up goes through memtier_*.
diff!(
    memtier_preload_dram,
    "memtier_preload",
    [],
    [
        "LD_PRELOAD" => "/usr/lib/x86_64-linux-gnu/libmemtier.so.0",
        "MEMKIND_MEM_TIERS" => "KIND:DRAM,RATIO:1;POLICY:STATIC_RATIO"
    ],
    Huge::Host
);

/// The same with a file-backed tier. The interposer destroys its PMEM kind at exit while stdio's
/// buffer (allocated through it) may still live there: 1.14 then loses the program's last output
/// now and then (it unmaps nothing, but its output depends on where the buffer landed), so this
/// runs against ours only and asserts every line comes out, exit 0.
#[test]
fn memtier_preload_dram_and_fs_dax_ours() {
    if selftest() {
        println!(
            "memtier_preload_dram_and_fs_dax_ours: not a differential case (skipped in selftest)"
        );
        return;
    }
    let dir = target_dir().join("difftest-tmp").join("memtier-fsdax");
    std::fs::create_dir_all(&dir).expect("create fs_dax dir");
    let tiers = format!(
        "KIND:DRAM,RATIO:1;KIND:FS_DAX,PATH:{},PMEM_SIZE_LIMIT:1G,RATIO:4;POLICY:STATIC_RATIO",
        dir.display()
    );
    let bin = compiled("memtier_preload");
    let _r = HUGE_LOCK.read().unwrap_or_else(|e| e.into_inner());
    for round in 0..5 {
        let o = run(
            &bin,
            &[],
            &[
                ("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libmemtier.so.0"),
                ("MEMKIND_MEM_TIERS", &tiers),
            ],
            Lib::Ours,
        );
        let want = "thread 0: ok\nthread 1: ok\nchild: ok\nchild exit: 0\nstrdup through the interposer\ndone\n";
        assert!(
            o.status == "exit 0" && o.stdout == want,
            "round {round}: {}\nstdout:\n{}\nstderr tail:\n{}",
            o.status,
            o.stdout,
            tail(&o.stderr, 20)
        );
    }
}

// MEMKIND_BACKGROUND_THREAD_LIMIT caps jemalloc's background threads (limits 1 and 2 give a
// deterministic thread count); a malformed value aborts 1.14 at load, ours reports it.
diff!(bg_threads_limit_1, "bg_threads", [], ["MEMKIND_BACKGROUND_THREAD_LIMIT" => "1"], Huge::Host);
diff!(bg_threads_limit_2, "bg_threads", [], ["MEMKIND_BACKGROUND_THREAD_LIMIT" => "2"], Huge::Host);
// 1.14 reads the value with strtoul: leading blanks and a sign are accepted.
diff!(bg_threads_limit_plus_2, "bg_threads", [], ["MEMKIND_BACKGROUND_THREAD_LIMIT" => " +2"], Huge::Host);
ours_only!(
    ours_only_bg_threads_malformed_limit,
    "bg_threads",
    ["malformed"],
    ["MEMKIND_BACKGROUND_THREAD_LIMIT" => "-1"]
);
ours_only!(
    ours_only_calloc_overflow,
    "ours_only_calloc_overflow",
    [],
    []
);
ours_only!(ours_only_calloc_overflow_hbw_nodes_0, "ours_only_calloc_overflow", [], [HBW => "0"]);
ours_only!(
    ours_only_foreign_detect,
    "ours_only_foreign_ptr",
    ["detect"],
    []
);
ours_only!(
    ours_only_foreign_usable_size,
    "ours_only_foreign_ptr",
    ["usable"],
    []
);
ours_only!(
    ours_only_foreign_free,
    "ours_only_foreign_ptr",
    ["free"],
    []
);

// Deliberate difference: *memptr untouched after EINVAL (1.14 sets NULL on arena kinds).
ours_only!(
    ours_only_posix_memalign_einval,
    "ours_only_posix_memalign_einval",
    [],
    []
);
ours_only!(
    ours_only_posix_memalign_einval_hbw_nodes_0,
    "ours_only_posix_memalign_einval",
    [],
    [HBW => "0"]
);

/// The harness itself: the diff renders changes, the selftest switch is visible.
#[test]
fn harness_line_diff() {
    let d = line_diff("a\nb\nc\n", "a\nB\nc\n");
    assert!(d.contains(" - b") && d.contains(" + B"), "{d}");
    assert!(line_diff("x\n", "x\n").is_empty());
}

// --- behaviour details of 1.14 (tests/c/alloc_order.c, impossible.c, pmem_*.c, gbtlb.c) ---------
/// Runs `prog` with a fresh directory under `base` as its argument (removed afterwards).
fn dir_case(test: &str, prog: &str, base: &str, huge: Huge) {
    let dir = Path::new(base).join(format!("memkind-rs-diff-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    let d = dir.to_str().expect("utf-8 temp path").to_string();
    diff_case(test, prog, &[&d], &[], huge);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Consecutive small blocks of a fresh kind are adjacent and ascending (static kinds, PMEM).
#[test]
fn alloc_order_fresh_kinds() {
    dir_case("alloc_order_fresh_kinds", "alloc_order", "/tmp", Huge::Host);
}

// Twice RAM + swap in one request: ENOMEM (1.14 maps without MAP_NORESERVE), big blocks fine.
diff!(impossible_requests, "impossible", [], [], Huge::Host);
diff!(impossible_requests_hbw_nodes_0, "impossible", [], [HBW => "0"], Huge::Host);

/// CONSERVATIVE PMEM kind of 16 MiB: refilled after freeing everything, it fits ≥ 98% of its
/// first fill (on tmpfs: on ext4 1.14's per-free hole punching makes the case take 30 s).
#[test]
fn pmem_conservative_reuse() {
    dir_case(
        "pmem_conservative_reuse",
        "pmem_conservative",
        "/dev/shm",
        Huge::Host,
    );
}

/// After a PMEM kind whose blocks were all freed is destroyed, no mapping of its file is left
/// and the file system gets its blocks back. The free-block count is judged on a tmpfs nobody
/// else writes to: a private mount when root (removed afterwards), else /dev/shm; on ext4 (/tmp,
/// the root file system, which other processes write to meanwhile) only the mappings are.
#[test]
fn pmem_destroy_gives_back() {
    let base = target_dir()
        .join("difftest-tmp")
        .join(format!("pmem-destroy-tmpfs-{}", std::process::id()));
    std::fs::create_dir_all(&base).expect("create mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256m", "memkind-rs-diff"])
        .arg(&base)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        dir_case(
            "pmem_destroy_gives_back",
            "pmem_destroy",
            base.to_str().unwrap(),
            Huge::Host,
        );
        let _ = std::process::Command::new("umount").arg(&base).status();
    } else {
        println!("pmem_destroy_gives_back: no private tmpfs (not root?), using /dev/shm");
        dir_case(
            "pmem_destroy_gives_back",
            "pmem_destroy",
            "/dev/shm",
            Huge::Host,
        );
    }
    let _ = std::fs::remove_dir(&base);
}

#[test]
fn pmem_destroy_unmaps_ext4() {
    let dir = Path::new("/tmp").join(format!(
        "memkind-rs-diff-{}-destroy-ext4",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create pmem dir");
    let d = dir.to_str().expect("utf-8 temp path").to_string();
    diff_case(
        "pmem_destroy_unmaps_ext4",
        "pmem_destroy",
        &[&d, "nofs"],
        &[],
        Huge::Host,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// GBTLB kinds: 2 MiB hugetlb pages in 1 GiB mappings (tests/c/gbtlb.c). With 1 GiB of pages free
// the first block works and takes 512 pages; with 64 pages the kinds are available but every
// allocation fails with ENOMEM; with none they are unavailable (-18).
diff!(gbtlb_gib_reserved, "gbtlb", [], [], Huge::ReserveGiB);
diff!(gbtlb_gib_reserved_hbw_nodes_0, "gbtlb", [], [HBW => "0"], Huge::ReserveGiB);
diff!(gbtlb_64_pages, "gbtlb", [], [], Huge::Reserve);
diff!(gbtlb_no_hugepages, "gbtlb", [], [], Huge::Empty);
