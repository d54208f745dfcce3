//! The ring buffer's records (`src/bpf/events.h`, mirrored with `#[repr(C)]`) and their decoding
//! into [`Event`]s.
#![allow(
    unsafe_code,
    reason = "reading plain-old-data records out of ring buffer bytes"
)]

use crate::library::Flavor;
use crate::records::{MkpExtent, MkpFlush, MkpKind, MKP_NONE};

/// `enum mkb_event_type`.
pub(crate) mod ev {
    pub const FLUSH: u32 = 1;
    pub const EXTENT: u32 = 2;
    pub const KIND: u32 = 3;
    pub const CALL: u32 = 4;
    pub const EXIT: u32 = 5;
}

/// `enum mkb_stat`: slots of the per-CPU "stats" array.
pub(crate) mod stat {
    pub const LOST: u32 = 0;
    pub const GRANULE_OVERFLOW: u32 = 1;
    pub const MAP_FULL: u32 = 2;
    pub const READ_FAULT: u32 = 3;
    pub const LIVE_MISS: u32 = 4;
    pub const LIVE_FULL: u32 = 5;
    pub const UNPAIRED: u32 = 6;
    pub const BAD_REGS: u32 = 7;
}

/// `MKB_GRANULE_SHIFT`: the granule map's unit, 2 MiB.
pub const GRANULE_SHIFT: u32 = 21;
/// `MKB_MAX_GRANULES`: granules one extent event may add or remove (8 GiB).
pub const MAX_GRANULES: u64 = 4096;

/// `struct mkb_hdr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MkbHdr {
    /// `enum mkb_event_type`.
    pub kind: u32,
    /// Process.
    pub tgid: u32,
    /// CLOCK_MONOTONIC.
    pub ts_ns: u64,
}

/// `struct mkb_flush_ev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MkbFlushEv {
    /// Header.
    pub hdr: MkbHdr,
    /// The flush.
    pub rec: MkpFlush,
}

/// `struct mkb_extent_ev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MkbExtentEv {
    /// Header.
    pub hdr: MkbHdr,
    /// The extent event.
    pub rec: MkpExtent,
}

/// `struct mkb_kind_ev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MkbKindEv {
    /// Header.
    pub hdr: MkbHdr,
    /// The kind event.
    pub rec: MkpKind,
}

/// `struct mkb_exit_ev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MkbExitEv {
    /// Header.
    pub hdr: MkbHdr,
    /// Wait status.
    pub code: i32,
    /// Padding.
    pub pad: u32,
}

/// `struct mkb_call_ev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MkbCallEv {
    /// Header (`ts_ns`: entry).
    pub hdr: MkbHdr,
    /// Thread.
    pub tid: u32,
    /// `enum mkb_call_id`.
    pub call: u32,
    /// Kind pointer argument.
    pub kind: u64,
    /// Size argument.
    pub size: u64,
    /// calloc's count.
    pub num: u64,
    /// posix_memalign's alignment.
    pub align: u64,
    /// Pointer argument.
    pub ptr: u64,
    /// Pointer handed out.
    pub result: u64,
    /// posix_memalign's return value.
    pub ret: i64,
    /// Entry to return.
    pub latency_ns: u64,
    /// Stock: partition; ours: `MKP_NONE`.
    pub kind_id: u32,
    /// Padding.
    pub pad: u32,
}

/// `struct mkb_key`: (tgid, kind, arena) of the counter and fault maps.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MkbKey {
    /// Process.
    pub tgid: u32,
    /// Kind id.
    pub kind: u32,
    /// Arena or `MKP_NONE`.
    pub arena: u32,
}

/// `struct mkb_granule_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MkbGranuleKey {
    /// Process.
    pub tgid: u32,
    /// Padding.
    pub pad: u32,
    /// Address >> [`GRANULE_SHIFT`].
    pub granule: u64,
}

/// `struct mkb_granule`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MkbGranule {
    /// Kind id.
    pub kind: u32,
    /// Arena.
    pub arena: u32,
    /// `enum mkp_backing`.
    pub backing: u32,
    /// MPOL_*.
    pub mbind_mode: i32,
}

/// Types that are valid for any bit pattern and have no padding the BPF side leaves undefined.
///
/// # Safety
/// Implementors must be `#[repr(C)]` structs of integers (and arrays of them) only.
pub(crate) unsafe trait Plain: Copy + Default {}

// SAFETY: each is #[repr(C)] and made of integers and integer arrays only.
unsafe impl Plain for MkbHdr {}
// SAFETY: as above.
unsafe impl Plain for MkbFlushEv {}
// SAFETY: as above.
unsafe impl Plain for MkbExtentEv {}
// SAFETY: as above.
unsafe impl Plain for MkbKindEv {}
// SAFETY: as above.
unsafe impl Plain for MkbExitEv {}
// SAFETY: as above.
unsafe impl Plain for MkbCallEv {}
// SAFETY: as above.
unsafe impl Plain for MkbKey {}
// SAFETY: as above.
unsafe impl Plain for MkbGranuleKey {}
// SAFETY: as above.
unsafe impl Plain for MkbGranule {}
// SAFETY: as above.
unsafe impl Plain for crate::records::MkpCounters {}
// SAFETY: a u64 is valid for every bit pattern.
unsafe impl Plain for u64 {}
// SAFETY: a u32 is valid for every bit pattern.
unsafe impl Plain for u32 {}

/// Copy a `T` out of the first `size_of::<T>()` bytes, None when too short.
pub(crate) fn read<T: Plain>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: `bytes` holds at least size_of::<T>() bytes; T is Plain (any bit pattern is a
    // valid T), and read_unaligned has no alignment requirement.
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// The bytes of a `T`.
pub(crate) fn bytes_of<T: Plain>(v: &T) -> &[u8] {
    // SAFETY: `v` is a valid T for the borrow's lifetime and Plain types have no uninitialised
    // bytes worth hiding from the kernel (keys are built from Default, padding included).
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

/// A probed call (`enum mkb_call_id`): memkind-rs's `memkind_arena_*` or memkind 1.14's `memkind_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Call {
    /// `malloc(kind, size)`.
    Malloc,
    /// `calloc(kind, num, size)`.
    Calloc,
    /// `memkind_arena_pmem_calloc(kind, num, size)` (ours only).
    PmemCalloc,
    /// `posix_memalign(kind, memptr, align, size)`.
    PosixMemalign,
    /// `realloc(kind, ptr, size)`.
    Realloc,
    /// `memkind_arena_realloc_with_kind_detect(ptr, size)` (ours only).
    ReallocWithKindDetect,
    /// `free(kind, ptr)`.
    Free,
    /// `memkind_arena_free_with_kind_detect(ptr)` (ours only).
    FreeWithKindDetect,
}

impl Call {
    /// Every call, in id order.
    pub const ALL: [Call; 8] = [
        Call::Malloc,
        Call::Calloc,
        Call::PmemCalloc,
        Call::PosixMemalign,
        Call::Realloc,
        Call::ReallocWithKindDetect,
        Call::Free,
        Call::FreeWithKindDetect,
    ];

    /// `enum mkb_call_id`.
    pub const fn id(self) -> u32 {
        self as u32 + 1
    }

    fn from_id(id: u32) -> Option<Call> {
        Call::ALL.get(id.checked_sub(1)? as usize).copied()
    }

    /// The probed symbol in a library of `flavor` (None: that library has no such call).
    pub const fn symbol(self, flavor: Flavor) -> Option<&'static str> {
        match flavor {
            Flavor::Ours => Some(match self {
                Call::Malloc => "memkind_arena_malloc",
                Call::Calloc => "memkind_arena_calloc",
                Call::PmemCalloc => "memkind_arena_pmem_calloc",
                Call::PosixMemalign => "memkind_arena_posix_memalign",
                Call::Realloc => "memkind_arena_realloc",
                Call::ReallocWithKindDetect => "memkind_arena_realloc_with_kind_detect",
                Call::Free => "memkind_arena_free",
                Call::FreeWithKindDetect => "memkind_arena_free_with_kind_detect",
            }),
            Flavor::Stock => match self {
                Call::Malloc => Some("memkind_malloc"),
                Call::Calloc => Some("memkind_calloc"),
                Call::PosixMemalign => Some("memkind_posix_memalign"),
                Call::Realloc => Some("memkind_realloc"),
                Call::Free => Some("memkind_free"),
                _ => None,
            },
        }
    }

    /// Short name: `malloc`, `calloc`, `pmem_calloc`, `posix_memalign`, `realloc`,
    /// `realloc_with_kind_detect`, `free`, `free_with_kind_detect`.
    pub const fn name(self) -> &'static str {
        match self {
            Call::Malloc => "malloc",
            Call::Calloc => "calloc",
            Call::PmemCalloc => "pmem_calloc",
            Call::PosixMemalign => "posix_memalign",
            Call::Realloc => "realloc",
            Call::ReallocWithKindDetect => "realloc_with_kind_detect",
            Call::Free => "free",
            Call::FreeWithKindDetect => "free_with_kind_detect",
        }
    }
}

/// One probed call (trace tier), entry and return paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallEvent {
    /// Entry time, CLOCK_MONOTONIC ns.
    pub ts_ns: u64,
    /// Process.
    pub tgid: u32,
    /// Thread.
    pub tid: u32,
    /// Which call.
    pub call: Call,
    /// The kind pointer argument (0 for the `*_with_kind_detect` calls).
    pub kind: u64,
    /// The kind's id when known (stock: its partition; ours: the library's own record names it,
    /// or with per-call probes on an older library of ours the slot of the kind pointer in its
    /// kind table, read from the process at the call). Ours, one uprobe per call: a free names
    /// the block's owner.
    pub kind_id: Option<u32>,
    /// Size argument.
    pub size: u64,
    /// calloc's element count.
    pub num: u64,
    /// posix_memalign's alignment.
    pub align: u64,
    /// The pointer argument (realloc, free).
    pub ptr: u64,
    /// The pointer handed out (posix_memalign: `*memptr` on success), 0 for none.
    pub result: u64,
    /// posix_memalign's return value, else 0.
    pub ret: i32,
    /// Entry to return.
    pub latency_ns: u64,
}

impl CallEvent {
    /// One JSON object (no trailing newline): `{"ts_ns":..,"tgid":..,"tid":..,"call":"malloc",
    /// "kind":"0x..","kind_id":N|null,"size":..,"num":..,"align":..,"ptr":"0x..",
    /// "result":"0x..","ret":..,"latency_ns":..}`; `kind_name` adds `"kind_name":"..."`.
    pub fn to_json(&self, kind_name: Option<&str>) -> String {
        let mut s = format!(
            "{{\"ts_ns\":{},\"tgid\":{},\"tid\":{},\"call\":\"{}\",\"kind\":\"{:#x}\",\"kind_id\":{}",
            self.ts_ns,
            self.tgid,
            self.tid,
            self.call.name(),
            self.kind,
            self.kind_id.map_or("null".to_owned(), |k| k.to_string()),
        );
        if let Some(n) = kind_name {
            s.push_str(",\"kind_name\":\"");
            for c in n.chars() {
                match c {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
                    c => s.push(c),
                }
            }
            s.push('"');
        }
        s.push_str(&format!(
            ",\"size\":{},\"num\":{},\"align\":{},\"ptr\":\"{:#x}\",\"result\":\"{:#x}\",\"ret\":{},\"latency_ns\":{}}}",
            self.size, self.num, self.align, self.ptr, self.result, self.ret, self.latency_ns
        ));
        s
    }
}

/// What the probe reports, in ring buffer order.
#[derive(Debug, Clone)]
pub enum Event {
    /// A thread's counter deltas for one kind (record mode).
    Flush {
        /// When the uprobe ran.
        ts_ns: u64,
        /// Process.
        tgid: u32,
        /// The record.
        rec: MkpFlush,
    },
    /// An extent event.
    Extent {
        /// When.
        ts_ns: u64,
        /// Process.
        tgid: u32,
        /// The record.
        rec: MkpExtent,
    },
    /// A kind created, destroyed or (re-)announced. In stock mode, synthesised on a kind's first
    /// call in a process (op ANNOUNCE, name from memkind 1.14's `struct memkind`).
    Kind {
        /// When.
        ts_ns: u64,
        /// Process.
        tgid: u32,
        /// The record.
        rec: MkpKind,
    },
    /// A call (trace mode).
    Call(CallEvent),
    /// The last thread of a traced process ended.
    Exit {
        /// When.
        ts_ns: u64,
        /// Process.
        tgid: u32,
        /// Wait status as the kernel keeps it: `(exit_status << 8) | signal`.
        code: i32,
    },
}

/// Decode one ring buffer record; None for a short or unknown one.
pub(crate) fn decode(bytes: &[u8]) -> Option<Event> {
    let hdr: MkbHdr = read(bytes)?;
    Some(match hdr.kind {
        ev::FLUSH => {
            let e: MkbFlushEv = read(bytes)?;
            Event::Flush {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                rec: e.rec,
            }
        }
        ev::EXTENT => {
            let e: MkbExtentEv = read(bytes)?;
            Event::Extent {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                rec: e.rec,
            }
        }
        ev::KIND => {
            let e: MkbKindEv = read(bytes)?;
            Event::Kind {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                rec: e.rec,
            }
        }
        ev::CALL => {
            let e: MkbCallEv = read(bytes)?;
            Event::Call(CallEvent {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                tid: e.tid,
                call: Call::from_id(e.call)?,
                kind: e.kind,
                kind_id: (e.kind_id != MKP_NONE).then_some(e.kind_id),
                size: e.size,
                num: e.num,
                align: e.align,
                ptr: e.ptr,
                result: e.result,
                ret: e.ret as i32,
                latency_ns: e.latency_ns,
            })
        }
        ev::EXIT => {
            let e: MkbExitEv = read(bytes)?;
            Event::Exit {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                code: e.code,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_exit_and_call() {
        let e = MkbExitEv {
            hdr: MkbHdr {
                kind: ev::EXIT,
                tgid: 7,
                ts_ns: 9,
            },
            code: 3 << 8,
            pad: 0,
        };
        match decode(bytes_of(&e)) {
            Some(Event::Exit {
                ts_ns: 9,
                tgid: 7,
                code,
            }) => assert_eq!(code, 768),
            other => panic!("{other:?}"),
        }
        let c = MkbCallEv {
            hdr: MkbHdr {
                kind: ev::CALL,
                tgid: 1,
                ts_ns: 2,
            },
            tid: 3,
            call: Call::PosixMemalign.id(),
            kind_id: MKP_NONE,
            ret: 22,
            ..Default::default()
        };
        let Some(Event::Call(ce)) = decode(bytes_of(&c)) else {
            panic!()
        };
        assert_eq!(ce.call, Call::PosixMemalign);
        assert_eq!((ce.ret, ce.kind_id), (22, None));
        assert!(decode(&bytes_of(&c)[..20]).is_none());
        assert!(ce
            .to_json(Some("a\"b"))
            .contains("\"kind_name\":\"a\\\"b\""));
    }

    #[test]
    fn call_ids() {
        for (i, c) in Call::ALL.iter().enumerate() {
            assert_eq!(c.id() as usize, i + 1);
            assert_eq!(Call::from_id(c.id()), Some(*c));
            assert!(c.symbol(Flavor::Ours).is_some());
        }
        assert_eq!(Call::from_id(0), None);
        assert_eq!(Call::PmemCalloc.symbol(Flavor::Stock), None);
    }
}
