//! The binary interface of our libmemkind.so: SONAME, the exported symbols, a 5-byte NOP at the
//! start of every arena-layer entry point, our headers and memkind.pc against Debian's, and
//! loading with dlopen().

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use memkind_tests::differential::{c_dir, work_dir};
use memkind_tests::target_dir;

fn ours() -> PathBuf {
    let so = target_dir().join("release").join("libmemkind.so");
    assert!(
        so.exists(),
        "{} missing: run `cargo build --release -p memkind` (tests/test.sh does)",
        so.display()
    );
    so
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn exported(lib: &Path) -> BTreeSet<String> {
    output(Command::new("nm").args(["-D", "--defined-only"]).arg(lib))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect()
}

/// memkind_arena(3)'s 19 functions.
const ARENA_LAYER: [&str; 19] = [
    "memkind_arena_create",
    "memkind_arena_create_map",
    "memkind_arena_destroy",
    "memkind_arena_malloc",
    "memkind_arena_calloc",
    "memkind_arena_pmem_calloc",
    "memkind_arena_posix_memalign",
    "memkind_arena_realloc",
    "memkind_arena_realloc_with_kind_detect",
    "memkind_thread_get_arena",
    "memkind_bijective_get_arena",
    "get_kind_by_arena",
    "memkind_arena_detect_kind",
    "memkind_arena_finalize",
    "memkind_arena_init",
    "memkind_arena_free",
    "memkind_arena_free_with_kind_detect",
    "memkind_arena_malloc_usable_size",
    "memkind_arena_update_memory_usage_policy",
];

/// Declared by our headers but deliberately not provided (none at present).
const NOT_YET: [&str; 0] = [];

/// Every function and variable our headers declare.
fn declared() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for h in [
        "memkind.h",
        "memkind_deprecated.h",
        "hbwmalloc.h",
        "memkind_memtier.h",
    ] {
        let text = std::fs::read_to_string(repo().join("alloc/include").join(h)).unwrap();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("extern memkind_t ") {
                names.insert(rest.trim_end_matches(';').to_string());
            } else if !line.starts_with('#')
                && !line.starts_with("typedef")
                && !line.starts_with("static inline")
                && !line.starts_with("/*")
                && line.contains('(')
            {
                let head = line.split('(').next().unwrap();
                let name = head.rsplit([' ', '*']).next().unwrap();
                if name.starts_with("memkind_")
                    || name.starts_with("hbw_")
                    || name.starts_with("memtier_")
                {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names.insert("memkind_get_kind_by_partition".into());
    names
}

#[test]
fn soname_is_memkinds() {
    let d = output(Command::new("readelf").arg("-d").arg(ours()));
    assert!(d.contains("Library soname: [libmemkind.so.0]"), "{d}");
}

#[test]
fn exports_every_declared_symbol_and_the_arena_layer() {
    let have = exported(&ours());
    assert!(
        declared().len() > 50,
        "header parse found only {:?}",
        declared()
    );
    // memkind_memtier.h: 17 functions; memtier_free is a static inline of the header.
    let memtier = declared()
        .into_iter()
        .filter(|s| s.starts_with("memtier_"))
        .count();
    assert_eq!(memtier, 17, "{:?}", declared());
    assert!(!declared().contains("memtier_free"));
    let missing: Vec<_> = declared()
        .into_iter()
        .chain(ARENA_LAYER.iter().map(|s| s.to_string()))
        .filter(|s| !have.contains(s) && !NOT_YET.contains(&s.as_str()))
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
    // Nothing of jemalloc or Rust's runtime leaks into the dynamic symbol table.
    let leaked: Vec<_> = have
        .iter()
        .filter(|s| s.starts_with("_rjem") || s.starts_with("_ZN"))
        .collect();
    assert!(leaked.is_empty(), "leaked: {leaked:?}");
    // And every name Debian's memkind.h/hbwmalloc.h users may call that 1.14 exports, we export
    // too (apart from the next issue's).
    let system = exported(Path::new("/usr/lib/x86_64-linux-gnu/libmemkind.so.0"));
    let gaps: Vec<_> = declared()
        .into_iter()
        .filter(|s| system.contains(s) && !have.contains(s) && !NOT_YET.contains(&s.as_str()))
        .collect();
    assert!(
        gaps.is_empty(),
        "1.14 exports these and we do not: {gaps:?}"
    );
}

/// `nm -D --defined-only`: name → symbol type letter (T function, D/B data).
fn exported_kinds(lib: &Path) -> std::collections::BTreeMap<String, char> {
    output(Command::new("nm").args(["-D", "--defined-only"]).arg(lib))
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip(1);
            let t = w.next()?.chars().next()?;
            Some((w.next()?.to_string(), t))
        })
        .collect()
}

/// Function or data, whatever the section: T and t are code; D, B, R (and lower case) data.
fn is_code(t: char) -> bool {
    t.eq_ignore_ascii_case(&'t')
}

#[test]
fn exports_everything_debians_library_exports() {
    let system = Path::new("/usr/lib/x86_64-linux-gnu/libmemkind.so.0");
    if !system.exists() {
        eprintln!(
            "SKIP: {} missing (apt-get install libmemkind0)",
            system.display()
        );
        return;
    }
    let theirs = exported_kinds(system);
    let have = exported_kinds(&ours());
    assert!(theirs.len() >= 160, "Debian's export list: {theirs:?}");
    let missing: Vec<_> = theirs.keys().filter(|s| !have.contains_key(*s)).collect();
    assert!(
        missing.is_empty(),
        "1.14 exports these and we do not: {missing:?}"
    );
    let differ: Vec<_> = theirs
        .iter()
        .filter(|(s, t)| is_code(**t) != is_code(have[*s]))
        .map(|(s, t)| format!("{s}: 1.14 {t}, ours {}", have[s]))
        .collect();
    assert!(
        differ.is_empty(),
        "function in one, data in the other: {differ:?}"
    );
    // The operations tables are writable data, as 1.14's (`D`): programs may change an entry.
    let ro: Vec<_> = have
        .iter()
        .filter(|(s, t)| s.ends_with("_OPS") && !matches!(t, 'D' | 'd'))
        .collect();
    assert!(
        ro.is_empty(),
        "operations tables not in writable data: {ro:?}"
    );
}

#[test]
fn every_arena_entry_point_starts_with_a_nop5() {
    let dis = output(Command::new("objdump").arg("-d").arg(ours()));
    let mut lines = dis.lines();
    let mut seen = BTreeSet::new();
    while let Some(l) = lines.next() {
        let Some(name) = l
            .strip_suffix(">:")
            .and_then(|s| s.split_once(" <"))
            .map(|(_, n)| n)
        else {
            continue;
        };
        if ARENA_LAYER.contains(&name) {
            let first = lines.next().unwrap_or_default();
            assert!(
                first.contains("0f 1f 44 00 00"),
                "{name} starts with: {first}"
            );
            seen.insert(name.to_string());
        }
    }
    let want: BTreeSet<String> = ARENA_LAYER.iter().map(|s| s.to_string()).collect();
    assert_eq!(seen, want);
}

fn cc(args: &[&str], src: &Path, out: &Path) {
    output(
        Command::new("cc")
            .args(["-O1", "-Wall", "-Werror", "-o"])
            .arg(out)
            .arg(src)
            .args(args),
    );
}

#[test]
fn our_headers_match_debians() {
    let dir = tempfile_dir("headers");
    let src = c_dir().join("constants.c");
    cc(&[], &src, &dir.join("system"));
    let ours_inc = format!("-I{}", repo().join("alloc/include").display());
    cc(&[&ours_inc], &src, &dir.join("ours"));
    let a = output(&mut Command::new(dir.join("system")));
    let b = output(&mut Command::new(dir.join("ours")));
    assert!(a.lines().count() > 80);
    assert_eq!(a, b);
}

#[test]
fn pkg_config_builds_a_program_against_ours() {
    let dir = tempfile_dir("pkgconfig");
    let libdir = dir.join("lib");
    std::fs::create_dir_all(&libdir).unwrap();
    let _ = std::fs::remove_file(libdir.join("libmemkind.so"));
    std::os::unix::fs::symlink(ours(), libdir.join("libmemkind.so")).unwrap();
    let _ = std::fs::remove_file(libdir.join("libmemkind.so.0"));
    std::os::unix::fs::symlink(ours(), libdir.join("libmemkind.so.0")).unwrap();
    let pc = std::fs::read_to_string(repo().join("alloc/include/memkind.pc.in"))
        .unwrap()
        .replace("@PREFIX@", &dir.display().to_string())
        .replace("@LIBDIR@", &libdir.display().to_string())
        .replace(
            "@INCLUDEDIR@",
            &repo().join("alloc/include").display().to_string(),
        );
    std::fs::write(dir.join("memkind.pc"), pc).unwrap();
    let flags = output(
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "memkind"])
            .env("PKG_CONFIG_PATH", &dir),
    );
    let flags: Vec<&str> = flags.split_whitespace().collect();
    assert!(
        flags.iter().any(|f| f.contains("alloc/include")),
        "{flags:?}"
    );
    cc(&flags, &repo().join("tests/demo/demo.c"), &dir.join("demo"));
    let out = output(Command::new(dir.join("demo")).env("LD_LIBRARY_PATH", &libdir));
    assert!(
        out.contains(&libdir.join("libmemkind.so.0").display().to_string())
            || out.contains("libmemkind.so"),
        "{out}"
    );
    assert!(
        out.contains("MEMKIND_DEFAULT                    right owner"),
        "{out}"
    );
}

/// True when `lib`'s dynamic section carries the STATIC_TLS flag (initial-exec TLS).
fn needs_static_tls(lib: &Path) -> bool {
    output(Command::new("readelf").arg("-d").arg(lib))
        .lines()
        .any(|l| l.contains("FLAGS") && l.contains("STATIC_TLS"))
}

/// tests/c/dlopen.c built in `dir`.
fn dlopen_program(dir: &Path) -> PathBuf {
    let prog = dir.join("dlopen");
    cc(&["-pthread", "-ldl"], &c_dir().join("dlopen.c"), &prog);
    prog
}

/// The default build can be dlopen()ed, as memkind 1.14 can (JNI libraries, ctypes, plugins):
/// it needs no static TLS (no STATIC_TLS flag; jemalloc reaches its thread state through TLS
/// descriptors), so glibc's default static TLS reserve is enough.
#[test]
fn default_build_loads_with_dlopen() {
    assert!(!needs_static_tls(&ours()), "our library needs static TLS");
    let prog = dlopen_program(&tempfile_dir("dlopen"));
    let out = output(
        Command::new(&prog)
            .arg(ours())
            .env_remove("GLIBC_TUNABLES")
            .env_remove("LD_PRELOAD"),
    );
    assert_eq!(out.trim(), "ok");
}

/// The `--no-default-features` build (jemalloc with initial-exec TLS, `target/ie`, built by
/// tests/test.sh) does what the README says: it needs static TLS, so dlopen() fails under glibc's
/// default reserve and works with `glibc.rtld.optional_static_tls=16384`; linked at start-up it
/// runs the demo.
#[test]
fn initial_exec_build_needs_static_tls_and_runs_when_linked() {
    let ie = target_dir().join("ie/release/libmemkind.so");
    if !ie.exists() {
        println!(
            "skipped: {} missing (tests/test.sh builds it: cargo build --release -p memkind --no-default-features --target-dir target/ie)",
            ie.display()
        );
        return;
    }
    assert!(
        needs_static_tls(&ie),
        "initial-exec build without STATIC_TLS"
    );
    let dir = tempfile_dir("initial-exec");
    let prog = dlopen_program(&dir);
    let refused = Command::new(&prog)
        .arg(&ie)
        .env_remove("GLIBC_TUNABLES")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&refused.stdout);
    assert!(
        !refused.status.success() && text.contains("static TLS"),
        "dlopen of the initial-exec build should fail without the tunable: {text}"
    );
    let out = output(
        Command::new(&prog)
            .arg(&ie)
            .env("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=16384"),
    );
    assert_eq!(out.trim(), "ok");
    // Linked at start-up (DT_NEEDED libmemkind.so.0), with Debian's headers.
    let libdir = dir.join("lib");
    std::fs::create_dir_all(&libdir).unwrap();
    let link = libdir.join("libmemkind.so.0");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&ie, &link).unwrap();
    cc(
        &["-lmemkind"],
        &repo().join("tests/demo/demo.c"),
        &dir.join("demo"),
    );
    let out = output(Command::new(dir.join("demo")).env("LD_LIBRARY_PATH", &libdir));
    assert!(
        out.contains("MEMKIND_DEFAULT                    right owner"),
        "{out}"
    );
}

/// A scratch directory of this test process (the differential harness's, cleaned up with it).
fn tempfile_dir(name: &str) -> PathBuf {
    let d = work_dir().join(format!("abi-{name}"));
    std::fs::create_dir_all(&d).unwrap();
    d
}
