//! Hook logic: against the real process map, and against a recording fake OS.

use core::ffi::c_void;
use core::ptr::NonNull;
use std::cell::RefCell;

use nix::errno::Errno;

use super::extent_alloc;
use crate::extent_map::{ExtentMap, MAP};
use crate::kind::{MbindPolicy, Placement};
use crate::sys::{Backing, MpolMode, Os, HUGE_2M};

#[test]
fn default_memory_is_in_the_map() {
    crate::arena::init::ensure();
    for size in [8usize, 100, 4096, 100_000, 3 << 20, 16 << 20] {
        let p = crate::arena::default::malloc(size);
        assert!(!p.is_null());
        assert_eq!(MAP.lookup(p as usize), Some(0), "size {size}");
        crate::arena::default::free(p);
    }
}

/// Records calls; hands out addresses from a fake, granule-aligned address space.
#[derive(Default)]
struct Fake {
    calls: RefCell<Vec<String>>,
    next: RefCell<usize>,
    fail_mbind: bool,
}

impl Os for Fake {
    fn map(&self, len: usize, backing: Backing) -> Result<NonNull<c_void>, Errno> {
        let mut n = self.next.borrow_mut();
        if *n == 0 {
            *n = 0x7e00_0000_0000 + 4096; // deliberately not 2 MiB aligned
        }
        let p = *n;
        *n += len + HUGE_2M;
        self.calls
            .borrow_mut()
            .push(format!("map {len:#x} {backing:?}"));
        Ok(NonNull::new(p as *mut c_void).unwrap())
    }
    unsafe fn unmap(&self, addr: *mut c_void, len: usize) -> Result<(), Errno> {
        self.calls
            .borrow_mut()
            .push(format!("unmap {:#x}+{len:#x}", addr as usize));
        Ok(())
    }
    unsafe fn advise(&self, addr: *mut c_void, len: usize, advice: i32) -> Result<(), Errno> {
        self.calls
            .borrow_mut()
            .push(format!("advise {:#x}+{len:#x} {advice}", addr as usize));
        Ok(())
    }
    fn mbind(
        &self,
        addr: *mut c_void,
        len: usize,
        mode: MpolMode,
        mask: &[u64],
    ) -> Result<(), Errno> {
        self.calls.borrow_mut().push(format!(
            "mbind {:#x}+{len:#x} {mode:?} {:#x}",
            addr as usize, mask[0]
        ));
        if self.fail_mbind {
            Err(Errno::EINVAL)
        } else {
            Ok(())
        }
    }
    fn current_node(&self) -> u32 {
        1
    }
}

fn bound_placement() -> Placement {
    let mut nodes = crate::nodemask::Nodemask::new();
    nodes.set(1);
    Placement {
        mbind: Some(MbindPolicy {
            mode: MpolMode::Bind,
            nodes: crate::topology::NodeSets::uniform(nodes),
        }),
        nohugepage: true,
        ..Placement::anon()
    }
}

#[test]
fn alloc_aligns_binds_and_registers() {
    let os = Fake::default();
    let map = Box::new(ExtentMap::new());
    let kind = &crate::kind::KINDS[crate::kind::partition::REGULAR];
    let p = extent_alloc(
        &os,
        &map,
        kind,
        &bound_placement(),
        core::ptr::null_mut(),
        3 * 4096,
        4096,
    );
    assert!(!p.is_null());
    assert_eq!(p as usize % HUGE_2M, 0, "granule aligned");
    assert_eq!(map.lookup(p as usize), Some(kind.id()));
    let calls = os.calls.borrow().join("\n");
    // over-mapped by one granule to align, head and tail trimmed, then bound to node 1
    assert!(calls.contains("map 0x3ff000 Anon"), "{calls}");
    assert!(
        calls.contains(&format!("mbind {:#x}+0x200000 Bind 0x2", p as usize)),
        "{calls}"
    );
    assert!(
        calls.contains(&format!(
            "advise {:#x}+0x200000 {}",
            p as usize,
            libc::MADV_NOHUGEPAGE
        )),
        "{calls}"
    );
    // destroying the extent unmaps the whole granule, once
    os.calls.borrow_mut().clear();
    super::extent_destroy(&os, &map, p, 3 * 4096);
    assert_eq!(
        *os.calls.borrow(),
        vec![format!("unmap {:#x}+0x200000", p as usize)]
    );
    assert_eq!(map.lookup(p as usize), None);
}

#[test]
fn mbind_failure_unmaps_and_fails() {
    let os = Fake {
        fail_mbind: true,
        ..Fake::default()
    };
    let map = Box::new(ExtentMap::new());
    let kind = &crate::kind::KINDS[crate::kind::partition::REGULAR];
    let p = extent_alloc(
        &os,
        &map,
        kind,
        &bound_placement(),
        core::ptr::null_mut(),
        HUGE_2M,
        HUGE_2M,
    );
    assert!(p.is_null());
    assert!(os.calls.borrow().last().unwrap().starts_with("unmap"));
}

#[test]
fn new_addr_and_zero_size_are_refused() {
    let os = Fake::default();
    let map = Box::new(ExtentMap::new());
    let kind = &crate::kind::KINDS[0];
    let pl = Placement::anon();
    assert!(extent_alloc(&os, &map, kind, &pl, 0x1000 as *mut c_void, 4096, 4096).is_null());
    assert!(extent_alloc(&os, &map, kind, &pl, core::ptr::null_mut(), 0, 4096).is_null());
    assert!(os.calls.borrow().is_empty());
}
