//! `memkind-probe` as a user runs it, end to end: `stat -- CMD` leaves the command's output and
//! exit status alone and counts exactly (tests/c/cli_workload.c prints what it did); `record`
//! then `report` gives the same counts; and bad input of every kind gets one clear line on
//! stderr and a non-zero exit, never a panic: a command that cannot run (127, as a shell), a
//! pid that does not exist or maps no memkind, a file that is not a memkind library, an unknown
//! format, a cgroup that is not one, no privileges, recordings that are not one, truncated or
//! corrupted; `stat --all` counts a process started after it exactly; `trace` prints every call
//! the workload made, one JSON line each, and counts them at the end.
//!
//! The tests that attach need root and kernel BTF (they skip with the reason without them);
//! the ones on recordings and arguments run anywhere.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{build_workload, expectations, probe, TempDir};

fn run(args: &[&str], lib_dir: Option<&Path>) -> Output {
    let mut c = Command::new(probe());
    c.args(args);
    if let Some(d) = lib_dir {
        c.env("LD_LIBRARY_PATH", d);
    }
    c.output().expect("memkind-probe")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Failed with `code` and a message containing `needle`, without a panic or a backtrace.
fn fails_with(o: &Output, code: i32, needle: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(code), "exit status; stderr: {e}");
    assert!(e.contains(needle), "expected {needle:?} in: {e}");
    assert!(
        !e.contains("panicked") && !e.contains("RUST_BACKTRACE"),
        "a panic: {e}"
    );
}

/// The JSON summary's (allocs, frees, reallocs, bytes_requested, bytes_allocated, bytes_freed)
/// of `kind`.
fn kind_counts(json: &serde_json::Value, kind: &str) -> [u64; 6] {
    let k = json["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .find(|k| k["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {json}"));
    let n = |f: &str| k[f].as_u64().unwrap_or_else(|| panic!("no {f} in {k}"));
    [
        n("allocs"),
        n("frees"),
        n("reallocs"),
        n("bytes_requested"),
        n("bytes_allocated"),
        n("bytes_freed"),
    ]
}

#[test]
fn stat_leaves_the_command_alone_and_counts_exactly() {
    skip_unless!("stat_leaves_the_command_alone_and_counts_exactly", &[]);
    let tmp = TempDir::new("memkind-cli-stat");
    let w = build_workload(tmp.path(), "cli_workload");
    let json = tmp.path().join("stat.json");
    let o = run(
        &[
            "stat",
            "--format",
            "json",
            "-o",
            json.to_str().unwrap(),
            "--",
            w.to_str().unwrap(),
            "0",
            "3",
        ],
        Some(tmp.path()),
    );
    // The command's exit status is the probe's; its stdout is exactly its own.
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let expect = expectations(&out);
    assert_eq!(expect.len(), 2, "{out}");
    assert_eq!(out.lines().count(), 3, "only the workload's lines: {out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for (kind, n) in &expect {
        assert_eq!(&kind_counts(&v, kind), n, "{kind}");
    }
    assert_eq!(v["lost_events"].as_u64(), Some(0));

    // The text summary goes to stderr by default and names both kinds.
    let o = run(&["stat", "--", w.to_str().unwrap()], Some(tmp.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("MEMKIND_DEFAULT") && e.contains("MEMKIND_REGULAR"),
        "{e}"
    );
    assert!(e.contains("1,502"), "the allocation count, grouped: {e}");
}

/// `trace -- CMD`: one JSON line per call, every call of the workload (its allocs, frees and
/// reallocs per kind, and the bytes it asked for, against what it printed), an end line that
/// counts them and says nothing was lost.
#[test]
fn trace_lines_are_the_calls_made() {
    skip_unless!("trace_lines_are_the_calls_made", &[]);
    trace_is_exact(&[]);
}

/// The same in a PID namespace of its own (as in a container): the library's thread ids are not
/// the ones the probe sees there, and no record may be dropped for it.
#[test]
fn trace_in_a_pid_namespace_is_exact() {
    skip_unless!("trace_in_a_pid_namespace_is_exact", &[]);
    let unshare = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .status();
    if !unshare.is_ok_and(|s| s.success()) {
        eprintln!(
            "SKIP trace_in_a_pid_namespace_is_exact: unshare --pid --fork does not work here"
        );
        return;
    }
    trace_is_exact(&["unshare", "--pid", "--fork"]);
}

/// `memkind-probe trace -- [WRAPPER..] WORKLOAD`: one line per call the workload made.
fn trace_is_exact(wrapper: &[&str]) {
    let tmp = TempDir::new("memkind-cli-trace");
    let w = build_workload(tmp.path(), "cli_workload");
    let out = tmp.path().join("trace.jsonl");
    let mut args = vec!["trace", "-o", out.to_str().unwrap(), "--"];
    args.extend_from_slice(wrapper);
    args.push(w.to_str().unwrap());
    let o = run(&args, Some(tmp.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    let expect = expectations(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(expect.len(), 2);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let (end, calls) = lines.split_last().unwrap();
    assert_eq!(end["end"], true, "{end}");
    assert_eq!(end["calls"].as_u64(), Some(calls.len() as u64));
    assert_eq!(end["lost_events"].as_u64(), Some(0));
    for (kind, n) in &expect {
        let of = |name: &str| {
            calls
                .iter()
                .filter(|c| c["kind"] == kind.as_str() && c["call"] == name)
                .collect::<Vec<_>>()
        };
        let allocs: Vec<_> = ["memkind_arena_malloc", "memkind_arena_calloc"]
            .iter()
            .flat_map(|c| of(c))
            .chain(of("memkind_arena_posix_memalign"))
            .collect();
        let reallocs = of("memkind_arena_realloc");
        let frees: Vec<_> = of("memkind_arena_free")
            .into_iter()
            .filter(|c| c["pointer"] != "0x0")
            .collect();
        assert_eq!(
            [allocs.len(), frees.len(), reallocs.len()].map(|x| x as u64),
            [n[0], n[1], n[2]],
            "{kind}: allocs, frees, reallocs"
        );
        let bytes: u64 = allocs
            .iter()
            .chain(&reallocs)
            .map(|c| c["size"].as_u64().unwrap())
            .sum();
        assert_eq!(bytes, n[3], "{kind}: bytes requested");
        for c in allocs.iter().chain(&reallocs) {
            assert_ne!(c["result"], "0x0", "{c}");
            assert!(c["latency_ns"].as_u64().unwrap() > 0, "{c}");
        }
    }
}

#[test]
fn sigint_to_the_probe_ends_the_command_and_prints_the_summary() {
    skip_unless!(
        "sigint_to_the_probe_ends_the_command_and_prints_the_summary",
        &[]
    );
    let tmp = TempDir::new("memkind-cli-int");
    let w = build_workload(tmp.path(), "cli_workload");
    let mut c = Command::new(probe())
        .args(["stat", "--"])
        .arg(&w)
        .arg("60000")
        .env("LD_LIBRARY_PATH", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "done" {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "the workload ended early"
        );
    }
    // SAFETY: kill(2) of our own child; no memory is involved.
    unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
    let t0 = std::time::Instant::now();
    let o = c.wait_with_output().unwrap();
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(20),
        "the probe waited for the command's own end"
    );
    // The command died of the forwarded SIGINT: 128 + 2, as a shell reports it.
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("MEMKIND_REGULAR") && e.contains("1,502"), "{e}");
}

#[test]
fn record_then_report_gives_the_same_counts() {
    skip_unless!("record_then_report_gives_the_same_counts", &[]);
    let tmp = TempDir::new("memkind-cli-rec");
    let w = build_workload(tmp.path(), "cli_workload");
    let rec = tmp.path().join("run.mkprobe");
    let o = run(
        &[
            "record",
            "-o",
            rec.to_str().unwrap(),
            "--",
            w.to_str().unwrap(),
        ],
        Some(tmp.path()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let expect = expectations(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(expect.len(), 2);
    let o = run(&["report", "--format", "json", rec.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    for (kind, n) in &expect {
        assert_eq!(&kind_counts(&v, kind), n, "{kind}");
    }
    // OpenMetrics of the same recording ends as the format demands.
    let o = run(
        &["report", "--format", "openmetrics", rec.to_str().unwrap()],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let om = String::from_utf8_lossy(&o.stdout);
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains("memkind_allocs_total{") && om.contains("kind=\"MEMKIND_REGULAR\""),
        "{om}"
    );

    // A recording cut short reports what it holds, saying so; one cut inside its header, or
    // with a flipped byte, is refused with the reason.
    let bytes = std::fs::read(&rec).unwrap();
    let cut = tmp.path().join("cut.mkprobe");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(&["report", cut.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("ends early"), "{}", stderr(&o));
    std::fs::write(&cut, &bytes[..12]).unwrap();
    fails_with(
        &run(&["report", cut.to_str().unwrap()], None),
        1,
        "truncated inside its header",
    );
    let mut bad = bytes.clone();
    let at = bytes.len() / 3;
    bad[at] ^= 0xff;
    std::fs::write(&cut, &bad).unwrap();
    fails_with(
        &run(&["report", cut.to_str().unwrap()], None),
        1,
        "corrupted",
    );
}

#[test]
fn reports_of_what_is_not_a_recording_are_refused() {
    let tmp = TempDir::new("memkind-cli-report");
    for (name, content) in [
        ("empty", &b""[..]),
        ("text", &b"hello, this is not a recording\n"[..]),
    ] {
        let f = tmp.path().join(name);
        std::fs::write(&f, content).unwrap();
        fails_with(
            &run(&["report", f.to_str().unwrap()], None),
            1,
            "not a memkind-probe recording",
        );
    }
    fails_with(
        &run(&["report", "/nonexistent/recording"], None),
        1,
        "/nonexistent/recording",
    );
    // Arguments clap refuses: status 2 with the valid values.
    fails_with(
        &run(&["stat", "--format", "bogus", "--", "true"], None),
        2,
        "possible values: text, json, openmetrics",
    );
    fails_with(&run(&["stat"], None), 2, "required");
}

#[test]
fn targets_that_cannot_be_probed_say_why() {
    skip_unless!("targets_that_cannot_be_probed_say_why", &[]);
    let tmp = TempDir::new("memkind-cli-bad");
    let w = build_workload(tmp.path(), "cli_workload");
    let lib = Some(tmp.path());
    // A command that cannot be executed: 127, as a shell would.
    fails_with(
        &run(&["stat", "--", "/nonexistent/program"], lib),
        127,
        "/nonexistent/program",
    );
    // A pid that does not exist; one that maps no memkind.
    fails_with(&run(&["stat", "-p", "999999999"], lib), 1, "no process");
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let o = run(&["stat", "-p", &pid], lib);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    fails_with(&o, 1, "maps no memkind library");
    // A library that is not memkind.
    fails_with(
        &run(
            &["stat", "--library", "/bin/sh", "--", w.to_str().unwrap()],
            lib,
        ),
        1,
        "not a memkind library",
    );
    // A cgroup that is not a cgroup v2 directory.
    fails_with(
        &run(
            &[
                "stat",
                "--cgroup",
                "/nonexistent",
                "--",
                w.to_str().unwrap(),
            ],
            lib,
        ),
        1,
        "not a cgroup v2 directory",
    );
    // No privileges: nobody, through setpriv (util-linux), is told what is missing.
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(probe())
        .args(["stat", "--", w.to_str().unwrap()])
        .env("LD_LIBRARY_PATH", tmp.path())
        .output();
    match o {
        Ok(o) if !String::from_utf8_lossy(&o.stderr).contains("setpriv:") => {
            fails_with(&o, 1, "needs root, or CAP_BPF and CAP_PERFMON")
        }
        _ => println!("setpriv cannot drop to nobody here: the unprivileged case is not run"),
    }
}

/// The probe's semaphore (`.memkind_probe`) in process `pid`, read through /proc/PID/mem: the
/// kernel counts it up once the probe's uprobes are in place in that process.
fn semaphore_of(pid: u32, lib: &Path) -> Option<u16> {
    let lib = memkind_bpf::Library::open(lib).ok()?;
    let off = lib.semaphore_offset()?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let real = lib.path().to_string_lossy().into_owned();
    let addr = maps.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 6 || f[5] != real {
            return None;
        }
        let (s, e) = f[0].split_once('-')?;
        let (s, e) = (
            u64::from_str_radix(s, 16).ok()?,
            u64::from_str_radix(e, 16).ok()?,
        );
        let fo = u64::from_str_radix(f[2], 16).ok()?;
        (fo <= off && off < fo + (e - s)).then(|| s + off - fo)
    })?;
    let mut b = [0u8; 2];
    let f = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, addr).ok()?;
    Some(u16::from_ne_bytes(b))
}

#[test]
fn stat_all_counts_processes_started_after_it() {
    skip_unless!("stat_all_counts_processes_started_after_it", &[]);
    let tmp = TempDir::new("memkind-cli-all");
    let w = build_workload(tmp.path(), "cli_workload");
    // A private copy of the library (its own inode): no other test's probe touches its
    // semaphore, so the canary below sees this probe alone.
    let lib = tmp.path().join("libmemkind.so.0");
    let so = std::fs::canonicalize(&lib).unwrap();
    std::fs::remove_file(&lib).unwrap();
    std::fs::copy(&so, &lib).unwrap();
    // A process mapping the library before the probe starts: its semaphore says when the
    // probe is attached.
    let mut canary = Command::new(&w)
        .arg("60000")
        .env("LD_LIBRARY_PATH", tmp.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let json = tmp.path().join("all.json");
    let mut probe_run = Command::new(probe())
        .args(["stat", "--all", "--format", "json", "--library"])
        .arg(&lib)
        .arg("-o")
        .arg(&json)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while semaphore_of(canary.id(), &lib).unwrap_or(0) == 0 {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "the probe never attached to the running process"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Attached: a process started now is counted from its first call, exactly.
    let child = Command::new(&w)
        .env("LD_LIBRARY_PATH", tmp.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = u64::from(child.id());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let expect = expectations(&String::from_utf8_lossy(&o.stdout));
    let _ = canary.kill();
    let _ = canary.wait();
    // SAFETY: kill(2) of our own child; no memory is involved.
    unsafe { libc::kill(probe_run.id() as i32, libc::SIGINT) };
    let st = probe_run.wait().unwrap();
    assert!(st.success(), "memkind-probe stat --all: {st}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let procs = v["processes"].as_array().expect("processes");
    // Other tests' processes may use the same library meanwhile: the workload's row by its pid.
    let ours = [procs
        .iter()
        .find(|p| p["pid"].as_u64() == Some(pid))
        .unwrap_or_else(|| panic!("no process {pid} in {v}"))];
    let by_kind = |name: &str| {
        let k = ours[0]["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == name)
            .unwrap_or_else(|| panic!("no {name}: {}", ours[0]));
        [
            k["allocs"].as_u64().unwrap(),
            k["frees"].as_u64().unwrap(),
            k["reallocs"].as_u64().unwrap(),
            k["bytes_requested"].as_u64().unwrap(),
            k["bytes_allocated"].as_u64().unwrap(),
            k["bytes_freed"].as_u64().unwrap(),
        ]
    };
    for (kind, n) in &expect {
        assert_eq!(&by_kind(kind), n, "{kind}");
    }
}
