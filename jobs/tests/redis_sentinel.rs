//! `RedisStore` through Redis Sentinel, against real processes: a primary, a replica and
//! three sentinels (`test_services::SentinelGroup`). The primary is killed or demoted
//! under a running store, which follows the promotion without being made again; what a
//! replica acknowledged (`min_replicas`) is still there afterwards, and a write no
//! replica acknowledges fails, naming why, instead of hanging.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use config::{Secret, SentinelAddress, SentinelsConfig, StoreConfig, StoreServer};
use jobs::redis::RedisStore;
use jobs::{
    Fire, FireKind, Job, JobResult, JobStatus, Origin, Output, ScheduleStore, Store, StoreError,
    Task,
};
use test_services::sentinel::{Passwords, MASTER_NAME};
use test_services::SentinelGroup;
use tracing::instrument::WithSubscriber;

// ---- setup -------------------------------------------------------------------------

/// The harness starts and stops servers with blocking calls; keep them off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

async fn start_group() -> SentinelGroup {
    blocking(|| SentinelGroup::start(1)).await
}

/// `[store]` through the group's sentinels, with the defaults (`min_replicas = 1`).
fn through_sentinels(group: &SentinelGroup) -> StoreConfig {
    let sentinels = group
        .sentinel_addresses()
        .iter()
        .map(|a| {
            let (host, port) = a.rsplit_once(':').unwrap();
            SentinelAddress {
                host: host.to_string(),
                port: port.parse().unwrap(),
            }
        })
        .collect();
    StoreConfig::at(StoreServer::Sentinels(SentinelsConfig {
        sentinels,
        master_name: MASTER_NAME.to_string(),
        password: None,
        sentinel_password: None,
        db: 0,
    }))
}

async fn connect(config: &StoreConfig) -> RedisStore {
    RedisStore::connect(config)
        .await
        .expect("the store finds the primary through the sentinels")
}

fn job() -> Job {
    Job::new(
        "echo",
        BTreeMap::new(),
        Task::native("echo"),
        Origin::new("console", "alice"),
        Duration::from_secs(5),
    )
}

fn succeeded(job: &Job) -> JobResult {
    JobResult {
        id: job.id,
        status: JobStatus::Succeeded,
        output: Output::text(format!("done: {}", job.id)),
        worker: "w1".into(),
        started_at: Utc::now(),
        finished_at: Utc::now(),
        error: None,
    }
}

/// How many `WAIT`s the node on `port` has answered (`INFO commandstats`).
fn waits_answered(group: &SentinelGroup, port: u16) -> u64 {
    let node = std::iter::once(&group.primary)
        .chain(&group.replicas)
        .find(|n| n.port == port)
        .expect("a node of the group");
    let stats = node.cli(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_wait:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
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
async fn a_killed_primary_is_followed_and_what_a_replica_acknowledged_survives_it() {
    let mut group = start_group().await;
    let config = through_sentinels(&group);
    assert_eq!(
        config.min_replicas, 1,
        "with sentinels, a replica must acknowledge"
    );
    let acked = connect(&config).await;
    let unacked = connect(&StoreConfig {
        min_replicas: 0,
        ..config.clone()
    })
    .await;
    assert!(
        acked
            .describe()
            .contains("primary \"octobox\" of sentinels 127.0.0.1:"),
        "{}",
        acked.describe()
    );

    // Jobs recorded and finished with a replica's acknowledgement, as a worker would
    // before acknowledging each delivery.
    let done: Vec<Job> = (0..20).map(|_| job()).collect();
    for j in &done {
        acked.record_job(j).await.unwrap();
        acked.finish_job(&succeeded(j)).await.unwrap();
    }

    let old = group.primary.port;
    let killed = Instant::now();
    let group = blocking(move || {
        group.primary.kill();
        group
    })
    .await;

    // The same store writes again once the sentinels have promoted the replica.
    let after = job();
    unacked
        .record_job(&after)
        .await
        .expect("a write succeeds once the store has found the new primary");
    let followed = killed.elapsed();
    eprintln!("kill to the first write on the new primary: {followed:?}");
    assert!(followed < Duration::from_secs(20), "{followed:?}");
    let (mut group, promoted) = blocking(move || {
        let promoted = group.wait_for_new_primary(old, Duration::from_secs(5));
        (group, promoted)
    })
    .await;
    assert_eq!(promoted, group.replicas[0].port);

    // Everything a replica acknowledged before the kill is there.
    for j in &done {
        let record = acked
            .job(j.id)
            .await
            .unwrap()
            .expect("an acknowledged job survives");
        assert_eq!(record.status, JobStatus::Succeeded, "{}", j.id);
        assert_eq!(record.result.unwrap().output, succeeded(j).output);
    }

    // The promoted primary has no replica yet: there is none to wait for, so a result
    // that asks for one goes on at once (writes are on fewer machines for a while)
    // rather than failing every job until a replica returns.
    let asked = Instant::now();
    acked.finish_job(&succeeded(&after)).await.unwrap();
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");

    // The old primary comes back empty; the sentinels make it a replica of the new one,
    // and the same store's writes wait for it again.
    group = blocking(move || {
        group.primary.start_again();
        group
    })
    .await;
    let restarted = Instant::now();
    let waits = waits_answered(&group, promoted);
    let mut tries = 0;
    loop {
        tries += 1;
        let next = job();
        acked.record_job(&next).await.unwrap();
        acked.finish_job(&succeeded(&next)).await.unwrap();
        if waits_answered(&group, promoted) > waits {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(40),
            "writes did not wait for the returned replica within 40s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "old primary back to writes that wait for it: {:?} ({tries} tries)",
        restarted.elapsed()
    );
    assert!(waits_answered(&group, promoted) > 0);
    let record = acked.job(after.id).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_asked_of_the_sentinels_moves_the_store_while_the_old_primary_lives_on() {
    let group = start_group().await;
    let store = connect(&through_sentinels(&group)).await;
    let before = job();
    store.record_job(&before).await.unwrap();

    // A failover asked for by hand: the old primary lives on, as a replica.
    let (old, sentinel) = (group.primary.port, group.sentinels[0].port);
    let group = blocking(move || {
        let out = std::process::Command::new("redis-cli")
            .args([
                "-p",
                &sentinel.to_string(),
                "SENTINEL",
                "FAILOVER",
                MASTER_NAME,
            ])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("OK"),
            "{out:?}"
        );
        let new = group.wait_for_new_primary(old, Duration::from_secs(30));
        group.wait_for_replica(old, Duration::from_secs(30));
        assert_eq!(new, group.replicas[0].port);
        group
    })
    .await;

    // The sentinels closed the store's connections to the old primary as they demoted
    // it: the store asks them again and moves.
    let asked = Instant::now();
    let after = job();
    let logs = Logs::default();
    let write = async {
        store.record_job(&after).await.unwrap();
        store.finish_job(&succeeded(&after)).await.unwrap();
    };
    write.with_subscriber(logs.dispatch()).await;
    eprintln!(
        "demotion to the next acknowledged write: {:?}",
        asked.elapsed()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?}",
        asked.elapsed()
    );
    let logs = logs.text();
    assert!(logs.contains("the primary moved"), "{logs}");
    assert!(
        logs.contains(&format!("from=127.0.0.1:{old} to=127.0.0.1:")),
        "{logs}"
    );

    let new = group.replicas[0].port;
    let key = format!("octobox:job:{}", after.id);
    let on_new = group.replicas[0].cli(&["HGET", &key, "status"]);
    assert_eq!(
        on_new.trim(),
        "succeeded",
        "the write went to the new primary {new}"
    );
    let record = store.job(before.id).await.unwrap().unwrap();
    assert_eq!(record.job.id, before.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_demoted_behind_the_stores_back_answers_readonly_and_the_store_moves() {
    let group = start_group().await;
    let store = connect(&through_sentinels(&group)).await;
    let before = job();
    store.record_job(&before).await.unwrap();

    // An operator swaps the roles by hand and points the sentinels at the new primary.
    // Nobody closes the store's connections to the old one, which stays up as a
    // replica: the next write there is refused with READONLY.
    let (old, new) = (group.primary.port, group.replicas[0].port);
    let group = blocking(move || {
        assert!(group.replicas[0]
            .cli(&["REPLICAOF", "NO", "ONE"])
            .contains("OK"));
        let demoted = group
            .primary
            .cli(&["REPLICAOF", "127.0.0.1", &new.to_string()]);
        assert!(demoted.contains("OK"), "{demoted}");
        group.wait_for_replica(old, Duration::from_secs(20));
        for sentinel in &group.sentinels {
            sentinel.cli(&["SENTINEL", "REMOVE", MASTER_NAME]);
            let monitored = sentinel.cli(&[
                "SENTINEL",
                "MONITOR",
                MASTER_NAME,
                "127.0.0.1",
                &new.to_string(),
                "2",
            ]);
            assert!(monitored.contains("OK"), "{monitored}");
        }
        group
    })
    .await;

    let logs = Logs::default();
    let after = job();
    let asked = Instant::now();
    let write = async {
        store.record_job(&after).await.unwrap();
        store.finish_job(&succeeded(&after)).await.unwrap();
    };
    write.with_subscriber(logs.dispatch()).await;
    eprintln!(
        "READONLY to the next acknowledged write: {:?}",
        asked.elapsed()
    );
    let logs = logs.text();
    assert!(
        logs.contains("You can't write against a read only replica"),
        "{logs}"
    );
    assert!(
        logs.contains(&format!("from=127.0.0.1:{old} to=127.0.0.1:{new}")),
        "{logs}"
    );
    let key = format!("octobox:job:{}", after.id);
    assert_eq!(
        group.replicas[0].cli(&["HGET", &key, "status"]).trim(),
        "succeeded"
    );
    let record = store.job(before.id).await.unwrap().unwrap();
    assert_eq!(record.job.id, before.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_does_not_acknowledge_fails_the_write_and_one_that_is_gone_is_not_waited_for(
) {
    let mut group = start_group().await;
    // One Redis by URL: min_replicas is not only for sentinels.
    let url = format!("redis://127.0.0.1:{}/0", group.primary.port);
    let acked = connect(&StoreConfig {
        min_replicas: 1,
        replica_timeout: Duration::from_millis(500),
        ..StoreConfig::new(Secret::new(url.clone()))
    })
    .await;
    let unacked = connect(&StoreConfig::new(Secret::new(url))).await;
    assert_eq!(StoreConfig::new(Secret::new("redis://r")).min_replicas, 0);

    let j = job();
    acked.record_job(&j).await.unwrap();
    let primary = group.primary.port;
    // The store counts the replicas connected at most once a second, and a write waits
    // for none while it has counted none: write until one of its writes waited (the
    // replica may still have been syncing when the group started, on a busy machine).
    let deadline = Instant::now() + Duration::from_secs(15);
    while waits_answered(&group, primary) == 0 {
        assert!(
            Instant::now() < deadline,
            "no write ever waited for the replica"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        acked.record_job(&job()).await.unwrap();
    }
    let waits = waits_answered(&group, primary);
    // The replica stops answering but stays connected: the primary counts it, so a write
    // waits for it, and fails when it does not acknowledge in time.
    group.replicas[0].pause(true);

    let asked = Instant::now();
    let refused = acked.finish_job(&succeeded(&j)).await;
    let took = asked.elapsed();
    let message = refused.as_ref().unwrap_err().to_string();
    assert!(
        matches!(
            refused,
            Err(StoreError::NotReplicated {
                acknowledged: 0,
                wanted: 1,
                ..
            })
        ),
        "{message}"
    );
    assert!(
        message.contains("took the write (store a job's result) but only 0 of the 1 replica acknowledgements [store] min_replicas asks for arrived within 500ms"),
        "{message}"
    );
    eprintln!("a result no replica acknowledged failed after {took:?}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(waits_answered(&group, primary), waits + 1);

    // Another worker given the job again finds its result and finishes it again before
    // acknowledging: that, too, waits for a replica to have the result, which none has.
    let second_worker = connect(&StoreConfig {
        min_replicas: 1,
        replica_timeout: Duration::from_millis(500),
        ..StoreConfig::new(Secret::new(format!("redis://127.0.0.1:{primary}/0")))
    })
    .await;
    let found = second_worker.job(j.id).await.unwrap().unwrap();
    assert_eq!(
        found.status,
        JobStatus::Succeeded,
        "the refused write did happen"
    );
    let again = second_worker.finish_job(&found.result.unwrap()).await;
    assert!(
        matches!(
            again,
            Err(StoreError::NotReplicated {
                acknowledged: 0,
                ..
            })
        ),
        "{again:?}"
    );

    // A scheduler's fire and a shipper's checkpoint wait the same way.
    let fired = job();
    let fire = Fire {
        schedule: "nightly".into(),
        slot: Utc::now(),
        kind: FireKind::OnTime,
        job: fired.id,
        by: "scheduler-1".into(),
        at: Utc::now(),
    };
    let not_fired = acked.record_fire(&fire, &fired).await;
    assert!(
        matches!(&not_fired, Err(StoreError::NotReplicated { what, .. }) if what == "record a schedule's fire"),
        "{not_fired:?}"
    );
    let not_saved = acked.save_checkpoint("audit-export", "{}").await;
    assert!(
        matches!(&not_saved, Err(StoreError::NotReplicated { what, .. }) if what == "save a shipper's checkpoint"),
        "{not_saved:?}"
    );
    let waits = waits_answered(&group, primary);

    // Without min_replicas nothing waits: no WAIT is sent at all.
    let other = job();
    unacked.record_job(&other).await.unwrap();
    unacked.finish_job(&succeeded(&other)).await.unwrap();
    assert_eq!(waits_answered(&group, primary), waits);

    // The refused result is on the primary (nothing is undone); once the replica is back,
    // the worker's retry of the same write is acknowledged.
    group.replicas[0].pause(false);
    acked.finish_job(&succeeded(&j)).await.unwrap();
    let record = acked.job(j.id).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
    assert!(
        acked.record_fire(&fire, &fired).await.unwrap(),
        "its own fire, retried"
    );
    acked.save_checkpoint("audit-export", "{}").await.unwrap();
    assert_eq!(
        acked.checkpoint("audit-export").await.unwrap().as_deref(),
        Some("{}")
    );

    // A replica that is gone (its connection closed) is not waited for: with none
    // connected, writes go on at once rather than failing every job until it is back.
    group = blocking(move || {
        group.replicas[0].stop();
        group
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let alone = job();
    acked.record_job(&alone).await.unwrap();
    let asked = Instant::now();
    acked.finish_job(&succeeded(&alone)).await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_millis(450),
        "no replica connected, no wait: {:?}",
        asked.elapsed()
    );
    drop(group);
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_reach_the_nodes_and_the_sentinels_and_no_error_shows_them() {
    const NODES: &str = "node-secret-4e1f";
    const SENTINELS: &str = "sentinel-secret-9b2c";
    let group = blocking(|| {
        SentinelGroup::start_with(
            1,
            Passwords {
                nodes: Some(NODES.into()),
                sentinels: Some(SENTINELS.into()),
            },
        )
    })
    .await;
    let with = |nodes: &str, sentinels: &str| {
        let mut config = through_sentinels(&group);
        if let StoreServer::Sentinels(s) = &mut config.server {
            s.password = Some(Secret::new(nodes));
            s.sentinel_password = Some(Secret::new(sentinels));
        }
        config
    };

    let store = connect(&with(NODES, SENTINELS)).await;
    let j = job();
    store.record_job(&j).await.unwrap();
    store.finish_job(&succeeded(&j)).await.unwrap();
    assert_eq!(
        store.job(j.id).await.unwrap().unwrap().status,
        JobStatus::Succeeded
    );

    // A wrong password is a refusal, said at once (waiting would not change it), and
    // neither password is in it.
    for (config, refused_by) in [
        (with("wrong-node-pw", SENTINELS), "names 127.0.0.1:"),
        (with(NODES, "wrong-sentinel-pw"), "sentinel 127.0.0.1:"),
    ] {
        let asked = Instant::now();
        let Err(err) = RedisStore::connect(&config).await else {
            panic!("a wrong password must be refused");
        };
        let message = err.to_string();
        eprintln!("refused after {:?}: {message}", asked.elapsed());
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "{:?}: {message}",
            asked.elapsed()
        );
        assert!(message.contains("refused to answer a PING"), "{message}");
        assert!(message.contains(refused_by), "{message}");
        assert!(
            message.contains("refused us: Password authentication failed"),
            "{message}"
        );
        for secret in [NODES, SENTINELS, "wrong-node-pw", "wrong-sentinel-pw"] {
            assert!(!message.contains(secret), "{message}");
            assert!(!format!("{err:?}").contains(secret), "{err:?}");
        }
    }
}
