//! Message text before matching: trimming, the ignored trailing `?` / `.`, splitting into
//! tokens that remember their byte offset (so a `text` slot can take the original rest of the
//! line), and allocation-free case-insensitive comparison of words.

/// At most this many characters of someone's text are quoted back in an error.
pub const EXCERPT_CHARS: usize = 60;

/// `text` as quoted in an error: whole when short, else its first [`EXCERPT_CHARS`]
/// characters and how many more there were, so that a 400 KB line is not echoed back.
pub fn excerpt(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => text.into(),
        Some((cut, _)) => {
            let rest = text[cut..].chars().count();
            format!("{}… ({rest} more characters)", &text[..cut]).into()
        }
    }
}

/// One whitespace-separated token of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tok<'a> {
    /// Byte offset of the token in the normalized message.
    pub start: usize,
    pub text: &'a str,
}

/// Trims the message and drops one trailing `?` or `.` (and the spaces before it).
pub(crate) fn normalize(text: &str) -> &str {
    let t = text.trim();
    t.strip_suffix(['?', '.']).unwrap_or(t).trim_end()
}

/// Messages with up to this many tokens are tokenized without allocating.
const INLINE_TOKENS: usize = 16;

/// The tokens of a message: inline for short messages, on the heap for long ones.
pub(crate) struct Tokens<'a> {
    inline: [Tok<'a>; INLINE_TOKENS],
    len: usize,
    spill: Vec<Tok<'a>>,
}

impl<'a> Tokens<'a> {
    fn push(&mut self, tok: Tok<'a>) {
        if self.len < INLINE_TOKENS {
            self.inline[self.len] = tok;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(tok);
        }
        self.len += 1;
    }
}

impl<'a> std::ops::Deref for Tokens<'a> {
    type Target = [Tok<'a>];
    fn deref(&self) -> &[Tok<'a>] {
        if self.len > INLINE_TOKENS {
            &self.spill
        } else {
            &self.inline[..self.len]
        }
    }
}

/// Splits a normalized message on any amount of whitespace (as `char::is_whitespace`).
pub(crate) fn tokenize(msg: &str) -> Tokens<'_> {
    let mut toks = Tokens {
        inline: [Tok { start: 0, text: "" }; INLINE_TOKENS],
        len: 0,
        spill: Vec::new(),
    };
    if msg.is_ascii() {
        // Fast path: the ASCII whitespace that `char::is_whitespace` knows (\t..\r and space).
        let bytes = msg.as_bytes();
        let is_space = |b: u8| b == b' ' || (b'\t'..=b'\r').contains(&b);
        let mut i = 0;
        while i < bytes.len() {
            while i < bytes.len() && is_space(bytes[i]) {
                i += 1;
            }
            let start = i;
            while i < bytes.len() && !is_space(bytes[i]) {
                i += 1;
            }
            if start < i {
                toks.push(Tok {
                    start,
                    text: &msg[start..i],
                });
            }
        }
    } else {
        let base = msg.as_ptr() as usize;
        for text in msg.split_whitespace() {
            toks.push(Tok {
                start: text.as_ptr() as usize - base,
                text,
            });
        }
    }
    toks
}

/// Case-insensitive equality of a message word with a word that is already lower case.
/// ASCII words are compared without allocating.
pub(crate) fn eq_lower(word: &str, lower: &str) -> bool {
    if word.is_ascii() {
        word.eq_ignore_ascii_case(lower)
    } else {
        word.to_lowercase() == lower
    }
}

/// Case-insensitive equality of two arbitrary words.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// Longest word lower-cased on the stack; longer or non-ASCII words are lower-cased on the heap.
const STACK_WORD: usize = 64;

/// Calls `f` with the lower-case bytes of `word`, allocating only for long or non-ASCII words.
pub(crate) fn with_lower<R>(word: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    let bytes = word.as_bytes();
    if !bytes.iter().any(|b| b.is_ascii_uppercase()) && word.is_ascii() {
        f(bytes)
    } else if word.is_ascii() && bytes.len() <= STACK_WORD {
        let mut buf = [0u8; STACK_WORD];
        for (dst, src) in buf.iter_mut().zip(bytes) {
            *dst = src.to_ascii_lowercase();
        }
        f(&buf[..bytes.len()])
    } else {
        f(word.to_lowercase().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_trims_and_drops_one_trailing_mark() {
        assert_eq!(normalize("  status?  "), "status");
        assert_eq!(normalize("status ?"), "status");
        assert_eq!(normalize("status."), "status");
        assert_eq!(normalize("status.."), "status.");
        assert_eq!(normalize("?"), "");
        assert_eq!(normalize("   "), "");
    }

    #[test]
    fn tokens_keep_offsets() {
        let msg = "say  hello \t world";
        let toks = tokenize(msg);
        let words: Vec<&str> = toks.iter().map(|t| t.text).collect();
        assert_eq!(words, ["say", "hello", "world"]);
        assert_eq!(&msg[toks[1].start..], "hello \t world");
    }

    #[test]
    fn many_tokens_and_unicode_spaces() {
        let long: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let msg = long.join(" \x0b");
        let toks = tokenize(&msg);
        assert_eq!(toks.len(), 40);
        assert_eq!(toks[39].text, "w39");
        assert_eq!(&msg[toks[20].start..toks[20].start + 3], "w20");
        let uni = "é\u{a0}b\u{2003}  c";
        let words: Vec<&str> = tokenize(uni).iter().map(|t| t.text).collect();
        assert_eq!(words, ["é", "b", "c"]);
        assert!(tokenize("").is_empty());
    }

    #[test]
    fn case_insensitive_comparisons() {
        assert!(eq_lower("HeLP", "help"));
        assert!(!eq_lower("helps", "help"));
        assert!(eq_lower("ÉTAT", "état"));
        assert!(eq_ignore_case("Prod", "pROD"));
        assert!(!eq_ignore_case("prod", "prods"));
        assert_eq!(with_lower("AbC", |b| b.to_vec()), b"abc");
        assert_eq!(with_lower("abc", |b| b.to_vec()), b"abc");
        assert_eq!(with_lower("ÀB", |b| b.to_vec()), "àb".as_bytes());
        let long = "A".repeat(100);
        assert_eq!(with_lower(&long, |b| b.len()), 100);
    }
}
