//! What the probe learns about kinds: their names and placement in kind events, and the
//! re-announce of every kind and extent a probe asks for when it attaches to a running process
//! (`alloc/include/memkind_probe.h`).

use super::{fixed, pmem, Kind, Placement, KINDS, STATIC_KINDS};
use crate::extent_map::{GRANULE_SHIFT, MAP};
use crate::probe::records::{backing, extent_op, kind_op, MKP_DIR_LEN, MKP_NAME_LEN, MKP_NONE};
use crate::probe::{self, Where};
use crate::sys::Backing;

/// Where `k`'s memory comes from, as far as it is known (its placement once initialised).
pub(crate) fn where_of(k: &Kind) -> Where<'static> {
    if fixed::state_of(k).is_some() {
        return Where {
            backing: backing::FIXED,
            ..Where::ANON
        };
    }
    let Some(p) = k.placement() else {
        let b = if pmem::is_pmem(k) {
            backing::FILE
        } else {
            backing::ANON
        };
        return Where {
            backing: b,
            ..Where::ANON
        };
    };
    placement_where(p)
}

/// A placement as the probe's records describe it.
pub(crate) fn placement_where(p: &'static Placement) -> Where<'static> {
    let (b, page) = match p.backing {
        Backing::Anon => (backing::ANON, 4096),
        Backing::Huge2M | Backing::Gbtlb => (backing::HUGETLB, 2 << 20),
        Backing::File { .. } => (backing::FILE, 4096),
    };
    let (mode, nodes): (i32, &'static [u64]) = match &p.mbind {
        Some(m) => (m.mode as i32, m.nodes.fallback_words()),
        None => (-1, &[]),
    };
    Where {
        backing: b,
        page_size: page,
        mbind_mode: mode,
        nodes,
    }
}

/// The kind's name for the probe (`MEMKIND_HBW`, `PMEM:<dir>`, `FIXED:0x<addr>`) and its PMEM
/// directory (empty for other kinds).
fn names(k: &Kind) -> ([u8; MKP_NAME_LEN], [u8; MKP_DIR_LEN]) {
    let mut dir = [0u8; MKP_DIR_LEN];
    if (k.id() as usize) < STATIC_KINDS {
        return (probe::static_name(k.name()), dir);
    }
    let mut name = [0u8; MKP_NAME_LEN];
    let mut w = Cursor(&mut name[..MKP_NAME_LEN - 1], 0);
    if let Some(st) = k.state::<pmem::PmemState>() {
        let n = st.dir.len().min(MKP_DIR_LEN - 1);
        dir[..n].copy_from_slice(&st.dir[..n]);
        w.put(b"PMEM:");
        w.put(&st.dir);
    } else if let Some(st) = fixed::state_of(k) {
        use core::fmt::Write;
        let _ = write!(w, "FIXED:{:#x}", st.start);
    } else {
        w.put(k.family().name.as_bytes());
    }
    (name, dir)
}

/// Writes into a byte buffer, cutting what does not fit.
struct Cursor<'a>(&'a mut [u8], usize);

impl Cursor<'_> {
    fn put(&mut self, s: &[u8]) {
        let n = s.len().min(self.0.len() - self.1);
        self.0[self.1..self.1 + n].copy_from_slice(&s[..n]);
        self.1 += n;
    }
}

impl core::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.put(s.as_bytes());
        Ok(())
    }
}

/// Tell an attached probe about `k` (`op`: one of `kind_op`).
pub(crate) fn kind_event(k: &Kind, op: u32) {
    if !probe::on() {
        return;
    }
    let (name, dir) = names(k);
    let nlen = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    let dlen = dir.iter().position(|&c| c == 0).unwrap_or(dir.len());
    probe::kind(op, k.id(), &name[..nlen], &dir[..dlen], &where_of(k));
}

/// Re-announce every kind and every extent of ours (a probe attached to a running process, or
/// the first counted event of the process). Extents come from the extent map as runs of
/// granules of one kind; their arenas are not recorded there (`MKP_NONE`).
#[cold]
pub(crate) fn announce_all() {
    if !probe::on() {
        return;
    }
    for k in KINDS.iter() {
        if (k.id() as usize) < STATIC_KINDS || k.is_live() {
            kind_event(k, kind_op::ANNOUNCE);
        }
    }
    let mut run: Option<(usize, usize, u16)> = None;
    let emit = |(start, end, id): (usize, usize, u16)| {
        let w = KINDS.get(id as usize).map_or(Where::ANON, where_of);
        probe::extent(
            extent_op::ANNOUNCE,
            start,
            end - start,
            u32::from(id),
            MKP_NONE,
            &w,
        );
    };
    MAP.for_each_granule(|g, id| {
        let end = g + (1 << GRANULE_SHIFT);
        run = match run {
            Some((s, e, k)) if e == g && k == id => Some((s, end, k)),
            Some(r) => {
                emit(r);
                Some((g, end, id))
            }
            None => Some((g, end, id)),
        };
    });
    if let Some(r) = run {
        emit(r);
    }
    fixed::for_each_range(|k, start, end| {
        probe::extent(
            extent_op::ANNOUNCE,
            start,
            end - start,
            u32::from(k.id()),
            MKP_NONE,
            &where_of(k),
        );
    });
}
