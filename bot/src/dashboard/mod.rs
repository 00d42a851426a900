//! The dashboard at `/ui`: the API's views as server-rendered pages, for operators with
//! a browser. Logging in with an API token opens a session (`api::session`); each page reads
//! what the API reads, under the same access checks, and each button is a form posted
//! with the session's CSRF token, which becomes the same request through the router as
//! the API's action. A little plain JavaScript (`assets/dashboard.js`) follows the API's
//! event streams so rows and a job's progress change while the page is open.
//!
//! - `pages`: the HTML.

mod pages;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jobs::JobRecord;
use maud::Markup;
use serde::Deserialize;

use crate::api::jobs::{job_id, page, record, sees_whole, ListParams};
use crate::api::operations::{approval_views, decision_request, schedule_request};
use crate::api::session::{self, csrf_matches, SessionView};
use crate::api::views::{AuditView, JobPageView, JobView, ScheduleView, WorkerView};
use crate::api::{self, auth, ApiError, ApiState};
use crate::reply;
use crate::request::{Outcome, Request};

/// What every page answers with besides its HTML: no inline script, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { Redirect::to("/ui/jobs") }))
        .route("/ui", get(|| async { Redirect::to("/ui/jobs") }))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/assets/dashboard.css", get(css))
        .route("/ui/assets/dashboard.js", get(js))
        .route("/ui/jobs", get(jobs_page))
        .route("/ui/jobs/{id}", get(job_page))
        .route("/ui/jobs/{id}/{action}", post(job_action))
        .route("/ui/workers", get(workers_page))
        .route("/ui/schedules", get(schedules_page))
        .route("/ui/schedules/{name}/{action}", post(schedule_action))
        .route("/ui/dead-letters", get(dead_letters_page))
        .route("/ui/approvals", get(approvals_page))
        .route("/ui/approvals/{id}/{decision}", post(decide))
        .route("/ui/audit", get(audit_page))
        .layer(axum::extract::DefaultBodyLimit::max(crate::api::BODY_LIMIT))
        .layer(axum::middleware::from_fn(
            crate::api::refuse_declared_oversize,
        ))
        .with_state(state)
}

fn html(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A page of the dashboard for session `s`.
fn page_of(s: &SessionView, title: &str, notice: Option<&str>, body: Markup) -> Response {
    html(
        StatusCode::OK,
        pages::layout(title, &s.caller.identity(), &s.csrf, notice, body),
    )
}

/// An error shown as a page.
fn error_page(s: &SessionView, title: &str, e: &ApiError) -> Response {
    let status = e.status();
    html(
        status,
        pages::layout(
            title,
            &s.caller.identity(),
            &s.csrf,
            None,
            pages::message(&e.to_string()),
        ),
    )
}

fn session(state: &ApiState, headers: &HeaderMap) -> Option<SessionView> {
    state
        .sessions
        .caller(headers, &state.router.catalog().api.tokens)
}

fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css")], pages::CSS).into_response()
}

async fn js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript")], pages::JS).into_response()
}

async fn login_page() -> Response {
    html(StatusCode::OK, pages::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// `POST /ui/login`: a declared token opens a session.
async fn login(
    State(state): State<Arc<ApiState>>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers) {
        return html(
            StatusCode::FORBIDDEN,
            pages::login(Some("cross-site login refused")),
        );
    }
    let peer = api::peer(&extensions);
    if let Err(wait) = state.wrong_tokens.check(peer) {
        let e = ApiError::TooManyWrongTokens { wait };
        return html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::login(Some(&e.to_string())),
        );
    }
    let presented = serde_urlencoded::from_bytes::<LoginForm>(&body)
        .map(|f| f.token)
        .unwrap_or_default();
    let digest = auth::digest(presented.trim());
    let catalog = state.router.catalog();
    match auth::caller_by_digest(&catalog.api.tokens, &digest) {
        Some(caller) => {
            tracing::info!(caller = %caller.identity(), "dashboard login");
            let cookie = state.sessions.open(&caller, digest);
            let mut r = Redirect::to("/ui/jobs").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        None => {
            state.wrong_tokens.wrong(peer);
            tracing::info!(address = ?peer, "dashboard login refused: no such token");
            html(
                StatusCode::UNAUTHORIZED,
                pages::login(Some(
                    "That token is not declared in the bot's configuration.",
                )),
            )
        }
    }
}

async fn logout(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = action_session(&state, &headers, &body) {
        return *r;
    }
    state.sessions.close(&headers);
    let mut r = Redirect::to("/ui/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cleared_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Whether a form post came from a page of this site: browsers send `Origin` with every
/// POST; when they do, it must name the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The session of a form post whose CSRF token and origin check out; else the answer.
fn action_session(
    state: &ApiState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(SessionView, ActionForm), Box<Response>> {
    let Some(s) = session(state, headers) else {
        return Err(Box::new(to_login()));
    };
    let form = serde_urlencoded::from_bytes::<ActionForm>(body).ok();
    match form {
        Some(form) if same_origin(headers) && csrf_matches(&s, &form.csrf) => Ok((s, form)),
        _ => {
            tracing::warn!(caller = %s.caller.identity(), "dashboard action refused: bad CSRF token or origin");
            Err(Box::new(html(
                StatusCode::FORBIDDEN,
                pages::layout(
                    "Refused",
                    &s.caller.identity(),
                    &s.csrf,
                    None,
                    pages::message("This form is stale or came from another site: reload the page and try again."),
                ),
            )))
        }
    }
}

/// Sends `text` through the router as the session's caller; the answer's words go to
/// `back` as its notice (or, for a new job, to that job's page).
async fn act(state: &ApiState, s: &SessionView, text: String, back: &str) -> Response {
    let request = Request {
        text,
        origin: s.caller.origin(),
    };
    let answer = state.router.handle(&request).await;
    see_answer(&answer, back)
}

fn see_answer(answer: &crate::request::Answer, back: &str) -> Response {
    let target = match (answer.outcome, answer.job) {
        (Outcome::Queued, Some(id)) => format!("/ui/jobs/{id}"),
        _ => back.to_string(),
    };
    let said = serde_urlencoded::to_string([("said", answer.text.as_str())]).unwrap_or_default();
    Redirect::to(&format!("{target}?{said}")).into_response()
}

#[derive(Deserialize, Default)]
struct Said {
    said: Option<String>,
}

fn said(raw: Option<&str>) -> Option<String> {
    serde_urlencoded::from_str::<Said>(raw.unwrap_or(""))
        .ok()
        .and_then(|s| s.said)
        .map(|s| s.chars().take(2000).collect())
}

async fn jobs_page(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let result: Result<(JobPageView, pages::JobFilters), ApiError> = async {
        s.caller.check(&state.router.catalog(), "jobs")?;
        // The page's query may also carry `said`: not a filter.
        let cleaned: Vec<(String, String)> =
            serde_urlencoded::from_str::<Vec<(String, String)>>(raw.as_deref().unwrap_or(""))
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, v)| k != "said" && !v.is_empty())
                .collect();
        let cleaned = serde_urlencoded::to_string(&cleaned).unwrap_or_default();
        let params = ListParams::parse(Some(&cleaned))?;
        let query = params.query()?;
        let filters = pages::JobFilters {
            status: params.status.clone().unwrap_or_default(),
            command: params.command.clone().unwrap_or_default(),
            requester: params.requester.clone().unwrap_or_default(),
            adapter: params.adapter.clone().unwrap_or_default(),
            text: params.text.clone().unwrap_or_default(),
            paged: query.after.is_some(),
        };
        Ok((page(&state, &s.caller.identity(), &query).await?, filters))
    }
    .await;
    match result {
        Ok((view, filters)) => page_of(
            &s,
            "Jobs",
            said(raw.as_deref()).as_deref(),
            pages::jobs(&view, &filters),
        ),
        Err(e) => error_page(&s, "Jobs", &e),
    }
}

async fn job_page(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let result = async {
        s.caller.check(&state.router.catalog(), "job")?;
        let record = record(&state, job_id(&id)?).await?;
        let whole = sees_whole(&state, &s.caller.identity(), &record);
        let waits = waiting_for_approval(&state, &record).await;
        Ok::<_, ApiError>((
            JobView::new(&record, whole),
            record.status.is_final(),
            waits,
        ))
    }
    .await;
    match result {
        Ok((view, done, waits)) => page_of(
            &s,
            "Jobs",
            said(raw.as_deref()).as_deref(),
            pages::job(&view, &s.csrf, done, waits.as_deref()),
        ),
        Err(e) => error_page(&s, "Jobs", &e),
    }
}

/// Who job `record` waits for, while it waits for approval (a held job is `queued` like
/// any other until it is decided).
async fn waiting_for_approval(state: &ApiState, record: &JobRecord) -> Option<String> {
    if record.status.is_final() {
        return None;
    }
    match state.router.services().store.approval(record.job.id).await {
        Ok(Some((approval, None))) => Some(reply::waits_for(&approval)),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(job = %record.job.id, error = %e, "could not read a job's approval for its page");
            None
        }
    }
}

/// `POST /ui/jobs/{id}/{cancel|rerun}`.
async fn job_action(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (s, form) = match action_session(&state, &headers, &body) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let id = match job_id(&id) {
        Ok(id) => id,
        Err(e) => return error_page(&s, "Jobs", &e),
    };
    let back = format!("/ui/jobs/{id}");
    match action.as_str() {
        "cancel" => act(&state, &s, format!("cancel {id}"), &back).await,
        "rerun" => match record(&state, id).await {
            Ok(record) => {
                let answer = state
                    .router
                    .rerun(&record, &s.caller.origin(), form.reason.as_deref())
                    .await;
                see_answer(&answer, &back)
            }
            Err(e) => error_page(&s, "Jobs", &e),
        },
        _ => error_page(&s, "Jobs", &ApiError::NotFound("no such action".into())),
    }
}

async fn workers_page(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let result = async {
        s.caller.check(&state.router.catalog(), "workers")?;
        state
            .router
            .services()
            .store
            .workers()
            .await
            .map_err(|e| ApiError::store("list workers", &e))
    }
    .await;
    match result {
        Ok(w) => {
            let views: Vec<WorkerView> = w.iter().map(WorkerView::from).collect();
            page_of(&s, "Workers", None, pages::workers(&views))
        }
        Err(e) => error_page(&s, "Workers", &e),
    }
}

async fn schedules_page(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let catalog = state.router.catalog();
    let result = async {
        s.caller.check(&catalog, "schedules")?;
        let services = state.router.services();
        crate::schedule_builtins::list(
            &catalog.schedules,
            services.schedules.as_ref(),
            services.store.as_ref(),
        )
        .await
        .map_err(|e| ApiError::store("list schedules", &e))
    }
    .await;
    match result {
        Ok(lines) => {
            let views: Vec<ScheduleView> = lines.iter().map(ScheduleView::from).collect();
            page_of(
                &s,
                "Schedules",
                said(raw.as_deref()).as_deref(),
                pages::schedules(&views, &s.csrf),
            )
        }
        Err(e) => error_page(&s, "Schedules", &e),
    }
}

async fn schedule_action(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (s, _) = match action_session(&state, &headers, &body) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    if state.router.catalog().schedules.get(&name).is_none() {
        return error_page(
            &s,
            "Schedules",
            &ApiError::NotFound("no such schedule".into()),
        );
    }
    let Some(text) = schedule_request(&name, &action) else {
        return error_page(
            &s,
            "Schedules",
            &ApiError::NotFound("no such action".into()),
        );
    };
    let answer = state
        .router
        .handle(&Request {
            text,
            origin: s.caller.origin(),
        })
        .await;
    // Running a schedule now makes a job of the schedule's, not the caller's: stay here.
    let said = serde_urlencoded::to_string([("said", answer.text.as_str())]).unwrap_or_default();
    Redirect::to(&format!("/ui/schedules?{said}")).into_response()
}

async fn dead_letters_page(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let result = async {
        s.caller.check(&state.router.catalog(), "jobs")?;
        let query = jobs::JobQuery {
            dead_lettered: true,
            limit: jobs::MAX_PAGE,
            ..jobs::JobQuery::default()
        };
        page(&state, &s.caller.identity(), &query).await
    }
    .await;
    match result {
        Ok(view) => page_of(&s, "Dead letters", None, pages::dead_letters(&view)),
        Err(e) => error_page(&s, "Dead letters", &e),
    }
}

async fn approvals_page(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let identity = s.caller.identity();
    let result = async {
        s.caller.check(&state.router.catalog(), "pending")?;
        state
            .router
            .services()
            .store
            .pending_approvals(200)
            .await
            .map_err(|e| ApiError::store("list pending approvals", &e))
    }
    .await;
    match result {
        Ok(pending) => {
            let views = approval_views(&state, &identity, &pending);
            page_of(
                &s,
                "Approvals",
                said(raw.as_deref()).as_deref(),
                pages::approvals(&views, &s.csrf),
            )
        }
        Err(e) => error_page(&s, "Approvals", &e),
    }
}

async fn decide(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((id, decision)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (s, form) = match action_session(&state, &headers, &body) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let id = match job_id(&id) {
        Ok(id) => id,
        Err(e) => return error_page(&s, "Approvals", &e),
    };
    let Some(text) = decision_request(id, &decision, form.reason.as_deref()) else {
        return error_page(
            &s,
            "Approvals",
            &ApiError::NotFound("no such decision".into()),
        );
    };
    let answer = state
        .router
        .handle(&Request {
            text,
            origin: s.caller.origin(),
        })
        .await;
    let said = serde_urlencoded::to_string([("said", answer.text.as_str())]).unwrap_or_default();
    Redirect::to(&format!("/ui/approvals?{said}")).into_response()
}

async fn audit_page(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let result = async {
        s.caller.check(&state.router.catalog(), "audit")?;
        #[derive(Deserialize, Default)]
        struct After {
            after: Option<String>,
        }
        let after = serde_urlencoded::from_str::<After>(raw.as_deref().unwrap_or(""))
            .unwrap_or_default()
            .after
            .map(|a| {
                a.parse::<jobs::AuditPosition>()
                    .map_err(|e| ApiError::BadRequest(e.to_string()))
            })
            .transpose()?;
        let now = chrono::Utc::now();
        state
            .router
            .services()
            .store
            .audit_page(
                now - chrono::Duration::days(1),
                now + chrono::Duration::minutes(1),
                after,
                200,
            )
            .await
            .map_err(|e| ApiError::store("read the audit trail", &e))
    }
    .await;
    match result {
        Ok(entries) => {
            let next = (entries.len() == 200)
                .then(|| entries.last().map(|(p, _)| p.to_string()))
                .flatten();
            let views: Vec<AuditView> = entries.iter().map(|(_, e)| AuditView::from(e)).collect();
            page_of(&s, "Audit", None, pages::audit(&views, next.as_deref()))
        }
        Err(e) => error_page(&s, "Audit", &e),
    }
}
