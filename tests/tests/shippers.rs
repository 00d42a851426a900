//! Shippers end to end, in process: records from a local paging HTTP source into each
//! kind of sink, with the checkpoint in a private Redis. Every record must arrive once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use config::{Config, Secret, ShipperConfig, StoreConfig};
use jobs::redis::RedisStore;
use octobox_tests::scheduler::ChannelRecorder;
use octobox_tests::services::Redis;
use octobox_tests::shipping::{
    hostile_source, id_counts, read_json_lines, sample_records, Catcher, Collector, EventSource,
    Hostility, Moto,
};
use scheduler::Shipper;

const TOKEN: &str = "s3cret-token";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

/// A shipper of 1-hour windows from `t0()`, reading its token from the environment.
fn shipper(source: &str, sink: &str) -> ShipperConfig {
    shipper_with(source, sink, "Authorization = \"Bearer ${HALO_TOKEN}\"")
}

/// As [`shipper`], with the source's `headers` as given (their values may name
/// `${HALO_TOKEN}`).
fn shipper_with(source: &str, sink: &str, headers: &str) -> ShipperConfig {
    let text = format!(
        r#"
[[shipper]]
name = "events"
window = "1h"
first_window = "2026-11-01T00:00:00Z"
source = {{ url = "{source}", page_size = 7, headers = {{ {headers} }} }}
sink = {sink}
"#
    );
    let config = Config::parse("test.toml", &text, |n| {
        (n == "HALO_TOKEN").then(|| TOKEN.into())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    config.shippers[0].clone()
}

/// `Shipper::new` over a private Redis, which keeps the checkpoint (and would hold the
/// audit trail, which an HTTP source never reads).
async fn shipper_on(config: ShipperConfig, redis: &Redis) -> Shipper {
    let store = Arc::new(
        RedisStore::connect(&StoreConfig::new(Secret::new(redis.url())))
            .await
            .unwrap(),
    );
    Shipper::new(config, store.clone(), store)
}

/// 3 windows of 1 hour, 100 records each side of nothing: 300 records.
fn three_hours() -> (Vec<serde_json::Value>, DateTime<Utc>) {
    let records = sample_records(t0(), Duration::from_secs(3 * 3600), 300);
    (
        records,
        t0() + chrono::Duration::hours(3) + chrono::Duration::minutes(5),
    )
}

fn assert_each_once(records: &[serde_json::Value], want: u64) {
    let counts = id_counts(records);
    assert_eq!(counts.len() as u64, want, "every record arrived");
    assert!(
        counts.values().all(|&c| c == 1),
        "a record arrived twice: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shipper_writes_each_window_to_its_own_gzip_file_with_every_record_once() {
    let redis = Redis::start();
    let (records, now) = three_hours();
    let source = EventSource::start(records, TOKEN, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = format!(
        "{{ kind = \"files\", dir = \"{}\", gzip = true }}",
        dir.path().display()
    );
    let shipper = shipper_on(shipper(&source.url, &sink), &redis).await;

    let report = shipper.run(now).await.unwrap();
    assert_eq!((report.windows, report.records), (3, 300), "{report}");
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "20261101T000000Z-20261101T010000Z.jsonl.gz",
            "20261101T010000Z-20261101T020000Z.jsonl.gz",
            "20261101T020000Z-20261101T030000Z.jsonl.gz"
        ]
    );
    let all: Vec<_> = files
        .iter()
        .flat_map(|f| read_json_lines(&std::fs::read(f).unwrap()))
        .collect();
    assert_each_once(&all, 300);
    assert_eq!(
        report.bytes,
        files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum::<u64>()
    );

    // Nothing new has ended: a second run ships nothing and leaves the files alone.
    let again = shipper.run(now).await.unwrap();
    assert_eq!((again.windows, again.records), (0, 0), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shipper_retries_a_failing_collector_and_delivers_every_record_once() {
    let redis = Redis::start();
    let (records, now) = three_hours();
    let source = EventSource::start(records, TOKEN, Duration::ZERO).await;
    // Every 4th request answers 503, the one after 429.
    let collector = Collector::start(4).await;
    let sink = format!(
        "{{ kind = \"http\", url = \"{}\", batch = 5 }}",
        collector.url
    );
    let shipper = shipper_on(shipper(&source.url, &sink), &redis).await;

    let report = shipper.run(now).await.unwrap();
    assert_eq!((report.windows, report.records), (3, 300), "{report}");
    assert!(report.retries > 10, "the failures were retried: {report}");
    assert_each_once(&collector.records(), 300);
    assert!(
        collector.batches().values().all(|&n| n == 1),
        "no batch accepted twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shipper_puts_one_object_per_window_into_s3_compatible_storage() {
    let redis = Redis::start();
    let moto = Moto::start().await;
    moto.create_bucket("exports").await;
    let (records, now) = three_hours();
    let source = EventSource::start(records, TOKEN, Duration::ZERO).await;
    let sink = format!(
        "{{ kind = \"s3\", endpoint = \"{}\", bucket = \"exports\", prefix = \"halo/\", access_key = \"test\", secret_key = \"test\" }}",
        moto.endpoint
    );
    let shipper = shipper_on(shipper(&source.url, &sink), &redis).await;

    let report = shipper.run(now).await.unwrap();
    assert_eq!((report.windows, report.records), (3, 300), "{report}");
    let objects = moto.objects("exports").await;
    assert_eq!(
        objects.keys().collect::<Vec<_>>(),
        [
            "halo/events/20261101T000000Z-20261101T010000Z.jsonl",
            "halo/events/20261101T010000Z-20261101T020000Z.jsonl",
            "halo/events/20261101T020000Z-20261101T030000Z.jsonl"
        ]
    );
    let all: Vec<_> = objects.values().flat_map(|b| read_json_lines(b)).collect();
    assert_each_once(&all, 300);
}

#[tokio::test(flavor = "multi_thread")]
async fn shipper_killed_mid_window_resumes_without_gap_or_duplicate() {
    let redis = Redis::start();
    let (records, now) = three_hours();
    let source = EventSource::start(records, TOKEN, Duration::ZERO).await;
    // 15 pages per window: the source goes quiet in the middle of the second window,
    // and the shipper is killed there, waiting for page 23.
    source.stall_after(22);
    let collector = Collector::start(0).await;
    let sink = format!(
        "{{ kind = \"http\", url = \"{}\", batch = 7 }}",
        collector.url
    );
    let config = shipper(&source.url, &sink);

    let first = shipper_on(config.clone(), &redis).await;
    let run = tokio::spawn(async move { first.run(now).await });
    while source.pages_served() < 22 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    let before = collector.records().len();
    assert!(
        before > 100 && before < 300,
        "killed half way: {before} records in"
    );

    source.release();
    let second = shipper_on(config, &redis).await;
    let report = second.run(now).await.unwrap();
    assert_eq!(report.windows, 2, "resumed in the second window: {report}");
    assert_each_once(&collector.records(), 300);
}

/// An embedded bot's configuration: schedule `export` (run by hand) ships `source`'s
/// hours from `first` on into files under `dir`, its result to `slack:#exports`.
fn export_config(source: &EventSource, dir: &std::path::Path, first: DateTime<Utc>) -> Config {
    let text = format!(
        r#"
[acl.groups]
admins = ["console:root"]

[[schedule]]
name = "export"
cron = "0 0 1 1 *"
ship = "events"
deliver = "slack:#exports"

[[shipper]]
name = "events"
window = "1h"
first_window = "{first}"
source = {{ url = "{url}", page_size = 7, headers = {{ Authorization = "Bearer ${{HALO_TOKEN}}" }} }}
sink = {{ kind = "files", dir = "{dir}" }}
"#,
        first = first.to_rfc3339(),
        url = source.url,
        dir = dir.display()
    );
    Config::parse("test.toml", &text, |n| {
        (n == "HALO_TOKEN").then(|| TOKEN.into())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn run_schedule_now_ships_and_delivers_what_moved() {
    let hour = Duration::from_secs(3600);
    let this_hour = scheduler::shipper::Window::containing(Utc::now(), hour).start;
    let first = this_hour - chrono::Duration::hours(3);
    let source =
        EventSource::start(sample_records(first, 3 * hour, 90), TOKEN, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = export_config(&source, dir.path(), first);
    let bot = bot::bot::Bot::start(&config).await.unwrap();
    let (recorder, mut replies) = ChannelRecorder::new();
    bot.sinks.register("slack", recorder);

    let asked = bot
        .router
        .handle(&bot::router::Request {
            text: "run schedule export now".into(),
            origin: jobs::Origin::new("console", "root"),
        })
        .await;
    assert_eq!(
        asked.text,
        "asked the scheduler to run export now; its result goes to slack:#exports"
    );
    let (origin, reply) = tokio::time::timeout(Duration::from_secs(30), replies.recv())
        .await
        .expect("the shipper's result is delivered")
        .unwrap();
    assert_eq!(origin.channel.as_deref(), Some("#exports"));
    assert!(reply.text.contains("(ship) succeeded"), "{}", reply.text);
    assert!(
        reply.text.contains("shipped 3 windows: 90 records"),
        "{}",
        reply.text
    );
    let shipped: Vec<_> = std::fs::read_dir(dir.path().join("events"))
        .unwrap()
        .flat_map(|f| read_json_lines(&std::fs::read(f.unwrap().path()).unwrap()))
        .collect();
    assert_each_once(&shipped, 90);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_bot_waits_for_its_shipper_run_to_store_its_result() {
    let hour = Duration::from_secs(3600);
    let this_hour = scheduler::shipper::Window::containing(Utc::now(), hour).start;
    let first = this_hour - chrono::Duration::hours(3);
    // 13 pages, 200 ms each: the run is under way when the bot is told to stop.
    let source = EventSource::start(
        sample_records(first, 3 * hour, 90),
        TOKEN,
        Duration::from_millis(200),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let bot = bot::bot::Bot::start(&export_config(&source, dir.path(), first))
        .await
        .unwrap();
    let store = bot.router.services().store.clone();
    let asked = bot
        .router
        .handle(&bot::router::Request {
            text: "run schedule export now".into(),
            origin: jobs::Origin::new("console", "root"),
        })
        .await;
    assert_eq!(asked.outcome, bot::router::Outcome::Done, "{}", asked.text);
    let running = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let jobs = store.recent_jobs(1).await.unwrap();
            match jobs.first() {
                Some(r) if r.status == jobs::JobStatus::Running => break r.job.id,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("the shipper job starts");

    bot.stop().await;
    let record = store.job(running).await.unwrap().expect("the job's record");
    assert_eq!(record.status, jobs::JobStatus::Succeeded, "{record:?}");
    let shipped: Vec<_> = std::fs::read_dir(dir.path().join("events"))
        .unwrap()
        .flat_map(|f| read_json_lines(&std::fs::read(f.unwrap().path()).unwrap()))
        .collect();
    assert_each_once(&shipped, 90);
}

/// A shipper from `source` into files in `dir`, sending the API key a source wants.
fn keyed_shipper(source: &str, dir: &std::path::Path) -> ShipperConfig {
    let sink = format!("{{ kind = \"files\", dir = \"{}\" }}", dir.display());
    shipper_with(source, &sink, "X-Api-Key = \"${HALO_TOKEN}\"")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_cannot_send_its_headers_to_another_origin_by_link_or_redirect() {
    let redis = Redis::start();
    let now = t0() + chrono::Duration::hours(1) + chrono::Duration::minutes(5);
    for hostility in [Hostility::LinksElsewhere, Hostility::RedirectsElsewhere] {
        let catcher = Catcher::start().await;
        let source = hostile_source(hostility, &catcher.url).await;
        let dir = tempfile::tempdir().unwrap();
        let shipper = shipper_on(keyed_shipper(&source, dir.path()), &redis).await;
        let error = shipper.run(now).await.unwrap_err().to_string();
        eprintln!("{hostility:?}: {error}");
        let leaked: Vec<_> = catcher
            .requests()
            .into_iter()
            .filter(|h| h.get("x-api-key").is_some())
            .collect();
        assert!(
            leaked.is_empty(),
            "{hostility:?}: the key went elsewhere: {leaked:?}"
        );
        assert!(
            !error.contains(TOKEN),
            "{hostility:?}: the error shows the key: {error}"
        );
        match hostility {
            Hostility::LinksElsewhere => {
                assert!(error.contains("not followed"), "{error}");
                assert!(catcher.requests().is_empty(), "the link was followed");
            }
            _ => assert!(error.contains("302"), "{error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_past_the_size_limit_is_refused_not_buffered() {
    let redis = Redis::start();
    let now = t0() + chrono::Duration::hours(1) + chrono::Duration::minutes(5);
    let huge = scheduler::PAGE_MAX + 1024 * 1024;
    let source = hostile_source(Hostility::Huge(huge), "").await;
    let dir = tempfile::tempdir().unwrap();
    let shipper = shipper_on(keyed_shipper(&source, dir.path()), &redis).await;
    let error = shipper.run(now).await.unwrap_err().to_string();
    assert!(error.contains("is larger than 32 MiB"), "{error}");
}

/// An embedded bot whose schedule `audit-export` (run by hand) ships the bot's own audit
/// trail in 1-second windows from `first` into files under `dir`, two entries a page,
/// its result to `slack:#exports`. `alice` may log in with a secret token.
fn audit_export_config(dir: &std::path::Path, first: DateTime<Utc>) -> Config {
    let text = format!(
        r#"
[acl.groups]
admins = ["console:root"]

[[command]]
pattern = "login {{text:name}} with {{token:secret}}"
help = "Log in with a token"
native = "echo"
allow = ["user:console:alice"]

[[schedule]]
name = "audit-export"
cron = "0 0 1 1 *"
ship = "audit"
deliver = "slack:#exports"

[[shipper]]
name = "audit"
window = "1s"
first_window = "{first}"
source = {{ kind = "audit", page_size = 2 }}
sink = {{ kind = "files", dir = "{dir}" }}
"#,
        first = first.to_rfc3339(),
        dir = dir.display()
    );
    Config::parse("test.toml", &text, |_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// Every shipped file under `dir`, by name, with its bytes.
fn shipped_files(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|f| {
            let path = f.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_trail_ships_masked_as_json_lines_and_a_window_shipped_again_is_the_same_file() {
    let second = Duration::from_secs(1);
    let first = scheduler::shipper::Window::containing(Utc::now(), second).start;
    let dir = tempfile::tempdir().unwrap();
    let config = audit_export_config(dir.path(), first);
    let bot = bot::bot::Bot::start(&config).await.unwrap();
    let store = bot.router.services().store.clone();
    let (recorder, mut replies) = ChannelRecorder::new();
    bot.sinks.register("slack", recorder.clone());
    bot.sinks.register("console", recorder);
    let ask = |text: &str, user: &str| {
        let request = bot::router::Request {
            text: text.into(),
            origin: jobs::Origin::new("console", user),
        };
        let router = bot.router.clone();
        async move { router.handle(&request).await }
    };

    ask("ping", "alice").await;
    let login = ask("login alice with hunter2", "alice").await;
    assert_eq!(
        login.outcome,
        bot::router::Outcome::Queued,
        "{}",
        login.text
    );
    let (origin, _) = tokio::time::timeout(Duration::from_secs(30), replies.recv())
        .await
        .expect("the login job's reply")
        .unwrap();
    assert_eq!(origin.identity(), "console:alice");
    // The job's outcome is appended as its reply goes out.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let now = Utc::now() + chrono::Duration::seconds(1);
            let trail = store.audit(first, now, 1000).await.unwrap();
            if trail.iter().any(|e| e.kind == jobs::AuditKind::Outcome) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the login job's outcome is in the trail");
    ask("reload", "alice").await;
    ask("frobnicate", "alice").await;

    // Once the window of the last request has ended, an admin runs the export.
    let last = scheduler::shipper::Window::containing(Utc::now(), second);
    tokio::time::sleep(
        (last.end - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(50),
    )
    .await;
    let asked = ask("run schedule audit-export now", "root").await;
    assert_eq!(asked.outcome, bot::router::Outcome::Done, "{}", asked.text);
    let (origin, reply) = tokio::time::timeout(Duration::from_secs(30), replies.recv())
        .await
        .expect("the export's result is delivered")
        .unwrap();
    assert_eq!(origin.channel.as_deref(), Some("#exports"));
    assert!(reply.text.contains("(ship) succeeded"), "{}", reply.text);

    // One file per 1-second window, JSON lines of entries: alice's, once each, in
    // order, the secret masked.
    let files = shipped_files(&dir.path().join("audit"));
    let windows_ended = (last.end - first).num_seconds() as usize;
    assert!(files.len() >= windows_ended, "{:?}", files.keys());
    for (name, bytes) in &files {
        assert!(name.ends_with(".jsonl"), "{name}");
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains("hunter2"), "{name} shows the secret: {text}");
    }
    let entries: Vec<jobs::AuditEntry> = files
        .values()
        .flat_map(|bytes| read_json_lines(bytes))
        .map(|line| serde_json::from_value(line).expect("each line is an audit entry"))
        .collect();
    let alices: Vec<_> = entries
        .iter()
        .filter(|e| e.identity == "console:alice")
        .map(|e| {
            (
                e.kind.as_str(),
                e.text.as_str(),
                e.decision.as_str(),
                e.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        alices,
        [
            ("request", "ping", "allowed", "answered"),
            ("request", "login alice with ***", "allowed", "queued"),
            ("outcome", "login with", "-", "succeeded"),
            ("request", "reload", "refused", "refused"),
            ("request", "frobnicate", "-", "unknown"),
        ]
    );

    // The same windows shipped again (a checkpoint lost) write the same files once.
    let again = Shipper::new(
        config.shippers[0].clone(),
        Arc::new(jobs::memory::MemoryScheduleStore::new()),
        store,
    );
    let report = again.run(last.end).await.unwrap();
    assert_eq!(report.windows as usize, windows_ended, "{report}");
    let files_again = shipped_files(&dir.path().join("audit"));
    for (name, bytes) in &files {
        assert_eq!(files_again.get(name), Some(bytes), "{name} changed");
    }
    assert_eq!(files_again.len(), files.len());
    bot.stop().await;
}

/// `count` audit entries appended to `store` at once, by as many tasks, `request <i>`
/// from `first` on: Redis gives many of them the same millisecond.
async fn append_at_once(store: &Arc<RedisStore>, first: usize, count: usize) {
    let mut appends = tokio::task::JoinSet::new();
    for i in first..first + count {
        let store = store.clone();
        appends.spawn(async move {
            let origin = jobs::Origin::new("ssh", "alice");
            let text = format!("request {i}");
            let entry = jobs::AuditEntry::new(jobs::AuditKind::Request, &origin, &text, "queued");
            jobs::Store::append_audit(store.as_ref(), &entry, Duration::from_secs(3600))
                .await
                .unwrap();
        });
    }
    while let Some(done) = appends.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_shipper_over_redis_ships_each_entry_once_in_the_window_it_was_appended() {
    let redis = Redis::start();
    let store = Arc::new(
        RedisStore::connect(&StoreConfig::new(Secret::new(redis.url())))
            .await
            .unwrap(),
    );
    let second = Duration::from_secs(1);
    // The first 150 are appended well within a second, the next 150 in a later one.
    let mut first = scheduler::shipper::Window::containing(Utc::now(), second);
    if first.end - Utc::now() < chrono::Duration::milliseconds(500) {
        tokio::time::sleep((first.end - Utc::now()).to_std().unwrap_or_default()).await;
        first = scheduler::shipper::Window::containing(Utc::now(), second);
    }
    append_at_once(&store, 0, 150).await;
    assert!(
        Utc::now() < first.end,
        "the first 150 took under half a second"
    );
    tokio::time::sleep((first.end - Utc::now()).to_std().unwrap_or_default()).await;
    append_at_once(&store, 150, 150).await;
    let last = scheduler::shipper::Window::containing(Utc::now(), second);
    let now = last.end;
    tokio::time::sleep((now - Utc::now()).to_std().unwrap_or_default()).await;

    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[shipper]]\nname = \"audit\"\nwindow = \"1s\"\nfirst_window = \"{}\"\nsource = {{ kind = \"audit\", page_size = 7 }}\nsink = {{ kind = \"files\", dir = \"{}\" }}\n",
        first.start.to_rfc3339(),
        dir.path().display()
    );
    let config = Config::parse("test.toml", &text, |_| None).unwrap_or_else(|e| panic!("{e}"));
    let shipper = Shipper::new(config.shippers[0].clone(), store.clone(), store.clone());
    let report = shipper.run(now).await.unwrap();
    assert_eq!(report.records, 300, "{report}");
    assert!(report.pages >= 300 / 7, "read 7 at a time: {report}");

    // Each entry once, in the file of the second it was appended in.
    let files = shipped_files(&dir.path().join("audit"));
    let by_file: Vec<Vec<usize>> = files
        .values()
        .map(|bytes| {
            read_json_lines(bytes)
                .iter()
                .map(|e| {
                    e["text"].as_str().unwrap()["request ".len()..]
                        .parse()
                        .unwrap()
                })
                .collect()
        })
        .collect();
    let mut all: Vec<usize> = by_file.concat();
    all.sort_unstable();
    assert_eq!(all, (0..300).collect::<Vec<_>>());
    let (in_first, later) = by_file.split_first().unwrap();
    assert!(
        in_first.len() == 150 && later.concat().iter().all(|&i| i >= 150),
        "entries in the window of their second: {by_file:?}"
    );

    // Shipped again, the checkpoint lost: the same files, byte for byte.
    let fresh_checkpoints = Arc::new(jobs::memory::MemoryScheduleStore::new());
    let again = Shipper::new(config.shippers[0].clone(), fresh_checkpoints, store);
    assert_eq!(again.run(now).await.unwrap().records, 300);
    assert_eq!(shipped_files(&dir.path().join("audit")), files);
}
