//! The catalog: [`CommandSpec`] (a command as declared), [`CommandDef`] (as compiled),
//! [`Catalog::build`] with all its validation (pattern syntax, names, ambiguity, examples),
//! and the index the classifier uses.

use std::collections::HashMap;

use crate::ambiguity;
use crate::classify::Verdict;
use crate::index::{Alt, Trie};
use crate::input::eq_ignore_case;
use crate::pattern::{Elem, Pattern, Piece};
use crate::slot::{SlotDef, SlotKind};
use crate::suggest::FuzzyIndex;

/// The section used for commands declared with an empty one.
pub const DEFAULT_SECTION: &str = "General";

/// One declared command, as written in configuration (or the bot's built-in declarations).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandSpec {
    /// Unique name. `None` => derived from the pattern: its literal words (outside optional
    /// parts) joined by one space, lower-cased, e.g. "add ip to list".
    pub name: Option<String>,
    /// e.g. `add ip {addr:ip} to list {list:name} [in {env:prod|staging}]`.
    pub pattern: String,
    /// One sentence.
    pub help: String,
    /// Help grouping; "" => "General".
    pub section: String,
    /// Each must classify to this command (checked in [`Catalog::build`]).
    pub examples: Vec<String>,
}

/// A problem found by [`Catalog::build`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CatalogError {
    /// Position of the offending spec in the Vec given to build (the first of an ambiguous pair).
    pub index: Option<usize>,
    /// A complete sentence naming the pattern.
    pub message: String,
}

impl CatalogError {
    pub(crate) fn for_pattern(index: usize, pattern: &str, problem: &str) -> Self {
        CatalogError {
            index: Some(index),
            message: format!("pattern \"{pattern}\": {problem}"),
        }
    }
}

/// Read-only view of a compiled command.
#[derive(Clone, Debug)]
pub struct CommandDef {
    name: String,
    pattern: String,
    usage: String,
    help: String,
    section: String,
    examples: Vec<String>,
    slots: Vec<SlotDef>,
    index: usize,
    pub(crate) parsed: Pattern,
}

impl CommandDef {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
    /// `add ip {addr} to list {list} [in {env}]`.
    pub fn usage(&self) -> String {
        self.usage.clone()
    }
    /// The usage line without allocating.
    pub fn usage_str(&self) -> &str {
        &self.usage
    }
    pub fn help(&self) -> &str {
        &self.help
    }
    /// The declared section, or "General".
    pub fn section(&self) -> &str {
        &self.section
    }
    pub fn examples(&self) -> &[String] {
        &self.examples
    }
    pub fn slots(&self) -> &[SlotDef] {
        &self.slots
    }
    /// Position in the Vec given to [`Catalog::build`].
    pub fn index(&self) -> usize {
        self.index
    }
    /// The slot with this name.
    pub fn slot(&self, name: &str) -> Option<&SlotDef> {
        self.slots.iter().find(|s| s.name == name)
    }
    /// Lower-case literal words outside optional parts, in order.
    pub fn literal_words(&self) -> Vec<String> {
        self.parsed.required_words()
    }
    /// Lower-case literal words including those of optional parts, in order.
    pub fn all_literal_words(&self) -> Vec<String> {
        self.parsed
            .parts
            .iter()
            .filter_map(|p| match &p.piece {
                Piece::Lit(w) => Some(w.to_lowercase()),
                Piece::Slot(_) => None,
            })
            .collect()
    }
}

/// A compiled set of commands: classifies messages, answers help, explain and completion.
/// Cheap to share: `Clone + Send + Sync`.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub(crate) defs: Vec<CommandDef>,
    pub(crate) alts: Vec<Alt>,
    /// `alts[alt_start[i]..alt_start[i + 1]]` are the alternatives of command `i`.
    pub(crate) alt_start: Vec<usize>,
    pub(crate) trie: Trie,
    pub(crate) by_name: HashMap<String, usize>,
    pub(crate) fuzzy: FuzzyIndex,
}

impl Catalog {
    /// Compiles every spec; returns ALL errors at once (bad pattern syntax, unknown slot type,
    /// `text` slot not last, duplicate slot name, duplicate command name, ambiguous pair,
    /// example that does not classify to its own command, bad default value ...).
    pub fn build(specs: Vec<CommandSpec>) -> Result<Catalog, Vec<CatalogError>> {
        let mut errors = Vec::new();
        let mut defs: Vec<CommandDef> = Vec::with_capacity(specs.len());
        let mut by_name: HashMap<String, usize> = HashMap::with_capacity(specs.len());
        for (index, spec) in specs.into_iter().enumerate() {
            let parsed = match Pattern::parse(&spec.pattern) {
                Ok(p) => p,
                Err(problems) => {
                    errors.extend(
                        problems
                            .iter()
                            .map(|p| CatalogError::for_pattern(index, &spec.pattern, p)),
                    );
                    continue;
                }
            };
            let name = match spec.name.as_deref().map(str::trim) {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => parsed.derived_name(),
            };
            if name.is_empty() {
                errors.push(CatalogError::for_pattern(
                    index,
                    &spec.pattern,
                    "has no literal words outside \"[ ]\"; give the command a name",
                ));
                continue;
            }
            if let Some(&other) = by_name.get(&name) {
                let problem = format!(
                    "command name \"{name}\" is already used by pattern \"{}\"",
                    defs[other].pattern
                );
                errors.push(CatalogError::for_pattern(index, &spec.pattern, &problem));
                continue;
            }
            by_name.insert(name.clone(), defs.len());
            let section = match spec.section.trim() {
                "" => DEFAULT_SECTION.to_string(),
                s => s.to_string(),
            };
            defs.push(CommandDef {
                name,
                usage: parsed.usage(),
                slots: parsed.slots.clone(),
                pattern: spec.pattern,
                help: spec.help.trim().to_string(),
                section,
                examples: spec.examples,
                index,
                parsed,
            });
        }
        let catalog = Catalog::assemble(defs, by_name);
        errors.extend(ambiguity::check(&catalog));
        errors.extend(catalog.check_examples());
        if errors.is_empty() {
            Ok(catalog)
        } else {
            errors.sort_by_key(|e| e.index.unwrap_or(usize::MAX));
            Err(errors)
        }
    }

    /// Builds the alternatives, trie and suggestion index over compiled commands.
    fn assemble(defs: Vec<CommandDef>, by_name: HashMap<String, usize>) -> Catalog {
        let mut alts = Vec::new();
        let mut alt_start = Vec::with_capacity(defs.len() + 1);
        let mut trie = Trie::default();
        for (cmd, def) in defs.iter().enumerate() {
            alt_start.push(alts.len());
            for (order, shape) in def.parsed.shapes().into_iter().enumerate() {
                let text_last = matches!(
                    shape.elems.last(),
                    Some(Elem::Slot(s)) if def.slots.get(usize::from(*s)).map(|d| &d.kind) == Some(&SlotKind::Text)
                );
                let alt = Alt {
                    cmd: u32::try_from(cmd).unwrap_or(u32::MAX),
                    order: u16::try_from(order).unwrap_or(u16::MAX),
                    lits: u16::try_from(shape.lits).unwrap_or(u16::MAX),
                    text_last,
                    elems: shape.elems.into_boxed_slice(),
                };
                let id = u32::try_from(alts.len()).unwrap_or(u32::MAX);
                trie.insert(alt.leading_words(), id);
                alts.push(alt);
            }
        }
        alt_start.push(alts.len());
        trie.finish(|a| alts.get(a as usize).map_or(0, |alt: &Alt| alt.cmd));
        let fuzzy = FuzzyIndex::new(&trie);
        Catalog {
            defs,
            alts,
            alt_start,
            trie,
            by_name,
            fuzzy,
        }
    }

    /// The alternatives of command `cmd` (its position in the catalog).
    pub(crate) fn alts_of(&self, cmd: usize) -> &[Alt] {
        match (self.alt_start.get(cmd), self.alt_start.get(cmd + 1)) {
            (Some(&a), Some(&b)) => &self.alts[a..b],
            _ => &[],
        }
    }

    /// Every example must classify to its own command.
    fn check_examples(&self) -> Vec<CatalogError> {
        let mut errors = Vec::new();
        for (cmd, def) in self.defs.iter().enumerate() {
            for example in &def.examples {
                let (verdict, got) = self.classify_detail(example);
                let ok = matches!(verdict, Verdict::Matched { alt } if self.alts[alt].cmd as usize == cmd);
                if !ok {
                    let problem = format!(
                        "example \"{example}\" does not classify to this command (got: {got})"
                    );
                    errors.push(CatalogError::for_pattern(def.index, &def.pattern, &problem));
                }
            }
        }
        errors
    }

    /// The command with this name (exact, else case-insensitive).
    pub fn get(&self, name: &str) -> Option<&CommandDef> {
        match self.by_name.get(name) {
            Some(&i) => self.defs.get(i),
            None => self.defs.iter().find(|d| eq_ignore_case(&d.name, name)),
        }
    }

    /// Commands in declaration order.
    pub fn commands(&self) -> impl Iterator<Item = &CommandDef> {
        self.defs.iter()
    }

    pub fn len(&self) -> usize {
        self.defs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::Value;

    pub(crate) fn spec(pattern: &str, examples: &[&str]) -> CommandSpec {
        CommandSpec {
            pattern: pattern.into(),
            help: format!("Does {pattern}."),
            examples: examples.iter().map(|s| s.to_string()).collect(),
            ..CommandSpec::default()
        }
    }

    fn build_err(specs: Vec<CommandSpec>) -> Vec<CatalogError> {
        match Catalog::build(specs) {
            Ok(c) => panic!("should fail, built {} commands", c.len()),
            Err(e) => e,
        }
    }

    #[test]
    fn builds_and_exposes_commands() {
        let cat = Catalog::build(vec![
            spec("help [{topic:text}]", &["help", "help add ip"]),
            CommandSpec {
                name: Some("add-ip".into()),
                section: "Network".into(),
                ..spec(
                    "add ip {addr:ip} to list {list:name} [in {env:prod|staging=prod}]",
                    &["add ip 10.0.0.1 to list blocked in staging"],
                )
            },
        ])
        .unwrap();
        assert_eq!(cat.len(), 2);
        assert!(!cat.is_empty());
        let names: Vec<&str> = cat.commands().map(|c| c.name()).collect();
        assert_eq!(names, ["help", "add-ip"]);
        let add = cat.get("add-ip").unwrap();
        assert_eq!(add.usage(), "add ip {addr} to list {list} [in {env}]");
        assert_eq!(add.section(), "Network");
        assert_eq!(add.index(), 1);
        assert_eq!(add.slots().len(), 3);
        assert_eq!(
            add.slot("env").unwrap().default,
            Some(Value::Choice("prod".into()))
        );
        assert_eq!(add.literal_words(), ["add", "ip", "to", "list"]);
        assert_eq!(cat.get("help").unwrap().section(), "General");
        assert_eq!(cat.get("HELP").unwrap().name(), "help");
        assert!(cat.get("nope").is_none());
    }

    #[test]
    fn reports_all_errors_at_once() {
        let errors = build_err(vec![
            spec("ping", &[]),
            spec("add ip {addr:ipv4}", &[]),
            spec("ping", &[]),
            spec("say {msg:text} now", &[]),
            spec("list {n:int(1..10)}", &["list 11"]),
        ]);
        let indexes: Vec<Option<usize>> = errors.iter().map(|e| e.index).collect();
        assert_eq!(indexes, [Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(
            errors[0].message,
            "pattern \"add ip {addr:ipv4}\": unknown slot type \"ipv4\" (expected one of: word, name, hostname, ip, cidr, int, duration, choice a|b, jobid, secret, text)"
        );
        assert!(errors[1]
            .message
            .contains("command name \"ping\" is already used"));
        assert!(errors[2].message.contains("must be the last part"));
        assert!(
            errors[3].message.contains("example \"list 11\""),
            "{}",
            errors[3]
        );
        assert!(errors[3].message.contains("out of range"), "{}", errors[3]);
    }

    #[test]
    fn nameless_pattern_needs_a_name() {
        let errors = build_err(vec![spec("{host:hostname} [status]", &[])]);
        assert!(errors[0].message.contains("give the command a name"));
        let ok = Catalog::build(vec![CommandSpec {
            name: Some("host status".into()),
            ..spec("{host:hostname} status", &["web1 status"])
        }]);
        assert!(ok.is_ok());
    }

    #[test]
    fn example_to_other_command_is_an_error() {
        let errors = build_err(vec![
            spec("servers in group {group:name}", &["servers in group web"]),
            spec("servers in group web", &[]),
        ]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].index, Some(0));
        assert!(
            errors[0].message.contains("got: servers in group web"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn bad_default_is_reported() {
        let errors = build_err(vec![spec("wait [{d:duration=30}]", &[])]);
        assert!(
            errors[0].message.contains(
                "bad default for slot \"d\": \"30\" is not a duration: use a unit, e.g. 30s"
            ),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn catalog_is_send_sync_clone() {
        fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug>() {}
        assert_traits::<Catalog>();
    }
}
