//! The classifier: matches a message against the catalog's alternatives (found through the
//! trie), applies the precedence rule, and produces a [`Classification`]: a [`Match`] with
//! typed arguments, an [`ArgumentError`] for a command whose words matched but whose value did
//! not parse, or `Unknown` with suggestions.

use std::collections::BTreeMap;
use std::fmt;

use crate::catalog::Catalog;
use crate::index::Alt;
use crate::input::{eq_lower, excerpt, normalize, tokenize, Tok};
use crate::pattern::Elem;
use crate::slot::{Parsed, Reject, SlotKind, Value};

/// How a message classifies.
#[derive(Clone, Debug, PartialEq)]
pub enum Classification {
    /// Empty or whitespace-only text.
    Empty,
    Matched(Match),
    /// Literals of a command matched but a value did not parse.
    BadArgument(ArgumentError),
    /// Nothing matched; `suggestions` are usages of up to three similar commands.
    Unknown {
        text: String,
        suggestions: Vec<String>,
    },
}

/// A message matched to a command.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// [`crate::CommandDef::name`].
    pub command: String,
    /// Every slot: given, or default; optional slots without default and not given are absent.
    pub args: BTreeMap<String, Value>,
}

/// A command's literal words matched but a value did not parse (or was missing).
/// Display: `"999.1.1.1" is not an IP address — usage: add ip {addr} to list {list}`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{problem} — usage: {usage}")]
pub struct ArgumentError {
    pub command: String,
    pub slot: String,
    /// The offending text ("" when the value is missing).
    pub value: String,
    /// e.g. `"999.1.1.1" is not an IP address`.
    pub problem: String,
    pub usage: String,
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Classification::Empty => f.write_str("empty message: nothing to do (try \"help\")"),
            Classification::Matched(m) => {
                f.write_str(&m.command)?;
                if !m.args.is_empty() {
                    let args: Vec<String> =
                        m.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    write!(f, " ({})", args.join(", "))?;
                }
                Ok(())
            }
            Classification::BadArgument(e) => write!(f, "{e}"),
            Classification::Unknown { text, suggestions } => {
                write!(f, "unknown command \"{}\"", excerpt(text))?;
                if !suggestions.is_empty() {
                    write!(f, " — did you mean: {}?", suggestions.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// How one alternative fares against a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every word and value fits.
    Full,
    /// Every literal word fits but the value at `elem` does not (`tok` is `None` when the
    /// message ended before that slot).
    Bad {
        elem: usize,
        tok: Option<usize>,
        reject: Reject,
    },
    /// The words do not fit.
    NoMatch,
}

/// The classifier's decision, before values are materialized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Empty,
    Matched {
        alt: usize,
    },
    Bad {
        alt: usize,
        elem: usize,
        tok: Option<usize>,
        reject: Reject,
    },
    Unknown,
}

impl Catalog {
    /// Classifies one message. See the crate docs for the precedence rule.
    pub fn classify(&self, text: &str) -> Classification {
        self.classify_detail(text).1
    }

    pub(crate) fn classify_detail(&self, text: &str) -> (Verdict, Classification) {
        let msg = normalize(text);
        if msg.is_empty() {
            return (Verdict::Empty, Classification::Empty);
        }
        let toks = tokenize(msg);
        let mut kept = Kept::NONE;
        let verdict = self.decide(msg, &toks, &mut kept);
        let classification = match verdict {
            Verdict::Empty => Classification::Empty,
            Verdict::Matched { alt } => {
                Classification::Matched(self.build_match(alt, msg, &toks, &kept))
            }
            Verdict::Bad {
                alt,
                elem,
                tok,
                reject,
            } => {
                Classification::BadArgument(self.argument_error(alt, elem, tok, reject, msg, &toks))
            }
            Verdict::Unknown => Classification::Unknown {
                text: text.trim().to_string(),
                suggestions: self.suggest(&toks),
            },
        };
        (verdict, classification)
    }

    /// Picks the winning alternative: the full match with the most literal words (ties: the
    /// earlier command), else the best "bad value" alternative, else unknown. The winner's
    /// parsed values are left in `kept`.
    pub(crate) fn decide(&self, msg: &str, toks: &[Tok<'_>], kept: &mut Kept) -> Verdict {
        let mut scratch = Kept::NONE;
        let mut best_full: Option<(u64, usize)> = None;
        let mut best_bad: Option<(u64, Verdict)> = None;
        self.trie.walk(toks, |depth, ids| {
            for &id in ids {
                let id = id as usize;
                let alt = &self.alts[id];
                let key = alt.key();
                if best_full.is_some_and(|(k, _)| key >= k) {
                    continue;
                }
                match self.evaluate(alt, msg, toks, depth, &mut scratch) {
                    Outcome::Full => {
                        best_full = Some((key, id));
                        *kept = scratch;
                    }
                    Outcome::Bad { elem, tok, reject } => {
                        if best_bad.is_none_or(|(k, _)| key < k) {
                            let v = Verdict::Bad {
                                alt: id,
                                elem,
                                tok,
                                reject,
                            };
                            best_bad = Some((key, v));
                        }
                    }
                    Outcome::NoMatch => {}
                }
            }
        });
        match (best_full, best_bad) {
            (Some((_, alt)), _) => Verdict::Matched { alt },
            (None, Some((_, bad))) => bad,
            (None, None) => Verdict::Unknown,
        }
    }

    /// Matches one alternative; the first `from` tokens are known to equal its leading words.
    /// Parsed values are written to `kept` by element position.
    pub(crate) fn evaluate(
        &self,
        alt: &Alt,
        msg: &str,
        toks: &[Tok<'_>],
        from: usize,
        kept: &mut Kept,
    ) -> Outcome {
        let elems = &alt.elems;
        let (n, m) = (toks.len(), elems.len());
        if n > m && !alt.text_last {
            return Outcome::NoMatch;
        }
        let paired = n.min(m);
        // Literal words first: cheap, and they decide whether this is the command at all.
        for i in from..paired {
            if let Elem::Lit(word) = &elems[i] {
                if !eq_lower(toks[i].text, word) {
                    return Outcome::NoMatch;
                }
            }
        }
        if elems[paired..].iter().any(|e| matches!(e, Elem::Lit(_))) {
            return Outcome::NoMatch;
        }
        let slots = self.defs[alt.cmd as usize].slots();
        for i in from..paired {
            if let Elem::Slot(s) = elems[i] {
                let Some(def) = slots.get(usize::from(s)) else {
                    return Outcome::NoMatch;
                };
                let value = slot_text(&def.kind, msg, toks, i);
                match def.kind.check(value) {
                    Ok(parsed) => kept.set(i, parsed),
                    Err(reject) => {
                        return Outcome::Bad {
                            elem: i,
                            tok: Some(i),
                            reject,
                        }
                    }
                }
            }
        }
        if paired < m {
            return Outcome::Bad {
                elem: paired,
                tok: None,
                reject: Reject::Missing,
            };
        }
        Outcome::Full
    }

    /// The match for a winning alternative; values already parsed in `kept` are reused.
    pub(crate) fn build_match(
        &self,
        alt_id: usize,
        msg: &str,
        toks: &[Tok<'_>],
        kept: &Kept,
    ) -> Match {
        let alt = &self.alts[alt_id];
        let def = &self.defs[alt.cmd as usize];
        let mut args = BTreeMap::new();
        for (i, elem) in alt.elems.iter().enumerate() {
            if let Elem::Slot(s) = elem {
                if let Some(slot) = def.slots().get(usize::from(*s)) {
                    let text = slot_text(&slot.kind, msg, toks, i);
                    let parsed = kept.get(i).map_or_else(|| slot.kind.check(text), Ok);
                    if let Ok(parsed) = parsed {
                        args.insert(slot.name.clone(), slot.kind.value_of(text, parsed));
                    }
                }
            }
        }
        for slot in def.slots() {
            if let Some(default) = &slot.default {
                if !args.contains_key(&slot.name) {
                    args.insert(slot.name.clone(), default.clone());
                }
            }
        }
        Match {
            command: def.name().to_string(),
            args,
        }
    }

    pub(crate) fn argument_error(
        &self,
        alt_id: usize,
        elem: usize,
        tok: Option<usize>,
        reject: Reject,
        msg: &str,
        toks: &[Tok<'_>],
    ) -> ArgumentError {
        let alt = &self.alts[alt_id];
        let def = &self.defs[alt.cmd as usize];
        let slot = match alt.elems.get(elem) {
            Some(Elem::Slot(s)) => def.slots().get(usize::from(*s)),
            _ => None,
        };
        let (slot_name, kind) = match slot {
            Some(s) => (s.name.clone(), s.kind.clone()),
            None => (String::new(), SlotKind::Word),
        };
        let (value, problem) = match tok {
            Some(i) => {
                let value = slot_text(&kind, msg, toks, i);
                (value.to_string(), kind.problem(&excerpt(value), reject))
            }
            None => (
                String::new(),
                format!("missing {{{slot_name}}}: expected {kind}"),
            ),
        };
        ArgumentError {
            command: def.name().to_string(),
            slot: slot_name,
            value,
            problem,
            usage: def.usage_str().to_string(),
        }
    }
}

/// Element positions whose parsed values are kept while matching.
const KEPT: usize = 12;

/// Values parsed while matching, by element position, so the winner is not parsed twice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kept([Option<Parsed>; KEPT]);

impl Kept {
    pub const NONE: Kept = Kept([None; KEPT]);

    fn get(&self, i: usize) -> Option<Parsed> {
        self.0.get(i).copied().flatten()
    }

    fn set(&mut self, i: usize, parsed: Parsed) {
        if let Some(cell) = self.0.get_mut(i) {
            *cell = Some(parsed);
        }
    }
}

/// The text a slot at element `i` receives: one token, or the rest of the line for `text`.
#[inline]
fn slot_text<'m>(kind: &SlotKind, msg: &'m str, toks: &[Tok<'m>], i: usize) -> &'m str {
    match (kind, toks.get(i)) {
        (SlotKind::Text, Some(t)) => msg.get(t.start..).unwrap_or(t.text).trim_end(),
        (_, Some(t)) => t.text,
        (_, None) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CommandSpec;
    use crate::slot::DurationValue;

    fn spec(pattern: &str) -> CommandSpec {
        CommandSpec {
            pattern: pattern.into(),
            help: "Does things.".into(),
            ..CommandSpec::default()
        }
    }

    fn catalog(patterns: &[&str]) -> Catalog {
        match Catalog::build(patterns.iter().map(|p| spec(p)).collect()) {
            Ok(c) => c,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn matched(cat: &Catalog, text: &str) -> Match {
        match cat.classify(text) {
            Classification::Matched(m) => m,
            other => panic!("{text:?} should match, got {other:?}"),
        }
    }

    fn bad(cat: &Catalog, text: &str) -> ArgumentError {
        match cat.classify(text) {
            Classification::BadArgument(e) => e,
            other => panic!("{text:?} should be a bad argument, got {other:?}"),
        }
    }

    fn arg<'a>(m: &'a Match, name: &str) -> &'a Value {
        m.args
            .get(name)
            .unwrap_or_else(|| panic!("no arg {name} in {m:?}"))
    }

    fn network() -> Catalog {
        catalog(&[
            "help [{topic:text}]",
            "ping",
            "add ip {addr:ip} to list {list:name} [in {env:prod|staging=prod}]",
            "servers in group {group:name}",
            "servers in group web",
            "say {msg:text}",
            "wait {d:duration} [then {what:word}]",
            "top {n:int(1..100)=10}",
            "show job {id:jobid}",
            "block {net:cidr} on {host:hostname}",
        ])
    }

    #[test]
    fn matches_with_typed_args() {
        let cat = network();
        let m = matched(&cat, "add ip 10.0.0.1 to list Blocked");
        assert_eq!(m.command, "add ip to list");
        assert_eq!(arg(&m, "addr"), &Value::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(arg(&m, "list"), &Value::Name("Blocked".into()));
        assert_eq!(arg(&m, "env"), &Value::Choice("prod".into()));
        let m = matched(&cat, "add ip ::1 to list x in STAGING");
        assert_eq!(arg(&m, "env"), &Value::Choice("staging".into()));
        let m = matched(&cat, "block 10.0.0.0/8 on web-1.example.com");
        assert_eq!(arg(&m, "net"), &Value::Cidr("10.0.0.0/8".into()));
        let m = matched(&cat, "show job 0190B4A2-7C1E-7D3A-9F00-1B2C3D4E5F60");
        assert_eq!(
            arg(&m, "id"),
            &Value::JobId("0190b4a2-7c1e-7d3a-9f00-1b2c3d4e5f60".into())
        );
    }

    #[test]
    fn optional_parts_and_defaults() {
        let cat = network();
        let m = matched(&cat, "wait 1h30m");
        assert_eq!(arg(&m, "d"), &Value::Duration(DurationValue(5_400_000)));
        assert!(!m.args.contains_key("what"), "no default => absent");
        let m = matched(&cat, "wait 5m then deploy");
        assert_eq!(arg(&m, "what"), &Value::Word("deploy".into()));
        assert_eq!(matched(&cat, "top").args.get("n"), Some(&Value::Int(10)));
        assert_eq!(matched(&cat, "top 3").args.get("n"), Some(&Value::Int(3)));
        let m = matched(&cat, "help");
        assert!(m.args.is_empty());
    }

    #[test]
    fn literals_case_insensitive_values_keep_case() {
        let cat = network();
        let m = matched(&cat, "ADD Ip 10.0.0.1 TO lIsT MyList");
        assert_eq!(arg(&m, "list"), &Value::Name("MyList".into()));
        assert_eq!(matched(&cat, "PING").command, "ping");
    }

    #[test]
    fn whitespace_and_trailing_marks() {
        let cat = network();
        let m = matched(&cat, "  add   ip\t10.0.0.1  to list   x  ");
        assert_eq!(m.command, "add ip to list");
        assert_eq!(matched(&cat, "ping?").command, "ping");
        assert_eq!(matched(&cat, "ping .").command, "ping");
        assert_eq!(matched(&cat, "ping ?  ").command, "ping");
        assert_eq!(cat.classify("   "), Classification::Empty);
        assert_eq!(cat.classify(""), Classification::Empty);
    }

    #[test]
    fn text_slot_keeps_inner_spacing() {
        let cat = network();
        let m = matched(&cat, "say   hello    big   world  ");
        assert_eq!(arg(&m, "msg"), &Value::Text("hello    big   world".into()));
        let m = matched(&cat, "help add  ip");
        assert_eq!(arg(&m, "topic"), &Value::Text("add  ip".into()));
    }

    #[test]
    fn more_literal_words_win() {
        let cat = network();
        let m = matched(&cat, "servers in group web");
        assert_eq!(m.command, "servers in group web");
        assert!(m.args.is_empty());
        let m = matched(&cat, "servers in group db");
        assert_eq!(m.command, "servers in group");
        assert_eq!(arg(&m, "group"), &Value::Name("db".into()));
        // Case of the literal does not matter for precedence.
        assert_eq!(
            matched(&cat, "servers in group WEB").command,
            "servers in group web"
        );
    }

    #[test]
    fn bad_argument_message() {
        let cat = catalog(&["add ip {addr:ip} to list {list:name}"]);
        let e = bad(&cat, "add ip 999.1.1.1 to list blocked");
        assert_eq!(
            e.to_string(),
            "\"999.1.1.1\" is not an IP address — usage: add ip {addr} to list {list}"
        );
        assert_eq!(e.slot, "addr");
        assert_eq!(e.value, "999.1.1.1");
        assert_eq!(e.command, "add ip to list");
        let c = cat.classify("add ip 999.1.1.1 to list blocked");
        assert_eq!(
            c.to_string(),
            "\"999.1.1.1\" is not an IP address — usage: add ip {addr} to list {list}"
        );
    }

    #[test]
    fn bad_argument_details() {
        let cat = network();
        let e = bad(&cat, "top 500");
        assert_eq!(
            e.problem,
            "\"500\" is out of range: expected a whole number from 1 to 100"
        );
        let e = bad(&cat, "wait 30");
        assert_eq!(e.problem, "\"30\" is not a duration: use a unit, e.g. 30s");
        let e = bad(&cat, "block 10.0.0.0/33 on web");
        assert_eq!(e.slot, "net");
        let e = bad(&cat, "block 10.0.0.0/8 on my_host");
        assert!(e.problem.starts_with("\"my_host\" is not a host name"));
        let e = bad(&cat, "add ip 10.0.0.1 to list x in dev");
        assert_eq!(e.problem, "\"dev\" is not one of prod, staging");
        let e = bad(&cat, "say");
        assert_eq!(e.problem, "missing {msg}: expected some text");
        assert_eq!(e.value, "");
    }

    #[test]
    fn bad_argument_prefers_most_literal_words() {
        let cat = catalog(&["restart {svc:int}", "restart host {h:hostname}"]);
        let e = bad(&cat, "restart host bad_name");
        assert_eq!(e.command, "restart host");
        let e = bad(&cat, "restart web");
        assert_eq!(e.command, "restart");
    }

    #[test]
    fn unknown_with_suggestions() {
        let cat = network();
        match cat.classify("fly me to the moon") {
            Classification::Unknown { text, suggestions } => {
                assert_eq!(text, "fly me to the moon");
                assert!(suggestions.is_empty(), "{suggestions:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            cat.classify("fly me").to_string(),
            "unknown command \"fly me\""
        );
        let c = cat.classify("hepl");
        assert!(
            c.to_string()
                .starts_with("unknown command \"hepl\" — did you mean: help [{topic}]"),
            "{c}"
        );
        match cat.classify("servrs in grup web") {
            Classification::Unknown { suggestions, .. } => {
                assert!(
                    suggestions
                        .iter()
                        .any(|s| s.starts_with("servers in group")),
                    "{suggestions:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn matched_display() {
        let cat = network();
        assert_eq!(
            cat.classify("add ip 10.0.0.1 to list x").to_string(),
            "add ip to list (addr=10.0.0.1, env=prod, list=x)"
        );
        assert_eq!(cat.classify("ping").to_string(), "ping");
        assert_eq!(cat.classify("wait 90m").to_string(), "wait (d=1h30m)");
    }

    #[test]
    fn leading_slot_and_optional_leading_word() {
        let cat = Catalog::build(vec![
            CommandSpec {
                name: Some("host status".into()),
                ..spec("{host:hostname} status")
            },
            spec("[please] restart {svc:word} now"),
        ])
        .unwrap();
        assert_eq!(matched(&cat, "web1 status").command, "host status");
        assert_eq!(
            matched(&cat, "please restart api now").command,
            "restart now"
        );
        assert_eq!(matched(&cat, "restart api now").command, "restart now");
        let m = matched(&cat, "restart please now");
        assert_eq!(arg(&m, "svc"), &Value::Word("please".into()));
    }
}
