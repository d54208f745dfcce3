//! PMEM kinds on a real DAX mount (the vmtest cell with an emulated NVDIMM in fsdax mode,
//! mounted `-o dax` at `$MEMKIND_RS_PMEM_DIR`): `memkind_check_dax_path` says 0, and a PMEM
//! kind's extents are mapped with MAP_SYNC, which /proc/self/smaps shows as the `sf`
//! ("synchronous page fault") VmFlag. On hosts and cells without a DAX mount the test skips.

use std::ffi::CString;

use memkind_tests::capi::*;
use memkind_tests::{need, Feature};

/// The VmFlags of the mapping containing `addr`.
fn vm_flags(addr: usize) -> Option<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                inside = (a..b).contains(&addr);
                continue;
            }
        }
        if inside {
            if let Some(f) = line.strip_prefix("VmFlags:") {
                return Some(f.trim().to_string());
            }
        }
    }
    None
}

#[test]
fn kernel_pmem_on_dax_is_mapped_with_map_sync() {
    if !need(
        "kernel_pmem_on_dax_is_mapped_with_map_sync",
        &[Feature::Dax],
    ) {
        return;
    }
    let dir = std::env::var("MEMKIND_RS_PMEM_DIR").unwrap();
    let c = CString::new(dir.clone()).unwrap();
    assert_eq!(
        memkind_check_dax_path(c.as_ptr()),
        0,
        "{dir} is a DAX mount"
    );
    let mut k: MemkindT = core::ptr::null();
    assert_eq!(memkind_create_pmem(c.as_ptr(), 64 << 20, &mut k), 0);
    for size in [64usize, 4096, 1 << 20] {
        let p = memkind_malloc(k, size).cast::<u8>();
        assert!(!p.is_null(), "malloc {size} on DAX");
        // SAFETY: a live block of `size` bytes.
        unsafe { core::ptr::write_bytes(p, 0x5a, size) };
        // SAFETY: as above.
        assert_eq!(unsafe { *p.add(size - 1) }, 0x5a);
        let flags = vm_flags(p as usize).expect("the block is in a mapping");
        assert!(
            flags.split_whitespace().any(|f| f == "sf"),
            "{size}-byte block not mapped with MAP_SYNC: VmFlags {flags}"
        );
        memkind_free(k, p.cast());
    }
    assert_eq!(memkind_destroy_kind(k), 0);
}

#[test]
fn kernel_pmem_outside_dax_is_not_map_sync() {
    // /dev/shm (tmpfs) never supports MAP_SYNC: the kind works with a plain shared mapping.
    let c = CString::new("/dev/shm").unwrap();
    assert_eq!(memkind_check_dax_path(c.as_ptr()), -3);
    let mut k: MemkindT = core::ptr::null();
    assert_eq!(memkind_create_pmem(c.as_ptr(), 0, &mut k), 0);
    let p = memkind_malloc(k, 4096).cast::<u8>();
    assert!(!p.is_null());
    // SAFETY: a live 4 KiB block.
    unsafe { core::ptr::write_bytes(p, 1, 4096) };
    let flags = vm_flags(p as usize).expect("mapped");
    assert!(
        flags.split_whitespace().any(|f| f == "sh"),
        "shared: {flags}"
    );
    assert!(
        !flags.split_whitespace().any(|f| f == "sf"),
        "no MAP_SYNC: {flags}"
    );
    memkind_free(k, p.cast());
    assert_eq!(memkind_destroy_kind(k), 0);
}
