//! `SlackSink`: how a job's life shows in Slack.
//!
//! The bot that took the request posts "queued as job …" in the request's thread and
//! keeps that message's address in the store (a note shared by all bot processes), so
//! whichever bot process follows the job can edit it: "running on worker-2", the last
//! progress line, and at the end the result itself when it fits in one message. A longer
//! result follows in the thread, split over a few messages or uploaded as a file; a
//! file result is uploaded into the thread. A job asked for without a thread (a
//! scheduled job delivering to a channel) gets its result as a new channel message. A job
//! that waited for approval has its prompts edited to the decision once its result is
//! delivered, so a decision made elsewhere (another adapter, expiry) leaves no live
//! buttons.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jobs::{JobId, Origin, Store};

use super::api::UploadFile;
use super::approval_prompt::Prompts;
use super::mrkdwn::Mrkdwn;
use super::outbox::Outbox;
use crate::async_manager::{DeliveryError, ReplySink};
use crate::reply::{self, JobUpdate, Reply};

/// The longest text sent as one message (Slack advises 4,000 characters).
pub const MESSAGE_LIMIT: usize = 3_900;
/// Text longer than this many messages is uploaded as a file instead.
const MAX_PARTS: usize = 4;
/// How long the address of a job's status message is kept.
const STATUS_TTL: Duration = Duration::from_secs(7 * 86_400);
/// How long an update or a result waits for the status message of a job that started
/// or finished at once.
const STATUS_WAIT: Duration = Duration::from_millis(1_500);

/// Where a job's status message is: the store note key and its value.
pub fn status_key(job: JobId) -> String {
    format!("slack:status:{job}")
}

/// Records that job `job`'s status message is `ts` in `channel`.
pub async fn note_status(store: &dyn Store, job: JobId, channel: &str, ts: &str) {
    if let Err(e) = store
        .note_once(&status_key(job), &format!("{channel} {ts}"), STATUS_TTL)
        .await
    {
        tracing::warn!(%job, error = %e, "status message not recorded; the result will follow it instead");
    }
}

pub struct SlackSink {
    pub outbox: Arc<Outbox>,
    pub store: Arc<dyn Store>,
}

impl SlackSink {
    /// The status message of `job`, as (channel, ts); waiting up to `wait` for it.
    async fn status(&self, job: JobId, wait: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.store.note(&status_key(job)).await {
                Ok(Some(v)) => {
                    let (channel, ts) = v.split_once(' ')?;
                    return Some((channel.to_string(), ts.to_string()));
                }
                Ok(None) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(None) => return None,
                Err(e) => {
                    tracing::debug!(%job, error = %e, "status message unknown");
                    return None;
                }
            }
        }
    }
}

/// How a text goes out: as messages (escaped for Slack), or as a file when too long for a
/// few (a file is shown as it is: it needs no escaping).
#[derive(Debug, PartialEq, Eq)]
pub enum Layout {
    Messages(Vec<Mrkdwn>),
    File(UploadFile),
}

/// Splits `text` at line ends into messages of at most [`MESSAGE_LIMIT`] characters once
/// escaped (a cut never falls inside `&lt;`), or makes it a file named `name` when it
/// needs more than a few.
pub fn layout(text: &str, name: &str) -> Layout {
    let mut parts: Vec<&str> = Vec::new();
    // The part being filled: where it starts in `text`, its escaped width.
    let (mut start, mut width) = (0, 0);
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let mut line = line;
        while !line.is_empty() {
            let (cut, line_width) = fit(line, MESSAGE_LIMIT - width);
            if cut == line.len() {
                width += line_width;
                at += cut;
                break;
            }
            if width > 0 {
                parts.push(&text[start..at]);
                (start, width) = (at, 0);
                continue;
            }
            at += cut;
            parts.push(&text[start..at]);
            (start, width) = (at, 0);
            line = &line[cut..];
        }
    }
    if at > start || parts.is_empty() {
        parts.push(&text[start..at]);
    }
    if parts.len() > MAX_PARTS {
        return Layout::File(UploadFile {
            name: name.to_string(),
            media_type: "text/plain".to_string(),
            bytes: text.as_bytes().to_vec(),
            comment: None,
        });
    }
    Layout::Messages(
        parts
            .into_iter()
            .map(|p| Mrkdwn::escape(p.trim_end()))
            .collect(),
    )
}

/// The longest start of `line` whose escaped width is at most `room`: its length in
/// bytes, and that width.
fn fit(line: &str, room: usize) -> (usize, usize) {
    let mut width = 0;
    for (i, c) in line.char_indices() {
        let w = Mrkdwn::escaped_width(c);
        if width + w > room {
            return (i, width);
        }
        width += w;
    }
    (line.len(), width)
}

#[async_trait]
impl ReplySink for SlackSink {
    async fn deliver(&self, origin: &Origin, reply: Reply) -> Result<(), DeliveryError> {
        let channel = origin.channel.as_deref().ok_or(DeliveryError::Unaddressed(
            "a Slack request without a channel",
        ))?;
        let status = self.status(reply.job, STATUS_WAIT).await;
        let thread = origin
            .thread
            .clone()
            .or_else(|| status.as_ref().map(|(_, ts)| ts.clone()));
        let thread = thread.as_deref();
        let (first, more, long_text) = match layout(&reply.text, &reply::text_file_name(reply.job))
        {
            Layout::Messages(mut parts) => {
                let first = parts.remove(0);
                (first, parts, None)
            }
            Layout::File(file) => (head(&reply.text), Vec::new(), Some(file)),
        };
        let shown = match &status {
            Some((status_channel, ts)) => self.outbox.finish(status_channel, ts, &first).await,
            None => self.outbox.post(channel, thread, &first).await.map(drop),
        };
        shown.map_err(DeliveryError::adapter)?;
        for part in more {
            self.outbox
                .post(channel, thread, &part)
                .await
                .map_err(DeliveryError::adapter)?;
        }
        if let Some(file) = long_text {
            self.outbox
                .upload(channel, thread, file)
                .await
                .map_err(DeliveryError::adapter)?;
        }
        if let Some((name, media_type, bytes)) = reply.file {
            let file = UploadFile {
                name,
                media_type,
                bytes,
                comment: None,
            };
            self.outbox
                .upload(channel, thread, file)
                .await
                .map_err(DeliveryError::adapter)?;
        }
        // A job that waited for approval: its prompts show the decision, whoever made it.
        Prompts {
            outbox: &self.outbox,
            store: self.store.as_ref(),
        }
        .show_decision(reply.job, None)
        .await;
        Ok(())
    }

    fn follows_progress(&self) -> bool {
        true
    }

    async fn progress(&self, _origin: &Origin, update: JobUpdate) -> Result<(), DeliveryError> {
        let job = update.job();
        // A job often starts before its status message is posted: wait for it a little.
        let Some((channel, ts)) = self.status(job, STATUS_WAIT).await else {
            return Ok(());
        };
        if self.finished(job).await.is_some() {
            return Ok(());
        }
        self.outbox
            .edit(&channel, &ts, &Mrkdwn::escape(&reply::update(&update)))
            .await
            .map_err(DeliveryError::adapter)?;
        // The result may have been shown meanwhile, by this bot or another, and this edit
        // may have landed after it: whoever edits last puts the result back.
        if let Some(result) = self.finished(job).await {
            let first = match layout(&result.text, &reply::text_file_name(job)) {
                Layout::Messages(mut parts) => parts.remove(0),
                Layout::File(_) => head(&result.text),
            };
            self.outbox
                .finish(&channel, &ts, &first)
                .await
                .map_err(DeliveryError::adapter)?;
        }
        Ok(())
    }
}

impl SlackSink {
    /// The reply of job `job`, if it has finished.
    async fn finished(&self, job: JobId) -> Option<Reply> {
        match self.store.job(job).await {
            Ok(Some(record)) if record.result.is_some() => Some(reply::result(&record)),
            _ => None,
        }
    }
}

/// The first line of a text, for a status message whose result follows in the thread
/// (cut to one message).
fn head(text: &str) -> Mrkdwn {
    let line = text.lines().next().unwrap_or_default();
    let (cut, _) = fit(line, MESSAGE_LIMIT);
    Mrkdwn::escape(&line[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_message() {
        assert_eq!(
            layout("hi\n", "x.txt"),
            Layout::Messages(vec![Mrkdwn::escape("hi")])
        );
    }

    #[test]
    fn long_text_is_split_at_line_ends_then_becomes_a_file() {
        let line = "a".repeat(99) + "\n";
        let text = line.repeat(80); // 8,000 characters: two or three messages
        let Layout::Messages(parts) = layout(&text, "x.txt") else {
            panic!("expected messages");
        };
        assert!(
            parts.len() >= 2 && parts.len() <= MAX_PARTS,
            "{}",
            parts.len()
        );
        assert!(parts
            .iter()
            .all(|p| p.as_str().chars().count() <= MESSAGE_LIMIT));
        let joined: String = parts.iter().map(Mrkdwn::as_str).collect();
        assert_eq!(joined.len(), text.len() - parts.len());
        let huge = line.repeat(400);
        match layout(&huge, "job.txt") {
            Layout::File(f) => {
                assert_eq!(f.name, "job.txt");
                assert_eq!(f.bytes.len(), huge.len());
            }
            other => panic!("expected a file, got {other:?}"),
        }
    }

    #[test]
    fn a_line_longer_than_a_message_is_cut() {
        let Layout::Messages(parts) = layout(&"b".repeat(5_000), "x") else {
            panic!("expected messages");
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].as_str().len(), MESSAGE_LIMIT);
    }

    #[test]
    fn messages_are_escaped_and_measured_escaped_and_never_cut_inside_an_entity() {
        let Layout::Messages(parts) = layout("<!channel> says <@U1>\n", "x") else {
            panic!("expected messages");
        };
        assert_eq!(parts[0].as_str(), "&lt;!channel&gt; says &lt;@U1&gt;");
        // 1,000 `<` are 4,000 characters once escaped: more than one message.
        let Layout::Messages(parts) = layout(&"<".repeat(1_000), "x") else {
            panic!("expected messages");
        };
        assert_eq!(parts.len(), 2);
        for p in &parts {
            assert!(p.as_str().chars().count() <= MESSAGE_LIMIT);
            assert_eq!(p.as_str().replace("&lt;", ""), "", "whole entities only");
        }
        // A file is the text itself, unescaped.
        let long = "<a>\n".repeat(5_000);
        match layout(&long, "x.txt") {
            Layout::File(f) => assert_eq!(f.bytes, long.as_bytes()),
            other => panic!("expected a file, got {other:?}"),
        }
        assert_eq!(
            head(&"<".repeat(5_000)).as_str().chars().count(),
            MESSAGE_LIMIT
        );
    }
}
