//! Schedules with real processes: the bot's embedded scheduler delivering to a channel,
//! and `octobox-scheduler` processes over a private Redis and RabbitMQ, killed and
//! restarted: every slot fires exactly once, pauses hold across restarts, and missed
//! slots are caught up once.

use std::time::Duration;

use bot::bot::Bot;
use bot::router::{Outcome, Request};
use config::Config;
use jobs::{Fire, FireKind, Origin};
use octobox_tests::pipeline::{wait_until, Options, Pipeline};
use octobox_tests::scheduler::{ChannelRecorder, ScheduleProbe, SchedulerProcess};

const PATIENCE: Duration = Duration::from_secs(60);

/// Fires are one second apart, each slot once, in order.
fn assert_every_slot_once(fires: &[Fire]) {
    for pair in fires.windows(2) {
        assert_eq!(
            pair[1].slot - pair[0].slot,
            chrono::Duration::seconds(1),
            "a slot was skipped or fired twice: {:#?}",
            fires
                .iter()
                .map(|f| (f.slot, &f.by, f.kind))
                .collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_fires_on_time_and_delivers_its_result_to_its_channel() {
    let config = Config::parse(
        "test.toml",
        r#"
[acl]
default = "allow"

[acl.groups]
admins = ["console:root"]

[scheduler]
lease = "1s"

[[schedule]]
name = "heartbeat"
cron = "* * * * * *"
run = "echo still here"
deliver = "slack:#ops"
"#,
        |_| None,
    )
    .unwrap();
    let bot = Bot::start(&config).await.unwrap();
    let (recorder, mut replies) = ChannelRecorder::new();
    bot.sinks.register("slack", recorder);

    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        let (origin, reply) = tokio::time::timeout(PATIENCE, replies.recv())
            .await
            .expect("a scheduled result is delivered")
            .unwrap();
        assert_eq!(origin.channel.as_deref(), Some("#ops"));
        assert!(reply.text.contains("(echo) succeeded"), "{}", reply.text);
        assert!(reply.text.ends_with("still here"), "{}", reply.text);
        delivered.push(reply.job);
    }

    let fires = bot
        .router
        .services()
        .schedules
        .fires("heartbeat", 100)
        .await
        .unwrap();
    for job in &delivered {
        let fire = fires
            .iter()
            .find(|f| f.job == *job)
            .expect("each delivery was a fire");
        assert_eq!(fire.kind, FireKind::OnTime);
        let late = fire.at - fire.slot;
        assert!(
            late < chrono::Duration::seconds(2),
            "fired {late} after its slot"
        );
    }

    let ask = |user: &str, text: &str| Request {
        text: text.to_string(),
        origin: Origin::new("console", user),
    };
    let listing = bot.router.handle(&ask("alice", "schedules")).await;
    assert!(listing.text.contains("heartbeat"), "{}", listing.text);
    assert!(listing.text.contains("slack:#ops"), "{}", listing.text);
    assert!(listing.text.contains("succeeded (job "), "{}", listing.text);
    let refused = bot
        .router
        .handle(&ask("alice", "pause schedule heartbeat"))
        .await;
    assert_eq!(refused.outcome, Outcome::Refused, "{}", refused.text);
    assert!(refused.text.contains("admins"), "{}", refused.text);
    let unknown = bot
        .router
        .handle(&ask("root", "run schedule nightly now"))
        .await;
    assert!(
        unknown.text.contains("there are: heartbeat"),
        "{}",
        unknown.text
    );
    bot.stop().await;
}

/// The embedded bot's configuration for the reload scenario: a schedule every second
/// that runs `run`, and `extra` commands.
fn reloadable(run: &str, extra: &str) -> String {
    format!(
        r#"
[acl]
default = "allow"

[acl.groups]
admins = ["console:root"]

[scheduler]
lease = "1s"

[[schedule]]
name = "heartbeat"
cron = "* * * * * *"
run = "{run}"
deliver = "slack:#ops"
{extra}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_reaches_the_embedded_scheduler_and_the_router_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("octobox.toml");
    std::fs::write(&path, reloadable("echo before", "")).unwrap();
    let bot = Bot::start(&Config::load(&path).unwrap()).await.unwrap();
    bot.reloader.set_file(&path);
    let (recorder, mut replies) = ChannelRecorder::new();
    bot.sinks.register("slack", recorder);
    let root = Request {
        text: "shout hello".to_string(),
        origin: Origin::new("console", "root"),
    };
    let unknown = bot.router.handle(&root).await;
    assert_eq!(unknown.outcome, Outcome::Unknown, "{}", unknown.text);

    let (_, first) = tokio::time::timeout(PATIENCE, replies.recv())
        .await
        .expect("the schedule fires before the reload")
        .unwrap();
    assert!(first.text.ends_with("before"), "{}", first.text);

    // The new file adds a command and makes the schedule run it.
    let shout = "\n[[command]]\npattern = \"shout {text:text}\"\nhelp = \"Says it loud\"\nnative = \"echo\"\n";
    std::fs::write(&path, reloadable("shout after", shout)).unwrap();
    let reload = Request {
        text: "reload".to_string(),
        ..root.clone()
    };
    let reloaded = bot.router.handle(&reload).await;
    assert_eq!(reloaded.outcome, Outcome::Done, "{}", reloaded.text);

    // Replies of slots fired before the reload may still come; the next fire runs the
    // new text, as the new command.
    let after = loop {
        let (_, reply) = tokio::time::timeout(PATIENCE, replies.recv())
            .await
            .expect("the schedule fires after the reload")
            .unwrap();
        if !reply.text.ends_with("before") {
            break reply;
        }
    };
    assert!(after.text.contains("(shout) succeeded"), "{}", after.text);
    assert!(after.text.ends_with("after"), "{}", after.text);
    let asked = bot.router.handle(&root).await;
    assert_eq!(asked.outcome, Outcome::Queued, "{}", asked.text);
    bot.stop().await;
}

/// A pipeline (private Redis and RabbitMQ) whose configuration has `schedules`.
fn pipeline(schedules: &str) -> Pipeline {
    Pipeline::start(Options {
        extra: format!(
            "[acl.groups]\nadmins = [\"{}\"]\n\n[scheduler]\nlease = \"1s\"\n\n{schedules}",
            octobox_tests::console::me()
        ),
        ..Options::default()
    })
}

const EVERY_SECOND: &str = r#"
[[schedule]]
name = "tick"
cron = "* * * * * *"
run = "echo tick"
"#;

#[test]
fn leader_killed_every_slot_still_fires_exactly_once() {
    let p = pipeline(EVERY_SECOND);
    let probe = ScheduleProbe::connect(&p.redis.url());
    let mut a = SchedulerProcess::start(&p.config_path(), "sched-a");
    wait_until("sched-a to hold the lease", PATIENCE, || {
        probe.lease_holder().as_deref() == Some("sched-a")
    });
    let _b = SchedulerProcess::start(&p.config_path(), "sched-b");
    wait_until("sched-a to fire 3 slots", PATIENCE, || {
        probe.fires("tick").len() >= 3
    });

    a.kill();
    wait_until("sched-b to take over and fire 3 slots", PATIENCE, || {
        probe
            .fires("tick")
            .iter()
            .filter(|f| f.by == "sched-b")
            .count()
            >= 3
    });

    let fires = probe.fires("tick");
    assert_every_slot_once(&fires);
    assert!(fires.iter().any(|f| f.by == "sched-a"));
    assert!(
        fires.iter().all(|f| f.kind == FireKind::OnTime),
        "{fires:#?}"
    );
    // A fire the kill interrupted is finished by sched-b: every fire gets its job.
    wait_until("every fire's job to be recorded", PATIENCE, || {
        fires.iter().all(|f| probe.job(f.job).is_some())
    });
    for fire in &fires {
        assert_eq!(probe.job(fire.job).unwrap().job.command, "echo");
    }
}

#[test]
fn paused_schedule_stays_quiet_across_a_restart_until_resumed() {
    let p = pipeline(EVERY_SECOND);
    let probe = ScheduleProbe::connect(&p.redis.url());
    let mut scheduler = SchedulerProcess::start(&p.config_path(), "sched-a");
    wait_until("2 fires", PATIENCE, || probe.fires("tick").len() >= 2);

    let mut console = p.console.start();
    console.send("pause schedule tick");
    console.expect("the pause", |l| l.starts_with("paused schedule tick"));
    std::thread::sleep(Duration::from_millis(500));
    let before = probe.fires("tick").len();
    scheduler.restart();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(probe.fires("tick").len(), before, "no fire while paused");
    console.send("schedules");
    console.expect("the listing", |l| {
        l.starts_with("tick") && l.contains("paused")
    });

    console.send("resume schedule tick");
    console.expect("the resume", |l| l.starts_with("resumed schedule tick"));
    wait_until("fires again", PATIENCE, || {
        probe.fires("tick").len() > before
    });
    let fires = probe.fires("tick");
    assert!(
        fires.iter().all(|f| f.kind == FireKind::OnTime),
        "the pause is not caught up"
    );
    let gap = fires[before].slot - fires[before - 1].slot;
    assert!(
        gap >= chrono::Duration::seconds(3),
        "the paused slots were skipped"
    );
}

#[test]
fn catch_up_fires_once_for_slots_missed_while_no_scheduler_ran() {
    let p = pipeline(
        r#"
[[schedule]]
name = "catching-up"
cron = "* * * * * *"
run = "echo caught"
missed = "catch_up"

[[schedule]]
name = "skipping"
cron = "* * * * * *"
run = "echo skipped"
missed = "skip"
"#,
    );
    let probe = ScheduleProbe::connect(&p.redis.url());
    let mut scheduler = SchedulerProcess::start(&p.config_path(), "sched-a");
    wait_until("2 fires each", PATIENCE, || {
        probe.fires("catching-up").len() >= 2 && probe.fires("skipping").len() >= 2
    });
    scheduler.kill();
    std::thread::sleep(Duration::from_secs(4));
    let before = probe.fires("skipping").len();
    scheduler.restart();
    wait_until("on-time fires after the restart", PATIENCE, || {
        probe.fires("skipping").len() >= before + 2
    });

    let catching = probe.fires("catching-up");
    let caught: Vec<_> = catching
        .iter()
        .filter(|f| f.kind == FireKind::CatchUp)
        .collect();
    assert_eq!(
        caught.len(),
        1,
        "one catch-up for the downtime: {catching:#?}"
    );
    let skipping = probe.fires("skipping");
    assert!(
        skipping.iter().all(|f| f.kind == FireKind::OnTime),
        "{skipping:#?}"
    );
    let gap = skipping[before].slot - skipping[before - 1].slot;
    assert!(
        gap >= chrono::Duration::seconds(2),
        "missed slots were skipped"
    );
    for fires in [&catching, &skipping] {
        for pair in fires.windows(2) {
            assert!(pair[1].slot > pair[0].slot, "no slot fired twice");
        }
    }
}
