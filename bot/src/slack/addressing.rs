//! `Addressing`: which Slack messages are meant for the bot, and what they ask.
//!
//! A direct message needs no prefix. In a channel the bot answers when mentioned
//! (`@octobot servers in group X`, which Slack sends as an `app_mention` event) or when
//! the message starts with a configured prefix (`octobot …`, `!…`). Events from bots
//! (with a `bot_id`, of subtype `bot_message`, or from the bot's own user), edits, joins
//! and other message subtypes are ignored, and logged at debug level: another
//! integration's message is never obeyed. A slash command (`/octobot …`) is always meant
//! for the bot.
//!
//! A text past `[bot] max_message_length` characters (counted as Slack sent it) is not
//! undone or copied: it becomes [`Command::TooLong`], which the adapter refuses.

use slack_morphism::prelude::*;

/// A message meant for the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    pub text: Command,
    pub user: String,
    pub channel: String,
    /// The thread replies go in: the request's own thread, or the request itself. `None`
    /// for a slash command, which has no message to thread under.
    pub thread: Option<String>,
}

/// What an addressed message asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The command, with the mention or prefix taken off and Slack's markup undone.
    Text(String),
    /// A text longer than the limit, `bytes` long as Slack sent it: refused unread.
    TooLong { bytes: usize },
}

pub struct Addressing {
    bot_user: String,
    prefixes: Vec<String>,
}

/// Why an event, read as Slack sent it (its `event` object), comes from a bot: it has a
/// `bot_id`, or its subtype is `bot_message`. slack-morphism's typed `app_mention` event
/// has no `bot_id`, so this is read from the JSON itself.
pub fn from_a_bot(event: &serde_json::Value) -> Option<&'static str> {
    if event.get("bot_id").is_some_and(|b| !b.is_null()) {
        return Some("bot_id");
    }
    if event.get("subtype").and_then(|s| s.as_str()) == Some("bot_message") {
        return Some("bot_message");
    }
    None
}

/// `raw` made a command with `undo`, unless it is past `limit` characters: counting
/// stops one past the limit, and nothing is copied.
fn command_of(raw: &str, limit: usize, undo: impl FnOnce(&str) -> String) -> Command {
    if raw.chars().nth(limit).is_some() {
        Command::TooLong { bytes: raw.len() }
    } else {
        Command::Text(plain(&undo(raw)))
    }
}

impl Addressing {
    pub fn new(bot_user: impl Into<String>, prefixes: Vec<String>) -> Self {
        Addressing {
            bot_user: bot_user.into(),
            prefixes,
        }
    }

    /// A `message` event: direct messages, and channel messages with a prefix. Channel
    /// messages that mention the bot are left to their `app_mention` event. `limit`:
    /// `[bot] max_message_length`.
    pub fn message(&self, ev: &SlackMessageEvent, limit: usize) -> Option<Addressed> {
        if ev.sender.bot_id.is_some() {
            tracing::debug!(ts = %ev.origin.ts, "ignored a message from a bot");
            return None;
        }
        if ev.subtype.is_some() || ev.message.is_some() {
            return None;
        }
        let user = ev.sender.user.as_ref()?.to_string();
        if user == self.bot_user {
            tracing::debug!(ts = %ev.origin.ts, "ignored a message of the bot's own");
            return None;
        }
        let channel = ev.origin.channel.as_ref()?.to_string();
        let raw = ev.content.as_ref()?.text.as_deref()?;
        let direct = matches!(ev.origin.channel_type.as_ref(), Some(t) if t.0 == "im");
        let text = if direct {
            command_of(raw, limit, |raw| self.without_mention(raw))
        } else if raw.contains(&self.mention_markup()) {
            return None;
        } else {
            command_of(self.without_prefix(raw)?, limit, str::to_string)
        };
        Some(Addressed {
            text,
            user,
            channel,
            thread: Some(thread_of(&ev.origin)),
        })
    }

    /// An `app_mention` event: someone wrote `@octobot …` in a channel. (Whether a bot
    /// wrote it is read from the event's JSON, [`from_a_bot`], before this.)
    pub fn mention(&self, ev: &SlackAppMentionEvent, limit: usize) -> Option<Addressed> {
        if ev.user.to_string() == self.bot_user {
            tracing::debug!(ts = %ev.origin.ts, "ignored a mention of the bot's own");
            return None;
        }
        if ev.edited.is_some() {
            return None;
        }
        let raw = ev.content.text.as_deref()?;
        Some(Addressed {
            text: command_of(raw, limit, |raw| self.without_mention(raw)),
            user: ev.user.to_string(),
            channel: ev.channel.to_string(),
            thread: Some(thread_of(&ev.origin)),
        })
    }

    /// A slash command: its whole text is the command.
    pub fn command(&self, ev: &SlackCommandEvent, limit: usize) -> Addressed {
        Addressed {
            text: command_of(ev.text.as_deref().unwrap_or(""), limit, str::to_string),
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
    fn without_prefix<'t>(&self, raw: &'t str) -> Option<&'t str> {
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
            (!command.is_empty()).then_some(command)
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

    const LIMIT: usize = 4096;

    fn addressing() -> Addressing {
        Addressing::new("UBOT", vec!["octobot".into(), "!".into()])
    }

    fn text(a: Addressed) -> String {
        match a.text {
            Command::Text(t) => t,
            other => panic!("expected a command, got {other:?}"),
        }
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
        let a = addressing().message(&ev, LIMIT).unwrap();
        assert_eq!(a.thread.as_deref(), Some("1.1"));
        assert_eq!(text(a), "ping");
    }

    #[test]
    fn in_a_channel_only_prefixed_messages_are_taken() {
        let a = addressing();
        let said = |t: &str| {
            let ev = message(serde_json::json!({
                "type": "message", "channel": "C1", "channel_type": "channel",
                "user": "U1", "text": t, "ts": "2.2", "thread_ts": "1.0"
            }));
            a.message(&ev, LIMIT).map(|a| {
                let thread = a.thread.clone();
                (text(a), thread)
            })
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
            assert_eq!(a.message(&message(ev.clone()), LIMIT), None, "{ev}");
        }
    }

    #[test]
    fn an_event_with_a_bot_id_or_of_subtype_bot_message_is_from_a_bot() {
        assert_eq!(
            from_a_bot(&serde_json::json!({"type": "app_mention", "user": "U9",
                "bot_id": "B9", "text": "<@UBOT> echo hi"})),
            Some("bot_id")
        );
        assert_eq!(
            from_a_bot(&serde_json::json!({"type": "message",
                "subtype": "bot_message", "text": "hi"})),
            Some("bot_message")
        );
        assert_eq!(
            from_a_bot(&serde_json::json!({"type": "app_mention", "user": "U1",
                "text": "<@UBOT> ping"})),
            None
        );
        let own: SlackAppMentionEvent = serde_json::from_value(serde_json::json!({
            "type": "app_mention", "user": "UBOT", "channel": "C1", "ts": "3.3",
            "text": "<@UBOT> echo hi"
        }))
        .unwrap();
        assert_eq!(addressing().mention(&own, LIMIT), None);
    }

    #[test]
    fn a_text_past_the_limit_is_refused_as_it_came_without_being_undone() {
        let long = format!("&lt;!channel&gt; {}", "x".repeat(5_000));
        let dm = message(serde_json::json!({
            "type": "message", "channel": "D1", "channel_type": "im",
            "user": "U1", "text": long, "ts": "1.1"
        }));
        let a = addressing().message(&dm, LIMIT).unwrap();
        assert_eq!(a.text, Command::TooLong { bytes: long.len() });
        let short = addressing().message(&dm, 100_000).unwrap();
        assert!(text(short).starts_with("<!channel> x"));
        let prefixed = message(serde_json::json!({
            "type": "message", "channel": "C1", "channel_type": "channel",
            "user": "U1", "text": format!("!{}", "y".repeat(10)), "ts": "1.2"
        }));
        assert_eq!(
            addressing().message(&prefixed, 10).unwrap().text,
            Command::Text("y".repeat(10))
        );
        assert_eq!(
            addressing().message(&prefixed, 9).unwrap().text,
            Command::TooLong { bytes: 10 }
        );
    }

    #[test]
    fn a_mention_is_taken_off_and_markup_undone() {
        let ev: SlackAppMentionEvent = serde_json::from_value(serde_json::json!({
            "type": "app_mention", "user": "U1", "channel": "C1", "ts": "3.3",
            "text": "<@UBOT> scan <http://example.com|example.com> &amp; more"
        }))
        .unwrap();
        let a = addressing().mention(&ev, LIMIT).unwrap();
        assert_eq!(
            (a.channel.as_str(), a.thread.as_deref()),
            ("C1", Some("3.3"))
        );
        assert_eq!(text(a), "scan example.com & more");
    }
}
