//! `memkind-bench --instructions` on one cell (DEFAULT, 16 B): the figures are sane (positive,
//! below a few thousand), ours DEFAULT costs fewer instructions per pair than memkind 1.14's, and
//! the attached column (semaphore set) takes the counted path.
//! Skips with the reason when valgrind, the C compiler or memkind's header are missing.

use std::process::Command;

fn skip_reason() -> Option<String> {
    let ok = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok("valgrind") {
        return Some("valgrind missing (apt-get install valgrind; tests/setup.sh does)".into());
    }
    if !ok("cc") {
        return Some("no C compiler".into());
    }
    if !std::path::Path::new("/usr/include/memkind.h").exists() {
        return Some("memkind.h missing (apt-get install libmemkind-dev)".into());
    }
    None
}

#[test]
fn instructions_default_16() {
    if let Some(why) = skip_reason() {
        println!("SKIP instructions_default_16: {why}");
        eprintln!("SKIP instructions_default_16: {why}");
        return;
    }
    let ours = memkind_tests::target_dir().join("release/libmemkind.so");
    assert!(
        ours.exists(),
        "{} is not built: cargo build --release -p memkind (tests/test.sh does)",
        ours.display()
    );
    let o = Command::new(env!("CARGO_BIN_EXE_memkind-bench"))
        .args([
            "--instructions",
            "--kinds",
            "DEFAULT",
            "--sizes",
            "16",
            "--pairs",
            "20000",
            "--warmup",
            "2000",
            "--format",
            "json",
        ])
        .arg("--ours")
        .arg(&ours)
        .output()
        .expect("run memkind-bench");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "memkind-bench --instructions: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        o.status
    );
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(rows.len(), 1, "one row expected:\n{stdout}\n{stderr}");
    let r = &rows[0];
    assert_eq!(r["kind"], "DEFAULT");
    assert_eq!(r["size"], 16);
    let get = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {r}\nstderr:\n{stderr}"))
    };
    let (mk, ours, je) = (
        get("memkind_instr"),
        get("ours_instr"),
        get("jemalloc_malloc_instr"),
    );
    for (name, v) in [("memkind 1.14", mk), ("ours", ours), ("jemalloc", je)] {
        assert!(
            v > 10.0 && v < 5000.0,
            "{name}: {v} instructions per DEFAULT 16 B pair is not sane\n{stderr}"
        );
    }
    assert!(
        ours < mk,
        "ours DEFAULT 16 B pair {ours} instructions, memkind 1.14 {mk}: ours must be cheaper"
    );
    // The semaphore really switched the counted path on (the same figure would mean the
    // program's store missed it).
    let att = get("ours_attached_instr");
    assert!(
        att > ours + 10.0 && att < 5000.0,
        "ours attached {att} instructions per DEFAULT 16 B pair against {ours} detached\n{stderr}"
    );
    println!(
        "DEFAULT 16 B: memkind 1.14 {mk}, ours {ours}, ours attached {att}, jemalloc malloc/free {je}"
    );
}
