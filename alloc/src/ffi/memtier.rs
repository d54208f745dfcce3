//! memkind_memtier.h: builders, tiered memories and the `memtier_*` allocation functions.
//!
//! Builder and memory handles are looked up in [`memtier`](crate::memtier)'s tables: NULL, a
//! deleted handle or any other pointer is an error (-1, NULL, EINVAL), never dereferenced. A
//! builder call that overlaps another call on the same builder fails (-1 / NULL) instead of
//! waiting (see [`BuilderSlot`]).
//! Blocks are allocated and freed with the `memkind_*` entry points (same semantics for sizes,
//! errno and bad kinds), and their usable sizes reported to the per-kind counters.
//!
//! Where 1.14 crashes (NULL or bogus builder, memory, kind, name or value), ours returns the
//! function's error. Accounting differs from 1.14 only where 1.14 is wrong: a free or realloc
//! is charged to the kind that owns the block (1.14: the kind the caller named), a failed
//! realloc leaves the counters as they were (1.14 forgets the block), and a failed
//! posix_memalign counts nothing (1.14 counts whatever `*memptr` held).

use core::ffi::{c_char, c_int, c_uint, c_void};

use super::memkind::{
    memkind_calloc, memkind_detect_kind, memkind_free, memkind_malloc, memkind_posix_memalign,
    memkind_realloc,
};
use super::{kind_arg, MemkindT};
use crate::arena::heap;
use crate::kind::Kind;
use crate::memtier::{
    self, Builder, BuilderSlot, Memory, Policy, Value, ValueType, BUILDERS, MEMORIES,
};
use crate::sys::set_errno;

/// `struct memtier_builder *`.
pub type BuilderT = *mut c_void;
/// `struct memtier_memory *`.
pub type MemoryT = *mut c_void;

/// Run `f` on a live builder: `None` for anything else, and for a builder another call is
/// using at this moment (no waiting, see [`BuilderSlot`]).
fn with_builder<R>(b: BuilderT, f: impl FnOnce(&mut Builder) -> R) -> Option<R> {
    // SAFETY: C's contract: a builder is not used concurrently with or after its deletion.
    unsafe { BUILDERS.get(b) }?.with(f)
}

fn memory<'a>(m: MemoryT) -> Option<&'a Memory> {
    // SAFETY: C's contract: a memory is not used concurrently with or after its deletion.
    unsafe { MEMORIES.get(m) }
}

/// Usable size of a block (0 for NULL).
#[inline]
fn usable(p: *mut c_void) -> usize {
    if p.is_null() {
        0
    } else {
        heap::usable_size(p)
    }
}

/// The kind owning `p` and its usable size, when `p` is one of our blocks.
#[inline]
fn owned(p: *mut c_void) -> Option<(&'static Kind, usize)> {
    if p.is_null() {
        None
    } else {
        heap::owner_and_usable_size(p)
    }
}

/// Count a block just allocated from `kind`: in the kind that owns it (always `kind`; the
/// owner is what a free will uncount). A failed allocation counts 0 bytes in `kind`, as 1.14
/// (which may flush the thread's bucket).
#[inline]
fn counted(kind: &'static Kind, p: *mut c_void) -> *mut c_void {
    match owned(p) {
        Some((k, n)) => memtier::counters(k).add(n),
        None => memtier::counters(kind).add(0),
    }
    p
}

/// [`counted`] by the calling thread `thread` ([`memtier::thread`]).
#[inline]
fn counted_by(kind: &'static Kind, p: *mut c_void, thread: u64) -> *mut c_void {
    match owned(p) {
        Some((k, n)) => memtier::counters(k).add_by(thread, n),
        None => memtier::counters(kind).add_by(thread, 0),
    }
    p
}

fn uncount(p: *mut c_void) {
    if let Some((k, n)) = owned(p) {
        memtier::counters(k).sub(n);
    }
}

// --- builders and memories ---------------------------------------------------------------------

/// `memtier_builder_new(policy)`: NULL for an unknown policy, without memory, or with 4096
/// builders live.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_builder_new(policy: c_int) -> BuilderT {
    match Policy::from_c(policy) {
        Some(p) => BUILDERS
            .insert(BuilderSlot::new(Builder::new(p)))
            .unwrap_or(core::ptr::null_mut()),
        None => core::ptr::null_mut(),
    }
}

/// `memtier_builder_delete(builder)`: anything but a live builder is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_builder_delete(builder: BuilderT) {
    drop(BUILDERS.remove(builder));
}

/// `memtier_builder_add_tier(builder, kind, ratio)`: 0, or -1 for a bad builder or kind, a kind
/// already added, or no memory. Ratio 0 is accepted (as 1.14: see [`Builder::add_tier`]).
#[unsafe(no_mangle)]
pub extern "C" fn memtier_builder_add_tier(
    builder: BuilderT,
    kind: MemkindT,
    kind_ratio: c_uint,
) -> c_int {
    let Some(k) = kind_arg(kind) else {
        return -1;
    };
    match with_builder(builder, |b| b.add_tier(k, kind_ratio)) {
        Some(Ok(())) => 0,
        _ => -1,
    }
}

/// `memtier_builder_construct_memtier_memory(builder)`: NULL without tiers, with fewer than two
/// for DYNAMIC_THRESHOLD, with an inconsistent threshold configuration, without memory, or with
/// 4096 memories live. The memory is put in its table after the builder is released.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_builder_construct_memtier_memory(builder: BuilderT) -> MemoryT {
    match with_builder(builder, |b| b.construct()) {
        Some(Ok(m)) => MEMORIES.insert(m).unwrap_or(core::ptr::null_mut()),
        _ => core::ptr::null_mut(),
    }
}

/// `memtier_delete_memtier_memory(memory)`: anything but a live memory is ignored. Blocks
/// allocated from it stay valid (they belong to their kinds).
#[unsafe(no_mangle)]
pub extern "C" fn memtier_delete_memtier_memory(memory: MemoryT) {
    drop(MEMORIES.remove(memory));
}

/// `memtier_ctl_set(builder, name, val)`: 0, or -1 for a bad builder, an unknown name (every
/// name for STATIC_RATIO), a threshold index without a tier above it, or a NULL name or value.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_ctl_set(
    builder: BuilderT,
    name: *const c_char,
    val: *const c_void,
) -> c_int {
    if name.is_null() {
        return -1;
    }
    // SAFETY: a NUL-terminated string (memkind_memtier.h), checked non-null.
    let name = unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes();
    let read = |t: ValueType| {
        if val.is_null() {
            return None;
        }
        // SAFETY: the caller passes a pointer to a value of the type the name needs
        // (memtier(3)); unaligned reads, as C callers may pass any address.
        Some(unsafe {
            match t {
                ValueType::Size => Value::Size(core::ptr::read_unaligned(val.cast::<usize>())),
                ValueType::Unsigned => {
                    Value::Unsigned(core::ptr::read_unaligned(val.cast::<u32>()))
                }
                ValueType::Float => Value::Float(core::ptr::read_unaligned(val.cast::<f32>())),
            }
        })
    };
    match with_builder(builder, |b| b.ctl_set(name, read)) {
        Some(Ok(())) => 0,
        _ => -1,
    }
}

// --- allocation through a memory ---------------------------------------------------------------

/// `memtier_malloc(memory, size)`: from the tier the policy picks; NULL + EINVAL for a bad
/// memory.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_malloc(memory: MemoryT, size: usize) -> *mut c_void {
    let Some(m) = self::memory(memory) else {
        set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    };
    let k = m.kind_for(size);
    let t = memtier::thread();
    let p = counted_by(k, memkind_malloc(k, size), t);
    m.after_op_by(t);
    p
}

/// `memtier_calloc(memory, num, size)`: the tier is picked for `size` (one element), as 1.14.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_calloc(memory: MemoryT, num: usize, size: usize) -> *mut c_void {
    let Some(m) = self::memory(memory) else {
        set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    };
    let k = m.kind_for(size);
    let p = counted(k, memkind_calloc(k, num, size));
    m.after_op();
    p
}

/// `memtier_realloc(memory, ptr, size)`: NULL `ptr` allocates from the picked tier; otherwise
/// the block stays in its own kind (size 0 frees it and returns NULL).
#[unsafe(no_mangle)]
pub extern "C" fn memtier_realloc(memory: MemoryT, ptr: *mut c_void, size: usize) -> *mut c_void {
    let Some(m) = self::memory(memory) else {
        set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    };
    let p = if ptr.is_null() {
        let k = m.kind_for(size);
        counted(k, memkind_malloc(k, size))
    } else {
        memtier_kind_realloc(memkind_detect_kind(ptr), ptr, size)
    };
    m.after_op();
    p
}

/// `memtier_posix_memalign(memory, memptr, alignment, size)`.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_posix_memalign(
    memory: MemoryT,
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    let Some(m) = self::memory(memory) else {
        return libc::EINVAL;
    };
    let rc = memtier_kind_posix_memalign(m.kind_for(size), memptr, alignment, size);
    m.after_op();
    rc
}

// --- allocation in a kind ----------------------------------------------------------------------

/// `memtier_kind_malloc(kind, size)`: `memkind_malloc`, counted.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_kind_malloc(kind: MemkindT, size: usize) -> *mut c_void {
    let p = memkind_malloc(kind, size);
    match kind_arg(kind) {
        Some(k) => counted(k, p),
        None => p,
    }
}

/// `memtier_kind_calloc(kind, num, size)`: `memkind_calloc`, counted.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_kind_calloc(kind: MemkindT, num: usize, size: usize) -> *mut c_void {
    let p = memkind_calloc(kind, num, size);
    match kind_arg(kind) {
        Some(k) => counted(k, p),
        None => p,
    }
}

/// `memtier_kind_realloc(kind, ptr, size)`: NULL `ptr` = `memtier_kind_malloc`; size 0 frees
/// `ptr` and returns NULL; otherwise `memkind_realloc`, the old block uncounted from its owner
/// and the new one counted in its owner.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_kind_realloc(
    kind: MemkindT,
    ptr: *mut c_void,
    size: usize,
) -> *mut c_void {
    if ptr.is_null() {
        return memtier_kind_malloc(kind, size);
    }
    if size == 0 {
        uncount(ptr);
        memkind_free(kind, ptr);
        return core::ptr::null_mut();
    }
    let old = owned(ptr);
    if let Some((k, n)) = old {
        memtier::counters(k).sub(n);
    }
    let q = memkind_realloc(kind, ptr, size);
    if q.is_null() {
        // The block is still there, unchanged.
        if let Some((k, n)) = old {
            memtier::counters(k).add(n);
        }
    } else if let Some((k, n)) = owned(q) {
        memtier::counters(k).add(n);
    }
    q
}

/// `memtier_kind_posix_memalign(kind, memptr, alignment, size)`: `memkind_posix_memalign`,
/// counted when it succeeds.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_kind_posix_memalign(
    kind: MemkindT,
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    let rc = memkind_posix_memalign(kind, memptr, alignment, size);
    if rc == 0 {
        if let Some(k) = kind_arg(kind) {
            // SAFETY: success means memptr was non-null and memkind_posix_memalign wrote it.
            counted(k, unsafe { *memptr });
        }
    }
    rc
}

/// `memtier_usable_size(ptr)`: 0 for NULL and blocks we did not hand out.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_usable_size(ptr: *mut c_void) -> usize {
    usable(ptr)
}

/// `memtier_kind_free(kind, ptr)` (and the header's inline `memtier_free(ptr)`, kind NULL):
/// uncounted from the kind that owns the block, then `memkind_free`.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_kind_free(kind: MemkindT, ptr: *mut c_void) {
    if ptr.is_null() {
        // 1.14 still charges 0 bytes to a named kind (which may flush its bucket).
        if let Some(k) = kind_arg(kind) {
            memtier::counters(k).sub(0);
        }
        return;
    }
    uncount(ptr);
    memkind_free(kind, ptr);
}

/// `memtier_kind_allocated_size(kind)`: bytes allocated in `kind` through memtier and not yet
/// freed (usable sizes); 0 for a bad kind.
#[unsafe(no_mangle)]
pub extern "C" fn memtier_kind_allocated_size(kind: MemkindT) -> usize {
    kind_arg(kind).map_or(0, memtier::allocated_size)
}
