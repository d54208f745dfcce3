//! Placement: where each kind's pages are, per NUMA node, beside the node set and mbind mode the
//! kind asked for. Pure: the collector (`crate::collect::placement`) queries the kernel for a
//! sample of each kind's pages and hands over [`Sample`]s; everything here is arithmetic on them.
//!
//! # Estimator
//! A [`Sample`] is one stratum: the pages of one process × kind × arena × page size, `pages_total`
//! (N) pages of which `pages_queried` (n) were queried. When n = N the figures are exact. Otherwise
//! the collector picked the n pages by *jittered systematic sampling* (one page drawn uniformly in
//! each of n consecutive runs of N/n pages), and each figure (bytes on node j, misplaced, huge,
//! base, resident) is estimated as
//!
//! ```text
//!   B̂ = N · page · c/n                                 (c: queried pages in the category)
//!   Var(B̂) = (N · page)² · p(1−p)/(n−1) · (1 − n/N)    (p = c/n)
//! ```
//!
//! the simple-random-sampling estimator of a proportion with its finite-population correction.
//! For jittered sampling that variance is an upper bound in practice (stratifying by position
//! can only remove the between-runs variance; it is exact for a random layout). Strata are
//! independent, so estimates and variances add across arenas, kinds and processes. The error bound
//! shown is the half-width of the 95 % normal interval, 1.96 · √Var, of the least certain figure.

use std::collections::BTreeMap;

/// `MPOL_PREFERRED`.
pub const MPOL_PREFERRED: i32 = 1;
/// `MPOL_BIND`.
pub const MPOL_BIND: i32 = 2;
/// `MPOL_INTERLEAVE`.
pub const MPOL_INTERLEAVE: i32 = 3;
/// `MPOL_LOCAL`.
pub const MPOL_LOCAL: i32 = 4;
/// `MPOL_PREFERRED_MANY`.
pub const MPOL_PREFERRED_MANY: i32 = 5;

/// The mbind mode as the views name it: `bind`, `preferred`, `interleave`, `preferred_many`,
/// `local`, `none` (the kind asks for nothing: −1 or `MPOL_DEFAULT`), else `mode<N>`.
pub fn mode_name(mode: i32) -> String {
    match mode {
        MPOL_PREFERRED => "preferred".into(),
        MPOL_BIND => "bind".into(),
        MPOL_INTERLEAVE => "interleave".into(),
        MPOL_LOCAL => "local".into(),
        MPOL_PREFERRED_MANY => "preferred_many".into(),
        m if m <= 0 => "none".into(),
        m => format!("mode{m}"),
    }
}

/// The nodes of a `MKP_NODEMASK_WORDS` node mask, ascending.
pub fn mask_nodes(mask: &[u64; 4]) -> Vec<u32> {
    let mut v = Vec::new();
    for (w, bits) in mask.iter().enumerate() {
        for b in 0..64 {
            if bits >> b & 1 == 1 {
                v.push(w as u32 * 64 + b);
            }
        }
    }
    v
}

/// Whether a page on `node` is where a kind asking for `mode` over `asked` wants it. A kind that
/// asks for nothing (or `MPOL_LOCAL`, or an empty mask) has no wrong node.
pub fn is_placed(mode: i32, asked: &[u32], node: u32) -> bool {
    match mode {
        MPOL_PREFERRED | MPOL_BIND | MPOL_INTERLEAVE | MPOL_PREFERRED_MANY if !asked.is_empty() => {
            asked.contains(&node)
        }
        _ => true,
    }
}

/// What the collector found for one stratum (process × kind × arena × page size).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Process.
    pub tgid: u32,
    /// Kind id.
    pub kind: u32,
    /// Arena, or `NONE`.
    pub arena: u32,
    /// Page size the stratum counts in (the extent's: 4 KiB, or the hugetlb page size).
    pub page_size: u64,
    /// MPOL_* the extents asked for (−1: none).
    pub mbind_mode: i32,
    /// The nodes they asked for.
    pub nodemask: [u64; 4],
    /// Pages of the stratum's extents (N).
    pub pages_total: u64,
    /// Pages queried (n ≤ N).
    pub pages_queried: u64,
    /// Queried pages that are present, by (node, huge). Node `None`: present, node unknown (a
    /// device page with no known node range). `huge`: a hugetlb page, or inside a transparent
    /// huge page. Queried pages not counted here are not present.
    pub present: BTreeMap<(Option<u32>, bool), u64>,
}

/// A byte figure and its variance (bytes²; 0 when exact).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Est {
    /// Estimated (or exact) bytes.
    pub bytes: u64,
    /// Variance of the estimate in bytes².
    pub var: u128,
}

impl Est {
    fn add(&mut self, o: Est) {
        self.bytes += o.bytes;
        self.var += o.var;
    }

    /// Half-width of the 95 % interval, in bytes.
    pub fn error_bytes(&self) -> u64 {
        (1.96 * (self.var as f64).sqrt()).ceil() as u64
    }

    /// The estimate of `count` of `n` queried pages out of `total`, pages of `page` bytes.
    fn of(count: u64, n: u64, total: u64, page: u64) -> Est {
        if n == 0 {
            return Est::default();
        }
        let scale = u128::from(total) * u128::from(page);
        // Round to the nearest byte: scale·count/n.
        let bytes = ((scale * u128::from(count) + u128::from(n) / 2) / u128::from(n)) as u64;
        if n >= total || n < 2 {
            return Est { bytes, var: 0 };
        }
        let p = count as f64 / n as f64;
        let fpc = 1.0 - n as f64 / total as f64;
        let var = (scale as f64).powi(2) * p * (1.0 - p) / (n - 1) as f64 * fpc;
        Est {
            bytes,
            var: var.round() as u128,
        }
    }
}

/// Placement of one arena (or, summed, of a kind).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Resident bytes by node.
    pub nodes: BTreeMap<u32, Est>,
    /// Resident bytes whose node is unknown.
    pub unknown_node: Est,
    /// All resident bytes.
    pub resident: Est,
    /// Resident bytes on a node outside the asked-for set.
    pub misplaced: Est,
    /// Resident bytes in huge pages (hugetlb or transparent).
    pub huge: Est,
    /// Resident bytes in base pages.
    pub base: Est,
    /// Pages queried.
    pub pages_queried: u64,
    /// Pages of the extents.
    pub pages_total: u64,
    /// Bytes of the extents.
    pub bytes_total: u64,
}

impl Figures {
    fn add_sample(&mut self, s: &Sample) {
        let (n, total, page) = (s.pages_queried, s.pages_total, s.page_size);
        let asked = mask_nodes(&s.nodemask);
        let mut by_node: BTreeMap<Option<u32>, u64> = BTreeMap::new();
        let (mut resident, mut misplaced, mut huge, mut base) = (0, 0, 0, 0);
        for (&(node, is_huge), &c) in &s.present {
            *by_node.entry(node).or_default() += c;
            resident += c;
            if is_huge {
                huge += c;
            } else {
                base += c;
            }
            if node.is_some_and(|x| !is_placed(s.mbind_mode, &asked, x)) {
                misplaced += c;
            }
        }
        for (node, c) in by_node {
            let e = Est::of(c, n, total, page);
            match node {
                Some(x) => self.nodes.entry(x).or_default().add(e),
                None => self.unknown_node.add(e),
            }
        }
        self.resident.add(Est::of(resident, n, total, page));
        self.misplaced.add(Est::of(misplaced, n, total, page));
        self.huge.add(Est::of(huge, n, total, page));
        self.base.add(Est::of(base, n, total, page));
        self.pages_queried += n;
        self.pages_total += total;
        self.bytes_total += total * page;
    }

    fn merge(&mut self, o: &Figures) {
        for (k, e) in &o.nodes {
            self.nodes.entry(*k).or_default().add(*e);
        }
        self.unknown_node.add(o.unknown_node);
        self.resident.add(o.resident);
        self.misplaced.add(o.misplaced);
        self.huge.add(o.huge);
        self.base.add(o.base);
        self.pages_queried += o.pages_queried;
        self.pages_total += o.pages_total;
        self.bytes_total += o.bytes_total;
    }

    /// True when some pages were not queried: the figures are estimates.
    pub fn sampled(&self) -> bool {
        self.pages_queried < self.pages_total
    }

    /// Half-width of the 95 % interval of the least certain figure, in bytes (0 when exact).
    pub fn error_bytes(&self) -> u64 {
        self.nodes
            .values()
            .chain([
                &self.unknown_node,
                &self.resident,
                &self.misplaced,
                &self.huge,
                &self.base,
            ])
            .map(Est::error_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Resident bytes on `node`.
    pub fn node_bytes(&self, node: u32) -> u64 {
        self.nodes.get(&node).map_or(0, |e| e.bytes)
    }
}

/// Placement of one kind (of one process, or summed by name over processes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindPlacement {
    /// MPOL_* asked for (−1: none).
    pub mbind_mode: i32,
    /// Nodes asked for.
    pub asked_nodes: Vec<u32>,
    /// Summed over the arenas.
    pub total: Figures,
    /// Per arena (`None`: extents that carried no arena), ascending.
    pub arenas: BTreeMap<Option<u32>, Figures>,
}

impl KindPlacement {
    /// For MPOL_INTERLEAVE over two or more nodes: the largest deviation of a node's share of
    /// the resident bytes from the even share, relative to the even share (0 = perfectly even,
    /// 0.1 = a node is 10 % above or below). `None` for other modes or nothing resident.
    pub fn interleave_imbalance(&self) -> Option<f64> {
        if self.mbind_mode != MPOL_INTERLEAVE || self.asked_nodes.len() < 2 {
            return None;
        }
        let on: Vec<f64> = self
            .asked_nodes
            .iter()
            .map(|n| self.total.node_bytes(*n) as f64)
            .collect();
        let sum: f64 = on.iter().sum();
        if sum == 0.0 {
            return None;
        }
        let even = sum / on.len() as f64;
        Some(
            on.iter()
                .map(|b| (b - even).abs() / even)
                .fold(0.0, f64::max),
        )
    }

    fn merge(&mut self, o: &KindPlacement) {
        if self.asked_nodes.is_empty() && self.mbind_mode < 0 {
            self.mbind_mode = o.mbind_mode;
        }
        for n in &o.asked_nodes {
            if !self.asked_nodes.contains(n) {
                self.asked_nodes.push(*n);
            }
        }
        self.asked_nodes.sort_unstable();
        self.total.merge(&o.total);
        for (a, f) in &o.arenas {
            self.arenas.entry(*a).or_default().merge(f);
        }
    }
}

/// Placement of every kind of every process, from one refresh.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// By (tgid, kind id).
    pub kinds: BTreeMap<(u32, u32), KindPlacement>,
    /// ns (session clock) when the samples were taken.
    pub ts_ns: u64,
}

impl Placement {
    /// Figures of `samples`, arenas `NONE` filed under `None`.
    pub fn from_samples(samples: &[Sample], ts_ns: u64) -> Placement {
        let mut p = Placement {
            ts_ns,
            ..Default::default()
        };
        for s in samples {
            let k = p
                .kinds
                .entry((s.tgid, s.kind))
                .or_insert_with(|| KindPlacement {
                    mbind_mode: s.mbind_mode,
                    ..Default::default()
                });
            if k.mbind_mode < 0 {
                k.mbind_mode = s.mbind_mode;
            }
            for n in mask_nodes(&s.nodemask) {
                if !k.asked_nodes.contains(&n) {
                    k.asked_nodes.push(n);
                }
            }
            k.asked_nodes.sort_unstable();
            let arena = (s.arena != super::NONE).then_some(s.arena);
            k.arenas.entry(arena).or_default().add_sample(s);
            k.total.add_sample(s);
        }
        p
    }

    /// The placement of kind `kind` of `tgid`.
    pub fn get(&self, tgid: u32, kind: u32) -> Option<&KindPlacement> {
        self.kinds.get(&(tgid, kind))
    }

    /// Forget process `tgid`.
    pub fn forget(&mut self, tgid: u32) {
        self.kinds.retain(|(t, _), _| *t != tgid);
    }

    /// Keep what `newer` knows, and this placement's figures of processes `newer` has none of
    /// (for a command: the last placement taken while a process lived outlives it).
    pub fn update(&mut self, newer: Placement) {
        let pids: Vec<u32> = newer.kinds.keys().map(|(t, _)| *t).collect();
        self.kinds.retain(|(t, _), _| !pids.contains(t));
        self.kinds.extend(newer.kinds);
        self.ts_ns = newer.ts_ns;
    }
}

/// Sum `b` into `a` (placements of one kind name over processes).
pub fn merge_into(a: &mut Option<KindPlacement>, b: &KindPlacement) {
    match a {
        Some(x) => x.merge(b),
        None => *a = Some(b.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P4K: u64 = 4096;
    const P2M: u64 = 2 << 20;

    fn sample(
        kind: u32,
        arena: u32,
        mode: i32,
        mask: u64,
        total: u64,
        n: u64,
        present: &[(Option<u32>, bool, u64)],
    ) -> Sample {
        Sample {
            tgid: 7,
            kind,
            arena,
            page_size: P4K,
            mbind_mode: mode,
            nodemask: [mask, 0, 0, 0],
            pages_total: total,
            pages_queried: n,
            present: present.iter().map(|(a, h, c)| ((*a, *h), *c)).collect(),
        }
    }

    #[test]
    fn names_and_masks() {
        assert_eq!(mode_name(-1), "none");
        assert_eq!(mode_name(0), "none");
        assert_eq!(mode_name(1), "preferred");
        assert_eq!(mode_name(2), "bind");
        assert_eq!(mode_name(3), "interleave");
        assert_eq!(mode_name(5), "preferred_many");
        assert_eq!(mode_name(6), "mode6");
        assert_eq!(mask_nodes(&[0b101, 0, 1, 0]), vec![0, 2, 128]);
        assert!(is_placed(-1, &[], 3));
        assert!(
            is_placed(MPOL_BIND, &[], 3),
            "an empty mask asks for nothing"
        );
        assert!(!is_placed(MPOL_BIND, &[1], 0));
        assert!(is_placed(MPOL_PREFERRED_MANY, &[0, 1], 1));
        assert!(is_placed(MPOL_LOCAL, &[1], 0));
    }

    #[test]
    fn exact_asked_vs_actual() {
        // HBW asked PREFERRED node 1: 100 pages on node 1, 28 spilled to node 0, 2 not present.
        let s = sample(
            3,
            5,
            MPOL_PREFERRED,
            0b10,
            130,
            130,
            &[(Some(1), false, 100), (Some(0), false, 28)],
        );
        let p = Placement::from_samples(&[s], 9);
        let k = p.get(7, 3).unwrap();
        assert_eq!(k.mbind_mode, MPOL_PREFERRED);
        assert_eq!(k.asked_nodes, vec![1]);
        let t = &k.total;
        assert!(!t.sampled());
        assert_eq!(t.error_bytes(), 0);
        assert_eq!(t.node_bytes(1), 100 * P4K);
        assert_eq!(t.node_bytes(0), 28 * P4K);
        assert_eq!(t.misplaced.bytes, 28 * P4K);
        assert_eq!(t.resident.bytes, 128 * P4K);
        assert_eq!(t.base.bytes, 128 * P4K);
        assert_eq!(t.huge.bytes, 0);
        assert_eq!(t.bytes_total, 130 * P4K);
        assert_eq!(k.arenas[&Some(5)], *t);
        assert_eq!(k.interleave_imbalance(), None);
        assert_eq!(p.ts_ns, 9);
    }

    #[test]
    fn default_kind_is_never_misplaced_and_unknown_nodes_are_not() {
        let s = sample(
            0,
            super::super::NONE,
            -1,
            0,
            10,
            10,
            &[(Some(0), false, 4), (Some(1), true, 4), (None, false, 2)],
        );
        let p = Placement::from_samples(&[s], 0);
        let k = p.get(7, 0).unwrap();
        assert!(k.asked_nodes.is_empty());
        assert_eq!(k.total.misplaced.bytes, 0);
        assert_eq!(k.total.unknown_node.bytes, 2 * P4K);
        assert_eq!(k.total.huge.bytes, 4 * P4K);
        assert_eq!(k.total.base.bytes, 6 * P4K);
        assert!(k.arenas.contains_key(&None));
    }

    #[test]
    fn bind_outside_mask_is_misplaced_and_arenas_add_up() {
        let a = sample(1, 1, MPOL_BIND, 0b10, 50, 50, &[(Some(1), false, 50)]);
        let b = sample(
            1,
            2,
            MPOL_BIND,
            0b10,
            50,
            50,
            &[(Some(1), false, 40), (Some(0), false, 10)],
        );
        let mut h = sample(1, 2, MPOL_BIND, 0b10, 4, 4, &[(Some(1), true, 3)]);
        h.page_size = P2M;
        let p = Placement::from_samples(&[a, b, h], 0);
        let k = p.get(7, 1).unwrap();
        assert_eq!(k.arenas.len(), 2);
        assert_eq!(k.arenas[&Some(2)].misplaced.bytes, 10 * P4K);
        assert_eq!(k.arenas[&Some(1)].misplaced.bytes, 0);
        assert_eq!(k.total.misplaced.bytes, 10 * P4K);
        assert_eq!(k.total.node_bytes(1), 90 * P4K + 3 * P2M);
        assert_eq!(k.total.huge.bytes, 3 * P2M);
        assert_eq!(k.total.pages_total, 104);
        assert_eq!(k.total.bytes_total, 100 * P4K + 4 * P2M);
    }

    #[test]
    fn interleave_balance() {
        let even = sample(
            10,
            0,
            MPOL_INTERLEAVE,
            0b11,
            100,
            100,
            &[(Some(0), false, 50), (Some(1), false, 50)],
        );
        let p = Placement::from_samples(&[even], 0);
        assert_eq!(p.get(7, 10).unwrap().interleave_imbalance(), Some(0.0));
        let skew = sample(
            10,
            0,
            MPOL_INTERLEAVE,
            0b11,
            100,
            100,
            &[(Some(0), false, 60), (Some(1), false, 40)],
        );
        let p = Placement::from_samples(&[skew], 0);
        let i = p.get(7, 10).unwrap().interleave_imbalance().unwrap();
        assert!((i - 0.2).abs() < 1e-9, "{i}");
        // A node of the set that got nothing: 100 % off.
        let one = sample(
            10,
            0,
            MPOL_INTERLEAVE,
            0b11,
            10,
            10,
            &[(Some(0), false, 10)],
        );
        let p = Placement::from_samples(&[one], 0);
        assert_eq!(p.get(7, 10).unwrap().interleave_imbalance(), Some(1.0));
        // Interleave pages outside the set are misplaced.
        let out = sample(
            10,
            0,
            MPOL_INTERLEAVE,
            0b11,
            10,
            10,
            &[(Some(2), false, 1), (Some(0), false, 9)],
        );
        let p = Placement::from_samples(&[out], 0);
        assert_eq!(p.get(7, 10).unwrap().total.misplaced.bytes, P4K);
    }

    #[test]
    fn sampling_estimate_and_bound() {
        // 1 GiB of 4 KiB pages, 64 Ki of them queried: 3/4 on node 1, 1/4 spilled to node 0.
        let total = 262_144;
        let n = 65_536;
        let s = sample(
            3,
            0,
            MPOL_PREFERRED,
            0b10,
            total,
            n,
            &[(Some(1), false, 49_152), (Some(0), false, 16_384)],
        );
        let p = Placement::from_samples(&[s], 0);
        let t = &p.get(7, 3).unwrap().total;
        assert!(t.sampled());
        assert_eq!(t.node_bytes(1), 768 << 20);
        assert_eq!(t.misplaced.bytes, 256 << 20);
        assert_eq!(t.resident.bytes, 1 << 30);
        assert_eq!(
            t.resident.error_bytes(),
            0,
            "every queried page present: p = 1"
        );
        // SE = N·page·sqrt(p(1-p)/(n-1)·(1-n/N)) = 1 GiB · sqrt(0.1875/65535 · 0.75) = 1.553 MB.
        let want = 1.96 * (1u64 << 30) as f64 * (0.1875f64 / 65_535.0 * 0.75).sqrt();
        let got = t.misplaced.error_bytes() as f64;
        assert!((got - want).abs() <= 2.0, "{got} vs {want}");
        assert_eq!(t.error_bytes(), t.misplaced.error_bytes());
        // Under 0.4 % of the 1 GiB at the 95 % level.
        assert!(got < 0.004 * (1u64 << 30) as f64);
    }

    #[test]
    fn sampling_estimator_is_unbiased_on_a_synthetic_layout() {
        // A layout of N pages (node 1 in runs, spilled to node 0 in the last third, some holes),
        // sampled by one uniform draw per run of N/n pages, many times: the mean of the estimates
        // is the truth and ~95 % of the intervals cover it.
        let n_total: u64 = 30_000;
        let node = |i: u64| -> Option<u32> {
            if i.is_multiple_of(97) {
                None // not present
            } else if i >= 20_000 && !i.is_multiple_of(3) {
                Some(0)
            } else {
                Some(1)
            }
        };
        let truth = (0..n_total).filter(|&i| node(i) == Some(0)).count() as f64 * P4K as f64;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let n = 1_000u64;
        let (mut sum, mut covered) = (0.0, 0);
        let trials = 400;
        for _ in 0..trials {
            let mut counts: BTreeMap<(Option<u32>, bool), u64> = BTreeMap::new();
            for j in 0..n {
                let lo = j * n_total / n;
                let hi = (j + 1) * n_total / n;
                let i = lo + next() % (hi - lo);
                if let Some(x) = node(i) {
                    *counts.entry((Some(x), false)).or_default() += 1;
                }
            }
            let s = Sample {
                tgid: 1,
                kind: 3,
                arena: 0,
                page_size: P4K,
                mbind_mode: MPOL_PREFERRED,
                nodemask: [0b10, 0, 0, 0],
                pages_total: n_total,
                pages_queried: n,
                present: counts,
            };
            let m = Placement::from_samples(&[s], 0)
                .get(1, 3)
                .unwrap()
                .total
                .misplaced;
            sum += m.bytes as f64;
            if (m.bytes as f64 - truth).abs() <= m.error_bytes() as f64 {
                covered += 1;
            }
        }
        let mean = sum / trials as f64;
        assert!(
            (mean - truth).abs() / truth < 0.005,
            "mean {mean} truth {truth}"
        );
        assert!(
            covered as f64 >= 0.93 * trials as f64,
            "covered {covered}/{trials}"
        );
    }

    #[test]
    fn merge_over_processes_and_update() {
        let a = Placement::from_samples(
            &[sample(
                1,
                0,
                MPOL_BIND,
                0b10,
                10,
                10,
                &[(Some(1), false, 10)],
            )],
            0,
        );
        let mut s2 = sample(1, 0, MPOL_BIND, 0b10, 100, 50, &[(Some(1), false, 25)]);
        s2.tgid = 8;
        let b = Placement::from_samples(&[s2], 0);
        let mut sum = None;
        merge_into(&mut sum, a.get(7, 1).unwrap());
        merge_into(&mut sum, b.get(8, 1).unwrap());
        let sum = sum.unwrap();
        assert_eq!(sum.total.node_bytes(1), 10 * P4K + 50 * P4K);
        assert!(sum.total.sampled());
        assert_eq!(
            sum.total.error_bytes(),
            b.get(8, 1).unwrap().total.error_bytes()
        );
        assert_eq!(sum.asked_nodes, vec![1]);

        let mut last = a.clone();
        last.update(b.clone());
        assert!(
            last.get(7, 1).is_some(),
            "a process the newer refresh did not see keeps its last figures"
        );
        assert!(last.get(8, 1).is_some());
        let mut c = b.clone();
        c.kinds.clear();
        let mut s3 = sample(1, 0, MPOL_BIND, 0b10, 10, 10, &[]);
        s3.tgid = 8;
        c.update(Placement::from_samples(&[s3], 5));
        assert_eq!(c.get(8, 1).unwrap().total.resident.bytes, 0);
        last.update(Placement::from_samples(
            &[sample(2, 0, -1, 0, 1, 1, &[])],
            6,
        ));
        assert!(
            last.get(7, 1).is_none(),
            "newer figures of a process replace all of its kinds"
        );
        last.forget(8);
        assert!(last.get(8, 1).is_none());
    }
}
