//! One module per subcommand: each wires a [`Session`] (collection) to a view.

mod record;
mod serve;
mod stat;
mod top;
mod trace;

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::cli::{Command, ProbeArgs, TargetArgs};
use crate::collect::{sys, Flavor, Request, Session};
use crate::model::{Snapshot, Summary};
use crate::view::Context;

/// Run `cmd`; the process exit status on success.
pub fn run(cmd: Command) -> Result<i32> {
    match cmd {
        Command::Stat {
            target,
            probe,
            format,
            output,
            interval,
            placement_interval,
        } => stat::run(
            &request(&target, &probe, false),
            format,
            output.as_deref(),
            interval,
            placement_interval,
        ),
        Command::Top {
            target,
            probe,
            once,
            interval,
            format,
        } => top::command(&request(&target, &probe, false), format, interval, once),
        Command::Trace {
            target,
            probe,
            output,
        } => trace::run(&request(&target, &probe, true), output.as_deref()),
        Command::Record {
            target,
            probe,
            output,
            max_size,
            snapshot_every,
        } => record::record(
            &request(&target, &probe, false),
            &output,
            max_size,
            snapshot_every,
        ),
        Command::Report {
            file,
            format,
            output,
            from,
            to,
        } => record::report(&file, format, output.as_deref(), from, to),
        Command::Serve {
            target,
            probe,
            listen,
        } => serve::run(&request(&target, &probe, false), listen),
    }
}

fn request(t: &TargetArgs, p: &ProbeArgs, trace: bool) -> Request {
    Request {
        target: t.target(),
        library: p.library.clone(),
        cgroup: p.cgroup.clone(),
        trace,
    }
}

/// Where a view's text goes.
pub enum Sink {
    /// Standard error (the default: the target owns stdout).
    Stderr,
    /// Standard output.
    Stdout,
    /// A file.
    File(File),
}

impl Sink {
    /// `-o FILE`, else `default`.
    pub fn open(path: Option<&Path>, default: Sink) -> Result<Sink> {
        match path {
            Some(p) => {
                Ok(Sink::File(File::create(p).with_context(|| {
                    format!("cannot create {}", p.display())
                })?))
            }
            None => Ok(default),
        }
    }

    /// Write `s` whole, flushed.
    pub fn write(&mut self, s: &str) -> io::Result<()> {
        match self {
            Sink::Stderr => {
                let mut e = io::stderr().lock();
                e.write_all(s.as_bytes())?;
                e.flush()
            }
            Sink::Stdout => {
                let mut o = io::stdout().lock();
                o.write_all(s.as_bytes())?;
                o.flush()
            }
            Sink::File(f) => {
                f.write_all(s.as_bytes())?;
                f.flush()
            }
        }
    }
}

/// The view context of a session.
pub fn context(s: &Session) -> Context {
    Context {
        target: s.target.clone(),
        library: s.library.display().to_string(),
        stock: s.flavor == Flavor::Stock,
    }
}

/// The summary of `snap` with the session's kinds and extents (and the last placement).
pub fn summarize(s: &Session, snap: &Snapshot) -> Summary {
    let mut sum = Summary::build(snap, &s.kinds, &s.extents);
    if let Some(p) = &s.placement {
        sum.add_placement(p.last(), &s.kinds);
    }
    sum
}

/// Catch Ctrl-C and friends (see [`sys::catch_stop_signals`]).
pub fn catch_signals() -> Result<()> {
    sys::catch_stop_signals().context("cannot install signal handlers")
}
