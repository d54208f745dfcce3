//! Collection: resolves the target and its library, spawns a command held before exec, attaches
//! the probe (`memkind-bpf`) and the perf page-fault counters, and turns what they report into
//! model types. Knows nothing of views.

mod bpf;
pub mod library;
mod perf;
pub mod placement;
pub mod procfs;
pub mod sys;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

pub use bpf::RunStats;
pub use library::Flavor;

use crate::model::{Call, ExtentEvent, Extents, KindEvent, KindTable, Snapshot};
use procfs::Proc;
use sys::Status;

/// Which processes the probe follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// These processes.
    Pids(Vec<u32>),
    /// A child we spawned and hold before exec, and everything it forks.
    Tree(u32),
    /// Every process mapping the library.
    All,
}

/// What the user asked to observe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `-p PID[,PID]`.
    Pids(Vec<u32>),
    /// `--all`.
    All,
    /// `-- CMD ARGS`.
    Command(Vec<OsString>),
}

/// An event, decoded into model types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A kind was created, destroyed or announced.
    Kind {
        /// ns since the session start.
        ts_ns: u64,
        /// Process.
        tgid: u32,
        /// The event.
        ev: KindEvent,
    },
    /// An extent event.
    Extent {
        /// ns since the session start.
        ts_ns: u64,
        /// Process.
        tgid: u32,
        /// The event.
        ev: ExtentEvent,
    },
    /// A traced call (trace mode).
    Call(Call),
    /// A followed process exited.
    Exit {
        /// ns since the session start.
        ts_ns: u64,
        /// Process.
        tgid: u32,
        /// Exit code.
        code: i32,
    },
}

/// How to attach.
#[derive(Clone, Debug)]
pub struct Request {
    /// Whom.
    pub target: Target,
    /// `--library`.
    pub library: Option<PathBuf>,
    /// `--cgroup`.
    pub cgroup: Option<PathBuf>,
    /// Per-call uprobes (`trace`).
    pub trace: bool,
}

/// A failure the CLI reports with its own exit code (127 for a command that cannot run).
#[derive(Debug)]
pub struct ExitError {
    /// Exit status.
    pub code: i32,
    /// The one-line message.
    pub message: String,
}

impl std::fmt::Display for ExitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitError {}

fn cannot_run(cmd: &OsStr, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(ExitError {
        code: 127,
        message: format!("{}: {why}", cmd.to_string_lossy())
    })
}

/// The executable `cmd` names, searched in `path` (`$PATH`) when it has no slash, as a shell does.
pub fn find_command(cmd: &OsStr, path: Option<&OsStr>) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.as_bytes().contains(&b'/') {
        let p = PathBuf::from(cmd);
        return match p.metadata() {
            Err(_) => Err(cannot_run(cmd, "No such file or directory")),
            Ok(m) if m.is_dir() => Err(cannot_run(cmd, "Is a directory")),
            Ok(_) if !executable(&p) => Err(cannot_run(cmd, "Permission denied")),
            Ok(_) => Ok(p),
        };
    }
    let path = path
        .map(|p| p.to_os_string())
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(&path) {
        let p = if dir.as_os_str().is_empty() {
            PathBuf::from(".").join(cmd)
        } else {
            dir.join(cmd)
        };
        if executable(&p) {
            return Ok(p);
        }
    }
    Err(cannot_run(cmd, "command not found"))
}

/// The perf counters a session opens: on our library the BPF fault program counts every user
/// fault of the traced processes, so only major faults need a counter (see `collect/perf.rs`).
fn counted(flavor: Flavor) -> perf::Counted {
    match flavor {
        Flavor::Ours => perf::Counted::Major,
        Flavor::Stock => perf::Counted::MinorAndMajor,
    }
}

/// Whether we may attach uprobes and open perf counters on other processes: root, or
/// CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN) in the effective set.
pub fn check_privileges() -> Result<()> {
    if sys::euid() == 0 {
        return Ok(());
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    const SYS_ADMIN: u64 = 1 << 21;
    const PERFMON: u64 = 1 << 38;
    const BPF: u64 = 1 << 39;
    if eff & SYS_ADMIN != 0 || (eff & PERFMON != 0 && eff & BPF != 0) {
        return Ok(());
    }
    let missing: Vec<&str> = [(BPF, "CAP_BPF"), (PERFMON, "CAP_PERFMON")]
        .iter()
        .filter(|(b, _)| eff & b == 0)
        .map(|(_, n)| *n)
        .collect();
    bail!(
        "needs root, or {} (to load BPF programs, attach uprobes and read perf counters)",
        missing.join(" and ")
    )
}

/// An attached probe with its target, and the model state its events build.
pub struct Session {
    backend: bpf::Backend,
    proc: Proc,
    child: Option<u32>,
    child_status: Option<Status>,
    faults: BTreeMap<u32, perf::Faults>,
    follow_new: bool,
    start_ns: u64,
    /// Kind names from kind events.
    pub kinds: KindTable,
    /// Mappings from extent events.
    pub extents: Extents,
    /// The probed file.
    pub library: PathBuf,
    /// Ours or Intel's.
    pub flavor: Flavor,
    /// The target as the user wrote it (`'CMD ARGS'`, `process 123`, `all processes`).
    pub target: String,
    /// Placement of the kinds' pages, refreshed from [`Session::poll`] once enabled
    /// ([`Session::enable_placement`]).
    pub placement: Option<placement::Refresher>,
}

fn describe(t: &Target) -> String {
    match t {
        Target::Pids(p) if p.len() == 1 => format!("process {}", p[0]),
        Target::Pids(p) => format!(
            "processes {}",
            p.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        ),
        Target::All => "all processes".into(),
        Target::Command(c) => format!(
            "'{}'",
            c.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

impl Session {
    /// Check the target and the library, then attach (and for a command, start it). Nothing is
    /// left attached or running when this fails.
    pub fn start(req: &Request) -> Result<Session> {
        let proc = Proc::default();
        // 1. The target, and the library it uses.
        let (library, exe) = match &req.target {
            Target::Pids(pids) => {
                if let Some(p) = pids.iter().find(|p| !proc.exists(**p)) {
                    bail!("no process {p}");
                }
                let lib = match &req.library {
                    Some(l) => l.clone(),
                    None => library::for_pids(&proc, pids)?,
                };
                (lib, None)
            }
            Target::All => (
                req.library
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(library::DEFAULT_PATH)),
                None,
            ),
            Target::Command(cmd) => {
                let first = cmd.first().context("no command given after --")?;
                let exe = find_command(first, std::env::var_os("PATH").as_deref())?;
                let lib = match &req.library {
                    Some(l) => l.clone(),
                    None => library::for_command(
                        &exe,
                        std::env::var("LD_LIBRARY_PATH").ok().as_deref(),
                        library::ldconfig_cache().as_deref(),
                    ),
                };
                (lib, Some(exe))
            }
        };
        if !library.exists() {
            bail!(
                "no library {} (name the memkind library with --library PATH)",
                library.display()
            );
        }
        let flavor = library::flavor(&library)?.ok_or_else(|| {
            anyhow!(
                "{} defines no memkind symbols (neither memkind-rs's {} nor {}): not a memkind library; name one with --library PATH",
                library.display(),
                library::OUR_SYMBOL,
                library::MEMKIND_SYMBOL
            )
        })?;
        // 2. Privileges, before anything runs.
        check_privileges()?;
        if flavor == Flavor::Stock && !req.trace {
            eprintln!(
                "memkind-probe: {} is not memkind-rs (no {} counters): counting through a uprobe trap on every call, which is slow",
                library.display(),
                library::OUR_SYMBOL
            );
        }
        let mut opts = bpf::Options {
            library: library.clone(),
            scope: Scope::All,
            cgroup: req.cgroup.clone(),
            trace: req.trace,
        };
        let start_ns = sys::monotonic_ns();
        let counted = counted(flavor);
        let mut faults = BTreeMap::new();
        let (backend, child) = match (&req.target, exe) {
            (Target::Command(cmd), Some(exe)) => {
                let args: Vec<&OsStr> = cmd.iter().map(OsString::as_os_str).collect();
                let mut held = sys::Held::spawn(&exe, &args).context("cannot fork")?;
                let pid = held.pid();
                opts.scope = Scope::Tree(pid);
                let attached = bpf::Backend::attach(&opts, start_ns)
                    .and_then(|b| Ok((b, perf::Faults::for_child(pid, counted)?)));
                let (backend, f) = match attached {
                    Ok(x) => x,
                    Err(e) => {
                        held.abandon();
                        return Err(e);
                    }
                };
                faults.insert(pid, f);
                if let Err(e) = held.release() {
                    let _ = sys::wait(pid);
                    return Err(cannot_run(
                        &cmd[0],
                        std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0)),
                    ));
                }
                (backend, Some(pid))
            }
            (Target::Pids(pids), _) => {
                opts.scope = Scope::Pids(pids.clone());
                let b = bpf::Backend::attach(&opts, start_ns)?;
                for &p in pids {
                    faults.insert(p, perf::Faults::for_pid(&proc, p, counted)?);
                }
                (b, None)
            }
            _ => (bpf::Backend::attach(&opts, start_ns)?, None),
        };
        Ok(Session {
            backend,
            proc,
            child,
            child_status: None,
            faults,
            follow_new: matches!(req.target, Target::All),
            start_ns,
            kinds: KindTable::new(),
            extents: Extents::new(),
            library,
            flavor,
            target: describe(&req.target),
            placement: None,
        })
    }

    /// Take the placement of the kinds' pages every `interval` from now on (see
    /// [`placement::Refresher`]).
    pub fn enable_placement(&mut self, interval: Duration) {
        self.placement = Some(placement::Refresher::new(
            interval,
            placement::Budget::default(),
        ));
    }

    /// Refresh placement if it is enabled and due (or `force`). A failure (no privilege for
    /// move_pages) is reported once and turns placement off.
    pub fn refresh_placement(&mut self, force: bool) {
        let ts = self.now_ns();
        if let Some(r) = &mut self.placement {
            if let Err(e) = r.tick(&self.extents, ts, force) {
                eprintln!("memkind-probe: placement off: move_pages: {e}");
                self.placement = None;
            }
        }
    }

    /// ns since the session started.
    pub fn now_ns(&self) -> u64 {
        sys::monotonic_ns().saturating_sub(self.start_ns)
    }

    /// Wait up to `timeout` for events: kind and extent events update [`Session::kinds`] and
    /// [`Session::extents`], then every event goes to `f`.
    pub fn poll(&mut self, timeout: Duration, mut f: impl FnMut(&Event, &KindTable)) -> Result<()> {
        let mut events = Vec::new();
        self.backend.poll(timeout, &mut |e| events.push(e))?;
        for e in &events {
            match e {
                Event::Kind { tgid, ev, .. } => self.kinds.apply(*tgid, ev),
                Event::Extent { tgid, ev, .. } => self.extents.apply(*tgid, ev),
                _ => {}
            }
            f(e, &self.kinds);
        }
        self.refresh_placement(false);
        Ok(())
    }

    /// Cumulative counters now, with the process-wide page faults (where they come from: see
    /// `collect/perf.rs`).
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        let mut s = self.backend.snapshot()?;
        s.ts_ns = self.now_ns();
        if self.follow_new {
            for pid in s.pids() {
                if !self.faults.contains_key(&pid) {
                    if let Ok(f) = perf::Faults::for_pid(&self.proc, pid, counted(self.flavor)) {
                        self.faults.insert(pid, f);
                    }
                }
            }
        }
        match counted(self.flavor) {
            perf::Counted::Major => {
                let majors = self
                    .faults
                    .iter_mut()
                    .map(|(pid, f)| (*pid, f.read().major))
                    .collect();
                s.set_process_faults(&majors);
            }
            perf::Counted::MinorAndMajor => {
                for (pid, f) in &mut self.faults {
                    s.process_faults.insert(*pid, f.read());
                }
            }
        }
        Ok(s)
    }

    /// The spawned command's exit status once it has ended (`None` while it runs, or without a
    /// command: then see [`Session::targets_gone`]).
    pub fn child_status(&mut self) -> Result<Option<Status>> {
        if let (Some(pid), None) = (self.child, self.child_status) {
            self.child_status = sys::try_wait(pid)?;
        }
        Ok(self.child_status)
    }

    /// True when there is nothing left to watch: the command ended, or every `-p` process did.
    pub fn targets_gone(&mut self) -> Result<bool> {
        if self.child.is_some() {
            return Ok(self.child_status()?.is_some());
        }
        if self.follow_new {
            return Ok(false);
        }
        Ok(!self.faults.keys().any(|p| sys::alive(*p)))
    }

    /// Turn on the kernel's BPF run-time statistics while the guard lives (for `top`: they cost
    /// two clock reads per program run, so only while someone looks).
    pub fn enable_run_stats(&self) -> Result<RunStats> {
        self.backend.enable_run_stats()
    }

    /// (name, run count, run time in ns) of every loaded BPF program (counts grow only while a
    /// [`RunStats`] guard is held).
    pub fn prog_stats(&self) -> Vec<(String, u64, u64)> {
        self.backend.prog_stats()
    }

    /// The spawned command, while it has not been waited for.
    pub fn child(&self) -> Option<u32> {
        self.child.filter(|_| self.child_status.is_none())
    }

    /// Stop observing (detach) and, for a command, wait for it to end: its status. A command
    /// still running after memkind-probe was told to stop (Ctrl-C, SIGTERM, SIGHUP) gets the
    /// same signal first, as `perf stat` ends its workload: a `kill -INT` of the probe alone
    /// ends both, where waiting would hang until the command exits by itself.
    pub fn finish(mut self) -> Result<Option<Status>> {
        let status = self.child_status()?;
        let child = self.child;
        // Dropping the probe detaches it before we wait.
        let Session { backend, .. } = self;
        drop(backend);
        match (child, status) {
            (Some(pid), None) => {
                if let Some(sig) = sys::stop_signal() {
                    // Gone meanwhile (ESRCH) is fine: the wait reaps it.
                    let _ = sys::kill(pid, sig);
                }
                Ok(Some(sys::wait(pid)?))
            }
            (_, s) => Ok(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lookup() {
        assert_eq!(
            find_command(OsStr::new("sh"), Some(OsStr::new("/nonexistent:/bin"))).unwrap(),
            PathBuf::from("/bin/sh")
        );
        let e = find_command(OsStr::new("no-such-cmd-xyz"), Some(OsStr::new("/bin"))).unwrap_err();
        let x = e.downcast_ref::<ExitError>().unwrap();
        assert_eq!(
            (x.code, x.message.as_str()),
            (127, "no-such-cmd-xyz: command not found")
        );
        let f = std::env::temp_dir().join(format!("mkp-noexec-{}", std::process::id()));
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        let e = find_command(f.as_os_str(), None).unwrap_err();
        assert_eq!(e.to_string(), format!("{}: Permission denied", f.display()));
        std::fs::remove_file(&f).unwrap();
        assert_eq!(
            find_command(OsStr::new("/etc"), None)
                .unwrap_err()
                .to_string(),
            "/etc: Is a directory"
        );
        assert_eq!(
            find_command(OsStr::new("./nope"), None)
                .unwrap_err()
                .to_string(),
            "./nope: No such file or directory"
        );
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe(&Target::Pids(vec![3])), "process 3");
        assert_eq!(describe(&Target::Pids(vec![3, 4])), "processes 3,4");
        assert_eq!(
            describe(&Target::Command(vec!["./a".into(), "x".into()])),
            "'./a x'"
        );
    }
}
