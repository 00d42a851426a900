//! `SlackAdapter`: the bot in Slack.
//!
//! - `socket`: Socket Mode (slack-morphism's listener), the default.
//! - `events_api`: the Events API over HTTP, with signature verification.
//! - `addressing`: which messages are meant for the bot (DM, mention, prefix, slash
//!   command; never another bot), and their text, refused unread past the length limit.
//! - `mrkdwn`: `Mrkdwn` — everything posted, with text from people and tasks escaped.
//! - `dedupe`: `RecentEvents` — a redelivered event runs once, across bot processes.
//! - `api`: `SlackApi` — the Web API calls (post, update, external file upload).
//! - `outbox`: `Outbox` — a queue per channel that honours 429s and paces edits.
//! - `sink`: `SlackSink` — a job's status message, its result, files.
//! - `approval_prompt`: `Prompts` — the Approve/Deny prompt of a job waiting for
//!   approval, and its edit to the decision.
//! - `interaction`: `Click` — a press of a prompt's button (`block_actions`), which
//!   becomes the `approve`/`deny` command of whoever pressed it.
//!
//! Both receivers put what Slack sent on one bounded queue ([`INCOMING_QUEUE`]) and
//! acknowledge at once; the work (`Router::handle`, answering) happens after, at most
//! [`HANDLED_AT_ONCE`] events at a time. When the queue is full an event is not
//! acknowledged (Socket Mode) or answered 503 (Events API): Slack sends it again later. Results of jobs are delivered by an async
//! manager in a consumer group shared by every bot process
//! ([`AsyncManager::adapter_group`]), so with several bots on one Slack app each reply
//! is sent once, by whichever bot reads its event.

pub mod addressing;
pub mod api;
pub mod approval_prompt;
mod dedupe;
mod events_api;
pub mod interaction;
pub mod mrkdwn;
pub mod outbox;
pub mod sink;
mod socket;

use std::sync::Arc;

use anyhow::{Context, Result};
use config::{SlackConfig, SlackMode};
use jobs::{Origin, Store};
use slack_morphism::prelude::*;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::async_manager::{AsyncManager, Sinks};
use crate::reply;
use crate::request::{Outcome, Request};
use crate::router::Router;
use addressing::{Addressed, Addressing, Command};
use api::SlackApi;
use approval_prompt::Prompts;
use dedupe::RecentEvents;
use interaction::Click;
use mrkdwn::Mrkdwn;
use outbox::Outbox;
use sink::{layout, Layout, SlackSink};

pub const ADAPTER: &str = "slack";

/// How many events wait between the receivers and their handling.
pub const INCOMING_QUEUE: usize = 256;
/// How many events are handled at once.
pub const HANDLED_AT_ONCE: usize = 32;

/// Something Slack sent that may be meant for the bot.
pub enum Incoming {
    Push {
        event: Box<SlackPushEventCallback>,
        /// Why it comes from a bot, if it does (read from the JSON Slack sent).
        from_bot: Option<&'static str>,
    },
    Command(Box<SlackCommandEvent>),
    /// A press of an approval prompt's button.
    Click(Box<Click>),
}

impl Incoming {
    /// An `event_callback` payload as Slack sent it.
    pub fn push(payload: serde_json::Value) -> serde_json::Result<Self> {
        let from_bot = payload.get("event").and_then(addressing::from_a_bot);
        Ok(Incoming::Push {
            event: Box::new(serde_json::from_value(payload)?),
            from_bot,
        })
    }
}

pub struct SlackAdapter;

impl SlackAdapter {
    /// Connects to Slack (checking the bot token with `auth.test`), starts receiving and
    /// the async manager that delivers Slack replies; everything stops with `shutdown`.
    pub async fn start(
        config: &SlackConfig,
        router: Arc<Router>,
        store: Arc<dyn Store>,
        instance: &str,
        shutdown: CancellationToken,
        tasks: &mut JoinSet<()>,
    ) -> Result<()> {
        jobs::tls::install_provider();
        let api = SlackApi::new(&config.api_url, config.bot_token.expose())
            .context("cannot prepare the Slack client")?;
        let me = api.whoami().await.with_context(|| {
            format!(
                "cannot check the bot token with Slack at {} (auth.test)",
                config.api_url
            )
        })?;
        tracing::info!(bot_user = %me.user_id, team = %me.team, api = %config.api_url, "connected to Slack");

        let outbox = Arc::new(Outbox::new(api.clone(), store.clone(), shutdown.clone()));
        let sinks = Sinks::default();
        sinks.register(
            ADAPTER,
            Arc::new(SlackSink {
                outbox: outbox.clone(),
                store: store.clone(),
            }),
        );
        let consumer = format!("{instance}-{}", std::process::id());
        let manager = AsyncManager::new(
            store.clone(),
            sinks,
            AsyncManager::adapter_group(ADAPTER),
            consumer.clone(),
        )
        .with_audit_keep(router.catalog().audit_keep);
        tasks.spawn(manager.run(shutdown.clone()));

        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        match &config.mode {
            SlackMode::Socket {
                app_token,
                connections,
            } => {
                socket::listen(
                    api.client.clone(),
                    app_token,
                    *connections,
                    tx,
                    shutdown.clone(),
                )
                .await?
            }
            SlackMode::Events {
                listen,
                signing_secret,
            } => {
                events_api::serve(*listen, signing_secret, tx, shutdown.clone()).await?;
            }
        }
        let handler = Arc::new(Handler {
            router,
            store: store.clone(),
            outbox,
            addressing: Addressing::new(me.user_id, config.prefixes.clone()),
            recent: RecentEvents::new(store, consumer),
        });
        tasks.spawn(handler.run(rx, shutdown));
        Ok(())
    }
}

/// Turns what Slack sent into requests and answers them.
struct Handler {
    router: Arc<Router>,
    store: Arc<dyn Store>,
    outbox: Arc<Outbox>,
    addressing: Addressing,
    recent: RecentEvents,
}

impl Handler {
    async fn run(self: Arc<Self>, mut rx: mpsc::Receiver<Incoming>, stop: CancellationToken) {
        let permits = Arc::new(Semaphore::new(HANDLED_AT_ONCE));
        loop {
            // A permit first: while all are taken, events wait in the bounded queue.
            let permit = tokio::select! {
                _ = stop.cancelled() => return,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let incoming = tokio::select! {
                _ = stop.cancelled() => return,
                i = rx.recv() => match i { Some(i) => i, None => return },
            };
            let this = self.clone();
            tokio::spawn(async move {
                this.handle(incoming).await;
                drop(permit);
            });
        }
    }

    async fn handle(&self, incoming: Incoming) {
        // Read per event: a reload may change it.
        let limit = self.router.catalog().max_message_length;
        let (key, addressed) = match &incoming {
            Incoming::Push { event, from_bot } => {
                if let Some(why) = from_bot {
                    tracing::debug!(event = %event.event_id, reason = why, "ignored an event from a bot");
                    return;
                }
                let addressed = match &event.event {
                    SlackEventCallbackBody::Message(m) => self.addressing.message(m, limit),
                    SlackEventCallbackBody::AppMention(m) => self.addressing.mention(m, limit),
                    _ => None,
                };
                (event.event_id.to_string(), addressed)
            }
            Incoming::Command(c) => (
                format!("command:{}", c.trigger_id),
                Some(self.addressing.command(c, limit)),
            ),
            Incoming::Click(click) => {
                if !self.recent.first_time(&click.key).await {
                    tracing::info!(click = %click.key, "Slack delivered a click again; it already ran");
                    return;
                }
                self.clicked(click).await;
                return;
            }
        };
        let Some(addressed) = addressed else {
            return;
        };
        if !self.recent.first_time(&key).await {
            tracing::info!(event = %key, "Slack delivered an event again; it already ran");
            return;
        }
        self.answer(addressed, limit).await;
    }

    async fn answer(&self, a: Addressed, limit: usize) {
        let text = match a.text {
            Command::Text(text) => text,
            Command::TooLong { bytes } => {
                tracing::info!(user = %a.user, channel = %a.channel, bytes, limit, "refused a Slack message past the length limit");
                let refusal = Mrkdwn::escape(&reply::message_too_long(bytes, limit));
                if let Err(e) = self
                    .outbox
                    .post(&a.channel, a.thread.as_deref(), &refusal)
                    .await
                {
                    tracing::warn!(channel = %a.channel, error = %e, "answer not sent");
                }
                return;
            }
        };
        let origin = Origin {
            adapter: ADAPTER.to_string(),
            user: a.user,
            channel: Some(a.channel.clone()),
            thread: a.thread.clone(),
        };
        let answer = self.router.handle(&Request { text, origin }).await;
        if answer.outcome == Outcome::Nothing {
            return;
        }
        let thread = a.thread.as_deref();
        let posted = match layout(&answer.text, "answer.txt") {
            Layout::Messages(parts) => {
                let mut first = None;
                for part in parts {
                    match self.outbox.post(&a.channel, thread, &part).await {
                        Ok(ts) => {
                            first = first.or(Some(ts));
                        }
                        Err(e) => {
                            tracing::warn!(channel = %a.channel, error = %e, "answer not sent");
                            return;
                        }
                    }
                }
                // `Some(None)`: posted, but Slack's answer did not say where.
                first.flatten()
            }
            Layout::File(file) => self
                .outbox
                .upload(&a.channel, thread, file)
                .await
                .map_err(|e| tracing::warn!(channel = %a.channel, error = %e, "answer not sent"))
                .ok()
                .and(None),
        };
        if let (Outcome::Queued, Some(job), Some(ts)) = (answer.outcome, answer.job, posted) {
            sink::note_status(self.store.as_ref(), job, &a.channel, &ts).await;
        }
        if let Some(approval) = &answer.awaiting {
            // The approvers' channel as the command declares it now.
            let approvers = self
                .router
                .catalog()
                .commands
                .action(&approval.job.command)
                .and_then(|action| action.approval.as_ref())
                .and_then(|declared| declared.channel.clone());
            self.prompts()
                .post(approval, &a.channel, thread, approvers.as_deref())
                .await;
        }
    }

    fn prompts(&self) -> Prompts<'_> {
        Prompts {
            outbox: &self.outbox,
            store: self.store.as_ref(),
        }
    }

    /// A button pressed on an approval prompt: the `approve`/`deny` command of whoever
    /// pressed it, through the router, which decides. A decision shows on every prompt
    /// of the job, buttons gone; a refusal is shown to the one who clicked alone.
    async fn clicked(&self, click: &Click) {
        let origin = Origin {
            adapter: ADAPTER.to_string(),
            user: click.user.clone(),
            channel: Some(click.channel.clone()),
            thread: Some(click.thread().to_string()),
        };
        let request = Request {
            text: click.command(),
            origin,
        };
        let answer = self.router.handle(&request).await;
        tracing::info!(user = %click.user, job = %click.job, outcome = ?answer.outcome, "approval button pressed");
        if let Ok(job) = click.job.parse::<jobs::JobId>() {
            let clicked = (click.channel.as_str(), click.message_ts.as_str());
            self.prompts().show_decision(job, Some(clicked)).await;
        }
        if answer.outcome != Outcome::Done {
            let told = self
                .outbox
                .ephemeral(
                    &click.channel,
                    &click.user,
                    Some(click.thread()),
                    &Mrkdwn::escape(&answer.text),
                )
                .await;
            if let Err(e) = told {
                tracing::warn!(channel = %click.channel, user = %click.user, error = %e, "the refusal of a click was not shown");
            }
        }
    }
}
