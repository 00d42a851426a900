//! Filtered pages of the job history (`Store::job_page`): each check runs against a
//! `RedisStore` on a private `redis-server` and against the `MemoryStore`, which must
//! agree; what only Redis does (the scan budget, expired records, index expiry, data
//! written before the indexes) is checked against Redis alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use jobs::memory::MemoryStore;
use jobs::redis::SCAN_BUDGET;
use jobs::{
    BadCursor, Job, JobCursor, JobId, JobPage, JobQuery, JobResult, JobStatus, Origin, Output,
    Store, StoreError, Task, MAX_FILTER_CHARS, MAX_PAGE,
};
use lexicon::Value;
use test_services::Redis;

// ---- setup -------------------------------------------------------------------------

mod support;
use support::{start_redis, stop_redis, store_on, store_with};

/// A Redis store (on a server of its own) and a memory store, the checks run on each.
struct Both {
    redis: Redis,
    stores: Vec<(&'static str, Arc<dyn Store>)>,
}

impl Both {
    async fn start() -> Both {
        let redis = start_redis().await;
        let in_redis: Arc<dyn Store> = Arc::new(store_on(&redis).await);
        let in_memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
        Both {
            redis,
            stores: vec![("redis", in_redis), ("memory", in_memory)],
        }
    }

    async fn stop(self) {
        drop(self.stores);
        stop_redis(self.redis).await;
    }
}

/// A job with its requester, arguments and creation time given.
fn job(command: &str, requester: (&str, &str), args: &[(&str, &str)], at: DateTime<Utc>) -> Job {
    let args: BTreeMap<String, Value> = args
        .iter()
        .map(|(k, v)| (k.to_string(), Value::Text(v.to_string())))
        .collect();
    let mut job = Job::new(
        command,
        args,
        Task::native("echo"),
        Origin::new(requester.0, requester.1),
        Duration::from_secs(30),
    );
    job.created_at = at;
    job
}

fn result(job: &Job, status: JobStatus, output: &str, error: Option<&str>) -> JobResult {
    JobResult {
        id: job.id,
        status,
        output: match output {
            "" => Output::Empty,
            text => Output::text(text),
        },
        worker: "w1".into(),
        started_at: Utc::now(),
        finished_at: Utc::now(),
        error: error.map(str::to_string),
    }
}

/// Records `jobs` on `store`, many at once (so Redis coalesces them).
async fn record_all(store: &Arc<dyn Store>, jobs: &[Job]) {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in jobs.chunks(64) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for job in &chunk {
                store.record_job(job).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// A millisecond in the past, `minutes` before a fixed base near now.
fn minutes_ago(base: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    base - chrono::Duration::minutes(minutes)
}

fn base() -> DateTime<Utc> {
    // Whole milliseconds, so `since`/`until` bounds made from it are exact.
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis())
        .unwrap()
}

fn ids(page: &JobPage) -> Vec<JobId> {
    page.jobs.iter().map(|r| r.job.id).collect()
}

/// Every page of `query`, following cursors: the ids in order, and the pages read.
async fn every_page(store: &dyn Store, mut query: JobQuery) -> (Vec<JobId>, usize) {
    let (mut all, mut pages) = (Vec::new(), 0);
    loop {
        let page = store.job_page(&query).await.unwrap();
        pages += 1;
        assert!(pages < 10_000, "the pages never end");
        assert!(page.jobs.len() <= query.page_size());
        all.extend(ids(&page));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return (all, pages),
        }
    }
}

/// A small history where each filter picks a known set:
/// - a: deploy by slack:alice, 50 min ago, succeeded, output "Deployed WEB-1"
/// - b: deploy by ssh:bob, 40 min ago, failed, error "Disk FULL on web-2"
/// - c: restart by slack:alice, 30 min ago, timed out
/// - d: restart by api:carol, 20 min ago, running, argument host=db-7
/// - e: echo by ssh:bob, 10 min ago, queued, argument text="Hello World"
/// - f: deploy by slack:alice, 5 min ago, failed, dead-lettered
struct Fixture {
    at: DateTime<Utc>,
    a: Job,
    b: Job,
    c: Job,
    d: Job,
    e: Job,
    f: Job,
}

async fn fixture(store: &Arc<dyn Store>, at: DateTime<Utc>) -> Fixture {
    let fx = Fixture {
        at,
        a: job(
            "deploy",
            ("slack", "alice"),
            &[("env", "prod")],
            minutes_ago(at, 50),
        ),
        b: job(
            "deploy",
            ("ssh", "bob"),
            &[("env", "staging")],
            minutes_ago(at, 40),
        ),
        c: job("restart", ("slack", "alice"), &[], minutes_ago(at, 30)),
        d: job(
            "restart",
            ("api", "carol"),
            &[("host", "db-7")],
            minutes_ago(at, 20),
        ),
        e: job(
            "echo",
            ("ssh", "bob"),
            &[("text", "Hello World")],
            minutes_ago(at, 10),
        ),
        f: job(
            "deploy",
            ("slack", "alice"),
            &[("env", "prod")],
            minutes_ago(at, 5),
        ),
    };
    record_all(
        store,
        &[&fx.a, &fx.b, &fx.c, &fx.d, &fx.e, &fx.f].map(Clone::clone),
    )
    .await;
    for j in [&fx.a, &fx.b, &fx.c, &fx.d] {
        store.mark_started(j.id, "w1", Utc::now()).await.unwrap();
    }
    let finish = [
        result(&fx.a, JobStatus::Succeeded, "Deployed WEB-1", None),
        result(&fx.b, JobStatus::Failed, "", Some("Disk FULL on web-2")),
        result(&fx.c, JobStatus::TimedOut, "", Some("ran past its timeout")),
    ];
    for r in &finish {
        store.finish_job(r).await.unwrap();
    }
    store.note_dead_letter(&fx.f).await.unwrap();
    store
        .finish_job(&result(
            &fx.f,
            JobStatus::Failed,
            "",
            Some("the broker gave up"),
        ))
        .await
        .unwrap();
    fx
}

fn q() -> JobQuery {
    JobQuery {
        limit: 50,
        ..Default::default()
    }
}

// ---- filters ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn each_filter_alone_and_combined_picks_exactly_its_jobs_newest_first() {
    let both = Both::start().await;
    let at = base();
    for (name, store) in &both.stores {
        let fx = fixture(store, at).await;
        let (a, b, c, d, e, f) = (fx.a.id, fx.b.id, fx.c.id, fx.d.id, fx.e.id, fx.f.id);
        let cases: Vec<(&str, JobQuery, Vec<JobId>)> = vec![
            ("no filter", q(), vec![f, e, d, c, b, a]),
            (
                "command",
                JobQuery {
                    command: Some("deploy".into()),
                    ..q()
                },
                vec![f, b, a],
            ),
            (
                "requester",
                JobQuery {
                    requester: Some("slack:alice".into()),
                    ..q()
                },
                vec![f, c, a],
            ),
            (
                "adapter",
                JobQuery {
                    adapter: Some("ssh".into()),
                    ..q()
                },
                vec![e, b],
            ),
            (
                "one status",
                JobQuery {
                    statuses: vec![JobStatus::Failed],
                    ..q()
                },
                vec![f, b],
            ),
            (
                "since",
                JobQuery {
                    since: Some(minutes_ago(fx.at, 20)),
                    ..q()
                },
                vec![f, e, d],
            ),
            (
                "until",
                JobQuery {
                    until: Some(minutes_ago(fx.at, 30)),
                    ..q()
                },
                vec![b, a],
            ),
            (
                "since and until",
                JobQuery {
                    since: Some(minutes_ago(fx.at, 40)),
                    until: Some(minutes_ago(fx.at, 10)),
                    ..q()
                },
                vec![d, c, b],
            ),
            (
                "dead-lettered",
                JobQuery {
                    dead_lettered: true,
                    ..q()
                },
                vec![f],
            ),
            (
                "command and status",
                JobQuery {
                    command: Some("deploy".into()),
                    statuses: vec![JobStatus::Failed],
                    ..q()
                },
                vec![f, b],
            ),
            (
                "command, requester and status",
                JobQuery {
                    command: Some("deploy".into()),
                    requester: Some("slack:alice".into()),
                    statuses: vec![JobStatus::Succeeded],
                    ..q()
                },
                vec![a],
            ),
            (
                "requester and adapter that disagree",
                JobQuery {
                    requester: Some("slack:alice".into()),
                    adapter: Some("ssh".into()),
                    ..q()
                },
                vec![],
            ),
            (
                "status and time range",
                JobQuery {
                    statuses: vec![JobStatus::Failed],
                    since: Some(minutes_ago(fx.at, 45)),
                    until: Some(minutes_ago(fx.at, 6)),
                    ..q()
                },
                vec![b],
            ),
            (
                "dead-lettered and requester",
                JobQuery {
                    dead_lettered: true,
                    requester: Some("slack:alice".into()),
                    ..q()
                },
                vec![f],
            ),
            (
                "dead-lettered and another requester",
                JobQuery {
                    dead_lettered: true,
                    requester: Some("ssh:bob".into()),
                    ..q()
                },
                vec![],
            ),
            (
                "text and command",
                JobQuery {
                    text: Some("web".into()),
                    command: Some("deploy".into()),
                    ..q()
                },
                vec![b, a],
            ),
            (
                "a command nobody ran",
                JobQuery {
                    command: Some("reboot".into()),
                    ..q()
                },
                vec![],
            ),
        ];
        for (case, query, expected) in cases {
            let page = store.job_page(&query).await.unwrap();
            assert_eq!(ids(&page), expected, "{name}: {case}");
            assert_eq!(page.next, None, "{name}: {case}: nothing older remains");
        }
    }
    both.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn several_statuses_match_any_of_them() {
    let both = Both::start().await;
    for (name, store) in &both.stores {
        let fx = fixture(store, base()).await;
        let query = |statuses: Vec<JobStatus>| JobQuery { statuses, ..q() };
        let page = store
            .job_page(&query(vec![JobStatus::Failed, JobStatus::TimedOut]))
            .await
            .unwrap();
        assert_eq!(ids(&page), vec![fx.f.id, fx.c.id, fx.b.id], "{name}");
        let page = store
            .job_page(&query(vec![
                JobStatus::Queued,
                JobStatus::Running,
                JobStatus::Cancelled,
            ]))
            .await
            .unwrap();
        assert_eq!(ids(&page), vec![fx.e.id, fx.d.id], "{name}");
        let with_command = JobQuery {
            command: Some("restart".into()),
            ..query(vec![JobStatus::Running, JobStatus::TimedOut])
        };
        let page = store.job_page(&with_command).await.unwrap();
        assert_eq!(ids(&page), vec![fx.d.id, fx.c.id], "{name}");
    }
    both.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_shows_under_its_current_status_only() {
    let both = Both::start().await;
    let statuses = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
    ];
    for (name, store) in &both.stores {
        let j = job("deploy", ("slack", "alice"), &[], base());
        let shown_under = || async {
            let mut under = Vec::new();
            for status in statuses {
                let query = JobQuery {
                    statuses: vec![status],
                    ..q()
                };
                if ids(&store.job_page(&query).await.unwrap()) == vec![j.id] {
                    under.push(status);
                }
            }
            under
        };
        store.record_job(&j).await.unwrap();
        assert_eq!(shown_under().await, vec![JobStatus::Queued], "{name}");
        store.mark_started(j.id, "w1", Utc::now()).await.unwrap();
        assert_eq!(shown_under().await, vec![JobStatus::Running], "{name}");
        store
            .finish_job(&result(&j, JobStatus::Succeeded, "ok", None))
            .await
            .unwrap();
        assert_eq!(shown_under().await, vec![JobStatus::Succeeded], "{name}");
        // A late start, a second result and the record written again change nothing.
        store.mark_started(j.id, "w2", Utc::now()).await.unwrap();
        store
            .finish_job(&result(&j, JobStatus::Failed, "", Some("late")))
            .await
            .unwrap();
        store.record_job(&j).await.unwrap();
        assert_eq!(shown_under().await, vec![JobStatus::Succeeded], "{name}");
    }
    both.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn text_is_found_in_arguments_output_and_error_whatever_the_case() {
    let both = Both::start().await;
    for (name, store) in &both.stores {
        let fx = fixture(store, base()).await;
        let text = |t: &str| JobQuery {
            text: Some(t.into()),
            ..q()
        };
        let cases: Vec<(&str, Vec<JobId>)> = vec![
            ("hello world", vec![fx.e.id]),
            ("DB-7", vec![fx.d.id]),
            ("deployed web", vec![fx.a.id]),
            ("disk full", vec![fx.b.id]),
            ("web-", vec![fx.b.id, fx.a.id]),
            ("PROD", vec![fx.f.id, fx.a.id]),
            ("gave up", vec![fx.f.id]),
            ("nowhere to be found", vec![]),
            // The command and the requester are filters of their own, not text.
            ("alice", vec![]),
        ];
        for (needle, expected) in cases {
            let page = store.job_page(&text(needle)).await.unwrap();
            assert_eq!(ids(&page), expected, "{name}: {needle:?}");
        }
    }
    both.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_lettered_jobs_are_those_noted_and_stay_found_under_their_status() {
    let both = Both::start().await;
    for (name, store) in &both.stores {
        let at = base();
        let dead = job("deploy", ("slack", "alice"), &[], minutes_ago(at, 3));
        let failed = job("deploy", ("slack", "alice"), &[], minutes_ago(at, 2));
        let unknown = job("deploy", ("slack", "mallory"), &[], minutes_ago(at, 1));
        record_all(store, &[dead.clone(), failed.clone()]).await;
        store.note_dead_letter(&dead).await.unwrap();
        // Noting a job twice, or one with no record, is harmless.
        store.note_dead_letter(&dead).await.unwrap();
        store.note_dead_letter(&unknown).await.unwrap();
        for j in [&dead, &failed] {
            store
                .finish_job(&result(j, JobStatus::Failed, "", Some("x")))
                .await
                .unwrap();
        }
        let only_dead = JobQuery {
            dead_lettered: true,
            ..q()
        };
        assert_eq!(
            ids(&store.job_page(&only_dead).await.unwrap()),
            vec![dead.id],
            "{name}"
        );
        let dead_and_failed = JobQuery {
            statuses: vec![JobStatus::Failed],
            command: Some("deploy".into()),
            ..only_dead.clone()
        };
        assert_eq!(
            ids(&store.job_page(&dead_and_failed).await.unwrap()),
            vec![dead.id],
            "{name}"
        );
        let failed_only = JobQuery {
            statuses: vec![JobStatus::Failed],
            ..q()
        };
        assert_eq!(
            ids(&store.job_page(&failed_only).await.unwrap()),
            vec![failed.id, dead.id],
            "{name}"
        );
    }
    both.stop().await;
}

// ---- paging -----------------------------------------------------------------------

/// 1,000 jobs in bursts sharing one millisecond each, recorded out of order: nine of 50,
/// and one of 550 (more than the Redis store reads of one millisecond at once).
fn bursts(at: DateTime<Utc>) -> Vec<Job> {
    let mut jobs = Vec::new();
    for burst in 0..10 {
        let ms = minutes_ago(at, 10 - burst);
        let size = if burst == 4 { 550 } else { 50 };
        let mut these: Vec<Job> = (0..size)
            .map(|i| {
                let command = if i % 3 == 0 { "deploy" } else { "echo" };
                job(command, ("ssh", "bob"), &[], ms)
            })
            .collect();
        if burst % 2 == 1 {
            these.reverse();
        }
        jobs.extend(these);
    }
    jobs
}

/// Newest first: by creation millisecond, then by id, both descending.
fn newest_first(jobs: &[Job]) -> Vec<JobId> {
    let mut order: Vec<(i64, JobId)> = jobs
        .iter()
        .map(|j| (j.created_at.timestamp_millis(), j.id))
        .collect();
    order.sort_unstable_by(|a, b| b.cmp(a));
    order.into_iter().map(|(_, id)| id).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_page_through_bursts_in_one_millisecond_each_job_once_newest_first() {
    let both = Both::start().await;
    let jobs = bursts(base());
    let expected = newest_first(&jobs);
    let deploys: Vec<Job> = jobs
        .iter()
        .filter(|j| j.command == "deploy")
        .cloned()
        .collect();
    for (name, store) in &both.stores {
        record_all(store, &jobs).await;
        for limit in [7, 100, MAX_PAGE] {
            let query = JobQuery { limit, ..q() };
            let (all, pages) = every_page(store.as_ref(), query).await;
            assert_eq!(all.len(), jobs.len(), "{name}, {limit} a page");
            assert_eq!(all, expected, "{name}, {limit} a page");
            assert_eq!(pages, jobs.len().div_ceil(limit), "{name}, {limit} a page");
        }
        // Through an index too, and with a filter the index does not imply.
        let query = JobQuery {
            command: Some("deploy".into()),
            limit: 9,
            ..q()
        };
        assert_eq!(
            every_page(store.as_ref(), query).await.0,
            newest_first(&deploys),
            "{name}"
        );
        let query = JobQuery {
            statuses: vec![JobStatus::Queued],
            adapter: Some("ssh".into()),
            limit: 13,
            ..q()
        };
        assert_eq!(
            every_page(store.as_ref(), query).await.0,
            expected,
            "{name}"
        );

        // A cursor is a position, not a job: it goes on from there after the job it
        // names has moved to another status.
        let first = store
            .job_page(&JobQuery {
                statuses: vec![JobStatus::Queued],
                limit: 10,
                ..q()
            })
            .await
            .unwrap();
        let last = first.jobs.last().unwrap().job.clone();
        store.mark_started(last.id, "w1", Utc::now()).await.unwrap();
        let rest = store
            .job_page(&JobQuery {
                statuses: vec![JobStatus::Queued],
                limit: 10,
                after: first.next,
                ..q()
            })
            .await
            .unwrap();
        assert_eq!(ids(&rest), expected[10..20], "{name}");
    }
    both.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_size_is_clamped_to_one_and_to_the_most_a_page_holds() {
    let both = Both::start().await;
    let jobs = bursts(base());
    for (name, store) in &both.stores {
        record_all(store, &jobs[..300]).await;
        let page = |limit| JobQuery { limit, ..q() };
        let one = store.job_page(&page(0)).await.unwrap();
        assert_eq!(one.jobs.len(), 1, "{name}");
        assert!(one.next.is_some(), "{name}");
        let most = store.job_page(&page(100_000)).await.unwrap();
        assert_eq!(most.jobs.len(), MAX_PAGE, "{name}");
    }
    both.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rare_match_past_the_scan_budget_is_reached_by_following_cursors() {
    let both = Both::start().await;
    let at = base();
    // 5,000 jobs over 5,000 seconds; the one from `api` is the oldest but ten.
    let mut jobs: Vec<Job> = (0..5_000)
        .map(|i| {
            job(
                "echo",
                ("ssh", "bob"),
                &[],
                at - chrono::Duration::seconds(i),
            )
        })
        .collect();
    let rare = job(
        "echo",
        ("api", "robot"),
        &[("text", "needle")],
        at - chrono::Duration::seconds(4_990) - chrono::Duration::milliseconds(500),
    );
    jobs.push(rare.clone());
    for (name, store) in &both.stores {
        record_all(store, &jobs).await;
        for query in [
            JobQuery {
                adapter: Some("api".into()),
                ..q()
            },
            JobQuery {
                text: Some("NEEDLE".into()),
                ..q()
            },
        ] {
            let first = store.job_page(&query).await.unwrap();
            if *name == "redis" {
                assert!(
                    first.jobs.is_empty(),
                    "{name}: the budget ends the first call"
                );
                assert_eq!(first.scanned, SCAN_BUDGET, "{name}");
                assert!(first.next.is_some(), "{name}: the caller may go on");
            }
            let (found, pages) = every_page(store.as_ref(), query).await;
            assert_eq!(found, vec![rare.id], "{name}");
            if *name == "redis" {
                assert_eq!(pages, jobs.len().div_ceil(SCAN_BUDGET), "{name}");
            }
        }
    }
    both.stop().await;
}

// ---- refusals -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_cursor_or_an_overlong_filter_is_a_clear_error() {
    let err: BadCursor = "page-2".parse::<JobCursor>().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not a job history cursor"), "{text}");
    assert!(text.contains("`next` of a page"), "{text}");
    let cursor = JobCursor::new(1_700_000_000_000, JobId::new());
    assert_eq!(cursor.to_string().parse::<JobCursor>(), Ok(cursor));

    let both = Both::start().await;
    for (name, store) in &both.stores {
        let long = "x".repeat(MAX_FILTER_CHARS + 1);
        for query in [
            JobQuery {
                text: Some(long.clone()),
                ..q()
            },
            JobQuery {
                command: Some(long.clone()),
                ..q()
            },
            JobQuery {
                requester: Some(long.clone()),
                ..q()
            },
            JobQuery {
                adapter: Some(long.clone()),
                ..q()
            },
        ] {
            let err = store.job_page(&query).await.unwrap_err();
            assert!(matches!(err, StoreError::BadQuery(_)), "{name}: {err}");
            let text = err.to_string();
            assert!(
                text.contains("201 characters long; at most 200"),
                "{name}: {text}"
            );
        }
    }
    both.stop().await;
}

// ---- Redis only -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn expired_records_are_skipped_and_leave_the_index() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let short = store_with(&redis, Duration::from_millis(800)).await;
    let at = base();
    // Recorded "now" with a short retention: the records expire, their entries stay
    // (the next write is the long-lived store's, which trims nothing this young).
    let fleeting: Vec<Job> = (0..3)
        .map(|_| job("deploy", ("slack", "alice"), &[], Utc::now()))
        .collect();
    for j in &fleeting {
        short.record_job(j).await.unwrap();
    }
    let lasting = job("deploy", ("slack", "alice"), &[], minutes_ago(at, 1));
    store.record_job(&lasting).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for query in [
        q(),
        JobQuery {
            command: Some("deploy".into()),
            ..q()
        },
    ] {
        let page = store.job_page(&query).await.unwrap();
        assert_eq!(ids(&page), vec![lasting.id]);
    }
    // Dropped on the way: the next call examines the lasting job alone.
    let again = store
        .job_page(&JobQuery {
            command: Some("deploy".into()),
            ..q()
        })
        .await
        .unwrap();
    assert_eq!((ids(&again), again.scanned), (vec![lasting.id], 1));
    drop((store, short));
    stop_redis(redis).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn indexes_expire_after_the_retention_and_hold_nothing_older() {
    let redis = start_redis().await;
    let retention = Duration::from_secs(3600);
    let store = store_with(&redis, retention).await;
    let at = base();
    let old = job(
        "deploy",
        ("ssh", "bob"),
        &[],
        at - chrono::Duration::hours(2),
    );
    let new = job("deploy", ("ssh", "bob"), &[], at);
    let dead = job("deploy", ("ssh", "bob"), &[], at);
    let waiting = job("deploy", ("ssh", "bob"), &[], at);
    for j in [&old, &new, &dead, &waiting] {
        store.record_job(j).await.unwrap();
    }
    store.mark_started(new.id, "w1", Utc::now()).await.unwrap();
    store.note_dead_letter(&dead).await.unwrap();
    store
        .finish_job(&result(&dead, JobStatus::Failed, "", Some("gave up")))
        .await
        .unwrap();

    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for key in [
        "octobox:jobs:by-command:deploy",
        "octobox:jobs:by-requester:ssh:bob",
        "octobox:jobs:by-status:queued",
        "octobox:jobs:by-status:running",
        "octobox:jobs:by-status:failed",
        "octobox:jobs:dead-lettered",
    ] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{key}: {ttl} ms");
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(
            !members.contains(&old.id.to_string()),
            "{key} holds a job older than the retention"
        );
    }
    drop(store);
    stop_redis(redis).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_recorded_before_the_indexes_are_found_through_the_history_only() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let at = base();
    let before = job("deploy", ("ssh", "bob"), &[], minutes_ago(at, 2));
    let after = job("deploy", ("ssh", "bob"), &[], minutes_ago(at, 1));
    // As a version without the indexes wrote it: the record and the history entry.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(format!("octobox:job:{}", before.id))
        .arg("job")
        .arg(serde_json::to_string(&before).unwrap())
        .arg("status")
        .arg("queued")
        .cmd("ZADD")
        .arg("octobox:jobs")
        .arg(before.created_at.timestamp_millis())
        .arg(before.id.to_string())
        .query_async(&mut con)
        .await
        .unwrap();
    store.record_job(&after).await.unwrap();

    let by_history = JobQuery {
        adapter: Some("ssh".into()),
        ..q()
    };
    let page = store.job_page(&by_history).await.unwrap();
    assert_eq!(ids(&page), vec![after.id, before.id]);
    let by_index = JobQuery {
        command: Some("deploy".into()),
        ..q()
    };
    assert_eq!(
        ids(&store.job_page(&by_index).await.unwrap()),
        vec![after.id]
    );
    // Finished now, it enters its final status's index.
    store
        .finish_job(&result(&before, JobStatus::Succeeded, "ok", None))
        .await
        .unwrap();
    let succeeded = JobQuery {
        statuses: vec![JobStatus::Succeeded],
        ..q()
    };
    assert_eq!(
        ids(&store.job_page(&succeeded).await.unwrap()),
        vec![before.id]
    );
    drop(store);
    stop_redis(redis).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_most_selective_index_is_walked() {
    let redis = start_redis().await;
    let store: Arc<dyn Store> = Arc::new(store_on(&redis).await);
    let at = base();
    // 600 deploys by bob and 3 by carol, all queued: carol's index is the smallest.
    let mut jobs: Vec<Job> = (0..600)
        .map(|i| {
            job(
                "deploy",
                ("ssh", "bob"),
                &[],
                at - chrono::Duration::seconds(i),
            )
        })
        .collect();
    let carol: Vec<Job> = (0..3)
        .map(|i| {
            job(
                "deploy",
                ("ssh", "carol"),
                &[],
                at - chrono::Duration::seconds(1_000 + i),
            )
        })
        .collect();
    jobs.extend(carol.iter().cloned());
    record_all(&store, &jobs).await;
    let page = store
        .job_page(&JobQuery {
            command: Some("deploy".into()),
            requester: Some("ssh:carol".into()),
            statuses: vec![JobStatus::Queued],
            ..q()
        })
        .await
        .unwrap();
    assert_eq!(ids(&page), carol.iter().map(|j| j.id).collect::<Vec<_>>());
    assert_eq!(
        page.scanned, 3,
        "carol's index is walked, not the command's"
    );
    let none = store
        .job_page(&JobQuery {
            command: Some("deploy".into()),
            requester: Some("ssh:nobody".into()),
            ..q()
        })
        .await
        .unwrap();
    assert_eq!((none.jobs.len(), none.scanned, none.next), (0, 0, None));
    drop(store);
    stop_redis(redis).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_index_entry_that_is_no_job_is_passed_over_and_dropped() {
    let redis = start_redis().await;
    let store = store_on(&redis).await;
    let at = base();
    let (older, newer) = (
        job("deploy", ("ssh", "bob"), &[], minutes_ago(at, 2)),
        job("deploy", ("ssh", "bob"), &[], minutes_ago(at, 1)),
    );
    store.record_job(&older).await.unwrap();
    store.record_job(&newer).await.unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let between = minutes_ago(at, 1).timestamp_millis() - 30_000;
    let _: () = redis::cmd("ZADD")
        .arg("octobox:jobs")
        .arg(between)
        .arg("not-a-job")
        .query_async(&mut con)
        .await
        .unwrap();
    for limit in [1, 50] {
        let (all, _) = every_page(&store, JobQuery { limit, ..q() }).await;
        assert_eq!(all, vec![newer.id, older.id], "{limit} a page");
    }
    let left: Option<f64> = redis::cmd("ZSCORE")
        .arg("octobox:jobs")
        .arg("not-a-job")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(left, None);
    drop(store);
    stop_redis(redis).await;
}
