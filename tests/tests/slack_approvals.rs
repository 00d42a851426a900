//! Approvals in Slack: the real `octobox-bot` and its real Slack client (slack-morphism)
//! against the local Slack server. A command declared with `approval` gets a prompt with
//! Approve and Deny buttons; a press is the `approve`/`deny` command of whoever pressed
//! it, decided by the router; the prompt then shows the decision, buttons gone.

use std::time::Duration;

use octobox_tests::pipeline::{Options, Pipeline};
use octobox_tests::services::free_port;
use octobox_tests::slack_bot::SlackBot;
use octobox_tests::slack_server::{
    interactivity_form, post_signed_as, sign, Message, SlackServer, PATIENCE,
};

/// Alice asks, Bob and Carol lead; `deploy` also prompts in the approvers' channel,
/// `rollback` expires after the shortest wait allowed.
const COMMANDS: &str = r#"
[acl]
default = "allow"

[acl.groups]
leads = ["slack:UALICE", "slack:UBOB", "slack:UCAROL"]
auditors = ["slack:UAUDITOR"]

[[command]]
pattern = "deploy {text:word}"
help = "Deploy a service (a lead approves)"
native = "echo"
approval = { by = "group:leads", ttl = "15m", channel = "CAPPROVERS" }

[[command]]
pattern = "rollback {text:word}"
help = "Roll a service back (a lead approves within 10s)"
native = "echo"
approval = { by = "group:leads", ttl = "10s" }
"#;

const APPROVE: &str = "octobox_approve";
const DENY: &str = "octobox_deny";

/// The signing secret of the Events API scenarios.
const SIGNING: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// An embedded bot in Socket Mode, once connected.
async fn socket_bot(slack: &SlackServer) -> SlackBot {
    let bot = SlackBot::start(&format!("{}{COMMANDS}", slack.socket_config(1)));
    connected(slack, 1).await;
    bot
}

async fn connected(slack: &SlackServer, n: usize) {
    slack
        .wait_for(&format!("{n} Socket Mode connections"), |s| {
            (s.open_sockets() == n).then_some(())
        })
        .await;
}

/// An embedded bot serving the Events API on a free port, once it listens.
async fn events_bot(slack: &SlackServer) -> (SlackBot, u16) {
    let port = free_port();
    let bot = SlackBot::start_with_env(
        &format!("{}{COMMANDS}", slack.events_config(port)),
        &[("SIGNING", SIGNING)],
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Events API endpoint never listened: {}",
            bot.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (bot, port)
}

/// POSTs `body` to the bot's `path` signed now with `secret`; the HTTP status.
async fn post_signed_now(port: u16, path: &str, content_type: &str, body: &str) -> u16 {
    let now = chrono::Utc::now().timestamp().to_string();
    post_signed_as(
        &format!("http://127.0.0.1:{port}{path}"),
        content_type,
        body,
        &now,
        &sign(SIGNING, &now, body),
    )
    .await
    .expect("an HTTP answer")
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A request that waits for approval: where it was asked, and its prompt there.
struct Asked {
    channel: String,
    ts: String,
    prompt: Message,
}

impl Asked {
    /// The job id the prompt's buttons carry.
    fn job(&self) -> String {
        self.prompt.buttons()[0].1.clone()
    }
}

/// The message in `channel` (under `thread`, if given) that shows buttons.
async fn prompt_in(slack: &SlackServer, channel: &str, thread: Option<&str>) -> Message {
    slack
        .wait_for(&format!("an approval prompt in {channel}"), |s| {
            s.messages().into_iter().find(|m| {
                m.channel == channel
                    && (thread.is_none() || m.thread_ts.as_deref() == thread)
                    && !m.buttons().is_empty()
            })
        })
        .await
}

/// `user` asks for `text` in a direct message sent over Socket Mode; its prompt.
async fn ask(slack: &SlackServer, user: &str, text: &str) -> Asked {
    let said = slack.people().dm(user, text);
    slack.send_event(said.payload);
    let channel = format!("D{user}");
    let prompt = prompt_in(slack, &channel, Some(&said.ts)).await;
    Asked {
        channel,
        ts: said.ts,
        prompt,
    }
}

/// The message `ts` in `channel` once `done` holds for it.
async fn message_when(
    slack: &SlackServer,
    what: &str,
    channel: &str,
    ts: &str,
    done: impl Fn(&Message) -> bool,
) -> Message {
    slack
        .wait_for(what, |s| {
            s.messages()
                .into_iter()
                .find(|m| m.channel == channel && m.ts == ts && done(m))
        })
        .await
}

/// The requester's status message (the first reply in the thread) once it says `part`.
async fn requester_told(slack: &SlackServer, asked: &Asked, part: &str) -> Message {
    slack
        .wait_for(&format!("the requester told \"{part}\""), |s| {
            s.thread(&asked.channel, &asked.ts)
                .into_iter()
                .find(|m| m.buttons().is_empty() && m.text.contains(part))
        })
        .await
}

/// Both of a `deploy`'s prompts, once neither has buttons and both say `decision`.
async fn prompts_show(slack: &SlackServer, asked: &Asked, approvers: &Message, decision: &str) {
    for prompt in [&asked.prompt, approvers] {
        let shown = message_when(
            slack,
            &format!("the prompt in {} showing \"{decision}\"", prompt.channel),
            &prompt.channel,
            &prompt.ts,
            |m| m.buttons().is_empty() && m.text.contains(decision),
        )
        .await;
        assert!(
            shown
                .blocks
                .as_ref()
                .is_some_and(|b| b.to_string().contains(decision)),
            "{shown:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_from_the_button_runs_the_job_and_the_prompts_lose_their_buttons() {
    let slack = SlackServer::start().await;
    let _bot = socket_bot(&slack).await;
    let asked = ask(&slack, "UALICE", "deploy web").await;
    assert!(
        asked
            .prompt
            .text
            .contains("slack:UALICE asks to run deploy text=web"),
        "{:#?}",
        asked.prompt
    );
    let buttons = asked.prompt.buttons();
    let job = asked.job();
    assert_eq!(
        buttons,
        [
            (APPROVE.to_string(), job.clone()),
            (DENY.to_string(), job.clone())
        ]
    );
    let approvers = prompt_in(&slack, "CAPPROVERS", None).await;
    assert_eq!(approvers.buttons(), buttons);

    let envelope = slack.send_interaction(slack.people().clicks("UBOB", &approvers, APPROVE));
    let status = requester_told(&slack, &asked, "succeeded").await;
    assert!(
        status
            .text
            .starts_with(&format!("job {job} (deploy) succeeded")),
        "{status:#?}"
    );
    assert!(status.text.ends_with("web"), "{status:#?}");
    prompts_show(&slack, &asked, &approvers, "approved by <@UBOB>").await;
    assert!(
        slack.envelope(&envelope).unwrap().acked_at.is_some(),
        "the interactive envelope is acknowledged"
    );
    assert!(slack.ephemerals().is_empty(), "{:#?}", slack.ephemerals());
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_from_the_button_over_the_events_api_tells_the_requester() {
    let slack = SlackServer::start().await;
    let (_bot, port) = events_bot(&slack).await;
    let said = slack.people().dm("UALICE", "deploy api");
    let status = post_signed_now(
        port,
        "/slack/events",
        "application/json",
        &said.payload.to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let asked = Asked {
        channel: "DUALICE".into(),
        prompt: prompt_in(&slack, "DUALICE", Some(&said.ts)).await,
        ts: said.ts,
    };
    let approvers = prompt_in(&slack, "CAPPROVERS", None).await;

    let click = slack.people().clicks("UCAROL", &asked.prompt, DENY);
    let status = post_signed_now(
        port,
        "/slack/interactivity",
        FORM,
        &interactivity_form(&click),
    )
    .await;
    assert_eq!(status, 200);
    let told = requester_told(&slack, &asked, "denied by slack:UCAROL").await;
    assert!(
        told.text.starts_with(&format!(
            "job {} (deploy) was denied by slack:UCAROL",
            asked.job()
        )),
        "{told:#?}"
    );
    prompts_show(&slack, &asked, &approvers, "denied by <@UCAROL>").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_unsigned_or_unreadable_click_is_refused_and_decides_nothing() {
    let slack = SlackServer::start().await;
    let (bot, port) = events_bot(&slack).await;
    let said = slack.people().dm("UALICE", "deploy db");
    assert_eq!(
        post_signed_now(
            port,
            "/slack/events",
            "application/json",
            &said.payload.to_string()
        )
        .await,
        200
    );
    let prompt = prompt_in(&slack, "DUALICE", Some(&said.ts)).await;
    let url = format!("http://127.0.0.1:{port}/slack/interactivity");
    let form = interactivity_form(&slack.people().clicks("UBOB", &prompt, APPROVE));
    let now = chrono::Utc::now().timestamp().to_string();

    let forged = sign("not-the-secret", &now, &form);
    let status = post_signed_as(&url, FORM, &form, &now, &forged).await;
    assert_eq!(status.unwrap(), 401, "signed with another secret");
    let old = (chrono::Utc::now().timestamp() - 600).to_string();
    let stale = sign(SIGNING, &old, &form);
    let status = post_signed_as(&url, FORM, &form, &old, &stale).await;
    assert_eq!(status.unwrap(), 401, "signed ten minutes ago");
    let status = post_signed_as(&url, FORM, &form, "", "").await;
    assert_eq!(status.unwrap(), 401, "no signature");
    let tampered = form.replace("UBOB", "UEVE");
    let signature = sign(SIGNING, &now, &form);
    let status = post_signed_as(&url, FORM, &tampered, &now, &signature).await;
    assert_eq!(status.unwrap(), 401, "a signature of another body");
    assert_eq!(
        post_signed_now(port, "/slack/interactivity", FORM, "payload=%7Bnot+json").await,
        400,
        "signed, but its payload is not JSON"
    );
    assert_eq!(
        post_signed_now(port, "/slack/interactivity", FORM, "nothing=here").await,
        400,
        "signed, but no payload field"
    );
    let huge = format!("payload={}", "a".repeat(2 << 20));
    assert_eq!(
        post_signed_now(port, "/slack/interactivity", FORM, &huge).await,
        413,
        "past the body limit"
    );

    // Nothing was decided: the prompt keeps its buttons, the job is still pending.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = slack
        .messages()
        .into_iter()
        .find(|m| m.ts == prompt.ts)
        .unwrap();
    assert_eq!(now.buttons(), prompt.buttons(), "{now:#?}");
    let pending = slack.people().dm("UBOB", "pending");
    assert_eq!(
        post_signed_now(
            port,
            "/slack/events",
            "application/json",
            &pending.payload.to_string()
        )
        .await,
        200
    );
    let listed = slack
        .wait_for("Bob's pending list", |s| {
            s.thread("DUBOB", &pending.ts).into_iter().next()
        })
        .await;
    assert!(listed.text.contains(&prompt.buttons()[0].1), "{listed:#?}");
    let log = bot.log();
    assert!(
        log.contains("refused a request to the Slack endpoint"),
        "{log}"
    );
    assert!(
        log.contains("an interaction Slack sent is not JSON"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_requester_pressing_approve_is_told_only_someone_else_may_and_it_stays_pending() {
    let slack = SlackServer::start().await;
    let _bot = socket_bot(&slack).await;
    let asked = ask(&slack, "UALICE", "deploy web").await;
    slack.send_interaction(slack.people().clicks("UALICE", &asked.prompt, APPROVE));
    let told = slack
        .wait_for("Alice told she may not approve", |s| {
            s.ephemerals().into_iter().next()
        })
        .await;
    assert_eq!(told.user, "UALICE");
    assert_eq!(told.channel, asked.channel);
    assert_eq!(told.thread_ts.as_deref(), Some(asked.ts.as_str()));
    assert!(told.text.contains("is your own request"), "{told:#?}");

    // A non-approver is told who may.
    slack.send_interaction(slack.people().clicks("UMALLORY", &asked.prompt, APPROVE));
    let told = slack
        .wait_for("Mallory told who may approve", |s| {
            s.ephemerals().into_iter().find(|e| e.user == "UMALLORY")
        })
        .await;
    assert!(told.text.contains("only group leads may"), "{told:#?}");

    tokio::time::sleep(Duration::from_millis(500)).await;
    let prompt = slack
        .messages()
        .into_iter()
        .find(|m| m.ts == asked.prompt.ts)
        .unwrap();
    assert_eq!(prompt.buttons(), asked.prompt.buttons(), "{prompt:#?}");
    let status = &slack.thread(&asked.channel, &asked.ts)[0];
    assert!(status.text.contains("waits for approval"), "{status:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_request_loses_its_buttons_and_the_requester_is_told() {
    let slack = SlackServer::start().await;
    let _bot = socket_bot(&slack).await;
    let asked = ask(&slack, "UALICE", "rollback web").await;
    let told = requester_told(&slack, &asked, "not approved within 10s").await;
    assert!(
        told.text
            .starts_with(&format!("job {} (rollback) was not approved", asked.job())),
        "{told:#?}"
    );
    let prompt = message_when(
        &slack,
        "the prompt showing the expiry",
        &asked.channel,
        &asked.prompt.ts,
        |m| m.buttons().is_empty(),
    )
    .await;
    assert!(
        prompt
            .text
            .contains("expired: nobody of group leads decided in time"),
        "{prompt:#?}"
    );
    // No approvers' channel for this command: one prompt only.
    assert!(slack.messages().iter().all(|m| m.channel != "CAPPROVERS"));
}

/// A pipeline (Redis, RabbitMQ, a worker) with Slack in Socket Mode, one connection per
/// bot; its configuration for the bots.
fn pipeline(slack: &SlackServer) -> (Pipeline, String) {
    let pipeline = Pipeline::start(Options {
        extra: format!("{}{COMMANDS}", slack.socket_config(1)),
        ..Options::default()
    });
    let config = std::fs::read_to_string(pipeline.config_path()).unwrap();
    (pipeline, config)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_bots_receiving_the_same_click_decide_once_and_the_job_runs_once() {
    let slack = SlackServer::start().await;
    let (pipeline, config) = pipeline(&slack);
    let _worker = pipeline.worker("worker-1");
    let _a = SlackBot::start(&config);
    let _b = SlackBot::start(&config);
    connected(&slack, 2).await;
    let asked = ask(&slack, "UALICE", "deploy web").await;
    let approvers = prompt_in(&slack, "CAPPROVERS", None).await;

    // Bob's click arrives twice (Slack sending it again, to the other bot), while Carol
    // presses Approve on the other prompt.
    let bobs = slack.people().clicks("UBOB", &approvers, APPROVE);
    let carols = slack.people().clicks("UCAROL", &asked.prompt, APPROVE);
    slack.send_interaction(bobs.clone());
    slack.send_interaction(carols);
    slack.send_interaction(bobs);

    let status = requester_told(&slack, &asked, "succeeded").await;
    assert!(status.text.ends_with("web"), "{status:#?}");
    let decided = message_when(
        &slack,
        "the prompt showing the decision",
        &asked.channel,
        &asked.prompt.ts,
        |m| m.buttons().is_empty(),
    )
    .await;
    let winner = if decided.text.contains("approved by <@UBOB>") {
        "UBOB"
    } else {
        assert!(
            decided.text.contains("approved by <@UCAROL>"),
            "{decided:#?}"
        );
        "UCAROL"
    };
    let loser = if winner == "UBOB" { "UCAROL" } else { "UBOB" };
    let told = slack
        .wait_for("the second approver told", |s| {
            s.ephemerals().into_iter().find(|e| e.user == loser)
        })
        .await;
    assert!(
        told.text
            .contains(&format!("was already approved by slack:{winner}")),
        "{told:#?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(slack.ephemerals().len(), 1, "{:#?}", slack.ephemerals());
    // One status message with one result, and the prompt: the job ran once.
    let thread = slack.thread(&asked.channel, &asked.ts);
    assert_eq!(thread.len(), 2, "{thread:#?}");
    let results = thread[0]
        .edits
        .iter()
        .filter(|e| e.contains("succeeded"))
        .count();
    assert_eq!(results, 1, "{thread:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_click_after_the_bot_restarts_approves_and_the_audit_trail_shows_who_did_what() {
    use jobs::{AuditKind, Store};
    let slack = SlackServer::start().await;
    let (pipeline, config) = pipeline(&slack);
    let _worker = pipeline.worker("worker-1");
    let mut bot = SlackBot::start(&config);
    connected(&slack, 1).await;
    let asked = ask(&slack, "UALICE", "deploy web because the fix for #42").await;
    assert!(
        asked.prompt.text.contains("because the fix for #42"),
        "{:#?}",
        asked.prompt
    );
    let approvers = prompt_in(&slack, "CAPPROVERS", None).await;
    let job = asked.job();

    bot.kill();
    connected(&slack, 0).await;
    bot.restart();
    connected(&slack, 1).await;
    slack.send_interaction(slack.people().clicks("UBOB", &approvers, APPROVE));
    let status = requester_told(&slack, &asked, "succeeded").await;
    assert!(status.text.ends_with("web"), "{status:#?}");
    prompts_show(&slack, &asked, &approvers, "approved by <@UBOB>").await;

    // The audit trail in Redis: the request, the approval and the outcome, with who.
    let store = jobs::redis::RedisStore::connect(&config::StoreConfig::new(config::Secret::new(
        pipeline.redis.url(),
    )))
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let entries = loop {
        let now = chrono::Utc::now();
        let entries = store
            .audit(now - chrono::Duration::hours(1), now, 100)
            .await
            .unwrap();
        let finished = entries.iter().any(|e| {
            e.kind == AuditKind::Outcome && e.job.map(|j| j.to_string()) == Some(job.clone())
        });
        if finished {
            break entries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no outcome of job {job} in the audit trail: {entries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let of_job: Vec<_> = entries
        .iter()
        .filter(|e| e.job.map(|j| j.to_string()) == Some(job.clone()) || e.text.contains(&job))
        .collect();
    let asked_entry = of_job
        .iter()
        .find(|e| e.kind == AuditKind::Request && e.identity == "slack:UALICE")
        .unwrap_or_else(|| panic!("no request by Alice: {of_job:#?}"));
    assert_eq!(asked_entry.outcome, "awaiting approval", "{asked_entry:#?}");
    assert!(
        asked_entry.text.starts_with("deploy web"),
        "{asked_entry:#?}"
    );
    let approval = of_job
        .iter()
        .find(|e| e.kind == AuditKind::Request && e.identity == "slack:UBOB")
        .unwrap_or_else(|| panic!("no approval by Bob: {of_job:#?}"));
    assert_eq!(approval.text, format!("approve {job}"));
    assert_eq!(approval.outcome, "answered", "{approval:#?}");
    assert_eq!(
        approval.channel.as_deref(),
        Some("CAPPROVERS"),
        "{approval:#?}"
    );
    let outcome = of_job
        .iter()
        .find(|e| e.kind == AuditKind::Outcome)
        .unwrap();
    assert_eq!(outcome.identity, "slack:UALICE", "{outcome:#?}");
    assert_eq!(outcome.outcome, "succeeded", "{outcome:#?}");

    // An auditor reads the same through Slack.
    let audit = slack.people().dm("UAUDITOR", "audit last 50");
    slack.send_event(audit.payload);
    let table = slack
        .wait_for("the audit table", |s| {
            let thread = s.thread("DUAUDITOR", &audit.ts);
            (!thread.is_empty()).then(|| {
                thread
                    .into_iter()
                    .map(|m| m.text)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        })
        .await;
    for seen in [
        format!("approve {job}"),
        "slack:UBOB".to_string(),
        "awaiting approval".to_string(),
        "succeeded".to_string(),
    ] {
        assert!(table.contains(&seen), "{seen} not in {table}");
    }
}
