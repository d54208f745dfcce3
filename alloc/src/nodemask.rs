//! Fixed-capacity NUMA node sets and the numactl node-list syntax.
//!
//! [`Nodemask`] is a `Copy` bitset of up to [`MAX_NUMA_NODES`] nodes laid out exactly as the
//! kernel's `unsigned long` node masks on 64-bit Linux, so [`Nodemask::as_words`] can be handed
//! to `mbind(2)` / `set_mempolicy(2)` with `maxnode = `[`Nodemask::MAXNODE`].
//!
//! Two parsers live here:
//! - [`Nodemask::parse_nodelist`]: the plain list syntax (`"0"`, `"0-3"`, `"1,3-5"`) used by
//!   sysfs files and by users; strict (see its doc).
//! - [`NodeSpec`]: what memkind 1.14 accepts in `MEMKIND_HBW_NODES` / `MEMKIND_DAX_KMEM_NODES`
//!   through libnuma's `numa_parse_nodestring` (list syntax plus `all` and a leading `!`). Its
//!   meaning depends on the machine, so it is parsed once and [`NodeSpec::resolve`]d against a
//!   topology.

use std::fmt;

/// Number of NUMA nodes a [`Nodemask`] can hold (the kernel's `MAX_NUMNODES` with
/// `CONFIG_NODES_SHIFT=10`, as in Debian's x86-64 kernels).
pub const MAX_NUMA_NODES: usize = 1024;

const WORDS: usize = MAX_NUMA_NODES / 64;

/// A set of NUMA node ids in `0..MAX_NUMA_NODES`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Nodemask {
    words: [u64; WORDS],
}

/// Why a node list was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodelistError {
    /// The string is empty (libnuma would return an empty mask; we refuse).
    #[error("empty node list")]
    Empty,
    /// Something that is not a node number, `,`, `-` (or `all` / `!` where allowed).
    #[error("unparseable node list {input:?} at byte {at}")]
    Garbage {
        /// The whole input.
        input: String,
        /// Byte offset of the first offending character.
        at: usize,
    },
    /// A range whose end is below its start, e.g. `"3-1"`.
    #[error("reversed node range {lo}-{hi}")]
    Reversed {
        /// First number of the range.
        lo: u32,
        /// Second number of the range.
        hi: u32,
    },
    /// A node number at or above [`MAX_NUMA_NODES`].
    #[error("node {0} is out of range (max {max})", max = MAX_NUMA_NODES - 1)]
    TooLarge(u64),
    /// A node that is not in the process's allowed memory nodes (libnuma: "node argument %d is
    /// out of range").
    #[error("node {0} is not an allowed memory node")]
    NotAllowed(u32),
}

impl Nodemask {
    /// `maxnode` to pass to `mbind(2)`, `set_mempolicy(2)` and `get_mempolicy(2)` together with
    /// [`Nodemask::as_words`]: the kernel decrements `maxnode` before use and reads that many
    /// bits, so `MAX_NUMA_NODES + 1` makes it read exactly our 1024 bits (libnuma passes
    /// `bitmask.size + 1` for the same reason).
    #[cfg(test)]
    pub const MAXNODE: u64 = MAX_NUMA_NODES as u64 + 1;

    /// The empty set.
    pub const fn new() -> Self {
        Nodemask { words: [0; WORDS] }
    }

    /// A set holding `node` alone (empty if `node` is out of range).
    pub fn single(node: u32) -> Self {
        let mut m = Self::new();
        m.set(node);
        m
    }

    /// The set `0..n` (clamped to [`MAX_NUMA_NODES`]).
    pub fn first_n(n: u32) -> Self {
        (0..n.min(MAX_NUMA_NODES as u32)).collect()
    }

    /// Adds `node`; returns false (and changes nothing) if `node >= MAX_NUMA_NODES`, like
    /// libnuma's `numa_bitmask_setbit` on a bit beyond the mask size.
    pub fn set(&mut self, node: u32) -> bool {
        let n = node as usize;
        if n >= MAX_NUMA_NODES {
            return false;
        }
        self.words[n / 64] |= 1u64 << (n % 64);
        true
    }

    /// Removes `node` (no-op if absent or out of range).
    pub fn clear(&mut self, node: u32) {
        let n = node as usize;
        if n < MAX_NUMA_NODES {
            self.words[n / 64] &= !(1u64 << (n % 64));
        }
    }

    /// Whether `node` is in the set.
    pub fn contains(&self, node: u32) -> bool {
        let n = node as usize;
        n < MAX_NUMA_NODES && self.words[n / 64] & (1u64 << (n % 64)) != 0
    }

    /// Number of nodes in the set.
    pub fn count(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The nodes in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..MAX_NUMA_NODES as u32).filter(move |&n| self.contains(n))
    }

    /// Lowest node, if any.
    #[cfg(test)]
    pub fn first(&self) -> Option<u32> {
        self.iter().next()
    }

    /// Highest node, if any.
    #[cfg(test)]
    pub fn last(&self) -> Option<u32> {
        (0..MAX_NUMA_NODES as u32).rev().find(|&n| self.contains(n))
    }

    /// Set union.
    #[must_use]
    pub fn union(&self, other: &Nodemask) -> Nodemask {
        let mut out = *self;
        for (o, i) in out.words.iter_mut().zip(other.words.iter()) {
            *o |= *i;
        }
        out
    }

    /// Set intersection.
    #[must_use]
    pub fn intersection(&self, other: &Nodemask) -> Nodemask {
        let mut out = *self;
        for (o, i) in out.words.iter_mut().zip(other.words.iter()) {
            *o &= *i;
        }
        out
    }

    /// The raw words, bit `n % 64` of word `n / 64` = node `n`: the layout of the kernel's
    /// `nodemask` argument on 64-bit Linux. Pass with `maxnode = `[`Nodemask::MAXNODE`].
    pub fn as_words(&self) -> &[u64; WORDS] {
        &self.words
    }

    /// A mask from the first words of a C bitmask (nodes beyond the mask's capacity dropped).
    pub fn from_words_slice(words: &[u64]) -> Self {
        let mut m = Nodemask::new();
        for (i, w) in m.words.iter_mut().zip(words) {
            *i = *w;
        }
        m
    }

    /// Builds a mask from raw words (inverse of [`Nodemask::as_words`]).
    #[cfg(test)]
    pub fn from_words(words: [u64; WORDS]) -> Self {
        Nodemask { words }
    }

    /// Parses the plain node-list syntax `"0"`, `"0-3"`, `"1,3-5"`.
    ///
    /// Strict on purpose: rejects an empty string, empty items (`"1,"`), spaces, signs, hex /
    /// octal spellings and multi-digit numbers with a leading zero (libnuma's `strtoul(s, 0)`
    /// would read `"010"` as 8), reversed ranges (libnuma keeps only the first endpoint of
    /// `"3-1"`), and nodes `>= MAX_NUMA_NODES`. A trailing newline is *not* accepted; trim
    /// first. `all` and `!` are [`NodeSpec`] syntax, not accepted here.
    pub fn parse_nodelist(s: &str) -> Result<Nodemask, NodelistError> {
        if s.is_empty() {
            return Err(NodelistError::Empty);
        }
        let mut mask = Nodemask::new();
        for (lo, hi) in parse_ranges(s, 0)? {
            for n in lo..=hi {
                mask.set(n);
            }
        }
        Ok(mask)
    }

    /// Like [`Nodemask::parse_nodelist`], but an empty (or all-whitespace) input is the empty
    /// set and surrounding whitespace is trimmed: the format of sysfs files such as
    /// `/sys/devices/system/node/has_cpu`, which is just `"\n"` when no node qualifies.
    pub fn parse_sysfs_list(s: &str) -> Result<Nodemask, NodelistError> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(Nodemask::new());
        }
        Self::parse_nodelist(t)
    }
}

impl FromIterator<u32> for Nodemask {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut m = Nodemask::new();
        for n in iter {
            m.set(n);
        }
        m
    }
}

/// Formats as a node list, e.g. `0-3,5` (empty set: empty string).
impl fmt::Display for Nodemask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut it = self.iter().peekable();
        while let Some(lo) = it.next() {
            let mut hi = lo;
            while it.peek() == Some(&(hi + 1)) {
                hi += 1;
                it.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if hi == lo {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Nodemask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nodemask({self})")
    }
}

/// Parses `item(,item)*` with `item = N | N-M` into `(lo, hi)` pairs; `offset` is added to error
/// positions (the caller may have stripped a prefix such as `!`).
fn parse_ranges(s: &str, offset: usize) -> Result<Vec<(u32, u32)>, NodelistError> {
    parse_ranges_ws(s, offset, false)
}

/// [`parse_ranges`]; with `skip_ws`, C `isspace` characters before each number are skipped, as
/// libnuma's `strtoul` does (`" 0"` is node 0).
fn parse_ranges_ws(
    s: &str,
    offset: usize,
    skip_ws: bool,
) -> Result<Vec<(u32, u32)>, NodelistError> {
    let garbage = |at: usize| NodelistError::Garbage {
        input: s.to_string(),
        at: at + offset,
    };
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let ws = |mut i: usize| {
        while skip_ws
            && bytes
                .get(i)
                .is_some_and(|b| matches!(b, b' ' | b'\t'..=b'\r'))
        {
            i += 1;
        }
        i
    };
    loop {
        let (lo, next) = parse_number(bytes, ws(i)).ok_or_else(|| garbage(i))?;
        i = next;
        let mut hi = lo;
        if bytes.get(i) == Some(&b'-') {
            let (h, next) = parse_number(bytes, ws(i + 1)).ok_or_else(|| garbage(i + 1))?;
            hi = h;
            i = next;
        }
        for n in [lo, hi] {
            if n >= MAX_NUMA_NODES as u64 {
                return Err(NodelistError::TooLarge(n));
            }
        }
        let (lo, hi) = (lo as u32, hi as u32);
        if hi < lo {
            return Err(NodelistError::Reversed { lo, hi });
        }
        out.push((lo, hi));
        match bytes.get(i) {
            None => return Ok(out),
            Some(b',') => i += 1,
            Some(_) => return Err(garbage(i)),
        }
    }
}

/// A decimal number starting at `start` (no sign, no leading zero unless it is `0`); returns
/// the value (saturated) and the index after it.
fn parse_number(bytes: &[u8], start: usize) -> Option<(u64, usize)> {
    let mut i = start;
    let mut v: u64 = 0;
    while let Some(d) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(u64::from(d - b'0'));
        i += 1;
    }
    let digits = i - start;
    if digits == 0 || (digits > 1 && bytes[start] == b'0') {
        return None;
    }
    Some((v, i))
}

/// A parsed `MEMKIND_HBW_NODES` / `MEMKIND_DAX_KMEM_NODES` value, not yet applied to a machine.
///
/// Grammar (the subset of libnuma 2.0.16 `numa_parse_nodestring` we accept):
/// `["!"] ("all" | N | N-M) ("," (N | N-M))*`, or the empty string (the empty set, as libnuma);
/// whitespace before a number is skipped (`strtoul`). Differences from libnuma, all on inputs that
/// are mistakes in practice: reversed ranges are an error
/// (libnuma: only the first endpoint); numbers are plain decimal (libnuma: `strtoul` base 0,
/// so `0x2` and octal `010` work, and `+` / `-` are swallowed); the
/// relative form `+N` and the I/O-affinity forms (`netdev:`, `pci:`, `file:`, `block:`) are
/// not supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    invert: bool,
    body: SpecBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SpecBody {
    All,
    Ranges(Vec<(u32, u32)>),
}

impl NodeSpec {
    /// Parses the syntax (see the type's doc); machine-dependent checks happen in
    /// [`NodeSpec::resolve`].
    pub fn parse(s: &str) -> Result<NodeSpec, NodelistError> {
        if s.is_empty() {
            // libnuma: the empty string is the empty mask (memkind 1.14 then reports the kind
            // available with no nodes: capacity 0, bound allocations fail).
            return Ok(NodeSpec {
                invert: false,
                body: SpecBody::Ranges(Vec::new()),
            });
        }
        let (invert, rest, off) = match s.strip_prefix('!') {
            Some(r) => (true, r, 1),
            None => (false, s, 0),
        };
        if rest.is_empty() {
            return Err(NodelistError::Garbage {
                input: s.to_string(),
                at: off,
            });
        }
        let body = if rest == "all" {
            SpecBody::All
        } else {
            SpecBody::Ranges(parse_ranges_ws(rest, off, true).map_err(|e| match e {
                NodelistError::Garbage { at, .. } => NodelistError::Garbage {
                    input: s.to_string(),
                    at,
                },
                other => other,
            })?)
        };
        Ok(NodeSpec { invert, body })
    }

    /// Applies the spec the way libnuma's `__numa_parse_nodestring(s, numa_all_nodes_ptr)`
    /// does: `allowed` is the process's allowed memory nodes (`numa_all_nodes_ptr`, i.e.
    /// `Mems_allowed`), `configured_mem_nodes` is `numa_num_configured_nodes()` (the *count* of
    /// nodes with memory).
    ///
    /// - a single node or a range endpoint outside `allowed` is an error;
    /// - inside a range only the allowed nodes are taken (`"0-3"` with node 2 memory-less gives
    ///   `0,1,3`);
    /// - `all` is `allowed`;
    /// - `!` flips bits `0..configured_mem_nodes` (by count, not by id: libnuma's quirk on
    ///   sparse node ids is kept).
    pub fn resolve(
        &self,
        allowed: &Nodemask,
        configured_mem_nodes: u32,
    ) -> Result<Nodemask, NodelistError> {
        let mut mask = match &self.body {
            SpecBody::All => *allowed,
            SpecBody::Ranges(ranges) => {
                let mut m = Nodemask::new();
                for &(lo, hi) in ranges {
                    for end in [lo, hi] {
                        if !allowed.contains(end) {
                            return Err(NodelistError::NotAllowed(end));
                        }
                    }
                    m = m.union(&(lo..=hi).filter(|&n| allowed.contains(n)).collect());
                }
                m
            }
        };
        if self.invert {
            for n in 0..configured_mem_nodes.min(MAX_NUMA_NODES as u32) {
                if mask.contains(n) {
                    mask.clear(n);
                } else {
                    mask.set(n);
                }
            }
        }
        Ok(mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nl(s: &str) -> Result<Nodemask, NodelistError> {
        Nodemask::parse_nodelist(s)
    }

    #[test]
    fn basic_set_ops() {
        let mut m = Nodemask::new();
        assert!(m.is_empty());
        assert!(m.set(0));
        assert!(m.set(63));
        assert!(m.set(64));
        assert!(m.set(1023));
        assert!(!m.set(1024));
        assert_eq!(m.count(), 4);
        assert!(m.contains(63) && m.contains(64) && !m.contains(1024));
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![0, 63, 64, 1023]);
        assert_eq!(m.as_words()[0], 1 | (1 << 63));
        assert_eq!(m.as_words()[1], 1);
        assert_eq!(m.as_words()[15], 1 << 63);
        m.clear(63);
        assert_eq!(m.to_string(), "0,64,1023");
        assert_eq!(m.first(), Some(0));
        assert_eq!(m.last(), Some(1023));
        assert_eq!(Nodemask::MAXNODE, 1025);
        assert_eq!(Nodemask::from_words(*m.as_words()), m);
    }

    #[test]
    fn nodelist_valid() {
        assert_eq!(nl("0").unwrap(), Nodemask::single(0));
        assert_eq!(nl("0-3").unwrap().to_string(), "0-3");
        assert_eq!(nl("1,3-5").unwrap().to_string(), "1,3-5");
        assert_eq!(nl("5,1").unwrap().to_string(), "1,5");
        assert_eq!(nl("2-2").unwrap().to_string(), "2");
        assert_eq!(nl("1023").unwrap().to_string(), "1023");
        assert_eq!(nl("0-1023").unwrap().count(), 1024);
    }

    #[test]
    fn nodelist_invalid() {
        assert_eq!(nl(""), Err(NodelistError::Empty));
        assert_eq!(nl("3-1"), Err(NodelistError::Reversed { lo: 3, hi: 1 }));
        assert_eq!(nl("1024"), Err(NodelistError::TooLarge(1024)));
        assert_eq!(nl("0-4096"), Err(NodelistError::TooLarge(4096)));
        assert!(matches!(
            nl("99999999999999999999999"),
            Err(NodelistError::TooLarge(_))
        ));
        for bad in [
            "a", "1,", ",1", "1,,2", "1-", "-1", " 1", "1 ", "1\n", "0x1", "010", "+1", "1-2-3",
            "all", "!1", "1;2", "１",
        ] {
            assert!(
                matches!(nl(bad), Err(NodelistError::Garbage { .. })),
                "{bad:?} -> {:?}",
                nl(bad)
            );
        }
    }

    #[test]
    fn sysfs_list() {
        assert!(Nodemask::parse_sysfs_list("\n").unwrap().is_empty());
        assert_eq!(
            Nodemask::parse_sysfs_list("0-1,4\n").unwrap().to_string(),
            "0-1,4"
        );
        assert!(Nodemask::parse_sysfs_list("zz\n").is_err());
    }

    #[test]
    fn nodespec_like_libnuma() {
        let allowed: Nodemask = [0, 1, 3].into_iter().collect();
        let r = |s: &str| NodeSpec::parse(s).and_then(|p| p.resolve(&allowed, 3));
        assert_eq!(r("1").unwrap().to_string(), "1");
        // node 2 has no memory: skipped inside a range, refused as an endpoint
        assert_eq!(r("0-3").unwrap().to_string(), "0-1,3");
        assert_eq!(r("2"), Err(NodelistError::NotAllowed(2)));
        assert_eq!(r("1-2"), Err(NodelistError::NotAllowed(2)));
        assert_eq!(r("7"), Err(NodelistError::NotAllowed(7)));
        assert_eq!(r("all").unwrap().to_string(), "0-1,3");
        // invert flips 0..count(memory nodes) = 0..3, by count (libnuma quirk)
        assert_eq!(r("!1").unwrap().to_string(), "0,2");
        assert_eq!(r("!all").unwrap().to_string(), "2-3");
        assert_eq!(r("").unwrap().to_string(), "");
        assert_eq!(r(" 0").unwrap().to_string(), "0");
        assert_eq!(r("0, 1").unwrap().to_string(), "0-1");
        assert!(matches!(r("0 "), Err(NodelistError::Garbage { .. })));
        assert!(matches!(r("!"), Err(NodelistError::Garbage { at: 1, .. })));
        assert!(matches!(r("all,1"), Err(NodelistError::Garbage { .. })));
        assert!(matches!(r("+1"), Err(NodelistError::Garbage { .. })));
        assert!(matches!(
            r("netdev:eth0"),
            Err(NodelistError::Garbage { .. })
        ));
        assert!(matches!(r("!x"), Err(NodelistError::Garbage { at: 1, .. })));
        assert_eq!(r("3-1"), Err(NodelistError::Reversed { lo: 3, hi: 1 }));
    }
}
