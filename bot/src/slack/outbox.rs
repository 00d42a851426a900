//! `Outbox`: every message the bot sends to Slack waits here, in a queue per channel,
//! and goes out in order.
//!
//! Slack's limits are honoured here, in one place: a 429 holds the channel's queue for
//! its `Retry-After` and the same call is made again; a failure to reach Slack is retried
//! with backoff; nothing is dropped. A status message is edited at most once per
//! [`Outbox::EDIT_GAP`] per channel: edits of one message that pile up meanwhile are
//! merged into the newest, and once a message has its final text (`finish`) later
//! progress edits of it are ignored, so a late "running" never hides a result. Which
//! messages are final is noted in the store too, because the progress and the result of
//! one job may be shown by different bot processes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::backoff::Backoff;
use jobs::Store;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::{ApiFailure, SlackApi, UploadFile};

enum Work {
    Post {
        thread: Option<String>,
        text: String,
    },
    Edit {
        ts: String,
        text: String,
        last: bool,
    },
    Upload {
        thread: Option<String>,
        file: UploadFile,
    },
}

type Done = oneshot::Sender<Result<Option<String>, ApiFailure>>;

struct Op {
    work: Work,
    /// Everyone waiting for this op (several when edits were merged).
    done: Vec<Done>,
}

pub struct Outbox {
    api: SlackApi,
    store: Arc<dyn Store>,
    channels: Mutex<HashMap<String, mpsc::UnboundedSender<Op>>>,
    shutdown: CancellationToken,
}

impl Outbox {
    /// The least time between two edits in one channel.
    pub const EDIT_GAP: Duration = Duration::from_secs(1);
    /// The longest wait between two tries after a failure to reach Slack.
    const MAX_BACKOFF: Duration = Duration::from_secs(30);

    /// How long a message is remembered as final.
    const FINAL_TTL: Duration = Duration::from_secs(86_400);

    pub fn new(api: SlackApi, store: Arc<dyn Store>, shutdown: CancellationToken) -> Self {
        Outbox {
            api,
            store,
            channels: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    /// Posts a message; returns its ts.
    pub async fn post(
        &self,
        channel: &str,
        thread: Option<&str>,
        text: &str,
    ) -> Result<String, ApiFailure> {
        let work = Work::Post {
            thread: thread.map(str::to_string),
            text: text.to_string(),
        };
        let ts = self.submit(channel, work).await?;
        ts.ok_or_else(|| ApiFailure::Transient("a post returned no ts".into()))
    }

    /// Shows `text` in message `ts` for now: a later edit may replace it first.
    pub async fn edit(&self, channel: &str, ts: &str, text: &str) -> Result<(), ApiFailure> {
        self.edit_as(channel, ts, text, false).await
    }

    /// Gives message `ts` its final text; progress edits that come later are ignored.
    pub async fn finish(&self, channel: &str, ts: &str, text: &str) -> Result<(), ApiFailure> {
        if let Err(e) = self
            .store
            .note_once(&final_key(channel, ts), "final", Self::FINAL_TTL)
            .await
        {
            tracing::debug!(error = %e, "final message not noted; a late progress edit may show");
        }
        self.edit_as(channel, ts, text, true).await
    }

    async fn edit_as(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        last: bool,
    ) -> Result<(), ApiFailure> {
        let work = Work::Edit {
            ts: ts.to_string(),
            text: text.to_string(),
            last,
        };
        self.submit(channel, work).await.map(drop)
    }

    pub async fn upload(
        &self,
        channel: &str,
        thread: Option<&str>,
        file: UploadFile,
    ) -> Result<(), ApiFailure> {
        let work = Work::Upload {
            thread: thread.map(str::to_string),
            file,
        };
        self.submit(channel, work).await.map(drop)
    }

    async fn submit(&self, channel: &str, work: Work) -> Result<Option<String>, ApiFailure> {
        let (tx, rx) = oneshot::channel();
        let op = Op {
            work,
            done: vec![tx],
        };
        {
            let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            let queue = channels.entry(channel.to_string()).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                let queue = ChannelQueue {
                    api: self.api.clone(),
                    store: self.store.clone(),
                    channel: channel.to_string(),
                    shutdown: self.shutdown.clone(),
                    pending: VecDeque::new(),
                    finished: Finished::default(),
                    last_edit: None,
                };
                tokio::spawn(queue.run(rx));
                tx
            });
            if queue.send(op).is_err() {
                return Err(ApiFailure::Transient("the bot is shutting down".into()));
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(ApiFailure::Transient("the bot is shutting down".into())))
    }
}

fn final_key(channel: &str, ts: &str) -> String {
    format!("slack:final:{channel}:{ts}")
}

/// Messages that have their final text, remembered for a while (bounded).
#[derive(Default)]
struct Finished {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Finished {
    const KEEP: usize = 1024;

    fn insert(&mut self, ts: &str) {
        if self.set.insert(ts.to_string()) {
            self.order.push_back(ts.to_string());
            if self.order.len() > Self::KEEP {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// One channel's queue and the task that empties it.
struct ChannelQueue {
    api: SlackApi,
    store: Arc<dyn Store>,
    channel: String,
    shutdown: CancellationToken,
    pending: VecDeque<Op>,
    finished: Finished,
    last_edit: Option<Instant>,
}

impl ChannelQueue {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Op>) {
        loop {
            if self.pending.is_empty() {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    op = rx.recv() => match op {
                        Some(op) => self.enqueue(op),
                        None => return,
                    },
                }
            }
            while let Ok(op) = rx.try_recv() {
                self.enqueue(op);
            }
            // An edit waits for the channel's edit gap; what arrives meanwhile is queued
            // (and merged into it).
            if let Some(Work::Edit { .. }) = self.pending.front().map(|op| &op.work) {
                if let Some(at) = self.last_edit.map(|t| t + Outbox::EDIT_GAP) {
                    let gap = tokio::time::sleep_until(at);
                    tokio::pin!(gap);
                    loop {
                        tokio::select! {
                            _ = self.shutdown.cancelled() => return,
                            _ = &mut gap => break,
                            Some(op) = rx.recv() => self.enqueue(op),
                        }
                    }
                }
            }
            let Some(op) = self.pending.pop_front() else {
                continue;
            };
            let result = match &op.work {
                Work::Edit {
                    ts, last: false, ..
                } if self.is_final(ts).await => Ok(None),
                work => {
                    let result = self.attempt(work).await;
                    if let Work::Edit { ts, last, .. } = work {
                        self.last_edit = Some(Instant::now());
                        if *last {
                            self.finished.insert(ts);
                        }
                    }
                    result
                }
            };
            for done in op.done {
                let _ = done.send(result.clone());
            }
        }
    }

    /// Whether message `ts` has its final text, shown by this process or another.
    async fn is_final(&mut self, ts: &str) -> bool {
        if self.finished.set.contains(ts) {
            return true;
        }
        let noted = matches!(
            self.store.note(&final_key(&self.channel, ts)).await,
            Ok(Some(_))
        );
        if noted {
            self.finished.insert(ts);
        }
        noted
    }

    /// Queues `op`, merging an edit into a queued edit of the same message.
    fn enqueue(&mut self, op: Op) {
        if let Work::Edit { ts, text, last } = &op.work {
            let queued = self.pending.iter_mut().find(
                |queued| matches!(&queued.work, Work::Edit { ts: t, last: false, .. } if t == ts),
            );
            if let Some(queued) = queued {
                queued.work = Work::Edit {
                    ts: ts.clone(),
                    text: text.clone(),
                    last: *last,
                };
                queued.done.extend(op.done);
                return;
            }
        }
        self.pending.push_back(op);
    }

    /// Makes the call until it succeeds or Slack refuses it.
    async fn attempt(&self, work: &Work) -> Result<Option<String>, ApiFailure> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Outbox::MAX_BACKOFF);
        loop {
            let result = match work {
                Work::Post { thread, text } => self
                    .api
                    .post(&self.channel, thread.as_deref(), text)
                    .await
                    .map(Some),
                Work::Edit { ts, text, .. } => self
                    .api
                    .update(&self.channel, ts, text)
                    .await
                    .map(|()| None),
                Work::Upload { thread, file } => self
                    .api
                    .upload(&self.channel, thread.as_deref(), file)
                    .await
                    .map(|()| None),
            };
            let wait = match result {
                Err(ApiFailure::Throttled(wait)) => {
                    tracing::warn!(channel = %self.channel, wait_ms = wait.as_millis() as u64, "Slack is rate limiting this channel; waiting as asked");
                    wait
                }
                Err(ApiFailure::Transient(e)) => {
                    tracing::warn!(channel = %self.channel, error = %e, "Slack unreachable; trying again");
                    backoff.next_pause()
                }
                done => return done,
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    return Err(ApiFailure::Transient("the bot is shutting down".into()))
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Shared by the adapter's parts.
pub type SharedOutbox = Arc<Outbox>;
