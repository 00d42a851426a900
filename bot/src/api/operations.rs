//! `/api/v1/workers`, `/schedules`, `/dead-letters`, `/audit` and `/approvals`: what
//! keeps the jobs running, and the decisions people make about them. Reads check the
//! access of the built-in that shows the same in chat; actions are that built-in's
//! request, made through the router as the caller.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Json;
use chrono::{Duration as Span, Utc};
use jobs::{AuditPosition, JobId, JobQuery};
use serde::Deserialize;

use super::jobs::{job_id, page, sees_whole, time_param, DEFAULT_PAGE};
use super::views::{
    ApprovalView, AuditPageView, AuditView, JobPageView, JobView, ScheduleView, WorkerView,
};
use super::{answer_response, ApiError, ApiState, Authed};
use crate::request::Request;

/// `GET /api/v1/workers`: the workers with a current heartbeat.
pub(super) async fn workers(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
) -> Result<Json<Vec<WorkerView>>, ApiError> {
    caller.check(&state.router.catalog(), "workers")?;
    let workers = state
        .router
        .services()
        .store
        .workers()
        .await
        .map_err(|e| ApiError::store("list workers", &e))?;
    Ok(Json(workers.iter().map(WorkerView::from).collect()))
}

/// `GET /api/v1/schedules`.
pub(super) async fn schedules(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    let catalog = state.router.catalog();
    caller.check(&catalog, "schedules")?;
    let services = state.router.services();
    let lines = crate::schedule_builtins::list(
        &catalog.schedules,
        services.schedules.as_ref(),
        services.store.as_ref(),
    )
    .await
    .map_err(|e| ApiError::store("list schedules", &e))?;
    Ok(Json(lines.iter().map(ScheduleView::from).collect()))
}

/// `POST /api/v1/schedules/{name}/{pause|resume|run}`.
pub(super) async fn schedule_action(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    // Only a name the configuration could declare becomes part of a request's text.
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !plain || state.router.catalog().schedules.get(&name).is_none() {
        return Err(ApiError::NotFound(format!(
            "no schedule named \"{}\"",
            name.chars().take(64).collect::<String>()
        )));
    }
    let Some(text) = schedule_request(&name, &action) else {
        return Err(ApiError::NotFound(
            "a schedule's actions are pause, resume and run".into(),
        ));
    };
    let request = Request {
        text,
        origin: caller.origin(),
    };
    Ok(answer_response(state.router.handle(&request).await))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PageParams {
    after: Option<String>,
    limit: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl PageParams {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        super::query_params(raw)
    }

    fn limit(&self, max: usize) -> Result<usize, ApiError> {
        match self.limit.as_deref().map(str::trim) {
            None | Some("") => Ok(DEFAULT_PAGE.min(max)),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("limit must be a whole number from 1 to {max}"))
                }),
        }
    }
}

/// `GET /api/v1/dead-letters`: jobs the broker gave up on, newest first.
pub(super) async fn dead_letters(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    RawQuery(raw): RawQuery,
) -> Result<Json<JobPageView>, ApiError> {
    caller.check(&state.router.catalog(), "jobs")?;
    let params = PageParams::parse(raw.as_deref())?;
    let after = match params.after.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(v.parse().map_err(|e| {
            ApiError::BadRequest(format!("after is not a cursor from this API: {e}"))
        })?),
    };
    let query = JobQuery {
        dead_lettered: true,
        since: time_param("since", &params.since)?,
        until: time_param("until", &params.until)?,
        after,
        limit: params.limit(jobs::MAX_PAGE)?,
        ..JobQuery::default()
    };
    Ok(Json(page(&state, &caller.identity(), &query).await?))
}

/// The most audit entries one page holds.
const AUDIT_PAGE_MAX: usize = 500;

/// `GET /api/v1/audit`: entries from `since` (default: a day ago) until `until`
/// (default: now), oldest first, paged with `after`.
pub(super) async fn audit(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditPageView>, ApiError> {
    caller.check(&state.router.catalog(), "audit")?;
    let params = PageParams::parse(raw.as_deref())?;
    let limit = params.limit(AUDIT_PAGE_MAX)?;
    // Positions are in the store's clock, and an entry appended this very millisecond
    // is part of "until now": the default end is a little past it.
    let now = Utc::now();
    let until = time_param("until", &params.until)?.unwrap_or(now + Span::minutes(1));
    let since = time_param("since", &params.since)?.unwrap_or(now - Span::days(1));
    let after = match params.after.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(v.parse::<AuditPosition>().map_err(|e| {
            ApiError::BadRequest(format!("after is not a position from this API: {e}"))
        })?),
    };
    let entries = state
        .router
        .services()
        .store
        .audit_page(since, until, after, limit)
        .await
        .map_err(|e| ApiError::store("read the audit trail", &e))?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|(p, _)| p.to_string()))
        .flatten();
    Ok(Json(AuditPageView {
        entries: entries.iter().map(|(_, e)| AuditView::from(e)).collect(),
        next,
    }))
}

/// `GET /api/v1/approvals`: jobs waiting for a yes, the soonest to expire first.
pub(super) async fn approvals(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
) -> Result<Json<Vec<ApprovalView>>, ApiError> {
    caller.check(&state.router.catalog(), "pending")?;
    let pending = state
        .router
        .services()
        .store
        .pending_approvals(200)
        .await
        .map_err(|e| ApiError::store("list pending approvals", &e))?;
    Ok(Json(approval_views(&state, &caller.identity(), &pending)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reason: Option<String>,
}

/// `POST /api/v1/approvals/{id}/{approve|deny}`.
pub(super) async fn decide(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    Path((id, decision)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let body: DecisionBody = super::optional_json(&body, r#"{"reason": "…"}"#)?;
    let Some(text) = decision_request(id, &decision, body.reason.as_deref()) else {
        return Err(ApiError::NotFound(
            "an approval's actions are approve and deny".into(),
        ));
    };
    let request = Request {
        text,
        origin: caller.origin(),
    };
    Ok(answer_response(state.router.handle(&request).await))
}

/// The request that `action` (`pause`, `resume`, `run`) of schedule `name` is.
pub fn schedule_request(name: &str, action: &str) -> Option<String> {
    match action {
        "pause" => Some(format!("pause schedule {name}")),
        "resume" => Some(format!("resume schedule {name}")),
        "run" => Some(format!("run schedule {name} now")),
        _ => None,
    }
}

/// The request that `decision` (`approve`, `deny`) of job `id` is; a deny's reason is
/// put on the request's one line.
pub fn decision_request(id: JobId, decision: &str, reason: Option<&str>) -> Option<String> {
    match decision {
        "approve" => Some(format!("approve {id}")),
        "deny" => {
            let reason: String = reason
                .unwrap_or_default()
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            Some(
                format!("deny {id} {}", reason.trim())
                    .trim_end()
                    .to_string(),
            )
        }
        _ => None,
    }
}

/// Pending approvals as `identity` sees them.
pub fn approval_views(
    state: &ApiState,
    identity: &str,
    pending: &[jobs::Approval],
) -> Vec<ApprovalView> {
    pending
        .iter()
        .map(|a| {
            let record = jobs::JobRecord::queued(a.job.clone());
            ApprovalView {
                job: JobView::new(&record, sees_whole(state, identity, &record)),
                by: a.by.clone(),
                reason: a.reason.clone(),
                expires_at: a.expires_at,
            }
        })
        .collect()
}
