//! Text for people: the `help` overview grouped by section, `help <words>` for one command,
//! `explain <text>` (how a message classifies and why), and completion of partial lines.

use std::fmt::Write as _;

use crate::catalog::{Catalog, CommandDef};
use crate::classify::{Kept, Match, Outcome, Verdict};
use crate::input::{eq_lower, normalize, tokenize, Tok};
use crate::pattern::Elem;
use crate::slot::{SlotDef, SlotKind, MASK};

impl Catalog {
    /// `help` with no words: every command's usage and help sentence, grouped by section
    /// (sections in first-declared order).
    pub fn help_overview(&self) -> String {
        let mut sections: Vec<&str> = Vec::new();
        for def in &self.defs {
            if !sections.contains(&def.section()) {
                sections.push(def.section());
            }
        }
        let mut out = String::new();
        for (i, section) in sections.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "{section}:");
            for def in self.defs.iter().filter(|d| d.section() == *section) {
                if def.help().is_empty() {
                    let _ = writeln!(out, "  {}", def.usage_str());
                } else {
                    let _ = writeln!(out, "  {} — {}", def.usage_str(), def.help());
                }
            }
        }
        out
    }

    /// `help <words>`: usage, description, arguments and examples of the command(s) whose
    /// literal words start with these words (case-insensitive), or whose name is these words.
    /// An empty query gives the overview. `None` when nothing matches.
    pub fn help_for(&self, words: &str) -> Option<String> {
        let query: Vec<String> = normalize(words)
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        if query.is_empty() {
            return Some(self.help_overview());
        }
        let joined = query.join(" ");
        let starts_with =
            |list: Vec<String>| list.len() >= query.len() && list[..query.len()] == query[..];
        let found: Vec<&CommandDef> = self
            .defs
            .iter()
            .filter(|d| {
                d.name().to_lowercase() == joined
                    || starts_with(d.literal_words())
                    || starts_with(d.all_literal_words())
            })
            .collect();
        if found.is_empty() {
            return None;
        }
        let blocks: Vec<String> = found.iter().map(|d| command_help(d)).collect();
        Some(blocks.join("\n"))
    }

    /// `explain <text>`: how `text` classifies, step by step, without running anything.
    pub fn explain(&self, text: &str) -> String {
        let msg = normalize(text);
        let mut out = String::new();
        if msg.is_empty() {
            let _ = writeln!(out, "message: \"{}\"", text.trim());
            out.push_str("result: empty message, nothing to classify\n");
            return out;
        }
        let toks = tokenize(msg);
        let mut kept = Kept::NONE;
        let verdict = self.decide(msg, &toks, &mut kept);
        // A value given for a `secret` slot is not echoed back, even here.
        let secrets = self.secret_texts(verdict, msg, &toks, &kept);
        let hide = |t: &str| -> String {
            secrets
                .iter()
                .fold(t.to_string(), |acc, s| acc.replace(s.as_str(), MASK))
        };
        let _ = writeln!(out, "message: \"{}\"", hide(text.trim()));
        let shown: Vec<String> = toks.iter().map(|t| hide(t.text)).collect();
        let _ = writeln!(out, "words: {}", shown.join(" | "));
        let outcomes = self.all_outcomes(msg, &toks);
        match verdict {
            Verdict::Matched { alt } => {
                let m = self.build_match(alt, msg, &toks, &kept);
                self.explain_match(&mut out, alt, &m, &outcomes)
            }
            Verdict::Bad {
                alt,
                elem,
                tok,
                reject,
            } => {
                let e = self.argument_error(alt, elem, tok, reject, msg, &toks);
                let _ = writeln!(out, "result: bad argument for command \"{}\"", e.command);
                let _ = writeln!(out, "problem: {}", e.problem);
                let _ = writeln!(out, "usage: {}", e.usage);
                let lits = self.alts[alt].lits;
                let _ = writeln!(
                    out,
                    "why: its {lits} literal word(s) matched but the value for {{{}}} did not",
                    e.slot
                );
                self.explain_others(&mut out, self.alts[alt].cmd, lits, &outcomes);
            }
            Verdict::Unknown | Verdict::Empty => {
                out.push_str("result: unknown command, no pattern matches these words\n");
                let suggestions = self.suggest(&toks);
                if suggestions.is_empty() {
                    out.push_str("suggestions: none close enough (try \"help\")\n");
                } else {
                    let _ = writeln!(out, "suggestions: {}", suggestions.join(", "));
                }
            }
        }
        out
    }

    /// `text` with every value it gives a `secret` slot replaced by [`MASK`]: what may
    /// be kept of a message (the audit trail). Classifies it again; linear in its length.
    pub fn masked(&self, text: &str) -> String {
        let msg = normalize(text);
        if msg.is_empty() {
            return text.to_string();
        }
        let toks = tokenize(msg);
        let mut kept = Kept::NONE;
        let verdict = self.decide(msg, &toks, &mut kept);
        self.secret_texts(verdict, msg, &toks, &kept)
            .iter()
            .fold(text.to_string(), |acc, s| acc.replace(s.as_str(), MASK))
    }

    /// The texts given for `secret` slots in `verdict`: the values of a match, or the
    /// refused token of a secret slot.
    fn secret_texts(
        &self,
        verdict: Verdict,
        msg: &str,
        toks: &[Tok<'_>],
        kept: &Kept,
    ) -> Vec<String> {
        match verdict {
            Verdict::Matched { alt } => self
                .build_match(alt, msg, toks, kept)
                .args
                .values()
                .filter_map(|v| v.secret().map(str::to_string))
                .filter(|s| !s.is_empty())
                .collect(),
            Verdict::Bad {
                alt,
                elem,
                tok: Some(tok),
                ..
            } => {
                let def = &self.defs[self.alts[alt].cmd as usize];
                let is_secret = match self.alts[alt].elems.get(elem) {
                    Some(Elem::Slot(s)) => def
                        .slots()
                        .get(usize::from(*s))
                        .is_some_and(|d| d.kind == SlotKind::Secret),
                    _ => false,
                };
                match (is_secret, toks.get(tok)) {
                    (true, Some(t)) => vec![t.text.to_string()],
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    fn explain_match(
        &self,
        out: &mut String,
        alt_id: usize,
        m: &Match,
        outcomes: &[(usize, Outcome)],
    ) {
        let alt = &self.alts[alt_id];
        let def = &self.defs[alt.cmd as usize];
        let _ = writeln!(out, "result: command \"{}\"", def.name());
        let _ = writeln!(out, "pattern: {}", def.pattern());
        if !def.slots().is_empty() {
            out.push_str("arguments:\n");
        }
        for (idx, slot) in def.slots().iter().enumerate() {
            let given = alt
                .elems
                .iter()
                .any(|e| matches!(e, Elem::Slot(s) if usize::from(*s) == idx));
            let _ = match (m.args.get(&slot.name), given) {
                (Some(v), true) => writeln!(out, "  {} ({}) = {v}", slot.name, slot.kind),
                (Some(v), false) => {
                    writeln!(out, "  {} ({}) = {v} (default)", slot.name, slot.kind)
                }
                (None, _) => writeln!(out, "  {} ({}) not given", slot.name, slot.kind),
            };
        }
        let _ = writeln!(
            out,
            "rule: matched with {} literal word(s); when several commands match, the one with \
             more literal words wins",
            alt.lits
        );
        self.explain_others(out, alt.cmd, alt.lits, outcomes);
    }

    /// Lists the other commands that also (nearly) matched and why they lost.
    fn explain_others(
        &self,
        out: &mut String,
        winner: u32,
        lits: u16,
        outcomes: &[(usize, Outcome)],
    ) {
        let mut seen: Vec<u32> = vec![winner];
        let mut lines = Vec::new();
        for &(id, outcome) in outcomes {
            let alt = &self.alts[id];
            if seen.contains(&alt.cmd) {
                continue;
            }
            let def = &self.defs[alt.cmd as usize];
            match outcome {
                Outcome::Full => {
                    seen.push(alt.cmd);
                    let why = if alt.lits < lits {
                        format!("the winner has more literal words ({lits} > {})", alt.lits)
                    } else {
                        "declared later".to_string()
                    };
                    lines.push(format!(
                        "  \"{}\" also matched but lost: {why}",
                        def.pattern()
                    ));
                }
                Outcome::Bad { .. } => {
                    seen.push(alt.cmd);
                    lines.push(format!(
                        "  \"{}\" lost: its words matched but a value did not fit",
                        def.pattern()
                    ));
                }
                Outcome::NoMatch => {}
            }
        }
        if lines.is_empty() {
            out.push_str("other candidates: none\n");
        } else {
            out.push_str("other candidates:\n");
            for line in lines {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }

    /// Every alternative the trie offers for this message and how it fares, best first.
    fn all_outcomes(&self, msg: &str, toks: &[Tok<'_>]) -> Vec<(usize, Outcome)> {
        let mut found = Vec::new();
        let mut scratch = Kept::NONE;
        self.trie.walk(toks, |depth, ids| {
            for &id in ids {
                let id = id as usize;
                let outcome = self.evaluate(&self.alts[id], msg, toks, depth, &mut scratch);
                if outcome != Outcome::NoMatch {
                    found.push((id, outcome));
                }
            }
        });
        found.sort_by_key(|&(id, o)| (o != Outcome::Full, self.alts[id].key()));
        found
    }

    /// Completion for interactive terminals: the possible next literal words (full words,
    /// sorted, deduplicated) for a partial line, e.g. "add" -> ["ip"], "he" -> ["help"].
    /// Choice alternatives count as literal words.
    pub fn complete(&self, partial: &str) -> Vec<String> {
        let toks = tokenize(partial);
        let ends_with_space = partial.ends_with(char::is_whitespace) || toks.is_empty();
        let (done, prefix) = if ends_with_space {
            (&toks[..], None)
        } else {
            let (last, done) = toks
                .split_last()
                .map_or((None, &toks[..]), |(l, d)| (Some(l), d));
            (done, last.map(|t| t.text))
        };
        let mut out: Vec<String> = Vec::new();
        for alt in &self.alts {
            let slots = self.defs[alt.cmd as usize].slots();
            if !fits_prefix(&alt.elems, slots, done) {
                continue;
            }
            let at = done.len();
            match prefix {
                None => out.extend(words_at(&alt.elems, slots, at)),
                Some(p) => {
                    let lower = p.to_lowercase();
                    for w in words_at(&alt.elems, slots, at) {
                        if w.to_lowercase() == lower {
                            // Already complete: offer what comes next.
                            out.extend(words_at(&alt.elems, slots, at + 1));
                        } else if w.to_lowercase().starts_with(&lower) {
                            out.push(w);
                        }
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Whether the complete tokens fit the start of an alternative (a `text` slot ends it).
fn fits_prefix(elems: &[Elem], slots: &[SlotDef], done: &[Tok<'_>]) -> bool {
    if done.len() >= elems.len() {
        return false;
    }
    done.iter().zip(elems).all(|(t, e)| match e {
        Elem::Lit(l) => eq_lower(t.text, l),
        Elem::Slot(s) => slots
            .get(usize::from(*s))
            .is_some_and(|d| d.kind != SlotKind::Text && d.kind.accepts(t.text)),
    })
}

/// The literal words an alternative accepts at position `at`.
fn words_at(elems: &[Elem], slots: &[SlotDef], at: usize) -> Vec<String> {
    match elems.get(at) {
        Some(Elem::Lit(l)) => vec![l.to_string()],
        Some(Elem::Slot(s)) => match slots.get(usize::from(*s)).map(|d| &d.kind) {
            Some(SlotKind::Choice(alts)) => alts.clone(),
            _ => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// The help block of one command.
fn command_help(def: &CommandDef) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", def.usage_str());
    if !def.help().is_empty() {
        let _ = writeln!(out, "  {}", def.help());
    }
    if !def.slots().is_empty() {
        out.push_str("  arguments:\n");
        for slot in def.slots() {
            let mut notes = Vec::new();
            if slot.optional {
                notes.push("optional".to_string());
            }
            if let Some(d) = &slot.default {
                notes.push(format!("default {d}"));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            let _ = writeln!(out, "    {}: {}{notes}", slot.name, slot.kind);
        }
    }
    if !def.examples().is_empty() {
        out.push_str("  examples:\n");
        for e in def.examples() {
            let _ = writeln!(out, "    {e}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::catalog::{Catalog, CommandSpec};

    fn spec(pattern: &str, section: &str, help: &str, examples: &[&str]) -> CommandSpec {
        CommandSpec {
            name: None,
            pattern: pattern.into(),
            help: help.into(),
            section: section.into(),
            examples: examples.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn catalog() -> Catalog {
        Catalog::build(vec![
            spec("help [{topic:text}]", "", "Show help.", &["help"]),
            spec(
                "add ip {addr:ip} to list {list:name} [in {env:prod|staging=prod}]",
                "Network",
                "Add an address to a list.",
                &["add ip 10.0.0.1 to list blocked"],
            ),
            spec("ping", "", "Check the bot is alive.", &[]),
            spec(
                "servers in group {group:name}",
                "Servers",
                "List a group.",
                &[],
            ),
            spec(
                "servers in group web",
                "Servers",
                "List the web group.",
                &[],
            ),
            spec("add host {h:hostname}", "Network", "Add a host.", &[]),
            spec(
                "deploy {svc:word} to {env:prod|staging}",
                "",
                "Deploy.",
                &[],
            ),
        ])
        .unwrap()
    }

    #[test]
    fn overview_groups_by_section_in_declared_order() {
        let text = catalog().help_overview();
        let expected = "General:\n\
            \x20 help [{topic}] — Show help.\n\
            \x20 ping — Check the bot is alive.\n\
            \x20 deploy {svc} to {env} — Deploy.\n\
            \n\
            Network:\n\
            \x20 add ip {addr} to list {list} [in {env}] — Add an address to a list.\n\
            \x20 add host {h} — Add a host.\n\
            \n\
            Servers:\n\
            \x20 servers in group {group} — List a group.\n\
            \x20 servers in group web — List the web group.\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn help_for_finds_by_leading_words() {
        let cat = catalog();
        let text = cat.help_for("add ip").unwrap();
        assert!(
            text.starts_with("add ip {addr} to list {list} [in {env}]\n"),
            "{text}"
        );
        assert!(text.contains("Add an address to a list."));
        assert!(text.contains("addr: an IP address"));
        assert!(text.contains("env: one of prod, staging (optional, default prod)"));
        assert!(text.contains("examples:\n    add ip 10.0.0.1 to list blocked"));
        assert!(!text.contains("add host"));
        let both = cat.help_for("ADD").unwrap();
        assert!(both.contains("add ip") && both.contains("add host {h}"));
        assert!(cat
            .help_for("servers in")
            .unwrap()
            .contains("List the web group."));
        assert!(cat.help_for("add ip to list").is_some(), "by name");
        assert!(cat.help_for("nothing here").is_none());
        assert_eq!(cat.help_for("  ").unwrap(), cat.help_overview());
    }

    #[test]
    fn explain_names_winner_and_loser() {
        let cat = catalog();
        let text = cat.explain("servers in group web");
        assert!(
            text.contains("result: command \"servers in group web\""),
            "{text}"
        );
        assert!(
            text.contains(
                "\"servers in group {group:name}\" also matched but lost: the winner has more \
                 literal words (4 > 3)"
            ),
            "{text}"
        );
        let text = cat.explain("add ip 10.0.0.1 to list x");
        assert!(text.contains("addr (an IP address) = 10.0.0.1"), "{text}");
        assert!(
            text.contains("env (one of prod, staging) = prod (default)"),
            "{text}"
        );
        assert!(text.contains("other candidates: none"), "{text}");
    }

    #[test]
    fn explain_errors_and_unknown() {
        let cat = catalog();
        let text = cat.explain("add ip 999.1.1.1 to list x");
        assert!(
            text.contains("result: bad argument for command \"add ip to list\""),
            "{text}"
        );
        assert!(
            text.contains("problem: \"999.1.1.1\" is not an IP address"),
            "{text}"
        );
        let text = cat.explain("hepl");
        assert!(text.contains("unknown command"), "{text}");
        assert!(text.contains("suggestions: help [{topic}]"), "{text}");
        assert!(cat.explain("  ").contains("empty message"));
    }

    #[test]
    fn completion() {
        let cat = catalog();
        assert_eq!(cat.complete("add"), ["host", "ip"]);
        assert_eq!(cat.complete("he"), ["help"]);
        assert_eq!(cat.complete("add i"), ["ip"]);
        assert_eq!(cat.complete("add ip 10.0.0.1 "), ["to"]);
        assert_eq!(cat.complete("add ip 10.0.0.1 to list x "), ["in"]);
        assert_eq!(
            cat.complete("add ip 10.0.0.1 to list x in "),
            ["prod", "staging"]
        );
        assert_eq!(cat.complete("deploy api to st"), ["staging"]);
        assert_eq!(cat.complete("servers in group "), ["web"]);
        assert!(cat.complete("zzz").is_empty());
        assert!(cat.complete("help me ").is_empty(), "text takes the rest");
        let all = cat.complete("");
        assert_eq!(all, ["add", "deploy", "help", "ping", "servers"]);
    }
}
