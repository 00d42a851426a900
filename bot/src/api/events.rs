//! [`EventFeed`]: every job event this bot's async manager reads, fanned out to the
//! API's live streams, and those streams (`/api/v1/events`, `/api/v1/jobs/{id}/events`)
//! as Server-Sent Events.
//!
//! The async manager already reads every event (its consumer group is the bot's own), so
//! the feed costs the store nothing more than one record read per job, made only while
//! someone is listening, to tell listeners the job's command and requester. The manager
//! never waits for the feed: an event that finds the feed's queue full is dropped and
//! counted, and a listener that falls behind is told how many it missed (`lagged`), so a
//! page can reload instead of showing a wrong state.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::Stream;
use jobs::{Event, EventKind, JobId, JobRecord, Store};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::jobs::{job_id, record, sees_whole, FILTER_MAX};
use super::views::status_name;
use super::{ApiError, ApiState, Authed};

/// Events waiting for the feed's task; past this the manager drops them.
const QUEUE: usize = 4096;
/// Events a listener may fall behind by before it is told it lagged.
const FANOUT: usize = 4096;
/// Jobs whose command and requester the feed remembers.
const KNOWN_JOBS: usize = 20_000;

/// What a job's events are about, for filters and for a page's new rows.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFacts {
    pub command: String,
    pub requester: String,
    pub adapter: String,
    pub created_at: DateTime<Utc>,
}

impl JobFacts {
    fn of(record: &JobRecord) -> Self {
        JobFacts {
            command: record.job.command.clone(),
            requester: record.job.origin.identity(),
            adapter: record.job.origin.adapter.clone(),
            created_at: record.job.created_at,
        }
    }
}

/// One event as listeners get it.
#[derive(Debug, Clone)]
pub struct FeedItem {
    pub event: Event,
    /// `None` when the job's record could not be read (expired, store down).
    pub facts: Option<Arc<JobFacts>>,
}

impl FeedItem {
    /// The JSON a stream sends; `whole` decides whether a progress line is shown.
    pub fn json(&self, whole: bool) -> serde_json::Value {
        let mut v = serde_json::json!({
            "job": self.event.job.to_string(),
            "at": self.event.at,
        });
        match &self.event.kind {
            EventKind::Queued => v["event"] = "queued".into(),
            EventKind::Started { worker } => {
                v["event"] = "started".into();
                v["worker"] = worker.clone().into();
            }
            EventKind::Progress { line } => {
                v["event"] = "progress".into();
                v["line"] = if whole {
                    line.clone().into()
                } else {
                    serde_json::Value::Null
                };
            }
            EventKind::Finished { status } => {
                v["event"] = "finished".into();
                v["status"] = status_name(*status).into();
            }
        }
        if let Some(f) = &self.facts {
            v["command"] = f.command.clone().into();
            v["requester"] = f.requester.clone().into();
            v["adapter"] = f.adapter.clone().into();
            v["created_at"] = serde_json::to_value(f.created_at).unwrap_or_default();
        }
        v
    }
}

/// The bot's live feed of job events. Cloning shares it.
#[derive(Clone)]
pub struct EventFeed {
    queue: mpsc::Sender<(Event, Option<JobFacts>)>,
    out: broadcast::Sender<Arc<FeedItem>>,
    dropped: Arc<AtomicU64>,
}

impl EventFeed {
    /// A feed, and its task (to spawn) that reads `store` for what events lack.
    pub fn new(
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
    ) -> (EventFeed, impl std::future::Future<Output = ()>) {
        let (queue, rx) = mpsc::channel(QUEUE);
        let (out, _) = broadcast::channel(FANOUT);
        let feed = EventFeed {
            queue,
            out: out.clone(),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (feed, run(rx, out, store, shutdown))
    }

    /// Hands `event` to listeners, if there are any; never waits. A `finished` event's
    /// carried record is not passed on, only what it says of the job.
    pub fn offer(&self, event: &Event) {
        if self.out.receiver_count() == 0 {
            return;
        }
        let facts = event.record.as_deref().map(JobFacts::of);
        let bare = Event {
            job: event.job,
            at: event.at,
            kind: event.kind.clone(),
            record: None,
        };
        if self.queue.try_send((bare, facts)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.out.subscribe()
    }

    /// Events dropped because the feed's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The feed's task: completes each event with its job's facts and fans it out.
async fn run(
    mut rx: mpsc::Receiver<(Event, Option<JobFacts>)>,
    out: broadcast::Sender<Arc<FeedItem>>,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
) {
    let mut known: HashMap<JobId, Arc<JobFacts>> = HashMap::new();
    let mut order: VecDeque<JobId> = VecDeque::new();
    loop {
        let (event, carried) = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = rx.recv() => match next {
                Some(next) => next,
                None => return,
            },
        };
        let facts = match known.get(&event.job) {
            Some(f) => Some(f.clone()),
            None => {
                let found = match carried {
                    Some(f) => Some(f),
                    None => {
                        match tokio::time::timeout(Duration::from_secs(2), store.job(event.job))
                            .await
                        {
                            Ok(Ok(Some(record))) => Some(JobFacts::of(&record)),
                            _ => None,
                        }
                    }
                };
                found.map(|f| {
                    let f = Arc::new(f);
                    if order.len() >= KNOWN_JOBS {
                        if let Some(old) = order.pop_front() {
                            known.remove(&old);
                        }
                    }
                    order.push_back(event.job);
                    known.insert(event.job, f.clone());
                    f
                })
            }
        };
        // No listener left is not an error: the next offer finds none and stops early.
        let _ = out.send(Arc::new(FeedItem { event, facts }));
    }
}

/// Filters of `/api/v1/events`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StreamParams {
    command: Option<String>,
    requester: Option<String>,
}

/// A stream's permit, or 503 when the bot serves as many as it may.
fn permit(state: &ApiState) -> Result<OwnedSemaphorePermit, ApiError> {
    state.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::Unavailable(format!(
            "this bot already serves {} live streams; try again later",
            super::MAX_STREAMS
        ))
    })
}

fn sse(stream: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static) -> Response {
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /api/v1/events?command=&requester=`: every job event from now on.
pub(super) async fn stream(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    caller.check(&state.router.catalog(), "jobs")?;
    let params: StreamParams = super::query_params(raw.as_deref())?;
    for (name, value) in [
        ("command", &params.command),
        ("requester", &params.requester),
    ] {
        if value
            .as_ref()
            .is_some_and(|v| v.chars().count() > FILTER_MAX)
        {
            return Err(ApiError::BadRequest(format!(
                "{name} is longer than {FILTER_MAX} characters"
            )));
        }
    }
    let permit = permit(&state)?;
    let rx = state.feed.subscribe();
    let identity = caller.identity();
    let auditor = state.router.catalog().access.is_auditor(&identity);
    let keep = move |item: &FeedItem| {
        let facts = item.facts.as_deref();
        let wanted = |want: &Option<String>, have: Option<&str>| {
            want.as_deref()
                .is_none_or(|w| w.is_empty() || have == Some(w))
        };
        wanted(&params.command, facts.map(|f| f.command.as_str()))
            && wanted(&params.requester, facts.map(|f| f.requester.as_str()))
    };
    let whole = move |item: &FeedItem| {
        auditor || item.facts.as_ref().is_some_and(|f| f.requester == identity)
    };
    let events = futures::stream::unfold((rx, permit), move |(mut rx, permit)| {
        let (keep, whole) = (keep.clone(), whole.clone());
        async move {
            loop {
                match rx.recv().await {
                    Ok(item) if keep(&item) => {
                        let data = item.json(whole(&item)).to_string();
                        return Some((Ok(SseEvent::default().data(data)), (rx, permit)));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let data = serde_json::json!({"event": "lagged", "missed": n});
                        return Some((
                            Ok(SseEvent::default().data(data.to_string())),
                            (rx, permit),
                        ));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(sse(events))
}

/// `GET /api/v1/jobs/{id}/events`: the job's state now, then each of its events as it
/// happens; the stream ends after `finished`.
pub(super) async fn job_stream(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.check(&state.router.catalog(), "job")?;
    let id = job_id(&id)?;
    let permit = permit(&state)?;
    // Listening before reading the record: nothing that happens between is missed.
    let rx = state.feed.subscribe();
    let record = record(&state, id).await?;
    let whole = sees_whole(&state, &caller.identity(), &record);
    let facts = Arc::new(JobFacts::of(&record));
    let now = serde_json::json!({
        "event": "state",
        "job": id.to_string(),
        "status": status_name(record.status),
        "worker": record.worker,
        "command": facts.command,
        "requester": facts.requester,
    });
    let first = SseEvent::default().data(now.to_string());
    let done = record.status.is_final();
    let head = futures::stream::iter([Ok(first)]);
    let tail = futures::stream::unfold(
        (rx, permit, done),
        move |(mut rx, permit, done)| async move {
            if done {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(item) if item.event.job == id => {
                        let finished = matches!(item.event.kind, EventKind::Finished { .. });
                        let data = item.json(whole).to_string();
                        return Some((Ok(SseEvent::default().data(data)), (rx, permit, finished)));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let data = serde_json::json!({"event": "lagged", "missed": n});
                        return Some((
                            Ok(SseEvent::default().data(data.to_string())),
                            (rx, permit, false),
                        ));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    use futures::StreamExt;
    Ok(sse(head.chain(tail)))
}
