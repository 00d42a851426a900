//! The worker against the in-memory broker and store: results stored, timeouts, crashes.

use std::collections::BTreeMap;

use std::sync::atomic::AtomicU32;

use async_trait::async_trait;
use jobs::memory::{MemoryBroker, MemoryStore};
use jobs::{Job, JobId, JobResult, JobStatus, Origin, Output, Task};
use lexicon::Value;

use super::job_run::START_NOTICE_AFTER;
use super::*;
use crate::registry::{NativeTask, TaskContext, TaskError};

struct Panics;

/// Fails retryably until its third call.
#[derive(Default)]
struct Flaky(AtomicU32);

#[async_trait]
impl NativeTask for Flaky {
    async fn run(&self, _: &TaskContext) -> Result<Output, TaskError> {
        match self.0.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Err(TaskError::Retryable("the service blinked".into())),
            _ => Ok(Output::text("third time lucky")),
        }
    }
}

struct AlwaysDown;

#[async_trait]
impl NativeTask for AlwaysDown {
    async fn run(&self, _: &TaskContext) -> Result<Output, TaskError> {
        Err(TaskError::Retryable("the service is down".into()))
    }
}

#[async_trait]
impl NativeTask for Panics {
    async fn run(&self, _: &TaskContext) -> Result<Output, TaskError> {
        panic!("boom")
    }
}

fn job(task: &str, args: BTreeMap<String, Value>, timeout: Duration) -> Job {
    Job::new(
        task,
        args,
        Task::native(task),
        Origin::new("console", "t"),
        timeout,
    )
}

async fn run_jobs(jobs: Vec<Job>) -> Vec<JobResult> {
    let broker = Arc::new(MemoryBroker::new());
    let store = Arc::new(MemoryStore::new());
    let mut registry = TaskRegistry::standard();
    registry.register("panics", Panics);
    registry.register("flaky", Flaky::default());
    registry.register("down", AlwaysDown);
    let worker =
        Worker::new("w-test", broker.clone(), store.clone(), registry, 4).with_retry(RetryPolicy {
            retries: 2,
            backoff: Duration::from_millis(20),
        });
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    for j in &jobs {
        store.record_job(j).await.unwrap();
        broker.publish(j).await.unwrap();
    }
    let mut results = Vec::new();
    for j in &jobs {
        let result = loop {
            if let Some(r) = store.job(j.id).await.unwrap().and_then(|r| r.result) {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        results.push(result);
    }
    stop.cancel();
    running.await.unwrap().unwrap();
    results
}

fn text(s: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([("text".to_string(), Value::Text(s.into()))])
}

#[tokio::test]
async fn results_say_what_happened() {
    let results = run_jobs(vec![
        job("echo", text("hello"), Duration::from_secs(5)),
        job("no-such-task", text("x"), Duration::from_secs(5)),
        job("panics", BTreeMap::new(), Duration::from_secs(5)),
        job("echo", BTreeMap::new(), Duration::from_secs(5)),
    ])
    .await;
    assert_eq!(results[0].status, JobStatus::Succeeded);
    assert_eq!(results[0].output, Output::text("hello"));
    assert_eq!(results[0].worker, "w-test");

    assert_eq!(results[1].status, JobStatus::Failed);
    let why = results[1].error.as_deref().unwrap();
    assert!(
        why.contains("no native task \"no-such-task\"") && why.contains("echo"),
        "{why}"
    );

    assert_eq!(results[2].status, JobStatus::Failed);
    assert!(results[2].error.as_deref().unwrap().contains("crashed"));

    assert_eq!(results[3].status, JobStatus::Failed);
    assert!(results[3].error.as_deref().unwrap().contains("\"text\""));
}

#[tokio::test]
async fn a_job_past_its_timeout_is_stopped_and_says_so() {
    let catalog = lexicon::Catalog::build(vec![lexicon::CommandSpec {
        pattern: "sleep {for:duration}".into(),
        help: "Wait".into(),
        ..Default::default()
    }])
    .unwrap();
    let lexicon::Classification::Matched(m) = catalog.classify("sleep 10s") else {
        panic!("sleep 10s should classify")
    };
    let results = run_jobs(vec![job("sleep", m.args, Duration::from_millis(100))]).await;
    assert_eq!(results[0].status, JobStatus::TimedOut);
    assert_eq!(results[0].error.as_deref(), Some("timed out after 100ms"));
    assert!(results[0].duration() < Duration::from_secs(5));
}

#[tokio::test]
async fn retryable_failures_are_tried_again_with_backoff() {
    let results = run_jobs(vec![
        job("flaky", BTreeMap::new(), Duration::from_secs(5)),
        job("down", BTreeMap::new(), Duration::from_secs(5)),
    ])
    .await;
    assert_eq!(results[0].status, JobStatus::Succeeded);
    assert_eq!(results[0].output, Output::text("third time lucky"));
    assert_eq!(results[1].status, JobStatus::Failed);
    assert_eq!(
        results[1].error.as_deref(),
        Some("failed after 3 attempts: the service is down")
    );
}

/// Counts its runs.
#[derive(Clone, Default)]
struct Counted(Arc<AtomicU32>);

#[async_trait]
impl NativeTask for Counted {
    async fn run(&self, _: &TaskContext) -> Result<Output, TaskError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Output::text("counted"))
    }
}

/// Publishes `job` and hands it out once without settling it, as a worker that died
/// would: it comes back redelivered.
async fn lose_one_delivery(broker: &MemoryBroker, store: &MemoryStore, job: &Job) {
    store.record_job(job).await.unwrap();
    broker.publish(job).await.unwrap();
    let mut thief = broker.consume(jobs::TaskClass::Native, 1).await.unwrap();
    let d = thief.next().await.unwrap().unwrap();
    d.reject(true).await.unwrap();
}

async fn worker_with(
    broker: &Arc<MemoryBroker>,
    store: &Arc<MemoryStore>,
    task: Counted,
    delivery_limit: u32,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), jobs::BrokerError>>,
) {
    let mut registry = TaskRegistry::new();
    registry.register("counted", task);
    let worker = Worker::new("w", broker.clone(), store.clone(), registry, 2)
        .with_retry(RetryPolicy {
            retries: 0,
            backoff: Duration::from_millis(10),
        })
        .with_delivery_limit(delivery_limit);
    let stop = CancellationToken::new();
    (stop.clone(), tokio::spawn(worker.run(stop)))
}

async fn final_record(store: &MemoryStore, id: JobId) -> jobs::JobRecord {
    for _ in 0..500 {
        if let Some(r) = store.job(id).await.unwrap().filter(|r| r.status.is_final()) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("job {id} never finished")
}

#[tokio::test]
async fn a_redelivered_job_that_already_finished_is_not_run_again() {
    let (broker, store) = (Arc::new(MemoryBroker::new()), Arc::new(MemoryStore::new()));
    let j = job("counted", BTreeMap::new(), Duration::from_secs(5));
    lose_one_delivery(&broker, &store, &j).await;
    let done = JobResult {
        id: j.id,
        status: JobStatus::Succeeded,
        output: Output::text("first run"),
        worker: "gone".into(),
        started_at: Utc::now(),
        finished_at: Utc::now(),
        error: None,
    };
    store.finish_job(&done).await.unwrap();
    let runs = Counted::default();
    let (stop, handle) = worker_with(&broker, &store, runs.clone(), 5).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(runs.0.load(Ordering::SeqCst), 0, "not run again");
    let record = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(record.result.unwrap().output, Output::text("first run"));
}

#[tokio::test]
async fn a_redelivered_job_is_moved_then_runs_once() {
    let (broker, store) = (Arc::new(MemoryBroker::new()), Arc::new(MemoryStore::new()));
    let j = job("counted", BTreeMap::new(), Duration::from_secs(5));
    lose_one_delivery(&broker, &store, &j).await;
    let runs = Counted::default();
    let (stop, handle) = worker_with(&broker, &store, runs.clone(), 5).await;
    let record = final_record(&store, j.id).await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
    assert_eq!(runs.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_job_past_the_delivery_limit_is_set_aside_unrun() {
    let (broker, store) = (Arc::new(MemoryBroker::new()), Arc::new(MemoryStore::new()));
    let j = job("counted", BTreeMap::new(), Duration::from_secs(5));
    lose_one_delivery(&broker, &store, &j).await;
    let mut dead = broker.consume_dead_letters().await.unwrap();
    let runs = Counted::default();
    let (stop, handle) = worker_with(&broker, &store, runs.clone(), 1).await;
    let record = final_record(&store, j.id).await;
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(
        record.result.unwrap().error.as_deref(),
        Some("was set aside: it was delivered once and never finished (the delivery limit); it may crash the workers that take it")
    );
    assert_eq!(
        dead.next().await.unwrap().unwrap().job.id,
        j.id,
        "kept in the dead letters"
    );
    let dead_lettered = store
        .job_page(&jobs::JobQuery {
            dead_lettered: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        dead_lettered
            .jobs
            .iter()
            .map(|r| r.job.id)
            .collect::<Vec<_>>(),
        vec![j.id],
        "the history's dead-lettered filter finds it"
    );
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(runs.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_job_whose_record_never_landed_is_recorded_by_its_worker() {
    let (broker, store) = (Arc::new(MemoryBroker::new()), Arc::new(MemoryStore::new()));
    let runs = Counted::default();
    let (stop, handle) = worker_with(&broker, &store, runs.clone(), 5).await;
    let j = job("counted", BTreeMap::new(), Duration::from_secs(5));
    // Published, but the bot's record write failed.
    broker.publish(&j).await.unwrap();
    let record = final_record(&store, j.id).await;
    assert_eq!(record.status, JobStatus::Succeeded);
    assert_eq!(record.job, j, "the record says what was asked, and by whom");
    // The bot's write, landing late, leaves the result alone.
    store.record_job(&j).await.unwrap();
    let record = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
    assert!(record.result.is_some());
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(runs.0.load(Ordering::SeqCst), 1, "run once");
}

#[tokio::test]
async fn only_a_job_still_running_after_a_moment_is_shown_as_started() {
    let (broker, store) = (Arc::new(MemoryBroker::new()), Arc::new(MemoryStore::new()));
    let worker = Worker::new(
        "w",
        broker.clone(),
        store.clone(),
        TaskRegistry::standard(),
        2,
    );
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    let quick = job("echo", text("hi"), Duration::from_secs(5));
    let wait = lexicon::DurationValue::from_millis(START_NOTICE_AFTER.as_millis() as u64 * 4);
    let args = BTreeMap::from([("for".to_string(), Value::Duration(wait))]);
    let slow = job("sleep", args, Duration::from_secs(5));
    for j in [&quick, &slow] {
        store.record_job(j).await.unwrap();
        broker.publish(j).await.unwrap();
    }
    let mut seen_running = false;
    for _ in 0..400 {
        let record = store.job(slow.id).await.unwrap().unwrap();
        seen_running |=
            record.status == JobStatus::Running && record.worker.as_deref() == Some("w");
        if record.status.is_final() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen_running, "the slow job was never shown running");
    let quick_record = final_record(&store, quick.id).await;
    assert_eq!(quick_record.status, JobStatus::Succeeded);
    assert!(
        quick_record.started_at.is_some(),
        "the result carries the start"
    );
    assert_eq!(
        final_record(&store, slow.id).await.status,
        JobStatus::Succeeded
    );
    let events = store
        .read_events("t", "t", 100, Duration::ZERO)
        .await
        .unwrap();
    let started: Vec<JobId> = events
        .iter()
        .filter(|(_, e)| matches!(e.kind, jobs::EventKind::Started { .. }))
        .map(|(_, e)| e.job)
        .collect();
    assert_eq!(
        started,
        vec![slow.id],
        "only the slow job has a `started` event"
    );
    stop.cancel();
    running.await.unwrap().unwrap();
}
