//! `serve`: OpenMetrics on `/metrics`, over a minimal HTTP/1.1 server on std::net (one request
//! per connection, `Connection: close`; scrapes are rare and small, so they are served one at a
//! time from the loop that also polls the probe).

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::{catch_signals, summarize};
use crate::collect::{sys, Request, Session};
use crate::view::openmetrics::{self, Limits};

/// Largest request head read.
const MAX_HEAD: usize = 16 << 10;

/// The response to a request head (`GET /metrics HTTP/1.1\r\n…`); `metrics` renders the body.
pub fn respond(head: &str, metrics: impl FnOnce() -> Result<String>) -> Vec<u8> {
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let reply = |status: &str, ctype: &str, body: String, head_only: bool| {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if !head_only {
            r.extend_from_slice(body.as_bytes());
        }
        r
    };
    let text = "text/plain; charset=utf-8";
    if method != "GET" && method != "HEAD" {
        return reply(
            "405 Method Not Allowed",
            text,
            "only GET and HEAD\n".into(),
            false,
        );
    }
    let head_only = method == "HEAD";
    match path {
        "/metrics" => match metrics() {
            Ok(body) => reply("200 OK", openmetrics::CONTENT_TYPE, body, head_only),
            Err(e) => reply(
                "500 Internal Server Error",
                text,
                format!("{e:#}\n"),
                head_only,
            ),
        },
        "/" => reply(
            "200 OK",
            text,
            "memkind-probe: the figures are at /metrics\n".into(),
            head_only,
        ),
        _ => reply(
            "404 Not Found",
            text,
            "not found; the figures are at /metrics\n".into(),
            head_only,
        ),
    }
}

fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_HEAD {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Serve every connection waiting on `listener` (non-blocking).
pub fn serve_pending(
    listener: &TcpListener,
    mut metrics: impl FnMut() -> Result<String>,
) -> Result<()> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream.set_nonblocking(false)?;
                let Ok(head) = read_head(&mut stream) else {
                    continue;
                };
                let resp = respond(&head, &mut metrics);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                let _ = stream.write_all(&resp);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e).context("accept"),
        }
    }
}

/// `memkind-probe serve`.
pub fn run(req: &Request, listen: SocketAddr) -> Result<i32> {
    catch_signals()?;
    let listener =
        TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    listener.set_nonblocking(true)?;
    let mut s = Session::start(req)?;
    // Placement every second (a scrape shows the last; Prometheus scrapes every 15 s or so).
    s.enable_placement(Duration::from_secs(1));
    eprintln!(
        "memkind-probe: serving {} on http://{listen}/metrics",
        s.target
    );
    loop {
        match s.poll(Duration::from_millis(50), |_, _| {}) {
            Err(_) if sys::stop_signal().is_some() => break,
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        let mut err = None;
        serve_pending(&listener, || {
            let snap = s.snapshot().inspect_err(|e| err = Some(format!("{e:#}")))?;
            Ok(openmetrics::render(
                &summarize(&s, &snap),
                &Limits::default(),
            ))
        })?;
        if let Some(e) = err {
            eprintln!("memkind-probe: scrape failed: {e}");
        }
        if sys::stop_signal().is_some() || s.targets_gone()? {
            break;
        }
    }
    let status = s.finish()?;
    Ok(status.map_or(0, |st| st.code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn routes() {
        let ok = text(respond("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", || {
            Ok("a 1\n# EOF\n".into())
        }));
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(
            "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"
        ));
        assert!(ok.contains("Content-Length: 10\r\n") && ok.ends_with("\r\n\r\na 1\n# EOF\n"));
        assert!(text(respond("GET /metrics?x=1 HTTP/1.1\r\n\r\n", || Ok(
            String::new()
        )))
        .starts_with("HTTP/1.1 200"));
        let head = text(respond("HEAD /metrics HTTP/1.1\r\n\r\n", || {
            Ok("abc".into())
        }));
        assert!(head.contains("Content-Length: 3") && head.ends_with("\r\n\r\n"));
        assert!(
            text(respond("GET /other HTTP/1.1\r\n\r\n", || unreachable!()))
                .starts_with("HTTP/1.1 404")
        );
        assert!(
            text(respond("POST /metrics HTTP/1.1\r\n\r\n", || unreachable!()))
                .starts_with("HTTP/1.1 405")
        );
        assert!(text(respond("", || unreachable!())).starts_with("HTTP/1.1 405"));
        let e = text(respond("GET /metrics HTTP/1.1\r\n\r\n", || {
            anyhow::bail!("probe gone")
        }));
        assert!(e.starts_with("HTTP/1.1 500") && e.ends_with("probe gone\n"));
    }

    #[test]
    fn over_a_socket() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut r = String::new();
            c.read_to_string(&mut r).unwrap();
            r
        });
        let mut served = 0;
        for _ in 0..200 {
            serve_pending(&l, || {
                served += 1;
                Ok("memkind_lost_events_total 0\n# EOF\n".into())
            })
            .unwrap();
            if served > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let r = client.join().unwrap();
        assert_eq!(served, 1);
        assert!(
            r.starts_with("HTTP/1.1 200 OK") && r.ends_with("# EOF\n"),
            "{r}"
        );
    }
}
