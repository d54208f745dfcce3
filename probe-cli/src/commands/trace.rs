//! `trace`: every call as a JSON line.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::{catch_signals, Sink};
use crate::collect::{sys, Event, Request, Session};
use crate::view::trace;

/// `memkind-probe trace`.
pub fn run(req: &Request, output: Option<&Path>) -> Result<i32> {
    catch_signals()?;
    let mut sink = Sink::open(output, Sink::Stderr)?;
    let mut s = Session::start(req)?;
    let mut calls = 0u64;
    let mut buf = String::new();
    loop {
        // A short poll: the ring buffer is not woken per record (batched), so this is how
        // often it is drained while calls stream in.
        let r = s.poll(Duration::from_millis(10), |e, kinds| {
            if let Event::Call(c) = e {
                trace::push_line(&mut buf, c, kinds);
                calls += 1;
            }
        });
        if !buf.is_empty() {
            sink.write(&buf)?;
            buf.clear();
        }
        match r {
            Err(_) if sys::stop_signal().is_some() => break,
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        if sys::stop_signal().is_some() || s.targets_gone()? {
            break;
        }
    }
    let _ = s.poll(Duration::ZERO, |e, kinds| {
        if let Event::Call(c) = e {
            trace::push_line(&mut buf, c, kinds);
            calls += 1;
        }
    });
    let lost = s.snapshot()?.lost_events;
    let status = s.finish()?;
    buf.push_str(&trace::end_line(calls, lost));
    sink.write(&buf)?;
    if lost > 0 {
        eprintln!("memkind-probe: {lost} records lost (the ring buffer was full): the trace is incomplete");
    }
    Ok(status.map_or(0, |st| st.code()))
}
