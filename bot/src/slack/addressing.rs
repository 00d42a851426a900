//! `Addressing`: which Slack messages are meant for the bot, and what they ask.
//!
//! A direct message needs no prefix. In a channel the bot answers when mentioned
//! (`@octobot servers in group X`, which Slack sends as an `app_mention` event) or when
//! the message starts with a configured prefix (`octobot …`, `!…`). Messages from bots
//! (the bot itself included), edits, joins and other message subtypes are ignored. A
//! slash command (`/octobot …`) is always meant for the bot.

use slack_morphism::prelude::*;

/// A message meant for the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    /// The command, with the mention or prefix taken off and Slack's markup undone.
    pub text: String,
    pub user: String,
    pub channel: String,
    /// The thread replies go in: the request's own thread, or the request itself. `None`
    /// for a slash command, which has no message to thread under.
    pub thread: Option<String>,
}

pub struct Addressing {
    bot_user: String,
    prefixes: Vec<String>,
}

impl Addressing {
    pub fn new(bot_user: impl Into<String>, prefixes: Vec<String>) -> Self {
        Addressing {
            bot_user: bot_user.into(),
            prefixes,
        }
    }

    /// A `message` event: direct messages, and channel messages with a prefix. Channel
    /// messages that mention the bot are left to their `app_mention` event.
    pub fn message(&self, ev: &SlackMessageEvent) -> Option<Addressed> {
        if ev.subtype.is_some() || ev.message.is_some() || ev.sender.bot_id.is_some() {
            return None;
        }
        let user = ev.sender.user.as_ref()?.to_string();
        if user == self.bot_user {
            return None;
        }
        let channel = ev.origin.channel.as_ref()?.to_string();
        let raw = ev.content.as_ref()?.text.as_deref()?;
        let direct = matches!(ev.origin.channel_type.as_ref(), Some(t) if t.0 == "im");
        let text = if direct {
            self.without_mention(raw)
        } else if raw.contains(&self.mention_markup()) {
            return None;
        } else {
            self.without_prefix(raw)?
        };
        Some(Addressed {
            text: plain(&text),
            user,
            channel,
            thread: Some(thread_of(&ev.origin)),
        })
    }

    /// An `app_mention` event: someone wrote `@octobot …` in a channel.
    pub fn mention(&self, ev: &SlackAppMentionEvent) -> Option<Addressed> {
        if ev.edited.is_some() || ev.user.to_string() == self.bot_user {
            return None;
        }
        let raw = ev.content.text.as_deref()?;
        Some(Addressed {
            text: plain(&self.without_mention(raw)),
            user: ev.user.to_string(),
            channel: ev.channel.to_string(),
            thread: Some(thread_of(&ev.origin)),
        })
    }

    /// A slash command: its whole text is the command.
    pub fn command(&self, ev: &SlackCommandEvent) -> Addressed {
        Addressed {
            text: plain(ev.text.as_deref().unwrap_or("")),
            user: ev.user_id.to_string(),
            channel: ev.channel_id.to_string(),
            thread: None,
        }
    }

    fn mention_markup(&self) -> String {
        format!("<@{}", self.bot_user)
    }

    /// The text with the bot's mention (`<@U123>` or `<@U123|octobot>`) taken off.
    fn without_mention(&self, raw: &str) -> String {
        let mention = self.mention_markup();
        let Some(start) = raw.find(&mention) else {
            return raw.trim().to_string();
        };
        let end = raw[start..].find('>').map_or(raw.len(), |e| start + e + 1);
        let rest = format!("{} {}", &raw[..start], &raw[end..]);
        trim_separators(&rest).to_string()
    }

    /// The text after a prefix, if it starts with one. A word prefix (`octobot`) must be
    /// followed by a space, `:` or `,`; a symbol prefix (`!`) by the command itself.
    fn without_prefix(&self, raw: &str) -> Option<String> {
        let text = raw.trim_start();
        self.prefixes.iter().find_map(|prefix| {
            let head = text.get(..prefix.len())?;
            if !head.eq_ignore_ascii_case(prefix) {
                return None;
            }
            let rest = &text[prefix.len()..];
            let wordy = prefix.chars().last().is_some_and(char::is_alphanumeric);
            if wordy && !rest.starts_with([' ', ':', ',', '\t']) {
                return None;
            }
            let command = trim_separators(rest);
            (!command.is_empty()).then(|| command.to_string())
        })
    }
}

fn trim_separators(s: &str) -> &str {
    s.trim_start_matches([' ', ':', ',', '\t']).trim()
}

fn thread_of(origin: &SlackMessageOrigin) -> String {
    origin.thread_ts.as_ref().unwrap_or(&origin.ts).to_string()
}

/// Slack's markup undone: `&amp;` `&lt;` `&gt;`, links written `<http://host|host>` or
/// `<http://host>` (Slack links host names people type), channel and user references.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &rest[open + 1..open + close];
        let shown = match inner.split_once('|') {
            Some((_, label)) => label.to_string(),
            None => inner
                .strip_prefix("mailto:")
                .or_else(|| inner.strip_prefix("http://"))
                .or_else(|| inner.strip_prefix("https://"))
                .unwrap_or(inner)
                .to_string(),
        };
        out.push_str(&shown);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addressing() -> Addressing {
        Addressing::new("UBOT", vec!["octobot".into(), "!".into()])
    }

    fn message(json: serde_json::Value) -> SlackMessageEvent {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_direct_message_needs_no_prefix() {
        let ev = message(serde_json::json!({
            "type": "message", "channel": "D1", "channel_type": "im",
            "user": "U1", "text": "ping", "ts": "1.1"
        }));
        let a = addressing().message(&ev).unwrap();
        assert_eq!(a.text, "ping");
        assert_eq!(a.thread.as_deref(), Some("1.1"));
    }

    #[test]
    fn in_a_channel_only_prefixed_messages_are_taken() {
        let a = addressing();
        let said = |text: &str| {
            a.message(&message(serde_json::json!({
                "type": "message", "channel": "C1", "channel_type": "channel",
                "user": "U1", "text": text, "ts": "2.2", "thread_ts": "1.0"
            })))
            .map(|a| (a.text, a.thread))
        };
        assert_eq!(
            said("octobot: ping"),
            Some(("ping".into(), Some("1.0".into())))
        );
        assert_eq!(said("!wait 1s").map(|a| a.0), Some("wait 1s".into()));
        assert_eq!(said("octobotics is fun"), None);
        assert_eq!(said("good morning"), None);
        assert_eq!(said("<@UBOT> ping"), None, "left to app_mention");
    }

    #[test]
    fn bots_edits_and_subtypes_are_ignored() {
        let a = addressing();
        for ev in [
            serde_json::json!({"type": "message", "channel": "D1", "channel_type": "im",
                "user": "U1", "bot_id": "B1", "text": "ping", "ts": "1"}),
            serde_json::json!({"type": "message", "channel": "D1", "channel_type": "im",
                "user": "UBOT", "text": "ping", "ts": "1"}),
            serde_json::json!({"type": "message", "subtype": "message_changed", "channel": "D1",
                "channel_type": "im", "ts": "1",
                "message": {"user": "U1", "text": "ping", "ts": "0.9"}}),
        ] {
            assert_eq!(a.message(&message(ev.clone())), None, "{ev}");
        }
    }

    #[test]
    fn a_mention_is_taken_off_and_markup_undone() {
        let ev: SlackAppMentionEvent = serde_json::from_value(serde_json::json!({
            "type": "app_mention", "user": "U1", "channel": "C1", "ts": "3.3",
            "text": "<@UBOT> scan <http://example.com|example.com> &amp; more"
        }))
        .unwrap();
        let a = addressing().mention(&ev).unwrap();
        assert_eq!(a.text, "scan example.com & more");
        assert_eq!(
            (a.channel.as_str(), a.thread.as_deref()),
            ("C1", Some("3.3"))
        );
    }
}
