//! `SlackApi`: the Web API calls the adapter makes, through slack-morphism's client, and
//! what their failures mean for a reply waiting to go out.
//!
//! The client is slack-morphism's hyper connector with its base URL set from
//! `[slack] api_url`. It is built without slack-morphism's own rate control: 429s come
//! back here as [`ApiFailure::Throttled`], and the outbox decides what waits.

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
    /// Slack-compatible server; plain `http://` is allowed for local servers).
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

    /// Posts `text` in `channel` (in `thread` if given); returns the new message's ts.
    pub async fn post(
        &self,
        channel: &str,
        thread: Option<&str>,
        text: &str,
    ) -> Result<String, ApiFailure> {
        let session = self.client.open_session(&self.token);
        let mut req = SlackApiChatPostMessageRequest::new(
            channel.into(),
            SlackMessageContent::new().with_text(text.to_string()),
        );
        req.thread_ts = thread.map(|t| SlackTs::new(t.to_string()));
        let posted = session.chat_post_message(&req).await?;
        Ok(posted.ts.to_string())
    }

    /// Replaces the text of message `ts` in `channel`.
    pub async fn update(&self, channel: &str, ts: &str, text: &str) -> Result<(), ApiFailure> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiChatUpdateRequest::new(
            channel.into(),
            SlackMessageContent::new().with_text(text.to_string()),
            SlackTs::new(ts.to_string()),
        );
        session.chat_update(&req).await?;
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
        session.files_complete_upload_external(&complete).await?;
        Ok(())
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
