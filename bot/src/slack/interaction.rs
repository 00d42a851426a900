//! `Click`: what Slack sends when someone presses one of the bot's buttons — a
//! `block_actions` interaction payload, read with slack-morphism's `SlackInteractionEvent`.
//! It arrives in a Socket Mode envelope of type `interactive`, or as the Events API's
//! interactivity request (`application/x-www-form-urlencoded`, the JSON in its `payload`
//! field). Only clicks on the approval buttons ([`ACTION_APPROVE`], [`ACTION_DENY`]) are
//! served; other interactions are acknowledged and left alone.

use slack_morphism::prelude::*;

use super::approval_prompt::{ACTION_APPROVE, ACTION_DENY};

/// Which button was pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Approve,
    Deny,
}

/// A press of an approval button, with what is needed to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub choice: Choice,
    /// The Slack user who pressed it.
    pub user: String,
    /// The button's value: the job id the prompt is about (checked by the router).
    pub job: String,
    /// The prompt's channel, its ts, and the thread it is in, if it is in one.
    pub channel: String,
    pub message_ts: String,
    pub thread_ts: Option<String>,
    /// What tells a redelivered click from another: the action's ts and the user, or the
    /// trigger id when Slack gives no action ts.
    pub key: String,
}

/// Why an interaction payload is not a click the bot acts on.
#[derive(Debug, thiserror::Error)]
pub enum NotAClick {
    #[error("the interaction payload could not be read: {0}")]
    Unreadable(#[from] serde_json::Error),
    #[error("an interaction of a kind the bot does not serve ({0})")]
    OtherKind(&'static str),
    #[error("a block action that is not an approval button")]
    OtherAction,
    #[error("a block action without {0}")]
    Incomplete(&'static str),
}

impl Click {
    /// The click in an interaction payload, as Slack sent it.
    pub fn read(payload: serde_json::Value) -> Result<Click, NotAClick> {
        let event: SlackInteractionEvent = serde_json::from_value(payload)?;
        let actions = match event {
            SlackInteractionEvent::BlockActions(actions) => actions,
            SlackInteractionEvent::BlockSuggestion(_) => {
                return Err(NotAClick::OtherKind("block_suggestion"))
            }
            SlackInteractionEvent::DialogSubmission(_) => {
                return Err(NotAClick::OtherKind("dialog_submission"))
            }
            SlackInteractionEvent::MessageAction(_) => {
                return Err(NotAClick::OtherKind("message_action"))
            }
            SlackInteractionEvent::Shortcut(_) => return Err(NotAClick::OtherKind("shortcut")),
            SlackInteractionEvent::ViewSubmission(_) => {
                return Err(NotAClick::OtherKind("view_submission"))
            }
            SlackInteractionEvent::ViewClosed(_) => {
                return Err(NotAClick::OtherKind("view_closed"))
            }
        };
        let action = actions
            .actions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|a| a.action_id.0 == ACTION_APPROVE || a.action_id.0 == ACTION_DENY)
            .ok_or(NotAClick::OtherAction)?;
        let choice = if action.action_id.0 == ACTION_APPROVE {
            Choice::Approve
        } else {
            Choice::Deny
        };
        let user = actions
            .user
            .as_ref()
            .map(|u| u.id.to_string())
            .ok_or(NotAClick::Incomplete("a user"))?;
        let job = action
            .value
            .clone()
            .ok_or(NotAClick::Incomplete("a value"))?;
        let SlackInteractionActionContainer::Message(container) = &actions.container else {
            return Err(NotAClick::Incomplete("a message"));
        };
        let channel = container
            .channel_id
            .as_ref()
            .or(actions.channel.as_ref().map(|c| &c.id))
            .map(|c| c.to_string())
            .ok_or(NotAClick::Incomplete("a channel"))?;
        let thread_ts = actions
            .message
            .as_ref()
            .and_then(|m| m.origin.thread_ts.as_ref())
            .map(|t| t.to_string());
        let key = match &action.action_ts {
            Some(ts) => format!("action:{user}:{ts}"),
            None => format!("trigger:{}", actions.trigger_id),
        };
        Ok(Click {
            choice,
            user,
            job,
            channel,
            message_ts: container.message_ts.to_string(),
            thread_ts,
            key,
        })
    }

    /// The command the click stands for, as if the user had typed it.
    pub fn command(&self) -> String {
        match self.choice {
            Choice::Approve => format!("approve {}", self.job),
            Choice::Deny => format!("deny {}", self.job),
        }
    }

    /// The thread the click's answers go to: the prompt's own thread, or the prompt's.
    pub fn thread(&self) -> &str {
        self.thread_ts.as_deref().unwrap_or(&self.message_ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(action_id: &str) -> serde_json::Value {
        json!({
            "type": "block_actions",
            "team": {"id": "T0OCTOBOX", "domain": "octobox"},
            "user": {"id": "UBOB", "username": "bob", "team_id": "T0OCTOBOX"},
            "api_app_id": "A0OCTOBOX",
            "token": "verification-token",
            "container": {"type": "message", "message_ts": "1700000000.000002",
                          "channel_id": "CAPPROVE", "is_ephemeral": false},
            "trigger_id": "123.456.abc",
            "channel": {"id": "CAPPROVE", "name": "approvers"},
            "message": {"type": "message", "ts": "1700000000.000002", "text": "asks",
                        "thread_ts": "1600000000.000001", "user": "UBOT", "bot_id": "B0OCTOBOX"},
            "response_url": "https://hooks.slack.test/actions/1",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "decide",
                         "text": {"type": "plain_text", "text": "Approve"},
                         "value": "0192f0c1-7a3e-7cc2-9d1e-2b8f0e6c1a55",
                         "style": "primary", "action_ts": "1700000001.000100"}]
        })
    }

    #[test]
    fn an_approve_click_reads_as_the_approve_command_in_the_prompts_thread() {
        let click = Click::read(payload(ACTION_APPROVE)).unwrap();
        assert_eq!(
            click.command(),
            "approve 0192f0c1-7a3e-7cc2-9d1e-2b8f0e6c1a55"
        );
        assert_eq!(click.user, "UBOB");
        assert_eq!(click.channel, "CAPPROVE");
        assert_eq!(click.thread(), "1600000000.000001");
        assert_eq!(click.key, "action:UBOB:1700000001.000100");
        assert_eq!(
            Click::read(payload(ACTION_DENY)).unwrap().choice,
            Choice::Deny
        );
    }

    #[test]
    fn other_buttons_kinds_and_garbage_are_not_clicks() {
        assert!(matches!(
            Click::read(payload("somebody_elses")),
            Err(NotAClick::OtherAction)
        ));
        assert!(matches!(
            Click::read(json!({"type": "block_actions"})),
            Err(NotAClick::Unreadable(_))
        ));
        assert!(matches!(
            Click::read(
                json!({"type": "view_closed", "team": {"id": "T"}, "user": {"id": "U"},
                               "view": {}})
            ),
            Err(NotAClick::Unreadable(_) | NotAClick::OtherKind(_))
        ));
    }
}
