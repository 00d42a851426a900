//! The Web API methods the bot calls, answered as Slack documents them. Messages keep
//! their Block Kit `blocks` (a `chat.update` without blocks keeps the message's own).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::state::{Ephemeral, State};
use super::{APP_TOKEN, BOT_TOKEN, BOT_USER};

pub(super) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/api/{method}", any(method))
        .route("/upload/{id}", post(upload))
}

/// Query, form and JSON parameters as one JSON object.
fn params(query: HashMap<String, String>, headers: &HeaderMap, body: &Bytes) -> Value {
    let mut all = serde_json::Map::new();
    for (k, v) in query {
        all.insert(k, Value::String(v));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        if let Ok(Value::Object(map)) = serde_json::from_slice(body) {
            all.extend(map);
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in url_decoded(body) {
            all.insert(k, Value::String(v));
        }
    }
    Value::Object(all)
}

fn url_decoded(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn text_of(p: &Value, key: &str) -> Option<String> {
    p.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

/// `blocks`, sent as a JSON array (a JSON body) or a string holding one (a form).
fn blocks_of(p: &Value) -> Option<Value> {
    match p.get("blocks")? {
        Value::String(s) => serde_json::from_str(s).ok(),
        Value::Array(a) => Some(Value::Array(a.clone())),
        _ => None,
    }
}

fn error(code: &str) -> Response {
    Json(json!({"ok": false, "error": code})).into_response()
}

async fn method(
    AxumState(state): AxumState<Arc<State>>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(query, &headers, &body);
    if let Some(secs) = state.call(&method, p.clone()) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response();
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let wanted = if method == "apps.connections.open" {
        APP_TOKEN
    } else {
        BOT_TOKEN
    };
    if token != wanted {
        return error("invalid_auth");
    }
    // Decided before the call is recorded: a test that sees the call may set the next.
    let garbled = state.garbled(&method);
    let answer = answer(&state, &method, &p);
    if garbled && answer.status().is_success() {
        // The call was made; its answer is cut short, as a failing proxy might send it.
        return (
            StatusCode::OK,
            [("content-type", "application/json; charset=utf-8")],
            r#"{"ok": true, "channel": "#,
        )
            .into_response();
    }
    answer
}

/// The answer to an authenticated call of `method` with parameters `p`.
fn answer(state: &State, method: &str, p: &Value) -> Response {
    match method {
        "auth.test" => Json(json!({
            "ok": true, "url": "https://octobox-test.slack.com/", "team": "Octobox Test",
            "user": "octobot", "team_id": "T0OCTOBOX", "user_id": BOT_USER, "bot_id": "B0OCTOBOX"
        }))
        .into_response(),
        "apps.connections.open" => Json(json!({
            "ok": true, "url": format!("ws://{}/socket", state.addr)
        }))
        .into_response(),
        "chat.postMessage" => {
            let (Some(channel), Some(text)) = (text_of(p, "channel"), text_of(p, "text")) else {
                return error("no_text");
            };
            let thread = text_of(p, "thread_ts");
            let blocks = blocks_of(p);
            let ts = state.post(&channel, thread.clone(), &text, blocks.clone());
            Json(json!({
                "ok": true, "channel": channel, "ts": ts,
                "message": {"type": "message", "ts": ts, "text": text, "user": BOT_USER,
                            "bot_id": "B0OCTOBOX", "thread_ts": thread, "blocks": blocks}
            }))
            .into_response()
        }
        "chat.postEphemeral" => {
            let (Some(channel), Some(user), Some(text)) = (
                text_of(p, "channel"),
                text_of(p, "user"),
                text_of(p, "text"),
            ) else {
                return error("invalid_arguments");
            };
            state.post_ephemeral(Ephemeral {
                channel,
                user,
                thread_ts: text_of(p, "thread_ts"),
                text,
            });
            Json(json!({"ok": true, "message_ts": "1700000000.999999"})).into_response()
        }
        "chat.update" => {
            let (Some(channel), Some(ts), Some(text)) =
                (text_of(p, "channel"), text_of(p, "ts"), text_of(p, "text"))
            else {
                return error("invalid_arguments");
            };
            if !state.update(&channel, &ts, &text, blocks_of(p)) {
                return error("message_not_found");
            }
            Json(json!({
                "ok": true, "channel": channel, "ts": ts,
                "message": {"text": text, "user": BOT_USER}
            }))
            .into_response()
        }
        "files.getUploadURLExternal" => {
            let (Some(name), Some(_length)) = (text_of(p, "filename"), text_of(p, "length")) else {
                return error("invalid_arguments");
            };
            let id = state.new_upload(&name);
            Json(json!({
                "ok": true, "file_id": id,
                "upload_url": format!("http://{}/upload/{id}", state.addr)
            }))
            .into_response()
        }
        "files.completeUploadExternal" => {
            let files = p.get("files").cloned().unwrap_or(Value::Null);
            // Slack takes `files` as a JSON array, or a JSON string holding one.
            let files = match files {
                Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
                other => other,
            };
            let Some(files) = files.as_array() else {
                return error("invalid_arguments");
            };
            let channel = text_of(p, "channel_id");
            let thread = text_of(p, "thread_ts");
            let mut shared = Vec::new();
            for f in files {
                let id = f.get("id").and_then(|v| v.as_str()).unwrap_or("");
                let title = f.get("title").and_then(|v| v.as_str()).map(str::to_string);
                if !state.share(id, title.clone(), channel.clone(), thread.clone()) {
                    return error("file_not_found");
                }
                shared.push(json!({"id": id, "title": title}));
            }
            Json(json!({"ok": true, "files": shared})).into_response()
        }
        _ => error("unknown_method"),
    }
}

async fn upload(
    AxumState(state): AxumState<Arc<State>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    state.call("upload", json!({"file_id": id, "length": body.len()}));
    let length = body.len();
    if state.upload_bytes(&id, body.to_vec()) {
        (StatusCode::OK, format!("OK - {length}")).into_response()
    } else {
        (StatusCode::NOT_FOUND, "unknown upload").into_response()
    }
}
