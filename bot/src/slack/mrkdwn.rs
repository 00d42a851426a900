//! `Mrkdwn`: text as the bot hands it to Slack. Slack reads a message's text as mrkdwn,
//! where `<!channel>` pings everyone, `<@U123>` someone, and `<https://…|label>` is a
//! disguised link. Everything the bot posts is a `Mrkdwn`, and text that came from people
//! or tasks (arguments, job output, errors quoting values, identities) becomes one only
//! through [`Mrkdwn::escape`]: `&`, `<` and `>` written `&amp;`, `&lt;`, `&gt;` as Slack
//! documents, so it shows literally and never pings or links. Markup of the bot's own
//! would be added next to escaped text, never inside it.

/// Text ready for a Slack message: escaped, or the bot's own markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mrkdwn(String);

impl Mrkdwn {
    /// `text`, shown literally.
    pub fn escape(text: &str) -> Self {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
        Mrkdwn(out)
    }

    /// How many characters `c` takes once escaped.
    pub fn escaped_width(c: char) -> usize {
        match c {
            '&' => 5,
            '<' | '>' => 4,
            _ => 1,
        }
    }

    /// A mention of Slack user `id` (`<@U123>`), if `id` looks like a Slack user id
    /// (capital letters and digits, starting with `U` or `W`): the bot's own markup,
    /// never a value passed through.
    pub fn mention(id: &str) -> Option<Self> {
        let looks_like_a_user = id.len() <= 32
            && id.starts_with(['U', 'W'])
            && id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        looks_like_a_user.then(|| Mrkdwn(format!("<@{id}>")))
    }

    /// `self` followed by `next`: markup next to escaped text, never inside it.
    pub fn then(mut self, next: &Mrkdwn) -> Self {
        self.0.push_str(&next.0);
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Mrkdwn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_and_links_are_shown_literally() {
        let shown = Mrkdwn::escape("<!channel> <!here> <@U123> <https://evil.example|docs> a&b");
        assert_eq!(
            shown.as_str(),
            "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|docs&gt; a&amp;b"
        );
        // Already-escaped text is escaped again, so it shows as it was typed.
        assert_eq!(Mrkdwn::escape("&lt;").as_str(), "&amp;lt;");
        assert_eq!(
            Mrkdwn::mention("U024BE7LH").unwrap().as_str(),
            "<@U024BE7LH>"
        );
        assert_eq!(Mrkdwn::mention("U1> <!channel"), None);
        assert_eq!(Mrkdwn::mention("here"), None);
        let joined = Mrkdwn::escape("a<").then(&Mrkdwn::mention("U1").unwrap());
        assert_eq!(joined.as_str(), "a&lt;<@U1>");
        let widths: usize = "<&>x".chars().map(Mrkdwn::escaped_width).sum();
        assert_eq!(widths, Mrkdwn::escape("<&>x").as_str().chars().count());
    }
}
