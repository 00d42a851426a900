//! `/api/v1/commands` and `/api/v1/jobs…`: asking as in chat, the job history with its
//! filters and cursors, one job, and cancelling or running one again.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use jobs::{JobCursor, JobId, JobQuery, JobRecord};
use serde::Deserialize;

use super::views::{self, JobPageView, JobView};
use super::{answer_response, ApiError, ApiState, Authed};
use crate::request::Request;

/// The longest value of a text filter.
pub const FILTER_MAX: usize = 200;
/// The page size when the call names none.
pub const DEFAULT_PAGE: usize = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    text: String,
}

/// `POST /api/v1/commands`: the text, read as if typed in chat by the caller.
pub(super) async fn command(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: CommandBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be JSON like {{\"text\": \"ping\"}}: {e}"
        ))
    })?;
    let request = Request {
        text: body.text,
        origin: caller.origin(),
    };
    Ok(answer_response(state.router.handle(&request).await))
}

/// The history's filters as a query string carries them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub status: Option<String>,
    pub command: Option<String>,
    pub requester: Option<String>,
    pub adapter: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub text: Option<String>,
    pub after: Option<String>,
    pub limit: Option<String>,
}

impl ListParams {
    /// Reads a query string; a clear error for anything it does not know.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        super::query_params(raw)
    }

    /// The store query these parameters ask for.
    pub fn query(&self) -> Result<JobQuery, ApiError> {
        let text_filter = |name: &str, v: &Option<String>| -> Result<Option<String>, ApiError> {
            match v.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(v) if v.chars().count() > FILTER_MAX => Err(ApiError::BadRequest(format!(
                    "{name} is longer than {FILTER_MAX} characters"
                ))),
                Some(v) => Ok(Some(v.to_string())),
            }
        };
        let mut statuses = Vec::new();
        for word in self.status.as_deref().unwrap_or("").split(',') {
            let word = word.trim();
            if word.is_empty() {
                continue;
            }
            let status = views::parse_status(word).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "\"{}\" is not a status: queued, running, succeeded, failed, timed_out or cancelled",
                    word.chars().take(40).collect::<String>()
                ))
            })?;
            if !statuses.contains(&status) {
                statuses.push(status);
            }
        }
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_PAGE,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=jobs::MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "limit must be a whole number from 1 to {}",
                        jobs::MAX_PAGE
                    ))
                })?,
        };
        let after = match self.after.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(v.parse::<JobCursor>().map_err(|e| {
                ApiError::BadRequest(format!("after is not a cursor from this API: {e}"))
            })?),
        };
        Ok(JobQuery {
            statuses,
            command: text_filter("command", &self.command)?,
            requester: text_filter("requester", &self.requester)?,
            adapter: text_filter("adapter", &self.adapter)?,
            since: time_param("since", &self.since)?,
            until: time_param("until", &self.until)?,
            text: text_filter("text", &self.text)?,
            dead_lettered: false,
            after,
            limit,
        })
    }
}

/// A time parameter (`since`, `until`): RFC 3339, or absent when empty.
pub fn time_param(name: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "{name} is not a time: write RFC 3339, e.g. 2026-12-06T09:00:00Z"
                ))
            }),
    }
}

/// Whether `caller` sees `record`'s arguments and result: its requester and auditors do.
pub fn sees_whole(state: &ApiState, identity: &str, record: &JobRecord) -> bool {
    record.job.origin.identity() == identity || state.router.catalog().access.is_auditor(identity)
}

/// Runs `query` for `identity`, who may run `jobs`: a text search reads arguments and
/// results, so it is for group `auditors` only.
pub async fn page(
    state: &ApiState,
    identity: &str,
    query: &JobQuery,
) -> Result<JobPageView, ApiError> {
    if query.text.is_some() && !state.router.catalog().access.is_auditor(identity) {
        return Err(ApiError::Forbidden(
            "searching arguments and results is for group auditors".into(),
        ));
    }
    let page = state
        .router
        .services()
        .store
        .job_page(query)
        .await
        .map_err(|e| match e {
            ::jobs::StoreError::BadQuery(bad) => ApiError::BadRequest(bad.to_string()),
            e => ApiError::store("read the job history", &e),
        })?;
    Ok(JobPageView {
        jobs: page
            .jobs
            .iter()
            .map(|r| JobView::new(r, sees_whole(state, identity, r)))
            .collect(),
        next: page.next.map(|c| c.to_string()),
    })
}

/// `GET /api/v1/jobs`.
pub(super) async fn list(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    RawQuery(raw): RawQuery,
) -> Result<Json<JobPageView>, ApiError> {
    caller.check(&state.router.catalog(), "jobs")?;
    let query = ListParams::parse(raw.as_deref())?.query()?;
    Ok(Json(page(&state, &caller.identity(), &query).await?))
}

/// A job id from a path.
pub fn job_id(text: &str) -> Result<JobId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::BadRequest("that is not a job id".into()))
}

/// Job `id`'s record, or 404.
pub async fn record(state: &ApiState, id: JobId) -> Result<JobRecord, ApiError> {
    match state.router.services().store.job(id).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(ApiError::NotFound(crate::reply::no_such_job(id))),
        Err(e) => Err(ApiError::store(&format!("read job {id}"), &e)),
    }
}

/// `GET /api/v1/jobs/{id}`.
pub(super) async fn one(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    caller.check(&state.router.catalog(), "job")?;
    let record = record(&state, job_id(&id)?).await?;
    let whole = sees_whole(&state, &caller.identity(), &record);
    Ok(Json(JobView::new(&record, whole)))
}

/// `POST /api/v1/jobs/{id}/cancel`: `cancel <id>` as the caller.
pub(super) async fn cancel(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let request = Request {
        text: format!("cancel {id}"),
        origin: caller.origin(),
    };
    Ok(answer_response(state.router.handle(&request).await))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RerunBody {
    reason: Option<String>,
}

/// `POST /api/v1/jobs/{id}/rerun`: the same command and arguments, asked by the caller.
pub(super) async fn rerun(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: RerunBody = super::optional_json(&body, r#"{"reason": "…"}"#)?;
    let record = record(&state, job_id(&id)?).await?;
    let answer = state
        .router
        .rerun(&record, &caller.origin(), body.reason.as_deref())
        .await;
    Ok(answer_response(answer))
}
