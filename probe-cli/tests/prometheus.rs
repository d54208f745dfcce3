//! `memkind-probe serve` scraped by a real Prometheus (Debian's `prometheus`, 2.42 on Debian 12):
//! the exporter serves a workload of known counts (tests/c/cli_workload.c) on a loopback port;
//! a Prometheus started here with a temporary configuration and data directory scrapes it every
//! second (negotiating OpenMetrics, whose parser is strict: `# EOF`, counter `_total` samples,
//! label syntax); a query of Prometheus's HTTP API must return the workload's exact
//! allocation, free and realloc counts for each kind, and `up` must be 1.
//!
//! Needs root, kernel BTF and `prometheus` (tests/setup.sh installs it); skips with a reason
//! without them, except inside the VM matrix (`MEMKIND_RS_IN_VM=1`), where it fails instead.

mod common;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{build_workload, expectations, TempDir};

/// A loopback port free at the time of asking.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of `GET path` on 127.0.0.1:port (HTTP/1.0: the server closes after the response).
fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut r = String::new();
    s.read_to_string(&mut r)?;
    let (head, body) = r.split_once("\r\n\r\n").unwrap_or((&r, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(format!("{head}\n{body}")));
    }
    Ok(body.to_string())
}

/// Percent-encode a PromQL query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of an instant query returning one sample, if it returns exactly one.
fn query(port: u16, q: &str) -> Option<f64> {
    let body = get(port, &format!("/api/v1/query?query={}", encode(q))).ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let r = v["data"]["result"].as_array()?;
    if r.len() != 1 {
        return None;
    }
    r[0]["value"][1].as_str()?.parse().ok()
}

/// Kill and reap on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_the_exporter() {
    skip_unless!(
        "prometheus_scrapes_the_exporter",
        &[(
            "prometheus",
            &["--version"],
            "needs prometheus (tests/setup.sh installs Debian's)"
        )]
    );
    let tmp = TempDir::new("memkind-prom");
    let workload = build_workload(tmp.path(), "cli_workload");
    let (exporter, web) = (free_port(), free_port());

    // The exporter over a workload that counts, then holds for the scrapes.
    let mut serve = Reaped(
        Command::new(common::probe())
            .args(["serve", "--listen", &format!("127.0.0.1:{exporter}"), "--"])
            .arg(&workload)
            .args(["60000"])
            .env("LD_LIBRARY_PATH", tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("memkind-probe serve"),
    );
    let mut out = BufReader::new(serve.0.stdout.take().unwrap());
    let mut stdout = String::new();
    while !stdout.lines().any(|l| l == "done") {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap() == 0 {
            let mut e = String::new();
            let _ = serve.0.stderr.take().unwrap().read_to_string(&mut e);
            panic!("the workload ended early: {stdout}\n{e}");
        }
        stdout.push_str(&l);
    }
    let expect = expectations(&stdout);
    assert_eq!(expect.len(), 2, "{stdout}");
    // Our own scrape first: the exporter answers and the text ends with `# EOF`.
    let ours = {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            match get(exporter, "/metrics") {
                Ok(b) => break b,
                Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => panic!("GET /metrics: {e}"),
            }
        }
    };
    assert!(ours.ends_with("# EOF\n"), "{ours}");

    // Prometheus, scraping every second into a scratch directory.
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: memkind\n    static_configs:\n      \
             - targets: ['127.0.0.1:{exporter}']\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(tmp.path().join("prometheus.log")).unwrap();
    let _prom = Reaped(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus"),
    );

    // Every kind's counters, as Prometheus stores them, equal what the workload did.
    let pid = format!(",pid=\"{}\"", workload_pid(serve.0.id()));
    let t0 = Instant::now();
    let last = loop {
        let up = query(web, "up{job=\"memkind\"}");
        let mut all = up == Some(1.0);
        let mut last = format!("up {up:?}");
        for (kind, n) in &expect {
            for (metric, want) in [
                ("memkind_allocs_total", n[0]),
                ("memkind_frees_total", n[1]),
                ("memkind_reallocs_total", n[2]),
                ("memkind_bytes_allocated_total", n[4]),
            ] {
                let q = format!("sum({metric}{{job=\"memkind\",kind=\"{kind}\"{pid}}})");
                let got = query(web, &q);
                last.push_str(&format!("; {q} = {got:?} (want {want})"));
                all &= got == Some(want as f64);
            }
        }
        if all {
            break last;
        }
        if t0.elapsed() > Duration::from_secs(45) {
            let plog =
                std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default();
            let tail: Vec<&str> = plog.lines().rev().take(20).collect();
            panic!(
                "Prometheus never had the workload's counts: {last}\nprometheus log (last lines, newest first):\n{}\nexporter said:\n{ours}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    println!(
        "Prometheus scraped the exporter and returned every count after {:?}: {last}",
        t0.elapsed()
    );
    // SIGINT to the exporter alone ends it and the command it runs.
    // SAFETY: kill(2) of our own child; no memory is involved.
    unsafe { libc::kill(serve.0.id() as i32, libc::SIGINT) };
    let end = Instant::now() + Duration::from_secs(10);
    while serve.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "serve did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pid of the workload: the child memkind-probe started.
fn workload_pid(serve_pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{serve_pid}/task/{serve_pid}/children"))
        .ok()
        .and_then(|c| c.split_whitespace().next()?.parse().ok())
        .expect("memkind-probe serve's child")
}
