//! Which file to probe: the `libmemkind.so.0` a command would load, or the one a process maps;
//! and which library it is (ours with the counter symbols, Intel's 1.14, or none).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use object::{Object as _, ObjectSymbol as _};

use super::procfs::Proc;

/// The soname the dynamic loader looks for.
pub const SONAME: &str = "libmemkind.so.0";
/// Where Debian installs it.
pub const DEFAULT_PATH: &str = "/usr/lib/x86_64-linux-gnu/libmemkind.so.0";
/// Exported by memkind-rs only: the counter flush the probe reads.
pub const OUR_SYMBOL: &str = "memkind_arena_stats_flush";
/// Exported by every memkind.
pub const MEMKIND_SYMBOL: &str = "memkind_malloc";

/// Which memkind a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// memkind-rs: in-process counters handed over in batches.
    Ours,
    /// Intel's memkind 1.14 (or another without our symbols): per-call uprobes only.
    Stock,
}

fn symbols(path: &Path) -> Result<HashSet<String>> {
    let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = object::File::parse(&*data)
        .with_context(|| format!("{} is not an ELF file", path.display()))?;
    Ok(file
        .dynamic_symbols()
        .chain(file.symbols())
        .filter(|s| s.is_definition())
        .filter_map(|s| s.name().ok().map(str::to_string))
        .filter(|n| n.starts_with("memkind"))
        .collect())
}

/// The flavor of `path`, `None` when it defines no memkind symbols at all.
pub fn flavor(path: &Path) -> Result<Option<Flavor>> {
    let s = symbols(path)?;
    Ok(if s.contains(OUR_SYMBOL) {
        Some(Flavor::Ours)
    } else if s.contains(MEMKIND_SYMBOL) {
        Some(Flavor::Stock)
    } else {
        None
    })
}

/// The path `ldconfig -p` gives for `name` on x86-64, from its output.
pub fn parse_ldconfig(out: &str, name: &str) -> Option<PathBuf> {
    let entries: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|l| {
            let (lhs, path) = l.trim().split_once(" => ")?;
            let (n, attrs) = lhs.split_once(' ')?;
            (n == name).then_some((attrs, path.trim()))
        })
        .collect();
    // The 64-bit entry, else one without an architecture tag (a cache of one architecture).
    entries
        .iter()
        .find(|(a, _)| a.contains("x86-64"))
        .or_else(|| entries.iter().find(|(a, _)| !a.contains(',')))
        .map(|(_, p)| PathBuf::from(p))
}

/// The library a command run with `ld_library_path` would load: the executable itself when it
/// contains memkind-rs (linked statically), else `LD_LIBRARY_PATH`, then the loader cache
/// (`ldconfig_p`, the output of `ldconfig -p`), else [`DEFAULT_PATH`].
pub fn for_command(exe: &Path, ld_library_path: Option<&str>, ldconfig_p: Option<&str>) -> PathBuf {
    if matches!(flavor(exe), Ok(Some(Flavor::Ours))) {
        return exe.to_path_buf();
    }
    for dir in ld_library_path
        .unwrap_or("")
        .split([':', ';'])
        .filter(|d| !d.is_empty())
    {
        let p = Path::new(dir).join(SONAME);
        if p.is_file() {
            return p;
        }
    }
    ldconfig_p
        .and_then(|o| parse_ldconfig(o, SONAME))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

/// `ldconfig -p`'s output, if it runs.
pub fn ldconfig_cache() -> Option<String> {
    for exe in ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"] {
        if let Ok(o) = std::process::Command::new(exe).arg("-p").output() {
            if o.status.success() {
                return String::from_utf8(o.stdout).ok();
            }
        }
    }
    None
}

/// The memkind library process `pid` maps (`libmemkind.so*`), or its executable when that
/// contains memkind-rs. Errors: no such process, no memkind in it.
pub fn for_pid(proc: &Proc, pid: u32) -> Result<PathBuf> {
    if !proc.exists(pid) {
        bail!("no process {pid}");
    }
    let maps = proc
        .mappings(pid)
        .with_context(|| format!("cannot read the memory map of process {pid}"))?;
    if let Some(m) = maps.iter().find(|m| {
        m.path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("libmemkind.so"))
    }) {
        return Ok(proc.resolve(pid, m));
    }
    let exe = proc.exe(pid);
    if matches!(flavor(&exe), Ok(Some(Flavor::Ours))) {
        return Ok(fs::read_link(&exe)
            .ok()
            .filter(|p| p.is_file())
            .unwrap_or(exe));
    }
    bail!("process {pid} maps no memkind library (no libmemkind.so* in /proc/{pid}/maps, and its executable does not contain memkind-rs)");
}

/// The one library of several processes (they must share it: one probe attaches to one file).
pub fn for_pids(proc: &Proc, pids: &[u32]) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt as _;
    let mut first: Option<(u32, PathBuf, (u64, u64))> = None;
    for &pid in pids {
        let p = for_pid(proc, pid)?;
        let id = fs::metadata(&p)
            .map(|m| (m.dev(), m.ino()))
            .unwrap_or_default();
        match &first {
            None => first = Some((pid, p, id)),
            Some((p0, path0, id0)) if *id0 != id => bail!(
                "processes {p0} and {pid} map different memkind libraries ({} and {}); probe them one at a time or name one with --library",
                path0.display(),
                p.display()
            ),
            Some(_) => {}
        }
    }
    first.map(|(_, p, _)| p).context("no process given")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LDCONFIG: &str = "\
1234 libs found in cache `/etc/ld.so.cache'
\tlibmemkind.so.0 (libc6) => /usr/lib32/libmemkind.so.0
\tlibmemkind.so.0 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libmemkind.so.0
\tlibmemkind.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libmemkind.so
";

    #[test]
    fn ldconfig() {
        assert_eq!(
            parse_ldconfig(LDCONFIG, SONAME),
            Some(PathBuf::from("/usr/lib/x86_64-linux-gnu/libmemkind.so.0"))
        );
        assert_eq!(parse_ldconfig(LDCONFIG, "libnuma.so.1"), None);
        assert_eq!(
            parse_ldconfig(
                "\tlibmemkind.so.0 (libc6) => /lib/libmemkind.so.0\n",
                SONAME
            ),
            Some(PathBuf::from("/lib/libmemkind.so.0")),
            "a cache without arch tags"
        );
    }

    #[test]
    fn command_library_search_order() {
        let d = std::env::temp_dir().join(format!("mkp-lib-{}", std::process::id()));
        fs::create_dir_all(d.join("a")).unwrap();
        fs::create_dir_all(d.join("b")).unwrap();
        fs::write(d.join("b").join(SONAME), b"not elf").unwrap();
        let exe = Path::new("/bin/sh");
        let llp = format!("{}:{}", d.join("a").display(), d.join("b").display());
        assert_eq!(
            for_command(exe, Some(&llp), Some(LDCONFIG)),
            d.join("b").join(SONAME)
        );
        assert_eq!(
            for_command(exe, Some(""), Some(LDCONFIG)),
            PathBuf::from("/usr/lib/x86_64-linux-gnu/libmemkind.so.0")
        );
        assert_eq!(for_command(exe, None, None), PathBuf::from(DEFAULT_PATH));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn flavors() {
        // /bin/sh defines no memkind symbol; a text file is no ELF file.
        assert_eq!(flavor(Path::new("/bin/sh")).unwrap(), None);
        let e = flavor(Path::new("/etc/hostname")).unwrap_err().to_string();
        assert!(e.contains("not an ELF file"), "{e}");
        // Intel's 1.14, when installed.
        let stock = Path::new(DEFAULT_PATH);
        if stock.exists() {
            assert_eq!(flavor(stock).unwrap(), Some(Flavor::Stock));
        }
    }

    #[test]
    fn pid_without_memkind() {
        let me = std::process::id();
        let proc = Proc::default();
        let e = for_pid(&proc, me).unwrap_err().to_string();
        assert!(e.contains("maps no memkind library"), "{e}");
        let e = for_pid(&proc, u32::MAX - 1).unwrap_err().to_string();
        assert_eq!(e, format!("no process {}", u32::MAX - 1));
    }
}
