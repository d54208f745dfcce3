//! PMEM kinds beyond memkind 1.14, through the C ABI and the Rust API, on real files in /tmp:
//! `max` enforcement (NULL + ENOMEM), a thousand kinds at once, fork isolation (parent and child
//! never see each other's writes), destroy with live allocations, the usage policies (the file's
//! allocated blocks drop at once with CONSERVATIVE, within the decay time with DEFAULT), and no
//! descriptor leaked by a failed create.
//!
//! The tests share one lock: the fork handlers copy every live PMEM kind, and the thousand-kind
//! test needs the descriptors.

use core::ffi::c_void;
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use memkind::{Memkind, UsagePolicy};
use memkind_tests::capi::*;

static SERIAL: Mutex<()> = Mutex::new(());

const MIB: usize = 1 << 20;

/// A fresh directory under /tmp (ext4 here), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = Path::new("/tmp").join(format!("memkind-rs-pmem-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create dir");
        TempDir(d)
    }
    fn c(&self) -> CString {
        CString::new(self.0.to_str().unwrap()).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn create(dir: &TempDir, max: usize) -> MemkindT {
    let mut k: MemkindT = core::ptr::null();
    assert_eq!(memkind_create_pmem(dir.c().as_ptr(), max, &mut k), 0);
    assert!(!k.is_null());
    k
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The kind's file, found among our descriptors by its directory (it is unlinked).
fn kind_file(dir: &TempDir) -> PathBuf {
    let prefix = format!("{}/memkind.", dir.0.display());
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .find(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with(&prefix))
        })
        .map(|e| e.path())
        .expect("the kind's file is open")
}

/// Bytes of the file's allocated blocks.
fn file_bytes(f: &Path) -> u64 {
    std::fs::metadata(f).unwrap().blocks() * 512
}

#[test]
fn max_size_is_enforced_with_enomem() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("max");
    let k = create(&dir, 16 * MIB);
    assert_eq!(memkind_get_capacity(k), 16 * MIB as isize);
    let mut blocks = Vec::new();
    loop {
        let p = memkind_malloc(k, MIB);
        if p.is_null() {
            assert_eq!(errno(), libc::ENOMEM);
            break;
        }
        // SAFETY: a live 1 MiB block.
        unsafe { core::ptr::write_bytes(p.cast::<u8>(), 7, MIB) };
        blocks.push(p);
        assert!(blocks.len() <= 16, "more than max handed out");
    }
    // The limit counts the extents jemalloc asks for: its 2 MiB metadata block and the
    // unused tails of its geometrically growing extents count too (memkind 1.14 fits 11).
    assert!(blocks.len() >= 9, "only {} MiB of 16", blocks.len());
    // A larger block fails, a small one may still fit; freeing makes room again.
    assert!(memkind_malloc(k, 8 * MIB).is_null());
    let n = blocks.len();
    for p in blocks.drain(..) {
        memkind_free(k, p);
    }
    for _ in 0..n {
        let p = memkind_malloc(k, MIB);
        assert!(!p.is_null(), "memory is reusable after free");
        blocks.push(p);
    }
    blocks
        .into_iter()
        .for_each(|p| memkind_free(core::ptr::null(), p));
    assert_eq!(memkind_destroy_kind(k), 0);
}

#[test]
fn a_thousand_kinds_at_once() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // One descriptor per kind: raise the soft RLIMIT_NOFILE to the hard limit.
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = rl.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
    }
    if rl.rlim_cur < 1100 {
        println!(
            "SKIP a_thousand_kinds_at_once: RLIMIT_NOFILE hard limit {}",
            rl.rlim_max
        );
        return;
    }
    let dir = TempDir::new("thousand");
    let fds = open_fds();
    let kinds: Vec<MemkindT> = (0..1000).map(|_| create(&dir, 0)).collect();
    let ptrs: Vec<*mut u8> = kinds
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let p = memkind_malloc(k, 64).cast::<u8>();
            assert!(!p.is_null(), "kind {i}");
            // SAFETY: a live 64-byte block.
            unsafe { core::ptr::write_bytes(p, i as u8, 64) };
            p
        })
        .collect();
    for (i, (&k, &p)) in kinds.iter().zip(&ptrs).enumerate() {
        assert_eq!(memkind_detect_kind(p.cast()), k);
        // SAFETY: the block written above.
        assert_eq!(unsafe { *p.add(63) }, i as u8);
        memkind_free(core::ptr::null(), p.cast());
    }
    for k in kinds {
        assert_eq!(memkind_destroy_kind(k), 0);
    }
    assert_eq!(open_fds(), fds, "every kind's file is closed");
}

fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) writes two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

fn signal(fd: i32) {
    // SAFETY: writes one byte from the stack.
    unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
}

fn wait_for(fd: i32) {
    let mut b = 0u8;
    // SAFETY: reads one byte to the stack.
    unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
}

fn fill(p: *mut c_void, n: usize, v: u8) {
    // SAFETY: callers pass live blocks of at least n bytes.
    unsafe { core::ptr::write_bytes(p.cast::<u8>(), v, n) };
}

fn all(p: *mut c_void, n: usize, v: u8) -> bool {
    // SAFETY: callers pass live blocks of at least n bytes.
    unsafe { core::slice::from_raw_parts(p.cast::<u8>(), n) }
        .iter()
        .all(|&b| b == v)
}

#[test]
fn fork_child_and_parent_do_not_share_memory() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("fork");
    let k = create(&dir, 0);
    let small = memkind_malloc(k, 4096);
    let big = memkind_malloc(k, 3 * MIB);
    fill(small, 4096, 1);
    fill(big, 3 * MIB, 1);
    let (to_parent_r, to_parent_w) = pipe();
    let (to_child_r, to_child_w) = pipe();
    // SAFETY: fork(2); the child only uses the allocator, raw syscalls and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut ok = all(small, 4096, 1) && all(big, 3 * MIB, 1);
        fill(small, 4096, 2);
        fill(big, 3 * MIB, 2);
        let fresh: Vec<_> = (0..64).map(|_| memkind_malloc(k, 4096)).collect();
        fresh.iter().for_each(|&p| fill(p, 4096, 2));
        signal(to_parent_w);
        wait_for(to_child_r); // the parent wrote 3 everywhere it could
        ok &= all(small, 4096, 2) && all(big, 3 * MIB, 2);
        ok &= fresh.iter().all(|&p| all(p, 4096, 2));
        fresh.iter().for_each(|&p| memkind_free(k, p));
        // SAFETY: ends the child without running the test harness's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    wait_for(to_parent_r); // the child wrote 2 everywhere it could
    assert!(all(small, 4096, 1), "the child's write reached the parent");
    assert!(all(big, 3 * MIB, 1), "the child's write reached the parent");
    fill(small, 4096, 3);
    fill(big, 3 * MIB, 3);
    let fresh: Vec<_> = (0..64).map(|_| memkind_malloc(k, 4096)).collect();
    fresh.iter().for_each(|&p| fill(p, 4096, 3));
    signal(to_child_w);
    let mut status = 0;
    // SAFETY: waits for our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child saw the parent's writes (status {status:#x})"
    );
    assert!(fresh.iter().all(|&p| all(p, 4096, 3)));
    fresh.iter().for_each(|&p| memkind_free(k, p));
    memkind_free(k, small);
    memkind_free(k, big);
    assert_eq!(memkind_destroy_kind(k), 0);
    for fd in [to_parent_r, to_parent_w, to_child_r, to_child_w] {
        // SAFETY: our pipe ends.
        unsafe { libc::close(fd) };
    }
}

/// Lines of /proc/self/maps that map a file under `dir` (our PMEM files are unlinked at once, so
/// they show as `<dir>/... (deleted)`).
fn maps_under(dir: &std::path::Path) -> usize {
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&d))
        .count()
}

#[test]
fn destroy_with_live_allocations() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("destroy");
    let fds = open_fds();
    let kind = Memkind::pmem(&dir.0).max_size(64 * MIB).create().unwrap();
    let layout = core::alloc::Layout::from_size_align(MIB, 64).unwrap();
    let small = core::alloc::Layout::from_size_align(48, 8).unwrap();
    let a = kind.allocate_layout(layout).unwrap();
    let b = kind.allocate_layout(small).unwrap();
    // SAFETY: live blocks of 1 MiB and 48 bytes.
    unsafe {
        core::ptr::write_bytes(a.as_ptr(), 0xab, MIB);
        core::ptr::write_bytes(b.as_ptr(), 0xcd, 48);
    }
    assert_eq!(Memkind::detect(a.as_ptr()), Some(kind));
    kind.destroy().unwrap();
    // The kind is gone: its pointers are foreign, freeing them is ignored...
    assert_eq!(Memkind::detect(a.as_ptr()), None);
    assert_eq!(Memkind::detect(b.as_ptr()), None);
    memkind_free(core::ptr::null(), a.as_ptr().cast());
    assert_eq!(
        memkind_malloc_usable_size(core::ptr::null(), b.as_ptr().cast()),
        0
    );
    assert_eq!(open_fds(), fds, "the file descriptor is closed");
    // ...but blocks still allocated keep their memory and contents (as with 1.14, whose
    // interposer libmemtier destroys its kinds at exit while stdio's buffer still lives there).
    // SAFETY: the mapping is kept while blocks were allocated at destroy.
    unsafe {
        let a = core::slice::from_raw_parts_mut(a.as_ptr(), MIB);
        assert!(a.iter().all(|&x| x == 0xab));
        assert!(core::slice::from_raw_parts(b.as_ptr(), 48)
            .iter()
            .all(|&x| x == 0xcd));
        a[0] = 1;
    }
    let kept = maps_under(&dir.0);
    assert!(kept > 0, "the live blocks' mapping is kept");
    // A kind destroyed with nothing allocated gives its memory back: its mappings go.
    let again = Memkind::pmem(&dir.0).create().unwrap();
    let c = again.allocate_layout(layout).unwrap();
    assert_eq!(Memkind::detect(c.as_ptr()), Some(again));
    assert!(maps_under(&dir.0) > kept);
    // SAFETY: a live block of ours.
    unsafe { Memkind::free(c) };
    again.destroy().unwrap();
    assert_eq!(
        maps_under(&dir.0),
        kept,
        "an empty kind is unmapped at destroy"
    );
}

#[test]
fn failed_create_leaks_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fds = open_fds();
    let mut k: MemkindT = core::ptr::null();
    let missing = CString::new("/nonexistent/memkind-rs").unwrap();
    assert_eq!(memkind_create_pmem(missing.as_ptr(), 0, &mut k), -13);
    assert!(k.is_null());
    let tmp = CString::new("/tmp").unwrap();
    assert_eq!(memkind_create_pmem(tmp.as_ptr(), MIB, &mut k), -13);
    assert_eq!(open_fds(), fds);
    let mut byp: MemkindT = core::ptr::null();
    assert_eq!(
        memkind_get_kind_by_partition(26, &mut byp),
        -1,
        "no slot taken"
    );
}

/// Allocate 16 MiB in 4 MiB blocks, touch them, free them; return the file and its allocated
/// bytes before the frees.
fn churn(kind: Memkind, dir: &TempDir) -> (PathBuf, u64) {
    let layout = core::alloc::Layout::from_size_align(4 * MIB, 4096).unwrap();
    let blocks: Vec<_> = (0..4)
        .map(|_| {
            let p = kind.allocate_layout(layout).unwrap();
            fill(p.as_ptr().cast(), 4 * MIB, 9);
            p
        })
        .collect();
    let f = kind_file(dir);
    let before = file_bytes(&f);
    assert!(before >= 16 * MIB as u64, "file holds {before} bytes");
    for p in blocks {
        // SAFETY: live blocks of ours.
        unsafe { Memkind::free(p) };
    }
    (f, before)
}

#[test]
fn conservative_policy_returns_file_blocks_at_once() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("conservative");
    let kind = Memkind::pmem(&dir.0)
        .policy(UsagePolicy::Conservative)
        .create()
        .unwrap();
    let (f, before) = churn(kind, &dir);
    let after = file_bytes(&f);
    assert!(
        after + 12 * MIB as u64 <= before,
        "CONSERVATIVE: {before} bytes before the frees, {after} right after"
    );
    kind.destroy().unwrap();
}

#[test]
fn default_policy_returns_file_blocks_within_the_decay_time() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("default");
    let kind = Memkind::pmem(&dir.0).create().unwrap();
    let (f, before) = churn(kind, &dir);
    let start = Instant::now();
    let tick = core::alloc::Layout::from_size_align(64 * 1024, 8).unwrap();
    let after = loop {
        // jemalloc's decay advances with arena activity: keep the arena ticking.
        for _ in 0..2000 {
            let p = kind.allocate_layout(tick).unwrap();
            // SAFETY: a live block of ours.
            unsafe { Memkind::free(p) };
        }
        let now = file_bytes(&f);
        if now + 12 * MIB as u64 <= before || start.elapsed() > Duration::from_secs(15) {
            break now;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        after + 12 * MIB as u64 <= before,
        "DEFAULT: {before} bytes before the frees, {after} after {:?}",
        start.elapsed()
    );
    kind.destroy().unwrap();
}
