//! The system calls of the collectors that std does not wrap: a child held between fork and
//! exec, waitpid without blocking, signal flags. The only module of the crate with `unsafe`.
#![allow(
    unsafe_code,
    reason = "fork/exec, waitpid, sigaction: see each SAFETY comment"
)]

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) writes two descriptors into the array of two ints on success.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A forked child waiting, before exec, for [`Held::release`].
pub struct Held {
    pid: u32,
    go: Option<OwnedFd>,
    err: OwnedFd,
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// exit(code).
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
}

impl Status {
    /// The shell's convention: the code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            Status::Exited(c) => c,
            Status::Signaled(s) => 128 + s,
        }
    }
}

fn decode(status: libc::c_int) -> Status {
    if libc::WIFEXITED(status) {
        Status::Exited(libc::WEXITSTATUS(status))
    } else {
        Status::Signaled(libc::WTERMSIG(status))
    }
}

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte"))
}

impl Held {
    /// Fork a child that will `execv(path, args)` (with our environment) once released. Nothing
    /// runs in the child before the exec but a read, the exec and a write of its errno.
    pub fn spawn(path: &Path, args: &[&OsStr]) -> io::Result<Held> {
        let path_c = cstr(path.as_os_str())?;
        let args_c: Vec<CString> = args.iter().map(|a| cstr(a)).collect::<io::Result<_>>()?;
        let mut argv: Vec<*const libc::c_char> = args_c.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let (go_r, go_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // SAFETY: fork(2). In the child only async-signal-safe calls follow (read, execv, write,
        // _exit) on memory prepared before the fork; the parent continues normally.
        let pid = cvt(unsafe { libc::fork() })?;
        if pid == 0 {
            // SAFETY: close(2) on the child's copies of the parent's ends, so that the parent
            // closing its end of `go` is an EOF here.
            unsafe {
                libc::close(go_w.as_raw_fd());
                libc::close(err_r.as_raw_fd());
            }
            let mut b = [0u8; 1];
            // SAFETY: reading one byte into a live buffer from a descriptor we own. EOF (the
            // parent gave up or died) means: do not run the command.
            let n = unsafe { libc::read(go_r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
            if n == 1 {
                // SAFETY: path and argv are NUL-terminated strings and a NULL-terminated array
                // that outlive the call (execv only returns on failure).
                unsafe { libc::execv(path_c.as_ptr(), argv.as_ptr()) };
                let e = io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(0)
                    .to_ne_bytes();
                // SAFETY: writing 4 bytes from a live buffer to a descriptor we own.
                unsafe { libc::write(err_w.as_raw_fd(), e.as_ptr().cast(), e.len()) };
            }
            // SAFETY: _exit(2) ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(127) };
        }
        drop(go_r);
        drop(err_w);
        Ok(Held {
            pid: pid as u32,
            go: Some(go_w),
            err: err_r,
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Let the child exec. `Err` carries the exec's error (the child has then exited 127).
    pub fn release(&mut self) -> io::Result<()> {
        if let Some(go) = self.go.take() {
            let b = [1u8];
            // SAFETY: writing one byte from a live buffer to a pipe we own.
            cvt(unsafe { libc::write(go.as_raw_fd(), b.as_ptr().cast(), 1) } as libc::c_int)?;
        }
        let mut e = [0u8; 4];
        let mut got = 0;
        while got < e.len() {
            // SAFETY: reading into the live remainder of a 4-byte buffer.
            let n = unsafe {
                libc::read(
                    self.err.as_raw_fd(),
                    e[got..].as_mut_ptr().cast(),
                    e.len() - got,
                )
            };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                break;
            }
            got += n as usize;
        }
        if got == e.len() {
            return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(e)));
        }
        Ok(())
    }

    /// Kill and reap a child never released (the probe could not attach). It has run nothing
    /// of the command. (Closing the pipe would end it too, but only once no other forked child
    /// holds a copy of the pipe's write end.)
    pub fn abandon(mut self) {
        self.go.take();
        // SAFETY: kill(2) on our own unreaped child: the pid cannot have been reused.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        let _ = wait(self.pid);
    }
}

/// Reap `pid` if it has ended (`None`: still running).
pub fn try_wait(pid: u32) -> io::Result<Option<Status>> {
    let mut st = 0;
    loop {
        // SAFETY: waitpid(2) with a valid pointer to an int.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut st, libc::WNOHANG) };
        if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        cvt(r)?;
        return Ok((r != 0).then(|| decode(st)));
    }
}

/// Send signal `sig` to process `pid`.
pub fn kill(pid: u32, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    cvt(unsafe { libc::kill(pid as libc::pid_t, sig) }).map(drop)
}

/// Wait for `pid` to end.
pub fn wait(pid: u32) -> io::Result<Status> {
    let mut st = 0;
    loop {
        // SAFETY: waitpid(2) with a valid pointer to an int.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut st, 0) };
        if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        cvt(r)?;
        return Ok(decode(st));
    }
}

/// Whether a process `pid` exists (kill(pid, 0)); EPERM counts as existing.
pub fn alive(pid: u32) -> bool {
    // SAFETY: kill(2) with signal 0 sends nothing.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// CLOCK_MONOTONIC in ns (the clock of the probe's event timestamps).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes a timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() }
}

static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    STOP.store(sig, Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM and SIGHUP into a flag ([`stop_signal`]) instead of dying, without
/// SA_RESTART (a blocking call returns EINTR). Dispositions are reset by exec, so a spawned
/// target still gets the defaults.
pub fn catch_stop_signals() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores into an atomic, which is
        // async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            cvt(libc::sigaction(sig, &sa, std::ptr::null_mut()))?;
        }
    }
    Ok(())
}

/// The stop signal caught, if any.
pub fn stop_signal() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Children forked by parallel tests would hold copies of each other's pipes (a held child
    /// has not exec'd, so O_CLOEXEC has not closed them yet): fork one test at a time.
    static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn held_child_runs_only_when_released() {
        let _g = FORK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("mkp-held-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let script = format!("echo ran > {}", dir.display());
        let mut h = Held::spawn(
            Path::new("/bin/sh"),
            &[OsStr::new("sh"), OsStr::new("-c"), OsStr::new(&script)],
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!dir.exists(), "ran before release");
        assert_eq!(try_wait(h.pid()).unwrap(), None);
        h.release().unwrap();
        assert_eq!(wait(h.pid()).unwrap(), Status::Exited(0));
        assert!(dir.exists());
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn exec_failure_and_abandon() {
        let _g = FORK.lock().unwrap_or_else(|e| e.into_inner());
        let mut h = Held::spawn(Path::new("/nonexistent/x"), &[OsStr::new("x")]).unwrap();
        let e = h.release().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(wait(h.pid()).unwrap().code(), 127);
        let h = Held::spawn(Path::new("/bin/true"), &[OsStr::new("true")]).unwrap();
        let pid = h.pid();
        h.abandon();
        assert!(!alive(pid) || try_wait(pid).is_err());
    }

    #[test]
    fn signal_status() {
        let _g = FORK.lock().unwrap_or_else(|e| e.into_inner());
        let mut h = Held::spawn(
            Path::new("/bin/sh"),
            &[OsStr::new("sh"), OsStr::new("-c"), OsStr::new("kill -9 $$")],
        )
        .unwrap();
        h.release().unwrap();
        assert_eq!(wait(h.pid()).unwrap(), Status::Signaled(9));
        assert_eq!(Status::Signaled(9).code(), 137);
    }
}
