//! `/api/v1/inventory`: the inventory's hosts and groups, read, changed and imported
//! from an Ansible inventory.
//!
//! Reads are allowed to whoever may run `servers in group` (the whole inventory or a
//! group) or `inventory show` (one host); changes to whoever may run `inventory add` or
//! `inventory remove` (group admins, whatever the declarations say). Every change lands
//! in the audit trail as a request of the caller's, as a change made in chat does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use jobs::inventory::{self, InventoryError};
use jobs::{AuditEntry, AuditKind, Host};
use serde::{Deserialize, Serialize};

use super::{query_params, ApiError, ApiState, Authed, Caller};
use crate::ansible::{self, Format};

/// The largest inventory an import reads (an Ansible inventory, as text).
pub const IMPORT_LIMIT: usize = ansible::MAX_SOURCE;

const READ_ALL: &str = "servers in group";
const READ_ONE: &str = "inventory show";
const ADD: &str = "inventory add to";
const REMOVE: &str = "inventory remove";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    group: Option<String>,
}

#[derive(Serialize)]
pub(super) struct InventoryView {
    /// Every group with its number of hosts.
    groups: BTreeMap<String, usize>,
    /// The hosts (of `group` when one was named), by name.
    hosts: Vec<Host>,
}

/// `GET /api/v1/inventory[?group=<name>]`.
pub(super) async fn list(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    RawQuery(raw): RawQuery,
) -> Result<Json<InventoryView>, ApiError> {
    caller.check(&state.router.catalog(), READ_ALL)?;
    let params: ListParams = query_params(raw.as_deref())?;
    let store = state.router.services().inventory.clone();
    let groups = store
        .groups()
        .await
        .map_err(|e| ApiError::store("read the inventory", &e))?;
    let mut hosts = store
        .hosts()
        .await
        .map_err(|e| ApiError::store("read the inventory", &e))?;
    if let Some(group) = &params.group {
        inventory::check_group_name(group).map_err(refusal)?;
        hosts.retain(|h| h.groups.contains(group));
    }
    Ok(Json(InventoryView { groups, hosts }))
}

/// `GET /api/v1/inventory/hosts/{name}`.
pub(super) async fn host(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> Result<Json<Host>, ApiError> {
    caller.check(&state.router.catalog(), READ_ONE)?;
    inventory::check_host_name(&name).map_err(refusal)?;
    match state.router.services().inventory.host(&name).await {
        Ok(Some(host)) => Ok(Json(host)),
        Ok(None) => Err(refusal(InventoryError::UnknownHost(name))),
        Err(e) => Err(ApiError::store("read the inventory", &e)),
    }
}

/// A host as a `PUT` gives it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostBody {
    #[serde(default)]
    groups: BTreeSet<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// `PUT /api/v1/inventory/hosts/{name}`: the host becomes exactly the body.
pub(super) async fn put(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Host>, ApiError> {
    caller.check(&state.router.catalog(), ADD)?;
    let body: HostBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be JSON like {{\"groups\": [\"web\"], \"attributes\": {{\"port\": \"22\"}}}}: {e}"
        ))
    })?;
    let host = Host {
        name,
        groups: body.groups,
        attributes: body.attributes,
    };
    host.check().map_err(refusal)?;
    let stored = inventory::put_host(state.router.services().inventory.as_ref(), &host)
        .await
        .map_err(refusal)?;
    audit(
        &state,
        &caller,
        ADD,
        format!("PUT inventory host {}", stored.name),
    )
    .await;
    Ok(Json(stored))
}

/// `DELETE /api/v1/inventory/hosts/{name}`: the host as it was.
pub(super) async fn delete(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> Result<Json<Host>, ApiError> {
    caller.check(&state.router.catalog(), REMOVE)?;
    let removed = inventory::remove_host(state.router.services().inventory.as_ref(), &name)
        .await
        .map_err(refusal)?;
    audit(
        &state,
        &caller,
        REMOVE,
        format!("DELETE inventory host {name}"),
    )
    .await;
    Ok(Json(removed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportParams {
    format: String,
}

#[derive(Serialize)]
pub(super) struct ImportView {
    /// Hosts the inventory did not have.
    added: usize,
    /// Hosts it had, given the imported groups and attributes too.
    updated: usize,
    /// Groups whose variables were left out (they are Ansible's connection settings).
    group_vars_left_out: usize,
}

/// `POST /api/v1/inventory/import?format=ini|yaml`, the inventory as the body: every
/// host merged in (groups added, attributes set). The whole text is read first, so a
/// mistake anywhere changes nothing.
pub(super) async fn import(
    State(state): State<Arc<ApiState>>,
    Authed(caller): Authed,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Json<ImportView>, ApiError> {
    caller.check(&state.router.catalog(), ADD)?;
    let params: ImportParams = query_params(raw.as_deref())?;
    let format = Format::parse(&params.format).ok_or_else(|| {
        ApiError::BadRequest("format is ini or yaml (Ansible's two inventory syntaxes)".into())
    })?;
    if body.len() > IMPORT_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "the inventory is {} bytes; at most {IMPORT_LIMIT} are read",
            body.len()
        )));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the inventory is not UTF-8 text".into()))?;
    let read = ansible::read(text, format).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let store = state.router.services().inventory.clone();
    let (mut added, mut updated) = (0, 0);
    for host in &read.hosts {
        let (was, _) = inventory::merge_host(store.as_ref(), host)
            .await
            .map_err(refusal)?;
        match was {
            Some(_) => updated += 1,
            None => added += 1,
        }
    }
    let summary = format!("import of an Ansible inventory: {added} hosts added, {updated} updated");
    tracing::info!(user = %caller.identity(), added, updated, "inventory imported");
    audit(&state, &caller, ADD, summary).await;
    Ok(Json(ImportView {
        added,
        updated,
        group_vars_left_out: read.groups_with_vars,
    }))
}

/// An inventory refusal as the API answers it.
fn refusal(e: InventoryError) -> ApiError {
    match e {
        InventoryError::UnknownHost(_) => ApiError::NotFound(e.to_string()),
        InventoryError::Invalid(_) => ApiError::BadRequest(e.to_string()),
        InventoryError::Full | InventoryError::Contended(_) => ApiError::Conflict(e.to_string()),
        InventoryError::Store(e) => ApiError::store("change the inventory", &e),
    }
}

/// The change's entry in the audit trail, as the caller's request.
async fn audit(state: &ApiState, caller: &Caller, command: &str, text: String) {
    let catalog = state.router.catalog();
    let mut entry = AuditEntry::new(AuditKind::Request, &caller.origin(), &text, "answered");
    entry.command = Some(command.to_string());
    entry.decision = "allowed".to_string();
    crate::audit_trail::append(
        state.router.services().store.as_ref(),
        catalog.audit_keep,
        &entry,
    )
    .await;
}
