//! What of a client's words may reach the log, and how: a command is logged as the
//! command it was read as and its length, never its text (which may hold a secret), and
//! any text a client chose (a login name, a subsystem) is logged with its control
//! characters escaped, so a line break in it cannot start a forged log line.

use std::fmt;

use lexicon::Classification;

/// Text a client chose, for a log field: control characters (line breaks, escape
/// sequences) written as escapes, and at most [`Untrusted::MAX`] characters of it.
pub struct Untrusted<'a>(pub &'a str);

impl Untrusted<'_> {
    /// Past this many characters a logged value is cut, and says so.
    pub const MAX: usize = 200;
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for (i, c) in self.0.chars().enumerate() {
            if i == Self::MAX {
                return write!(f, "…({} characters)", self.0.chars().count());
            }
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                for e in c.escape_default() {
                    f.write_char(e)?;
                }
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// The name of the command `classification` read a text as, for the log: the command's
/// name from the catalog, or what the text was when it was none.
pub fn command_name(classification: &Classification) -> String {
    match classification {
        Classification::Matched(m) => m.command.clone(),
        Classification::BadArgument(e) => e.command.clone(),
        Classification::Unknown { .. } => "(unknown)".to_string(),
        Classification::Empty => "(empty)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_values_cut() {
        let forged = "alice\n2025-01-01T00:00:00Z  INFO ssh login user=ssh:admin\x1b[2J";
        let shown = Untrusted(forged).to_string();
        assert!(!shown.contains('\n') && !shown.contains('\x1b'), "{shown}");
        assert!(shown.starts_with("alice\\n2025"), "{shown}");
        let long = "x".repeat(1000);
        let shown = Untrusted(&long).to_string();
        assert!(shown.ends_with("…(1000 characters)"), "{shown}");
        assert_eq!(shown.chars().filter(|c| *c == 'x').count(), Untrusted::MAX);
    }
}
