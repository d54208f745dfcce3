//! The `record` file format and its replay by `report`.
//!
//! ```text
//! file   = header frame*
//! header = "MKPRBREC" (8 bytes) | version u32 LE (= 1) | flags u32 LE (0) | start_unix_ns u64 LE
//! frame  = len u32 LE | crc32 u32 LE | body            (len = body length, crc32 = CRC-32/ISO-HDLC of body)
//! body   = type u8 | payload
//! ```
//! Payload integers are unsigned LEB128 varints (signed ones zigzag-encoded first); strings are a
//! varint length and UTF-8 bytes. Every timestamp is in ns since the session start.
//!
//! | type | frame | payload |
//! |---|---|---|
//! | 1 | meta | target, library, flavor (0 ours, 1 stock) |
//! | 2 | snapshot | ts, lost, n × (tgid kind arena allocs frees reallocs bytes_requested bytes_allocated bytes_freed 16 × bucket), n × (tgid kind arena faults), n × (tgid other_faults), n × (tgid minor major) |
//! | 3 | kind event | ts, tgid, op, kind, backing, mbind_mode (signed), 4 × nodemask, name, dir |
//! | 4 | extent event | ts, tgid, op, addr, size, addr2, size2, kind, arena, mbind_mode (signed), backing, page_size, 4 × nodemask |
//! | 5 | exit | ts, tgid, code (signed) |
//! | 6 | end | ts, reason (0 target gone / stopped, 1 --max-size reached) |
//!
//! Snapshots are cumulative, so a time window is the difference of two of them. A file cut short
//! (the recorder was killed) is read up to its last whole frame and reported as truncated; a frame
//! whose CRC does not match is an error that names the frame and its offset.

use std::io::{self, Read, Write};

use anyhow::{bail, Context as _, Result};

use crate::model::{
    Counters, ExtentEvent, ExtentOp, Extents, Key, KindEvent, KindOp, KindTable, ProcessFaults,
    Snapshot, SIZE_BUCKETS,
};

/// First 8 bytes of a recording.
pub const MAGIC: &[u8; 8] = b"MKPRBREC";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 24;
/// Largest frame body accepted by the reader (a longer length is corruption).
pub const MAX_FRAME: u32 = 64 << 20;
/// Room kept for the end frame when a size limit is set.
const END_RESERVE: u64 = 64;

/// Why a recording ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The target exited or the user stopped the recorder.
    Stopped,
    /// `--max-size` was reached.
    MaxSize,
}

/// Whom and what the recording is of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// As in `view::Context::target`.
    pub target: String,
    /// The probed library.
    pub library: String,
    /// Intel's library through per-call uprobes.
    pub stock: bool,
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Meta data (first frame).
    Meta(Meta),
    /// Cumulative counters.
    Snapshot(Snapshot),
    /// A kind event.
    Kind {
        /// ns since start.
        ts_ns: u64,
        /// Process.
        tgid: u32,
        /// The event.
        ev: KindEvent,
    },
    /// An extent event.
    Extent {
        /// ns since start.
        ts_ns: u64,
        /// Process.
        tgid: u32,
        /// The event.
        ev: ExtentEvent,
    },
    /// A traced process exited.
    Exit {
        /// ns since start.
        ts_ns: u64,
        /// Process.
        tgid: u32,
        /// Exit code (wait status convention of the probe).
        code: i32,
    },
    /// The last frame of a complete recording.
    End {
        /// ns since start.
        ts_ns: u64,
        /// Why.
        reason: EndReason,
    },
}

// ---- encoding ----

fn put(b: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            b.push(byte);
            return;
        }
        b.push(byte | 0x80);
    }
}

fn put_i(b: &mut Vec<u8>, v: i64) {
    put(b, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_s(b: &mut Vec<u8>, s: &str) {
    put(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

fn kind_op(op: KindOp) -> u64 {
    match op {
        KindOp::Create => 1,
        KindOp::Destroy => 2,
        KindOp::Announce => 3,
    }
}

fn extent_op(op: ExtentOp) -> u64 {
    match op {
        ExtentOp::Alloc => 1,
        ExtentOp::Destroy => 2,
        ExtentOp::Purge => 3,
        ExtentOp::Split => 4,
        ExtentOp::Merge => 5,
        ExtentOp::Unmap => 6,
        ExtentOp::Announce => 7,
    }
}

fn counters(b: &mut Vec<u8>, c: &Counters) {
    for v in [
        c.allocs,
        c.frees,
        c.reallocs,
        c.bytes_requested,
        c.bytes_allocated,
        c.bytes_freed,
    ] {
        put(b, v);
    }
    for v in c.size_buckets {
        put(b, v);
    }
}

fn key(b: &mut Vec<u8>, k: &Key) {
    put(b, k.tgid.into());
    put(b, k.kind.into());
    put(b, k.arena.into());
}

/// The body (type and payload) of `f`.
pub fn encode(f: &Frame) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    match f {
        Frame::Meta(m) => {
            b.push(1);
            put_s(&mut b, &m.target);
            put_s(&mut b, &m.library);
            put(&mut b, m.stock.into());
        }
        Frame::Snapshot(s) => {
            b.push(2);
            put(&mut b, s.ts_ns);
            put(&mut b, s.lost_events);
            put(&mut b, s.counters.len() as u64);
            for (k, c) in &s.counters {
                key(&mut b, k);
                counters(&mut b, c);
            }
            put(&mut b, s.faults.len() as u64);
            for (k, v) in &s.faults {
                key(&mut b, k);
                put(&mut b, *v);
            }
            put(&mut b, s.other_faults.len() as u64);
            for (p, v) in &s.other_faults {
                put(&mut b, (*p).into());
                put(&mut b, *v);
            }
            put(&mut b, s.process_faults.len() as u64);
            for (p, v) in &s.process_faults {
                put(&mut b, (*p).into());
                put(&mut b, v.minor);
                put(&mut b, v.major);
            }
        }
        Frame::Kind { ts_ns, tgid, ev } => {
            b.push(3);
            put(&mut b, *ts_ns);
            put(&mut b, (*tgid).into());
            put(&mut b, kind_op(ev.op));
            put(&mut b, ev.kind.into());
            put(&mut b, ev.backing.into());
            put_i(&mut b, ev.mbind_mode.into());
            for w in ev.nodemask {
                put(&mut b, w);
            }
            put_s(&mut b, &ev.name);
            put_s(&mut b, &ev.dir);
        }
        Frame::Extent { ts_ns, tgid, ev } => {
            b.push(4);
            put(&mut b, *ts_ns);
            put(&mut b, (*tgid).into());
            put(&mut b, extent_op(ev.op));
            for v in [
                ev.addr,
                ev.size,
                ev.addr2,
                ev.size2,
                ev.kind.into(),
                ev.arena.into(),
            ] {
                put(&mut b, v);
            }
            put_i(&mut b, ev.mbind_mode.into());
            put(&mut b, ev.backing.into());
            put(&mut b, ev.page_size);
            for w in ev.nodemask {
                put(&mut b, w);
            }
        }
        Frame::Exit { ts_ns, tgid, code } => {
            b.push(5);
            put(&mut b, *ts_ns);
            put(&mut b, (*tgid).into());
            put_i(&mut b, (*code).into());
        }
        Frame::End { ts_ns, reason } => {
            b.push(6);
            put(&mut b, *ts_ns);
            put(&mut b, matches!(reason, EndReason::MaxSize).into());
        }
    }
    b
}

// ---- decoding ----

struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cur<'_> {
    fn u(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.b.get(self.at) else {
                bail!("payload ends inside a number")
            };
            self.at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("number longer than 64 bits")
    }
    fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.u()?).context("number out of range")
    }
    fn i(&mut self) -> Result<i64> {
        let v = self.u()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    fn i32(&mut self) -> Result<i32> {
        i32::try_from(self.i()?).context("number out of range")
    }
    fn s(&mut self) -> Result<String> {
        let n = usize::try_from(self.u()?)?;
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .context("string past the frame")?;
        let s = std::str::from_utf8(&self.b[self.at..end]).context("string not UTF-8")?;
        self.at = end;
        Ok(s.to_string())
    }
    fn key(&mut self) -> Result<Key> {
        Ok(Key {
            tgid: self.u32()?,
            kind: self.u32()?,
            arena: self.u32()?,
        })
    }
    fn counters(&mut self) -> Result<Counters> {
        let mut c = Counters {
            allocs: self.u()?,
            frees: self.u()?,
            reallocs: self.u()?,
            bytes_requested: self.u()?,
            bytes_allocated: self.u()?,
            bytes_freed: self.u()?,
            size_buckets: [0; SIZE_BUCKETS],
        };
        for v in &mut c.size_buckets {
            *v = self.u()?;
        }
        Ok(c)
    }
    fn count(&mut self) -> Result<usize> {
        let n = usize::try_from(self.u()?)?;
        // Each entry takes at least one byte: a larger count is corruption, not a reason to loop.
        if n > self.b.len() - self.at {
            bail!("entry count {n} larger than the frame");
        }
        Ok(n)
    }
    fn nodemask(&mut self) -> Result<[u64; 4]> {
        Ok([self.u()?, self.u()?, self.u()?, self.u()?])
    }
}

/// Decode one frame body.
pub fn decode(body: &[u8]) -> Result<Frame> {
    let (&ty, rest) = body.split_first().context("empty frame")?;
    let mut c = Cur { b: rest, at: 0 };
    let f = match ty {
        1 => Frame::Meta(Meta {
            target: c.s()?,
            library: c.s()?,
            stock: c.u()? != 0,
        }),
        2 => {
            let mut s = Snapshot {
                ts_ns: c.u()?,
                lost_events: c.u()?,
                ..Default::default()
            };
            for _ in 0..c.count()? {
                let k = c.key()?;
                s.counters.insert(k, c.counters()?);
            }
            for _ in 0..c.count()? {
                let k = c.key()?;
                s.faults.insert(k, c.u()?);
            }
            for _ in 0..c.count()? {
                let p = c.u32()?;
                s.other_faults.insert(p, c.u()?);
            }
            for _ in 0..c.count()? {
                let p = c.u32()?;
                s.process_faults.insert(
                    p,
                    ProcessFaults {
                        minor: c.u()?,
                        major: c.u()?,
                    },
                );
            }
            Frame::Snapshot(s)
        }
        3 => {
            let ts_ns = c.u()?;
            let tgid = c.u32()?;
            let op = match c.u()? {
                1 => KindOp::Create,
                2 => KindOp::Destroy,
                3 => KindOp::Announce,
                x => bail!("unknown kind op {x}"),
            };
            let ev = KindEvent {
                op,
                kind: c.u32()?,
                backing: c.u32()?,
                mbind_mode: c.i32()?,
                nodemask: c.nodemask()?,
                name: c.s()?,
                dir: c.s()?,
            };
            Frame::Kind { ts_ns, tgid, ev }
        }
        4 => {
            let ts_ns = c.u()?;
            let tgid = c.u32()?;
            let op = match c.u()? {
                1 => ExtentOp::Alloc,
                2 => ExtentOp::Destroy,
                3 => ExtentOp::Purge,
                4 => ExtentOp::Split,
                5 => ExtentOp::Merge,
                6 => ExtentOp::Unmap,
                7 => ExtentOp::Announce,
                x => bail!("unknown extent op {x}"),
            };
            let ev = ExtentEvent {
                op,
                addr: c.u()?,
                size: c.u()?,
                addr2: c.u()?,
                size2: c.u()?,
                kind: c.u32()?,
                arena: c.u32()?,
                mbind_mode: c.i32()?,
                backing: c.u32()?,
                page_size: c.u()?,
                nodemask: c.nodemask()?,
            };
            Frame::Extent { ts_ns, tgid, ev }
        }
        5 => Frame::Exit {
            ts_ns: c.u()?,
            tgid: c.u32()?,
            code: c.i32()?,
        },
        6 => Frame::End {
            ts_ns: c.u()?,
            reason: if c.u()? == 0 {
                EndReason::Stopped
            } else {
                EndReason::MaxSize
            },
        },
        x => bail!("unknown frame type {x}"),
    };
    if c.at != rest.len() {
        bail!("{} bytes left over in the frame", rest.len() - c.at);
    }
    Ok(f)
}

// ---- writer ----

/// Writes a recording, stopping at a size limit.
pub struct Writer<W: Write> {
    w: W,
    written: u64,
    max_size: u64,
    full: bool,
}

impl<W: Write> Writer<W> {
    /// Write the header; `max_size` bounds the whole file (header, frames and the end frame).
    pub fn new(mut w: W, start_unix_ns: u64, max_size: u64) -> io::Result<Self> {
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&start_unix_ns.to_le_bytes());
        w.write_all(&h)?;
        Ok(Writer {
            w,
            written: HEADER_LEN as u64,
            max_size,
            full: false,
        })
    }

    fn raw(&mut self, body: &[u8]) -> io::Result<()> {
        let mut h = [0u8; 8];
        h[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
        h[4..].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(body)?;
        self.written += 8 + body.len() as u64;
        Ok(())
    }

    /// Append `f`. Returns `Ok(false)` (and writes nothing, now or later) once the frame would
    /// take the file past the size limit.
    pub fn write(&mut self, f: &Frame) -> io::Result<bool> {
        if self.full {
            return Ok(false);
        }
        let body = encode(f);
        if self.written + 8 + body.len() as u64 + END_RESERVE > self.max_size {
            self.full = true;
            return Ok(false);
        }
        self.raw(&body)?;
        Ok(true)
    }

    /// True once the size limit stopped the recording.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Write the end frame (always fits: room was kept for it) and flush.
    pub fn finish(mut self, ts_ns: u64) -> io::Result<W> {
        let reason = if self.full {
            EndReason::MaxSize
        } else {
            EndReason::Stopped
        };
        let body = encode(&Frame::End { ts_ns, reason });
        self.raw(&body)?;
        self.w.flush()?;
        Ok(self.w)
    }
}

// ---- reader ----

/// A recording read back.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// Wall clock of the start, ns since the epoch.
    pub start_unix_ns: u64,
    /// Every whole frame, in order.
    pub frames: Vec<Frame>,
    /// The file ended inside a frame (or without an end frame): the recorder did not finish.
    pub truncated: bool,
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Read a recording. Errors name what is wrong: not a recording, another version, a frame
/// whose checksum does not match (with its number and byte offset).
pub fn read<R: Read>(mut r: R) -> Result<Recording> {
    let mut h = [0u8; HEADER_LEN];
    let n = read_full(&mut r, &mut h)?;
    if n < MAGIC.len() || &h[..8] != MAGIC {
        bail!(
            "not a memkind-probe recording (no {:?} header)",
            std::str::from_utf8(MAGIC).unwrap_or_default()
        );
    }
    if n < HEADER_LEN {
        bail!("recording truncated inside its header ({n} of {HEADER_LEN} bytes)");
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        bail!("recording format version {version}; this memkind-probe reads version {VERSION}");
    }
    let mut rec = Recording {
        start_unix_ns: u64::from_le_bytes(h[16..24].try_into().expect("8 bytes")),
        ..Default::default()
    };
    let mut offset = HEADER_LEN as u64;
    let mut ended = false;
    loop {
        let mut fh = [0u8; 8];
        let n = read_full(&mut r, &mut fh)?;
        if n == 0 {
            break;
        }
        if n < 8 {
            rec.truncated = true;
            break;
        }
        let len = u32::from_le_bytes(fh[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(fh[4..].try_into().expect("4 bytes"));
        let idx = rec.frames.len();
        if len == 0 || len > MAX_FRAME {
            bail!("recording corrupted: frame {idx} at byte {offset} claims {len} bytes");
        }
        let mut body = vec![0u8; len as usize];
        if read_full(&mut r, &mut body)? < body.len() {
            rec.truncated = true;
            break;
        }
        if crc32fast::hash(&body) != crc {
            bail!("recording corrupted: frame {idx} at byte {offset}: checksum mismatch");
        }
        let f = decode(&body)
            .with_context(|| format!("recording corrupted: frame {idx} at byte {offset}"))?;
        ended = matches!(f, Frame::End { .. });
        rec.frames.push(f);
        offset += 8 + u64::from(len);
    }
    if !ended {
        rec.truncated = true;
    }
    Ok(rec)
}

// ---- replay ----

/// What `report` draws for a window.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// The meta frame.
    pub meta: Meta,
    /// Counters of the window (`to` − `from`).
    pub snapshot: Snapshot,
    /// Kinds known at `to`.
    pub kinds: KindTable,
    /// Extents at `to`.
    pub extents: Extents,
    /// Processes that exited by `to`, with their codes.
    pub exits: Vec<(u32, i32)>,
    /// End of the recording (its last timestamp) in ns.
    pub last_ts_ns: u64,
    /// Recording stopped by `--max-size`.
    pub max_size_reached: bool,
}

/// Replay `rec` for the window `(from_ns, to_ns]`: the difference between the last snapshot at or
/// before `to_ns` and the last at or before `from_ns` (none: zero); kinds and extents as at `to_ns`.
pub fn replay(rec: &Recording, from_ns: Option<u64>, to_ns: Option<u64>) -> Replay {
    let to = to_ns.unwrap_or(u64::MAX);
    let mut out = Replay::default();
    let mut at_from: Option<&Snapshot> = None;
    let mut at_to: Option<&Snapshot> = None;
    for f in &rec.frames {
        match f {
            Frame::Meta(m) => out.meta = m.clone(),
            Frame::Snapshot(s) => {
                out.last_ts_ns = out.last_ts_ns.max(s.ts_ns);
                if from_ns.is_some_and(|from| s.ts_ns <= from) {
                    at_from = Some(s);
                }
                if s.ts_ns <= to {
                    at_to = Some(s);
                }
            }
            Frame::Kind { ts_ns, tgid, ev } if *ts_ns <= to => out.kinds.apply(*tgid, ev),
            Frame::Extent { ts_ns, tgid, ev } if *ts_ns <= to => out.extents.apply(*tgid, ev),
            Frame::Exit { ts_ns, tgid, code } if *ts_ns <= to => out.exits.push((*tgid, *code)),
            Frame::End { ts_ns, reason } => {
                out.last_ts_ns = out.last_ts_ns.max(*ts_ns);
                out.max_size_reached = *reason == EndReason::MaxSize;
            }
            _ => {}
        }
    }
    let empty = Snapshot::default();
    out.snapshot = at_to.unwrap_or(&empty).delta(at_from.unwrap_or(&empty));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(ts: u64, allocs: u64) -> Snapshot {
        let mut s = Snapshot {
            ts_ns: ts,
            lost_events: 1,
            ..Default::default()
        };
        let mut c = Counters {
            allocs,
            frees: allocs / 2,
            bytes_allocated: allocs * 64,
            ..Default::default()
        };
        c.size_buckets[2] = allocs;
        c.size_buckets[15] = u64::MAX;
        let k = Key {
            tgid: 9,
            kind: 0,
            arena: crate::model::NONE,
        };
        s.counters.insert(k, c);
        s.faults.insert(k, allocs / 10);
        s.other_faults.insert(9, 3);
        s.process_faults.insert(
            9,
            ProcessFaults {
                minor: allocs,
                major: 1,
            },
        );
        s
    }

    fn frames() -> Vec<Frame> {
        vec![
            Frame::Meta(Meta {
                target: "'./w'".into(),
                library: "/l/libmemkind.so.0".into(),
                stock: false,
            }),
            Frame::Kind {
                ts_ns: 5,
                tgid: 9,
                ev: KindEvent {
                    op: KindOp::Create,
                    kind: 30,
                    backing: 2,
                    mbind_mode: -1,
                    nodemask: [1, 0, 0, u64::MAX],
                    name: "PMEM:/mnt/é".into(),
                    dir: "/mnt/é".into(),
                },
            },
            Frame::Extent {
                ts_ns: 6,
                tgid: 9,
                ev: ExtentEvent {
                    op: ExtentOp::Alloc,
                    addr: 0x7f00_0000_0000,
                    size: 2 << 20,
                    addr2: 0,
                    size2: 0,
                    kind: 30,
                    arena: 4,
                    mbind_mode: 2,
                    backing: 2,
                    page_size: 4096,
                    nodemask: [3, 0, 0, 0],
                },
            },
            Frame::Snapshot(snap(1_000_000_000, 100)),
            Frame::Snapshot(snap(2_000_000_000, 250)),
            Frame::Exit {
                ts_ns: 2_500_000_000,
                tgid: 9,
                code: -9,
            },
            Frame::Snapshot(snap(3_000_000_000, 400)),
        ]
    }

    fn write_all(fs: &[Frame], max: u64) -> (Vec<u8>, bool) {
        let mut w = Writer::new(Vec::new(), 1_700_000_000_000_000_000, max).unwrap();
        let mut all = true;
        for f in fs {
            all &= w.write(f).unwrap();
        }
        (w.finish(3_100_000_000).unwrap(), all)
    }

    #[test]
    fn round_trip() {
        let (bytes, all) = write_all(&frames(), u64::MAX);
        assert!(all);
        let rec = read(&bytes[..]).unwrap();
        assert!(!rec.truncated);
        assert_eq!(rec.start_unix_ns, 1_700_000_000_000_000_000);
        let mut want = frames();
        want.push(Frame::End {
            ts_ns: 3_100_000_000,
            reason: EndReason::Stopped,
        });
        assert_eq!(rec.frames, want);
    }

    #[test]
    fn compact() {
        let (bytes, _) = write_all(&[Frame::Snapshot(snap(1, 100))], u64::MAX);
        // Header 24, frames 8 + body each: the row (22 counters, most zero) is a few dozen bytes.
        assert!(
            bytes.len() < 128,
            "a one-row snapshot takes {} bytes",
            bytes.len()
        );
    }

    #[test]
    fn windows() {
        let (bytes, _) = write_all(&frames(), u64::MAX);
        let rec = read(&bytes[..]).unwrap();
        let k = Key {
            tgid: 9,
            kind: 0,
            arena: crate::model::NONE,
        };
        let all = replay(&rec, None, None);
        assert_eq!(all.meta.target, "'./w'");
        assert_eq!(all.snapshot.counters[&k].allocs, 400);
        assert_eq!(all.snapshot.ts_ns, 3_000_000_000);
        assert_eq!(all.kinds.name(9, 30), "PMEM:/mnt/é");
        assert_eq!(all.extents.totals()[&(9, 30)].bytes_mapped, 2 << 20);
        assert_eq!(all.exits, vec![(9, -9)]);
        assert_eq!(all.last_ts_ns, 3_100_000_000);
        assert!(!all.max_size_reached);
        // (1.5 s, 2.5 s]: the snapshot at 2 s minus the one at 1 s.
        let w = replay(&rec, Some(1_500_000_000), Some(2_500_000_000));
        assert_eq!(w.snapshot.counters[&k].allocs, 150);
        assert_eq!(w.snapshot.process_faults[&9].minor, 150);
        assert_eq!(w.snapshot.lost_events, 0);
        // Before the first snapshot: nothing counted, kinds known so far.
        let early = replay(&rec, None, Some(10));
        assert!(early.snapshot.counters.is_empty());
        assert_eq!(early.kinds.name(9, 30), "PMEM:/mnt/é");
        let none = replay(&rec, None, Some(1));
        assert_eq!(none.kinds.name(9, 30), "kind#30");
    }

    #[test]
    fn truncated_file_reads_up_to_the_last_whole_frame() {
        let (bytes, _) = write_all(&frames(), u64::MAX);
        let whole = read(&bytes[..]).unwrap().frames.len();
        for cut in [bytes.len() - 1, bytes.len() - 3, bytes.len() - 20] {
            let rec = read(&bytes[..cut]).unwrap();
            assert!(rec.truncated, "cut at {cut}");
            assert!(rec.frames.len() < whole);
            assert_eq!(rec.frames[..], frames()[..rec.frames.len()]);
        }
        let rec = read(&bytes[..HEADER_LEN]).unwrap();
        assert!(rec.truncated && rec.frames.is_empty());
        let e = read(&bytes[..12]).unwrap_err().to_string();
        assert!(e.contains("truncated inside its header"), "{e}");
    }

    #[test]
    fn corruption_is_a_clear_error() {
        let (mut bytes, _) = write_all(&frames(), u64::MAX);
        // Flip a byte inside the second frame's body.
        let first_len =
            u32::from_le_bytes(bytes[HEADER_LEN..HEADER_LEN + 4].try_into().unwrap()) as usize;
        let second = HEADER_LEN + 8 + first_len;
        bytes[second + 10] ^= 0x40;
        let e = read(&bytes[..]).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("recording corrupted: frame 1 at byte {second}: checksum mismatch")
        );
        // An absurd length.
        let (mut b2, _) = write_all(&frames(), u64::MAX);
        b2[HEADER_LEN + 3] = 0xff;
        let e = read(&b2[..]).unwrap_err().to_string();
        assert!(e.contains("frame 0 at byte 24 claims"), "{e}");
        // Not a recording, another version.
        assert!(read(&b"hello world, this is not it"[..])
            .unwrap_err()
            .to_string()
            .contains("not a memkind-probe recording"));
        let (mut b3, _) = write_all(&frames(), u64::MAX);
        b3[8] = 2;
        assert_eq!(
            read(&b3[..]).unwrap_err().to_string(),
            "recording format version 2; this memkind-probe reads version 1"
        );
        // A valid checksum over a body that does not decode.
        let mut b4 = Writer::new(Vec::new(), 0, u64::MAX).unwrap();
        b4.raw(&[2, 0x80]).unwrap();
        let e = format!("{:#}", read(&b4.finish(0).unwrap()[..]).unwrap_err());
        assert!(
            e.contains("frame 0") && e.contains("ends inside a number"),
            "{e}"
        );
    }

    #[test]
    fn size_limit_stops_cleanly() {
        let (full, _) = write_all(&frames(), u64::MAX);
        let limit = (full.len() / 2) as u64;
        let (bytes, all) = write_all(&frames(), limit);
        assert!(!all);
        assert!(bytes.len() as u64 <= limit, "{} > {limit}", bytes.len());
        let rec = read(&bytes[..]).unwrap();
        assert!(!rec.truncated, "a limited recording still ends properly");
        assert!(matches!(
            rec.frames.last(),
            Some(Frame::End {
                reason: EndReason::MaxSize,
                ..
            })
        ));
        assert!(replay(&rec, None, None).max_size_reached);
        // Nothing is written after the first frame that does not fit, even a small one.
        let mut w = Writer::new(Vec::new(), 0, 200).unwrap();
        assert!(!w.write(&Frame::Snapshot(snap(1, 100))).unwrap() || w.written() < 200);
        while w
            .write(&Frame::Exit {
                ts_ns: 1,
                tgid: 1,
                code: 0,
            })
            .unwrap()
        {}
        assert!(w.is_full());
        assert!(!w
            .write(&Frame::Exit {
                ts_ns: 1,
                tgid: 1,
                code: 0
            })
            .unwrap());
    }
}
