//! `memkind-probe top` end to end: the TUI runs headless in tmux against a real workload (a C
//! program linked to our `libmemkind.so.0`, allocating from MEMKIND_DEFAULT and MEMKIND_REGULAR
//! in a loop); keys go in with `send-keys`, the screen comes back with `capture-pane -p` and is
//! asserted for the kind rows, their figures, sorting, filtering, expanding, resizing and a clean
//! exit; and `top --all` over two running workloads (the process list, a pid filter, drilling
//! into one process and back). Needs root, kernel BTF and tmux: skips with a reason without them, except inside the VM
//! matrix (`MEMKIND_RS_IN_VM=1`), where it fails instead.
//!
//! The library must be built first (`cargo build --release -p memkind`; `tests/test.sh` does).

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{build_workload, TempDir};

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A detached 160x40 session named "top" running `shell`.
    fn start(&self, shell: &str) {
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "160",
            "-y",
            "40",
            shell,
        ]);
    }

    fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "top"];
        a.extend_from_slice(keys);
        self.cmd(&a);
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    /// Capture until `ok` holds (or panic after `secs` with the last screen).
    fn wait_for(&self, what: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.capture();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// One TUI test at a time: each runs a CPU-bound workload and a probe on a small machine, and
/// `top --all` would also list (and probe) the other test's workload, which maps the same
/// library file.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The figures after the name in the row of `kind` (`▸ MEMKIND_DEFAULT  1,234  ...`).
fn row<'a>(screen: &'a str, kind: &str) -> Option<Vec<&'a str>> {
    screen.lines().find_map(|l| {
        let mut w = l.split_whitespace().skip_while(|w| *w != kind);
        w.next()?;
        Some(w.collect())
    })
}

fn num(cell: &str) -> f64 {
    cell.replace(',', "").parse().unwrap_or(f64::NAN)
}

fn allocs_s(screen: &str, kind: &str) -> f64 {
    row(screen, kind)
        .and_then(|r| r.first().map(|c| num(c)))
        .unwrap_or(0.0)
}

fn line_of(screen: &str, needle: &str) -> Option<usize> {
    screen.lines().position(|l| l.contains(needle))
}

#[test]
fn top_in_tmux() {
    skip_unless!(
        "top_in_tmux",
        &[("tmux", &["-V"], "needs tmux (tests/setup.sh installs it)")]
    );
    let _serial = serial();
    let tmp = TempDir::new("memkind-top");
    let workload = build_workload(tmp.path(), "top_workload");
    let probe = common::probe();
    let tmux = Tmux {
        socket: format!("memkind-top-{}", std::process::id()),
    };
    // The pane's command: top over the workload; then say how top ended and keep the pane.
    let shell = format!(
        "env LD_LIBRARY_PATH={dir} {probe} top -I 500 -- {workload} 30 1000; \
         echo memkind-probe exited $?; sleep 120",
        dir = tmp.0.display(),
        workload = workload.display()
    );
    tmux.start(&shell);

    // 1. Both kinds, counting: DEFAULT allocates twice as often as REGULAR.
    let s = tmux.wait_for("both kinds with allocs/s", 20, |s| {
        allocs_s(s, "MEMKIND_DEFAULT") > 0.0 && allocs_s(s, "MEMKIND_REGULAR") > 0.0
    });
    println!("first screen:\n{s}");
    assert!(s.contains("memkind-probe top"), "{s}");
    assert!(s.contains("ALLOCS/s"), "{s}");
    assert!(s.contains("q quit"), "help line: {s}");
    assert!(s.contains("lost events"), "status line: {s}");
    // Let a few intervals pass for steady rates.
    std::thread::sleep(Duration::from_millis(1500));
    let s = tmux.capture();
    let d = row(&s, "MEMKIND_DEFAULT").expect("DEFAULT row");
    let r = row(&s, "MEMKIND_REGULAR").expect("REGULAR row");
    let (da, df, ra, rf) = (num(d[0]), num(d[1]), num(r[0]), num(r[1]));
    assert!(da > 1000.0 && ra > 500.0, "allocs/s: {d:?} {r:?}\n{s}");
    let ratio = da / ra;
    assert!(
        (1.5..2.5).contains(&ratio),
        "DEFAULT:REGULAR allocs/s {ratio}: {d:?} {r:?}\n{s}"
    );
    // Every alloc replaces (frees) an older block once the rings are full.
    assert!(
        (df / da - 1.0).abs() < 0.2 && (rf / ra - 1.0).abs() < 0.2,
        "{d:?} {r:?}\n{s}"
    );
    // Live bytes: 4096 x 64 = 256.0K and 2048 x 256 = 512.0K (the library hands its counts over
    // in batches, so a few blocks may be in flight).
    let kib = |c: &str| c.strip_suffix('K').map_or(f64::NAN, num);
    assert!((kib(d[2]) - 256.0).abs() < 8.0, "DEFAULT live: {d:?}\n{s}");
    assert!((kib(r[2]) - 512.0).abs() < 16.0, "REGULAR live: {r:?}\n{s}");
    // Sorted by allocs/s, descending: DEFAULT above REGULAR.
    assert!(
        line_of(&s, "MEMKIND_DEFAULT") < line_of(&s, "MEMKIND_REGULAR"),
        "{s}"
    );
    assert!(s.contains("ALLOCS/s▼"), "{s}");

    // 2. Sort: `S` reverses, `1` sorts by name, `s` cycles to the next column.
    tmux.keys(&["S"]);
    let s = tmux.wait_for("reversed sort", 5, |s| s.contains("ALLOCS/s▲"));
    assert!(
        line_of(&s, "MEMKIND_REGULAR") < line_of(&s, "MEMKIND_DEFAULT"),
        "{s}"
    );
    tmux.keys(&["1"]);
    let s = tmux.wait_for("sort by name", 5, |s| s.contains("KIND▲"));
    assert!(
        line_of(&s, "MEMKIND_DEFAULT") < line_of(&s, "MEMKIND_REGULAR"),
        "{s}"
    );
    tmux.keys(&["s"]);
    tmux.wait_for("sort by allocs/s", 5, |s| s.contains("ALLOCS/s▼"));

    // 3. Expand DEFAULT (the cursor is on the first line): its arenas appear under it.
    tmux.keys(&["Home", "Enter"]);
    let s = tmux.wait_for("DEFAULT's arenas", 5, |s| {
        s.contains("▾ MEMKIND_DEFAULT") && s.contains("arena ")
    });
    let k = line_of(&s, "MEMKIND_DEFAULT").unwrap();
    let a = line_of(&s, "arena ").unwrap();
    assert_eq!(a, k + 1, "the arenas right under their kind:\n{s}");
    let arena_rate: f64 = s
        .lines()
        .filter(|l| l.trim_start().starts_with("arena "))
        .filter_map(|l| l.split_whitespace().nth(2).map(num))
        .sum();
    assert!(arena_rate > 0.0, "arena allocs/s: {s}");
    tmux.keys(&["Left"]);
    // The whole condition in the wait: a capture can catch a frame half written (the new kind
    // row above the old arena rows).
    tmux.wait_for("collapsed, no arena rows", 5, |s| {
        s.contains("▸ MEMKIND_DEFAULT") && !s.contains("arena ")
    });

    // 4. Filter: `f`, type, Enter. Only REGULAR stays.
    tmux.keys(&["f"]);
    tmux.keys(&["-l", "regular"]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the filter", 5, |s| {
        s.contains("filter \"regular\"") && !s.contains("MEMKIND_DEFAULT")
    });
    assert!(s.contains("MEMKIND_REGULAR"), "{s}");
    // `f` then Esc clears it.
    tmux.keys(&["f", "Escape"]);
    tmux.wait_for("no filter", 5, |s| {
        s.contains("MEMKIND_DEFAULT") && !s.contains("filter \"")
    });

    // 5. Pause freezes the figures; space resumes.
    tmux.keys(&["p"]);
    let s1 = tmux.wait_for("paused", 5, |s| s.contains("PAUSED"));
    std::thread::sleep(Duration::from_millis(1200));
    let s2 = tmux.capture();
    assert_eq!(
        row(&s1, "MEMKIND_DEFAULT"),
        row(&s2, "MEMKIND_DEFAULT"),
        "{s1}\n{s2}"
    );
    tmux.keys(&["Space"]);
    tmux.wait_for("resumed", 5, |s| !s.contains("PAUSED"));

    // 6. A smaller window: the table is redrawn to fit, the rows are still there.
    tmux.cmd(&["resize-window", "-t", "top", "-x", "90", "-y", "20"]);
    let s = tmux.wait_for("the resized frame", 5, |s| {
        s.lines().count() <= 20 && s.contains("MEMKIND_DEFAULT") && s.contains("q quit")
    });
    assert!(s.lines().all(|l| l.chars().count() <= 90), "{s}");
    assert!(allocs_s(&s, "MEMKIND_DEFAULT") > 0.0, "{s}");
    tmux.cmd(&["resize-window", "-t", "top", "-x", "160", "-y", "40"]);
    let s = tmux.wait_for("the full frame again", 5, |s| s.contains("PER NODE"));
    println!("capture for the docs:\n{s}");

    // 7. `q`: top leaves the alternate screen and ends cleanly (after the workload it started).
    tmux.keys(&["q"]);
    let s = tmux.wait_for("memkind-probe's exit", 40, |s| {
        s.contains("memkind-probe exited")
    });
    assert!(s.contains("memkind-probe exited 0"), "{s}");
    assert!(
        !s.contains("ALLOCS/s"),
        "the table is gone with the alternate screen:\n{s}"
    );
}

/// Kills the workloads `top --all` watches, on every path out of the test.
struct Workloads(Vec<std::process::Child>);

impl Drop for Workloads {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn top_all_in_tmux() {
    skip_unless!(
        "top_all_in_tmux",
        &[("tmux", &["-V"], "needs tmux (tests/setup.sh installs it)")]
    );
    let _serial = serial();
    let tmp = TempDir::new("memkind-top-all");
    let workload = build_workload(tmp.path(), "top_workload");
    let probe = common::probe();
    // Two processes running the library, started before top (so --all must find running ones).
    let procs = Workloads(
        (0..2)
            .map(|_| {
                Command::new(&workload)
                    .args(["60", "1000"])
                    .env("LD_LIBRARY_PATH", tmp.path())
                    .spawn()
                    .expect("start the workload")
            })
            .collect(),
    );
    let pids: Vec<String> = procs.0.iter().map(|c| c.id().to_string()).collect();
    let tmux = Tmux {
        socket: format!("memkind-top-all-{}", std::process::id()),
    };
    // --all watches the processes mapping this library (the default is Debian's).
    let shell = format!(
        "{probe} top --all --library {lib} -I 500; echo memkind-probe exited $?; sleep 120",
        lib = tmp.path().join("libmemkind.so.0").display()
    );
    tmux.start(&shell);

    // 1. The process list: both workloads, each on a row of its own that starts with its pid.
    let pid_row = |s: &str, pid: &str| {
        s.lines()
            .any(|l| l.split_whitespace().any(|w| w == pid) && l.contains("top_workload"))
    };
    let s = tmux.wait_for("both workloads in the process list", 20, |s| {
        s.contains("│ processes │") && pids.iter().all(|p| pid_row(s, p))
    });
    println!("process list:\n{s}");
    assert!(s.contains("PID COMMAND"), "{s}");
    assert!(
        !s.contains("MEMKIND_DEFAULT"),
        "the list shows processes, not kinds:\n{s}"
    );

    // 2. The filter matches pids on the process list: only the first workload stays (another
    //    test's workload may map the same library file and show up in the list too).
    tmux.keys(&["f"]);
    tmux.keys(&["-l", &pids[0]]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the pid filter", 5, |s| {
        s.contains(&format!("filter \"{}\"", pids[0]))
            && pid_row(s, &pids[0])
            && !pid_row(s, &pids[1])
    });
    println!("filtered:\n{s}");

    // 3. Enter drills into the process under the cursor: its kinds, counting.
    tmux.keys(&["Home", "Enter"]);
    let s = tmux.wait_for("one process's kinds", 10, |s| {
        s.contains("│ kinds │")
            && allocs_s(s, "MEMKIND_DEFAULT") > 0.0
            && allocs_s(s, "MEMKIND_REGULAR") > 0.0
    });
    println!("drilled down:\n{s}");
    assert!(
        s.contains(&format!("process {}", pids[0])),
        "the title names process {}:\n{s}",
        pids[0]
    );
    // One process's rates, not the sum of both: DEFAULT still twice REGULAR.
    let ratio = allocs_s(&s, "MEMKIND_DEFAULT") / allocs_s(&s, "MEMKIND_REGULAR");
    assert!((1.5..2.5).contains(&ratio), "DEFAULT:REGULAR {ratio}\n{s}");

    // 4. Backspace goes back to the list (still filtered); `f` Esc clears the filter and both
    //    processes are there again; `q` quits cleanly.
    tmux.keys(&["BSpace"]);
    tmux.wait_for("the filtered process list again", 5, |s| {
        s.contains("│ processes │") && pid_row(s, &pids[0])
    });
    tmux.keys(&["f", "Escape"]);
    let s = tmux.wait_for("the whole process list again", 5, |s| {
        s.contains("│ processes │")
            && !s.contains("filter \"")
            && pids.iter().all(|p| pid_row(s, p))
    });
    println!("process list again:\n{s}");
    tmux.keys(&["q"]);
    let s = tmux.wait_for("memkind-probe's exit", 20, |s| {
        s.contains("memkind-probe exited")
    });
    assert!(s.contains("memkind-probe exited 0"), "{s}");
    drop(procs);
}
