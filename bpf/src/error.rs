//! The one error type of the crate: every variant says what failed in words a person acts on.

use std::io;
use std::path::PathBuf;

/// What went wrong while loading, attaching or reading the probe.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither root nor the capability the operation needs.
    #[error("permission denied: run as root or grant {missing} ({why})")]
    MissingCapability {
        /// `CAP_BPF`, `CAP_PERFMON` or `CAP_SYS_PTRACE`.
        missing: &'static str,
        /// What it is needed for.
        why: &'static str,
    },
    /// `/sys/kernel/btf/vmlinux` is missing.
    #[error(
        "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing): the probe needs a kernel \
         built with CONFIG_DEBUG_INFO_BTF=y (Debian's kernels since 5.10 are)"
    )]
    NoBtf,
    /// The kernel cannot do uprobes.
    #[error(
        "the kernel has no uprobes (/sys/bus/event_source/devices/uprobe is missing): it needs \
         CONFIG_UPROBE_EVENTS=y"
    )]
    NoUprobes,
    /// The file is no memkind library (neither ours nor memkind 1.14).
    #[error("{path}: not a memkind library (it exports neither memkind_malloc nor memkind_arena_stats_flush)")]
    NotMemkind {
        /// The file.
        path: PathBuf,
    },
    /// A memkind-rs build without the probe's counter entry points.
    #[error(
        "{path}: this libmemkind has no probe counters (no memkind_arena_stats_flush): use trace \
         mode, which probes every call (slow)"
    )]
    NoCounters {
        /// The library.
        path: PathBuf,
    },
    /// The library lacks a symbol the requested mode needs.
    #[error("{path}: symbol {symbol} not found")]
    MissingSymbol {
        /// The library.
        path: PathBuf,
        /// The symbol.
        symbol: &'static str,
    },
    /// The file could not be read or parsed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not an ELF object we can read.
    #[error("{path}: not a readable ELF file: {msg}")]
    BadElf {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        msg: String,
    },
    /// No process with that id.
    #[error("process {pid} does not exist")]
    NoSuchProcess {
        /// The pid.
        pid: u32,
    },
    /// The process does not map the library.
    #[error("process {pid} does not map {path} (is it using another libmemkind?)")]
    NotMapped {
        /// The pid.
        pid: u32,
        /// The library.
        path: PathBuf,
    },
    /// The `--cgroup` path is no cgroup v2 directory.
    #[error("{path}: not a cgroup v2 directory")]
    NotCgroup {
        /// The path.
        path: PathBuf,
    },
    /// libbpf refused (load, verifier, attach, map access).
    #[error("{what}: {source}")]
    Bpf {
        /// What was being done.
        what: String,
        /// libbpf's error.
        source: libbpf_rs::Error,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: String,
        /// The errno.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn bpf(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> Error {
        let what = what.into();
        move |source| Error::Bpf { what, source }
    }

    pub(crate) fn os(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let what = what.into();
        move |source| Error::Os { what, source }
    }
}
