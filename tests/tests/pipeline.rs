//! The durable pipeline with real processes: `octobox-bot` and `octobox-worker` over a
//! private RabbitMQ and Redis. Workers die, brokers restart, bots restart; every job's
//! reply still arrives, exactly once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use octobox_tests::health;
use octobox_tests::pipeline::{queued_ids, results_per_job, wait_until, Options, Pipeline};
use octobox_tests::processes::{config_and_name, log_beside, ServiceProcess};
use octobox_tests::services::free_port;

const LONG: Duration = Duration::from_secs(120);

fn assert_each_once(ids: &[String], output: &str) {
    let results = results_per_job(output);
    for id in ids {
        assert_eq!(
            results.get(id).copied().unwrap_or(0),
            1,
            "job {id} should have exactly one reply; output:\n{output}"
        );
    }
}

#[test]
fn worker_killed_with_200_jobs_in_flight_loses_nothing() {
    let p = Pipeline::start(Options {
        concurrency: 250,
        ..Options::default()
    });
    let mut doomed = p.worker("worker-a");
    let mut console = p.console.start();
    // Long enough that all 200 have started before the first could end, even on a
    // loaded machine (each message costs its quota checks in Redis too).
    for _ in 0..200 {
        console.send("sleep 10s");
    }
    let ids = queued_ids(&console.expect_count("queued", 200, |l| l.starts_with("queued as job ")));
    wait_until("worker-a to start all 200 jobs", LONG, || {
        doomed.log().matches("job started").count() >= 200
    });
    doomed.kill();
    assert_eq!(
        doomed.log().matches("job finished").count(),
        0,
        "killed mid-job"
    );

    let _rescuer = p.worker("worker-b");
    console.expect_count("a reply per job", 200, |l| l.contains("(sleep) succeeded"));
    let out = console.finish_within(LONG);
    assert!(out.status.success(), "{out:?}");
    assert_each_once(&ids, &out.stdout);
}

#[test]
fn rabbitmq_restart_during_2000_jobs_loses_none() {
    let mut p = Pipeline::start(Options {
        concurrency: 32,
        ..Options::default()
    });
    let _worker = p.worker("worker-a");
    let mut console = p.console.start();
    for i in 0..1000 {
        console.send(&format!("echo n{i}"));
    }
    console.expect_within("the 300th result", LONG, |l| l == "n300");
    p.mq.restart(Duration::from_millis(500));
    for i in 1000..2000 {
        console.send(&format!("echo n{i}"));
    }
    let out = console.finish_within(LONG);
    assert!(out.status.success(), "{out:?}");
    let ids = queued_ids(&out.stdout.lines().map(String::from).collect::<Vec<_>>());
    assert_eq!(ids.len(), 2000, "every job was queued:\n{}", out.stdout);
    assert_each_once(&ids, &out.stdout);
    for i in 0..2000 {
        let line = format!("n{i}");
        assert_eq!(
            out.stdout.lines().filter(|l| *l == line).count(),
            1,
            "echo n{i} answered once"
        );
    }
}

#[test]
fn redis_restart_during_a_run_loses_none() {
    let mut p = Pipeline::start(Options {
        concurrency: 16,
        ..Options::default()
    });
    let _worker = p.worker("worker-a");
    let mut console = p.console.start();
    for i in 0..300 {
        console.send(&format!("echo r{i}"));
    }
    console.expect_within("the 100th result", LONG, |l| l == "r100");
    p.redis.restart(Duration::from_millis(500));
    for i in 300..600 {
        console.send(&format!("echo r{i}"));
    }
    let out = console.finish_within(LONG);
    assert!(out.status.success(), "{out:?}");
    let ids = queued_ids(&out.stdout.lines().map(String::from).collect::<Vec<_>>());
    assert_eq!(ids.len(), 600, "every job was queued:\n{}", out.stdout);
    assert_each_once(&ids, &out.stdout);
}

#[test]
fn bot_restarted_with_100_jobs_pending_delivers_all_replies() {
    let p = Pipeline::start(Options {
        concurrency: 25,
        ..Options::default()
    });
    let _worker = p.worker("worker-a");
    let mut first = p.console.start();
    for _ in 0..100 {
        first.send("sleep 2s");
    }
    let ids = queued_ids(&first.expect_count("queued", 100, |l| l.starts_with("queued as job ")));
    drop(first); // the bot is killed with every job pending

    let mut second = p.console.start();
    second.expect_count("a reply per job", 100, |l| l.contains("(sleep) succeeded"));
    let out = second.finish_within(LONG);
    assert!(out.status.success(), "{out:?}");
    assert_each_once(&ids, &out.stdout);
}

#[test]
fn a_job_that_crashes_every_worker_is_dead_lettered_and_its_requester_told() {
    let p = Pipeline::start(Options {
        concurrency: 4,
        delivery_limit: 3,
        extra: r#"
[[command]]
pattern = "crash the worker"
help = "End the worker that takes it (a crash drill)"
native = "abort"
allow = ["everyone"]
"#
        .to_string(),
    });
    // A supervisor that restarts workers as they die, as systemd would.
    let stop = Arc::new(AtomicBool::new(false));
    let supervisor = {
        let stop = stop.clone();
        let mut workers = vec![p.chaos_worker("worker-a"), p.chaos_worker("worker-b")];
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for w in &mut workers {
                    w.respawn_if_dead();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            workers
        })
    };
    let mut console = p.console.start();
    console.send("crash the worker");
    let poison = console.expect("queued", |l| l.starts_with("queued as job "));
    let poison = poison.trim_start_matches("queued as job ").to_string();
    for i in 0..20 {
        console.send(&format!("echo bystander {i}"));
    }
    let told = console.expect_within("the crash job's reply", LONG, |l| {
        l.starts_with(&format!("job {poison} (crash the worker) failed"))
    });
    assert!(told.contains("was set aside"), "{told}");
    assert!(
        told.contains("3 times"),
        "the reply names the delivery limit: {told}"
    );
    let out = console.finish_within(LONG);
    stop.store(true, Ordering::SeqCst);
    let workers = supervisor.join().unwrap();
    let crashes: usize = workers
        .iter()
        .map(|w| {
            w.log()
                .matches("abort task: ending the worker process")
                .count()
        })
        .sum();
    assert_eq!(crashes, 3, "the crash job ran exactly delivery_limit times");
    assert!(out.status.success(), "{out:?}");
    for i in 0..20 {
        assert!(
            out.stdout.lines().any(|l| l == format!("bystander {i}")),
            "bystander {i} was answered:\n{}",
            out.stdout
        );
    }
}

#[test]
fn graceful_shutdown_returns_unstarted_jobs_to_the_queue() {
    let p = Pipeline::start(Options {
        concurrency: 2,
        ..Options::default()
    });
    let mut first = p.worker("worker-a");
    let mut console = p.console.start();
    for _ in 0..10 {
        console.send("sleep 1s");
    }
    let ids = queued_ids(&console.expect_count("queued", 10, |l| l.starts_with("queued as job ")));
    wait_until("worker-a to start two jobs", LONG, || {
        first.log().matches("job started").count() >= 2
    });
    console.send("workers");
    let listed = console.expect("worker-a in the workers list", |l| {
        l.starts_with("worker-a ")
    });
    assert!(listed.contains("native"), "{listed}");
    let status = first.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "worker-a exits cleanly: {status:?}\n{}",
        first.log()
    );
    let log = first.log();
    assert_eq!(log.matches("job started").count(), 2, "{log}");
    assert_eq!(
        log.matches("job finished").count(),
        2,
        "running jobs finish: {log}"
    );

    let second = p.worker("worker-b");
    let out = console.finish_within(LONG);
    assert!(out.status.success(), "{out:?}");
    assert_each_once(&ids, &out.stdout);
    assert_eq!(
        second.log().matches("job finished").count(),
        8,
        "{}",
        second.log()
    );
}

/// `<process> --http-listen <address>` beside the pipeline's configuration.
fn serving(p: &Pipeline, binary: &str, name: &str, address: &str) -> ServiceProcess {
    let config = p.config_path();
    let mut args = config_and_name(&config, name);
    args.extend(["--http-listen".into(), address.into()]);
    ServiceProcess::start(name, binary, args, &[], log_beside(&config, name))
}

/// Runs `<binary> probe <address>`: whether it exited 0, and what it printed.
fn probe(binary: &str, address: &str) -> (bool, String) {
    let out = std::process::Command::new(octobox_tests::binary::path(binary))
        .args(["probe", address])
        .output()
        .expect("the probe runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn every_process_serves_its_health_and_metrics_and_readiness_follows_redis() {
    let bot = format!("127.0.0.1:{}", free_port());
    let mut p = Pipeline::start(Options {
        extra: format!("[http]\nlisten = \"{bot}\"\n"),
        ..Options::default()
    });
    let worker = format!("127.0.0.1:{}", free_port());
    let scheduler = format!("127.0.0.1:{}", free_port());
    let _w = serving(&p, "octobox-worker", "w1", &worker);
    let _s = serving(&p, "octobox-scheduler", "s1", &scheduler);
    let mut console = p.console.start();

    for (address, wants) in [
        (&bot, "store: ok"),
        (&worker, "consuming: ok"),
        (&scheduler, "lease: ok (held"),
    ] {
        wait_until(&format!("{address} to be ready"), LONG, || {
            let (status, body) = health::get(address, "/readyz");
            status == 200 && body.contains(wants) && body.contains("broker: ok")
        });
        assert_eq!(health::get(address, "/healthz").0, 200);
    }
    let (ready, said) = probe("octobox-worker", &worker);
    assert!(ready, "the worker's probe passes: {said}");

    for _ in 0..3 {
        console.send("echo counted");
    }
    console.expect_count("replies", 3, |l| l.contains("counted"));
    let finished = r#"octobox_jobs_finished_total{command="echo",status="succeeded"}"#;
    wait_until("the worker to count 3 finished echoes", LONG, || {
        health::sample(&health::get(&worker, "/metrics").1, finished) == 3.0
    });
    let worker_metrics = health::get(&worker, "/metrics").1;
    assert_eq!(
        health::sample(
            &worker_metrics,
            r#"octobox_job_run_seconds_count{command="echo"}"#
        ),
        3.0
    );
    assert_eq!(
        health::sample(&worker_metrics, r#"octobox_worker_slots{kind="native"}"#),
        8.0
    );
    let bot_metrics = health::get(&bot, "/metrics").1;
    assert_eq!(
        health::sample(
            &bot_metrics,
            r#"octobox_jobs_submitted_total{command="echo"}"#
        ),
        3.0,
        "{bot_metrics}"
    );
    assert_eq!(health::sample(&bot_metrics, "octobox_workers_live"), 1.0);
    assert!(bot_metrics.contains("octobox_queue_depth{queue=\"native\"} 0"));
    assert_eq!(
        health::sample(
            &bot_metrics,
            r#"octobox_reply_delivery_seconds_count{adapter="console"}"#
        ),
        3.0
    );
    assert_eq!(
        health::sample(
            &health::get(&scheduler, "/metrics").1,
            "octobox_scheduler_lease_held"
        ),
        1.0
    );

    // Redis stops: every process says it is not ready, and why; then it comes back.
    p.redis.stop();
    for address in [&bot, &worker, &scheduler] {
        wait_until(&format!("{address} to say the store fails"), LONG, || {
            let (status, body) = health::get(address, "/readyz");
            status == 503 && (body.contains("store: failing") || body.contains("lease: failing"))
        });
    }
    let (ready, said) = probe("octobox-worker", &worker);
    assert!(!ready && said.contains("not ready (HTTP 503)"), "{said}");
    p.redis.start_again();
    for address in [&bot, &worker, &scheduler] {
        wait_until(&format!("{address} to be ready again"), LONG, || {
            health::get(address, "/readyz").0 == 200
        });
    }
    console.send("echo after");
    console.expect("the reply after Redis came back", |l| l.contains("after"));
}
