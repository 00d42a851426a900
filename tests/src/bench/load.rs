//! Driving the bot in-process: jobs go in through `Router::handle`, exactly as an adapter
//! sends them, and come back through a [`ReplySink`] registered as adapter `bench`.
//!
//! A job's round trip runs from the start of its `handle` call (classify, record in
//! Redis, publish with a confirm) to the moment the async manager hands its reply to the
//! sink. [`run_phase`] keeps at most `window` jobs outstanding (submitted and not yet
//! answered), so a window of one is the low-load phase.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use async_trait::async_trait;
use bot::async_manager::{DeliveryError, ReplySink};
use bot::reply::Reply;
use bot::router::{Outcome, Request, Router};
use jobs::{JobId, JobStatus, Origin};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The adapter name the bench submits and receives under.
pub const ADAPTER: &str = "bench";

/// How long a phase may go without a single reply before it is declared stuck.
const STALL: Duration = Duration::from_secs(30);

/// A reply as it reached the sink.
#[derive(Debug)]
pub struct Arrival {
    job: JobId,
    status: JobStatus,
    at: Instant,
}

/// The sink: notes when each reply arrived and passes it on to the phase that waits.
pub struct BenchSink(mpsc::UnboundedSender<Arrival>);

impl BenchSink {
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<Arrival>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(BenchSink(tx)), rx)
    }
}

#[async_trait]
impl ReplySink for BenchSink {
    async fn deliver(&self, _origin: &Origin, reply: Reply) -> Result<(), DeliveryError> {
        let at = Instant::now();
        self.0
            .send(Arrival {
                job: reply.job,
                status: reply.status,
                at,
            })
            .map_err(|_| DeliveryError::Gone("the bench has stopped listening".to_string()))
    }
}

/// What one phase measured.
#[derive(Debug)]
pub struct Phase {
    pub jobs: usize,
    /// From the start of the first submission to the last reply.
    pub elapsed: Duration,
    pub round_trips: Vec<Duration>,
    /// How long each `handle` call took: classify, record in Redis, publish confirmed.
    pub submissions: Vec<Duration>,
}

impl Phase {
    /// One phase run in parts (blocks alternating with another system's) as a whole:
    /// its jobs, its time spent, its samples.
    pub fn combined(parts: Vec<Phase>) -> Phase {
        let mut whole = Phase {
            jobs: 0,
            elapsed: Duration::ZERO,
            round_trips: Vec::new(),
            submissions: Vec::new(),
        };
        for part in parts {
            whole.jobs += part.jobs;
            whole.elapsed += part.elapsed;
            whole.round_trips.extend(part.round_trips);
            whole.submissions.extend(part.submissions);
        }
        whole
    }
}

/// A submission that the router accepted, with the window slot it holds.
struct Submitted {
    job: JobId,
    started: Instant,
    took: Duration,
    _slot: OwnedSemaphorePermit,
}

/// The request the bench sends: a no-op job (`echo x`) from `bench:bench` in `session`.
pub fn request(session: &str) -> Request {
    Request {
        text: "echo x".to_string(),
        origin: Origin {
            adapter: ADAPTER.to_string(),
            user: "bench".to_string(),
            channel: Some(session.to_string()),
            thread: None,
        },
    }
}

/// Submits `count` jobs with at most `window` outstanding and waits for every reply.
/// Fails if a submission is refused, a job does not succeed, no reply comes for
/// [`STALL`], or the whole phase outlasts `patience`.
pub async fn run_phase(
    router: Arc<Router>,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    session: &str,
    count: usize,
    window: usize,
    patience: Duration,
) -> Result<Phase> {
    let (submitted_tx, mut submitted) = mpsc::unbounded_channel::<Result<Submitted>>();
    let slots = Arc::new(Semaphore::new(window.max(1)));
    let request = request(session);
    let first = Instant::now();
    let submitter = tokio::spawn(async move {
        for _ in 0..count {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (router, request, tx) = (router.clone(), request.clone(), submitted_tx.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let answer = router.handle(&request).await;
                let sent = match (answer.outcome, answer.job) {
                    (Outcome::Queued, Some(job)) => Ok(Submitted {
                        job,
                        started,
                        took: started.elapsed(),
                        _slot: slot,
                    }),
                    _ => Err(anyhow!(
                        "the bot did not queue \"{}\": {:?}: {}",
                        request.text,
                        answer.outcome,
                        answer.text
                    )),
                };
                let _ = tx.send(sent);
            });
        }
    });
    let _stop_submitting = AbortOnDrop(submitter);

    let deadline = first + patience;
    let mut pending: HashMap<JobId, Submitted> = HashMap::with_capacity(window);
    // Replies can overtake the end of their `handle` call.
    let mut early: HashMap<JobId, Arrival> = HashMap::new();
    let mut round_trips = Vec::with_capacity(count);
    let mut submissions = Vec::with_capacity(count);
    let mut failed: Vec<(JobId, JobStatus)> = Vec::new();
    let mut last = first;
    let mut last_progress = Instant::now();
    let mut submitting = true;

    while round_trips.len() + failed.len() < count {
        let wake = deadline.min(last_progress + STALL);
        let done = tokio::select! {
            s = submitted.recv(), if submitting => match s {
                Some(Ok(s)) => match early.remove(&s.job) {
                    Some(arrival) => Some((s, arrival)),
                    None => { pending.insert(s.job, s); None }
                },
                Some(Err(e)) => return Err(e),
                // Every submission is in; only replies remain.
                None => { submitting = false; None }
            },
            a = arrivals.recv() => match a {
                Some(arrival) => match pending.remove(&arrival.job) {
                    Some(s) => Some((s, arrival)),
                    None => { early.insert(arrival.job, arrival); None }
                },
                None => bail!("the bot's reply sink was dropped"),
            },
            _ = tokio::time::sleep_until(wake) => {
                let delivered = round_trips.len() + failed.len();
                if Instant::now() >= deadline {
                    bail!("{delivered} of {count} replies arrived within {patience:?}");
                }
                bail!("no reply for {STALL:?}: {delivered} of {count} arrived, {} awaited", pending.len());
            }
        };
        if let Some((submitted, arrival)) = done {
            last_progress = Instant::now();
            last = last.max(arrival.at);
            if arrival.status == JobStatus::Succeeded {
                round_trips.push(arrival.at.saturating_duration_since(submitted.started));
                submissions.push(submitted.took);
            } else {
                failed.push((arrival.job, arrival.status));
            }
        }
    }
    if let Some((job, status)) = failed.first() {
        bail!(
            "{} of {count} jobs did not succeed (job {job} ended {status:?}); see the worker's log",
            failed.len()
        );
    }
    Ok(Phase {
        jobs: count,
        elapsed: last.saturating_duration_since(first),
        round_trips,
        submissions,
    })
}

/// Stops the submitting task if the phase ends early (an error, a timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
