//! Two-person approval and the audit trail, through the real SSH front door (the OpenSSH
//! client) of the real `octobox-bot`: a command declared with `approval` waits for a yes
//! from its approvers, never its requester's own; a deny and an expiry reach the requester
//! where they asked; on Redis a decision survives a bot restart and, with two bots, counts
//! once; and every step is in the audit trail an auditor reads.

use std::time::Duration;

use octobox_tests::pipeline::{wait_until, Options, Pipeline};
use octobox_tests::ssh::{SshBot, SshBotSetup, SshRun};
use regex::Regex;

const UUID: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

/// alice asks, carol and dave lead, erin audits, bob is nobody in particular.
const APPROVALS: &str = r#"
[acl]
default = "deny"

[acl.groups]
leads = ["ssh:carol", "ssh:dave"]
auditors = ["ssh:erin"]

[[command]]
pattern = "deploy {text:word}"
help = "Deploy a service, once a lead says yes"
native = "echo"
allow = ["everyone"]
approval = { by = "group:leads", ttl = "10m", reason = true }

[[command]]
pattern = "restart {text:word}"
help = "Restart a service, if a lead says yes soon"
native = "echo"
allow = ["everyone"]
approval = { by = "group:leads", ttl = "10s" }
"#;

const PEOPLE: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

/// The id of the one job `who` sees waiting, once there is one.
fn waiting_job(bot: &SshBot, who: &str) -> String {
    let id = Regex::new(&format!("(?m)^({UUID}) ")).unwrap();
    let mut found = None;
    wait_until(
        "a job waiting for approval",
        Duration::from_secs(20),
        || {
            let run = bot.exec(who, "pending");
            found = id.captures(&run.stdout).map(|c| c[1].to_string());
            found.is_some()
        },
    );
    found.unwrap()
}

#[test]
fn a_lead_approves_over_ssh_and_the_requester_gets_the_result_never_by_herself() {
    let bot = SshBotSetup::new(&PEOPLE).config(APPROVALS).start();

    // A reason is required.
    let run = bot.exec("alice", "deploy web");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("needs a reason"), "{run:?}");

    std::thread::scope(|s| {
        let asked = s.spawn(|| bot.exec("alice", "deploy web because hotfix 1234"));
        let id = waiting_job(&bot, "bob");
        let held = bot.exec("alice", &format!("job {id}"));
        assert!(
            held.stdout
                .contains("\napproval  waits for group leads (expires in "),
            "{held:?}"
        );
        let pending = bot.exec("bob", "pending");
        assert!(
            pending.stdout.contains("ssh:alice") && pending.stdout.contains("hotfix 1234"),
            "{pending:?}"
        );

        // Not by herself, not by someone outside the leads.
        let own = bot.exec("alice", &format!("approve {id}"));
        assert_eq!(own.code, Some(3), "{own:?}");
        assert!(own.stderr.contains("is your own request"), "{own:?}");
        let outsider = bot.exec("bob", &format!("approve {id}"));
        assert_eq!(outsider.code, Some(3), "{outsider:?}");
        assert!(
            outsider.stderr.contains("ssh:bob may not decide")
                && outsider.stderr.contains("group leads"),
            "{outsider:?}"
        );

        let approved = bot.exec("carol", &format!("approve {id}"));
        assert_eq!(approved.code, Some(0), "{approved:?}");
        assert!(
            approved.stdout.starts_with(&format!("approved job {id}")),
            "{approved:?}"
        );
        // Deciding twice tells who decided.
        let again = bot.exec("dave", &format!("deny {id} too late"));
        assert_eq!(again.code, Some(3), "{again:?}");
        assert!(
            again.stderr.contains("was already approved by ssh:carol"),
            "{again:?}"
        );

        let run = asked.join().unwrap();
        assert_eq!(run.code, Some(0), "{run:?}");
        let decided = bot.exec("alice", &format!("job {id}"));
        assert!(
            decided
                .stdout
                .ends_with("\napproval  approved by ssh:carol\n"),
            "{decided:?}"
        );
        assert!(
            run.stderr.contains("waits for approval by group leads"),
            "{run:?}"
        );
        assert!(
            run.stdout
                .starts_with(&format!("job {id} (deploy) succeeded in"))
                && run.stdout.ends_with("\nweb\n"),
            "{run:?}"
        );
    });

    // The auditor sees who asked, who tried, who decided, and how it ended.
    let audit = bot.exec("erin", "audit");
    assert_eq!(audit.code, Some(0), "{audit:?}");
    let lines = audit.stdout;
    for expected in [
        r"ssh:alice +request +deploy web because hotfix 1234 +allowed +allow = \[everyone\] +\S+ +awaiting approval",
        r"ssh:alice +request +approve \S+ +allowed +built-in: everyone +- +refused: job \S+ is your own request",
        r"ssh:bob +request +approve \S+ +allowed +built-in: everyone +- +refused: ssh:bob may not decide",
        r"ssh:carol +request +approve \S+ +allowed +built-in: everyone +- +answered",
        r"ssh:dave +request +deny \S+ too late +allowed +built-in: everyone +- +refused: job \S+ was already approved by ssh:carol",
        r"ssh:alice +outcome +deploy +- +- +\S+ +succeeded",
    ] {
        assert!(
            Regex::new(expected).unwrap().is_match(&lines),
            "no audit line like {expected}:\n{lines}"
        );
    }
    // Filtered: only alice's refusals.
    let refused = bot.exec("erin", "audit by ssh:alice outcome refused");
    let rows: Vec<_> = refused.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{refused:?}");
    // Only auditors read it.
    let run = bot.exec("bob", "audit");
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stderr.contains("group auditors"), "{run:?}");
}

#[test]
fn a_deny_and_an_expiry_reach_the_requester_and_nothing_runs() {
    let bot = SshBotSetup::new(&PEOPLE).config(APPROVALS).start();
    std::thread::scope(|s| {
        let asked = s.spawn(|| bot.exec("alice", "deploy db because schema change"));
        let id = waiting_job(&bot, "bob");
        let denied = bot.exec("dave", &format!("deny {id} not during the freeze"));
        assert_eq!(denied.code, Some(0), "{denied:?}");
        let run: SshRun = asked.join().unwrap();
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(
            run.stdout.contains(&format!(
                "job {id} (deploy) was denied by ssh:dave: not during the freeze"
            )) || run
                .stderr
                .contains("denied by ssh:dave: not during the freeze"),
            "{run:?}"
        );
    });
    // Nobody decides in time: alice is told, after the approval's ten seconds.
    let run = bot.exec("alice", "restart cache");
    assert_eq!(run.code, Some(1), "{run:?}");
    let expired = Regex::new(&format!(
        r"job {UUID} \(restart\) was not approved within 10s, so it did not run"
    ))
    .unwrap();
    assert!(
        expired.is_match(&format!("{}{}", run.stdout, run.stderr)),
        "{run:?}"
    );
    assert_eq!(
        bot.exec("bob", "pending").stdout,
        "no jobs wait for approval\n"
    );
    let audit = bot.exec("erin", "audit outcome expired").stdout;
    assert!(
        Regex::new(r"ssh:alice +expiry +restart .*expired: nobody of group:leads decided in time")
            .unwrap()
            .is_match(&audit),
        "{audit}"
    );
    let audit = bot.exec("erin", "audit command deploy").stdout;
    assert!(
        Regex::new(
            r"ssh:alice +outcome +deploy .*cancelled: denied by ssh:dave: not during the freeze"
        )
        .unwrap()
        .is_match(&audit),
        "{audit}"
    );
}

#[test]
fn on_redis_a_decision_survives_a_bot_restart_and_two_bots_count_one_click_once() {
    let pipeline = Pipeline::start(Options {
        extra: APPROVALS.to_string(),
        ..Options::default()
    });
    let shared = std::fs::read_to_string(pipeline.config_path()).unwrap();
    let _worker = pipeline.worker("w1");
    let first = SshBotSetup::new(&PEOPLE).config(&shared).start();
    let asked = first.exec("alice", "deploy api because release 7 &");
    assert_eq!(asked.code, Some(0), "{asked:?}");
    let id = asked.stdout.trim().to_string();
    assert!(
        Regex::new(&format!("^{UUID}$")).unwrap().is_match(&id),
        "{asked:?}"
    );
    // The bot that took the request goes; two others come.
    drop(first);
    let one = SshBotSetup::new(&PEOPLE).config(&shared).start();
    let two = SshBotSetup::new(&PEOPLE).config(&shared).start();
    assert!(one.exec("bob", "pending").stdout.contains(&id));
    // carol and dave decide at the same moment, on different bots.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| one.exec("carol", &format!("approve {id}")));
        let b = s.spawn(|| two.exec("dave", &format!("approve {id}")));
        (a.join().unwrap(), b.join().unwrap())
    });
    let approvals = [&a, &b].iter().filter(|r| r.code == Some(0)).count();
    assert_eq!(approvals, 1, "exactly one decision stands:\n{a:?}\n{b:?}");
    let loser = if a.code == Some(0) { &b } else { &a };
    assert!(
        loser.stderr.contains("was already approved by"),
        "{loser:?}"
    );
    // The job runs once, on the worker, and its record says so.
    let mut details = String::new();
    wait_until("the approved job's result", Duration::from_secs(30), || {
        details = two.exec("alice", &format!("job {id}")).stdout;
        details.contains("succeeded")
    });
    assert!(details.contains("api"), "{details}");
    let audit = two.exec("erin", "audit command deploy").stdout;
    let outcomes = audit.lines().filter(|l| l.contains(" outcome ")).count();
    assert_eq!(outcomes, 1, "one outcome for one job:\n{audit}");
    assert!(audit.contains("awaiting approval"), "{audit}");
}
