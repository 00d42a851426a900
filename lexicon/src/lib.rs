//! # lexicon — Octobox's command language
//!
//! This crate has one job: turning chat messages into typed commands. It holds the command
//! catalog, compiles patterns such as `add ip {addr:ip} to list {list:name} [in {env:prod|staging}]`,
//! validates typed slots, classifies messages, writes help text and suggestions. It is pure:
//! no I/O, no async, no threads, no global state.
//!
//! ## Modules
//! - [`pattern`]: the pattern compiler (literal words, `{name:type}` slots, `[optional]` parts).
//! - [`slot`]: slot types ([`SlotKind`]), typed values ([`Value`]) and their validation.
//! - [`catalog`]: [`CommandSpec`] / [`CommandDef`] and [`Catalog::build`] with all its checks.
//! - `ambiguity`: build-time detection of command pairs the precedence rule cannot separate.
//! - `index`: the trie over leading literal words that keeps classification sub-linear.
//! - `input`: trimming, tokenizing and case-insensitive comparison of message words.
//! - [`classify`]: matching and [`Classification`] / [`Match`] / [`ArgumentError`].
//! - [`suggest`]: edit distance and the nearest commands for unknown messages.
//! - `help`: [`Catalog::help_overview`], [`Catalog::help_for`], [`Catalog::explain`],
//!   [`Catalog::complete`].
//!
//! ## Matching
//! Literal words match case-insensitively; any amount of whitespace separates tokens; one
//! trailing `?` or `.` on the whole message is ignored; slot values keep their case; a `text`
//! slot takes the rest of the line with its inner spacing.
//!
//! ## Precedence
//! When several commands match the same text, **the one with strictly more literal words wins**
//! (literal words of optional parts count when they are present in the text). That is also
//! what makes two overlapping patterns acceptable: `servers in group web` (4 literal words)
//! beats `servers in group {group:name}` (3). Two patterns that could match a common text with
//! the *same* number of literal words are rejected by [`Catalog::build`], which names both, so
//! classification is always deterministic. When no command matches fully but the literal
//! words of some command matched and a value did not parse (or trailing values are missing),
//! the result is [`Classification::BadArgument`] for the command with the most literal words.
//! Otherwise it is [`Classification::Unknown`] with up to three suggestions.
//!
//! ## Example
//! ```
//! use lexicon::{Catalog, Classification, CommandSpec, Value};
//!
//! let catalog = Catalog::build(vec![CommandSpec {
//!     pattern: "add ip {addr:ip} to list {list:name} [in {env:prod|staging=prod}]".into(),
//!     help: "Add an address to a list.".into(),
//!     examples: vec!["add ip 10.0.0.1 to list blocked".into()],
//!     ..CommandSpec::default()
//! }])
//! .expect("valid catalog");
//!
//! match catalog.classify("Add IP 10.0.0.1 to list Blocked?") {
//!     Classification::Matched(m) => {
//!         assert_eq!(m.command, "add ip to list");
//!         assert_eq!(m.args["list"], Value::Name("Blocked".into()));
//!         assert_eq!(m.args["env"], Value::Choice("prod".into()));
//!     }
//!     other => panic!("{other}"),
//! }
//! assert_eq!(
//!     catalog.classify("add ip 999.1.1.1 to list x").to_string(),
//!     "\"999.1.1.1\" is not an IP address — usage: add ip {addr} to list {list} [in {env}]"
//! );
//! ```

mod ambiguity;
pub mod catalog;
pub mod classify;
mod help;
mod index;
mod input;
pub mod pattern;
pub mod slot;
pub mod suggest;

pub use catalog::{Catalog, CatalogError, CommandDef, CommandSpec, DEFAULT_SECTION};
pub use classify::{ArgumentError, Classification, Match};
pub use input::{excerpt, EXCERPT_CHARS};
pub use slot::{
    format_duration, parse_duration, BadValue, DurationValue, SlotDef, SlotKind, Value, MASK,
};

/// The README's examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
