//! `memkind-probe top`: samples from the collector on a timer into a [`TopState`], keys from the
//! terminal, frames from [`crate::view::top::draw`]; without a terminal (or with `--once`) the
//! same table as text on stdout every interval.
//!
//! The loop reads the collector through [`Source`], so its timing and its text output are tested
//! with a fake source; the session adapter is [`SessionSource`].

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::{catch_signals, summarize};
use crate::collect::placement::{Budget, Refresher};
use crate::collect::procfs::Proc;
use crate::collect::{sys, Request, RunStats, Session, Target};
use crate::view::top::state::ProgSample;
use crate::view::top::terminal::{self, TermEvent, Tui};
use crate::view::top::{text, Outcome, Sample, TopState};
use crate::view::{self, Context, Format};

/// `memkind-probe top`: attach, run the view, detach; for a command, wait for it to end (its
/// exit status is ours).
pub fn command(req: &Request, format: Format, interval_ms: u64, once: bool) -> Result<i32> {
    catch_signals()?;
    let interval = Duration::from_millis(interval_ms.max(1));
    let tui = !once && std::io::stdout().is_terminal();
    let session = Session::start(req)?;
    let multi = match &req.target {
        Target::All => true,
        Target::Pids(p) => p.len() > 1,
        Target::Command(_) => false,
    };
    let mut src = SessionSource::new(session, interval, tui);
    let title = src.session.target.clone();
    let r = run(
        &mut src,
        &title,
        Options {
            interval,
            once,
            format,
            multi,
        },
    );
    let SessionSource { session, .. } = src;
    if let (Ok(()), Some(pid)) = (&r, session.child()) {
        if tui && !sys::alive(pid) {
            // Gone already: finish() reaps it.
        } else if tui {
            eprintln!(
                "memkind-probe: waiting for {} (pid {pid}) to end; Ctrl-C stops it",
                session.target
            );
        }
    }
    let status = session.finish()?;
    r?;
    Ok(status.map_or(0, |st| st.code()))
}

/// Longest wait before looking at signals and the target again.
const TICK: Duration = Duration::from_millis(250);

/// What the target is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Still there.
    Running,
    /// Gone (the command exited, every `-p` process did): why, for the status line.
    Ended(String),
    /// A stop signal (SIGINT, SIGTERM, SIGHUP) came.
    Stopped,
}

/// The collector as `top` uses it.
pub trait Source {
    /// Take in the collector's events for up to `timeout`; what the target is doing.
    fn wait(&mut self, timeout: Duration) -> Result<Status>;
    /// The figures now (cumulative since the probe attached).
    fn sample(&mut self) -> Result<Sample>;
    /// The view context (target, library) for JSON and OpenMetrics output.
    fn context(&self) -> Context;
}

/// How `top` was asked to run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Refresh interval.
    pub interval: Duration,
    /// One table after one interval, then stop.
    pub once: bool,
    /// Format of the printed tables (the TUI ignores it).
    pub format: Format,
    /// Start on the process list.
    pub multi: bool,
}

/// The interactive view when stdout is a terminal (and not `--once`), else printed tables.
pub fn run(src: &mut dyn Source, title: &str, o: Options) -> Result<()> {
    let mut state = TopState::new(title, o.interval.as_millis() as u64, o.multi);
    if !o.once && std::io::stdout().is_terminal() {
        interactive(src, &mut state, o.interval)
    } else {
        let mut out = std::io::stdout().lock();
        printed(src, &mut state, o, &mut |s| {
            out.write_all(s.as_bytes())?;
            out.flush()
        })
    }
}

/// Print the table every interval (`--once`: once, after one interval). The first sample is the
/// baseline of the first interval's rates.
pub fn printed(
    src: &mut dyn Source,
    state: &mut TopState,
    o: Options,
    out: &mut dyn FnMut(&str) -> std::io::Result<()>,
) -> Result<()> {
    state.update(src.sample()?);
    let mut next = Instant::now() + o.interval;
    loop {
        let now = Instant::now();
        let status = src.wait(next.saturating_duration_since(now).min(TICK))?;
        let stop = status != Status::Running;
        if stop || Instant::now() >= next {
            let s = src.sample()?;
            // JSON and OpenMetrics: the collector's cumulative summary, as `stat` prints it.
            let other = (o.format != Format::Text)
                .then(|| view::render(o.format, &s.summary, &src.context()));
            if let Status::Ended(why) = &status {
                state.ended = Some(why.clone());
            }
            state.update(s);
            let text = other.unwrap_or_else(|| text::render(state) + "\n");
            out(&text).context("writing the table")?;
            // The next deadline from now: a slow refresh never turns into a burst of them.
            next = (next + o.interval).max(Instant::now());
            if stop || o.once {
                return Ok(());
            }
        }
    }
}

/// The TUI until `q`, Esc, Ctrl-C or a stop signal.
fn interactive(src: &mut dyn Source, state: &mut TopState, interval: Duration) -> Result<()> {
    let mut tui = Tui::enter().context("cannot set up the terminal")?;
    let mut next = Instant::now();
    let mut dirty = true;
    loop {
        let now = Instant::now();
        if state.ended.is_none() && now >= next {
            // While paused nothing is read from the probe; the first sample after the pause
            // covers the whole pause (its rates are the pause's average).
            if !state.paused {
                state.update(src.sample()?);
                dirty = true;
            }
            next = (next + interval).max(now);
        }
        if dirty {
            tui.draw(state)?;
            state.page_rows = tui.visible_rows();
            dirty = false;
        }
        let wait = if state.ended.is_some() {
            TICK
        } else {
            next.saturating_duration_since(Instant::now()).min(TICK)
        };
        match terminal::next_event(wait)? {
            Some(TermEvent::Key(k)) => match state.input(k) {
                Outcome::Quit => break,
                Outcome::Redraw => dirty = true,
                Outcome::Repaint => {
                    tui.clear()?;
                    dirty = true;
                }
                Outcome::Ignored => {}
            },
            Some(TermEvent::Resize) => dirty = true,
            None => {}
        }
        if state.ended.is_none() {
            match src.wait(Duration::ZERO)? {
                Status::Running => {}
                Status::Stopped => break,
                Status::Ended(why) => {
                    // The last figures, then keep them on screen until the user quits.
                    if !state.paused {
                        state.update(src.sample()?);
                    }
                    state.ended = Some(format!("{why}; q to quit"));
                    dirty = true;
                }
            }
        } else if src.wait(Duration::ZERO)? == Status::Stopped {
            break;
        }
    }
    drop(tui);
    Ok(())
}

/// `top` over a probe session: snapshots, summaries, placement, process names, BPF run times.
pub struct SessionSource {
    /// The attached session.
    pub session: Session,
    placement: Refresher,
    names: BTreeMap<u32, String>,
    proc: Proc,
    _run_stats: Option<RunStats>,
    progs_note: Option<String>,
}

impl SessionSource {
    /// Over `session`; BPF run-time statistics on while it lives when `run_stats`.
    pub fn new(session: Session, interval: Duration, run_stats: bool) -> SessionSource {
        let (guard, note) = if run_stats {
            match session.enable_run_stats() {
                Ok(g) => (Some(g), None),
                Err(e) => (None, Some(format!("unavailable ({e:#})"))),
            }
        } else {
            (None, Some("off".to_string()))
        };
        SessionSource {
            session,
            placement: Refresher::new(interval, Budget::default()),
            names: BTreeMap::new(),
            proc: Proc::default(),
            _run_stats: guard,
            progs_note: note,
        }
    }
}

impl Source for SessionSource {
    fn wait(&mut self, timeout: Duration) -> Result<Status> {
        match self.session.poll(timeout, |_, _| {}) {
            Ok(()) => {}
            Err(_) if sys::stop_signal().is_some() => return Ok(Status::Stopped),
            Err(e) => return Err(e),
        }
        if sys::stop_signal().is_some() {
            return Ok(Status::Stopped);
        }
        if self.session.targets_gone()? {
            return Ok(Status::Ended(match self.session.child_status()? {
                Some(st) => format!("the command exited (status {})", st.code()),
                None => "every process exited".to_string(),
            }));
        }
        Ok(Status::Running)
    }

    fn sample(&mut self) -> Result<Sample> {
        let snap = self.session.snapshot()?;
        let mut summary = summarize(&self.session, &snap);
        let pids = summary.pids();
        // Placement every interval (the refresher keeps its own CPU share bounded), the last
        // refresh of each process kept.
        let placed = self
            .placement
            .tick(&self.session.extents, snap.ts_ns, false)
            .is_ok();
        summary.add_placement(self.placement.last(), &self.session.kinds);
        self.names.retain(|p, _| pids.binary_search(p).is_ok());
        for &p in &pids {
            let proc = &self.proc;
            self.names
                .entry(p)
                .or_insert_with(|| proc.comm(p).unwrap_or_default());
        }
        Ok(Sample {
            ts_ns: snap.ts_ns,
            summary,
            kinds: self.session.kinds.clone(),
            placement: placed,
            progs: self
                .session
                .prog_stats()
                .into_iter()
                .map(|(name, run_cnt, run_time_ns)| ProgSample {
                    name,
                    run_cnt,
                    run_time_ns,
                })
                .collect(),
            names: self.names.clone(),
            progs_note: self.progs_note.clone(),
            placement_cost: placed.then(|| {
                let c = &self.placement.cost;
                (c.pages_queried, c.pages_total, c.cpu_s)
            }),
        })
    }

    fn context(&self) -> Context {
        super::context(&self.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArenaRow, Counters, KindRow, ProcessRow, Summary};

    /// A source whose counts grow by 1000 allocs per sample, ending after `end_after` samples.
    struct Fake {
        samples: u64,
        end_after: u64,
        t0: Instant,
    }

    impl Source for Fake {
        fn wait(&mut self, timeout: Duration) -> Result<Status> {
            std::thread::sleep(timeout.min(Duration::from_millis(5)));
            Ok(if self.samples >= self.end_after {
                Status::Ended("command exited (status 0)".into())
            } else {
                Status::Running
            })
        }

        fn sample(&mut self) -> Result<Sample> {
            let n = self.samples * 1000;
            self.samples += 1;
            let c = Counters {
                allocs: n,
                frees: n,
                ..Default::default()
            };
            let k = KindRow {
                name: "MEMKIND_DEFAULT".into(),
                counters: c,
                arenas: vec![ArenaRow {
                    arena: Some(0),
                    counters: c,
                    page_faults: 0,
                }],
                ..Default::default()
            };
            Ok(Sample {
                ts_ns: self.t0.elapsed().as_nanos() as u64,
                summary: Summary {
                    processes: vec![ProcessRow {
                        pid: 1,
                        kinds: vec![k.clone()],
                        ..Default::default()
                    }],
                    kinds: vec![k],
                    ..Default::default()
                },
                ..Default::default()
            })
        }

        fn context(&self) -> Context {
            Context::default()
        }
    }

    fn opts(ms: u64, once: bool, format: Format) -> Options {
        Options {
            interval: Duration::from_millis(ms),
            once,
            format,
            multi: false,
        }
    }

    #[test]
    fn once_prints_one_table_after_one_interval() {
        let mut src = Fake {
            samples: 0,
            end_after: u64::MAX,
            t0: Instant::now(),
        };
        let mut st = TopState::new("x", 50, false);
        let mut out = Vec::new();
        let t = Instant::now();
        printed(&mut src, &mut st, opts(50, true, Format::Text), &mut |s| {
            out.push(s.to_string());
            Ok(())
        })
        .unwrap();
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(src.samples, 2, "a baseline and one sample");
        assert_eq!(out.len(), 1);
        let row = out[0]
            .lines()
            .find(|l| l.trim_start().starts_with("MEMKIND_DEFAULT"))
            .unwrap();
        let rate: f64 = row
            .split_whitespace()
            .nth(1)
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        // 1000 allocs in a bit more than 50 ms.
        assert!(rate > 5_000.0 && rate <= 20_000.0, "{row}");
        assert!(out[0].contains("  arena 0"), "{}", out[0]);
    }

    #[test]
    fn every_interval_until_the_target_ends() {
        let mut src = Fake {
            samples: 0,
            end_after: 4,
            t0: Instant::now(),
        };
        let mut st = TopState::new("x", 20, false);
        let mut out = Vec::new();
        printed(&mut src, &mut st, opts(20, false, Format::Text), &mut |s| {
            out.push(s.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(out[3].contains("command exited (status 0)"), "{}", out[3]);
        // Other formats print the collector's summary as `stat` does.
        let mut src = Fake {
            samples: 0,
            end_after: u64::MAX,
            t0: Instant::now(),
        };
        let mut st = TopState::new("x", 10, false);
        let mut json = String::new();
        printed(&mut src, &mut st, opts(10, true, Format::Json), &mut |s| {
            json.push_str(s);
            Ok(())
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(v.is_object(), "{json}");
    }
}
