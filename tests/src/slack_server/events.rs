//! What people do in Slack, as the payloads Slack sends for it (messages, mentions, slash
//! commands, button presses as `block_actions` interactions), and the signature Slack puts
//! on Events API requests.

use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::state::Message;

/// Makes payloads with fresh event ids and message timestamps.
#[derive(Default)]
pub struct People {
    next: AtomicU64,
}

/// A message someone wrote: its payload, and the ts replies thread under.
pub struct Said {
    pub payload: Value,
    pub ts: String,
    pub event_id: String,
}

impl People {
    fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn callback(&self, event: Value) -> (Value, String) {
        let n = self.next();
        let event_id = format!("Ev{n:08}");
        let payload = json!({
            "token": "verification-token", "team_id": "T0OCTOBOX", "api_app_id": "A0OCTOBOX",
            "event": event, "type": "event_callback", "event_id": event_id,
            "event_time": 1_700_000_000 + n,
            "authorizations": [{"team_id": "T0OCTOBOX", "user_id": super::BOT_USER, "is_bot": true}]
        });
        (payload, event_id)
    }

    fn ts(&self) -> String {
        format!("1600000000.{:06}", self.next())
    }

    /// `user` writes `text` to the bot in a direct message.
    pub fn dm(&self, user: &str, text: &str) -> Said {
        let ts = self.ts();
        let (payload, event_id) = self.callback(json!({
            "type": "message", "channel": format!("D{user}"), "channel_type": "im",
            "user": user, "text": text, "ts": ts, "event_ts": ts
        }));
        Said {
            payload,
            ts,
            event_id,
        }
    }

    /// `user` writes `text` in `channel` (no mention).
    pub fn says(&self, channel: &str, user: &str, text: &str) -> Said {
        let ts = self.ts();
        let (payload, event_id) = self.callback(json!({
            "type": "message", "channel": channel, "channel_type": "channel",
            "user": user, "text": text, "ts": ts, "event_ts": ts
        }));
        Said {
            payload,
            ts,
            event_id,
        }
    }

    /// `user` writes `@octobot text` in `channel`: the `app_mention` event.
    pub fn mentions(&self, channel: &str, user: &str, text: &str) -> Said {
        let ts = self.ts();
        let (payload, event_id) = self.callback(json!({
            "type": "app_mention", "channel": channel, "user": user,
            "text": format!("<@{}> {text}", super::BOT_USER), "ts": ts, "event_ts": ts
        }));
        Said {
            payload,
            ts,
            event_id,
        }
    }

    /// A bot (another integration) writes `text` in a direct message.
    pub fn bot_says(&self, channel: &str, text: &str) -> Said {
        let ts = self.ts();
        let (payload, event_id) = self.callback(json!({
            "type": "message", "subtype": "bot_message", "channel": channel,
            "channel_type": "im", "bot_id": "B0OTHER", "text": text, "ts": ts
        }));
        Said {
            payload,
            ts,
            event_id,
        }
    }

    /// Another integration's bot user `user` writes `@octobot text` in `channel`: an
    /// `app_mention` with the `bot_id` and `bot_profile` Slack gives a bot's message.
    pub fn bot_mentions(&self, channel: &str, user: &str, text: &str) -> Said {
        let ts = self.ts();
        let (payload, event_id) = self.callback(json!({
            "type": "app_mention", "channel": channel, "user": user,
            "bot_id": "B0OTHER",
            "bot_profile": {"id": "B0OTHER", "app_id": "A0OTHER", "name": "other-bot",
                            "team_id": "T0OCTOBOX", "deleted": false},
            "text": format!("<@{}> {text}", super::BOT_USER), "ts": ts, "event_ts": ts
        }));
        Said {
            payload,
            ts,
            event_id,
        }
    }

    /// `user` types `/octobot text` in `channel`.
    pub fn slash(&self, channel: &str, user: &str, text: &str) -> Value {
        let n = self.next();
        json!({
            "token": "verification-token", "team_id": "T0OCTOBOX", "team_domain": "octobox-test",
            "channel_id": channel, "channel_name": "ops", "user_id": user, "user_name": user,
            "command": "/octobot", "text": text, "api_app_id": "A0OCTOBOX",
            "response_url": format!("https://hooks.slack.test/commands/{n}"),
            "trigger_id": format!("trigger-{n}")
        })
    }

    /// `user` presses the button `action_id` of `prompt` (a message the bot posted): the
    /// `block_actions` interaction payload Slack sends, with a fresh `action_ts` and
    /// `trigger_id`. The button's value is the one the prompt carries (empty if it has no
    /// such button).
    pub fn clicks(&self, user: &str, prompt: &Message, action_id: &str) -> Value {
        let n = self.next();
        let (value, label) = prompt
            .buttons()
            .into_iter()
            .find(|(id, _)| id == action_id)
            .map(|(_, value)| (value, action_id.to_string()))
            .unwrap_or_default();
        json!({
            "type": "block_actions",
            "user": {"id": user, "username": user.to_lowercase(), "name": user.to_lowercase(),
                     "team_id": "T0OCTOBOX"},
            "api_app_id": "A0OCTOBOX",
            "token": "verification-token",
            "container": {"type": "message", "message_ts": prompt.ts, "channel_id": prompt.channel,
                          "is_ephemeral": false},
            "trigger_id": format!("{n}.1700000000.trigger"),
            "team": {"id": "T0OCTOBOX", "domain": "octobox-test"},
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": {"id": prompt.channel, "name": "approvals"},
            "message": {"type": "message", "ts": prompt.ts, "thread_ts": prompt.thread_ts,
                        "text": prompt.text, "user": super::BOT_USER, "bot_id": "B0OCTOBOX",
                        "blocks": prompt.blocks},
            "state": {"values": {}},
            "response_url": format!("https://hooks.slack.test/actions/{n}"),
            "actions": [{"type": "button", "action_id": action_id, "block_id": "decide",
                         "text": {"type": "plain_text", "text": label, "emoji": true},
                         "value": value, "action_ts": format!("1700000100.{n:06}")}]
        })
    }
}

/// The body of an Events API interactivity request: the payload's JSON in the form
/// field `payload` (`application/x-www-form-urlencoded`).
pub fn interactivity_form(payload: &Value) -> String {
    let json = payload.to_string();
    let mut encoded = String::with_capacity(json.len() * 3 / 2);
    for b in json.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("payload={encoded}")
}

/// Slack's request signature: `v0=` and the hex HMAC-SHA256 of `v0:<timestamp>:<body>`.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` to an Events API endpoint at `url` (`http://host:port/path`) with Slack's
/// signature headers; returns the HTTP status.
pub async fn post_signed(
    url: &str,
    body: &str,
    timestamp: &str,
    signature: &str,
) -> std::io::Result<u16> {
    post_signed_as(url, "application/json", body, timestamp, signature).await
}

/// As [`post_signed`], with the given `Content-Type`.
pub async fn post_signed_as(
    url: &str,
    content_type: &str,
    body: &str,
    timestamp: &str,
    signature: &str,
) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
         X-Slack-Request-Timestamp: {timestamp}\r\nX-Slack-Signature: {signature}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let head = String::from_utf8_lossy(&response);
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head}")))
}
