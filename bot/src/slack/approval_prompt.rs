//! Approval prompts: the Block Kit message with an Approve and a Deny button that the
//! adapter posts for a job waiting for approval — in the request's thread, and in the
//! channel the command's `approval.channel` names — and the edit that shows the decision
//! once it is made, buttons removed.
//!
//! Where each prompt is (channel and ts) is kept in store notes (`slack:approval:<job>:<n>`,
//! at most [`MAX_PROMPTS`] per job, each with [`PROMPT_TTL`]), so any bot process can edit
//! it: the one that took the click, or, for a decision made elsewhere (over SSH, at the
//! console, by expiry), the one that delivers the job's result. A prompt decides nothing
//! itself: a click is the `approve`/`deny` command of the user who pressed it, through
//! the router. The words come from `reply`; every value in them is escaped (`Mrkdwn`).

use std::time::Duration;

use jobs::{Approval, Decision, JobId, Store};
use slack_morphism::prelude::*;

use super::api::Blocks;
use super::mrkdwn::Mrkdwn;
use super::outbox::Outbox;
use crate::reply;

/// The `action_id` of the Approve button.
pub const ACTION_APPROVE: &str = "octobox_approve";
/// The `action_id` of the Deny button.
pub const ACTION_DENY: &str = "octobox_deny";
/// How many prompts one job has at most: its request's thread, the approvers' channel.
pub const MAX_PROMPTS: usize = 2;
/// How long a prompt's address is kept: long enough for the job's result, which edits
/// it when nobody did before, to come after a long run.
pub const PROMPT_TTL: Duration = Duration::from_secs(7 * 86_400);
/// The longest text of a section block, in characters (Slack takes 3,000).
const SECTION_LIMIT: usize = 2_900;

fn prompt_key(job: JobId, n: usize) -> String {
    format!("slack:approval:{job}:{n}")
}

/// Taken by whoever edits a job's prompts to show its decision, so that it is done once.
fn shown_key(job: JobId) -> String {
    format!("slack:approval:{job}:shown")
}

/// The prompts of jobs, read and written through the store and the outbox.
pub struct Prompts<'a> {
    pub outbox: &'a Outbox,
    pub store: &'a dyn Store,
}

impl Prompts<'_> {
    /// Posts `approval`'s prompt in `channel` (under `thread`), and in `approvers` when
    /// given and not that same channel, noting where each went.
    pub async fn post(
        &self,
        approval: &Approval,
        channel: &str,
        thread: Option<&str>,
        approvers: Option<&str>,
    ) {
        let (text, blocks) = prompt(approval);
        let mut places = vec![(channel, thread)];
        if let Some(approvers) = approvers.filter(|c| *c != channel) {
            places.push((approvers, None));
        }
        for (channel, thread) in places {
            match self
                .outbox
                .post_blocks(channel, thread, &text, blocks.clone())
                .await
            {
                Ok(Some(ts)) => {
                    self.note(approval.id(), channel, &ts).await;
                    self.show_if_decided(approval.id(), channel, &ts).await;
                }
                Ok(None) => {
                    tracing::warn!(job = %approval.id(), channel, "approval prompt posted, but Slack did not say where; it will keep its buttons")
                }
                Err(e) => {
                    tracing::warn!(job = %approval.id(), channel, error = %e, "approval prompt not posted")
                }
            }
        }
    }

    async fn note(&self, job: JobId, channel: &str, ts: &str) {
        let value = format!("{channel} {ts}");
        for n in 0..MAX_PROMPTS {
            match self
                .store
                .note_once(&prompt_key(job, n), &value, PROMPT_TTL)
                .await
            {
                Ok(true) => return,
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(%job, channel, error = %e, "approval prompt not noted; it will keep its buttons");
                    return;
                }
            }
        }
        tracing::warn!(%job, channel, "more approval prompts than noted; this one keeps its buttons");
    }

    /// Edits the prompt just posted at (`channel`, `ts`) if `job` was decided meanwhile:
    /// a decision made before this prompt was noted was shown on the others only. The
    /// prompt is noted first, so a decision stored after this look finds it in
    /// [`Prompts::show_decision`]; at worst both edit it, to the same text.
    async fn show_if_decided(&self, job: JobId, channel: &str, ts: &str) {
        let Ok(Some((approval, Some(decision)))) = self.store.approval(job).await else {
            return;
        };
        let (text, blocks) = decided(&approval, &decision);
        if let Err(e) = self.outbox.finish_blocks(channel, ts, &text, blocks).await {
            tracing::warn!(%job, %channel, error = %e, "approval prompt not edited to its decision");
        }
    }

    /// Where `job`'s prompts are, as (channel, ts).
    pub async fn noted(&self, job: JobId) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for n in 0..MAX_PROMPTS {
            match self.store.note(&prompt_key(job, n)).await {
                Ok(Some(value)) => {
                    if let Some((channel, ts)) = value.split_once(' ') {
                        found.push((channel.to_string(), ts.to_string()));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%job, error = %e, "approval prompts unknown");
                    break;
                }
            }
        }
        found
    }

    /// If `job` waited for approval and is decided, edits each of its prompts to show the
    /// decision, without buttons — once, whichever bot process asks first. `clicked`, the
    /// prompt whose button was pressed, is edited too even if it was never noted (its bot
    /// stopped between posting it and noting it).
    pub async fn show_decision(&self, job: JobId, clicked: Option<(&str, &str)>) {
        let mut prompts = self.noted(job).await;
        if let Some((channel, ts)) = clicked {
            if !prompts.iter().any(|(c, t)| c == channel && t == ts) {
                prompts.push((channel.to_string(), ts.to_string()));
            }
        }
        if prompts.is_empty() {
            return;
        }
        let (approval, decision) = match self.store.approval(job).await {
            Ok(Some((approval, Some(decision)))) => (approval, decision),
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(%job, error = %e, "cannot read the decision; the prompts keep their buttons");
                return;
            }
        };
        match self
            .store
            .note_once(&shown_key(job), "shown", PROMPT_TTL)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::debug!(%job, error = %e, "cannot tell whether the decision is shown; showing it");
            }
        }
        let (text, blocks) = decided(&approval, &decision);
        for (channel, ts) in prompts {
            if let Err(e) = self
                .outbox
                .finish_blocks(&channel, &ts, &text, blocks.clone())
                .await
            {
                tracing::warn!(%job, %channel, error = %e, "approval prompt not edited to its decision");
            }
        }
    }
}

/// The prompt of `approval`: its text (the notification's fallback) and its blocks, a
/// section with that text and the two buttons, whose value is the job id.
pub fn prompt(approval: &Approval) -> (Mrkdwn, Blocks) {
    let text = escaped_within(&reply::approval_prompt(approval), SECTION_LIMIT);
    let id = approval.id().to_string();
    let button = |action: &str, label: &str, style| {
        SlackActionBlockElement::Button(
            SlackBlockButtonElement::new(label.into())
                .with_action_id(action.into())
                .with_value(id.clone())
                .with_style(style),
        )
    };
    let actions = SlackActionsBlock::new(vec![
        button(ACTION_APPROVE, "Approve", SlackBlockButtonStyle::Primary),
        button(ACTION_DENY, "Deny", SlackBlockButtonStyle::Danger),
    ])
    .with_block_id(format!("octobox_decide_{id}").into());
    let blocks = vec![section(&text), actions.into()];
    (text, blocks)
}

/// The prompt of `approval` once decided: the decision in a section, no buttons. A Slack
/// decider is shown as a mention; anyone else by their identity, escaped.
pub fn decided(approval: &Approval, decision: &Decision) -> (Mrkdwn, Blocks) {
    let parts = reply::decided_prompt(approval, decision);
    let mut text = Mrkdwn::escape(&parts.before);
    if let Some(by) = &parts.by {
        let mention = by
            .strip_prefix("slack:")
            .and_then(Mrkdwn::mention)
            .unwrap_or_else(|| Mrkdwn::escape(by));
        text = text.then(&mention);
    }
    let text = text.then(&escaped_within(&parts.after, SECTION_LIMIT / 2));
    let blocks = vec![section(&text)];
    (text, blocks)
}

fn section(text: &Mrkdwn) -> SlackBlock {
    SlackSectionBlock::new()
        .with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(
            text.to_string(),
        )))
        .into()
}

/// `text` escaped, cut (at a character, never inside an entity) so that it takes at most
/// `limit` characters.
fn escaped_within(text: &str, limit: usize) -> Mrkdwn {
    let mut width = 0;
    for (at, c) in text.char_indices() {
        width += Mrkdwn::escaped_width(c);
        if width > limit {
            return Mrkdwn::escape(&format!("{}…", &text[..at]));
        }
    }
    Mrkdwn::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use jobs::{Job, Origin, Task};

    fn approval() -> Approval {
        let origin = Origin {
            adapter: "slack".into(),
            user: "UALICE".into(),
            channel: Some("DUALICE".into()),
            thread: None,
        };
        let mut args = std::collections::BTreeMap::new();
        args.insert("to".into(), lexicon::Value::Text("<!channel> prod".into()));
        let job = Job::new(
            "deploy",
            args,
            Task::Native {
                name: "sleep".into(),
            },
            origin,
            Duration::from_secs(60),
        );
        Approval {
            job,
            by: "group:leads".into(),
            reason: Some("the <@UEVERYONE> fix".into()),
            expires_at: Utc::now() + chrono::Duration::minutes(15),
        }
    }

    #[test]
    fn a_prompt_has_the_escaped_text_and_two_buttons_carrying_the_job_id() {
        let approval = approval();
        let (text, blocks) = prompt(&approval);
        assert!(text.as_str().contains("&lt;!channel&gt; prod"), "{text}");
        assert!(text.as_str().contains("&lt;@UEVERYONE&gt;"), "{text}");
        let json = serde_json::to_value(&blocks).unwrap();
        assert_eq!(json[0]["type"], "section");
        assert_eq!(json[0]["text"]["type"], "mrkdwn");
        assert_eq!(json[1]["type"], "actions");
        let buttons = json[1]["elements"].as_array().unwrap();
        assert_eq!(buttons[0]["action_id"], ACTION_APPROVE);
        assert_eq!(buttons[0]["style"], "primary");
        assert_eq!(buttons[1]["action_id"], ACTION_DENY);
        assert_eq!(buttons[1]["style"], "danger");
        for b in buttons {
            assert_eq!(b["value"], approval.id().to_string());
        }
    }

    #[test]
    fn a_fan_out_prompt_says_on_how_many_hosts_it_runs() {
        let mut approval = approval();
        let (plain, _) = prompt(&approval);
        assert!(!plain.as_str().contains("hosts"), "{plain}");
        approval.job.children = (0..3).map(|_| jobs::JobId::new()).collect();
        let (text, _) = prompt(&approval);
        assert!(text.as_str().contains("on each of 3 hosts"), "{text}");
    }

    #[test]
    fn a_decided_prompt_names_a_slack_decider_with_a_mention_and_has_no_buttons() {
        let approval = approval();
        let approved = Decision::Approved {
            by: "slack:UBOB".into(),
            at: Utc::now(),
        };
        let (text, blocks) = decided(&approval, &approved);
        assert!(text.as_str().ends_with("approved by <@UBOB>"), "{text}");
        assert_eq!(blocks.len(), 1);
        let denied = Decision::Denied {
            by: "ssh:<b>".into(),
            at: Utc::now(),
            reason: Some("<!here>".into()),
        };
        let (text, _) = decided(&approval, &denied);
        assert!(
            text.as_str()
                .ends_with("denied by ssh:&lt;b&gt;: &lt;!here&gt;"),
            "{text}"
        );
    }

    #[test]
    fn a_long_text_is_cut_outside_entities() {
        let cut = escaped_within(&"<".repeat(2_000), 10);
        assert_eq!(cut.as_str(), "&lt;&lt;…");
    }
}
