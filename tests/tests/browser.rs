//! The harnesses for web pages and HTTP APIs, tested on pages and APIs served here:
//! headless Chromium over WebDriver (`octobox_tests::browser`) clicks, types, follows
//! Server-Sent Events, answers a `confirm()`, reads HttpOnly cookies and takes
//! screenshots; Schemathesis (`octobox_tests::schemathesis`) passes an API that keeps
//! its OpenAPI document and reports one that does not.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use octobox_tests::browser::Browser;
use octobox_tests::schemathesis;
use serde_json::{json, Value};
use tokio::sync::broadcast;

const PATIENCE: Duration = Duration::from_secs(10);

async fn serve(app: Router) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a free port")?;
    let addr = listener.local_addr().context("the bound address")?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

// ---- a page with a button, a dialog, Server-Sent Events and an HttpOnly cookie ----

const PAGE: &str = r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>Harness page</title></head>
<body>
  <input id="name" value="">
  <button id="go">Go</button>
  <button id="danger">Delete</button>
  <span id="status">waiting</span>
  <a id="login" href="/login" data-kind="link">log in</a>
  <ul id="rows"></ul>
  <script>
    const status = document.getElementById('status');
    document.getElementById('go').addEventListener('click', () => {
      status.textContent = 'clicked by ' + document.getElementById('name').value;
    });
    document.getElementById('danger').addEventListener('click', () => {
      status.textContent = confirm('Delete everything?') ? 'deleted' : 'kept';
    });
    const events = new EventSource('/events');
    events.addEventListener('open', () => { document.body.dataset.live = 'yes'; });
    events.onmessage = (e) => {
      const row = document.createElement('li');
      row.textContent = e.data;
      document.getElementById('rows').appendChild(row);
    };
  </script>
</body>
</html>"#;

#[derive(Clone)]
struct PageState {
    loads: Arc<AtomicU64>,
    rows: broadcast::Sender<String>,
}

fn page_app(state: PageState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/login", get(login))
        .with_state(state)
}

async fn page(State(state): State<PageState>) -> Html<&'static str> {
    state.loads.fetch_add(1, Ordering::SeqCst);
    Html(PAGE)
}

/// Each message sent on the channel becomes one event; the stream stays open.
async fn events(
    State(state): State<PageState>,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let receiver = state.rows.subscribe();
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(row) => return Some((Ok(Event::default().data(row)), receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn login() -> Response {
    (
        [(
            header::SET_COOKIE,
            "octobox_session=s3cr3t; Path=/; HttpOnly; SameSite=Strict",
        )],
        Html("<!doctype html><title>Logged in</title><p id=\"welcome\">welcome</p>"),
    )
        .into_response()
}

#[tokio::test]
async fn chromium_clicks_types_follows_server_sent_events_and_reads_an_httponly_cookie(
) -> Result<()> {
    let loads = Arc::new(AtomicU64::new(0));
    let (rows, _) = broadcast::channel(16);
    let state = PageState {
        loads: loads.clone(),
        rows: rows.clone(),
    };
    let base = format!("http://{}", serve(page_app(state)).await?);
    let browser = Browser::start().await?;

    browser.goto(&format!("{base}/")).await?;
    assert_eq!(browser.title().await?, "Harness page");
    assert_eq!(browser.current_url().await?, format!("{base}/"));
    let link = browser.find("#login").await?;
    assert_eq!(link.attr("data-kind").await?.as_deref(), Some("link"));
    assert_eq!(link.attr("title").await?, None);

    // Typing, clearing, clicking: the page's own JavaScript changes the text.
    let name = browser.find("#name").await?;
    name.send_keys("nobody").await?;
    name.clear().await?;
    name.send_keys("octo").await?;
    browser.find("#go").await?.click().await?;
    let status = browser
        .wait_until_text("#status", "clicked by octo", PATIENCE)
        .await?;
    assert_eq!(status, "clicked by octo");

    // A confirm() dialog, answered.
    browser.find("#danger").await?.click().await?;
    assert_eq!(browser.alert_text().await?, "Delete everything?");
    browser.accept_alert().await?;
    browser
        .wait_until_text("#status", "deleted", PATIENCE)
        .await?;
    browser.find("#danger").await?.click().await?;
    browser.dismiss_alert().await?;
    browser.wait_until_text("#status", "kept", PATIENCE).await?;

    // Rows pushed by the server after the page loaded arrive without a reload.
    browser.wait_for("body[data-live=yes]", PATIENCE).await?;
    for i in 1..=3 {
        rows.send(format!("row {i}"))
            .context("the page listens to /events")?;
    }
    browser.wait_until_text("#rows", "row 3", PATIENCE).await?;
    let mut texts = Vec::new();
    for row in browser.find_all("#rows li").await? {
        texts.push(row.text().await?);
    }
    assert_eq!(texts, ["row 1", "row 2", "row 3"]);
    assert_eq!(loads.load(Ordering::SeqCst), 1, "the page was loaded once");
    let count = browser
        .execute(
            "return document.querySelectorAll(arguments[0]).length",
            vec![json!("#rows li")],
        )
        .await?;
    assert_eq!(count, json!(3));

    let shot = browser.screenshot("browser-harness").await?;
    let png = std::fs::read(&shot).with_context(|| format!("reading {}", shot.display()))?;
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        shot.display()
    );

    // A cookie the server set HttpOnly and SameSite=Strict: the browser holds it, the
    // page's scripts cannot read it.
    browser.find("#login").await?.click().await?;
    browser
        .wait_until_text("#welcome", "welcome", PATIENCE)
        .await?;
    assert_eq!(browser.current_url().await?, format!("{base}/login"));
    let cookies = browser.cookies().await?;
    let session = cookies
        .iter()
        .find(|c| c.name == "octobox_session")
        .with_context(|| format!("no session cookie among {cookies:?}"))?;
    assert_eq!(session.value, "s3cr3t");
    assert!(session.http_only, "{session:?}");
    assert_eq!(session.same_site.as_deref(), Some("Strict"), "{session:?}");
    assert_eq!(session.path.as_deref(), Some("/"));
    let visible = browser.execute("return document.cookie", vec![]).await?;
    assert!(
        !visible.as_str().unwrap_or("").contains("octobox_session"),
        "an HttpOnly cookie is visible to scripts: {visible}"
    );
    Ok(())
}

#[tokio::test]
async fn the_browser_harness_says_what_it_saw_when_a_wait_runs_out() -> Result<()> {
    let (rows, _) = broadcast::channel(1);
    let state = PageState {
        loads: Arc::new(AtomicU64::new(0)),
        rows,
    };
    let base = format!("http://{}", serve(page_app(state)).await?);
    let browser = Browser::start().await?;
    browser.goto(&format!("{base}/")).await?;

    let started = Instant::now();
    let error = browser
        .wait_until_text("#status", "never", Duration::from_millis(500))
        .await
        .expect_err("the text never changes");
    let message = format!("{error:#}");
    assert!(started.elapsed() < PATIENCE, "the wait was not bounded");
    assert!(message.contains("\"waiting\""), "{message}");
    assert!(message.contains(&format!("{base}/")), "{message}");

    let error = browser
        .wait_for("#absent", Duration::from_millis(300))
        .await
        .expect_err("nothing matches");
    let message = format!("{error:#}");
    assert!(
        message.contains("no element matched `#absent` within"),
        "{message}"
    );

    let error = browser.find("#absent").await.expect_err("nothing matches");
    let message = format!("{error:#}");
    assert!(message.contains("POST /element"), "{message}");
    assert!(message.contains("no such element"), "{message}");

    let error = browser.accept_alert().await.expect_err("no dialog is open");
    assert!(format!("{error:#}").contains("no such alert"), "{error:#}");
    Ok(())
}

// ---- an API with an OpenAPI document, one endpoint behind a bearer token ----

const TOKEN: &str = "harness-token";

fn openapi_document() -> Value {
    let error = json!({
        "description": "refused",
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "string"}},
        }}},
    });
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Harness API", "version": "1"},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/health": {"get": {
                "operationId": "health",
                "responses": {"200": {
                    "description": "alive",
                    "content": {"application/json": {"schema": {
                        "type": "object", "required": ["status", "jobs"],
                        "additionalProperties": false,
                        "properties": {
                            "status": {"type": "string", "enum": ["ok"]},
                            "jobs": {"type": "integer", "minimum": 0},
                        },
                    }}},
                }},
            }},
            "/jobs/{id}": {"get": {
                "operationId": "job",
                "security": [{"bearer": []}],
                "parameters": [{
                    "name": "id", "in": "path", "required": true,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                }],
                "responses": {
                    "200": {
                        "description": "the job",
                        "content": {"application/json": {"schema": {
                            "type": "object", "required": ["id", "command", "status"],
                            "additionalProperties": false,
                            "properties": {
                                "id": {"type": "integer"},
                                "command": {"type": "string"},
                                "status": {"type": "string", "enum": ["queued", "running", "succeeded"]},
                            },
                        }}},
                    },
                    "400": {"description": "not a job id"},
                    "401": error,
                    "404": error,
                },
            }},
        },
    })
}

#[derive(Clone)]
struct ApiState {
    /// The bug to show: the job's `id` as a string, which the document says is an integer.
    id_as_string: bool,
    authorized: Arc<AtomicU64>,
}

fn api_app(state: ApiState) -> Router {
    Router::new()
        .route("/openapi.json", get(|| async { Json(openapi_document()) }))
        .route(
            "/health",
            get(|| async { Json(json!({"status": "ok", "jobs": 3})) }),
        )
        .route("/jobs/{id}", get(job))
        .with_state(state)
}

async fn job(State(state): State<ApiState>, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(TOKEN) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "a bearer token is required"})),
        )
            .into_response();
    }
    state.authorized.fetch_add(1, Ordering::SeqCst);
    if !(1..=1000).contains(&id) {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such job"}))).into_response();
    }
    let id = if state.id_as_string {
        json!(id.to_string())
    } else {
        json!(id)
    };
    Json(json!({"id": id, "command": "echo", "status": "succeeded"})).into_response()
}

/// Serves the API (`id_as_string`: with its bug) and runs schemathesis against it.
async fn schemathesis_against(
    id_as_string: bool,
) -> Result<(schemathesis::SchemathesisReport, u64)> {
    let authorized = Arc::new(AtomicU64::new(0));
    let state = ApiState {
        id_as_string,
        authorized: authorized.clone(),
    };
    let addr = serve(api_app(state)).await?;
    let url = format!("http://{addr}/openapi.json");
    let bearer = format!("Bearer {TOKEN}");
    let report = tokio::task::spawn_blocking(move || {
        schemathesis::run(&url, &[("Authorization", &bearer)], 30)
    })
    .await
    .context("the schemathesis run")??;
    Ok((report, authorized.load(Ordering::SeqCst)))
}

#[tokio::test]
async fn schemathesis_passes_an_api_that_keeps_its_openapi_document() -> Result<()> {
    let (report, authorized) = schemathesis_against(false).await?;
    report.ensure_passed()?;
    ensure!(
        authorized > 0,
        "no request carried the bearer token:\n{}",
        report.output
    );
    ensure!(
        !report.command.contains(TOKEN),
        "the command shows the token: {}",
        report.command
    );
    Ok(())
}

#[tokio::test]
async fn schemathesis_reports_a_field_of_the_wrong_type() -> Result<()> {
    let (report, _) = schemathesis_against(true).await?;
    ensure!(
        !report.passed,
        "the wrong type went unnoticed:\n{}",
        report.output
    );
    ensure!(
        report.output.contains("Response violates schema")
            && report.output.contains("GET /jobs/{id}"),
        "the failure is not the one expected:\n{}",
        report.output
    );
    let error = report.ensure_passed().expect_err("the run failed");
    ensure!(
        format!("{error:#}").contains("schemathesis run"),
        "the error does not name the command: {error:#}"
    );
    Ok(())
}
