//! A memkind-compatible shared library loaded with `dlopen(RTLD_NOW | RTLD_LOCAL)`, and the table
//! of function pointers and kind handles resolved from it with `dlsym`.
//!
//! Two libraries exporting the same names (ours and Debian's memkind 1.14) live side by side in one
//! process because each is loaded `RTLD_LOCAL` and everything is looked up per handle. A missing
//! symbol never aborts the run: it is recorded in [`Library::missing`] and whatever needs it is
//! reported unavailable.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::path::{Path, PathBuf};

/// memkind's opaque `memkind_t`.
pub type MemkindT = *mut c_void;

/// `void *memkind_malloc(memkind_t, size_t)`
pub type MallocFn = unsafe extern "C" fn(MemkindT, usize) -> *mut c_void;
/// `void memkind_free(memkind_t, void *)`
pub type FreeFn = unsafe extern "C" fn(MemkindT, *mut c_void);
/// `int memkind_check_available(memkind_t)`
pub type CheckAvailableFn = unsafe extern "C" fn(MemkindT) -> c_int;
/// `memkind_t memkind_detect_kind(void *)`
pub type DetectKindFn = unsafe extern "C" fn(*mut c_void) -> MemkindT;
/// `int memkind_create_pmem(const char *, size_t, memkind_t *)`
pub type CreatePmemFn = unsafe extern "C" fn(*const c_char, usize, *mut MemkindT) -> c_int;
/// `int memkind_destroy_kind(memkind_t)`
pub type DestroyKindFn = unsafe extern "C" fn(MemkindT) -> c_int;
/// `int memkind_error_message(int, char *, size_t)`
pub type ErrorMessageFn = unsafe extern "C" fn(c_int, *mut c_char, usize);

/// `struct memtier_builder *memtier_builder_new(memtier_policy_t)`
pub type BuilderNewFn = unsafe extern "C" fn(c_int) -> *mut c_void;
/// `int memtier_builder_add_tier(struct memtier_builder *, memkind_t, unsigned)`
pub type AddTierFn = unsafe extern "C" fn(*mut c_void, MemkindT, c_uint) -> c_int;
/// `struct memtier_memory *memtier_builder_construct_memtier_memory(struct memtier_builder *)`
pub type ConstructFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
/// `void memtier_builder_delete(struct memtier_builder *)` and
/// `void memtier_delete_memtier_memory(struct memtier_memory *)`
pub type DeleteFn = unsafe extern "C" fn(*mut c_void);
/// `void *memtier_malloc(struct memtier_memory *, size_t)`
pub type MemtierMallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
/// `void memtier_kind_free(memkind_t, void *)` (the header's inline `memtier_free(p)` is
/// `memtier_kind_free(NULL, p)`)
pub type MemtierKindFreeFn = unsafe extern "C" fn(MemkindT, *mut c_void);

/// The memtier memories the benchmark builds in each library: (row name, policy value of
/// `memtier_policy_t`). Both have two tiers, DEFAULT and REGULAR, ratio 1:1 (memtier(3)'s
/// examples); DYNAMIC_THRESHOLD keeps its default threshold (sizes below 1 KiB go to DEFAULT).
pub const MEMTIERS: &[(&str, c_int)] = &[
    ("MEMTIER_STATIC_RATIO", 0),
    ("MEMTIER_DYNAMIC_THRESHOLD", 1),
];

/// The tiers of every benchmarked memory: (kind name without `MEMKIND_`, ratio).
pub const MEMTIER_TIERS: &[(&str, c_uint)] = &[("DEFAULT", 1), ("REGULAR", 1)];

/// `memtier_malloc` / `memtier_free` of one library.
#[derive(Clone, Copy)]
pub struct MemtierFns {
    /// `memtier_malloc`
    pub malloc: MemtierMallocFn,
    /// `memtier_kind_free` (called with a NULL kind: `memtier_free`)
    pub free: MemtierKindFreeFn,
}

/// A memtier memory handle that may be shared between threads (memtier memories are thread safe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory(pub *mut c_void);
// SAFETY: a memory handle is only passed to memtier's entry points, which are thread safe.
unsafe impl Send for Memory {}
// SAFETY: as above.
unsafe impl Sync for Memory {}

struct MemtierApi {
    builder_new: BuilderNewFn,
    add_tier: AddTierFn,
    construct: ConstructFn,
    builder_delete: DeleteFn,
    delete_memory: DeleteFn,
    fns: MemtierFns,
}

// The static kinds come from the library's one table, included rather than linked: linking the
// library would run its start-up in this process and install its extent hooks on the jemalloc
// that the bench measures as "raw jemalloc".
include!("../../../../alloc/src/kind/table.rs");

macro_rules! names {
    ($($part:literal $name:ident $kname:literal ($family:path, $variant:expr) $deprecated:literal $ops:ident;)*) => {
        /// Every static kind: the name after `MEMKIND_` and whether it is deprecated.
        const ALL_STATIC: &[(&str, bool)] = &[$((stringify!($name), $deprecated)),*];
    };
}
static_kinds!(names);

/// The static kinds the benchmark measures, without the `MEMKIND_` prefix, in partition order:
/// all but the deprecated ones (GBTLB: 1 GiB pages).
pub fn static_kinds() -> Vec<&'static str> {
    ALL_STATIC
        .iter()
        .filter(|(_, deprecated)| !deprecated)
        .map(|(n, _)| *n)
        .collect()
}

/// Name used for the PMEM kind the benchmark creates with `memkind_create_pmem`.
pub const PMEM: &str = "PMEM";

/// The functions every measurement needs; without all three the library is unusable.
#[derive(Clone, Copy)]
pub struct CoreFns {
    /// `memkind_malloc`
    pub malloc: MallocFn,
    /// `memkind_free`
    pub free: FreeFn,
    /// `memkind_check_available`
    pub check_available: CheckAvailableFn,
}

/// A kind handle that may be shared between threads (memkind kinds are thread safe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind(pub MemkindT);
// SAFETY: a memkind_t is an immutable handle; every memkind entry point taking it is thread safe.
unsafe impl Send for Kind {}
// SAFETY: as above.
unsafe impl Sync for Kind {}

/// Whether a kind can be measured in one library, and why not.
#[derive(Clone, Debug)]
pub enum KindStatus {
    /// `memkind_check_available` returned 0 (or the PMEM kind was created).
    Available(Kind),
    /// Not measurable; the text says why (missing symbol, error code, ...).
    Unavailable(String),
}

impl KindStatus {
    /// The handle when available.
    pub fn kind(&self) -> Option<Kind> {
        match self {
            KindStatus::Available(k) => Some(*k),
            KindStatus::Unavailable(_) => None,
        }
    }
}

/// One loaded library (or the record of why it could not be loaded).
pub struct Library {
    /// Label used in messages ("ours", "memkind").
    pub label: &'static str,
    /// What was asked for (path or soname).
    pub requested: String,
    /// The file actually mapped (from `dladdr`), when known.
    pub resolved: Option<PathBuf>,
    /// Set when the library was copied to a temporary file to get an independent instance.
    pub copied_to: Option<PathBuf>,
    handle: *mut c_void,
    /// Why `dlopen` failed, if it did.
    pub load_error: Option<String>,
    /// Symbols looked up and not found.
    pub missing: Vec<String>,
    /// The required functions, when all are present.
    pub core: Option<CoreFns>,
    /// `memkind_detect_kind`, optional.
    pub detect_kind: Option<DetectKindFn>,
    /// `memkind_create_pmem`, optional.
    pub create_pmem: Option<CreatePmemFn>,
    /// `memkind_destroy_kind`, optional.
    pub destroy_kind: Option<DestroyKindFn>,
    /// `memkind_error_message`, optional.
    pub error_message: Option<ErrorMessageFn>,
    /// Status of each static kind (same order as [`static_kinds`]) and of PMEM (last).
    pub kinds: Vec<(String, KindStatus)>,
    pmem: Option<Kind>,
    memtier: Option<MemtierApi>,
    /// Each memory of [`MEMTIERS`] (same order): the handle or why there is none.
    pub memories: Vec<(String, Result<Memory, String>)>,
}

fn dlerror_string() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl* call.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".into()
    } else {
        // SAFETY: non-NULL, NUL-terminated (see above).
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

impl Library {
    fn empty(label: &'static str, requested: &str) -> Library {
        Library {
            label,
            requested: requested.to_string(),
            resolved: None,
            copied_to: None,
            handle: std::ptr::null_mut(),
            load_error: None,
            missing: Vec::new(),
            core: None,
            detect_kind: None,
            create_pmem: None,
            destroy_kind: None,
            error_message: None,
            kinds: Vec::new(),
            pmem: None,
            memtier: None,
            memories: Vec::new(),
        }
    }

    /// `dlopen(path, RTLD_NOW | RTLD_LOCAL)`. When the handle equals `avoid` (the same file is
    /// already loaded, e.g. `--ours` pointing at Debian's memkind), the file is copied to a temporary
    /// path and that copy is loaded instead, so the two instances have separate state.
    pub fn open(label: &'static str, requested: &str, avoid: Option<&Library>) -> Library {
        let mut lib = Library::empty(label, requested);
        let Ok(c) = CString::new(requested) else {
            lib.load_error = Some("path contains NUL".into());
            return lib;
        };
        let flags = libc::RTLD_NOW | libc::RTLD_LOCAL;
        // SAFETY: c is a valid C string; dlopen may run the library's constructors, which is the
        // point of loading it.
        let mut h = unsafe { libc::dlopen(c.as_ptr(), flags) };
        if h.is_null() {
            lib.load_error = Some(dlerror_string());
            return lib;
        }
        if let Some(other) = avoid {
            if !other.handle.is_null() && other.handle == h {
                // Same object: drop our extra reference and load a private copy.
                // SAFETY: h came from dlopen above and the other Library still holds its reference.
                unsafe { libc::dlclose(h) };
                let src = other
                    .resolved
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(requested));
                let dst = std::env::temp_dir()
                    .join(format!("memkind-bench-{label}-{}.so", std::process::id()));
                if let Err(e) = std::fs::copy(&src, &dst) {
                    lib.load_error = Some(format!(
                        "same file as {}; copy to {} failed: {e}",
                        other.label,
                        dst.display()
                    ));
                    return lib;
                }
                let cdst =
                    CString::new(dst.as_os_str().as_encoded_bytes()).expect("temp path has NUL");
                // SAFETY: valid C string, as above.
                h = unsafe { libc::dlopen(cdst.as_ptr(), flags) };
                // The mapping stays valid after unlink.
                let _ = std::fs::remove_file(&dst);
                if h.is_null() {
                    lib.load_error = Some(dlerror_string());
                    return lib;
                }
                lib.copied_to = Some(dst);
            }
        }
        lib.handle = h;
        lib.resolve();
        lib
    }

    fn sym(&mut self, name: &str) -> *mut c_void {
        let c = CString::new(name).expect("symbol names have no NUL");
        // SAFETY: handle is a live dlopen handle; c is a valid C string.
        let p = unsafe { libc::dlsym(self.handle, c.as_ptr()) };
        if p.is_null() {
            self.missing.push(name.to_string());
        }
        p
    }

    fn resolve(&mut self) {
        let malloc = self.sym("memkind_malloc");
        let free = self.sym("memkind_free");
        let check = self.sym("memkind_check_available");
        if !malloc.is_null() {
            // SAFETY: all-zero is a valid Dl_info; dladdr only writes it.
            let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
            // SAFETY: malloc is an address inside the loaded object; info is writable.
            if unsafe { libc::dladdr(malloc, &mut info) } != 0 && !info.dli_fname.is_null() {
                // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
                let f = unsafe { CStr::from_ptr(info.dli_fname) }
                    .to_string_lossy()
                    .into_owned();
                self.resolved = Some(PathBuf::from(f));
            }
        }
        if !malloc.is_null() && !free.is_null() && !check.is_null() {
            // SAFETY: the symbols have memkind 1.14's prototypes (memkind.h); the types match.
            self.core = Some(unsafe {
                CoreFns {
                    malloc: std::mem::transmute::<*mut c_void, MallocFn>(malloc),
                    free: std::mem::transmute::<*mut c_void, FreeFn>(free),
                    check_available: std::mem::transmute::<*mut c_void, CheckAvailableFn>(check),
                }
            });
        }
        let p = self.sym("memkind_detect_kind");
        // SAFETY: memkind.h prototype; NULL maps to None (fn pointers are non-null).
        self.detect_kind = unsafe { std::mem::transmute::<*mut c_void, Option<DetectKindFn>>(p) };
        let p = self.sym("memkind_create_pmem");
        // SAFETY: as above.
        self.create_pmem = unsafe { std::mem::transmute::<*mut c_void, Option<CreatePmemFn>>(p) };
        let p = self.sym("memkind_destroy_kind");
        // SAFETY: as above.
        self.destroy_kind = unsafe { std::mem::transmute::<*mut c_void, Option<DestroyKindFn>>(p) };
        let p = self.sym("memkind_error_message");
        // SAFETY: as above.
        self.error_message =
            unsafe { std::mem::transmute::<*mut c_void, Option<ErrorMessageFn>>(p) };
        let ps = [
            "memtier_builder_new",
            "memtier_builder_add_tier",
            "memtier_builder_construct_memtier_memory",
            "memtier_builder_delete",
            "memtier_delete_memtier_memory",
            "memtier_malloc",
            "memtier_kind_free",
        ]
        .map(|n| self.sym(n));
        if ps.iter().all(|p| !p.is_null()) {
            // SAFETY: memkind_memtier.h's prototypes; the types match, none is NULL.
            self.memtier = Some(unsafe {
                MemtierApi {
                    builder_new: std::mem::transmute::<*mut c_void, BuilderNewFn>(ps[0]),
                    add_tier: std::mem::transmute::<*mut c_void, AddTierFn>(ps[1]),
                    construct: std::mem::transmute::<*mut c_void, ConstructFn>(ps[2]),
                    builder_delete: std::mem::transmute::<*mut c_void, DeleteFn>(ps[3]),
                    delete_memory: std::mem::transmute::<*mut c_void, DeleteFn>(ps[4]),
                    fns: MemtierFns {
                        malloc: std::mem::transmute::<*mut c_void, MemtierMallocFn>(ps[5]),
                        free: std::mem::transmute::<*mut c_void, MemtierKindFreeFn>(ps[6]),
                    },
                }
            });
        }
    }

    /// `memtier_malloc` / `memtier_free`, when the library has the memtier API.
    pub fn memtier_fns(&self) -> Option<MemtierFns> {
        self.memtier.as_ref().map(|m| m.fns)
    }

    /// Build every memory of [`MEMTIERS`] from [`MEMTIER_TIERS`] (after [`Library::resolve_kinds`]).
    pub fn resolve_memories(&mut self) {
        let mut v = Vec::new();
        for &(name, policy) in MEMTIERS {
            v.push((name.to_string(), self.build_memory(policy)));
        }
        self.memories = v;
    }

    fn build_memory(&self, policy: c_int) -> Result<Memory, String> {
        let api = self
            .memtier
            .as_ref()
            .ok_or_else(|| format!("{} lacks the memtier API", self.label))?;
        // SAFETY: memtier_builder_new takes any policy value (NULL for a bad one).
        let b = unsafe { (api.builder_new)(policy) };
        if b.is_null() {
            return Err(format!("memtier_builder_new({policy}) returned NULL"));
        }
        let mut r = Ok(());
        for &(kind, ratio) in MEMTIER_TIERS {
            let Some(k) = self.status(kind).kind() else {
                r = Err(format!("tier {kind} unavailable"));
                break;
            };
            // SAFETY: b is a live builder of this library, k one of its kinds.
            if unsafe { (api.add_tier)(b, k.0, ratio) } != 0 {
                r = Err(format!("memtier_builder_add_tier({kind}, {ratio}) failed"));
                break;
            }
        }
        let m = match r {
            // SAFETY: b is a live builder with its tiers.
            Ok(()) => unsafe { (api.construct)(b) },
            Err(_) => std::ptr::null_mut(),
        };
        // SAFETY: b is live and not used again; the memory does not need it (memtier(3)).
        unsafe { (api.builder_delete)(b) };
        r?;
        if m.is_null() {
            return Err("memtier_builder_construct_memtier_memory returned NULL".into());
        }
        Ok(Memory(m))
    }

    /// Delete the memories built by [`Library::resolve_memories`].
    pub fn delete_memories(&mut self) {
        let Some(api) = &self.memtier else { return };
        for (_, m) in self.memories.drain(..) {
            if let Ok(m) = m {
                // SAFETY: m was built by this library and is not used again.
                unsafe { (api.delete_memory)(m.0) };
            }
        }
    }

    /// memkind's text for an error code, when the library provides `memkind_error_message`.
    pub fn error_text(&self, code: c_int) -> String {
        let Some(f) = self.error_message else {
            return format!("error {code}");
        };
        let mut buf = [0 as c_char; 256];
        // SAFETY: buf is writable for its full length, which is passed as the size.
        unsafe { f(code, buf.as_mut_ptr(), buf.len()) };
        buf[buf.len() - 1] = 0;
        // SAFETY: NUL-terminated by the line above at the latest.
        let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        format!("{code}: {}", s.trim())
    }

    fn kind_status(&mut self, name: &str) -> KindStatus {
        let Some(core) = self.core else {
            return KindStatus::Unavailable(self.unusable_reason());
        };
        let var = self.sym(&format!("MEMKIND_{name}"));
        if var.is_null() {
            return KindStatus::Unavailable(format!("symbol MEMKIND_{name} missing"));
        }
        // SAFETY: MEMKIND_<name> is an exported `memkind_t` variable; dlsym gives its address.
        let k = unsafe { *(var as *const MemkindT) };
        if k.is_null() {
            return KindStatus::Unavailable(format!("MEMKIND_{name} is NULL"));
        }
        // SAFETY: k is one of the library's static kinds.
        let rc = unsafe { (core.check_available)(k) };
        if rc == 0 {
            KindStatus::Available(Kind(k))
        } else {
            KindStatus::Unavailable(format!("check_available {}", self.error_text(rc)))
        }
    }

    fn pmem_status(&mut self, dir: &Path) -> KindStatus {
        let Some(core) = self.core else {
            return KindStatus::Unavailable(self.unusable_reason());
        };
        let Some(create) = self.create_pmem else {
            return KindStatus::Unavailable("symbol memkind_create_pmem missing".into());
        };
        let Ok(cdir) = CString::new(dir.as_os_str().as_encoded_bytes()) else {
            return KindStatus::Unavailable("pmem dir contains NUL".into());
        };
        let mut k: MemkindT = std::ptr::null_mut();
        // SAFETY: cdir is a valid C string, k is writable.
        let rc = unsafe { create(cdir.as_ptr(), 0, &mut k) };
        if rc != 0 || k.is_null() {
            return KindStatus::Unavailable(format!(
                "create_pmem({}) {}",
                dir.display(),
                self.error_text(rc)
            ));
        }
        self.pmem = Some(Kind(k));
        // SAFETY: k was just created by this library.
        let rc = unsafe { (core.check_available)(k) };
        if rc == 0 {
            KindStatus::Available(Kind(k))
        } else {
            KindStatus::Unavailable(format!("check_available(PMEM) {}", self.error_text(rc)))
        }
    }

    /// Resolve every static kind and create the PMEM kind in `pmem_dir`.
    pub fn resolve_kinds(&mut self, pmem_dir: &Path) {
        let mut kinds = Vec::new();
        for name in static_kinds() {
            let st = self.kind_status(name);
            kinds.push((name.to_string(), st));
        }
        let st = self.pmem_status(pmem_dir);
        kinds.push((PMEM.to_string(), st));
        self.kinds = kinds;
    }

    /// Status of kind `name`.
    pub fn status(&self, name: &str) -> KindStatus {
        self.kinds
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| KindStatus::Unavailable(self.unusable_reason()))
    }

    /// Why nothing in this library can be measured (load error or missing core symbols).
    pub fn unusable_reason(&self) -> String {
        if let Some(e) = &self.load_error {
            format!("{} not loaded: {e}", self.label)
        } else if self.core.is_none() {
            format!("{} lacks {}", self.label, self.missing.join(", "))
        } else {
            String::new()
        }
    }

    /// One life of a fresh PMEM kind in `dir`: `memkind_create_pmem(dir, 0)`, the kind's first
    /// `memkind_malloc(kind, size)`, then free and `memkind_destroy_kind`. Returns the wall
    /// time of the create and of the first malloc, in ns.
    pub fn pmem_first_alloc(&self, dir: &Path, size: usize) -> Result<(f64, f64), String> {
        let core = self.core.ok_or_else(|| self.unusable_reason())?;
        let (Some(create), Some(destroy)) = (self.create_pmem, self.destroy_kind) else {
            return Err(format!(
                "{} lacks memkind_create_pmem or memkind_destroy_kind",
                self.label
            ));
        };
        let cdir = CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|_| "pmem dir contains NUL".to_string())?;
        let mut k: MemkindT = std::ptr::null_mut();
        let t0 = std::time::Instant::now();
        // SAFETY: cdir is a valid C string, k is writable.
        let rc = unsafe { create(cdir.as_ptr(), 0, &mut k) };
        let t1 = std::time::Instant::now();
        if rc != 0 || k.is_null() {
            return Err(format!("create_pmem {}", self.error_text(rc)));
        }
        // SAFETY: k was just created by this library.
        let p = unsafe { (core.malloc)(k, size) };
        let t2 = std::time::Instant::now();
        if !p.is_null() {
            // SAFETY: p came from memkind_malloc(k) of this library.
            unsafe { (core.free)(k, p) };
        }
        // SAFETY: k was created above and is not used again.
        unsafe { destroy(k) };
        if p.is_null() {
            return Err(format!("first memkind_malloc({size}) returned NULL"));
        }
        Ok(((t1 - t0).as_nanos() as f64, (t2 - t1).as_nanos() as f64))
    }

    /// Destroy the PMEM kind created by [`Library::resolve_kinds`] (its temp file goes away).
    pub fn destroy_pmem(&mut self) {
        if let (Some(k), Some(d)) = (self.pmem.take(), self.destroy_kind) {
            // SAFETY: k was created by this library's memkind_create_pmem and is not used again.
            unsafe { d(k.0) };
        }
    }
}

/// Names from memkind's API that are visible in the process's global scope, with the object that
/// provides them. Should be empty: both libraries are loaded `RTLD_LOCAL`, and if the executable
/// (or a preloaded library) exported `memkind_*`, a library's own internal PLT calls could bind to
/// that definition instead of its own, and the figures would be wrong.
pub fn global_scope_leaks() -> Vec<String> {
    let mut v = Vec::new();
    for name in ["memkind_malloc", "memkind_free", "MEMKIND_DEFAULT"] {
        let c = CString::new(name).expect("no NUL");
        // SAFETY: RTLD_DEFAULT lookup of a valid C string.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) };
        if p.is_null() {
            continue;
        }
        // SAFETY: all-zero is a valid Dl_info; dladdr only writes it.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        // SAFETY: p is an address from dlsym; info is writable.
        let from = if unsafe { libc::dladdr(p, &mut info) } != 0 && !info.dli_fname.is_null() {
            // SAFETY: NUL-terminated string owned by the loader.
            unsafe { CStr::from_ptr(info.dli_fname) }
                .to_string_lossy()
                .into_owned()
        } else {
            "?".into()
        };
        v.push(format!("{name} (from {from})"));
    }
    v
}
