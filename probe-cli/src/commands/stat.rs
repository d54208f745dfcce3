//! `stat`: the summary at the end, deltas every -I MS. (`top` is in `super::top`.)

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{catch_signals, context, summarize, Sink};
use crate::collect::{sys, Request, Session};
use crate::view::{self, json, Format};

/// Longest wait for events before checking the target and signals again.
const TICK: Duration = Duration::from_millis(100);

/// Poll once; a poll interrupted by a stop signal is no error.
fn poll(s: &mut Session, timeout: Duration) -> Result<bool> {
    match s.poll(timeout, |_, _| {}) {
        Ok(()) => Ok(sys::stop_signal().is_some() || s.targets_gone()?),
        Err(_) if sys::stop_signal().is_some() => Ok(true),
        Err(e) => Err(e),
    }
}

fn render_interval(
    format: Format,
    n: u64,
    s: &Session,
    d: &crate::model::Snapshot,
    at: f64,
) -> String {
    let sum = summarize(s, d);
    let ctx = context(s);
    match format {
        Format::Json => {
            let mut v = json::value(&sum, &ctx);
            if let Some(o) = v.as_object_mut() {
                o.insert("interval".into(), n.into());
                o.insert("time".into(), at.into());
            }
            let mut t = v.to_string();
            t.push('\n');
            t
        }
        Format::Text => format!(
            "\n# interval {n}, {at:.3} s{}",
            view::text::render(&sum, &ctx)
        ),
        Format::Openmetrics => view::render(format, &sum, &ctx),
    }
}

/// `memkind-probe stat`.
pub fn run(
    req: &Request,
    format: Format,
    output: Option<&Path>,
    interval: Option<u64>,
    placement_ms: u64,
) -> Result<i32> {
    catch_signals()?;
    let mut sink = Sink::open(output, Sink::Stderr)?;
    let mut s = Session::start(req)?;
    if placement_ms > 0 {
        s.enable_placement(Duration::from_millis(placement_ms));
    }
    let every = interval.map(|ms| Duration::from_millis(ms.max(1)));
    let mut last = s.snapshot()?;
    let mut next = every.map(|e| Instant::now() + e);
    let mut n = 0;
    loop {
        let wait = next.map_or(TICK, |t| {
            t.saturating_duration_since(Instant::now()).min(TICK)
        });
        if poll(&mut s, wait)? {
            break;
        }
        if let (Some(e), Some(t)) = (every, next) {
            if Instant::now() >= t {
                n += 1;
                let snap = s.snapshot()?;
                let d = snap.delta(&last);
                sink.write(&render_interval(format, n, &s, &d, snap.ts_ns as f64 / 1e9))?;
                last = snap;
                next = Some(t + e);
            }
        }
    }
    let _ = s.poll(Duration::ZERO, |_, _| {});
    // Targets still running (-p, --all, Ctrl-C) get a last placement; for one that exited the
    // refresh is dropped and the last one taken while it lived stays.
    s.refresh_placement(true);
    let snap = s.snapshot()?;
    let text = view::render(format, &summarize(&s, &snap), &context(&s));
    let status = s.finish()?;
    sink.write(&text)?;
    Ok(status.map_or(0, |st| st.code()))
}
