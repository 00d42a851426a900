//! `RedisStore` against a real `redis-server`: each test starts a private one (append-only
//! on) on a free port, and it is stopped when the test ends.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use config::{Secret, StoreConfig};
use jobs::redis::RedisStore;
use jobs::{
    Event, EventId, EventKind, Job, JobId, JobRecord, JobResult, JobStatus, Origin, Output,
    ReplyClaim, Store, StoreError, Task, TaskClass, WorkerInfo,
};
use tracing::instrument::WithSubscriber;

// ---- setup -------------------------------------------------------------------------

mod support;
use support::{config, start_redis, stop_redis, store_on, store_with, WEEK};

fn job() -> Job {
    Job::new(
        "echo",
        BTreeMap::new(),
        Task::native("echo"),
        Origin {
            channel: Some("tty1".into()),
            ..Origin::new("console", "alice")
        },
        Duration::from_secs(5),
    )
}

fn result_of(job: &Job, status: JobStatus) -> JobResult {
    JobResult {
        id: job.id,
        status,
        output: Output::text(format!("done: {}", job.id)),
        worker: "w1".into(),
        started_at: Utc::now(),
        finished_at: Utc::now(),
        error: (status != JobStatus::Succeeded).then(|| "the task gave up".to_string()),
    }
}

/// Everything `group` has not been handed yet, without waiting.
async fn drain(store: &RedisStore, group: &str) -> Vec<(EventId, Event)> {
    let mut all = Vec::new();
    loop {
        let batch = store
            .read_events(group, "drain", 1000, Duration::ZERO)
            .await
            .unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

fn ids(events: &[(EventId, Event)]) -> Vec<EventId> {
    events.iter().map(|(id, _)| id.clone()).collect()
}

/// What the store logs, kept to be read back: `dispatch` is attached to the futures
/// whose logs a test wants to see.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn dispatch(&self) -> tracing::Dispatch {
        let sink = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish()
            .into()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---- stories -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_jobs_life_reads_back_as_a_record_and_as_events_in_order() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    assert!(store.describe().starts_with("Redis at redis://127.0.0.1:"));

    let j = job();
    store.record_job(&j).await.unwrap();
    assert_eq!(
        store.job(j.id).await.unwrap(),
        Some(JobRecord::queued(j.clone()))
    );
    let started = Utc::now();
    store.mark_started(j.id, "w1", started).await.unwrap();
    let result = result_of(&j, JobStatus::Succeeded);
    store.finish_job(&result).await.unwrap();

    let expected = JobRecord {
        job: j.clone(),
        status: JobStatus::Succeeded,
        worker: Some("w1".into()),
        started_at: Some(started),
        result: Some(result),
    };
    assert_eq!(store.job(j.id).await.unwrap(), Some(expected));
    assert_eq!(store.job(JobId::new()).await.unwrap(), None);

    let events = drain(&store, "bot").await;
    let kinds: Vec<_> = events.iter().map(|(_, e)| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Queued,
            EventKind::Started {
                worker: "w1".into()
            },
            EventKind::Finished {
                status: JobStatus::Succeeded
            },
        ]
    );
    assert!(events.iter().all(|(_, e)| e.job == j.id));

    // Starting or finishing a job the store never recorded is an error, as in memory.
    let stranger = job();
    assert!(matches!(
        store.mark_started(stranger.id, "w1", Utc::now()).await,
        Err(StoreError::UnknownJob(id)) if id == stranger.id
    ));
    assert!(matches!(
        store
            .finish_job(&result_of(&stranger, JobStatus::Failed))
            .await,
        Err(StoreError::UnknownJob(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_written_late_or_twice_leaves_the_job_where_it_is() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let j = job();
    // The worker got there first (the bot records and publishes at the same time).
    store.record_job(&j).await.unwrap();
    store.mark_started(j.id, "w1", Utc::now()).await.unwrap();
    store
        .finish_job(&result_of(&j, JobStatus::Succeeded))
        .await
        .unwrap();
    store.record_job(&j).await.unwrap();
    let record = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
    assert_eq!(record.worker.as_deref(), Some("w1"));
    assert!(record.result.is_some(), "the result is kept");
    // A start that arrives after the result changes nothing either.
    store.mark_started(j.id, "w2", Utc::now()).await.unwrap();
    let record = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.worker.as_deref()),
        (JobStatus::Succeeded, Some("w1"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn history_lists_newest_first_and_forgets_expired_jobs() {
    let redis = start_redis().await;
    let kept = store_on(&redis).await;
    let short_lived = store_with(&redis, Duration::from_secs(1)).await;

    let fleeting = job();
    short_lived.record_job(&fleeting).await.unwrap();
    let mut recorded = Vec::new();
    for _ in 0..5 {
        let j = job();
        kept.record_job(&j).await.unwrap();
        recorded.push(j.id);
    }
    let newest_first: Vec<JobId> = recorded.iter().rev().copied().collect();

    let listed: Vec<JobId> = kept
        .recent_jobs(3)
        .await
        .unwrap()
        .iter()
        .map(|r| r.job.id)
        .collect();
    assert_eq!(listed, newest_first[..3]);
    let all: Vec<JobId> = kept
        .recent_jobs(10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.job.id)
        .collect();
    assert_eq!(all.len(), 6);
    assert_eq!(all[5], fleeting.id, "the oldest job comes last");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(kept.job(fleeting.id).await.unwrap(), None);
    let all: Vec<JobId> = kept
        .recent_jobs(10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.job.id)
        .collect();
    assert_eq!(all, newest_first, "the expired job left the history");
    assert!(kept.recent_jobs(0).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn consumers_of_a_group_share_events_and_another_group_sees_them_all() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let mut recorded = HashSet::new();
    for _ in 0..10 {
        let j = job();
        store.record_job(&j).await.unwrap();
        recorded.insert(j.id);
    }

    let first = store
        .read_events("bot", "bot-1", 4, Duration::ZERO)
        .await
        .unwrap();
    let second = store
        .read_events("bot", "bot-2", 100, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(first.len(), 4);
    assert_eq!(second.len(), 6);
    let first_ids: HashSet<_> = ids(&first).into_iter().collect();
    assert!(ids(&second).iter().all(|id| !first_ids.contains(id)));
    let jobs: HashSet<JobId> = first.iter().chain(&second).map(|(_, e)| e.job).collect();
    assert_eq!(
        jobs, recorded,
        "between them, the consumers saw every event once"
    );

    store.ack_events("bot", &ids(&first)).await.unwrap();
    store.ack_events("bot", &ids(&second)).await.unwrap();
    assert!(drain(&store, "bot").await.is_empty());

    let dashboard = drain(&store, "dashboard").await;
    assert_eq!(dashboard.len(), 10, "a second group reads the whole stream");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_a_dead_consumer_never_acknowledged_go_to_another_after_the_idle_time() {
    let redis = start_redis().await;
    let idle = Duration::from_secs(2);
    let store = store_on(&redis).await.with_claim_idle(idle);
    for _ in 0..3 {
        store.record_job(&job()).await.unwrap();
    }

    let taken = store
        .read_events("bot", "bot-dies", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(taken.len(), 3);
    // bot-dies never acknowledges. Before the idle time, nobody else gets them.
    let early = store
        .read_events("bot", "bot-lives", 10, Duration::ZERO)
        .await
        .unwrap();
    assert!(early.is_empty(), "claimed too early: {early:?}");

    tokio::time::sleep(idle + Duration::from_millis(300)).await;
    let claimed = store
        .read_events("bot", "bot-lives", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ids(&taken), "the survivor takes them over");
    assert_eq!(claimed, taken);
    store.ack_events("bot", &ids(&claimed)).await.unwrap();

    tokio::time::sleep(idle + Duration::from_millis(300)).await;
    assert!(store
        .read_events("bot", "bot-lives", 10, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_event_carries_its_record_to_the_first_reader_of_each_group_only() {
    let redis = start_redis().await;
    let idle = Duration::from_secs(1);
    let store = store_on(&redis).await.with_claim_idle(idle);
    let j = job();
    store.record_job(&j).await.unwrap();
    store
        .finish_job(&result_of(&j, JobStatus::Succeeded))
        .await
        .unwrap();
    let stored = store.job(j.id).await.unwrap().unwrap();
    // What a reply is made of: the job (with its origin) and its result.
    let carried =
        |events: &[(EventId, Event)]| -> Vec<Option<(Job, JobStatus, Option<JobResult>)>> {
            events
                .iter()
                .map(|(_, e)| {
                    e.record
                        .as_deref()
                        .map(|r| (r.job.clone(), r.status, r.result.clone()))
                })
                .collect()
        };
    let stored = (stored.job, stored.status, stored.result);

    let first = store
        .read_events("bot", "bot-dies", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        carried(&first),
        vec![None, Some(stored.clone())],
        "queued carries nothing; finished carries the record as stored"
    );
    let other_group = drain(&store, "dashboard").await;
    assert_eq!(carried(&other_group), vec![None, Some(stored.clone())]);

    // bot-dies delivers and claims, then dies before acknowledging: the bot that takes
    // the event over gets it without the record, and the claim stops it.
    assert!(store.claim_carried_reply(j.id, "bot").await.unwrap());
    assert!(!store.claim_carried_reply(j.id, "bot").await.unwrap());
    tokio::time::sleep(idle + Duration::from_millis(300)).await;
    let taken_over = store
        .read_events("bot", "bot-lives", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(ids(&taken_over), ids(&first));
    assert_eq!(carried(&taken_over), vec![None, None]);
    let console = vec!["console".to_string()];
    let claim = store.claim_reply(j.id, "bot", &console).await.unwrap();
    assert!(matches!(claim, ReplyClaim::Taken), "{claim:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_finished_twice_keeps_its_first_result_and_appends_one_finished_event() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let j = job();
    store.record_job(&j).await.unwrap();
    let first = result_of(&j, JobStatus::Succeeded);
    store.finish_job(&first).await.unwrap();
    // A job run again after its worker died before the ack, or the dead-letter path.
    store
        .finish_job(&result_of(&j, JobStatus::Failed))
        .await
        .expect("a repeated finish is not an error");

    let record = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
    assert_eq!(record.result, Some(first));
    let finished = drain(&store, "bot")
        .await
        .into_iter()
        .filter(|(_, e)| matches!(e.kind, EventKind::Finished { .. }))
        .count();
    assert_eq!(finished, 1, "one reply per job");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_result_is_read_from_the_record_not_carried_in_the_event() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let j = job();
    store.record_job(&j).await.unwrap();
    let mut result = result_of(&j, JobStatus::Succeeded);
    result.output = Output::text("x".repeat(64 * 1024));
    store.finish_job(&result).await.unwrap();

    let events = drain(&store, "bot").await;
    let (_, finished) = events.last().unwrap();
    assert!(matches!(finished.kind, EventKind::Finished { .. }));
    assert!(
        finished.record.is_none(),
        "64 KiB does not ride in the stream"
    );
    let console = vec!["console".to_string()];
    match store.claim_reply(j.id, "bot", &console).await.unwrap() {
        ReplyClaim::Claimed(record) => assert_eq!(record.result, Some(result)),
        other => panic!("the reply is claimed from the record: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_is_claimed_once_per_group_and_only_by_the_group_of_its_adapter() {
    let redis = start_redis().await;
    let a = store_on(&redis).await;
    let b = store_on(&redis).await;
    let (bots, slack) = ("octobox-bot@vm", "octobox-bot:slack");
    let console = vec!["ssh".to_string(), "console".to_string()];
    let slack_only = vec!["slack".to_string()];
    let unknown = a.claim_reply(JobId::new(), bots, &console).await.unwrap();
    assert!(matches!(unknown, ReplyClaim::Unknown), "{unknown:?}");
    for _ in 0..20 {
        let j = job();
        a.record_job(&j).await.unwrap();
        // The Slack group reads the same event first: it must not take the reply away.
        let elsewhere = b.claim_reply(j.id, slack, &slack_only).await.unwrap();
        assert!(matches!(elsewhere, ReplyClaim::Elsewhere), "{elsewhere:?}");
        let (x, y) = tokio::join!(
            a.claim_reply(j.id, bots, &console),
            b.claim_reply(j.id, bots, &console)
        );
        let won: Vec<ReplyClaim> = [x.unwrap(), y.unwrap()]
            .into_iter()
            .filter(|c| !matches!(c, ReplyClaim::Taken))
            .collect();
        match won.as_slice() {
            [ReplyClaim::Claimed(record)] => assert_eq!(record.job, j),
            other => panic!(
                "exactly one of the two instances may deliver {}: {other:?}",
                j.id
            ),
        }
        let again = a.claim_reply(j.id, bots, &console).await.unwrap();
        assert!(matches!(again, ReplyClaim::Taken), "{again:?}");
    }
}

/// Claims made at the same time share one connection; each still gets its own answer.
#[tokio::test(flavor = "multi_thread")]
async fn many_replies_claimed_at_once_by_two_bots_are_each_delivered_once() {
    let redis = start_redis().await;
    let a = std::sync::Arc::new(store_on(&redis).await);
    let b = std::sync::Arc::new(store_on(&redis).await);
    let group = "octobox-bot@vm";
    let adapters = vec!["console".to_string()];
    let mut recorded = Vec::new();
    for _ in 0..300 {
        let j = job();
        a.record_job(&j).await.unwrap();
        recorded.push(j);
    }
    let unknown = JobId::new();
    let mut claims = tokio::task::JoinSet::new();
    for id in recorded.iter().map(|j| j.id).chain([unknown]) {
        for store in [&a, &b] {
            let (store, adapters) = (store.clone(), adapters.clone());
            claims.spawn(async move { (id, store.claim_reply(id, group, &adapters).await) });
        }
    }
    let mut claimed = std::collections::HashMap::new();
    while let Some(done) = claims.join_next().await {
        let (id, claim) = done.unwrap();
        match claim.unwrap() {
            ReplyClaim::Claimed(record) => {
                assert_eq!(
                    record.job.id, id,
                    "a claim answered with another job's record"
                );
                *claimed.entry(id).or_insert(0) += 1;
            }
            ReplyClaim::Taken => {}
            ReplyClaim::Unknown => assert_eq!(id, unknown, "{id} has a record"),
            other => panic!("{id}: {other:?}"),
        }
    }
    for j in &recorded {
        assert_eq!(claimed.get(&j.id), Some(&1), "{} claimed once", j.id);
    }
    assert_eq!(claimed.len(), recorded.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_whose_job_is_unreadable_is_reported_not_claimed() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let mut con = ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let id = JobId::new();
    let key = format!("{}job:{id}", jobs::redis::DEFAULT_PREFIX);
    ::redis::cmd("HSET")
        .arg(&key)
        .arg("job")
        .arg("not json")
        .arg("status")
        .arg("queued")
        .exec_async(&mut con)
        .await
        .unwrap();
    let claim = store
        .claim_reply(id, "octobox-bot@vm", &["console".to_string()])
        .await;
    assert!(
        matches!(claim, Err(StoreError::Corrupt { ref what, .. }) if *what == key),
        "{claim:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_note_is_kept_once_across_store_instances_until_it_expires() {
    let redis = start_redis().await;
    let a = store_on(&redis).await;
    let b = store_on(&redis).await;
    let ttl = Duration::from_millis(300);
    let (x, y) = tokio::join!(
        a.note_once("slack:event:Ev1", "bot-a", ttl),
        b.note_once("slack:event:Ev1", "bot-b", ttl)
    );
    assert!(
        x.unwrap() ^ y.unwrap(),
        "exactly one instance keeps the note"
    );
    let kept = b.note("slack:event:Ev1").await.unwrap().unwrap();
    assert!(kept == "bot-a" || kept == "bot-b", "{kept}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(a.note("slack:event:Ev1").await.unwrap(), None);
    assert!(b.note_once("slack:event:Ev1", "bot-b", ttl).await.unwrap());
}

/// How far a run of [`record_and_finish`] calls has got, and its slowest call.
#[derive(Default)]
struct Progress {
    done: AtomicUsize,
    slowest_ms: AtomicU64,
}

impl Progress {
    fn count(&self, started: Instant) {
        let ms = started.elapsed().as_millis() as u64;
        self.slowest_ms.fetch_max(ms, Ordering::Relaxed);
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Records and finishes `jobs` jobs one after another, paced so that a run is still
/// going when Redis goes down; the ids of the finished jobs.
async fn record_and_finish(
    store: Arc<RedisStore>,
    jobs: usize,
    progress: Arc<Progress>,
) -> Result<Vec<JobId>, StoreError> {
    let mut finished = Vec::new();
    for _ in 0..jobs {
        let j = job();
        let t = Instant::now();
        store.record_job(&j).await?;
        progress.count(t);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let t = Instant::now();
        store
            .finish_job(&result_of(&j, JobStatus::Succeeded))
            .await?;
        progress.count(t);
        finished.push(j.id);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    Ok(finished)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_restart_mid_run_loses_no_job_and_surfaces_no_error() {
    const TASKS: usize = 10;
    const JOBS_PER_TASK: usize = 25;
    const OPERATIONS: usize = TASKS * JOBS_PER_TASK * 2;

    let mut redis = start_redis().await;
    let store = Arc::new(store_on(&redis).await);
    let progress = Arc::new(Progress::default());
    let logs = Logs::default();

    let workers: Vec<_> = (0..TASKS)
        .map(|_| {
            let run = record_and_finish(store.clone(), JOBS_PER_TASK, progress.clone());
            tokio::spawn(run.with_subscriber(logs.dispatch()))
        })
        .collect();

    let done = || progress.done.load(Ordering::Relaxed);
    while done() < OPERATIONS / 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = done();
    redis = tokio::task::spawn_blocking(move || {
        redis.restart(Duration::from_millis(700));
        redis
    })
    .await
    .unwrap();
    let after = done();
    assert!(
        before < OPERATIONS && after < OPERATIONS,
        "the restart happened mid-run ({before} then {after} of {OPERATIONS} done)"
    );

    let mut all = Vec::new();
    for w in workers {
        let ids = w.await.unwrap();
        all.extend(ids.expect("every call returns Ok through the restart"));
    }
    assert_eq!(all.len(), OPERATIONS / 2);

    for id in &all {
        let record = store.job(*id).await.unwrap().expect("the record survived");
        assert_eq!(record.status, JobStatus::Succeeded, "job {id}");
        assert!(record.result.is_some(), "job {id}");
    }
    let mut finished: HashMap<JobId, usize> = HashMap::new();
    for (_, e) in drain(&store, "audit").await {
        if matches!(e.kind, EventKind::Finished { .. }) {
            *finished.entry(e.job).or_default() += 1;
        }
    }
    let missing: Vec<_> = all.iter().filter(|id| !finished.contains_key(id)).collect();
    assert!(missing.is_empty(), "no finished event for {missing:?}");
    let duplicated = finished.values().filter(|n| **n > 1).count();
    let logs = logs.text();
    let retried = logs.matches("retrying while trying to").count();
    let recovered = logs.matches("answers again").count();
    assert!(retried > 0, "calls in flight saw Redis go and retried");
    eprintln!(
        "restart at {before}/{OPERATIONS} operations (Redis back at {after}); {retried} calls \
         retried and {recovered} recovered; slowest call {} ms; {duplicated} finished events \
         duplicated by retries",
        progress.slowest_ms.load(Ordering::Relaxed)
    );
    stop_redis(redis).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_redis_gone_longer_than_the_retry_limit_a_call_fails_without_its_password() {
    const PASSWORD: &str = "hunter2-do-not-print";
    let redis = start_redis().await;
    {
        let mut admin = redis::Client::open(redis.url())
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg(PASSWORD)
            .query::<()>(&mut admin)
            .unwrap();
    }
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", redis.port);
    let logs = Logs::default();
    let store = RedisStore::connect(&config(&url, WEEK))
        .with_subscriber(logs.dispatch())
        .await
        .expect("the password lets the store in")
        .with_retry_limit(Duration::from_secs(1));
    store.record_job(&job()).await.unwrap();
    let port = redis.port;
    stop_redis(redis).await;

    let t = Instant::now();
    let err = store
        .recent_jobs(5)
        .with_subscriber(logs.dispatch())
        .await
        .unwrap_err();
    let waited = t.elapsed();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{message}");
    assert!(!message.contains(PASSWORD), "{message}");
    assert!(!format!("{err:?}").contains(PASSWORD));
    assert!(
        message.contains(&format!("redis://127.0.0.1:{port}")),
        "{message}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "it retried up to the limit before giving up ({waited:?})"
    );
    assert!(!store.describe().contains(PASSWORD));
    let logs = logs.text();
    assert!(logs.contains("connected to the job store"), "{logs}");
    assert!(logs.contains("giving up on the job store"), "{logs}");
    assert!(!logs.contains(PASSWORD), "{logs}");
    eprintln!("{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_start_does_not_undo_a_result() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let j = job();
    store.record_job(&j).await.unwrap();
    store.mark_started(j.id, "w1", Utc::now()).await.unwrap();
    let result = result_of(&j, JobStatus::Failed);
    store.finish_job(&result).await.unwrap();

    // A redelivery reaches another worker after the result is in.
    store.mark_started(j.id, "w2", Utc::now()).await.unwrap();

    let record = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.worker.as_deref(), Some("w1"));
    assert_eq!(record.result, Some(result));
    let kinds: Vec<_> = drain(&store, "bot")
        .await
        .into_iter()
        .map(|(_, e)| e.kind)
        .collect();
    assert_eq!(kinds.len(), 3, "no second started event: {kinds:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_are_listed_until_their_heartbeat_ttl_passes() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let info = |name: &str| WorkerInfo {
        name: name.into(),
        host: "h1".into(),
        classes: vec![TaskClass::Native],
        concurrency: 4,
        running: 1,
        started_at: Utc::now(),
        heartbeat_at: Utc::now(),
    };
    let (steady, fading) = (info("w-steady"), info("w-fading"));
    store
        .heartbeat(&steady, Duration::from_secs(30))
        .await
        .unwrap();
    store
        .heartbeat(&fading, Duration::from_millis(400))
        .await
        .unwrap();
    assert_eq!(
        store.workers().await.unwrap(),
        vec![fading.clone(), steady.clone()],
        "listed by name"
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(store.workers().await.unwrap(), vec![steady.clone()]);

    // A heartbeat brings a worker back.
    store
        .heartbeat(&fading, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(store.workers().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_without_block_returns_at_once_and_a_blocked_read_wakes_on_append() {
    let redis = start_redis().await;
    let store = Arc::new(store_on(&redis).await);

    let t = Instant::now();
    let none = store
        .read_events("bot", "c1", 10, Duration::ZERO)
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "block = 0 must not wait ({:?})",
        t.elapsed()
    );

    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let got = store
                .read_events("bot", "c1", 10, Duration::from_secs(20))
                .await;
            (got, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // While the read is blocked, other commands on the same store are not held up.
    let t = Instant::now();
    let j = job();
    store.record_job(&j).await.unwrap();
    store.job(j.id).await.unwrap().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    let (got, waited) = reader.await.unwrap();
    let got = got.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.job, j.id);
    assert!(
        waited < Duration::from_secs(10),
        "the reader woke on the append, not at the end of its block ({waited:?})"
    );

    // With nothing to read, a short block returns empty when it runs out.
    let t = Instant::now();
    let empty = store
        .read_events("bot", "c1", 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(empty.is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );

    // An event appended from another task wakes a reader of another group too.
    let appender = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let line = EventKind::Progress {
                line: "half way".into(),
            };
            store.append_event(&Event::now(j.id, line)).await.unwrap()
        })
    };
    let first = store
        .read_events("progress", "c2", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        first.len(),
        1,
        "the progress group starts with the queued event"
    );
    let got = store
        .read_events("progress", "c2", 10, Duration::from_secs(20))
        .await
        .unwrap();
    let appended = appender.await.unwrap();
    assert_eq!(ids(&got), vec![appended]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_reader_rides_through_a_restart_and_still_gets_the_event() {
    let mut redis = start_redis().await;
    let store = Arc::new(store_on(&redis).await);
    assert!(drain(&store, "bot").await.is_empty());

    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .read_events("bot", "c1", 10, Duration::from_secs(30))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis = tokio::task::spawn_blocking(move || {
        redis.restart(Duration::from_millis(300));
        redis
    })
    .await
    .unwrap();

    let j = job();
    store.record_job(&j).await.unwrap();
    let got = reader
        .await
        .unwrap()
        .expect("the read is retried, not failed");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.job, j.id);
    stop_redis(redis).await;
}

// ---- TLS -----------------------------------------------------------------------------

/// `rediss://` with a private CA: the store works over TLS; a client that trusts another
/// CA (what a server in the middle would present) is refused at once.
#[tokio::test(flavor = "multi_thread")]
async fn the_store_speaks_tls_to_a_server_its_private_ca_vouches_for_and_no_other() {
    jobs::tls::install_provider();
    let redis = tokio::task::spawn_blocking(test_services::TlsRedis::start)
        .await
        .unwrap();
    let with_ca = |url: String, ca: std::path::PathBuf| {
        let mut config = StoreConfig::new(Secret::new(url));
        config.tls.ca_file = Some(ca);
        config
    };

    let store = RedisStore::connect(&with_ca(redis.url(), redis.ca_file()))
        .await
        .expect("the store connects over TLS");
    let j = job();
    store.record_job(&j).await.unwrap();
    let record = store
        .job(j.id)
        .await
        .unwrap()
        .expect("the record, read back");
    assert_eq!(record.job.id, j.id);

    let refused = RedisStore::connect(&with_ca(redis.url(), redis.other_ca_file())).await;
    let Err(StoreError::Unavailable { reason, .. }) = &refused else {
        panic!(
            "a server the CA did not vouch for was trusted: {:?}",
            refused.map(|_| ())
        );
    };
    assert!(reason.contains("refused"), "{reason}");
    tokio::task::spawn_blocking(move || drop(redis))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_places_and_uses_are_shared_by_every_bot_of_one_redis() {
    let redis = start_redis().await;
    let (one, two) = (store_on(&redis).await, store_on(&redis).await);
    let until = Utc::now() + chrono::Duration::minutes(5);
    let (a, b, c) = (job(), job(), job());
    for j in [&a, &b, &c] {
        one.record_job(j).await.unwrap();
    }
    assert_eq!(
        one.take_place("person:u", 2, a.id, until).await.unwrap(),
        None
    );
    assert_eq!(
        one.take_place("person:u", 2, a.id, until).await.unwrap(),
        None,
        "taking a held place again is harmless"
    );
    assert_eq!(
        two.take_place("person:u", 2, b.id, until).await.unwrap(),
        None
    );
    let full = two.take_place("person:u", 2, c.id, until).await.unwrap();
    let freed_by = full.expect("both places are held, whichever bot asks");
    assert!(
        (freed_by - until).num_milliseconds().abs() < 2,
        "{freed_by} {until}"
    );

    // A finished job frees its place by itself.
    one.finish_job(&result_of(&a, JobStatus::Succeeded))
        .await
        .unwrap();
    assert_eq!(
        two.take_place("person:u", 2, c.id, until).await.unwrap(),
        None
    );
    two.give_back_place("person:u", c.id).await.unwrap();
    let d = job();
    assert_eq!(
        one.take_place("person:u", 2, d.id, until).await.unwrap(),
        None
    );
    // A place past its deadline is freed even if its job never finishes.
    let e = job();
    let soon = Utc::now() + chrono::Duration::milliseconds(300);
    assert_eq!(one.take_place("cmd:x", 1, e.id, soon).await.unwrap(), None);
    assert!(one
        .take_place("cmd:x", 1, d.id, until)
        .await
        .unwrap()
        .is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(one.take_place("cmd:x", 1, d.id, until).await.unwrap(), None);

    let window = Duration::from_secs(3600);
    for store in [&one, &two, &one] {
        assert_eq!(store.count_use("person:u", 3, window).await.unwrap(), None);
    }
    let wait = two.count_use("person:u", 3, window).await.unwrap();
    assert!(wait.is_some_and(|w| w <= window), "{wait:?}");
    assert_eq!(two.count_use("person:v", 3, window).await.unwrap(), None);
    stop_redis(redis).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_argument_is_never_stored_only_its_mask() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let mut j = job();
    let secret = "ghp_0123456789abcdef";
    j.args
        .insert("token".into(), lexicon::Value::Secret(secret.into()));
    j.task = Task::Container {
        image: "deploy:1".into(),
        argv: vec!["--token".into(), secret.into()],
        env: [("TOKEN".to_string(), format!("Bearer {secret}"))].into(),
        limits: Default::default(),
    };
    store.record_job(&j).await.unwrap();
    let mut result = result_of(&j, JobStatus::Succeeded);
    result.output = Output::text(format!("logged in with {secret}"));
    store.finish_job(&result.masked_for(&j)).await.unwrap();

    let mut con = ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("{}job:{}", jobs::redis::DEFAULT_PREFIX, j.id);
    let raw: HashMap<String, String> = ::redis::cmd("HGETALL")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap();
    let everything = format!("{raw:?}");
    assert!(!everything.contains(secret), "{everything}");
    let record = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(record.job.args["token"].to_string(), "***");
    let Task::Container { argv, env, .. } = &record.job.task else {
        panic!("a container task")
    };
    assert_eq!(argv, &["--token", "***"]);
    assert_eq!(env["TOKEN"], "Bearer ***");
    assert_eq!(
        record.result.unwrap().output,
        Output::text("logged in with ***")
    );
    stop_redis(redis).await;
}
