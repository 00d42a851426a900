//! `SlackApi`: the Web API calls the adapter makes, through slack-morphism's client, and
//! what their failures mean for a reply waiting to go out.
//!
//! Messages are text (`Mrkdwn`, escaped by the caller) and, for approval prompts, Block Kit
//! [`Blocks`] built from that same escaped text.
//!
//! The client is slack-morphism's hyper connector with its base URL set from
//! `[slack] api_url`. It is built without slack-morphism's own rate control: 429s come
//! back here as [`ApiFailure::Throttled`], and the outbox decides what waits.
//!
//! A call Slack answered with 200 whose body the client cannot read was made: a post is
//! posted, an edit edited, a file shared. It is taken as done (a post without its ts)
//! and never made again; only the body's size is logged, never its content.

use std::sync::Arc;
use std::time::Duration;

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

pub type SlackHttpClient = SlackClient<SlackClientHyperHttpsConnector>;

/// Why a call did not go through, by what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiFailure {
    /// Slack asked us to wait (HTTP 429) this long before the next call.
    #[error("Slack asks to wait {0:?} (rate limited)")]
    Throttled(Duration),
    /// The call may succeed later: a network failure, a 5xx, Slack's own trouble.
    #[error("Slack could not be reached: {0}")]
    Transient(String),
    /// Slack refused the call (`channel_not_found`, `not_in_channel`, …); repeating it
    /// will not help.
    #[error("Slack refused the call: {0}")]
    Refused(String),
    /// Slack answered 200 with a body that cannot be read (`bytes` long, as the client
    /// kept it): the call was made, but what it returned is unknown.
    #[error("Slack's answer could not be read ({bytes} bytes)")]
    Unreadable { bytes: usize },
}

impl From<SlackClientError> for ApiFailure {
    fn from(e: SlackClientError) -> Self {
        match e {
            SlackClientError::RateLimitError(r) => {
                ApiFailure::Throttled(r.retry_after.unwrap_or(Duration::from_secs(1)))
            }
            SlackClientError::ApiError(a) => match a.code.as_str() {
                "ratelimited" => ApiFailure::Throttled(Duration::from_secs(1)),
                "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
                    ApiFailure::Transient(a.code)
                }
                _ => ApiFailure::Refused(a.code),
            },
            SlackClientError::HttpError(h) if h.status_code.is_server_error() => {
                ApiFailure::Transient(format!("HTTP {}", h.status_code))
            }
            SlackClientError::HttpError(h) => {
                ApiFailure::Refused(format!("HTTP {}", h.status_code))
            }
            // slack-morphism reads the body of a 200 only (and of a 429 that says it is
            // JSON, which Slack's are): the call went through. The error's text quotes
            // the body; only its size is kept.
            SlackClientError::ProtocolError(p) => ApiFailure::Unreadable {
                bytes: p.json_body.as_ref().map_or(0, String::len),
            },
            other => ApiFailure::Transient(other.to_string()),
        }
    }
}

/// The bot's own Web API session.
#[derive(Clone)]
pub struct SlackApi {
    pub client: Arc<SlackHttpClient>,
    token: SlackApiToken,
}

/// Who the bot is in the workspace (`auth.test`).
#[derive(Debug, Clone)]
pub struct BotIdentity {
    pub user_id: String,
    pub team: String,
}

impl SlackApi {
    /// A client for the Web API at `api_url` (`https://slack.com/api/` or any
    /// Slack-compatible server; the configuration allows plain `http://` to a loopback
    /// host only).
    pub fn new(api_url: &str, bot_token: &str) -> std::io::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_slack_api_url(api_url.trim_end_matches('/'));
        Ok(SlackApi {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(bot_token.into()),
        })
    }

    pub async fn whoami(&self) -> Result<BotIdentity, ApiFailure> {
        let session = self.client.open_session(&self.token);
        let me = session.auth_test().await?;
        Ok(BotIdentity {
            user_id: me.user_id.to_string(),
            team: me.team,
        })
    }

    /// Posts `text` (mrkdwn, escaped by the caller) in `channel` (in `thread` if given),
    /// shown as `blocks` when given (`text` is then the notification's fallback);
    /// returns the new message's ts, or `None` if Slack's answer could not be read.
    /// Names are never linked (`link_names` off): `@channel` typed as text stays text.
    pub async fn post(
        &self,
        channel: &str,
        thread: Option<&str>,
        text: &str,
        blocks: Option<&Blocks>,
    ) -> Result<Option<String>, ApiFailure> {
        let session = self.client.open_session(&self.token);
        let mut req = SlackApiChatPostMessageRequest::new(channel.into(), content(text, blocks));
        req.thread_ts = thread.map(|t| SlackTs::new(t.to_string()));
        req.link_names = Some(false);
        let posted = made("chat.postMessage", session.chat_post_message(&req).await)?;
        Ok(posted.map(|p| p.ts.to_string()))
    }

    /// Replaces the text of message `ts` in `channel`, and its blocks when `blocks` is
    /// given (without it Slack keeps the blocks the message has).
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Option<&Blocks>,
    ) -> Result<(), ApiFailure> {
        let session = self.client.open_session(&self.token);
        let mut req = SlackApiChatUpdateRequest::new(
            channel.into(),
            content(text, blocks),
            SlackTs::new(ts.to_string()),
        );
        req.link_names = Some(false);
        made("chat.update", session.chat_update(&req).await)?;
        Ok(())
    }

    /// Shows `text` to `user` alone in `channel` (in `thread` if given):
    /// `chat.postEphemeral`, for a refusal only the person who clicked needs to read.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        thread: Option<&str>,
        text: &str,
    ) -> Result<(), ApiFailure> {
        let session = self.client.open_session(&self.token);
        let mut req =
            SlackApiChatPostEphemeralRequest::new(channel.into(), user.into(), content(text, None));
        req.thread_ts = thread.map(|t| SlackTs::new(t.to_string()));
        req.link_names = Some(false);
        made(
            "chat.postEphemeral",
            session.chat_post_ephemeral(&req).await,
        )?;
        Ok(())
    }

    /// Uploads a file into `channel` (in `thread` if given) with Slack's external upload
    /// flow: `files.getUploadURLExternal`, the bytes to the URL it gives, then
    /// `files.completeUploadExternal`.
    pub async fn upload(
        &self,
        channel: &str,
        thread: Option<&str>,
        file: &UploadFile,
    ) -> Result<(), ApiFailure> {
        let session = self.client.open_session(&self.token);
        let url = session
            .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new(
                file.name.clone(),
                file.bytes.len(),
            ))
            .await?;
        session
            .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
                url.upload_url,
                file.bytes.clone(),
                file.media_type.clone(),
            ))
            .await?;
        let mut complete =
            SlackApiFilesCompleteUploadExternalRequest::new(vec![SlackApiFilesComplete::new(
                url.file_id,
            )
            .with_title(file.name.clone())])
            .with_channel_id(channel.into());
        complete.thread_ts = thread.map(|t| SlackTs::new(t.to_string()));
        if let Some(comment) = &file.comment {
            complete.initial_comment = Some(comment.clone());
        }
        made(
            "files.completeUploadExternal",
            session.files_complete_upload_external(&complete).await,
        )?;
        Ok(())
    }
}

/// A message's Block Kit blocks.
pub type Blocks = Vec<SlackBlock>;

/// A message's content: its text, and its blocks when it has some.
fn content(text: &str, blocks: Option<&Blocks>) -> SlackMessageContent {
    let content = SlackMessageContent::new().with_text(text.to_string());
    match blocks {
        Some(blocks) => content.with_blocks(blocks.clone()),
        None => content,
    }
}

/// The result of a call that changes something in Slack: `Ok(None)` when Slack answered
/// 200 but the answer could not be read, for the call was made all the same.
fn made<T>(method: &str, result: Result<T, SlackClientError>) -> Result<Option<T>, ApiFailure> {
    let result = result.map_err(ApiFailure::from);
    let counted = match &result {
        Ok(_) | Err(ApiFailure::Unreadable { .. }) => "ok",
        Err(ApiFailure::Throttled(_)) => "rate_limited",
        Err(_) => "error",
    };
    octobox_http::metrics().slack_call(method, counted);
    match result {
        Ok(answer) => Ok(Some(answer)),
        Err(ApiFailure::Unreadable { bytes }) => {
            tracing::warn!(
                method,
                body_bytes = bytes,
                "Slack answered 200 with a body that cannot be read; taken as done, not repeated"
            );
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// A file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    pub name: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// Text shown with the file.
    pub comment: Option<String>,
}
