//! What the probe reads from /proc, under an injectable root so tests build fake trees.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A /proc tree (`/` in production).
#[derive(Clone, Debug)]
pub struct Proc {
    root: PathBuf,
}

/// One file-backed line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Inode of the mapped file.
    pub inode: u64,
    /// Path as the process sees it (its own mount namespace).
    pub path: PathBuf,
}

impl Default for Proc {
    fn default() -> Self {
        Proc {
            root: PathBuf::from("/"),
        }
    }
}

impl Proc {
    /// /proc under `root` (tests).
    #[cfg(test)]
    pub fn at(root: &Path) -> Self {
        Proc {
            root: root.to_path_buf(),
        }
    }

    fn pid_dir(&self, pid: u32) -> PathBuf {
        self.root.join("proc").join(pid.to_string())
    }

    /// True when process `pid` exists (its /proc directory does and it is not a thread of
    /// another process).
    pub fn exists(&self, pid: u32) -> bool {
        match fs::read_to_string(self.pid_dir(pid).join("status")) {
            Ok(s) => s
                .lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .is_none_or(|t| t.trim() == pid.to_string()),
            Err(_) => false,
        }
    }

    /// The file-backed mappings of `pid`, each file once, in address order.
    pub fn mappings(&self, pid: u32) -> io::Result<Vec<Mapping>> {
        let text = fs::read_to_string(self.pid_dir(pid).join("maps"))?;
        Ok(parse_maps(&text))
    }

    /// The threads of `pid`.
    pub fn tasks(&self, pid: u32) -> io::Result<Vec<u32>> {
        let mut v: Vec<u32> = fs::read_dir(self.pid_dir(pid).join("task"))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    /// The path of a file mapped by `pid`, usable from our mount namespace: the path itself when
    /// it names the same inode here, else through `/proc/PID/root` (a process in a container).
    pub fn resolve(&self, pid: u32, m: &Mapping) -> PathBuf {
        use std::os::unix::fs::MetadataExt as _;
        let here = self.root.join(m.path.strip_prefix("/").unwrap_or(&m.path));
        if fs::metadata(&here).is_ok_and(|md| md.ino() == m.inode) {
            return if self.root == Path::new("/") {
                m.path.clone()
            } else {
                here
            };
        }
        self.pid_dir(pid)
            .join("root")
            .join(m.path.strip_prefix("/").unwrap_or(&m.path))
    }

    /// The executable of `pid` (`/proc/PID/exe`, readable even when the file is gone).
    pub fn exe(&self, pid: u32) -> PathBuf {
        self.pid_dir(pid).join("exe")
    }
}

/// The file-backed mappings of a `/proc/PID/maps` text, each (inode, path) once.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        // address perms offset dev inode pathname (the path may contain spaces)
        let mut it = line.splitn(6, ' ');
        let (Some(_), Some(_), Some(_), Some(_), Some(inode), Some(rest)) = (
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
        ) else {
            continue;
        };
        let Ok(inode) = inode.parse::<u64>() else {
            continue;
        };
        let path = rest.trim_start();
        if inode == 0 || !path.starts_with('/') {
            continue;
        }
        let path = PathBuf::from(path.strip_suffix(" (deleted)").unwrap_or(path));
        if !out.iter().any(|m| m.inode == inode && m.path == path) {
            out.push(Mapping { inode, path });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234 /usr/bin/my prog
7f1a2b000000-7f1a2b200000 rw-p 00000000 00:00 0 
7f1a2c000000-7f1a2c020000 r--p 00000000 08:01 777 /usr/lib/x86_64-linux-gnu/libmemkind.so.0.0.1
7f1a2c020000-7f1a2c080000 r-xp 00020000 08:01 777 /usr/lib/x86_64-linux-gnu/libmemkind.so.0.0.1
7f1a2d000000-7f1a2d100000 r-xp 00000000 08:01 99 /tmp/old.so (deleted)
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn maps() {
        let m = parse_maps(MAPS);
        assert_eq!(
            m,
            vec![
                Mapping {
                    inode: 1234,
                    path: "/usr/bin/my prog".into()
                },
                Mapping {
                    inode: 777,
                    path: "/usr/lib/x86_64-linux-gnu/libmemkind.so.0.0.1".into()
                },
                Mapping {
                    inode: 99,
                    path: "/tmp/old.so".into()
                },
            ]
        );
    }

    #[test]
    fn fake_tree() {
        let d = std::env::temp_dir().join(format!("mkp-proc-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let p = d.join("proc/42");
        fs::create_dir_all(p.join("task/42")).unwrap();
        fs::create_dir_all(p.join("task/43")).unwrap();
        fs::create_dir_all(d.join("proc/43")).unwrap();
        fs::create_dir_all(d.join("lib")).unwrap();
        fs::write(p.join("status"), "Name:\tx\nTgid:\t42\n").unwrap();
        fs::write(d.join("proc/43/status"), "Name:\tx\nTgid:\t42\n").unwrap();
        let lib = d.join("lib/libmemkind.so.0");
        fs::write(&lib, b"x").unwrap();
        use std::os::unix::fs::MetadataExt as _;
        let ino = fs::metadata(&lib).unwrap().ino();
        fs::write(p.join("maps"), format!("7f00-7f10 r-xp 0 08:01 {ino} /lib/libmemkind.so.0\n7f20-7f30 r-xp 0 08:01 5 /gone.so\n")).unwrap();

        let proc = Proc::at(&d);
        assert!(proc.exists(42));
        assert!(!proc.exists(43), "a thread is not a process");
        assert!(!proc.exists(44));
        assert_eq!(proc.tasks(42).unwrap(), vec![42, 43]);
        let maps = proc.mappings(42).unwrap();
        assert_eq!(proc.resolve(42, &maps[0]), lib);
        assert_eq!(proc.resolve(42, &maps[1]), p.join("root/gone.so"));
        assert_eq!(proc.exe(42), p.join("exe"));
        fs::remove_dir_all(&d).unwrap();
    }
}
