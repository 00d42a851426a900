//! Build-time ambiguity detection: two commands whose alternatives can match one common text
//! with the same number of literal words would make the precedence rule undecided, so the
//! catalog refuses them, naming both patterns and a sample text they both match.

use std::collections::{HashMap, HashSet};

use crate::catalog::{Catalog, CatalogError};
use crate::index::Alt;
use crate::pattern::Elem;
use crate::slot::{kinds_overlap, witness, SlotKind};

/// Every ambiguous pair of commands, reported once per pair.
pub(crate) fn check(catalog: &Catalog) -> Vec<CatalogError> {
    // Alternatives can only overlap when their first elements can: bucket them by first
    // literal word; the ones starting with a slot are compared with everything.
    let mut buckets: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut wild: Vec<usize> = Vec::new();
    for (id, alt) in catalog.alts.iter().enumerate() {
        match alt.elems.first() {
            Some(Elem::Lit(w)) => buckets.entry(w).or_default().push(id),
            _ => wild.push(id),
        }
    }
    let mut reported: HashSet<(u32, u32)> = HashSet::new();
    let mut errors = Vec::new();
    let mut consider = |a: usize, b: usize| {
        let (x, y) = (&catalog.alts[a], &catalog.alts[b]);
        if x.cmd == y.cmd || x.lits != y.lits {
            return;
        }
        let pair = (x.cmd.min(y.cmd), x.cmd.max(y.cmd));
        if reported.contains(&pair) {
            return;
        }
        if let Some(sample) = common_text(catalog, x, y) {
            reported.insert(pair);
            errors.push(ambiguity_error(catalog, pair, &sample, x.lits));
        }
    };
    let mut keys: Vec<&&str> = buckets.keys().collect();
    keys.sort();
    for key in keys {
        let ids = &buckets[*key];
        for (i, &a) in ids.iter().enumerate() {
            for &b in &ids[i + 1..] {
                consider(a, b);
            }
        }
    }
    for (i, &w) in wild.iter().enumerate() {
        for &b in &wild[i + 1..] {
            consider(w, b);
        }
        for ids in buckets.values() {
            for &b in ids {
                consider(w, b);
            }
        }
    }
    errors.sort_by(|a, b| (a.index, &a.message).cmp(&(b.index, &b.message)));
    errors
}

fn ambiguity_error(catalog: &Catalog, pair: (u32, u32), sample: &str, lits: u16) -> CatalogError {
    let first = &catalog.defs[pair.0 as usize];
    let second = &catalog.defs[pair.1 as usize];
    let words = if lits == 1 { "word" } else { "words" };
    CatalogError {
        index: Some(first.index()),
        message: format!(
            "patterns \"{}\" and \"{}\" are ambiguous: both match \"{sample}\" with {lits} literal \
             {words}; add a literal word to one of them or use slot types that cannot match the \
             same text",
            first.pattern(),
            second.pattern()
        ),
    }
}

fn kind_of<'c>(catalog: &'c Catalog, alt: &Alt, elem: &Elem) -> Option<&'c SlotKind> {
    match elem {
        Elem::Slot(s) => catalog.defs[alt.cmd as usize]
            .slots()
            .get(usize::from(*s))
            .map(|d| &d.kind),
        Elem::Lit(_) => None,
    }
}

/// A text both alternatives match, if one exists (tokens joined by spaces).
fn common_text(catalog: &Catalog, a: &Alt, b: &Alt) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    let mut i = 0;
    loop {
        let (ea, eb) = (a.elems.get(i), b.elems.get(i));
        let text_a = ea.and_then(|e| kind_of(catalog, a, e)) == Some(&SlotKind::Text);
        let text_b = eb.and_then(|e| kind_of(catalog, b, e)) == Some(&SlotKind::Text);
        match (ea, eb) {
            (None, None) => return Some(words.join(" ")),
            // A text slot takes one or more tokens: whatever the other side has left.
            (Some(_), Some(_)) if text_a || text_b => {
                let (rest_alt, rest) = if text_a {
                    (b, &b.elems[i..])
                } else {
                    (a, &a.elems[i..])
                };
                words.extend(rest.iter().map(|e| sample(catalog, rest_alt, e)));
                return Some(words.join(" "));
            }
            (None, _) | (_, None) => return None,
            (Some(x), Some(y)) => words.push(common_token(catalog, (a, x), (b, y))?),
        }
        i += 1;
    }
}

/// A token both elements accept.
fn common_token(catalog: &Catalog, (a, x): (&Alt, &Elem), (b, y): (&Alt, &Elem)) -> Option<String> {
    match (x, y) {
        (Elem::Lit(l), Elem::Lit(m)) => (l == m).then(|| l.to_string()),
        (Elem::Lit(l), slot) => kind_of(catalog, b, slot)?.accepts(l).then(|| l.to_string()),
        (slot, Elem::Lit(l)) => kind_of(catalog, a, slot)?.accepts(l).then(|| l.to_string()),
        (sx, sy) => {
            let (kx, ky) = (kind_of(catalog, a, sx)?, kind_of(catalog, b, sy)?);
            if !kinds_overlap(kx, ky) {
                return None;
            }
            Some(witness(kx, ky).unwrap_or_else(|| "x".to_string()))
        }
    }
}

/// Some token the element accepts.
fn sample(catalog: &Catalog, alt: &Alt, elem: &Elem) -> String {
    match (elem, kind_of(catalog, alt, elem)) {
        (Elem::Lit(l), _) => l.to_string(),
        (_, Some(kind)) => witness(kind, kind).unwrap_or_else(|| "x".to_string()),
        (_, None) => "x".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::{Catalog, CatalogError, CommandSpec};

    fn build(patterns: &[&str]) -> Result<Catalog, Vec<CatalogError>> {
        Catalog::build(
            patterns
                .iter()
                .enumerate()
                .map(|(i, p)| CommandSpec {
                    name: Some(format!("c{i}")),
                    pattern: p.to_string(),
                    ..CommandSpec::default()
                })
                .collect(),
        )
    }

    fn errors(patterns: &[&str]) -> Vec<CatalogError> {
        match build(patterns) {
            Ok(_) => panic!("{patterns:?} should be ambiguous"),
            Err(e) => e,
        }
    }

    #[test]
    fn same_literal_count_overlap_is_an_error_naming_both() {
        let e = errors(&["ping", "restart {svc:word}", "restart {host:hostname}"]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].index, Some(1));
        assert_eq!(
            e[0].message,
            "patterns \"restart {svc:word}\" and \"restart {host:hostname}\" are ambiguous: both \
             match \"restart x\" with 1 literal word; add a literal word to one of them or use \
             slot types that cannot match the same text"
        );
    }

    #[test]
    fn more_literal_words_make_overlap_acceptable() {
        assert!(build(&["servers in group web", "servers in group {group:name}"]).is_ok());
        assert!(build(&["show {what:word}", "show {what:word} now"]).is_ok());
    }

    #[test]
    fn disjoint_types_are_fine() {
        assert!(build(&[
            "block {a:ip}",
            "block {n:cidr}",
            "block {d:duration}",
            "block {n:int}"
        ])
        .is_ok());
        assert!(build(&["top {n:int(1..10)}", "top {n:int(11..)}"]).is_ok());
        assert!(build(&["deploy {env:prod|staging}", "deploy {env:dev|test}"]).is_ok());
    }

    #[test]
    fn overlapping_ranges_and_choices_are_errors() {
        assert_eq!(
            errors(&["top {n:int(1..10)}", "top {m:int(10..)}"]).len(),
            1
        );
        let e = errors(&["deploy {env:prod|staging}", "deploy {target:name}"]);
        assert!(e[0].message.contains("\"deploy prod\""), "{}", e[0]);
        let e = errors(&["restart {x:word}", "restart {env:PROD|staging}"]);
        assert!(e[0].message.contains("\"restart PROD\""), "{}", e[0]);
    }

    #[test]
    fn optional_parts_and_text_are_expanded() {
        // "say hi" matches both with one literal word.
        let e = errors(&["say {msg:text}", "say {w:word} [loudly]"]);
        assert!(e[0].message.contains("both match \"say x\""), "{}", e[0]);
        // A text slot swallows the rest of the other pattern.
        let e = errors(&["note {msg:text}", "note {a:word} {b:int}"]);
        assert!(e[0].message.contains("\"note x 0\""), "{}", e[0]);
        // Different lengths without text never overlap.
        assert!(build(&["get {a:word}", "get {a:word} {b:word} {c:word}"]).is_ok());
    }

    #[test]
    fn leading_slots_are_compared_with_everything() {
        let e = errors(&["{host:hostname} status", "ping {target:word}"]);
        assert!(e[0].message.contains("\"ping status\""), "{}", e[0]);
    }
}
