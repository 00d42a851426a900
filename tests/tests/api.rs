//! The HTTP API of the real `octobox-bot` (embedded mode): tokens and the access policy,
//! commands, the job history with filters and cursors, cancel and re-run, workers,
//! audit, live events as Server-Sent Events, and bad input answered with clear errors;
//! the dashboard in headless Chromium; and schemathesis against the OpenAPI document.

use std::time::Duration;

use octobox_tests::api::{ApiBot, AUDITOR, OPS, VIEWER};
use octobox_tests::browser::Browser;
use octobox_tests::schemathesis;
use serde_json::{json, Value};

/// `deploy` is for group oncall; `echo` and `sleep` for everyone.
const COMMANDS: &str = r#"
[acl]
default = "allow"

[[command]]
pattern = "deploy {text:word}"
help = "Deploy a service"
native = "echo"
allow = ["group:oncall"]

[[command]]
pattern = "restart {text:word}"
help = "Restart a service, once the auditor says yes"
native = "echo"
allow = ["everyone"]
approval = { by = "user:api:auditor", ttl = "10m" }
"#;

fn id_of(called: &Value) -> String {
    called["job"]
        .as_str()
        .unwrap_or_else(|| panic!("no job id in {called}"))
        .to_string()
}

#[tokio::test]
async fn only_a_declared_token_gets_in_and_nothing_says_why_not() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let nobody = bot.anonymous();
    let got = nobody.get("/api/v1/jobs").await;
    assert_eq!(got.status, 401, "{}", got.text);
    assert_eq!(got.json, json!({"error": "unauthorized"}));
    assert_eq!(got.headers["www-authenticate"], "Bearer");
    // A token one character short, one character off, another scheme: the same answer.
    for token in [
        &OPS[..OPS.len() - 1],
        &format!("{}X", &OPS[..OPS.len() - 1]),
    ] {
        let got = bot.api(token).get("/api/v1/jobs").await;
        assert_eq!(
            (got.status, &got.json),
            (401, &json!({"error": "unauthorized"}))
        );
    }
    let basic = nobody
        .http
        .get(format!("{}/api/v1/workers", bot.base))
        .header("authorization", format!("Basic {OPS}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
    // An action with the dashboard's cookie and no token is refused too.
    let got = nobody.ask("ping").await;
    assert_eq!(got.status, 401);
    // The document is public.
    let doc = nobody.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json["openapi"], "3.0.3");
    // The token never reaches the log.
    assert!(!bot.ssh.log().contains(OPS), "{}", bot.ssh.log());
}

#[tokio::test]
async fn commands_run_as_the_token_through_the_access_policy_and_land_in_the_history() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let (ops, viewer, auditor) = (bot.api(OPS), bot.api(VIEWER), bot.api(AUDITOR));

    let pong = ops.ask("ping").await;
    assert_eq!(pong.status, 200, "{}", pong.text);
    assert_eq!(pong.json["outcome"], "done");

    let whoami = viewer.ask("whoami").await;
    assert!(
        whoami.json["text"].as_str().unwrap().contains("api:viewer"),
        "{}",
        whoami.text
    );

    let queued = ops.ask("echo hello from the api").await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let echo = id_of(&queued.json);
    let done = ops.finished(&echo).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["requester"], "api:ops");
    assert_eq!(done["output"]["text"], "hello from the api");

    // Access: viewer is not in oncall; ops is.
    let refused = viewer.ask("deploy web").await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.json["outcome"], "refused");
    assert!(
        refused.json["text"].as_str().unwrap().contains("oncall"),
        "{}",
        refused.text
    );
    let deploy = id_of(&ops.ask("deploy web").await.json);
    assert_eq!(ops.finished(&deploy).await["status"], "succeeded");

    // An SSH user's job shows in the same history.
    let run = bot.ssh.exec("alice", "echo from ssh");
    assert!(run.stdout.contains("from ssh"), "{run:?}");

    // Someone else's job: its arguments and output are hidden from viewer, not from the auditor.
    let seen = viewer.get(&format!("/api/v1/jobs/{echo}")).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.json["args"], Value::Null);
    assert_eq!(seen.json["output"], Value::Null);
    let seen = auditor.get(&format!("/api/v1/jobs/{echo}")).await;
    assert_eq!(seen.json["output"]["text"], "hello from the api");

    // Filters.
    let mine = ops
        .get("/api/v1/jobs?requester=api:ops&status=succeeded")
        .await;
    let ids: Vec<&str> = mine.json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![deploy.as_str(), echo.as_str()], "{}", mine.text);
    let by_ssh = ops.get("/api/v1/jobs?adapter=ssh").await;
    assert_eq!(
        by_ssh.json["jobs"][0]["requester"], "ssh:alice",
        "{}",
        by_ssh.text
    );
    let deploys = ops.get("/api/v1/jobs?command=deploy").await;
    assert_eq!(deploys.json["jobs"].as_array().unwrap().len(), 1);
    // Pages of one, newest first, each job once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/jobs?limit=1".to_string();
    loop {
        let page = ops.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(
            page.json["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_string()),
        );
        match page.json["next"].as_str() {
            Some(next) => path = format!("/api/v1/jobs?limit=1&after={next}"),
            None => break,
        }
        assert!(seen.len() < 10, "{seen:?}");
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[1], deploy);

    // Searching text reads results: auditors only.
    let search = ops.get("/api/v1/jobs?text=HELLO").await;
    assert_eq!(search.status, 403, "{}", search.text);
    let search = auditor.get("/api/v1/jobs?text=HELLO").await;
    assert_eq!(
        search.json["jobs"][0]["id"],
        echo.as_str(),
        "{}",
        search.text
    );

    // Workers: the embedded one.
    let workers = viewer.get("/api/v1/workers").await;
    assert_eq!(workers.status, 200);
    assert!(
        !workers.json.as_array().unwrap().is_empty(),
        "{}",
        workers.text
    );

    // The audit trail has the API's requests, with who and which rule: auditors only.
    assert_eq!(viewer.get("/api/v1/audit").await.status, 403);
    let audit = auditor.get("/api/v1/audit?limit=500").await;
    let entries = audit.json["entries"].as_array().unwrap();
    let refused = entries
        .iter()
        .find(|e| e["identity"] == "api:viewer" && e["text"] == "deploy web")
        .unwrap_or_else(|| panic!("{}", audit.text));
    assert_eq!(refused["decision"], "refused");
    assert_eq!(refused["adapter"], "api");
}

#[tokio::test]
async fn cancel_and_rerun_are_the_callers_requests() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let (ops, viewer, auditor) = (bot.api(OPS), bot.api(VIEWER), bot.api(AUDITOR));
    let long = id_of(&viewer.ask("sleep 30s").await.json);
    // ops is in admins and may cancel anyone's job; auditor may not.
    let refused = auditor
        .post(&format!("/api/v1/jobs/{long}/cancel"), json!({}))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let cancelled = ops
        .post(&format!("/api/v1/jobs/{long}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(viewer.finished(&long).await["status"], "cancelled");

    let first = id_of(&ops.ask("deploy api").await.json);
    ops.finished(&first).await;
    let again = ops
        .post_raw(&format!("/api/v1/jobs/{first}/rerun"), vec![])
        .await;
    assert_eq!(again.status, 202, "{}", again.text);
    let second = id_of(&again.json);
    assert_ne!(first, second);
    let done = ops.finished(&second).await;
    assert_eq!(
        (done["command"].as_str(), done["args"]["text"].as_str()),
        (Some("deploy"), Some("api"))
    );
    assert_eq!(done["requester"], "api:ops");
    // Re-run as viewer, who may not deploy: refused, as if typed.
    let refused = viewer
        .post_raw(&format!("/api/v1/jobs/{first}/rerun"), vec![])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.json["text"].as_str().unwrap().contains("oncall"),
        "{}",
        refused.text
    );
    // The trail says who re-ran what.
    let audit = auditor.get("/api/v1/audit?limit=500").await;
    assert!(
        audit.json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == format!("rerun {first}")
                && e["identity"] == "api:viewer"
                && e["decision"] == "refused"),
        "{}",
        audit.text
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_never_a_server_error() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let ops = bot.api(OPS);
    let cases = [
        ("/api/v1/jobs?status=bogus", "is not a status"),
        ("/api/v1/jobs?limit=0", "limit must be"),
        ("/api/v1/jobs?limit=9999", "limit must be"),
        ("/api/v1/jobs?after=garbage", "cursor"),
        ("/api/v1/jobs?since=yesterday", "RFC 3339"),
        ("/api/v1/jobs?colour=blue", "bad query"),
        ("/api/v1/jobs/not-a-job", "not a job id"),
        ("/api/v1/events?colour=blue", "bad query"),
        ("/api/v1/inventory?group=we%20b", "is not a group name"),
    ];
    for (path, words) in cases {
        let got = ops.get(path).await;
        assert_eq!(got.status, 400, "{path}: {}", got.text);
        assert!(
            got.json["error"].as_str().unwrap().contains(words),
            "{path}: {}",
            got.text
        );
    }
    let long = format!("/api/v1/jobs?command={}", "x".repeat(201));
    assert_eq!(ops.get(&long).await.status, 400);
    for filter in ["command", "requester"] {
        let long = format!("/api/v1/events?{filter}={}", "x".repeat(201));
        let got = ops.get(&long).await;
        assert_eq!(got.status, 400, "{}", got.text);
        assert_eq!(
            got.json["error"],
            format!("{filter} is longer than 200 characters")
        );
    }
    let unknown = ops
        .get("/api/v1/jobs/0190a5c4-0000-7000-8000-000000000000")
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(ops.get("/api/v1/nothing-here").await.status, 404);
    let not_json = ops.post_raw("/api/v1/commands", b"ping".to_vec()).await;
    assert_eq!(not_json.status, 400, "{}", not_json.text);
    // A body past the limit is refused on its declared length, before it is read (a
    // client still sending it may find the connection closed: the head is enough).
    let head = format!(
        "POST /api/v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPS}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        200 * 1024
    );
    let answer = tokio::task::spawn_blocking({
        let addr = bot.base.trim_start_matches("http://").to_string();
        move || {
            use std::io::{Read, Write};
            let mut tcp = std::net::TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            tcp.write_all(head.as_bytes()).unwrap();
            let mut first = [0u8; 12];
            tcp.read_exact(&mut first).unwrap();
            String::from_utf8_lossy(&first).to_string()
        }
    })
    .await
    .unwrap();
    assert_eq!(answer, "HTTP/1.1 413", "{answer}");
    let unknown = ops.ask("frobnicate").await;
    assert_eq!(
        (unknown.status, unknown.json["outcome"].as_str()),
        (400, Some("unknown"))
    );
    let schedule = ops.post("/api/v1/schedules/nope/pause", json!({})).await;
    assert_eq!(schedule.status, 404, "{}", schedule.text);
    // The bot is still fine.
    assert_eq!(ops.ask("ping").await.status, 200);
}

#[tokio::test]
async fn a_caller_past_its_rate_is_told_when_to_come_back() {
    let bot = ApiBot::start_with(&["alice"], COMMANDS, "requests_per_minute = 5");
    let viewer = bot.api(VIEWER);
    for _ in 0..5 {
        assert_eq!(viewer.get("/api/v1/workers").await.status, 200);
    }
    let over = viewer.get("/api/v1/workers").await;
    assert_eq!(over.status, 429, "{}", over.text);
    let wait: u64 = over.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Another caller is counted apart.
    assert_eq!(bot.api(OPS).get("/api/v1/workers").await.status, 200);
}

#[tokio::test]
async fn live_events_reach_listeners_as_they_happen() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let (ops, viewer) = (bot.api(OPS), bot.api(VIEWER));
    let mut all = viewer.stream("/api/v1/events?command=echo").await;
    let mut deploys = ops.stream("/api/v1/events?command=deploy").await;
    // A job asked over SSH, seen by an API listener.
    let run = bot.ssh.exec("alice", "echo over ssh");
    assert!(run.stdout.contains("over ssh"), "{run:?}");
    let seen = all
        .until(Duration::from_secs(20), |e| e["event"] == "finished")
        .await;
    let kinds: Vec<&str> = seen.iter().map(|e| e["event"].as_str().unwrap()).collect();
    // A job over within a moment is never shown as started (the worker writes no start).
    assert_eq!(kinds, vec!["queued", "finished"], "{seen:#?}");
    assert!(seen
        .iter()
        .all(|e| e["command"] == "echo" && e["requester"] == "ssh:alice"));
    assert_eq!(seen[1]["status"], "succeeded");
    // The filter kept deploy's stream quiet; a deploy reaches it.
    let deploy = id_of(&ops.ask("deploy web").await.json);
    let seen = deploys
        .until(Duration::from_secs(20), |e| e["event"] == "finished")
        .await;
    assert!(
        seen.iter().all(|e| e["job"] == deploy.as_str()),
        "{seen:#?}"
    );

    // One job's stream: its state now, then its events, then the end.
    let slow = id_of(&ops.ask("sleep 2s").await.json);
    let mut one = ops.stream(&format!("/api/v1/jobs/{slow}/events")).await;
    let seen = one
        .until(Duration::from_secs(20), |e| e["event"] == "finished")
        .await;
    let kinds: Vec<&str> = seen.iter().map(|e| e["event"].as_str().unwrap()).collect();
    // Its start is shown unless it had started before the stream opened (then the
    // state says so).
    if seen[0]["status"] == "running" {
        assert_eq!(kinds, vec!["state", "finished"], "{seen:#?}");
    } else {
        assert_eq!(kinds, vec!["state", "started", "finished"], "{seen:#?}");
        assert!(seen[1]["worker"].is_string(), "{seen:#?}");
    }
    assert_eq!(seen.last().unwrap()["status"], "succeeded");
    assert!(
        one.next(Duration::from_secs(5)).await.is_none(),
        "the stream ends after finished"
    );
    // A finished job's stream is its state, and the end.
    let mut done = ops.stream(&format!("/api/v1/jobs/{slow}/events")).await;
    let state = done.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (state["event"].as_str(), state["status"].as_str()),
        (Some("state"), Some("succeeded"))
    );
    assert!(done.next(Duration::from_secs(5)).await.is_none());
}

/// A containerized task's stderr lines are its progress: they reach the job's stream whole
/// for its requester, as bare events for someone who may not read its output, and the
/// job's open page shows them as they come.
#[tokio::test]
async fn progress_reaches_the_stream_and_the_open_job_page() {
    let image = octobox_tests::containers::probe_image();
    let config = format!(
        "{COMMANDS}\n[[command]]\npattern = \"chatter\"\nhelp = \"Write a line to stderr every 400 ms\"\n\
         container = {{ image = \"{image}\", argv = [\"progress\", \"8\", \"400\"] }}\n\
         allow = [\"everyone\"]\n"
    );
    let bot = ApiBot::start(&["alice"], &config);
    let (ops, viewer) = (bot.api(OPS), bot.api(VIEWER));
    let browser = Browser::start().await.expect("headless Chromium starts");
    log_in(&browser, &bot.base, OPS).await;

    let id = id_of(&ops.ask("chatter").await.json);
    let mut mine = ops.stream(&format!("/api/v1/jobs/{id}/events")).await;
    let mut theirs = viewer.stream(&format!("/api/v1/jobs/{id}/events")).await;
    browser
        .goto(&format!("{}/ui/jobs/{id}", bot.base))
        .await
        .unwrap();
    browser
        .wait_until_text("#progress", "step ", Duration::from_secs(30))
        .await
        .unwrap();

    let seen = mine
        .until(Duration::from_secs(30), |e| e["event"] == "finished")
        .await;
    let steps: Vec<u32> = seen
        .iter()
        .filter(|e| e["event"] == "progress")
        .map(|e| {
            let line = e["line"].as_str().unwrap_or_else(|| panic!("{e}"));
            let number = line.trim_start_matches("step ").split(' ').next().unwrap();
            number.parse().unwrap_or_else(|_| panic!("{line}"))
        })
        .collect();
    assert!(!steps.is_empty(), "no progress on the stream: {seen:#?}");
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert_eq!(steps.last(), Some(&8), "the last line is always sent");
    assert_eq!(seen.last().unwrap()["status"], "succeeded", "{seen:#?}");

    let seen = theirs
        .until(Duration::from_secs(30), |e| e["event"] == "finished")
        .await;
    let progress: Vec<&Value> = seen.iter().filter(|e| e["event"] == "progress").collect();
    assert!(!progress.is_empty(), "{seen:#?}");
    assert!(
        progress.iter().all(|e| e["line"].is_null()),
        "a viewer reads no one else's progress: {progress:#?}"
    );

    // The open page kept every line the stream sent while it was open, and shows the
    // result once the job is over.
    browser
        .wait_until_text("#output", "done", Duration::from_secs(15))
        .await
        .unwrap();
    let shown = browser
        .find("#progress")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("step 8"), "{shown}");
    browser.screenshot("dashboard-progress").await.unwrap();
}

/// Logs in to the dashboard at `base` with `token`; the jobs page is shown.
async fn log_in(browser: &Browser, base: &str, token: &str) {
    browser.goto(&format!("{base}/ui/jobs")).await.unwrap();
    browser
        .wait_for("#token", Duration::from_secs(10))
        .await
        .unwrap();
    browser
        .find("#token")
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    browser.find("#login").await.unwrap().click().await.unwrap();
}

#[tokio::test]
async fn the_dashboard_shows_an_ssh_job_live_and_cancels_and_reruns_from_the_page() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let (ops, viewer) = (bot.api(OPS), bot.api(VIEWER));
    let browser = Browser::start().await.expect("headless Chromium starts");

    // A token that is not declared is told so; a declared one gets in.
    log_in(&browser, &bot.base, "not-a-token-not-a-token-not-a-token").await;
    browser
        .wait_until_text(".notice", "not declared", Duration::from_secs(10))
        .await
        .unwrap();
    log_in(&browser, &bot.base, OPS).await;
    browser
        .wait_for("#jobs", Duration::from_secs(10))
        .await
        .unwrap();
    let cookie = browser
        .cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "octobox_session")
        .expect("a session cookie");
    assert!(cookie.http_only, "{cookie:?}");
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"), "{cookie:?}");
    browser.screenshot("dashboard-1-jobs-empty").await.unwrap();

    // A job asked over SSH appears on the open page and finishes there, no reload.
    browser
        .execute("window.stillTheSamePage = true;", vec![])
        .await
        .unwrap();
    let mut ssh = bot.ssh.ssh("alice");
    ssh.arg("sleep 2s").stdin(std::process::Stdio::null());
    let mut asked = ssh.spawn().expect("ssh runs");
    let first = "#jobs tbody tr:first-child";
    browser
        .wait_until_text(
            &format!("{first} [data-role=command]"),
            "sleep",
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    browser
        .wait_until_text(
            &format!("{first} [data-role=requester]"),
            "ssh:alice",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    browser
        .wait_until_text(
            &format!("{first} [data-role=status]"),
            "running",
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    browser.screenshot("dashboard-2-job-running").await.unwrap();
    browser
        .wait_until_text(
            &format!("{first} [data-role=status]"),
            "succeeded",
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(
        browser
            .execute("return window.stillTheSamePage === true;", vec![])
            .await
            .unwrap(),
        json!(true),
        "the page was not reloaded"
    );
    assert!(asked.wait().unwrap().success());
    browser
        .screenshot("dashboard-3-job-finished")
        .await
        .unwrap();

    // Cancel from the job's page (ops is in admins; the job is viewer's).
    let long = id_of(&viewer.ask("sleep 60s").await.json);
    browser
        .goto(&format!("{}/ui/jobs/{long}", bot.base))
        .await
        .unwrap();
    browser
        .wait_for("#cancel", Duration::from_secs(10))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_until_text("#notice", "cancel", Duration::from_secs(10))
        .await
        .unwrap();
    browser
        .wait_until_text(
            "#job [data-role=status]",
            "cancelled",
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(viewer.finished(&long).await["status"], "cancelled");
    browser
        .screenshot("dashboard-4-job-cancelled")
        .await
        .unwrap();

    // Re-run from a finished job's page: the new job's page, its result shown.
    let deploy = id_of(&ops.ask("deploy payments").await.json);
    ops.finished(&deploy).await;
    browser
        .goto(&format!("{}/ui/jobs/{deploy}", bot.base))
        .await
        .unwrap();
    browser
        .wait_for("#rerun", Duration::from_secs(10))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_until_text("#output", "payments", Duration::from_secs(20))
        .await
        .unwrap();
    let url = browser.current_url().await.unwrap();
    assert!(url.contains("/ui/jobs/") && !url.contains(&deploy), "{url}");
    browser.screenshot("dashboard-5-rerun").await.unwrap();

    // An action without the page's CSRF token is refused, cookie or not.
    let forged = reqwest::Client::new()
        .post(format!("{}/ui/jobs/{deploy}/rerun", bot.base))
        .header("cookie", format!("octobox_session={}", cookie.value))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=0000")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let cross_site = reqwest::Client::new()
        .post(format!("{}/ui/jobs/{deploy}/rerun", bot.base))
        .header("cookie", format!("octobox_session={}", cookie.value))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);
    let jobs = ops.get("/api/v1/jobs?command=deploy").await;
    assert_eq!(
        jobs.json["jobs"].as_array().unwrap().len(),
        2,
        "no forged re-run: {}",
        jobs.text
    );

    // The other pages render for ops.
    for (path, title) in [
        ("/ui/workers", "Workers"),
        ("/ui/schedules", "Schedules"),
        ("/ui/dead-letters", "Dead letters"),
        ("/ui/approvals", "Approvals"),
    ] {
        browser.goto(&format!("{}{path}", bot.base)).await.unwrap();
        browser
            .wait_until_text("h1", title, Duration::from_secs(10))
            .await
            .unwrap();
    }
    // Logging out ends the session.
    browser
        .find(".logout button")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for("#token", Duration::from_secs(10))
        .await
        .unwrap();
    browser
        .goto(&format!("{}/ui/jobs", bot.base))
        .await
        .unwrap();
    browser
        .wait_for("#token", Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn schemathesis_finds_every_answer_as_the_document_says() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let ops = bot.api(OPS);
    // Some history to page through.
    for text in ["echo one", "deploy web", "sleep 1ms"] {
        assert_eq!(ops.ask(text).await.status, 202);
    }
    let url = format!("{}/api/v1/openapi.json", bot.base);
    let report = tokio::task::spawn_blocking(move || {
        schemathesis::run_excluding(
            &url,
            &[("Authorization", &format!("Bearer {OPS}"))],
            40,
            // The live streams never end: their answers are checked above.
            "/events$",
        )
    })
    .await
    .unwrap()
    .expect("schemathesis runs");
    report
        .ensure_passed()
        .expect("every answer matches the document");
    assert!(!bot.ssh.log().contains("panicked"), "{}", bot.ssh.log());
}

#[tokio::test]
async fn approvals_are_listed_and_decided_through_the_api_by_the_approver_only() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let (ops, auditor) = (bot.api(OPS), bot.api(AUDITOR));
    let held = ops.ask("restart web").await;
    assert_eq!(held.status, 202, "{}", held.text);
    let id = id_of(&held.json);
    let pending = ops.get("/api/v1/approvals").await;
    assert_eq!(pending.status, 200, "{}", pending.text);
    assert_eq!(pending.json[0]["job"]["id"], id.as_str());
    assert_eq!(pending.json[0]["by"], "user:api:auditor");
    // Never one's own request; never a decision the path does not name.
    let own = ops
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(own.status, 403, "{}", own.text);
    let odd = auditor
        .post(&format!("/api/v1/approvals/{id}/maybe"), json!({}))
        .await;
    assert_eq!(odd.status, 404, "{}", odd.text);
    let yes = auditor
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(yes.status, 200, "{}", yes.text);
    let done = ops.finished(&id).await;
    assert_eq!(
        (done["status"].as_str(), done["output"]["text"].as_str()),
        (Some("succeeded"), Some("web"))
    );

    // A deny, with its reason on one line whatever was sent.
    let id = id_of(&ops.ask("restart db").await.json);
    let no = auditor
        .post(
            &format!("/api/v1/approvals/{id}/deny"),
            json!({"reason": "not\nduring the freeze"}),
        )
        .await;
    assert_eq!(no.status, 200, "{}", no.text);
    let done = ops.finished(&id).await;
    assert_eq!(done["status"], "cancelled");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("not during the freeze"),
        "{done}"
    );
    assert_eq!(ops.get("/api/v1/approvals").await.json, json!([]));
}

#[tokio::test]
async fn schedules_are_listed_and_steered_by_admins_through_the_api() {
    let config = format!(
        "{COMMANDS}\n[[schedule]]\nname = \"nightly\"\ncron = \"0 0 3 * * *\"\nrun = \"echo nightly run\"\ndeliver = \"ssh:alice\"\n"
    );
    let bot = ApiBot::start(&["alice"], &config);
    let (ops, viewer) = (bot.api(OPS), bot.api(VIEWER));
    let listed = viewer.get("/api/v1/schedules").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json[0]["name"], "nightly");
    assert_eq!(listed.json[0]["paused"], false);
    // Steering is for group admins.
    let refused = viewer
        .post("/api/v1/schedules/nightly/pause", json!({}))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let paused = ops.post("/api/v1/schedules/nightly/pause", json!({})).await;
    assert_eq!(paused.status, 200, "{}", paused.text);
    assert_eq!(ops.get("/api/v1/schedules").await.json[0]["paused"], true);
    assert_eq!(
        ops.post("/api/v1/schedules/nightly/resume", json!({}))
            .await
            .status,
        200
    );
    assert_eq!(ops.get("/api/v1/schedules").await.json[0]["paused"], false);
    // Run now: a job of the schedule's appears in the history.
    assert_eq!(
        ops.post("/api/v1/schedules/nightly/run", json!({}))
            .await
            .status,
        200
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let jobs = ops.get("/api/v1/jobs?command=echo&status=succeeded").await;
        if jobs.json["jobs"].as_array().is_some_and(|j| !j.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no run: {}",
            jobs.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ops.post("/api/v1/schedules/nightly/explode", json!({}))
            .await
            .status,
        404
    );
}

/// An Ansible inventory imported through the API is what chat's `servers in group`
/// reads; hosts are read, replaced and removed by the admins only, each change audited.
#[tokio::test]
async fn the_inventory_is_imported_read_and_changed_through_the_api() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let (ops, viewer, auditor) = (bot.api(OPS), bot.api(VIEWER), bot.api(AUDITOR));
    let ini = "\
mail.example.com

[web]
web[01:03].example.com http_port=8080
lb.example.com

[db]
db-1.example.com

[prod:children]
web
db

[web:vars]
ntp_server=ntp.example.com
";
    let refused = viewer
        .post_raw("/api/v1/inventory/import?format=ini", ini.into())
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.json["error"]
            .as_str()
            .unwrap()
            .contains("group admins"),
        "{}",
        refused.text
    );

    let imported = ops
        .post_raw("/api/v1/inventory/import?format=ini", ini.into())
        .await;
    assert_eq!(imported.status, 200, "{}", imported.text);
    assert_eq!(
        imported.json,
        json!({"added": 6, "updated": 0, "group_vars_left_out": 1})
    );
    // Chat reads the same inventory.
    let run = bot.ssh.exec("alice", "servers in group prod");
    assert!(
        run.stdout
            .contains("group prod: 5 hosts\ndb-1.example.com\nlb.example.com\nweb01.example.com"),
        "{run:?}"
    );

    // Everyone may read; the group filter; one host.
    let all = viewer.get("/api/v1/inventory").await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.json["groups"], json!({"db": 1, "prod": 5, "web": 4}));
    assert_eq!(all.json["hosts"].as_array().unwrap().len(), 6);
    let web = viewer.get("/api/v1/inventory?group=db").await;
    assert_eq!(
        web.json["hosts"][0]["name"], "db-1.example.com",
        "{}",
        web.text
    );
    let one = viewer
        .get("/api/v1/inventory/hosts/web02.example.com")
        .await;
    assert_eq!(
        one.json,
        json!({"name": "web02.example.com", "groups": ["prod", "web"], "attributes": {"http_port": "8080"}})
    );

    // A second import of the same file changes nothing new; a bad one changes nothing.
    let again = ops
        .post_raw("/api/v1/inventory/import?format=ini", ini.into())
        .await;
    assert_eq!(again.json["updated"], 6, "{}", again.text);
    let bad = ops
        .post_raw(
            "/api/v1/inventory/import?format=ini",
            "[web]\nweb-9.example.com\nweb;reboot\n".into(),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json["error"]
            .as_str()
            .unwrap()
            .starts_with("line 3: \"web;reboot\" is not a host name"),
        "{}",
        bad.text
    );
    assert_eq!(
        viewer
            .get("/api/v1/inventory/hosts/web-9.example.com")
            .await
            .status,
        404
    );
    let yaml = ops
        .post_raw(
            "/api/v1/inventory/import?format=yaml",
            "all:\n  children:\n    cache:\n      hosts:\n        redis-1:\n          port: 6379\n"
                .into(),
        )
        .await;
    assert_eq!(yaml.json["added"], 1, "{}", yaml.text);
    let no_format = ops.post_raw("/api/v1/inventory/import", ini.into()).await;
    assert_eq!(no_format.status, 400, "{}", no_format.text);

    // An inventory larger than the API's usual 64 KiB body is read; past 1 MiB it is not.
    let mut big = String::from("[bulk]\n");
    for i in 0..2_000 {
        big.push_str(&format!(
            "bulk-{i:05}.example.com rack=r{} row=north\n",
            i % 40
        ));
    }
    assert!(big.len() > 64 * 1024, "{}", big.len());
    let bulk = ops
        .post_raw("/api/v1/inventory/import?format=ini", big.into())
        .await;
    assert_eq!(bulk.json["added"], 2_000, "{}", bulk.text);
    let huge = ops
        .post_raw(
            "/api/v1/inventory/import?format=ini",
            vec![b'#'; 1024 * 1024 + 1],
        )
        .await;
    assert_eq!(huge.status, 413, "{}", huge.text);

    // Replacing and removing a host: admins only, bad input named, each change audited.
    let body = json!({"groups": ["web", "canary"], "attributes": {"port": "22"}});
    assert_eq!(
        viewer
            .put("/api/v1/inventory/hosts/web01.example.com", body.clone())
            .await
            .status,
        403
    );
    let put = ops
        .put("/api/v1/inventory/hosts/web01.example.com", body)
        .await;
    assert_eq!(
        put.json,
        json!({"name": "web01.example.com", "groups": ["canary", "web"], "attributes": {"port": "22"}}),
        "{}",
        put.text
    );
    let bad_group = ops
        .put(
            "/api/v1/inventory/hosts/web01.example.com",
            json!({"groups": ["we b"]}),
        )
        .await;
    assert_eq!(bad_group.status, 400);
    assert!(bad_group.json["error"]
        .as_str()
        .unwrap()
        .contains("is not a group name"));
    let unknown_field = ops
        .put("/api/v1/inventory/hosts/x", json!({"groupz": ["web"]}))
        .await;
    assert_eq!(unknown_field.status, 400, "{}", unknown_field.text);
    let gone = ops.delete("/api/v1/inventory/hosts/lb.example.com").await;
    assert_eq!(gone.json["name"], "lb.example.com", "{}", gone.text);
    assert_eq!(
        ops.delete("/api/v1/inventory/hosts/lb.example.com")
            .await
            .status,
        404
    );
    let run = bot.ssh.exec("alice", "servers in group canary");
    assert!(
        run.stdout
            .contains("group canary: 1 host\nweb01.example.com"),
        "{run:?}"
    );

    let audit = auditor.get("/api/v1/audit?limit=200").await;
    let texts: Vec<&str> = audit.json["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", audit.text))
        .iter()
        .filter(|e| e["identity"] == "api:ops")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    for expected in [
        "import of an Ansible inventory: 6 hosts added, 0 updated",
        "PUT inventory host web01.example.com",
        "DELETE inventory host lb.example.com",
    ] {
        assert!(texts.contains(&expected), "{expected:?} not in {texts:#?}");
    }
}

/// A client that does not follow redirects, as the dashboard's tests read them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in to the dashboard at `base` with `token`; the session's cookie (`name=value`).
async fn dashboard_login(http: &reqwest::Client, base: &str, token: &str) -> String {
    let login = http
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// Page `path` of the dashboard, fetched with session `cookie`.
async fn dashboard_get(bot: &ApiBot, cookie: &str, path: &str) -> reqwest::Response {
    no_redirects()
        .get(format!("{}{path}", bot.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// Page `path` of the dashboard, as ops sees it once logged in.
async fn dashboard_page(bot: &ApiBot, path: &str) -> String {
    let cookie = dashboard_login(&no_redirects(), &bot.base, OPS).await;
    let page = dashboard_get(bot, &cookie, path).await;
    assert_eq!(page.status().as_u16(), 200, "{path}");
    page.text().await.unwrap()
}

/// Guessing tokens from one address: past 20 wrong ones in a minute, every token from
/// that address (the right one too, so a guess learns nothing) is refused with 429 and
/// `Retry-After`, at the API and the dashboard's login alike; a session already open and
/// other addresses go on.
#[tokio::test]
async fn guessing_tokens_from_one_address_is_stopped_after_twenty() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let http = no_redirects();
    let session = dashboard_login(&http, &bot.base, OPS).await;
    for i in 0..20 {
        let got = bot
            .api(&format!("guess-{i:0>30}"))
            .get("/api/v1/jobs")
            .await;
        assert_eq!(got.status, 401, "{}", got.text);
    }
    let right = bot.api(OPS).get("/api/v1/jobs").await;
    assert_eq!(right.status, 429, "{}", right.text);
    assert!(
        right.json["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("too many wrong tokens from this address")),
        "{}",
        right.text
    );
    let retry: u64 = right.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let login = http
        .post(format!("{}/ui/login", bot.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={OPS}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 429);
    assert!(login.headers().get("set-cookie").is_none());
    assert_eq!(
        dashboard_get(&bot, &session, "/ui/jobs")
            .await
            .status()
            .as_u16(),
        200,
        "an open session goes on"
    );
    // Another address is heard.
    let elsewhere = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let got = elsewhere
        .get(format!("{}/api/v1/jobs", bot.base))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
}

/// One token logging in over and over, more times than the bot keeps sessions, closes
/// only its own oldest sessions: nobody else is logged out.
#[tokio::test]
async fn logging_in_again_and_again_logs_nobody_else_out() {
    let bot = ApiBot::start(&["alice"], COMMANDS);
    let http = no_redirects();
    let ops = dashboard_login(&http, &bot.base, OPS).await;
    let first = dashboard_login(&http, &bot.base, VIEWER).await;
    // 8 × 1,260 = 10,080 logins, past the 10,000 sessions the bot keeps.
    let attackers: Vec<_> = (0..8)
        .map(|_| {
            let (http, base) = (http.clone(), bot.base.clone());
            tokio::spawn(async move {
                for _ in 0..1_260 {
                    dashboard_login(&http, &base, VIEWER).await;
                }
            })
        })
        .collect();
    for attacker in attackers {
        attacker.await.unwrap();
    }
    let page = dashboard_get(&bot, &ops, "/ui/jobs").await;
    assert_eq!(page.status().as_u16(), 200, "ops was logged out");
    let page = dashboard_get(&bot, &first, "/ui/jobs").await;
    assert!(
        page.status().is_redirection(),
        "the viewer's oldest session should be closed: {}",
        page.status()
    );
    let last = dashboard_login(&http, &bot.base, VIEWER).await;
    assert_eq!(
        dashboard_get(&bot, &last, "/ui/jobs")
            .await
            .status()
            .as_u16(),
        200
    );
}

/// A bot with one more command, `pattern` (whose slot `group` names a group), run as
/// `echo` on each host of it with the host in `text`, and `extra` lines added to its
/// declaration; and group `lab` of three hosts in its inventory.
async fn lab_bot(pattern: &str, extra: &str) -> ApiBot {
    let config = format!(
        "{COMMANDS}\n[[command]]\npattern = \"{pattern}\"\nhelp = \"Echo each host's name\"\n\
         native = \"echo\"\nallow = [\"everyone\"]\nfan_out = {{ group = \"group\", host = \"text\" }}\n{extra}\n"
    );
    let bot = ApiBot::start(&["alice"], &config);
    let ini = "[lab]\nlab-1.example\nlab-2.example\nlab-3.example\n";
    let imported = bot
        .api(OPS)
        .post_raw("/api/v1/inventory/import?format=ini", ini.into())
        .await;
    assert_eq!(imported.json["added"], 3, "{}", imported.text);
    bot
}

/// A fan-out's summary updates as its jobs end: its progress reaches the event stream
/// (`1/3 done …`, `2/3 …`, `3/3 …`), then its one result, the table of hosts.
#[tokio::test]
async fn a_fan_out_reports_its_progress_then_one_summary() {
    let bot = lab_bot("echo group {group:name}", "").await;
    let ops = bot.api(OPS);
    let mut events = ops.stream("/api/v1/events?command=echo%20group").await;
    let asked = ops.ask("echo group lab").await;
    assert_eq!(asked.status, 202, "{}", asked.text);
    let parent = id_of(&asked.json);
    let seen = events
        .until(Duration::from_secs(30), |e| {
            e["event"] == "finished" && e["job"] == parent.as_str()
        })
        .await;
    // In the order of the counts, however close together the jobs end.
    let progress: Vec<&str> = seen
        .iter()
        .filter(|e| e["job"] == parent.as_str() && e["event"] == "progress")
        .map(|e| e["line"].as_str().unwrap())
        .collect();
    assert_eq!(
        progress,
        [
            "1/3 done: 1 succeeded",
            "2/3 done: 2 succeeded",
            "3/3 done: 3 succeeded"
        ],
        "{seen:#?}"
    );
    let done = ops.finished(&parent).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let table = done["output"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{done}"));
    for host in ["lab-1.example", "lab-2.example", "lab-3.example"] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(host) && l.contains("succeeded")),
            "{table}"
        );
    }
    // Each host's job is in the history, with its host.
    let jobs = ops.get("/api/v1/jobs?command=echo%20group&limit=10").await;
    assert_eq!(
        jobs.json["jobs"].as_array().unwrap().len(),
        4,
        "{}",
        jobs.text
    );

    // A table longer than a chat message is a text file.
    let ini = "[many]\nbig-[001:100].example\n";
    let imported = ops
        .post_raw("/api/v1/inventory/import?format=ini", ini.into())
        .await;
    assert_eq!(imported.json["added"], 100, "{}", imported.text);
    let asked = ops.ask("echo group many").await;
    let done = ops.finished(&id_of(&asked.json)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"]["kind"], "file", "{done}");
    assert!(
        done["output"]["file_name"]
            .as_str()
            .is_some_and(|n| n.starts_with("fan-out-") && n.ends_with(".txt")),
        "{done}"
    );
}

/// A fan-out's jobs are linked both ways in the API; re-running one host's job runs that
/// host alone, and only while the host is still in the group.
#[tokio::test]
async fn rerunning_one_hosts_job_of_a_fan_out_runs_that_host_alone() {
    let bot = lab_bot("echo group {group:name}", "").await;
    let ops = bot.api(OPS);
    let parent = id_of(&ops.ask("echo group lab").await.json);
    let done = ops.finished(&parent).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["parent"], serde_json::Value::Null, "{done}");
    let children: Vec<String> = done["children"]
        .as_array()
        .unwrap_or_else(|| panic!("{done}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(children.len(), 3, "{done}");
    let mut by_host = std::collections::BTreeMap::new();
    for child in &children {
        let job = ops.finished(child).await;
        assert_eq!(job["parent"], parent.as_str(), "{job}");
        by_host.insert(
            job["args"]["text"].as_str().unwrap().to_string(),
            child.clone(),
        );
    }
    // The dashboard's pages link them too.
    let parent_page = dashboard_page(&bot, &format!("/ui/jobs/{parent}")).await;
    for child in &children {
        assert!(
            parent_page.contains(&format!("href=\"/ui/jobs/{child}\"")),
            "{parent_page}"
        );
    }
    let child_page = dashboard_page(&bot, &format!("/ui/jobs/{}", children[0])).await;
    assert!(
        child_page.contains(&format!("href=\"/ui/jobs/{parent}\"")),
        "{child_page}"
    );

    let again = ops
        .post_raw(
            &format!("/api/v1/jobs/{}/rerun", by_host["lab-2.example"]),
            vec![],
        )
        .await;
    assert_eq!(again.status, 202, "{}", again.text);
    let rerun = ops.finished(&id_of(&again.json)).await;
    assert_eq!(rerun["status"], "succeeded", "{rerun}");
    assert_eq!(rerun["output"]["text"], "lab-2.example", "{rerun}");
    assert_eq!(rerun["parent"], serde_json::Value::Null, "{rerun}");
    // One job more, not a fan-out of three more.
    let jobs = ops.get("/api/v1/jobs?command=echo%20group&limit=20").await;
    assert_eq!(
        jobs.json["jobs"].as_array().unwrap().len(),
        5,
        "{}",
        jobs.text
    );

    // A host that has left the group is not run again.
    let left = ops.delete("/api/v1/inventory/hosts/lab-3.example").await;
    assert_eq!(left.status, 200, "{}", left.text);
    let refused = ops
        .post_raw(
            &format!("/api/v1/jobs/{}/rerun", by_host["lab-3.example"]),
            vec![],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.json["text"]
            .as_str()
            .is_some_and(|t| t.contains("lab-3.example, which is no longer in group lab")),
        "{}",
        refused.text
    );
    let jobs = ops.get("/api/v1/jobs?command=echo%20group&limit=20").await;
    assert_eq!(
        jobs.json["jobs"].as_array().unwrap().len(),
        5,
        "{}",
        jobs.text
    );
    // The fan-out itself still runs over the group as it is now.
    let whole = ops
        .post_raw(&format!("/api/v1/jobs/{parent}/rerun"), vec![])
        .await;
    assert_eq!(whole.status, 202, "{}", whole.text);
    let done = ops.finished(&id_of(&whole.json)).await;
    assert_eq!(done["children"].as_array().map(Vec::len), Some(2), "{done}");
}

/// A fan-out declared with `approval` waits as one request: nothing runs on any host until
/// the approver says yes, then every host's job runs; a deny ends the fan-out and each of
/// its jobs unrun.
#[tokio::test]
async fn a_fan_out_waits_for_one_approval_then_runs_on_every_host() {
    let approval = "approval = { by = \"user:api:auditor\", ttl = \"10m\" }";
    let bot = lab_bot("restart group {group:name}", approval).await;
    let (ops, auditor) = (bot.api(OPS), bot.api(AUDITOR));

    let held = ops.ask("restart group lab").await;
    assert_eq!(held.status, 202, "{}", held.text);
    assert!(
        held.json["text"]
            .as_str()
            .unwrap()
            .contains("waits for approval"),
        "{}",
        held.text
    );
    let parent = id_of(&held.json);
    let pending = ops.get("/api/v1/approvals").await;
    assert_eq!(
        pending.json.as_array().map(Vec::len),
        Some(1),
        "{}",
        pending.text
    );
    assert_eq!(pending.json[0]["job"]["id"], parent.as_str());
    let children: Vec<String> = pending.json[0]["job"]["children"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", pending.text))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(children.len(), 3, "{}", pending.text);
    // Its page says who it waits for.
    let page = dashboard_page(&bot, &format!("/ui/jobs/{parent}")).await;
    assert!(
        page.contains("waits for api:auditor (expires in "),
        "{page}"
    );
    // Held, nothing runs: every host's job is recorded and still queued.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for child in &children {
        let job = ops.get(&format!("/api/v1/jobs/{child}")).await;
        assert_eq!(job.json["status"], "queued", "{}", job.text);
        assert_eq!(job.json["worker"], Value::Null, "{}", job.text);
    }
    let yes = auditor
        .post(&format!("/api/v1/approvals/{parent}/approve"), json!({}))
        .await;
    assert_eq!(yes.status, 200, "{}", yes.text);
    let done = ops.finished(&parent).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let page = dashboard_page(&bot, &format!("/ui/jobs/{parent}")).await;
    assert!(!page.contains("waits for"), "{page}");
    let table = done["output"]["text"].as_str().unwrap_or_default();
    for host in ["lab-1.example", "lab-2.example", "lab-3.example"] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(host) && l.contains("succeeded")),
            "{done}"
        );
    }

    // Denied: the fan-out and each of its jobs end cancelled, with the reason, unrun.
    let parent = id_of(&ops.ask("restart group lab").await.json);
    let pending = ops.get("/api/v1/approvals").await;
    let children: Vec<String> = pending.json[0]["job"]["children"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", pending.text))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let no = auditor
        .post(
            &format!("/api/v1/approvals/{parent}/deny"),
            json!({"reason": "change freeze"}),
        )
        .await;
    assert_eq!(no.status, 200, "{}", no.text);
    let done = ops.finished(&parent).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("change freeze"),
        "{done}"
    );
    for child in &children {
        let job = ops.finished(child).await;
        assert_eq!(job["status"], "cancelled", "{job}");
        assert_eq!(job["output"]["kind"], "empty", "{job}");
    }
    // The jobs' ends are not counted into the denied fan-out: it keeps its answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = ops.get(&format!("/api/v1/jobs/{parent}")).await;
    assert_eq!(again.json["status"], "cancelled", "{}", again.text);
    assert_eq!(again.json["error"], done["error"], "{}", again.text);

    // Cancelled while it waits (a fan-out or a single job): it ends at once, and an
    // approval that comes after runs nothing.
    for text in ["restart group lab", "restart web"] {
        let held = id_of(&ops.ask(text).await.json);
        let cancelled = ops
            .post(&format!("/api/v1/jobs/{held}/cancel"), json!({}))
            .await;
        assert_eq!(cancelled.status, 200, "{}", cancelled.text);
        assert!(
            cancelled.json["text"]
                .as_str()
                .is_some_and(|t| t.contains("will not run")),
            "{}",
            cancelled.text
        );
        let done = ops.finished(&held).await;
        assert_eq!(
            (done["status"].as_str(), done["error"].as_str()),
            (Some("cancelled"), Some("cancelled by api:ops")),
            "{done}"
        );
        for child in done["children"].as_array().unwrap() {
            let job = ops.finished(child.as_str().unwrap()).await;
            assert_eq!(job["status"], "cancelled", "{job}");
        }
        let late = auditor
            .post(&format!("/api/v1/approvals/{held}/approve"), json!({}))
            .await;
        assert_eq!(late.status, 403, "{}", late.text);
        assert_eq!(ops.get("/api/v1/approvals").await.json, json!([]));
    }
    let jobs = ops
        .get("/api/v1/jobs?command=restart%20group&limit=50")
        .await;
    let ran = jobs.json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| {
            j["worker"]
                .as_str()
                .is_some_and(|w| w != "octobox-bot" && w != "fan-out")
        })
        .count();
    // Only the approved fan-out's three jobs ever ran on a worker.
    assert_eq!(ran, 3, "{}", jobs.text);
}
