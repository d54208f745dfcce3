//! Everything that touches the OS outside libbpf: /proc readers (with an injectable root so
//! they are unit-tested on fake trees), the target's memory (process_vm_writev), the
//! monotonic clock and the capability check.
#![allow(
    unsafe_code,
    reason = "process_vm_writev and clock_gettime through libc"
)]

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub writable: bool,
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    pub path: String,
}

/// A /proc tree (`/proc` on a real system).
#[derive(Debug, Clone)]
pub(crate) struct Proc {
    root: PathBuf,
}

impl Default for Proc {
    fn default() -> Self {
        Proc {
            root: PathBuf::from("/proc"),
        }
    }
}

impl Proc {
    #[cfg(test)]
    pub fn at(root: impl Into<PathBuf>) -> Proc {
        Proc { root: root.into() }
    }

    pub fn exists(&self, pid: u32) -> bool {
        self.root.join(pid.to_string()).is_dir()
    }

    /// Every numeric entry (a process).
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let mut v: Vec<u32> = fs::read_dir(&self.root)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    pub fn maps(&self, pid: u32) -> io::Result<Vec<MapEntry>> {
        let text = fs::read_to_string(self.root.join(pid.to_string()).join("maps"))?;
        Ok(text.lines().filter_map(parse_maps_line).collect())
    }

    /// The effective capability set of this process (`CapEff` of /proc/self/status).
    pub fn cap_eff(&self) -> io::Result<u64> {
        let text = fs::read_to_string(self.root.join("self/status"))?;
        text.lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no CapEff in status"))
    }
}

fn parse_maps_line(line: &str) -> Option<MapEntry> {
    // start-end perms offset major:minor inode [path]
    let mut it = line.splitn(6, ' ');
    let range = it.next()?;
    let perms = it.next()?;
    let offset = u64::from_str_radix(it.next()?, 16).ok()?;
    let dev = it.next()?;
    let inode = it.next()?.parse().ok()?;
    let path = it.next().unwrap_or("").trim_start().to_owned();
    let (s, e) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    Some(MapEntry {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        writable: perms.as_bytes().get(1) == Some(&b'w'),
        offset,
        dev_major: u32::from_str_radix(maj, 16).ok()?,
        dev_minor: u32::from_str_radix(min, 16).ok()?,
        inode,
        path,
    })
}

/// How a file is recognised in /proc/PID/maps: its resolved path, or its device and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileId {
    pub path: String,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
}

impl FileId {
    pub fn of(path: &Path) -> io::Result<FileId> {
        let md = fs::metadata(path)?;
        let dev = md.dev();
        Ok(FileId {
            path: path.to_string_lossy().into_owned(),
            dev_major: libc::major(dev),
            dev_minor: libc::minor(dev),
            inode: md.ino(),
        })
    }

    pub fn matches(&self, m: &MapEntry) -> bool {
        m.path == self.path
            || (m.inode == self.inode
                && m.dev_major == self.dev_major
                && m.dev_minor == self.dev_minor)
    }
}

/// Write `value` at `addr` in process `pid` (process_vm_writev(2): the page must be writable
/// in the target, the caller needs ptrace access to it).
pub(crate) fn write_u64(pid: u32, addr: u64, value: u64) -> io::Result<()> {
    let bytes = value.to_ne_bytes();
    let local = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: `local` describes `bytes`, alive for the call; the kernel only reads it. The remote
    // iovec is an address in another process, which the kernel checks (EFAULT), never ours.
    let n = unsafe { libc::process_vm_writev(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize != bytes.len() => Err(io::Error::from(io::ErrorKind::WriteZero)),
        _ => Ok(()),
    }
}

/// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns().
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec into `ts`; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let m = parse_maps_line(
            "7f1c2a000000-7f1c2a021000 rw-p 0001f000 fd:01 1234567                    /usr/lib/x86_64-linux-gnu/libmemkind.so.0.0.1",
        )
        .unwrap();
        assert_eq!(m.start, 0x7f1c2a000000);
        assert_eq!(m.end, 0x7f1c2a021000);
        assert!(m.writable);
        assert_eq!(m.offset, 0x1f000);
        assert_eq!((m.dev_major, m.dev_minor, m.inode), (0xfd, 1, 1234567));
        assert_eq!(m.path, "/usr/lib/x86_64-linux-gnu/libmemkind.so.0.0.1");
        let anon = parse_maps_line("7ffd1000-7ffd2000 r--p 00000000 00:00 0 ").unwrap();
        assert_eq!(anon.path, "");
        assert!(!anon.writable);
    }

    #[test]
    fn fake_proc_tree() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("42")).unwrap();
        fs::create_dir_all(dir.path().join("self")).unwrap();
        fs::create_dir_all(dir.path().join("sys")).unwrap();
        fs::write(
            dir.path().join("42/maps"),
            "00400000-00401000 r-xp 00000000 08:02 77 /bin/x\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("self/status"),
            "Name:\tx\nCapEff:\t000001ffffffffff\n",
        )
        .unwrap();
        let p = Proc::at(dir.path());
        assert_eq!(p.pids().unwrap(), vec![42]);
        assert!(p.exists(42) && !p.exists(43));
        assert_eq!(p.maps(42).unwrap()[0].inode, 77);
        assert_eq!(p.cap_eff().unwrap(), 0x1ff_ffff_ffff);
    }
}
