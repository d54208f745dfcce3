//! `--reserve-hugepages N`: set /proc/sys/vm/nr_hugepages for the run and put the old value back
//! on normal exit, on error (Drop), on panic (hook) and on SIGINT / SIGTERM / SIGHUP / SIGPIPE (handler).

use std::sync::atomic::{AtomicI64, Ordering};

const PATH: &str = "/proc/sys/vm/nr_hugepages";

/// Value to restore, -1 when nothing is to be restored. Read by the signal handler.
static RESTORE: AtomicI64 = AtomicI64::new(-1);

/// Current nr_hugepages.
pub fn current() -> Option<i64> {
    std::fs::read_to_string(PATH).ok()?.trim().parse().ok()
}

/// `HugePages_Free` from /proc/meminfo.
pub fn free_pages() -> Option<i64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Restores the previous reservation when dropped.
pub struct Reservation {
    /// Value before the run.
    pub previous: i64,
    /// Value the kernel actually granted (may be below the request).
    pub granted: i64,
}

/// Async-signal-safe restore: open/write/close only, number formatted on the stack.
fn restore_raw() {
    let v = RESTORE.swap(-1, Ordering::SeqCst);
    if v < 0 {
        return;
    }
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let mut x = v as u64;
    loop {
        i -= 1;
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    // SAFETY: the path literal is NUL-terminated; buf[i..] is initialised; the fd is closed.
    unsafe {
        let fd = libc::open(c"/proc/sys/vm/nr_hugepages".as_ptr(), libc::O_WRONLY);
        if fd >= 0 {
            libc::write(fd, buf[i..].as_ptr().cast(), buf.len() - i);
            libc::close(fd);
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    restore_raw();
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) };
}

impl Reservation {
    /// Reserve `n` pages (needs root).
    pub fn reserve(n: i64) -> Result<Reservation, String> {
        let previous = current().ok_or_else(|| format!("cannot read {PATH}"))?;
        RESTORE.store(previous, Ordering::SeqCst);
        // SAFETY: on_signal only calls async-signal-safe functions.
        unsafe {
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
                libc::signal(s, on_signal as *const () as libc::sighandler_t);
            }
        }
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_raw();
            hook(info);
        }));
        if let Err(e) = std::fs::write(PATH, n.to_string()) {
            RESTORE.store(-1, Ordering::SeqCst);
            return Err(format!("cannot write {PATH} (root needed): {e}"));
        }
        let granted = current().unwrap_or(-1);
        Ok(Reservation { previous, granted })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        restore_raw();
    }
}
