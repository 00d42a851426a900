//! The bot in Slack: the real `octobox-bot` and its real Slack client (slack-morphism),
//! pointed at the local Slack server in `octobox_tests::slack_server`.

use std::time::Duration;

use octobox_tests::pipeline::{Options, Pipeline};
use octobox_tests::services::free_port;
use octobox_tests::slack_bot::SlackBot;
use octobox_tests::slack_server::{sign, SlackServer, PATIENCE};

/// Commands the scenarios use: a job that takes a while, one that echoes, one for a group
/// (with the built-in `echo`, a job that returns its text).
const COMMANDS: &str = r#"
[acl]
default = "allow"

[acl.groups]
oncall = ["slack:UALICE", "slack:channel:COPS"]

[[command]]
pattern = "wait {for:duration}"
help = "Wait a while"
native = "sleep"

[[command]]
pattern = "say {text:text}"
help = "Repeat a sentence"
native = "echo"

[[command]]
pattern = "deploy {for:duration}"
help = "Deploy (on call only)"
native = "sleep"
allow = ["group:oncall"]
"#;

async fn embedded_bot(slack: &SlackServer) -> SlackBot {
    embedded_bot_with(slack, "").await
}

/// An embedded bot serving Slack with `COMMANDS` and the `[[command]]` entries in `more`.
async fn embedded_bot_with(slack: &SlackServer, more: &str) -> SlackBot {
    let bot = SlackBot::start(&format!("{}{COMMANDS}{more}", slack.socket_config(2)));
    slack
        .wait_for("the bot's Socket Mode connections", |s| {
            (s.open_sockets() == 2).then_some(())
        })
        .await;
    bot
}

/// The replies in the thread under `ts` (in `channel`), once there are `n`.
async fn replies(slack: &SlackServer, channel: &str, ts: &str, n: usize) -> Vec<String> {
    slack
        .wait_for(&format!("{n} replies under {ts}"), |s| {
            let thread = s.thread(channel, ts);
            (thread.len() >= n).then(|| thread.into_iter().map(|m| m.text).collect())
        })
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_direct_message_is_answered_in_its_thread_and_acknowledged_at_once() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    let said = slack.people().dm("UALICE", "ping");
    let envelope = slack.send_event(said.payload);
    assert_eq!(replies(&slack, "DUALICE", &said.ts, 1).await, vec!["pong"]);
    let envelope = slack
        .wait_for("the envelope's acknowledgement", |s| {
            s.envelope(&envelope).filter(|e| e.acked_at.is_some())
        })
        .await;
    assert_eq!(
        envelope.sends, 1,
        "acknowledged on the connection it was sent on"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_channel_the_bot_answers_mentions_and_prefixes_and_ignores_the_rest() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    let people = slack.people();
    let chatter = people.says("CGENERAL", "UBOB", "good morning everyone");
    let from_a_bot = people.bot_says("DUBOB", "ping");
    let mention = people.mentions("CGENERAL", "UBOB", "ping");
    let prefixed = people.says("CGENERAL", "UBOB", "!whoami");
    for said in [&chatter, &from_a_bot, &mention, &prefixed] {
        slack.send_event(said.payload.clone());
    }
    assert_eq!(
        replies(&slack, "CGENERAL", &mention.ts, 1).await,
        vec!["pong"]
    );
    let whoami = replies(&slack, "CGENERAL", &prefixed.ts, 1).await;
    assert!(whoami[0].contains("slack:UBOB"), "{whoami:?}");
    // Everything Slack sent was acknowledged; only the two requests were answered.
    slack
        .wait_for("every envelope acknowledged", |s| {
            s.envelopes()
                .iter()
                .all(|e| e.acked_at.is_some())
                .then_some(())
        })
        .await;
    let posted = slack.messages();
    assert_eq!(posted.len(), 2, "{posted:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slash_command_is_answered_in_its_channel() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    slack.send_command(slack.people().slash("COPS", "UBOB", "ping"));
    let answer = slack
        .wait_for("the slash command's answer", |s| {
            s.messages().into_iter().find(|m| m.channel == "COPS")
        })
        .await;
    assert_eq!(answer.text, "pong");
    assert_eq!(answer.thread_ts, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_async_job_has_one_status_message_edited_until_its_result() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    let said = slack.people().dm("UALICE", "wait 2s");
    slack.send_event(said.payload);
    let status = slack
        .wait_for("the status message showing the result", |s| {
            s.thread("DUALICE", &said.ts)
                .into_iter()
                .find(|m| m.text.contains("succeeded"))
        })
        .await;
    assert!(
        status.first_text.starts_with("queued as job "),
        "{status:#?}"
    );
    let job = status.first_text.trim_start_matches("queued as job ");
    assert!(
        status
            .edits
            .iter()
            .any(|e| e == &format!("job {job} running on embedded")),
        "{status:#?}"
    );
    let last = status.edits.last().unwrap();
    assert!(
        last.starts_with(&format!("job {job} (wait) succeeded in 2")),
        "{last}"
    );
    assert!(last.ends_with("slept 2s"), "{last}");
    // One message in the thread: the status, edited; never a second one.
    assert_eq!(slack.thread("DUALICE", &said.ts).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_too_long_for_messages_is_uploaded_as_a_file_into_the_thread() {
    let slack = SlackServer::start().await;
    // The request is longer than the default `[bot] max_message_length`.
    let _bot = embedded_bot_with(&slack, "[bot]\nmax_message_length = 65536\n").await;
    let words: Vec<String> = (0..4_000).map(|i| format!("line-{i}")).collect();
    let long = words.join(" ");
    let said = slack.people().dm("UALICE", &format!("say {long}"));
    slack.send_event(said.payload);
    let file = slack
        .wait_for("the uploaded file", |s| s.files().into_iter().next())
        .await;
    let text = String::from_utf8(file.bytes).unwrap();
    assert!(
        text.starts_with("job ") && text.trim_end().ends_with(&long),
        "{}",
        &text[..80]
    );
    assert!(
        file.name.starts_with("job-") && file.name.ends_with(".txt"),
        "{}",
        file.name
    );
    assert_eq!(file.channel.as_deref(), Some("DUALICE"));
    assert_eq!(file.thread_ts.as_deref(), Some(said.ts.as_str()));
    let methods: Vec<String> = slack.calls().into_iter().map(|c| c.method).collect();
    let upload_flow: Vec<&String> = methods
        .iter()
        .filter(|m| m.starts_with("files.") || *m == "upload")
        .collect();
    assert_eq!(
        upload_flow,
        [
            "files.getUploadURLExternal",
            "upload",
            "files.completeUploadExternal"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_reply_waits_as_slack_asks_then_arrives() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    slack.throttle("chat.postMessage", 2, 1);
    let said = slack.people().dm("UALICE", "ping");
    slack.send_event(said.payload);
    assert_eq!(replies(&slack, "DUALICE", &said.ts, 1).await, vec!["pong"]);
    let posts: Vec<_> = slack
        .calls()
        .into_iter()
        .filter(|c| c.method == "chat.postMessage")
        .collect();
    assert_eq!(
        posts.iter().map(|c| c.throttled).collect::<Vec<_>>(),
        [true, true, false]
    );
    for pair in posts.windows(2) {
        let waited = pair[1].at - pair[0].at;
        assert!(
            waited >= Duration::from_millis(950),
            "Retry-After: 1 was not honoured: the next try came after {waited:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_dropped_socket_the_bot_reconnects_and_no_event_is_lost() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    let opened_before = opened(&slack);
    slack.drop_sockets();
    // Sent while the connections are down: Slack keeps it until a connection takes it.
    let said = slack.people().dm("UALICE", "ping");
    slack.send_event(said.payload);
    assert_eq!(replies(&slack, "DUALICE", &said.ts, 1).await, vec!["pong"]);
    assert!(
        opened(&slack) > opened_before,
        "the bot opened new connections"
    );

    // Slack's own request to reconnect (before a server restart) loses nothing either.
    slack.ask_to_reconnect();
    let said = slack.people().dm("UALICE", "ping");
    slack.send_event(said.payload);
    assert_eq!(replies(&slack, "DUALICE", &said.ts, 1).await, vec!["pong"]);
}

fn opened(slack: &SlackServer) -> usize {
    slack
        .calls()
        .iter()
        .filter(|c| c.method == "apps.connections.open")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_event_runs_once() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    let said = slack.people().dm("UALICE", "wait 1s");
    let first = slack.send_event(said.payload);
    replies(&slack, "DUALICE", &said.ts, 1).await;
    let again = slack.redeliver(&first);
    slack
        .wait_for("the redelivered envelope acknowledged", |s| {
            s.envelope(&again).and_then(|e| e.acked_at)
        })
        .await;
    // A later request is answered; by then the redelivery has long been handled.
    let later = slack.people().dm("UALICE", "ping");
    slack.send_event(later.payload);
    replies(&slack, "DUALICE", &later.ts, 1).await;
    slack
        .wait_for("the job's result", |s| {
            s.thread("DUALICE", &said.ts)
                .into_iter()
                .find(|m| m.text.contains("succeeded"))
        })
        .await;
    let thread = slack.thread("DUALICE", &said.ts);
    assert_eq!(thread.len(), 1, "one job, one status message: {thread:#?}");
    let queued = slack
        .messages()
        .iter()
        .filter(|m| m.first_text.starts_with("queued as job"))
        .count();
    assert_eq!(queued, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_user_is_told_which_group_may_and_a_listed_channel_admits_everyone_in_it() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    let said = slack.people().dm("UMALLORY", "deploy 1s");
    slack.send_event(said.payload);
    let refusal = replies(&slack, "DUMALLORY", &said.ts, 1).await;
    assert_eq!(
        refusal,
        ["slack:UMALLORY may not run \"deploy\": members of group oncall may; ask to be added to it"]
    );
    let said = slack.people().mentions("COPS", "UMALLORY", "deploy 1s");
    slack.send_event(said.payload);
    let answer = replies(&slack, "COPS", &said.ts, 1).await;
    assert!(answer[0].starts_with("queued as job"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_events_api_refuses_bad_and_stale_signatures_and_serves_good_ones() {
    let slack = SlackServer::start().await;
    let port = free_port();
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let config = format!(
        "[slack]\nbot_token = \"{}\"\nmode = \"events\"\nlisten = \"127.0.0.1:{port}\"\nsigning_secret = \"${{SIGNING}}\"\napi_url = \"{}\"\n",
        octobox_tests::slack_server::BOT_TOKEN,
        slack.api_url()
    );
    let _bot = SlackBot::start_with_env(&config, &[("SIGNING", secret)]);
    let url = format!("http://127.0.0.1:{port}/slack/events");
    let now = chrono::Utc::now().timestamp();
    let post = |body: String, timestamp: i64, signature: String| {
        let url = url.clone();
        async move {
            octobox_tests::slack_server::post_signed(
                &url,
                &body,
                &timestamp.to_string(),
                &signature,
            )
            .await
        }
    };
    // Wait for the endpoint to listen.
    let forged = slack.people().dm("UALICE", "say forged");
    let body = forged.payload.to_string();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let status = loop {
        match post(body.clone(), now, "v0=0000".into()).await {
            Ok(status) => break status,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the Events API endpoint never answered: {e}"),
        }
    };
    assert_eq!(status, 401, "a forged signature");
    let stale = slack.people().dm("UALICE", "say stale");
    let body = stale.payload.to_string();
    let old = now - 600;
    let status = post(body.clone(), old, sign(secret, &old.to_string(), &body))
        .await
        .unwrap();
    assert_eq!(status, 401, "a signature more than five minutes old");

    let good = slack.people().dm("UALICE", "ping");
    let body = good.payload.to_string();
    let status = post(body.clone(), now, sign(secret, &now.to_string(), &body))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(replies(&slack, "DUALICE", &good.ts, 1).await, vec!["pong"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let posted = slack.messages();
    assert_eq!(posted.len(), 1, "only the signed request ran: {posted:#?}");

    // A slash command comes form-encoded to its own path, signed the same way.
    let url = format!("http://127.0.0.1:{port}/slack/commands");
    let form = "team_id=T0OCTOBOX&channel_id=COPS&user_id=UBOB&command=%2Foctobot&text=ping\
                &response_url=https%3A%2F%2Fhooks.slack.test%2F1&trigger_id=trigger-http-1";
    let signature = sign(secret, &now.to_string(), form);
    let status = octobox_tests::slack_server::post_signed(&url, form, &now.to_string(), &signature)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let answer = slack
        .wait_for("the slash command's answer", |s| {
            s.messages().into_iter().find(|m| m.channel == "COPS")
        })
        .await;
    assert_eq!(answer.text, "pong");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_in_flight_when_the_bot_restarts_still_gets_its_reply() {
    let slack = SlackServer::start().await;
    let pipeline = Pipeline::start(Options {
        extra: format!("{}{COMMANDS}", slack.socket_config(1)),
        ..Options::default()
    });
    let _worker = pipeline.worker("worker-1");
    let config = std::fs::read_to_string(pipeline.config_path()).unwrap();
    let mut bot = SlackBot::start(&config);
    slack
        .wait_for("the bot's connection", |s| {
            (s.open_sockets() == 1).then_some(())
        })
        .await;
    let said = slack.people().dm("UALICE", "wait 3s");
    slack.send_event(said.payload);
    slack
        .wait_for("the status message showing the job running", |s| {
            s.thread("DUALICE", &said.ts)
                .into_iter()
                .find(|m| m.text.ends_with("running on worker-1"))
        })
        .await;
    bot.kill();
    bot.restart();
    let status = slack
        .wait_for("the result after the restart", |s| {
            s.thread("DUALICE", &said.ts)
                .into_iter()
                .find(|m| m.text.contains("succeeded"))
        })
        .await;
    assert!(status.text.ends_with("slept 3s"), "{status:#?}");
    assert_eq!(slack.thread("DUALICE", &said.ts).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_bots_sharing_one_slack_app_deliver_each_reply_once() {
    let slack = SlackServer::start().await;
    let pipeline = Pipeline::start(Options {
        extra: format!("{}{COMMANDS}", slack.socket_config(1)),
        ..Options::default()
    });
    let _worker = pipeline.worker("worker-1");
    let config = std::fs::read_to_string(pipeline.config_path()).unwrap();
    let _a = SlackBot::start(&config);
    let _b = SlackBot::start(&config);
    slack
        .wait_for("both bots' connections", |s| {
            (s.open_sockets() == 2).then_some(())
        })
        .await;
    // Twenty requests from ten people (ten DM channels, each paced on its own).
    let asked: Vec<_> = (0..20)
        .map(|i| {
            let user = format!("U{}", i % 10);
            let said = slack.people().dm(&user, &format!("say hello {i}"));
            (format!("D{user}"), said)
        })
        .collect();
    for (_, said) in &asked {
        slack.send_event(said.payload.clone());
    }
    for (i, (channel, said)) in asked.iter().enumerate() {
        let status = slack
            .wait_for(&format!("the result of request {i}"), |s| {
                s.thread(channel, &said.ts)
                    .into_iter()
                    .find(|m| m.text.contains("succeeded"))
            })
            .await;
        assert!(status.text.ends_with(&format!("hello {i}")), "{status:#?}");
    }
    for (channel, said) in &asked {
        let thread = slack.thread(channel, &said.ts);
        assert_eq!(thread.len(), 1, "{thread:#?}");
        // Once the result shows, it stays: no later edit says anything else.
        let result = thread[0].edits.iter().position(|e| e.contains("succeeded"));
        let after: Vec<_> = thread[0].edits[result.unwrap()..].iter().collect();
        assert!(after.iter().all(|e| *e == &thread[0].text), "{thread:#?}");
    }
}

/// A job whose result is a PNG (as a container task makes): the bot's Slack reply path,
/// in process, from the stored result to the file in the thread.
#[tokio::test(flavor = "multi_thread")]
async fn a_png_result_is_uploaded_into_the_thread_of_its_request() {
    use std::sync::Arc;

    use bot::async_manager::{AsyncManager, Sinks};
    use bot::slack::api::SlackApi;
    use bot::slack::mrkdwn::Mrkdwn;
    use bot::slack::outbox::Outbox;
    use bot::slack::sink::{note_status, SlackSink};
    use jobs::memory::MemoryStore;
    use jobs::{Job, JobResult, JobStatus, Origin, Output, Store, Task};
    use tokio_util::sync::CancellationToken;

    jobs::tls::install_provider();
    let slack = SlackServer::start().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let stop = CancellationToken::new();
    let api = SlackApi::new(&slack.api_url(), octobox_tests::slack_server::BOT_TOKEN).unwrap();
    let outbox = Arc::new(Outbox::new(api.clone(), store.clone(), stop.clone()));
    let sinks = Sinks::default();
    sinks.register(
        "slack",
        Arc::new(SlackSink {
            outbox: outbox.clone(),
            store: store.clone(),
        }),
    );
    let manager = AsyncManager::new(
        store.clone(),
        sinks,
        AsyncManager::adapter_group("slack"),
        "t",
    );
    let running = tokio::spawn(manager.run(stop.clone()));

    let mut origin = Origin::new("slack", "UALICE");
    origin.channel = Some("COPS".into());
    origin.thread = Some("1600000000.000777".into());
    let job = Job::new(
        "graph",
        Default::default(),
        Task::native("graph"),
        origin,
        Duration::from_secs(60),
    );
    store.record_job(&job).await.unwrap();
    let status = outbox
        .post(
            "COPS",
            Some("1600000000.000777"),
            &Mrkdwn::escape(&format!("queued as job {}", job.id)),
        )
        .await
        .unwrap()
        .expect("the status message's ts");
    note_status(store.as_ref(), job.id, "COPS", &status).await;
    let png: Vec<u8> = [
        &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a][..],
        &[7u8; 300],
    ]
    .concat();
    store
        .finish_job(&JobResult {
            id: job.id,
            status: JobStatus::Succeeded,
            output: Output::File {
                name: "graph.png".into(),
                media_type: "image/png".into(),
                bytes: png.clone(),
            },
            worker: "worker-2".into(),
            started_at: chrono::Utc::now(),
            finished_at: chrono::Utc::now(),
            error: None,
        })
        .await
        .unwrap();

    let file = slack
        .wait_for("the PNG in the thread", |s| s.files().into_iter().next())
        .await;
    assert_eq!(file.name, "graph.png");
    assert_eq!(file.bytes, png);
    assert_eq!(file.thread_ts.as_deref(), Some("1600000000.000777"));
    let upload = slack
        .calls()
        .into_iter()
        .find(|c| c.method == "files.getUploadURLExternal")
        .unwrap();
    assert_eq!(upload.params["length"], png.len().to_string());
    let shown = slack
        .wait_for("the status message naming the file", |s| {
            s.messages()
                .into_iter()
                .find(|m| m.text.contains("graph.png"))
        })
        .await;
    assert_eq!(shown.ts, status, "the status message became the result");
    stop.cancel();
    running.await.unwrap();
}

/// The whole way, with no part stood in for: a container job writes a PNG in base64, the
/// worker decodes it into a file, and the bot uploads it into the request's thread.
#[tokio::test(flavor = "multi_thread")]
async fn a_png_drawn_by_a_container_job_arrives_as_a_file_in_the_thread() {
    let image = tokio::task::spawn_blocking(octobox_tests::containers::probe_image)
        .await
        .expect("the probe image builds");
    let slack = SlackServer::start().await;
    let picture = format!(
        r#"
[[command]]
pattern = "picture"
help = "Draw a small picture"
container = {{ image = "{image}", argv = ["png"], output = "base64" }}
"#
    );
    let _bot = embedded_bot_with(&slack, &picture).await;
    let said = slack.people().dm("UALICE", "picture");
    slack.send_event(said.payload);
    let file = slack
        .wait_for("the PNG in the thread", |s| s.files().into_iter().next())
        .await;
    assert!(file.name.ends_with(".png"), "{}", file.name);
    assert!(
        file.bytes
            .starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]),
        "not a PNG: {:?}",
        &file.bytes[..file.bytes.len().min(16)]
    );
    assert_eq!(file.thread_ts.as_deref(), Some(said.ts.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_token_slack_refuses_stops_the_bot_with_a_clear_error_that_hides_the_token() {
    let slack = SlackServer::start().await;
    let config = slack.socket_config(1).replace(
        octobox_tests::slack_server::BOT_TOKEN,
        "xoxb-revoked-secret",
    );
    let mut bot = SlackBot::start(&config);
    let status = slack.wait_for("the bot to exit", |_| bot.exited()).await;
    assert!(!status.success());
    let log = bot.log();
    assert!(
        log.contains("cannot check the bot token with Slack at") && log.contains("invalid_auth"),
        "{log}"
    );
    assert!(!log.contains("xoxb-revoked-secret"), "{log}");
}

/// Slack markup that would ping or link if the bot posted it as it came.
const LIVE_MARKUP: [&str; 4] = [
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<https://evil.example|docs>",
];

/// Every text the bot posted (each message as posted, as it is now, each edit) that holds
/// live markup.
fn live_markup_posted(slack: &SlackServer) -> Vec<String> {
    slack
        .messages()
        .into_iter()
        .flat_map(|m| [vec![m.first_text, m.text], m.edits].concat())
        .filter(|t| LIVE_MARKUP.iter().any(|live| t.contains(live)))
        .collect()
}

/// The first message in `thread` of `channel` whose text holds `part`.
async fn shown(slack: &SlackServer, channel: &str, thread: &str, part: &str) -> String {
    slack
        .wait_for(&format!("a reply holding {part:?} under {thread}"), |s| {
            s.thread(channel, thread)
                .into_iter()
                .find(|m| m.text.contains(part))
                .map(|m| m.text)
        })
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn values_are_posted_escaped_so_they_never_ping_or_link() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    let people = slack.people();
    // What people type, as Slack sends it: `<` and `>` already escaped.
    let typed = people.dm(
        "UALICE",
        "echo &lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|docs&gt;",
    );
    // Markup as Slack sends real mentions and links: raw.
    let raw = people.mentions(
        "COPS",
        "UBOB",
        "echo <!channel> <!here> <@U123> <https://evil.example|docs>",
    );
    // Errors that quote the value: an unknown command, a bad argument.
    let unknown = people.dm(
        "UCAROL",
        "&lt;!channel&gt; &lt;https://evil.example|docs&gt;",
    );
    let bad = people.dm("UDAVE", "wait &lt;!here&gt;&lt;@U123&gt;");
    for said in [&typed, &raw, &unknown, &bad] {
        slack.send_event(said.payload.clone());
    }
    let echoed = shown(&slack, "DUALICE", &typed.ts, "succeeded").await;
    assert!(
        echoed.ends_with(
            "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|docs&gt;"
        ),
        "{echoed}"
    );
    shown(&slack, "COPS", &raw.ts, "succeeded").await;
    let refused = shown(&slack, "DUCAROL", &unknown.ts, "unknown command").await;
    assert!(
        refused.contains("&lt;!channel&gt; &lt;https://evil.example|docs&gt;"),
        "{refused}"
    );
    let refused = replies(&slack, "DUDAVE", &bad.ts, 1).await;
    assert!(refused[0].contains("&lt;!here&gt;"), "{refused:?}");
    assert_eq!(live_markup_posted(&slack), Vec::<String>::new());
    // Names typed as text (`@channel`) are never linked either.
    for call in slack.calls() {
        if call.method == "chat.postMessage" || call.method == "chat.update" {
            assert_eq!(call.params["link_names"], false, "{call:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mention_by_another_bot_or_the_bot_itself_is_ignored_and_a_persons_is_answered() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    let people = slack.people();
    let by_a_bot = people.bot_mentions("COPS", "UOTHERBOT", "echo hi");
    let by_itself = people.mentions("COPS", octobox_tests::slack_server::BOT_USER, "echo hi");
    for said in [&by_a_bot, &by_itself] {
        slack.send_event(said.payload.clone());
    }
    let by_a_person = people.mentions("COPS", "UBOB", "ping");
    slack.send_event(by_a_person.payload);
    assert_eq!(
        replies(&slack, "COPS", &by_a_person.ts, 1).await,
        vec!["pong"]
    );
    // Events are handled as they come: by the time a later request is answered the
    // bots' mentions have long been handled. No job was queued for them.
    let jobs = people.dm("UBOB", "jobs");
    slack.send_event(jobs.payload);
    assert_eq!(
        replies(&slack, "DUBOB", &jobs.ts, 1).await,
        vec!["no jobs yet"]
    );
    assert!(slack.thread("COPS", &by_a_bot.ts).is_empty());
    assert!(slack.thread("COPS", &by_itself.ts).is_empty());
    assert_eq!(slack.messages().len(), 2, "{:#?}", slack.messages());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_slack_answers_with_an_unreadable_body_is_posted_once() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot(&slack).await;
    slack.garble("chat.postMessage", 1);
    let said = slack.people().dm("UALICE", "ping");
    slack.send_event(said.payload);
    assert_eq!(replies(&slack, "DUALICE", &said.ts, 1).await, vec!["pong"]);
    // A later reply in the same channel goes out after anything more the first would do.
    let later = slack.people().dm("UALICE", "ping");
    slack.send_event(later.payload);
    assert_eq!(replies(&slack, "DUALICE", &later.ts, 1).await, vec!["pong"]);
    assert_eq!(slack.thread("DUALICE", &said.ts).len(), 1, "posted once");
    let posts = slack
        .calls()
        .into_iter()
        .filter(|c| c.method == "chat.postMessage")
        .count();
    assert_eq!(posts, 2);

    // A job whose status message got an unreadable answer: its result follows in the
    // thread instead of replacing the status.
    slack.garble("chat.postMessage", 1);
    let job = slack.people().dm("UALICE", "wait 1s");
    slack.send_event(job.payload);
    shown(&slack, "DUALICE", &job.ts, "succeeded").await;
    let thread = slack.thread("DUALICE", &job.ts);
    assert_eq!(thread.len(), 2, "{thread:#?}");
    assert!(
        thread[0].first_text.starts_with("queued as job"),
        "{thread:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_past_the_length_limit_is_refused_before_it_is_read() {
    let slack = SlackServer::start().await;
    let _bot = embedded_bot_with(&slack, "[bot]\nmax_message_length = 100\n").await;
    let long = format!("echo &lt;!channel&gt; {}", "x".repeat(200));
    let said = slack.people().dm("UALICE", &long);
    slack.send_event(said.payload);
    let refusal = replies(&slack, "DUALICE", &said.ts, 1).await;
    assert_eq!(
        refusal,
        [format!(
            "that message is {} bytes long; commands are at most 100 characters, so nothing was run",
            long.len()
        )]
    );
    // Within the limit, the same command runs.
    let said = slack.people().dm("UALICE", "echo &lt;!channel&gt; short");
    slack.send_event(said.payload);
    let echoed = shown(&slack, "DUALICE", &said.ts, "succeeded").await;
    assert!(echoed.ends_with("&lt;!channel&gt; short"), "{echoed}");
    assert_eq!(live_markup_posted(&slack), Vec::<String>::new());
}

/// The signing secret of the Events API scenarios.
const SIGNING: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// A bot serving the Events API on a free port, once it accepts connections.
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

/// Posts `said` to the Events API as Slack does (signed now); the HTTP status.
async fn post_event(port: u16, payload: &serde_json::Value) -> u16 {
    let body = payload.to_string();
    let now = chrono::Utc::now().timestamp().to_string();
    octobox_tests::slack_server::post_signed(
        &format!("http://127.0.0.1:{port}/slack/events"),
        &body,
        &now,
        &sign(SIGNING, &now, &body),
    )
    .await
    .expect("an HTTP answer")
}

/// The status code of the HTTP response on `stream`, read within [`PATIENCE`].
async fn status_of(stream: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(PATIENCE, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within {PATIENCE:?}");
    String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_loris_is_disconnected_while_a_real_event_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let slack = SlackServer::start().await;
    let (_bot, port) = events_bot(&slack).await;
    let loris = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // A request head that would take minutes at one byte a second.
    let head = format!(
        "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(200)
    );
    let held = tokio::spawn(async move {
        let (mut reader, mut writer) = loris.into_split();
        let writing = async {
            for byte in head.bytes() {
                if writer.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        let mut answer = Vec::new();
        tokio::select! {
            _ = reader.read_to_end(&mut answer) => {}
            () = writing => {}
        }
        String::from_utf8_lossy(&answer).into_owned()
    });
    // Meanwhile Slack's events are served.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let good = slack.people().dm("UALICE", "ping");
    assert_eq!(post_event(port, &good.payload).await, 200);
    assert_eq!(replies(&slack, "DUALICE", &good.ts, 1).await, vec!["pong"]);
    let answer = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("the slow client was never disconnected")
        .unwrap();
    assert!(!answer.contains(" 200 "), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_past_the_limit_is_refused_without_being_read_whole() {
    use tokio::io::AsyncWriteExt;
    let slack = SlackServer::start().await;
    let (_bot, port) = events_bot(&slack).await;
    let now = chrono::Utc::now().timestamp();
    let head = |framing: &str| {
        format!(
            "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             X-Slack-Request-Timestamp: {now}\r\nX-Slack-Signature: v0=00\r\n{framing}\r\n\r\n"
        )
    };
    // Declared past the limit (1.5 MiB): refused from the head alone, no body sent.
    let mut declared = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    declared
        .write_all(head("Content-Length: 1572864").as_bytes())
        .await
        .unwrap();
    assert_eq!(status_of(&mut declared).await, Some(413));

    // Undeclared (chunked): refused once more than the limit has come, the request
    // never finished.
    let mut chunked = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    chunked
        .write_all(head("Transfer-Encoding: chunked").as_bytes())
        .await
        .unwrap();
    let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
    for _ in 0..17 {
        chunked.write_all(chunk.as_bytes()).await.unwrap();
    }
    assert_eq!(status_of(&mut chunked).await, Some(413));

    // Events are still served.
    let good = slack.people().dm("UALICE", "ping");
    assert_eq!(post_event(port, &good.payload).await, 200);
    assert_eq!(replies(&slack, "DUALICE", &good.ts, 1).await, vec!["pong"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_are_closed_and_events_still_get_in_once_they_go() {
    use tokio::io::AsyncReadExt;
    let slack = SlackServer::start().await;
    let (_bot, port) = events_bot(&slack).await;
    let mut idle = Vec::new();
    for _ in 0..256 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    // One more is closed at once, well before the idle ones' 10 s to send a head.
    let mut extra = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the connection past the cap was kept: {closed:?}"
    );
    let still_open = tokio::time::timeout(Duration::from_millis(200), idle[0].read(&mut buf)).await;
    assert!(
        still_open.is_err(),
        "an idle connection within the cap was closed early"
    );
    drop(idle);
    let good = slack.people().dm("UALICE", "ping");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // The closed connections' permits come back as their tasks see them go.
    loop {
        let body = good.payload.to_string();
        let now = chrono::Utc::now().timestamp().to_string();
        let status = octobox_tests::slack_server::post_signed(
            &format!("http://127.0.0.1:{port}/slack/events"),
            &body,
            &now,
            &sign(SIGNING, &now, &body),
        )
        .await;
        if status.as_ref().is_ok_and(|s| *s == 200) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(replies(&slack, "DUALICE", &good.ts, 1).await, vec!["pong"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_events_api_ignores_a_mention_by_another_bot() {
    let slack = SlackServer::start().await;
    let (_bot, port) = events_bot(&slack).await;
    let by_a_bot = slack.people().bot_mentions("COPS", "UOTHERBOT", "echo hi");
    assert_eq!(post_event(port, &by_a_bot.payload).await, 200);
    let by_a_person = slack.people().mentions("COPS", "UBOB", "ping");
    assert_eq!(post_event(port, &by_a_person.payload).await, 200);
    assert_eq!(
        replies(&slack, "COPS", &by_a_person.ts, 1).await,
        vec!["pong"]
    );
    let jobs = slack.people().dm("UBOB", "jobs");
    assert_eq!(post_event(port, &jobs.payload).await, 200);
    assert_eq!(
        replies(&slack, "DUBOB", &jobs.ts, 1).await,
        vec!["no jobs yet"]
    );
    assert!(slack.thread("COPS", &by_a_bot.ts).is_empty());
}

/// A flood of progress: the bot's Slack reply path, in process (store, async manager,
/// sink, outbox, the real client), from stored events to the local Slack server. While
/// Slack makes edits wait, hundreds of progress events per job arrive; edits are dropped
/// to keep the channel's queue bounded (a queue of 4 here, so six jobs overfill it), and
/// never a result.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_progress_never_loses_a_result() {
    use std::sync::Arc;

    use bot::async_manager::{AsyncManager, Sinks};
    use bot::slack::api::SlackApi;
    use bot::slack::mrkdwn::Mrkdwn;
    use bot::slack::outbox::Outbox;
    use bot::slack::sink::{note_status, SlackSink};
    use jobs::memory::MemoryStore;
    use jobs::{Event, EventKind, Job, JobResult, JobStatus, Origin, Output, Store, Task};
    use tokio_util::sync::CancellationToken;

    jobs::tls::install_provider();
    let slack = SlackServer::start().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let stop = CancellationToken::new();
    let api = SlackApi::new(&slack.api_url(), octobox_tests::slack_server::BOT_TOKEN).unwrap();
    let outbox = Arc::new(Outbox::with_queue_limit(
        api,
        store.clone(),
        stop.clone(),
        4,
    ));
    let sinks = Sinks::default();
    sinks.register(
        "slack",
        Arc::new(SlackSink {
            outbox: outbox.clone(),
            store: store.clone(),
        }),
    );
    let manager = AsyncManager::new(
        store.clone(),
        sinks,
        AsyncManager::adapter_group("slack"),
        "t",
    );

    // Six jobs asked in one channel, each with its status message.
    let mut asked = Vec::new();
    for i in 0..6 {
        let thread = format!("1600000000.{i:06}");
        let mut origin = Origin::new("slack", "UALICE");
        origin.channel = Some("COPS".into());
        origin.thread = Some(thread.clone());
        let job = Job::new(
            "flood",
            Default::default(),
            Task::native("flood"),
            origin,
            Duration::from_secs(60),
        );
        store.record_job(&job).await.unwrap();
        let status = outbox
            .post(
                "COPS",
                Some(&thread),
                &Mrkdwn::escape(&format!("queued as job {}", job.id)),
            )
            .await
            .unwrap()
            .expect("the status message's ts");
        note_status(store.as_ref(), job.id, "COPS", &status).await;
        asked.push((job, status));
    }
    // Slack makes edits wait; meanwhile the running jobs send 1,200 progress events,
    // then their results.
    let running = tokio::spawn(manager.run(stop.clone()));
    slack.throttle("chat.update", 2, 2);
    for n in 0..200 {
        for (job, _) in &asked {
            let line = format!("step {n} <!channel>");
            store
                .append_event(&Event::now(job.id, EventKind::Progress { line }))
                .await
                .unwrap();
        }
    }
    // The flood is being shown (the queue of 4 is full and edits are dropped) before
    // any result is stored.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while outbox.dropped_edits() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress edit was dropped while Slack held the channel's queue"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (i, (job, _)) in asked.iter().enumerate() {
        store
            .finish_job(&JobResult {
                id: job.id,
                status: JobStatus::Succeeded,
                output: Output::Text {
                    text: format!("result {i}"),
                },
                worker: "worker-1".into(),
                started_at: chrono::Utc::now(),
                finished_at: chrono::Utc::now(),
                error: None,
            })
            .await
            .unwrap();
    }

    for (i, (_, status)) in asked.iter().enumerate() {
        let shown = slack
            .wait_for(&format!("the result of job {i}"), |s| {
                s.messages()
                    .into_iter()
                    .find(|m| &m.ts == status && m.text.contains("succeeded"))
            })
            .await;
        assert!(shown.text.ends_with(&format!("result {i}")), "{shown:#?}");
    }
    // Whatever edits were still queued, none replaced a result afterwards.
    tokio::time::sleep(Outbox::EDIT_GAP * 2).await;
    for (i, (_, status)) in asked.iter().enumerate() {
        let message = slack
            .messages()
            .into_iter()
            .find(|m| &m.ts == status)
            .unwrap();
        assert!(
            message.text.ends_with(&format!("result {i}")),
            "{message:#?}"
        );
    }
    let edits = slack
        .calls()
        .into_iter()
        .filter(|c| c.method == "chat.update")
        .count();
    assert!(edits < 1_200, "{edits} edits for 1,200 progress events");
    assert_eq!(live_markup_posted(&slack), Vec::<String>::new());
    stop.cancel();
    running.await.unwrap();
}
