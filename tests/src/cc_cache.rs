//! `cc` through a cache of earlier identical compiles, for the C workloads of the root and
//! `kernel_*` tests. Inside a vmtest cell (software-emulated CPU) one `cc` of a small workload
//! takes 9–12 s, and each cell compiles the same few programs again: with the cache they are
//! compiled once, by the host's run of the same tests (the guests see the host's `target/`), and
//! copied from there.
//!
//! The key is a hash of the arguments (without the output and `-L` search directories, which do
//! not change the output) and of the bytes of every input that can: the source files named, and
//! the headers in the `-I` directories and beside the sources; plus the compiler's identity.
//! Anything that changes the program changes the key; an entry is written to a temporary name
//! and renamed, so concurrent tests never see half a file.
//!
//! Shared by memkind-tests (`memkind_tests::cc_cache`) and memkind-bpf's tests (by `#[path]`).

use std::collections::hash_map::DefaultHasher;
use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Directory of the cache: `$CARGO_TARGET_DIR/cc-cache`, or `target/cc-cache` beside the
/// workspace's manifest (`manifest_dir` is any crate of the workspace).
pub fn cache_dir(manifest_dir: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../target"))
        .join("cc-cache")
}

fn hash_file(h: &mut DefaultHasher, p: &Path) {
    p.as_os_str().as_bytes().hash(h);
    match std::fs::read(p) {
        Ok(b) => b.hash(h),
        Err(_) => 0u8.hash(h),
    }
}

fn hash_headers(h: &mut DefaultHasher, dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension() == Some(OsStr::new("h")))
        .collect();
    v.sort();
    for p in v {
        hash_file(h, &p);
    }
}

/// The cache key of `cc args` (without `-o OUT`).
fn key(args: &[OsString]) -> String {
    let mut h = DefaultHasher::new();
    // The compiler: which file it is and when it was installed.
    if let Ok(cc) = std::fs::canonicalize("/usr/bin/cc") {
        cc.as_os_str().as_bytes().hash(&mut h);
        if let Ok(m) = std::fs::metadata(&cc) {
            use std::os::unix::fs::MetadataExt;
            (m.size(), m.mtime(), m.mtime_nsec()).hash(&mut h);
        }
    }
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let b = a.as_bytes();
        if b == b"-L" {
            it.next();
            continue;
        }
        if b.starts_with(b"-L") {
            continue;
        }
        b.hash(&mut h);
        if b == b"-I" {
            if let Some(d) = it.next() {
                d.as_bytes().hash(&mut h);
                hash_headers(&mut h, Path::new(d));
            }
        } else if let Some(d) = b.strip_prefix(b"-I") {
            hash_headers(&mut h, Path::new(OsStr::from_bytes(d)));
        } else if b.ends_with(b".c") {
            let p = Path::new(a);
            hash_file(&mut h, p);
            if let Some(d) = p.parent() {
                hash_headers(&mut h, d);
            }
        }
    }
    format!("{:016x}", h.finish())
}

/// Run `cc args -o out` or copy its earlier result from `cache`. Returns what `cc` printed (an
/// empty success for a cache hit).
pub fn cc(cache: &Path, args: &[OsString], out: &Path) -> std::io::Result<Output> {
    let entry = cache.join(key(args));
    if std::fs::copy(&entry, out).is_ok() {
        return Ok(Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(0),
            stdout: Vec::new(),
            stderr: Vec::new(),
        });
    }
    let o = Command::new("cc").args(args).arg("-o").arg(out).output()?;
    if o.status.success() && std::fs::create_dir_all(cache).is_ok() {
        // A name of this process and call alone (tests of one binary compile the same program
        // from several threads at once), renamed over the entry when complete.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tmp = cache.join(format!(
            ".{}.{}.{}",
            entry.file_name().unwrap().to_string_lossy(),
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        if std::fs::copy(out, &tmp).is_ok() && std::fs::rename(&tmp, &entry).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(o)
}
