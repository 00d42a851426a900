//! "Did you mean" for unknown messages: an index of first literal words with their deletion
//! variants (so a typo in the first word is found without scanning the catalog), candidate
//! selection through the trie (narrowed by the second word), an edit distance over words
//! (optimal string alignment within words), and the ranking of the nearest commands.
//! Runs only on the Unknown path.

use std::cmp::Reverse;

use crate::catalog::Catalog;
use crate::index::{letter_mask, Alt, FxMap, Trie};
use crate::input::{eq_lower, Tok};
use crate::pattern::Elem;
use crate::slot::SlotKind;

/// At most this many suggestions.
pub const MAX_SUGGESTIONS: usize = 3;
/// Longest first word (in bytes) that gets deletion variants; longer ones match exactly only.
const MAX_FUZZY_WORD: usize = 32;
/// Upper bound on the commands scored for one message.
const MAX_CANDIDATES: usize = 64;

/// The trie's first words with their 1- and 2-deletion variants, so a typo in the first word
/// finds its trie node without scanning the catalog.
#[derive(Clone, Debug, Default)]
pub(crate) struct FuzzyIndex {
    /// First words (lower case) and their trie nodes.
    keys: Vec<(Box<[u8]>, usize)>,
    /// Deletion variant (including the word itself) => indexes into `keys`.
    variants: FxMap<Box<[u8]>, Vec<u32>>,
}

impl FuzzyIndex {
    pub fn new(trie: &Trie) -> Self {
        let mut index = FuzzyIndex::default();
        for (word, node) in trie.children(Trie::ROOT) {
            let id = u32::try_from(index.keys.len()).unwrap_or(u32::MAX);
            index.keys.push((word.into(), node));
            for_each_variant(word, 2, &mut |v| {
                let entry = index.variants.entry(v.into()).or_default();
                push_unique(entry, id);
            });
        }
        index
    }

    /// Trie nodes of first words within `max` edits of `word` (lower case).
    fn first_nodes(&self, word: &[u8], max: usize) -> Vec<usize> {
        let mut ids: Vec<u32> = Vec::new();
        for_each_variant(word, max, &mut |v| {
            if let Some(found) = self.variants.get(v) {
                for &id in found {
                    push_unique(&mut ids, id);
                }
            }
        });
        ids.iter()
            .filter_map(|&id| self.keys.get(id as usize))
            .filter(|(key, _)| osa_capped(word, key, max) <= max)
            .map(|&(_, node)| node)
            .collect()
    }
}

impl Catalog {
    /// Commands worth scoring: those starting with a slot, and those whose first word is close
    /// to the message's first word, narrowed by the second word when it is close to one of
    /// theirs (all of them otherwise, up to a cap).
    fn candidates(&self, words: &[String]) -> Vec<u32> {
        let mut cmds: Vec<u32> = self.trie.node_cmds(Trie::ROOT).to_vec();
        let Some(first) = words.first() else {
            return cmds;
        };
        let first = first.as_bytes();
        for node in self.fuzzy.first_nodes(first, edit_budget(first.len())) {
            cmds.extend_from_slice(self.trie.node_cmds(node));
            let mut narrowed = false;
            if let Some(second) = words.get(1).map(|w| w.as_bytes()) {
                let budget = edit_budget(second.len());
                let mask = letter_mask(second);
                for (word, child) in self.trie.children(node) {
                    let letters_differ = (mask ^ self.trie.mask(child)).count_ones() as usize;
                    if letters_differ <= 2 * budget && osa_capped(second, word, budget) <= budget {
                        narrowed = true;
                        cmds.extend_from_slice(self.trie.subtree_cmds(child));
                    }
                }
            }
            if !narrowed {
                let all = self.trie.subtree_cmds(node);
                cmds.extend_from_slice(&all[..all.len().min(MAX_CANDIDATES)]);
            }
        }
        cmds.sort_unstable();
        cmds.dedup();
        cmds.truncate(MAX_CANDIDATES);
        cmds
    }
}

fn push_unique(v: &mut Vec<u32>, x: u32) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// Calls `f` with `word` and every variant with up to `max` bytes deleted (duplicates possible).
fn for_each_variant(word: &[u8], max: usize, f: &mut dyn FnMut(&[u8])) {
    f(word);
    if word.len() > MAX_FUZZY_WORD || max == 0 {
        return;
    }
    let mut buf = [0u8; MAX_FUZZY_WORD];
    for i in 0..word.len() {
        let n = word.len() - 1;
        buf[..i].copy_from_slice(&word[..i]);
        buf[i..n].copy_from_slice(&word[i + 1..]);
        f(&buf[..n]);
        if max >= 2 {
            let mut buf2 = [0u8; MAX_FUZZY_WORD];
            for j in i..n {
                buf2[..j].copy_from_slice(&buf[..j]);
                buf2[j..n - 1].copy_from_slice(&buf[j + 1..n]);
                f(&buf2[..n - 1]);
            }
        }
    }
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions) over bytes.
#[cfg(test)]
fn osa(a: &[u8], b: &[u8]) -> usize {
    osa_capped(a, b, usize::MAX)
}

/// The optimal string alignment distance (Levenshtein plus adjacent transpositions) over
/// bytes when it is at most `cap`, else `cap + 1` (found early, without finishing the table).
/// Allocation-free for words shorter than 64 bytes.
pub(crate) fn osa_capped(a: &[u8], b: &[u8], cap: usize) -> usize {
    const STACK: usize = 64;
    if a.len().abs_diff(b.len()) > cap {
        return cap.saturating_add(1);
    }
    if a.len() < STACK && b.len() < STACK {
        let mut rows = [[0u8; STACK]; 3];
        osa_rows(a, b, cap, &mut rows)
    } else {
        let mut rows = vec![vec![0u32; b.len() + 1]; 3];
        osa_rows(a, b, cap, &mut rows)
    }
}

/// The OSA dynamic programme over three rolling rows (each at least `b.len() + 1` long):
/// row `i` lives in `rows[i % 3]`. Cells must hold values up to `max(a.len(), b.len())`.
fn osa_rows<C, R>(a: &[u8], b: &[u8], cap: usize, rows: &mut [R]) -> usize
where
    C: Copy + Into<u32> + TryFrom<u32>,
    R: AsMut<[C]>,
{
    let (n, m) = (a.len(), b.len());
    let over = cap.saturating_add(1);
    let capped = |d: usize| if d > cap { over } else { d };
    if n == 0 || m == 0 {
        return capped(n.max(m));
    }
    let cell = |v: u32| C::try_from(v).ok();
    let get = |row: &mut R, j: usize| -> u32 { row.as_mut()[j].into() };
    for j in 0..=m {
        let Some(v) = cell(j as u32) else {
            return capped(n.max(m));
        };
        rows[0].as_mut()[j] = v;
    }
    for i in 1..=n {
        let (cur, prev, prev2) = (i % 3, (i + 2) % 3, (i + 1) % 3);
        let Some(v) = cell(i as u32) else {
            return capped(n.max(m));
        };
        rows[cur].as_mut()[0] = v;
        let mut row_min = i as u32;
        for j in 1..=m {
            let cost = u32::from(a[i - 1] != b[j - 1]);
            let up = get(&mut rows[prev], j) + 1;
            let diag = get(&mut rows[prev], j - 1) + cost;
            let left = get(&mut rows[cur], j - 1) + 1;
            let mut d = up.min(diag).min(left);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(get(&mut rows[prev2], j - 2) + 1);
            }
            row_min = row_min.min(d);
            let Some(v) = cell(d) else {
                return capped(n.max(m));
            };
            rows[cur].as_mut()[j] = v;
        }
        // Each row's minimum is at most the previous row's plus one, so once a row is over
        // the cap the one before it was at least at the cap, and no later cell (even through
        // a transposition two rows back) can come under it again.
        if row_min as usize > cap {
            return over;
        }
    }
    capped(get(&mut rows[n % 3], m) as usize)
}

/// Edits allowed in one word when looking for candidates.
fn edit_budget(len: usize) -> usize {
    if len <= 4 {
        1
    } else {
        2
    }
}

/// How close a message is to one alternative; smaller is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Closeness {
    /// The message is a correct beginning of the command (missing `n` trailing parts).
    Prefix(usize),
    /// Within the typo budget, at this word distance.
    Typo(usize),
    /// The command's leading literal words are each within a typo of the message's words
    /// (at this word distance); offered only when nothing closer exists.
    SimilarStart(usize),
    /// Only the first word is right (at this word distance); offered only when nothing
    /// closer exists.
    SameFirstWord(usize),
}

impl Catalog {
    /// Usages of up to three commands nearest to the message.
    pub(crate) fn suggest(&self, toks: &[Tok<'_>]) -> Vec<String> {
        if toks.is_empty() {
            return Vec::new();
        }
        let words: Vec<String> = toks.iter().map(|t| t.text.to_lowercase()).collect();
        // Ties go to the command with more literal words (as in classification), then to
        // the one declared first.
        let mut ranked: Vec<(Closeness, Reverse<u16>, u32)> = Vec::new();
        let mut memo = Memo::default();
        for cmd in self.candidates(&words) {
            let best = self
                .alts_of(cmd as usize)
                .iter()
                .filter_map(|alt| {
                    let closeness = self.closeness(alt, toks, &words, &mut memo)?;
                    Some((closeness, Reverse(alt.lits)))
                })
                .min();
            if let Some((closeness, lits)) = best {
                ranked.push((closeness, lits, cmd));
            }
        }
        ranked.sort();
        let weak =
            |c: &Closeness| matches!(c, Closeness::SimilarStart(_) | Closeness::SameFirstWord(_));
        if ranked.first().is_some_and(|(c, _, _)| !weak(c)) {
            ranked.retain(|(c, _, _)| !weak(c));
        }
        ranked
            .into_iter()
            .take(MAX_SUGGESTIONS)
            .map(|(_, _, cmd)| self.defs[cmd as usize].usage())
            .collect()
    }

    fn closeness<'s>(
        &'s self,
        alt: &'s Alt,
        toks: &[Tok<'_>],
        words: &[String],
        memo: &mut Memo,
    ) -> Option<Closeness> {
        let slots = self.defs[alt.cmd as usize].slots();
        let kind = |e: &Elem| match e {
            Elem::Slot(s) => slots.get(usize::from(*s)).map(|d| &d.kind),
            Elem::Lit(_) => None,
        };
        // A correct beginning: every word fits, at least one literal among them.
        if toks.len() < alt.elems.len() {
            let fits = toks.iter().zip(alt.elems.iter()).all(|(t, e)| match e {
                Elem::Lit(l) => eq_lower(t.text, l),
                slot => kind(slot).is_some_and(|k| k.accepts(t.text)),
            });
            let has_literal = alt.elems[..toks.len()]
                .iter()
                .any(|e| matches!(e, Elem::Lit(_)));
            if fits && has_literal {
                return Some(Closeness::Prefix(alt.elems.len() - toks.len()));
            }
        }
        let literal_chars: usize = alt
            .elems
            .iter()
            .map(|e| match e {
                Elem::Lit(l) => l.len(),
                Elem::Slot(_) => 0,
            })
            .sum();
        let threshold = (literal_chars / 4).max(1);
        // Past this, how far a message is only orders weak suggestions; the distance is
        // cut there so that a long message stops being scored once it is that far.
        let cap = threshold + MEMO_CAP;
        let distance = word_distance(words, &alt.elems, &kind, memo, cap);
        if distance <= threshold {
            return Some(Closeness::Typo(distance));
        }
        let leading: Vec<(&String, &str)> = words.iter().zip(alt.leading_words()).collect();
        let similar_start = !leading.is_empty()
            && leading.iter().all(|(w, l)| {
                let budget = edit_budget(w.len());
                osa_capped(w.as_bytes(), l.as_bytes(), budget) <= budget
            });
        if similar_start {
            return Some(Closeness::SimilarStart(distance));
        }
        match alt.elems.first() {
            Some(Elem::Lit(l)) if **l == *words[0] => Some(Closeness::SameFirstWord(distance)),
            _ => None,
        }
    }
}

/// Character distances above this count as this plus one ("very different").
const MEMO_CAP: usize = 16;

/// Word-to-literal character distances computed for one message (the alternatives of a
/// command share most of their literal words). Keyed by word position and the literal's
/// address, so that a look-up costs the same however many words the message has: a
/// message of n words costs O(n) per alternative, never O(n²).
#[derive(Default)]
struct Memo {
    entries: FxMap<(usize, usize, usize), usize>,
}

impl Memo {
    fn distance(&mut self, words: &[String], i: usize, literal: &str) -> usize {
        let key = (i, literal.as_ptr() as usize, literal.len());
        *self.entries.entry(key).or_insert_with(|| {
            let word = words.get(i).map_or(&[][..], |w| w.as_bytes());
            osa_capped(word, literal.as_bytes(), MEMO_CAP)
        })
    }
}

/// Edit distance between message words and an alternative's elements: a literal costs its
/// character distance, a slot costs 0 when the word fits it (1 otherwise), an extra word
/// costs 2, a missing literal its length, a missing slot 1; a final `text` slot takes any
/// number of words for free. Above `cap`, the answer is `cap + 1`: a row's smallest
/// distance never falls from one word to the next, so scoring stops at the first row
/// past `cap` and a long message costs only the words that could still be close.
fn word_distance<'s, 'k>(
    words: &[String],
    elems: &'s [Elem],
    kind: &dyn Fn(&Elem) -> Option<&'k SlotKind>,
    memo: &mut Memo,
    cap: usize,
) -> usize {
    const EXTRA_WORD: usize = 2;
    const STACK: usize = 32;
    let insert = |e: &Elem| match e {
        Elem::Lit(l) => l.len().max(1),
        Elem::Slot(_) => 1,
    };
    let m = elems.len();
    let (mut heap_prev, mut heap_cur);
    let (mut stack_prev, mut stack_cur) = ([0usize; STACK + 1], [0usize; STACK + 1]);
    let (mut prev, mut cur): (&mut [usize], &mut [usize]) = if m <= STACK {
        (&mut stack_prev[..], &mut stack_cur[..])
    } else {
        heap_prev = vec![0usize; m + 1];
        heap_cur = vec![0usize; m + 1];
        (&mut heap_prev[..], &mut heap_cur[..])
    };
    for j in 1..=m {
        prev[j] = prev[j - 1] + insert(&elems[j - 1]);
    }
    for (i, w) in words.iter().enumerate() {
        cur[0] = (i + 1) * EXTRA_WORD;
        for j in 1..=m {
            let e = &elems[j - 1];
            let k = kind(e);
            let sub = match (e, k) {
                (Elem::Lit(l), _) => memo.distance(words, i, l),
                (_, Some(k)) => usize::from(!k.accepts(w)),
                (_, None) => 1,
            };
            let mut d = (prev[j] + EXTRA_WORD)
                .min(cur[j - 1] + insert(e))
                .min(prev[j - 1] + sub);
            if k == Some(&SlotKind::Text) {
                d = d.min(prev[j]);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev, &mut cur);
        if prev[..=m].iter().all(|&d| d > cap) {
            return cap + 1;
        }
    }
    prev[m].min(cap + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CommandSpec;
    use crate::classify::Classification;

    #[test]
    fn osa_distance() {
        assert_eq!(osa(b"help", b"help"), 0);
        assert_eq!(osa(b"hepl", b"help"), 1);
        assert_eq!(osa(b"servrs", b"servers"), 1);
        assert_eq!(osa(b"grup", b"group"), 1);
        assert_eq!(osa(b"", b"abc"), 3);
        assert_eq!(osa(b"kitten", b"sitting"), 3);
        assert_eq!(osa(b"ab", b"ba"), 1);
        // Long words take the heap path and agree with the stack path.
        let long_a = [b"x".repeat(70), b"kitten".to_vec()].concat();
        let long_b = [b"x".repeat(70), b"sitting".to_vec()].concat();
        assert_eq!(osa(&long_a, &long_b), 3);
        assert_eq!(osa(&[b'a'; 80], &[b'a'; 81]), 1);
        assert_eq!(osa(&[b'a'; 63], b"b"), 63);
        assert_eq!(osa(&[b'a'; 300], b"b"), 300);
        assert_eq!(osa_capped(b"kitten", b"sitting", 3), 3);
        assert_eq!(osa_capped(b"kitten", b"sitting", 2), 3);
        assert_eq!(osa_capped(b"abcdef", b"uvwxyz", 1), 2);
        assert_eq!(osa_capped(b"a", b"abcdef", 2), 3);
        assert_eq!(osa_capped(b"ab", b"ba", 1), 1);
    }

    #[test]
    fn variants_cover_two_deletions() {
        let mut seen = Vec::new();
        for_each_variant(b"abc", 2, &mut |v| seen.push(v.to_vec()));
        for expected in [&b"abc"[..], b"bc", b"ac", b"ab", b"a", b"b", b"c"] {
            assert!(seen.iter().any(|v| v == expected), "{expected:?}");
        }
        let mut count = 0;
        for_each_variant(&[b'a'; 40], 2, &mut |_| count += 1);
        assert_eq!(count, 1, "long words only match exactly");
    }

    fn catalog() -> Catalog {
        let specs = [
            "help [{topic:text}]",
            "ping",
            "jobs",
            "servers in group {group:name}",
            "servers in group web",
            "add ip {addr:ip} to list {list:name}",
            "deploy {svc:name} to {env:prod|staging}",
        ]
        .iter()
        .map(|p| CommandSpec {
            pattern: p.to_string(),
            ..CommandSpec::default()
        })
        .collect();
        Catalog::build(specs).unwrap()
    }

    fn suggestions(cat: &Catalog, text: &str) -> Vec<String> {
        match cat.classify(text) {
            Classification::Unknown { suggestions, .. } => suggestions,
            other => panic!("{text:?} should be unknown, got {other:?}"),
        }
    }

    #[test]
    fn typo_in_first_word() {
        let cat = catalog();
        assert_eq!(suggestions(&cat, "hepl"), ["help [{topic}]"]);
        assert_eq!(suggestions(&cat, "pnig"), ["ping"]);
        assert_eq!(suggestions(&cat, "hepl me please")[0], "help [{topic}]");
    }

    #[test]
    fn typos_in_several_words() {
        let cat = catalog();
        let s = suggestions(&cat, "servrs in grup web");
        assert_eq!(s, ["servers in group web", "servers in group {group}"]);
        assert!(s.len() <= MAX_SUGGESTIONS);
        let s = suggestions(&cat, "deplyo api to prod");
        assert_eq!(s, ["deploy {svc} to {env}"]);
    }

    #[test]
    fn beginnings_and_first_word() {
        let cat = catalog();
        assert_eq!(
            suggestions(&cat, "add ip 10.0.0.1"),
            ["add ip {addr} to list {list}"]
        );
        let s = suggestions(&cat, "servers blah blah blah");
        assert_eq!(s.len(), 2, "{s:?}");
    }

    #[test]
    fn similar_leading_words() {
        let cat = catalog();
        assert_eq!(
            suggestions(&cat, "dpeloy something else entirely"),
            ["deploy {svc} to {env}"]
        );
        assert_eq!(
            suggestions(&cat, "ad ipp 10.0.0.1 blocked"),
            ["add ip {addr} to list {list}"]
        );
    }

    #[test]
    fn long_patterns_use_the_heap_rows() {
        let words: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let cat = Catalog::build(vec![CommandSpec {
            pattern: words.join(" "),
            ..CommandSpec::default()
        }])
        .unwrap();
        let mut typo = words.clone();
        typo[39] = "w3x".into();
        assert_eq!(suggestions(&cat, &typo.join(" ")), [words.join(" ")]);
    }

    #[test]
    fn nothing_similar() {
        let cat = catalog();
        assert!(suggestions(&cat, "fly me").is_empty());
        assert!(suggestions(&cat, "xyzzy").is_empty());
        assert!(suggestions(&cat, "\u{1F600}\u{1F600}").is_empty());
    }
}
