//! The pattern compiler: parses pattern text (`add ip {addr:ip} to list {list:name}
//! [in {env:prod|staging=prod}]`) into literal words, typed slots and optional groups; derives
//! the command name and usage line; and expands optional groups into the plain token
//! sequences ("alternatives") that the classifier and the ambiguity check work on.

use crate::slot::{SlotDef, SlotKind};

/// The most optional groups one pattern may have (each doubles the alternatives).
pub const MAX_OPTIONAL_GROUPS: usize = 8;

/// The type names accepted in `{name:type}`, as listed in error messages.
const TYPE_LIST: &str =
    "word, name, hostname, ip, cidr, int, duration, choice a|b, jobid, secret, text";

/// One piece of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A literal word as written.
    Lit(String),
    /// A slot, by index into [`Pattern::slots`].
    Slot(usize),
}

/// A piece and the optional group it belongs to, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    pub piece: Piece,
    pub group: Option<usize>,
}

/// A parsed pattern.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pattern {
    pub parts: Vec<Part>,
    pub slots: Vec<SlotDef>,
    pub groups: usize,
}

/// One element of an alternative: a lower-case literal word or a slot index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    Lit(Box<str>),
    Slot(u16),
}

/// A pattern with each optional group either taken or left out: a plain token sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub elems: Vec<Elem>,
    /// Number of literal words (the precedence score).
    pub lits: usize,
}

impl Pattern {
    /// Parses pattern text; on failure returns every problem found (without the
    /// `pattern "...": ` prefix, which the catalog adds).
    pub fn parse(text: &str) -> Result<Pattern, Vec<String>> {
        Parser::new(text).run()
    }

    /// Literal words outside optional groups, lower-cased and joined by one space.
    pub fn derived_name(&self) -> String {
        self.required_words().join(" ")
    }

    /// Lower-case literal words outside optional groups, in order.
    pub fn required_words(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter(|p| p.group.is_none())
            .filter_map(|p| match &p.piece {
                Piece::Lit(w) => Some(w.to_lowercase()),
                Piece::Slot(_) => None,
            })
            .collect()
    }

    /// `add ip {addr} to list {list} [in {env}]`.
    pub fn usage(&self) -> String {
        let mut out = String::new();
        let mut open: Option<usize> = None;
        for part in &self.parts {
            if open.is_some() && open != part.group {
                out.push(']');
                open = None;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            if part.group.is_some() && open.is_none() {
                out.push('[');
                open = part.group;
            }
            match &part.piece {
                Piece::Lit(w) => out.push_str(w),
                Piece::Slot(i) => {
                    out.push('{');
                    out.push_str(self.slots.get(*i).map_or("?", |s| s.name.as_str()));
                    out.push('}');
                }
            }
        }
        if open.is_some() {
            out.push(']');
        }
        out
    }

    /// Every combination of optional groups, best first: more literal words, then more
    /// elements, then earlier groups taken.
    pub fn shapes(&self) -> Vec<Shape> {
        let mut shapes: Vec<(Shape, u32)> = (0u32..(1u32 << self.groups))
            .map(|mask| {
                let elems: Vec<Elem> = self
                    .parts
                    .iter()
                    .filter(|p| p.group.is_none_or(|g| mask & (1 << g) != 0))
                    .map(|p| match &p.piece {
                        Piece::Lit(w) => Elem::Lit(w.to_lowercase().into_boxed_str()),
                        Piece::Slot(i) => Elem::Slot(u16::try_from(*i).unwrap_or(u16::MAX)),
                    })
                    .collect();
                let lits = elems.iter().filter(|e| matches!(e, Elem::Lit(_))).count();
                // Group 0 taken should sort before group 1 taken: compare reversed bits.
                let preference = mask.reverse_bits();
                (Shape { elems, lits }, preference)
            })
            .collect();
        shapes.sort_by(|(a, pa), (b, pb)| {
            (b.lits, b.elems.len(), pb).cmp(&(a.lits, a.elems.len(), pa))
        });
        shapes.into_iter().map(|(s, _)| s).collect()
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    errors: Vec<String>,
    parts: Vec<Part>,
    slots: Vec<SlotDef>,
    groups: usize,
    /// The group being read and whether it has content yet.
    open: Option<(usize, bool)>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            pos: 0,
            errors: Vec::new(),
            parts: Vec::new(),
            slots: Vec::new(),
            groups: 0,
            open: None,
        }
    }

    fn run(mut self) -> Result<Pattern, Vec<String>> {
        while let Some(c) = self.text[self.pos..].chars().next() {
            match c {
                c if c.is_whitespace() => self.pos += c.len_utf8(),
                '[' => self.open_group(),
                ']' => self.close_group(),
                '{' => self.slot(),
                '}' => {
                    self.errors.push("unmatched \"}\"".into());
                    self.pos += 1;
                }
                _ => self.literal(),
            }
        }
        if self.open.is_some() {
            self.errors.push("unclosed \"[\"".into());
        }
        self.check_whole();
        if self.errors.is_empty() {
            Ok(Pattern {
                parts: self.parts,
                slots: self.slots,
                groups: self.groups,
            })
        } else {
            Err(self.errors)
        }
    }

    fn open_group(&mut self) {
        self.pos += 1;
        if self.open.is_some() {
            self.errors
                .push("optional parts cannot be nested (\"[\" inside \"[ ]\")".into());
            return;
        }
        self.open = Some((self.groups, false));
        self.groups += 1;
    }

    fn close_group(&mut self) {
        self.pos += 1;
        match self.open.take() {
            None => self.errors.push("unmatched \"]\"".into()),
            Some((_, false)) => self.errors.push("empty optional part \"[]\"".into()),
            Some((_, true)) => {}
        }
    }

    fn push(&mut self, piece: Piece) {
        let group = self.open.as_mut().map(|(g, has)| {
            *has = true;
            *g
        });
        self.parts.push(Part { piece, group });
    }

    fn literal(&mut self) {
        let rest = &self.text[self.pos..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | '{' | '}'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        self.pos += end;
        if rest[end..].starts_with('{') {
            self.errors.push(format!(
                "literal \"{word}\" runs into a slot; put a space between them"
            ));
        }
        self.push(Piece::Lit(word.to_string()));
    }

    fn slot(&mut self) {
        let rest = &self.text[self.pos..];
        let Some(close) = rest.find('}') else {
            self.errors.push("unclosed \"{\"".into());
            self.pos = self.text.len();
            return;
        };
        let inner = &rest[1..close];
        self.pos += close + 1;
        if inner.contains('{') {
            self.errors
                .push(format!("unclosed \"{{\" in \"{{{inner}\""));
            return;
        }
        let after = self.text[self.pos..].chars().next();
        if after.is_some_and(|c| !c.is_whitespace() && c != '[' && c != ']') {
            self.errors.push(format!(
                "slot \"{{{inner}}}\" runs into the next word; put a space after it"
            ));
        }
        match parse_slot(inner, self.open.is_some()) {
            Ok(mut def) => {
                if self.slots.iter().any(|s| s.name == def.name) {
                    self.errors
                        .push(format!("duplicate slot name \"{}\"", def.name));
                }
                // A slot with a default may be left out even outside "[ ]": it forms an
                // optional part of its own.
                let implicit = def.default.is_some() && self.open.is_none();
                if implicit {
                    def.optional = true;
                    self.open = Some((self.groups, false));
                    self.groups += 1;
                }
                self.slots.push(def);
                self.push(Piece::Slot(self.slots.len() - 1));
                if implicit {
                    self.open = None;
                }
            }
            Err(e) => self.errors.push(e),
        }
    }

    /// Checks that need the whole pattern.
    fn check_whole(&mut self) {
        if self.parts.is_empty() {
            if self.errors.is_empty() {
                self.errors.push("the pattern is empty".into());
            }
            return;
        }
        if self.parts.iter().all(|p| p.group.is_some()) {
            self.errors
                .push("needs at least one word or slot outside \"[ ]\"".into());
        }
        if self.groups > MAX_OPTIONAL_GROUPS {
            self.errors.push(format!(
                "too many optional parts ({}, at most {MAX_OPTIONAL_GROUPS})",
                self.groups
            ));
        }
        let last = self.parts.len() - 1;
        for (i, part) in self.parts.iter().enumerate() {
            if let Piece::Slot(s) = part.piece {
                let slot = &self.slots[s];
                if slot.kind == SlotKind::Text && i != last {
                    self.errors.push(format!(
                        "text slot \"{{{}}}\" must be the last part of the pattern",
                        slot.name
                    ));
                }
            }
        }
    }
}

/// Parses `name:type`, `name:type=default`, `name:a|b`, `name:int(1..100)`.
fn parse_slot(inner: &str, optional: bool) -> Result<SlotDef, String> {
    let Some((name, ty)) = inner.split_once(':') else {
        let name = inner.trim();
        return Err(format!(
            "slot \"{{{name}}}\" has no type (write e.g. {{{name}:word}})"
        ));
    };
    let name = name.trim();
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(format!(
            "bad slot name \"{name}\" (letters, digits, '_' and '-', starting with a letter)"
        ));
    }
    let (ty, default) = match ty.split_once('=') {
        Some((t, d)) => (t.trim(), Some(d.trim())),
        None => (ty.trim(), None),
    };
    let kind = parse_kind(ty)?;
    let default = match default {
        None => None,
        Some(_) if kind == SlotKind::Secret => {
            return Err(format!(
                "secret slot \"{name}\" cannot have a default: it would be written in the \
                 configuration and shown in help"
            ))
        }
        Some(d) => Some(
            kind.parse(d)
                .map_err(|problem| format!("bad default for slot \"{name}\": {problem}"))?,
        ),
    };
    Ok(SlotDef {
        name: name.to_string(),
        kind,
        optional,
        default,
    })
}

fn parse_kind(ty: &str) -> Result<SlotKind, String> {
    if ty.contains('|') {
        let alts: Vec<String> = ty.split('|').map(|a| a.trim().to_string()).collect();
        if alts
            .iter()
            .any(|a| a.is_empty() || a.contains(char::is_whitespace))
        {
            return Err(format!(
                "bad choice \"{ty}\" (alternatives must be single non-empty words)"
            ));
        }
        for (i, a) in alts.iter().enumerate() {
            if alts[..i]
                .iter()
                .any(|b| b.to_lowercase() == a.to_lowercase())
            {
                return Err(format!("choice \"{ty}\" lists \"{a}\" twice"));
            }
        }
        return Ok(SlotKind::Choice(alts));
    }
    let lower = ty.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "word" => SlotKind::Word,
        "secret" => SlotKind::Secret,
        "name" => SlotKind::Name,
        "hostname" => SlotKind::Hostname,
        "ip" => SlotKind::Ip,
        "cidr" => SlotKind::Cidr,
        "int" => SlotKind::Int {
            min: None,
            max: None,
        },
        "duration" => SlotKind::Duration,
        "jobid" => SlotKind::JobId,
        "text" => SlotKind::Text,
        _ if lower.starts_with("int(") && lower.ends_with(')') => {
            parse_bounds(&ty[4..ty.len() - 1])?
        }
        _ => {
            return Err(format!(
                "unknown slot type \"{ty}\" (expected one of: {TYPE_LIST})"
            ))
        }
    })
}

/// `1..100`, `1..`, `..10`, `..`.
fn parse_bounds(inner: &str) -> Result<SlotKind, String> {
    let bad =
        || format!("bad int bounds \"int({inner})\" (write e.g. int(1..100), int(1..), int(..10))");
    let (lo, hi) = inner.split_once("..").ok_or_else(bad)?;
    let side = |s: &str| -> Result<Option<i64>, String> {
        let s = s.trim();
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| bad())
        }
    };
    let (min, max) = (side(lo)?, side(hi)?);
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            return Err(format!(
                "bad int bounds \"int({inner})\": the lower bound is above the upper bound"
            ));
        }
    }
    Ok(SlotKind::Int { min, max })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::Value;

    fn parse(text: &str) -> Pattern {
        match Pattern::parse(text) {
            Ok(p) => p,
            Err(e) => panic!("{text:?} should parse: {e:?}"),
        }
    }

    fn errors(text: &str) -> Vec<String> {
        match Pattern::parse(text) {
            Ok(p) => panic!("{text:?} should not parse: {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn full_example() {
        let p = parse("add ip {addr:ip} to list {list:name} [in {env:prod|staging=prod}]");
        assert_eq!(p.derived_name(), "add ip to list");
        assert_eq!(p.usage(), "add ip {addr} to list {list} [in {env}]");
        assert_eq!(p.slots.len(), 3);
        assert_eq!(p.slots[0].kind, SlotKind::Ip);
        assert!(!p.slots[0].optional);
        let env = &p.slots[2];
        assert!(env.optional);
        assert_eq!(
            env.kind,
            SlotKind::Choice(vec!["prod".into(), "staging".into()])
        );
        assert_eq!(env.default, Some(Value::Choice("prod".into())));
        let shapes = p.shapes();
        assert_eq!(shapes.len(), 2);
        assert_eq!(shapes[0].lits, 5);
        assert_eq!(shapes[1].lits, 4);
    }

    #[test]
    fn usage_with_groups_and_spacing() {
        let p = parse("  [please]   restart  {svc:word} [now] [for {d:duration=5m}] ");
        assert_eq!(p.usage(), "[please] restart {svc} [now] [for {d}]");
        assert_eq!(p.derived_name(), "restart");
        assert_eq!(p.groups, 3);
        assert_eq!(p.shapes().len(), 8);
        let q = parse("Show [the] Log {n:int}");
        assert_eq!(q.derived_name(), "show log");
    }

    #[test]
    fn bounds_and_defaults() {
        let p = parse("top {n:int(1..100)=10} {m:int(..5)} {k:int(-3..)}");
        assert!(p.slots[0].optional, "a default makes a slot optional");
        assert_eq!(p.usage(), "top [{n}] {m} {k}");
        assert_eq!(
            p.slots[0].kind,
            SlotKind::Int {
                min: Some(1),
                max: Some(100)
            }
        );
        assert_eq!(p.slots[0].default, Some(Value::Int(10)));
        assert_eq!(
            p.slots[1].kind,
            SlotKind::Int {
                min: None,
                max: Some(5)
            }
        );
        assert_eq!(
            p.slots[2].kind,
            SlotKind::Int {
                min: Some(-3),
                max: None
            }
        );
    }

    #[test]
    fn syntax_errors() {
        let e = errors("add ip {addr:ipv4}");
        assert_eq!(
            e,
            ["unknown slot type \"ipv4\" (expected one of: word, name, hostname, ip, cidr, int, duration, choice a|b, jobid, secret, text)"]
        );
        assert!(errors("say {msg:text} now")[0].contains("must be the last part"));
        assert!(errors("copy {a:word} {a:word}")[0].contains("duplicate slot name \"a\""));
        assert!(errors("x [a [b]]")[0].contains("nested"));
        assert!(errors("x [a")[0].contains("unclosed \"[\""));
        assert!(errors("x a]")[0].contains("unmatched \"]\""));
        assert!(errors("x {a:word")[0].contains("unclosed \"{\""));
        assert!(errors("x a}")[0].contains("unmatched \"}\""));
        assert!(errors("x []")[0].contains("empty optional part"));
        assert!(errors("x {a}")[0].contains("has no type"));
        assert!(errors("x {9a:word}")[0].contains("bad slot name"));
        assert!(errors("x {n:int(5..1)}")[0].contains("lower bound is above"));
        assert!(errors("x {n:int(a..b)}")[0].contains("bad int bounds"));
        assert!(errors("x {n:int=ten}")[0].contains("bad default for slot \"n\""));
        assert!(errors("x {t:secret=hunter2}")[0].contains("cannot have a default"));
        assert!(errors("x {e:a|A}")[0].contains("twice"));
        assert!(errors("x {e:a||b}")[0].contains("bad choice"));
        assert!(errors("x{a:word}")[0].contains("runs into a slot"));
        assert!(errors("x {a:word}y")[0].contains("runs into the next word"));
        assert!(errors("   ")[0].contains("empty"));
        assert!(errors("[x]")[0].contains("outside"));
        assert!(errors("a [b] [c] [d] [e] [f] [g] [h] [i] [j]")[0].contains("too many"));
        // Several problems are all reported.
        assert_eq!(errors("x {a:foo} {b:bar}").len(), 2);
    }

    #[test]
    fn optional_text_last() {
        let p = parse("say [{msg:text}]");
        assert!(p.slots[0].optional);
        assert_eq!(p.usage(), "say [{msg}]");
    }
}
