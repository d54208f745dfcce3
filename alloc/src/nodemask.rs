//! TEMPORARY minimal node mask (replaced by the topology branch).
#![allow(missing_docs)]
pub const WORDS: usize = 16;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nodemask { words: [u64; WORDS] }
impl Nodemask {
    pub fn single(node: u32) -> Self { let mut m = Self::default(); m.set(node); m }
    pub fn set(&mut self, node: u32) -> bool { if node as usize >= WORDS * 64 { return false } self.words[node as usize / 64] |= 1 << (node % 64); true }
    pub fn contains(&self, node: u32) -> bool { (node as usize) < WORDS * 64 && self.words[node as usize / 64] & (1 << (node % 64)) != 0 }
    pub fn is_empty(&self) -> bool { self.words.iter().all(|w| *w == 0) }
    pub fn count(&self) -> u32 { self.words.iter().map(|w| w.count_ones()).sum() }
    pub fn as_words(&self) -> &[u64; WORDS] { &self.words }
}
