//! The command line (clap derive).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::collect::Target;
use crate::view::Format;

/// Per-kind, per-arena allocation and page-fault statistics of memkind programs, from eBPF.
///
/// Attaches to memkind-rs's libmemkind.so.0 (exact counters kept in the process, handed over in
/// batches: near-zero cost), or to Intel's memkind 1.14 through a uprobe on every call (slow).
/// Needs root, or CAP_BPF and CAP_PERFMON.
#[derive(Debug, Parser)]
#[command(name = "memkind-probe", version, propagate_version = true)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Whom to observe (one of them).
#[derive(Debug, Args, Clone)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// Running processes (comma-separated pids).
    #[arg(
        short = 'p',
        long = "pid",
        value_name = "PID[,PID]",
        value_delimiter = ','
    )]
    pub pids: Vec<u32>,
    /// Every process that maps the library.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// A command to run under the probe (after `--`); it starts only once the probe is attached.
    #[arg(last = true, value_name = "CMD ARGS")]
    pub cmd: Vec<OsString>,
}

impl TargetArgs {
    /// As the collector's target.
    pub fn target(&self) -> Target {
        if self.all {
            Target::All
        } else if !self.pids.is_empty() {
            Target::Pids(self.pids.clone())
        } else {
            Target::Command(self.cmd.clone())
        }
    }
}

/// Where the probe attaches.
#[derive(Debug, Args, Clone)]
pub struct ProbeArgs {
    /// The memkind library to probe. Default: for a command, the libmemkind.so.0 the dynamic
    /// loader would find (LD_LIBRARY_PATH, then the ldconfig cache); for -p, the libmemkind.so*
    /// the process maps (or its executable, when memkind-rs is linked into it).
    #[arg(long, value_name = "PATH")]
    pub library: Option<PathBuf>,
    /// Only processes in this cgroup (v2 directory).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Count allocations, frees, bytes and page faults per kind and arena, like `perf stat`.
    ///
    /// With `-- CMD`, the summary comes when the command exits (or on Ctrl-C), on stderr or in
    /// -o FILE; the command's own output is untouched and its exit status is memkind-probe's.
    Stat {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        probe: ProbeArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write the summary here instead of stderr.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Also print the figures of every interval of MS milliseconds (deltas).
        #[arg(short = 'I', long = "interval", value_name = "MS")]
        interval: Option<u64>,
        /// Query where the kinds' pages are (per NUMA node, huge or base) every MS milliseconds
        /// while the target lives; the summary shows the last placement taken. 0: none. The
        /// probe's CPU for it stays under 5 % of a CPU whatever MS.
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        placement_interval: u64,
    },
    /// Print every call as one JSON line (time, tid, call, kind, arena, size, pointer, result,
    /// latency).
    ///
    /// Slow by nature: a uprobe and a uretprobe trap on every call (about a microsecond each),
    /// so a malloc-heavy program runs many times slower. Records the ring buffer could not take
    /// are counted and reported at the end. For counts, use `stat`.
    Trace {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        probe: ProbeArgs,
        /// Write the lines here instead of stderr.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Record counter snapshots and every kind, extent and exit event to a compact binary file,
    /// for `report`.
    Record {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        probe: ProbeArgs,
        /// The recording.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Stop recording (with a message) when the file would grow past this size (K, M, G
        /// suffixes: KiB, MiB, GiB).
        #[arg(long, value_name = "BYTES", default_value = "256M", value_parser = parse_size)]
        max_size: u64,
        /// Snapshot the counters every MS milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        snapshot_every: u64,
    },
    /// Replay a recording as the same text / JSON / OpenMetrics as `stat`.
    Report {
        /// The recording.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write here instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Start of the window, seconds since the recording started (figures after the last
        /// snapshot at or before it).
        #[arg(long, value_name = "SECS")]
        from: Option<f64>,
        /// End of the window, seconds since the recording started (up to the last snapshot at or
        /// before it).
        #[arg(long, value_name = "SECS")]
        to: Option<f64>,
    },
    /// Serve the figures as OpenMetrics on /metrics over HTTP (refreshed on every scrape).
    Serve {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        probe: ProbeArgs,
        /// Address to listen on (loopback by default: the figures name processes and paths).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
        listen: SocketAddr,
    },
    /// Live per-kind table. Without a terminal (or with --once) prints the text table every
    /// interval; on a terminal, an interactive table (sort, expand, filter, pause: keys on its
    /// last line).
    Top {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        probe: ProbeArgs,
        /// Print one table after one interval and stop observing.
        #[arg(long)]
        once: bool,
        /// Refresh interval in milliseconds.
        #[arg(
            short = 'I',
            long = "interval",
            value_name = "MS",
            default_value_t = 1000
        )]
        interval: u64,
        /// Output format of the printed tables.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// `123`, `64K`, `256M`, `1G` (binary units) → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 1u64),
        Some((i, _)) => {
            let m = match t[i..]
                .to_ascii_uppercase()
                .trim_end_matches("IB")
                .trim_end_matches('B')
            {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => {
                    return Err(format!(
                        "{s:?}: a size is a number with an optional K, M, G or T suffix"
                    ))
                }
            };
            (&t[..i], m)
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: a size is a number with an optional K, M, G or T suffix"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2mb"), Ok(2 << 20));
        assert!(parse_size("x").is_err());
        assert!(parse_size("12Q").is_err());
    }

    #[test]
    fn command_line() {
        Cli::command().debug_assert();
        let c = Cli::try_parse_from([
            "memkind-probe",
            "stat",
            "--format",
            "json",
            "-I",
            "100",
            "--",
            "./a.out",
            "-x",
        ])
        .unwrap();
        let Command::Stat {
            target,
            format,
            interval,
            ..
        } = c.command
        else {
            panic!()
        };
        assert_eq!(
            target.target(),
            Target::Command(vec!["./a.out".into(), "-x".into()])
        );
        assert_eq!((format, interval), (Format::Json, Some(100)));
        let c = Cli::try_parse_from(["memkind-probe", "stat", "-p", "1,2"]).unwrap();
        let Command::Stat { target, .. } = c.command else {
            panic!()
        };
        assert_eq!(target.target(), Target::Pids(vec![1, 2]));
        // Exactly one target.
        assert!(Cli::try_parse_from(["memkind-probe", "stat"]).is_err());
        assert!(Cli::try_parse_from(["memkind-probe", "stat", "-p", "1", "--all"]).is_err());
        assert!(Cli::try_parse_from(["memkind-probe", "stat", "-p", "1", "--", "x"]).is_err());
        let c = Cli::try_parse_from([
            "memkind-probe",
            "record",
            "-o",
            "f",
            "--max-size",
            "1M",
            "--all",
        ])
        .unwrap();
        assert!(matches!(
            c.command,
            Command::Record {
                max_size: 1_048_576,
                ..
            }
        ));
        let c = Cli::try_parse_from(["memkind-probe", "report", "f", "--from", "1.5", "--to", "3"])
            .unwrap();
        assert!(matches!(
            c.command,
            Command::Report {
                from: Some(_),
                to: Some(_),
                ..
            }
        ));
        let c = Cli::try_parse_from(["memkind-probe", "serve", "-p", "5"]).unwrap();
        let Command::Serve { listen, .. } = c.command else {
            panic!()
        };
        assert_eq!(listen.to_string(), "127.0.0.1:9464");
    }
}
