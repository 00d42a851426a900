//! Configuration errors: each names where (file, line, key) and what was expected.
//!
//! - [`ConfigError`], [`ConfigErrors`]: what a load reports.
//! - `Report`: the problems of one file as its sections are read; every section writes
//!   to it, so errors are made in one place and always carry file, line and key.
//! - `LineIndex`: byte offsets (serde's spans) to line numbers.

use std::fmt;
use std::ops::Range;

use toml::Spanned;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; `None` when the problem is not on one line (a missing file).
    pub line: Option<usize>,
    /// The key in dotted form, e.g. `command[2].allow`; empty for the file as a whole.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one file; reported together so one edit fixes them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} configuration error{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// The problems found so far in one file, and what it takes to say where each one is.
///
/// Every section is read into the same `Report` and none stops at its first mistake, so
/// one load names every problem in the file: a person fixes them all in one edit.
pub(crate) struct Report<'a> {
    source: &'a str,
    lines: LineIndex,
    errors: Vec<ConfigError>,
}

impl<'a> Report<'a> {
    /// A report on `text`, read from `source`.
    pub(crate) fn new(source: &'a str, text: &str) -> Self {
        Report {
            source,
            lines: LineIndex::new(text),
            errors: Vec::new(),
        }
    }

    /// The file, as errors name it: relative paths in it are read from its folder.
    pub(crate) fn source(&self) -> &'a str {
        self.source
    }

    /// The 1-based line holding byte `offset` of the file.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.lines.line(offset)
    }

    /// An error about `key`, on the line where `span` starts; no span for a problem that
    /// is on no one line (a key that is missing, two sections that disagree).
    pub(crate) fn at(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.source.to_string(),
            line: span.map(|s| self.lines.line(s.start)),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Records an error about `key` (see [`Report::at`]).
    pub(crate) fn error(
        &mut self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) {
        let error = self.at(span, key, message);
        self.errors.push(error);
    }

    /// Records the problems of one entry of an array of tables (`[[command]]`,
    /// `[[schedule]]`), each a (`.field`, message) pair: serde gives no span inside an
    /// entry, so they are named on its header line, under `key` and the field.
    pub(crate) fn entry(&mut self, span: Range<usize>, key: &str, problems: Vec<(String, String)>) {
        for (field, message) in problems {
            self.error(Some(span.clone()), &format!("{key}{field}"), message);
        }
    }

    /// Reads `raw`, when the file sets it, with `read`. A value that does not read is
    /// recorded under `key`, on its own line, and gives `None` as an absent one does: the
    /// section keeps its default and goes on, so later mistakes are found too.
    pub(crate) fn read<R, T>(
        &mut self,
        raw: &Option<Spanned<R>>,
        key: &str,
        read: impl FnOnce(&R) -> Result<T, String>,
    ) -> Option<T> {
        self.check(raw.as_ref()?, key, read)
    }

    /// Reads `raw`, a value the file must set, with `read`; as [`Report::read`].
    pub(crate) fn check<R, T>(
        &mut self,
        raw: &Spanned<R>,
        key: &str,
        read: impl FnOnce(&R) -> Result<T, String>,
    ) -> Option<T> {
        read(raw.get_ref())
            .map_err(|message| self.error(Some(raw.span()), key, message))
            .ok()
    }

    /// How many problems so far: a section that builds a value only when it found none
    /// compares this before and after itself.
    pub(crate) fn found(&self) -> usize {
        self.errors.len()
    }

    /// `value` when no problem was found, every problem otherwise.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

/// Turns byte offsets into 1-based line numbers.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines() {
        let idx = LineIndex::new("a\nbc\n\nd");
        assert_eq!(idx.line(0), 1);
        assert_eq!(idx.line(2), 2);
        assert_eq!(idx.line(3), 2);
        assert_eq!(idx.line(5), 3);
        assert_eq!(idx.line(6), 4);
    }
}
