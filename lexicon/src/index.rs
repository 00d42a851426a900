//! The lookup structures built once per catalog: every command's alternatives ([`Alt`]) and a
//! trie keyed by their leading literal words, so classifying a message only looks at commands
//! whose leading words it actually starts with (cost grows with the words of the message, not
//! with the size of the catalog). Also a small Fx-style hasher for the short keys involved.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::input::{with_lower, Tok};
use crate::pattern::Elem;

/// A fast, non-cryptographic hasher for short word keys (the Fx hash used in rustc).
#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(buf));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// One alternative of one command: its pattern with each optional group taken or not.
#[derive(Clone, Debug)]
pub(crate) struct Alt {
    /// Position of the command in the catalog.
    pub cmd: u32,
    /// Rank among the command's alternatives (0 = preferred).
    pub order: u16,
    /// Number of literal words (the precedence score).
    pub lits: u16,
    /// The last element is a `text` slot (takes one or more tokens).
    pub text_last: bool,
    pub elems: Box<[Elem]>,
}

impl Alt {
    /// Ordering key: smaller wins. More literal words, then earlier command, then preferred
    /// alternative.
    #[inline]
    pub fn key(&self) -> u64 {
        (u64::from(u16::MAX - self.lits) << 48)
            | (u64::from(self.cmd) << 16)
            | u64::from(self.order)
    }

    /// The lower-case literal words this alternative starts with.
    pub fn leading_words(&self) -> impl Iterator<Item = &str> {
        self.elems.iter().map_while(|e| match e {
            Elem::Lit(w) => Some(&**w),
            Elem::Slot(_) => None,
        })
    }
}

#[derive(Clone, Debug, Default)]
struct Node {
    children: FxMap<Box<[u8]>, u32>,
    /// Alternatives whose leading literal words end exactly at this node.
    alts: Vec<u32>,
    /// Commands of `alts` (sorted, unique); filled by [`Trie::finish`].
    cmds: Vec<u32>,
    /// Commands with an alternative in this node's subtree (sorted, unique).
    subtree: Vec<u32>,
    /// [`letter_mask`] of the word leading to this node.
    mask: u32,
}

/// Which bytes (folded onto 32 bits) a word contains. Words within `d` edits of each other
/// differ in at most `2 * d` bits, which makes a cheap filter before an edit distance.
pub(crate) fn letter_mask(word: &[u8]) -> u32 {
    word.iter().fold(0u32, |m, &b| m | 1 << (b & 31))
}

/// A trie on leading literal words; each alternative hangs at the node its leading words reach.
#[derive(Clone, Debug)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
}

impl Default for Trie {
    fn default() -> Self {
        Trie {
            nodes: vec![Node::default()],
        }
    }
}

impl Trie {
    pub fn insert<'w>(&mut self, words: impl Iterator<Item = &'w str>, alt: u32) {
        let mut node = 0usize;
        for word in words {
            let key: Box<[u8]> = word.as_bytes().into();
            node = match self.nodes[node].children.get(&key) {
                Some(&next) => next as usize,
                None => {
                    let next = self.nodes.len();
                    self.nodes.push(Node {
                        mask: letter_mask(word.as_bytes()),
                        ..Node::default()
                    });
                    self.nodes[node]
                        .children
                        .insert(key, u32::try_from(next).unwrap_or(u32::MAX));
                    next
                }
            };
        }
        self.nodes[node].alts.push(alt);
    }

    /// Fills the per-node command lists; `cmd_of` maps an alternative to its command.
    pub fn finish(&mut self, cmd_of: impl Fn(u32) -> u32) {
        // Children are always created after their parent: walk backwards.
        for i in (0..self.nodes.len()).rev() {
            let mut cmds: Vec<u32> = self.nodes[i].alts.iter().map(|&a| cmd_of(a)).collect();
            cmds.sort_unstable();
            cmds.dedup();
            let mut subtree = cmds.clone();
            for &child in self.nodes[i].children.values() {
                subtree.extend_from_slice(&self.nodes[child as usize].subtree);
            }
            subtree.sort_unstable();
            subtree.dedup();
            self.nodes[i].cmds = cmds;
            self.nodes[i].subtree = subtree;
        }
    }

    pub const ROOT: usize = 0;

    /// The child of `node` for a lower-case word.
    pub fn child(&self, node: usize, word: &[u8]) -> Option<usize> {
        self.nodes
            .get(node)
            .and_then(|n| n.children.get(word))
            .map(|&c| c as usize)
    }

    /// The children of `node` with their words.
    pub fn children(&self, node: usize) -> impl Iterator<Item = (&[u8], usize)> {
        self.nodes
            .get(node)
            .into_iter()
            .flat_map(|n| n.children.iter().map(|(w, &c)| (&**w, c as usize)))
    }

    /// The [`letter_mask`] of the word leading to `node`.
    pub fn mask(&self, node: usize) -> u32 {
        self.nodes.get(node).map_or(0, |n| n.mask)
    }

    /// Commands with an alternative hanging exactly at `node`.
    pub fn node_cmds(&self, node: usize) -> &[u32] {
        self.nodes.get(node).map_or(&[], |n| &n.cmds)
    }

    /// Commands with an alternative anywhere below (or at) `node`.
    pub fn subtree_cmds(&self, node: usize) -> &[u32] {
        self.nodes.get(node).map_or(&[], |n| &n.subtree)
    }

    /// Calls `visit(depth, alts)` for the root and for every node reached by following the
    /// message's tokens (case-insensitively), shallowest first.
    #[inline]
    pub fn walk(&self, toks: &[Tok<'_>], mut visit: impl FnMut(usize, &[u32])) {
        let mut node = 0usize;
        visit(0, &self.nodes[0].alts);
        for (depth, tok) in toks.iter().enumerate() {
            let current = &self.nodes[node];
            if current.children.is_empty() {
                break;
            }
            match with_lower(tok.text, |w| self.child(node, w)) {
                Some(next) => {
                    node = next;
                    visit(depth + 1, &self.nodes[node].alts);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::tokenize;
    use std::hash::BuildHasher;

    #[test]
    fn trie_visits_only_matching_prefixes() {
        let mut t = Trie::default();
        t.insert(["add", "ip"].into_iter(), 1);
        t.insert(["add"].into_iter(), 2);
        t.insert(["ping"].into_iter(), 3);
        t.insert(std::iter::empty(), 4);
        let mut seen = Vec::new();
        t.walk(&tokenize("ADD Ip 10.0.0.1"), |d, alts| {
            seen.push((d, alts.to_vec()))
        });
        assert_eq!(seen, [(0, vec![4]), (1, vec![2]), (2, vec![1])]);
        seen.clear();
        t.walk(&tokenize("pong"), |d, alts| seen.push((d, alts.to_vec())));
        assert_eq!(seen, [(0, vec![4])]);
    }

    #[test]
    fn letter_masks_bound_edit_distance() {
        let d = |a: &[u8], b: &[u8]| (letter_mask(a) ^ letter_mask(b)).count_ones();
        assert_eq!(d(b"help", b"hepl"), 0);
        assert!(d(b"help", b"helm") <= 2);
        assert!(d(b"restart", b"restarts") <= 2);
        assert!(d(b"ip", b"dns") > 2);
    }

    #[test]
    fn hasher_distinguishes_keys() {
        let b = FxBuild::default();
        assert_ne!(
            b.hash_one(b"help".as_slice()),
            b.hash_one(b"hepl".as_slice())
        );
        assert_eq!(
            b.hash_one(b"help".as_slice()),
            b.hash_one(b"help".as_slice())
        );
    }
}
