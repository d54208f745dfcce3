//! `record` (to the format of [`crate::record`]) and `report` (its replay).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};

use super::{catch_signals, Sink};
use crate::collect::{sys, Event, Flavor, Request, Session};
use crate::model::Summary;
use crate::record::{self, Frame, Meta, Writer};
use crate::view::{self, Context, Format};

fn frame_of(e: &Event) -> Option<Frame> {
    match e {
        Event::Kind { ts_ns, tgid, ev } => Some(Frame::Kind {
            ts_ns: *ts_ns,
            tgid: *tgid,
            ev: ev.clone(),
        }),
        Event::Extent { ts_ns, tgid, ev } => Some(Frame::Extent {
            ts_ns: *ts_ns,
            tgid: *tgid,
            ev: *ev,
        }),
        Event::Exit { ts_ns, tgid, code } => Some(Frame::Exit {
            ts_ns: *ts_ns,
            tgid: *tgid,
            code: *code,
        }),
        Event::Call(_) => None,
    }
}

/// `memkind-probe record -o FILE`.
pub fn record(req: &Request, path: &Path, max_size: u64, every_ms: u64) -> Result<i32> {
    catch_signals()?;
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut s = Session::start(req)?;
    let start_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut w = Writer::new(BufWriter::new(file), start_unix, max_size)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let meta = Meta {
        target: s.target.clone(),
        library: s.library.display().to_string(),
        stock: s.flavor == Flavor::Stock,
    };
    w.write(&Frame::Meta(meta))?;
    let every = Duration::from_millis(every_ms.max(10));
    let mut next = Instant::now() + every;
    let mut pending: Vec<Frame> = Vec::new();
    loop {
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        let r = s.poll(wait, |e, _| pending.extend(frame_of(e)));
        let stop = match r {
            Err(_) if sys::stop_signal().is_some() => true,
            Err(e) => return Err(e),
            Ok(()) => sys::stop_signal().is_some() || s.targets_gone()?,
        };
        for f in pending.drain(..) {
            w.write(&f)?;
        }
        if stop || Instant::now() >= next {
            let _ = s.poll(Duration::ZERO, |e, _| pending.extend(frame_of(e)));
            for f in pending.drain(..) {
                w.write(&f)?;
            }
            w.write(&Frame::Snapshot(s.snapshot()?))?;
            next += every;
        }
        if w.is_full() {
            eprintln!(
                "memkind-probe: {} reached --max-size ({} bytes, {} written): recording stopped{}",
                path.display(),
                max_size,
                w.written(),
                if req.target == crate::collect::Target::All
                    || matches!(req.target, crate::collect::Target::Pids(_))
                {
                    ""
                } else {
                    "; the command runs on unobserved"
                }
            );
            break;
        }
        if stop {
            break;
        }
    }
    let end = s.now_ns();
    w.finish(end)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let status = s.finish()?;
    Ok(status.map_or(0, |st| st.code()))
}

/// `memkind-probe report FILE`.
pub fn report(
    path: &Path,
    format: Format,
    output: Option<&Path>,
    from: Option<f64>,
    to: Option<f64>,
) -> Result<i32> {
    let secs = |v: Option<f64>, flag: &str| -> Result<Option<u64>> {
        match v {
            Some(x) if !(x >= 0.0 && x.is_finite()) => {
                bail!("{flag} must be a number of seconds >= 0")
            }
            Some(x) => Ok(Some((x * 1e9) as u64)),
            None => Ok(None),
        }
    };
    let (from_ns, to_ns) = (secs(from, "--from")?, secs(to, "--to")?);
    if let (Some(f), Some(t)) = (from_ns, to_ns) {
        if f > t {
            bail!("--from is after --to");
        }
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let rec = record::read(BufReader::new(file)).with_context(|| path.display().to_string())?;
    if rec.truncated {
        eprintln!("memkind-probe: {} ends early (the recorder did not finish): reporting up to its last whole frame", path.display());
    }
    let r = record::replay(&rec, from_ns, to_ns);
    if r.max_size_reached {
        eprintln!("memkind-probe: the recording stopped at its --max-size: figures end there");
    }
    let sum = Summary::build(&r.snapshot, &r.kinds, &r.extents);
    let target = format!("{} (recorded {})", r.meta.target, utc(rec.start_unix_ns));
    let ctx = Context {
        target,
        library: r.meta.library.clone(),
        stock: r.meta.stock,
    };
    let mut sink = Sink::open(output, Sink::Stdout)?;
    sink.write(&view::render(format, &sum, &ctx))?;
    Ok(0)
}

/// `2026-12-02 07:14:02 UTC` from ns since the epoch.
fn utc(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            super::utc(1_795_000_000_000_000_000),
            "2026-11-18 11:06:40 UTC"
        );
        assert_eq!(
            super::utc(951_782_400_000_000_000),
            "2000-02-29 00:00:00 UTC"
        );
    }
}
