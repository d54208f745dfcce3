//! Reading the traced file: a libmemkind.so (ours or memkind 1.14's) or an executable that links
//! the `memkind` crate statically. Finds the probed functions' file offsets (what a uprobe is
//! attached by), the semaphore's file offset (the uprobe reference counter), and the addresses
//! of `memkind_probe_request` and of the exported `MEMKIND_*` kind pointers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use object::{Object, ObjectKind, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};

use crate::sys::{FileId, MapEntry, Proc};
use crate::Error;

/// The probe's library-side symbols (memkind_probe.h).
pub(crate) const SYM_FLUSH: &str = "memkind_arena_stats_flush";
pub(crate) const SYM_EXTENT: &str = "memkind_arena_extent_event";
pub(crate) const SYM_KIND: &str = "memkind_arena_kind_event";
/// The trace tier's one probed function (libraries from before it have none: per-call probes).
pub(crate) const SYM_TRACE: &str = "memkind_arena_trace_event";
/// The semaphore's section (the symbol is local, so the section is how it is found).
pub(crate) const SEMAPHORE_SECTION: &str = ".memkind_probe";
/// The trace tier's semaphore's section (the per-call uprobes' reference counter).
pub(crate) const TRACE_SEMAPHORE_SECTION: &str = ".memkind_probe_trace";
/// An exported semaphore symbol (the protocol's first draft), used when there is no section.
pub(crate) const SYM_SEMAPHORE: &str = "memkind_probe_semaphore";
pub(crate) const SYM_REQUEST: &str = "memkind_probe_request";

const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

/// Which memkind the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// memkind-rs: nop5-entered `memkind_arena_*` functions (with the probe counters when
    /// [`Library::has_counters`]).
    Ours,
    /// Intel's memkind 1.14 (or anything else exporting `memkind_malloc`): per-call probes only.
    Stock,
}

/// A symbol of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol {
    /// Its virtual address in the file (before the load bias).
    pub vaddr: u64,
    /// Its offset in the file, when it lies in file-backed bytes.
    pub file_offset: Option<u64>,
    /// Its size.
    pub size: u64,
}

/// A parsed memkind library or executable.
#[derive(Debug, Clone)]
pub struct Library {
    path: PathBuf,
    id: FileId,
    flavor: Flavor,
    symbols: BTreeMap<String, Symbol>,
    /// ET_DYN (a .so or a PIE): loaded at a bias found in /proc/PID/maps.
    relocatable: bool,
    /// (file offset, vaddr) of the first PT_LOAD segment, page-aligned.
    first_load: (u64, u64),
    /// File offset of the semaphore.
    semaphore: Option<u64>,
    /// File offset of the trace tier's semaphore (libraries from before it have none).
    trace_semaphore: Option<u64>,
    /// The functions entered by a 5-byte nop (ours), probed after it: see [`Library::probe_offset`].
    nop5_entered: BTreeSet<String>,
}

fn wanted(name: &str) -> bool {
    name.starts_with("memkind_") || name.starts_with("MEMKIND_")
}

/// Add the defined `memkind_*` / `MEMKIND_*` symbols of `syms` (the first of a name wins).
fn collect<'data, S: ObjectSymbol<'data>>(
    syms: impl Iterator<Item = S>,
    to_offset: &dyn Fn(u64) -> Option<u64>,
    out: &mut BTreeMap<String, Symbol>,
) {
    for sym in syms {
        let Ok(name) = sym.name() else { continue };
        if !wanted(name) || sym.is_undefined() || sym.address() == 0 {
            continue;
        }
        if !matches!(
            sym.kind(),
            SymbolKind::Text | SymbolKind::Data | SymbolKind::Unknown
        ) {
            continue;
        }
        out.entry(name.to_owned()).or_insert(Symbol {
            vaddr: sym.address(),
            file_offset: to_offset(sym.address()),
            size: sym.size(),
        });
    }
}

impl Library {
    /// Parse `path` (symlinks resolved: uprobes and /proc/PID/maps see the real file).
    pub fn open(path: impl AsRef<Path>) -> Result<Library, Error> {
        let given = path.as_ref();
        let io = |source| Error::Io {
            path: given.to_owned(),
            source,
        };
        let path = fs::canonicalize(given).map_err(io)?;
        // Read on demand: a library with debug info is tens of MB, of which the headers, the
        // dynamic symbols (and only for static executables the symbol table) are needed.
        let data = object::ReadCache::new(fs::File::open(&path).map_err(io)?);
        let id = FileId::of(&path).map_err(io)?;
        let bad = |e: object::Error| Error::BadElf {
            path: path.clone(),
            msg: e.to_string(),
        };
        let file = object::File::parse(&data).map_err(bad)?;
        let segments: Vec<(u64, u64, u64)> = file
            .segments()
            .map(|s| {
                let (off, filesz) = s.file_range();
                (s.address(), off, filesz)
            })
            .collect();
        let to_offset = |vaddr: u64| {
            segments
                .iter()
                .find(|&&(a, _, filesz)| vaddr >= a && vaddr < a + filesz)
                .map(|&(a, off, _)| off + (vaddr - a))
        };
        let mut symbols = BTreeMap::new();
        collect(file.dynamic_symbols(), &to_offset, &mut symbols);
        // An executable linking memkind statically exports nothing: its symbol table has them.
        if !symbols.contains_key("memkind_malloc") && !symbols.contains_key(SYM_FLUSH) {
            collect(file.symbols(), &to_offset, &mut symbols);
        }
        let starts_with_nop5 = |name: &str| {
            symbols
                .get(name)
                .and_then(|s: &Symbol| s.file_offset)
                .and_then(|o| object::ReadRef::read_bytes_at(&data, o, 5).ok())
                == Some(&NOP5[..])
        };
        let nop5_entered: BTreeSet<String> = symbols
            .keys()
            .filter(|n| n.starts_with("memkind_") && starts_with_nop5(n))
            .cloned()
            .collect();
        let flavor = if symbols.contains_key(SYM_FLUSH) || starts_with_nop5("memkind_arena_malloc")
        {
            Flavor::Ours
        } else if symbols.contains_key("memkind_malloc") {
            Flavor::Stock
        } else {
            return Err(Error::NotMemkind { path });
        };
        let first_load = segments
            .iter()
            .map(|&(a, off, _)| (off & !0xfff, a & !0xfff))
            .min()
            .unwrap_or((0, 0));
        // The semaphore is the section's last u16 (the library keeps its DEFAULT fast-path key
        // in the bytes before it; see alloc/include/memkind_probe.h).
        let semaphore = file
            .section_by_name(SEMAPHORE_SECTION)
            .and_then(|s| s.file_range())
            .filter(|&(_, size)| size >= 2)
            .map(|(off, size)| off + size - 2)
            .or_else(|| symbols.get(SYM_SEMAPHORE).and_then(|s| s.file_offset));
        let trace_semaphore = file
            .section_by_name(TRACE_SEMAPHORE_SECTION)
            .and_then(|s| s.file_range())
            .filter(|&(_, size)| size >= 2)
            .map(|(off, _)| off);
        Ok(Library {
            semaphore,
            trace_semaphore,
            nop5_entered,
            relocatable: file.kind() == ObjectKind::Dynamic,
            path,
            id,
            flavor,
            symbols,
            first_load,
        })
    }

    /// The file (symlinks resolved).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ours or memkind 1.14's.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The trace tier's semaphore's file offset (the `ref_ctr_offset` of the per-call
    /// uprobes): while it is set, our library sends MEMKIND_DEFAULT's calls through the probed
    /// `memkind_arena_*` entry points too.
    pub fn trace_semaphore_offset(&self) -> Option<u64> {
        self.trace_semaphore
    }

    /// Ours, with the probe's counter entry points, semaphore and request word.
    pub fn has_counters(&self) -> bool {
        self.flavor == Flavor::Ours
            && self.semaphore.is_some()
            && [SYM_FLUSH, SYM_EXTENT, SYM_KIND, SYM_REQUEST]
                .iter()
                .all(|s| self.symbols.contains_key(*s))
    }

    /// `Err(Error::NoCounters)` unless [`Library::has_counters`].
    pub fn require_counters(&self) -> Result<(), Error> {
        if self.has_counters() {
            Ok(())
        } else {
            Err(Error::NoCounters {
                path: self.path.clone(),
            })
        }
    }

    /// A `memkind_*` / `MEMKIND_*` symbol.
    pub fn symbol(&self, name: &str) -> Option<Symbol> {
        self.symbols.get(name).copied()
    }

    /// The file offset of a function to probe.
    pub(crate) fn func_offset(&self, name: &'static str) -> Result<u64, Error> {
        self.symbol(name)
            .and_then(|s| s.file_offset)
            .ok_or_else(|| Error::MissingSymbol {
                path: self.path.clone(),
                symbol: name,
            })
    }

    /// Where a uprobe on function `name` goes (file offset): after the entry nop of a
    /// nop5-entered function (ours), else at its entry. Kernels with the uprobe nop5
    /// optimization (6.18 here, 7.x) rewrite a probed nop5 into a `call` to a per-process
    /// trampoline page that fork does not copy: a child of the target calling the function
    /// then dies of SIGSEGV. The instruction after the nop (a `jmp` into the body) is probed
    /// with a breakpoint instead; the registers, the stack and so the arguments and the return
    /// address are the same there as at the entry.
    pub(crate) fn probe_offset(&self, name: &'static str) -> Result<u64, Error> {
        let off = self.func_offset(name)?;
        Ok(if self.nop5_entered.contains(name) {
            off + NOP5.len() as u64
        } else {
            off
        })
    }

    /// The semaphore's file offset (the uprobe `ref_ctr_offset`): the last u16 of section
    /// `.memkind_probe`.
    pub fn semaphore_offset(&self) -> Option<u64> {
        self.semaphore
    }

    /// The exported static kinds: (`MEMKIND_DEFAULT`, address of the `memkind_t` variable).
    pub fn static_kinds(&self) -> impl Iterator<Item = (&str, u64)> {
        self.symbols
            .iter()
            .filter(|(n, s)| n.starts_with("MEMKIND_") && s.size == 8)
            .map(|(n, s)| (n.as_str(), s.vaddr))
    }

    /// Whether a line of /proc/PID/maps is this file.
    pub(crate) fn is_mapping(&self, m: &MapEntry) -> bool {
        self.id.matches(m)
    }

    /// The load bias of the file in a process, from its maps; None when not mapped.
    pub(crate) fn bias(&self, maps: &[MapEntry]) -> Option<u64> {
        let (off, vaddr) = self.first_load;
        let m = maps
            .iter()
            .find(|m| self.is_mapping(m) && m.offset == off)?;
        Some(if self.relocatable {
            m.start.wrapping_sub(vaddr)
        } else {
            0
        })
    }

    /// Whether process `pid` maps the file.
    pub(crate) fn mapped_by(&self, proc: &Proc, pid: u32) -> bool {
        proc.maps(pid)
            .map(|maps| maps.iter().any(|m| self.is_mapping(m)))
            .unwrap_or(false)
    }

    /// Runtime address of `memkind_probe_request` in a process.
    pub(crate) fn request_address(&self, maps: &[MapEntry]) -> Option<u64> {
        Some(self.bias(maps)? + self.symbol(SYM_REQUEST)?.vaddr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOCK: &str = "/usr/lib/x86_64-linux-gnu/libmemkind.so.0";

    #[test]
    fn stock_library() {
        if !Path::new(STOCK).exists() {
            eprintln!("skipped: {STOCK} not installed (apt-get install libmemkind0)");
            return;
        }
        let lib = Library::open(STOCK).unwrap();
        assert_eq!(lib.flavor(), Flavor::Stock);
        assert!(!lib.has_counters());
        assert!(matches!(
            lib.require_counters(),
            Err(Error::NoCounters { .. })
        ));
        let m = lib.symbol("memkind_malloc").unwrap();
        assert!(m.file_offset.is_some());
        // 1.14's functions have an ordinary prologue: probed at their entry.
        assert_eq!(
            lib.probe_offset("memkind_malloc").unwrap(),
            m.file_offset.unwrap()
        );
        assert!(lib.static_kinds().any(|(n, _)| n == "MEMKIND_DEFAULT"));
        assert!(lib.path().ends_with("libmemkind.so.0.0.1"));
    }

    #[test]
    fn not_memkind() {
        assert!(matches!(
            Library::open("/bin/sh"),
            Err(Error::NotMemkind { .. })
        ));
        assert!(matches!(
            Library::open("/nonexistent/libmemkind.so"),
            Err(Error::Io { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.so");
        fs::write(&f, b"not an elf").unwrap();
        assert!(matches!(Library::open(&f), Err(Error::BadElf { .. })));
    }

    #[test]
    fn bias_from_maps() {
        if !Path::new(STOCK).exists() {
            return;
        }
        let lib = Library::open(STOCK).unwrap();
        let m = |start, off| MapEntry {
            start,
            end: start + 0x1000,
            writable: false,
            offset: off,
            dev_major: 0,
            dev_minor: 0,
            inode: 0,
            path: lib.path().to_string_lossy().into_owned(),
        };
        let maps = vec![m(0x7f00_0000_0000, 0), m(0x7f00_0001_0000, 0x10000)];
        assert_eq!(lib.bias(&maps), Some(0x7f00_0000_0000));
        assert_eq!(lib.bias(&[]), None);
    }
}
