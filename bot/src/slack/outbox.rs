//! `Outbox`: every message the bot sends to Slack waits here, in a queue per channel,
//! and goes out in order. What it sends is [`Mrkdwn`]: escaped before it gets here.
//!
//! Slack's limits are honoured here, in one place: a 429 holds the channel's queue for
//! its `Retry-After` and the same call is made again; a failure to reach Slack is retried
//! with backoff; a call Slack answered with a 2xx is never made again, whatever the body
//! said. Each channel's queue is bounded ([`Outbox::QUEUE`]): when it is full a progress
//! edit is dropped (and logged), while a post, a result or an upload waits for room, so a
//! result is never lost. A channel's queue and its task go after [`Outbox::IDLE`] without
//! work. A status message is edited at most once per
//! [`Outbox::EDIT_GAP`] per channel: edits of one message that pile up meanwhile are
//! merged into the newest, and once a message has its final text (`finish`) later
//! progress edits of it are ignored, so a late "running" never hides a result. Which
//! messages are final is noted in the store too, because the progress and the result of
//! one job may be shown by different bot processes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::backoff::Backoff;
use jobs::Store;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::{ApiFailure, Blocks, SlackApi, UploadFile};
use super::mrkdwn::Mrkdwn;

enum Work {
    Post {
        thread: Option<String>,
        text: String,
        blocks: Option<Blocks>,
    },
    Edit {
        ts: String,
        text: String,
        blocks: Option<Blocks>,
        last: bool,
    },
    Ephemeral {
        user: String,
        thread: Option<String>,
        text: String,
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

type Channels = Arc<Mutex<HashMap<String, mpsc::Sender<Op>>>>;

pub struct Outbox {
    api: SlackApi,
    store: Arc<dyn Store>,
    channels: Channels,
    shutdown: CancellationToken,
    /// How many calls one channel's queue holds ([`Outbox::QUEUE`] unless chosen).
    queue_limit: usize,
    /// Progress edits dropped because their channel's queue was full.
    dropped_edits: AtomicU64,
}

impl Outbox {
    /// The least time between two edits in one channel.
    pub const EDIT_GAP: Duration = Duration::from_secs(1);
    /// The longest wait between two tries after a failure to reach Slack.
    const MAX_BACKOFF: Duration = Duration::from_secs(30);

    /// How long a message is remembered as final.
    const FINAL_TTL: Duration = Duration::from_secs(86_400);
    /// How many calls wait in one channel's queue (edits of one message count once),
    /// and as many again on their way into it.
    pub const QUEUE: usize = 64;
    /// How long a channel's queue stays without work before it goes.
    const IDLE: Duration = Duration::from_secs(300);

    pub fn new(api: SlackApi, store: Arc<dyn Store>, shutdown: CancellationToken) -> Self {
        Self::with_queue_limit(api, store, shutdown, Self::QUEUE)
    }

    /// An outbox whose channel queues hold `limit` calls (at least 1) instead of
    /// [`Outbox::QUEUE`].
    pub fn with_queue_limit(
        api: SlackApi,
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
        limit: usize,
    ) -> Self {
        Outbox {
            api,
            store,
            channels: Arc::new(Mutex::new(HashMap::new())),
            shutdown,
            queue_limit: limit.max(1),
            dropped_edits: AtomicU64::new(0),
        }
    }

    /// How many progress edits were dropped so far because a channel's queue was full.
    pub fn dropped_edits(&self) -> u64 {
        self.dropped_edits.load(Ordering::Relaxed)
    }

    /// Posts a message; returns its ts, or `None` when Slack took the message but its
    /// answer could not be read.
    pub async fn post(
        &self,
        channel: &str,
        thread: Option<&str>,
        text: &Mrkdwn,
    ) -> Result<Option<String>, ApiFailure> {
        let work = Work::Post {
            thread: thread.map(str::to_string),
            text: text.to_string(),
            blocks: None,
        };
        self.submit(channel, work).await
    }

    /// Posts a message shown as `blocks` (built from `text`, its notification fallback);
    /// returns its ts as [`Outbox::post`] does.
    pub async fn post_blocks(
        &self,
        channel: &str,
        thread: Option<&str>,
        text: &Mrkdwn,
        blocks: Blocks,
    ) -> Result<Option<String>, ApiFailure> {
        let work = Work::Post {
            thread: thread.map(str::to_string),
            text: text.to_string(),
            blocks: Some(blocks),
        };
        self.submit(channel, work).await
    }

    /// Shows `text` to `user` alone, in `channel` (in `thread` if given).
    pub async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        thread: Option<&str>,
        text: &Mrkdwn,
    ) -> Result<(), ApiFailure> {
        let work = Work::Ephemeral {
            user: user.to_string(),
            thread: thread.map(str::to_string),
            text: text.to_string(),
        };
        self.submit(channel, work).await.map(drop)
    }

    /// Shows `text` in message `ts` for now: a later edit may replace it first. When the
    /// channel's queue is full the edit is dropped: progress is best effort.
    pub async fn edit(&self, channel: &str, ts: &str, text: &Mrkdwn) -> Result<(), ApiFailure> {
        self.edit_as(channel, ts, text, None, false).await
    }

    /// Gives message `ts` its final text; progress edits that come later are ignored.
    pub async fn finish(&self, channel: &str, ts: &str, text: &Mrkdwn) -> Result<(), ApiFailure> {
        if let Err(e) = self
            .store
            .note_once(&final_key(channel, ts), "final", Self::FINAL_TTL)
            .await
        {
            tracing::debug!(error = %e, "final message not noted; a late progress edit may show");
        }
        self.edit_as(channel, ts, text, None, true).await
    }

    /// Gives message `ts` its final text and `blocks` (built from `text`), replacing the
    /// blocks it had: an approval prompt whose buttons go once it is decided.
    pub async fn finish_blocks(
        &self,
        channel: &str,
        ts: &str,
        text: &Mrkdwn,
        blocks: Blocks,
    ) -> Result<(), ApiFailure> {
        if let Err(e) = self
            .store
            .note_once(&final_key(channel, ts), "final", Self::FINAL_TTL)
            .await
        {
            tracing::debug!(error = %e, "final message not noted; a late progress edit may show");
        }
        self.edit_as(channel, ts, text, Some(blocks), true).await
    }

    async fn edit_as(
        &self,
        channel: &str,
        ts: &str,
        text: &Mrkdwn,
        blocks: Option<Blocks>,
        last: bool,
    ) -> Result<(), ApiFailure> {
        let work = Work::Edit {
            ts: ts.to_string(),
            text: text.to_string(),
            blocks,
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

    /// Queues `work` in `channel`'s queue and waits for its call. A progress edit that
    /// finds the queue full is dropped; anything else waits for room.
    async fn submit(&self, channel: &str, work: Work) -> Result<Option<String>, ApiFailure> {
        let droppable = matches!(work, Work::Edit { last: false, .. });
        let (tx, rx) = oneshot::channel();
        let mut op = Op {
            work,
            done: vec![tx],
        };
        loop {
            let queue = self.queue(channel);
            let closed = if droppable {
                match queue.try_send(op) {
                    Ok(()) => break,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.dropped_edits.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            channel,
                            limit = self.queue_limit,
                            "progress edit dropped: the channel's queue is full"
                        );
                        return Ok(None);
                    }
                    Err(mpsc::error::TrySendError::Closed(back)) => back,
                }
            } else {
                match queue.send(op).await {
                    Ok(()) => break,
                    Err(mpsc::error::SendError(back)) => back,
                }
            };
            // The queue went idle and stopped meanwhile: the next one takes the op.
            if self.shutdown.is_cancelled() {
                return Err(ApiFailure::Transient("the bot is shutting down".into()));
            }
            op = closed;
        }
        rx.await
            .unwrap_or_else(|_| Err(ApiFailure::Transient("the bot is shutting down".into())))
    }

    /// `channel`'s queue, started if it has none.
    fn queue(&self, channel: &str) -> mpsc::Sender<Op> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .entry(channel.to_string())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(self.queue_limit);
                let queue = ChannelQueue {
                    limit: self.queue_limit,
                    api: self.api.clone(),
                    store: self.store.clone(),
                    channel: channel.to_string(),
                    channels: self.channels.clone(),
                    shutdown: self.shutdown.clone(),
                    pending: VecDeque::new(),
                    finished: Finished::default(),
                    last_edit: None,
                };
                tokio::spawn(queue.run(rx));
                tx
            })
            .clone()
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
    /// How many ops `pending` holds.
    limit: usize,
    api: SlackApi,
    store: Arc<dyn Store>,
    channel: String,
    /// The outbox's queues, to leave when idle.
    channels: Channels,
    shutdown: CancellationToken,
    pending: VecDeque<Op>,
    finished: Finished,
    last_edit: Option<Instant>,
}

impl ChannelQueue {
    async fn run(mut self, mut rx: mpsc::Receiver<Op>) {
        loop {
            if self.pending.is_empty() {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    op = rx.recv() => match op {
                        Some(op) => self.enqueue(op),
                        None => return,
                    },
                    _ = tokio::time::sleep(Outbox::IDLE) => {
                        self.leave(&mut rx);
                        continue;
                    }
                }
            }
            while self.has_room() {
                match rx.try_recv() {
                    Ok(op) => self.enqueue(op),
                    Err(_) => break,
                }
            }
            // An edit waits for the channel's edit gap; what arrives meanwhile is queued
            // (and merged into it) while there is room.
            if let Some(Work::Edit { .. }) = self.pending.front().map(|op| &op.work) {
                if let Some(at) = self.last_edit.map(|t| t + Outbox::EDIT_GAP) {
                    let gap = tokio::time::sleep_until(at);
                    tokio::pin!(gap);
                    loop {
                        let room = self.has_room();
                        tokio::select! {
                            _ = self.shutdown.cancelled() => return,
                            _ = &mut gap => break,
                            Some(op) = rx.recv(), if room => self.enqueue(op),
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

    fn has_room(&self) -> bool {
        self.pending.len() < self.limit
    }

    /// Takes this queue out of the outbox, so the next op starts a new one, and closes it:
    /// ops already sent to it are still made, then its task ends.
    fn leave(&mut self, rx: &mut mpsc::Receiver<Op>) {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.channel);
        rx.close();
        tracing::debug!(channel = %self.channel, "channel queue idle; stopped");
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
        if let Work::Edit {
            ts,
            text,
            blocks,
            last,
        } = &op.work
        {
            let queued = self.pending.iter_mut().find(
                |queued| matches!(&queued.work, Work::Edit { ts: t, last: false, .. } if t == ts),
            );
            if let Some(queued) = queued {
                queued.work = Work::Edit {
                    ts: ts.clone(),
                    text: text.clone(),
                    blocks: blocks.clone(),
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
                Work::Post {
                    thread,
                    text,
                    blocks,
                } => {
                    self.api
                        .post(&self.channel, thread.as_deref(), text, blocks.as_ref())
                        .await
                }
                Work::Edit {
                    ts, text, blocks, ..
                } => self
                    .api
                    .update(&self.channel, ts, text, blocks.as_ref())
                    .await
                    .map(|()| None),
                Work::Ephemeral { user, thread, text } => self
                    .api
                    .post_ephemeral(&self.channel, user, thread.as_deref(), text)
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
