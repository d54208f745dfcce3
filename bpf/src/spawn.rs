//! Spawning a traced command held before `exec`, so the probe's pid filter holds before the
//! program's first instruction (machine-facts: "set the pid filter before the child execs").
//!
//! `std::process::Command::spawn` returns only once the child has exec'd, so the hold runs in a
//! helper thread: the child writes its pid to one pipe in `pre_exec` and blocks reading another;
//! [`HeldChild::release`] lets it exec and returns the `Child` (or the exec error: a shell
//! reports that as exit status 127).
#![allow(unsafe_code, reason = "pre_exec and the raw pipe calls it makes")]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::thread::JoinHandle;

/// A child process forked from a [`Command`] and stopped before `exec`.
#[derive(Debug)]
pub struct HeldChild {
    pid: u32,
    go: Option<OwnedFd>,
    spawner: Option<JoinHandle<io::Result<Child>>>,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl HeldChild {
    /// Fork `cmd`'s child and hold it before `exec`.
    pub fn spawn(mut cmd: Command) -> io::Result<HeldChild> {
        let (pid_r, pid_w) = pipe()?;
        let (go_r, go_w) = pipe()?;
        let (pid_w_fd, go_r_fd, go_w_fd) = (pid_w.as_raw_fd(), go_r.as_raw_fd(), go_w.as_raw_fd());
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe calls (getpid, write, close, read) on descriptors that stay open in
        // the child (they are O_CLOEXEC: exec closes them).
        unsafe {
            cmd.pre_exec(move || {
                let pid = libc::getpid().to_ne_bytes();
                libc::close(go_w_fd);
                if libc::write(pid_w_fd, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
                    return Err(io::Error::last_os_error());
                }
                let mut b = 0u8;
                loop {
                    match libc::read(go_r_fd, (&mut b as *mut u8).cast(), 1) {
                        1 => return Ok(()),
                        0 => return Err(io::Error::other("the tracer went away before release")),
                        _ if *libc::__errno_location() == libc::EINTR => continue,
                        _ => return Err(io::Error::last_os_error()),
                    }
                }
            });
        }
        let spawner = std::thread::Builder::new()
            .name("memkind-bpf-spawn".into())
            .spawn(move || {
                let r = cmd.spawn();
                drop((pid_w, go_r));
                r
            })?;
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < buf.len() {
            // SAFETY: reads into the unfilled tail of `buf`.
            let n = unsafe {
                libc::read(
                    pid_r.as_raw_fd(),
                    buf[got..].as_mut_ptr().cast(),
                    buf.len() - got,
                )
            };
            match n {
                n if n > 0 => got += n as usize,
                0 => break,
                _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
        if got < buf.len() {
            // The fork itself failed (or pre_exec did before writing): the spawn result says why.
            drop(go_w);
            return match spawner.join() {
                Ok(Err(e)) => Err(e),
                Ok(Ok(mut child)) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(io::Error::other("the child did not report its pid"))
                }
                Err(_) => Err(io::Error::other("the spawning thread panicked")),
            };
        }
        Ok(HeldChild {
            pid: i32::from_ne_bytes(buf) as u32,
            go: Some(go_w),
            spawner: Some(spawner),
        })
    }

    /// The child's pid (also its tgid).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Let the child exec. The error is the exec's (`NotFound`, `PermissionDenied`...).
    pub fn release(mut self) -> io::Result<Child> {
        let go = self.go.take().expect("released once");
        // SAFETY: writes one byte from a local.
        let n = unsafe { libc::write(go.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        if n != 1 {
            return Err(io::Error::last_os_error());
        }
        drop(go);
        match self.spawner.take().expect("released once").join() {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("the spawning thread panicked")),
        }
    }
}

impl Drop for HeldChild {
    fn drop(&mut self) {
        // Closing the go pipe makes pre_exec fail: the child exits without exec'ing, and the
        // spawn returns that error, which reaps it.
        self.go.take();
        if let Some(t) = self.spawner.take() {
            if let Ok(Ok(mut child)) = t.join() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_then_released() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 7"]);
        let held = HeldChild::spawn(cmd).unwrap();
        assert!(held.pid() > 0);
        // Held: it is still this test's image (a fork), not sh.
        let exe = std::fs::read_link(format!("/proc/{}/exe", held.pid())).unwrap();
        assert_eq!(exe, std::env::current_exe().unwrap());
        let mut child = held.release().unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(7));
    }

    #[test]
    fn exec_error_after_release() {
        let held = HeldChild::spawn(Command::new("/nonexistent/program")).unwrap();
        let e = held.release().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn dropped_without_release() {
        let held = HeldChild::spawn(Command::new("true")).unwrap();
        let pid = held.pid();
        drop(held);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
