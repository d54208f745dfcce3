//! Views: a [`Summary`] drawn as text, JSON or OpenMetrics. Pure functions from the model to a
//! `String`; where the string goes (stderr, a file, an HTTP response) is the command's business.
//! A terminal UI (ratatui) is to be added here as one more view over the same [`Summary`].

pub mod json;
pub mod openmetrics;
pub mod text;
pub mod trace;

use crate::model::Summary;

/// What a summary is about, for headers and labels.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The target as a person wrote it: `'CMD ARGS'`, `pid 123`, `all processes`.
    pub target: String,
    /// The library (or executable) probed.
    pub library: String,
    /// Intel's memkind 1.14 through per-call uprobes (slow) rather than ours (counters).
    pub stock: bool,
}

/// Output formats of `stat`, `report` and `top --once`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A perf-stat-like table.
    Text,
    /// One JSON document (see the README for its schema).
    Json,
    /// OpenMetrics text exposition, ending with `# EOF`.
    Openmetrics,
}

/// Draw `s` in `format`.
pub fn render(format: Format, s: &Summary, ctx: &Context) -> String {
    match format {
        Format::Text => text::render(s, ctx),
        Format::Json => json::render(s, ctx),
        Format::Openmetrics => openmetrics::render(s, &openmetrics::Limits::default()),
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A summary for the views' tests.
    use crate::model::{
        ArenaRow, Counters, ExtentTotals, KindRow, ProcessFaults, ProcessRow, Summary,
    };

    /// One process, DEFAULT with two arenas and a PMEM kind whose name needs escaping.
    pub fn sample() -> Summary {
        let c = |a, f, ba, bf| Counters {
            allocs: a,
            frees: f,
            bytes_allocated: ba,
            bytes_freed: bf,
            ..Default::default()
        };
        let mut dc = c(10, 4, 1000, 400);
        dc.size_buckets[0] = 10;
        let default = KindRow {
            name: "MEMKIND_DEFAULT".into(),
            id: 0,
            counters: dc,
            page_faults: 3,
            extents: ExtentTotals {
                count: 1,
                bytes_mapped: 2 << 20,
                bytes_purged: 0,
            },
            arenas: vec![
                ArenaRow {
                    arena: Some(0),
                    counters: c(6, 4, 600, 400),
                    page_faults: 1,
                },
                ArenaRow {
                    arena: Some(1),
                    counters: c(4, 0, 400, 0),
                    page_faults: 2,
                },
            ],
            placement: None,
        };
        let pmem = KindRow {
            name: "PMEM:/mnt/\"x\"".into(),
            id: 30,
            counters: c(1, 1, 64, 64),
            page_faults: 0,
            extents: ExtentTotals::default(),
            arenas: vec![ArenaRow {
                arena: None,
                counters: c(1, 1, 64, 64),
                page_faults: 0,
            }],
            placement: None,
        };
        Summary {
            duration_ns: 1_500_000_000,
            processes: vec![ProcessRow {
                pid: 42,
                kinds: vec![default.clone(), pmem.clone()],
                other_page_faults: 7,
                process_faults: ProcessFaults {
                    minor: 20,
                    major: 1,
                },
            }],
            kinds: vec![default, pmem],
            other_page_faults: 7,
            process_faults: ProcessFaults {
                minor: 20,
                major: 1,
            },
            lost_events: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0u64), "0");
        assert_eq!(thousands(999u64), "999");
        assert_eq!(thousands(1000u64), "1,000");
        assert_eq!(thousands(1234567u64), "1,234,567");
        assert_eq!(thousands(-1234i64), "-1,234");
    }
}
