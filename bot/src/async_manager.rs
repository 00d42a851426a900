//! `AsyncManager`: brings each finished job's result back to where it was asked.
//!
//! It follows the store's event stream as a member of a consumer group, and acknowledges
//! an event only after its reply was handed to the adapter. A `finished` event read for
//! the first time carries the job's record: the reply goes out at once while its claim
//! goes to the store. An event taken over from a bot presumed dead is claimed first
//! (`claim_reply`, which reads the record too) and finds that claim, so a reply is not
//! delivered twice. Adapters register a [`ReplySink`] under their name (`console`,
//! `slack`, `ssh`); a job's `Origin` names the adapter.
//!
//! Which group: a session that lives in one process (a console, an SSH session) can only
//! be answered by that process, so such adapters are served by a group named after the
//! bot instance ([`AsyncManager::instance_group`]). A bot restarted under the same name
//! resumes that group where it stopped, so replies that finished while it was down still
//! arrive. Adapters any process can answer for (Slack) will share one group across all
//! bot processes.
//!
//! A fan-out's job gives no reply of its own: its end is counted into its fan-out
//! (`fan_out::child_ended`), whose one summary is then replied like any result. Jobs
//! asked through the API go to [`ApiSink`], which only lets their outcomes be recorded.
//!
//! Progress (`started`, `progress` events) is forwarded too, to the sinks that ask for it
//! ([`ReplySink::follows_progress`]). It is best effort: never claimed, never retried; the
//! result is what is guaranteed. Looking up a job's origin costs a store read, so it is
//! made only when some registered sink follows progress.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use jobs::{EventId, EventKind, JobId, Origin, ReplyClaim, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::reply::{self, JobUpdate, Reply};

/// Why an adapter could not hand a reply (or a progress update) to whoever asked. The
/// manager only logs it: the result stays in the job history either way.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Whoever asked is no longer there to be told (the session closed, or lives in
    /// another process); the sentence names the session.
    #[error("{0}")]
    Gone(String),
    /// The origin does not say where to answer.
    #[error("{0}")]
    Unaddressed(&'static str),
    /// The adapter's service did not take it; the sentence is that error's.
    #[error("{0}")]
    Adapter(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DeliveryError {
    /// [`DeliveryError::Adapter`], for `map_err`.
    pub fn adapter(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        DeliveryError::Adapter(Box::new(error))
    }
}

/// Where an adapter receives the replies for the requests it took.
#[async_trait]
pub trait ReplySink: Send + Sync + 'static {
    async fn deliver(&self, origin: &Origin, reply: Reply) -> Result<(), DeliveryError>;

    /// Whether this adapter shows jobs' progress; `progress` is called only if so.
    fn follows_progress(&self) -> bool {
        false
    }

    /// A job asked from `origin` advanced. Best effort: an error is logged and forgotten.
    async fn progress(&self, _origin: &Origin, _update: JobUpdate) -> Result<(), DeliveryError> {
        Ok(())
    }
}

/// The sinks by adapter name. Adapters may register after the manager has started.
#[derive(Clone, Default)]
pub struct Sinks(Arc<RwLock<HashMap<String, Arc<dyn ReplySink>>>>);

impl Sinks {
    pub fn register(&self, adapter: &str, sink: Arc<dyn ReplySink>) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(adapter.to_string(), sink);
    }

    /// Whether any registered sink shows progress.
    fn any_follow_progress(&self) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|s| s.follows_progress())
    }

    /// The adapters registered so far.
    fn names(&self) -> Vec<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn get(&self, adapter: &str) -> Option<Arc<dyn ReplySink>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(adapter)
            .cloned()
    }
}

/// How many replies one async manager delivers at once.
const DELIVERIES_AT_ONCE: usize = 256;
/// How many events one read takes from the stream: each job writes three (queued, started,
/// finished), and a read, its deliveries and its acknowledgement are a round each, so
/// large batches keep the manager ahead of a busy pipeline.
const EVENTS_PER_READ: usize = 768;

pub struct AsyncManager {
    store: Arc<dyn Store>,
    sinks: Sinks,
    group: String,
    consumer: String,
    /// How long the audit trail keeps the outcome entries this manager writes.
    audit_keep: Duration,
    /// Where every event read is also offered (the API's live streams).
    feed: Option<crate::api::EventFeed>,
    /// Held while a fan-out's job is counted, so that the progress lines of jobs ending
    /// in one batch are written in the order of their counts.
    counting: tokio::sync::Mutex<()>,
}

impl AsyncManager {
    pub fn new(
        store: Arc<dyn Store>,
        sinks: Sinks,
        group: impl Into<String>,
        consumer: impl Into<String>,
    ) -> Self {
        AsyncManager {
            store,
            sinks,
            group: group.into(),
            consumer: consumer.into(),
            audit_keep: config::AuditConfig::default().keep,
            feed: None,
            counting: tokio::sync::Mutex::new(()),
        }
    }

    /// Offers every event it reads to `feed` too.
    pub fn with_feed(mut self, feed: crate::api::EventFeed) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Keeps the outcome entries it writes to the audit trail for `keep` (`[audit] keep`).
    pub fn with_audit_keep(mut self, keep: Duration) -> Self {
        self.audit_keep = keep;
        self
    }

    /// The group for the sessions of bot instance `instance`.
    pub fn instance_group(instance: &str) -> String {
        format!("octobox-bot@{instance}")
    }

    /// The group shared by every bot process for `adapter`, whose replies any bot process
    /// can send (Slack): each event goes to one of them.
    pub fn adapter_group(adapter: &str) -> String {
        format!("octobox-bot:{adapter}")
    }

    /// Delivers results until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            group = %self.group,
            consumer = %self.consumer,
            store = %self.store.describe(),
            "async manager following job events"
        );
        while !shutdown.is_cancelled() {
            let read = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.store.read_events(&self.group, &self.consumer, EVENTS_PER_READ, Duration::from_secs(1)) => r,
            };
            let events = match read {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read job events; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if let Some(feed) = &self.feed {
                for (_, event) in &events {
                    feed.offer(event);
                }
            }
            // The replies of one batch are delivered concurrently: each costs store round
            // trips, and one at a time they would cap the whole pipeline's throughput.
            let this = &self;
            let settled = futures::stream::iter(events)
                .map(|(id, event)| async move {
                    let update = match event.kind {
                        EventKind::Finished { .. } => {
                            let delivered = match event.record {
                                Some(record) if record.job.parent.is_some() => {
                                    this.child_ended(&record).await
                                }
                                Some(record) => {
                                    this.deliver_carried(*record).await;
                                    Ok(())
                                }
                                None => this.deliver(event.job).await,
                            };
                            if let Err(e) = delivered {
                                // Left pending: taken over again after the store's reclaim time.
                                tracing::warn!(job = %event.job, error = %e, "reply not delivered yet; will try again");
                                return None;
                            }
                            return Some(id);
                        }
                        EventKind::Queued => return Some(id),
                        EventKind::Started { worker } => JobUpdate::Started { job: event.job, worker },
                        EventKind::Progress { line } => JobUpdate::Progress { job: event.job, line },
                    };
                    if this.sinks.any_follow_progress() {
                        this.forward(update).await;
                    }
                    Some(id)
                })
                .buffer_unordered(DELIVERIES_AT_ONCE);
            let done: Vec<EventId> = settled.filter_map(|id| async move { id }).collect().await;
            if let Err(e) = self.store.ack_events(&self.group, &done).await {
                tracing::warn!(error = %e, "could not acknowledge job events; they will be read again");
            }
        }
    }

    /// Hands a progress update to the sink of the job's adapter, if it follows progress.
    async fn forward(&self, update: JobUpdate) {
        let job = update.job();
        let record = match self.store.job(job).await {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(%job, error = %e, "progress not forwarded: job record unreadable");
                return;
            }
        };
        let origin = &record.job.origin;
        // A fan-out's jobs are not followed one by one: their fan-out's progress is.
        if record.job.parent.is_some() {
            return;
        }
        let Some(sink) = self
            .sinks
            .get(&origin.adapter)
            .filter(|s| s.follows_progress())
        else {
            return;
        };
        if let Err(e) = sink.progress(origin, update).await {
            tracing::debug!(%job, adapter = %origin.adapter, error = %e, "progress not shown");
        }
    }

    /// Counts the end of one of a fan-out's jobs, if this manager serves its adapter (so
    /// one group counts it); its result is not a reply of its own. An error leaves the
    /// event pending.
    async fn child_ended(&self, record: &jobs::JobRecord) -> Result<(), StoreError> {
        if self.sinks.get(&record.job.origin.adapter).is_none() {
            return Ok(());
        }
        let _counting = self.counting.lock().await;
        crate::fan_out::child_ended(self.store.as_ref(), record).await?;
        crate::audit_trail::record_outcome(self.store.as_ref(), self.audit_keep, record).await;
        Ok(())
    }

    /// Delivers the reply whose record came with its event, if this manager serves its
    /// adapter: the claim goes to the store while the reply goes out, which saves a store
    /// round trip on every reply (see [`jobs::Event::record`] for why no one else can be
    /// delivering it). The event is acknowledged even if the claim could not be stored:
    /// a claim matters only to a bot that takes over an unacknowledged event.
    async fn deliver_carried(&self, record: jobs::JobRecord) {
        let (job, origin) = (record.job.id, &record.job.origin);
        let Some(sink) = self.sinks.get(&origin.adapter) else {
            tracing::debug!(%job, "not an adapter of this group; left to others");
            return;
        };
        let (claimed, delivered) = tokio::join!(
            self.store.claim_carried_reply(job, &self.group),
            sink.deliver(origin, reply::result(&record))
        );
        match delivered {
            Ok(()) => observe_delivery(&record),
            Err(e) => {
                tracing::warn!(%job, adapter = %origin.adapter, error = %e, "reply not delivered; result kept in the job history")
            }
        }
        crate::audit_trail::record_outcome(self.store.as_ref(), self.audit_keep, &record).await;
        match claimed {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%job, group = %self.group, "a reply another bot had claimed was delivered again")
            }
            Err(e) => tracing::warn!(%job, error = %e, "reply delivered; its claim was not stored"),
        }
    }

    /// Delivers job `job`'s reply if this manager serves its adapter. An error means the
    /// store could not be read, and the event must stay pending.
    async fn deliver(&self, job: JobId) -> Result<(), StoreError> {
        // One of a fan-out's jobs is counted, never replied; counting is idempotent, so
        // it needs no claim, and an error leaves the event pending to be counted again.
        if let Some(record) = self.store.job(job).await? {
            if record.job.parent.is_some() && record.status.is_final() {
                return self.child_ended(&record).await;
            }
        }
        let record = match self
            .store
            .claim_reply(job, &self.group, &self.sinks.names())
            .await?
        {
            ReplyClaim::Claimed(record) => record,
            ReplyClaim::Unknown => {
                tracing::warn!(%job, "finished job has no record (expired?); nothing to deliver");
                return Ok(());
            }
            ReplyClaim::Elsewhere => {
                tracing::debug!(%job, "not an adapter of this group; left to others");
                return Ok(());
            }
            ReplyClaim::Taken => return Ok(()),
        };
        let origin = &record.job.origin;
        // Claimed only for a registered adapter, and adapters are never removed.
        let Some(sink) = self.sinks.get(&origin.adapter) else {
            tracing::error!(%job, adapter = %origin.adapter, "claimed a reply for an adapter that is gone");
            return Ok(());
        };
        let reply = reply::result(&record);
        match sink.deliver(origin, reply).await {
            Ok(()) => observe_delivery(&record),
            Err(e) => {
                tracing::warn!(%job, adapter = %origin.adapter, error = %e, "reply not delivered; result kept in the job history")
            }
        }
        crate::audit_trail::record_outcome(self.store.as_ref(), self.audit_keep, &record).await;
        Ok(())
    }
}

/// Where the async manager hands the results of jobs asked through the API: nowhere, as
/// the caller reads them from the history or an event stream. Registering it lets the
/// manager claim those results, so each job's outcome reaches the audit trail.
pub struct ApiSink;

#[async_trait]
impl ReplySink for ApiSink {
    async fn deliver(&self, _origin: &Origin, _reply: Reply) -> Result<(), DeliveryError> {
        Ok(())
    }
}

/// Counts the time from a job's result to its reply going out, by adapter (one with a
/// registered sink, so the label stays bounded).
fn observe_delivery(record: &jobs::JobRecord) {
    let Some(result) = &record.result else {
        return;
    };
    let took = (chrono::Utc::now() - result.finished_at)
        .to_std()
        .unwrap_or_default();
    octobox_http::metrics()
        .reply_delivery_seconds
        .with_label_values(&[record.job.origin.adapter.as_str()])
        .observe(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs::memory::MemoryStore;
    use jobs::{Event, Job, JobResult, JobStatus, Output, Task};
    use std::sync::Mutex;

    /// Records what it is shown, as an adapter's screen would.
    #[derive(Default)]
    struct Screen {
        follows: bool,
        lines: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl ReplySink for Screen {
        async fn deliver(&self, _origin: &Origin, reply: Reply) -> Result<(), DeliveryError> {
            self.lines.lock().unwrap().push(reply.text);
            Ok(())
        }
        fn follows_progress(&self) -> bool {
            self.follows
        }
        async fn progress(&self, _origin: &Origin, update: JobUpdate) -> Result<(), DeliveryError> {
            self.lines.lock().unwrap().push(reply::update(&update));
            Ok(())
        }
    }

    /// Runs one job's life through the store and returns what the screen showed, with the
    /// store and the job.
    async fn run_one_job(follows: bool) -> (Vec<String>, Arc<dyn Store>, JobId) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let screen = Arc::new(Screen {
            follows,
            ..Screen::default()
        });
        let sinks = Sinks::default();
        sinks.register("screen", screen.clone());
        let job = Job::new(
            "echo",
            Default::default(),
            Task::native("echo"),
            Origin::new("screen", "alice"),
            Duration::from_secs(60),
        );
        store.record_job(&job).await.unwrap();
        for kind in [
            EventKind::Started {
                worker: "worker-2".into(),
            },
            EventKind::Progress {
                line: "half way".into(),
            },
        ] {
            store.append_event(&Event::now(job.id, kind)).await.unwrap();
        }
        let result = JobResult {
            id: job.id,
            status: JobStatus::Succeeded,
            output: Output::text("hi"),
            worker: "worker-2".into(),
            started_at: chrono::Utc::now(),
            finished_at: chrono::Utc::now(),
            error: None,
        };
        store.finish_job(&result).await.unwrap();

        let stop = CancellationToken::new();
        let manager = AsyncManager::new(store.clone(), sinks, "g", "c");
        let run = tokio::spawn(manager.run(stop.clone()));
        for _ in 0..200 {
            if screen
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("succeeded"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        run.await.unwrap();
        let lines = screen.lines.lock().unwrap().clone();
        (lines, store, job.id)
    }

    async fn shown(follows: bool) -> Vec<String> {
        run_one_job(follows).await.0
    }

    #[tokio::test]
    async fn an_adapter_that_follows_progress_sees_the_job_advance_then_its_result() {
        let lines = shown(true).await;
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].ends_with("running on worker-2"), "{lines:?}");
        assert!(lines[1].ends_with(": half way"), "{lines:?}");
        assert!(
            lines[2].contains("succeeded") && lines[2].ends_with("hi"),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn an_adapter_that_does_not_follow_progress_sees_only_the_result() {
        let lines = shown(false).await;
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("succeeded"), "{lines:?}");
    }

    #[tokio::test]
    async fn a_reply_delivered_from_its_event_is_claimed_so_a_takeover_does_not_repeat_it() {
        let (lines, store, job) = run_one_job(false).await;
        assert_eq!(lines.len(), 1, "{lines:?}");
        let again = store
            .claim_reply(job, "g", &["screen".to_string()])
            .await
            .unwrap();
        assert!(matches!(again, ReplyClaim::Taken), "{again:?}");
    }

    /// A fan-out's jobs give no replies of their own: their ends are counted, each once
    /// however many times its event is read (with its record or, as after a takeover,
    /// without), and the requester sees the fan-out's progress, then one summary. A job
    /// that only names the fan-out as its parent is not counted.
    #[tokio::test]
    async fn a_fan_out_is_answered_once_however_its_jobs_ends_are_read() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let screen = Arc::new(Screen {
            follows: true,
            ..Screen::default()
        });
        let sinks = Sinks::default();
        sinks.register("screen", screen.clone());
        let origin = Origin::new("screen", "alice");
        let hour = Duration::from_secs(3600);
        let mut args = std::collections::BTreeMap::new();
        args.insert("group".to_string(), lexicon::Value::Name("lab".into()));
        let mut parent = Job::new(
            "echo group",
            args.clone(),
            Task::native("fan-out"),
            origin.clone(),
            hour,
        );
        let mut children = Vec::new();
        for host in ["h1", "h2"] {
            let mut args = args.clone();
            args.insert("text".to_string(), lexicon::Value::Word(host.into()));
            let mut child = Job::new(
                "echo group",
                args,
                Task::native("echo"),
                origin.clone(),
                hour,
            );
            child.parent = Some(parent.id);
            children.push(child);
        }
        parent.children = children.iter().map(|c| c.id).collect();
        store.record_job(&parent).await.unwrap();
        // A job that names the fan-out without being one of its jobs, ending first.
        let mut stray = children[0].clone();
        stray.id = JobId::new();
        store.record_job(&stray).await.unwrap();
        let stray_end = JobResult {
            id: stray.id,
            status: JobStatus::Succeeded,
            output: Output::text("not mine"),
            worker: "w".into(),
            started_at: chrono::Utc::now(),
            finished_at: chrono::Utc::now(),
            error: None,
        };
        store.finish_job(&stray_end).await.unwrap();
        for (child, status) in children
            .iter()
            .zip([JobStatus::Succeeded, JobStatus::Failed])
        {
            store.record_job(child).await.unwrap();
            let result = JobResult {
                id: child.id,
                status,
                output: Output::text("up 3 days"),
                worker: "w".into(),
                started_at: chrono::Utc::now(),
                finished_at: chrono::Utc::now(),
                error: (status == JobStatus::Failed).then(|| "no route to host".to_string()),
            };
            store.finish_job(&result).await.unwrap();
            // The same end read again without its record, as a bot taking over would.
            store
                .append_event(&Event::now(child.id, EventKind::Finished { status }))
                .await
                .unwrap();
        }

        let stop = CancellationToken::new();
        let manager = AsyncManager::new(store.clone(), sinks, "g", "c");
        let run = tokio::spawn(manager.run(stop.clone()));
        for _ in 0..300 {
            if screen
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("(echo group) failed"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.cancel();
        run.await.unwrap();
        let lines = screen.lines.lock().unwrap().clone();
        let summaries: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("(echo group)"))
            .collect();
        assert_eq!(summaries.len(), 1, "{lines:#?}");
        let summary = summaries[0];
        assert!(
            summary.contains("2/2 done: 1 failed, 1 succeeded"),
            "{summary}"
        );
        assert!(!summary.contains("not mine"), "{summary}");
        assert!(
            lines.iter().all(|l| !l.contains("2 succeeded")),
            "the stray job was counted: {lines:#?}"
        );
        assert!(
            summary
                .lines()
                .any(|l| l.starts_with("h1") && l.contains("succeeded") && l.contains("up 3 days")),
            "{summary}"
        );
        assert!(
            summary.lines().any(|l| l.starts_with("h2")
                && l.contains("failed")
                && l.contains("no route to host")),
            "{summary}"
        );
        // Progress: the fan-out's, never a child's.
        let progress: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("done:") && !l.contains("(echo group)"))
            .collect();
        assert!(!progress.is_empty(), "{lines:#?}");
        assert!(
            progress
                .iter()
                .all(|l| l.starts_with(&format!("job {}:", parent.id))),
            "{lines:#?}"
        );
        assert_eq!(
            store.job(parent.id).await.unwrap().unwrap().status,
            JobStatus::Failed
        );
    }
}
