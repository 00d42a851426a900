//! What the Slack server knows and records: calls, messages, files, envelopes and the
//! Socket Mode connections they travel on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// One Web API call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Query, form or JSON parameters, as one JSON object.
    pub params: Value,
    pub at: Instant,
    /// Answered 429.
    pub throttled: bool,
}

/// One message the bot posted.
#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    /// The text it was posted with.
    pub first_text: String,
    /// Its text now (after edits).
    pub text: String,
    /// Each `chat.update` text, in order.
    pub edits: Vec<String>,
    /// Its Block Kit blocks now, if it has any (`chat.update` without blocks keeps them,
    /// as Slack does).
    pub blocks: Option<Value>,
    pub posted_at: Instant,
}

impl Message {
    /// The buttons it shows now, as (action_id, value).
    pub fn buttons(&self) -> Vec<(String, String)> {
        let Some(blocks) = self.blocks.as_ref().and_then(Value::as_array) else {
            return Vec::new();
        };
        blocks
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["type"] == "button")
            .map(|e| {
                let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (text("action_id"), text("value"))
            })
            .collect()
    }
}

/// A message shown to one person only (`chat.postEphemeral`).
#[derive(Debug, Clone)]
pub struct Ephemeral {
    pub channel: String,
    pub user: String,
    pub thread_ts: Option<String>,
    pub text: String,
}

/// A file shared with `files.completeUploadExternal`.
#[derive(Debug, Clone)]
pub struct SharedFile {
    pub id: String,
    pub name: String,
    pub title: Option<String>,
    pub bytes: Vec<u8>,
    pub channel: Option<String>,
    pub thread_ts: Option<String>,
}

/// One Socket Mode envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    /// `events_api`, `slash_commands` or `interactive`.
    pub kind: String,
    pub payload: Value,
    pub retry_attempt: u32,
    pub created_at: Instant,
    /// When it was last sent on a connection.
    pub sent_at: Option<Instant>,
    pub acked_at: Option<Instant>,
    /// How many times it was sent (more than once if a connection closed under it).
    pub sends: u32,
    socket: Option<u64>,
}

pub(super) enum Frame {
    Text(String),
    /// A WebSocket ping carrying this payload.
    Ping(Vec<u8>),
    /// Close the connection without a closing handshake.
    Drop,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    messages: Vec<Message>,
    ephemerals: Vec<Ephemeral>,
    files: Vec<SharedFile>,
    /// Upload ids to (file name, bytes once uploaded).
    uploads: HashMap<String, (String, Option<Vec<u8>>)>,
    /// Method to (429s left, Retry-After seconds).
    throttles: HashMap<String, (u32, u64)>,
    /// Method to how many more of its answers are a garbled body (after doing the call).
    garbles: HashMap<String, u32>,
    envelopes: Vec<Envelope>,
    sockets: Vec<(u64, mpsc::UnboundedSender<Frame>)>,
    /// Pings in flight by payload, and the round trips of those answered.
    pings: HashMap<Vec<u8>, Instant>,
    pong_times: Vec<std::time::Duration>,
    next: u64,
}

pub(super) struct State {
    pub addr: SocketAddr,
    inner: Mutex<Inner>,
    notify: Notify,
}

impl State {
    pub fn new(addr: SocketAddr) -> Self {
        State {
            addr,
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut inner);
        drop(inner);
        self.notify.notify_waiters();
        out
    }

    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Records a call; `Some(retry_after)` if it must be answered 429.
    pub fn call(&self, method: &str, params: Value) -> Option<u64> {
        self.with(|i| {
            let throttled = match i.throttles.get_mut(method) {
                Some((left, secs)) if *left > 0 => {
                    *left -= 1;
                    Some(*secs)
                }
                _ => None,
            };
            i.calls.push(Call {
                method: method.to_string(),
                params,
                at: Instant::now(),
                throttled: throttled.is_some(),
            });
            throttled
        })
    }

    pub fn throttle(&self, method: &str, times: u32, secs: u64) {
        self.with(|i| i.throttles.insert(method.to_string(), (times, secs)));
    }

    pub fn garble(&self, method: &str, times: u32) {
        self.with(|i| i.garbles.insert(method.to_string(), times));
    }

    /// Whether this answer of `method` must be garbled (counting it down).
    pub fn garbled(&self, method: &str) -> bool {
        self.with(|i| match i.garbles.get_mut(method) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        })
    }

    pub fn post(
        &self,
        channel: &str,
        thread_ts: Option<String>,
        text: &str,
        blocks: Option<Value>,
    ) -> String {
        self.with(|i| {
            i.next += 1;
            let ts = format!("1700000000.{:06}", i.next);
            i.messages.push(Message {
                channel: channel.to_string(),
                ts: ts.clone(),
                thread_ts,
                first_text: text.to_string(),
                text: text.to_string(),
                edits: Vec::new(),
                blocks,
                posted_at: Instant::now(),
            });
            ts
        })
    }

    /// Whether message `ts` exists in `channel` (and now says `text`, with `blocks` if
    /// given).
    pub fn update(&self, channel: &str, ts: &str, text: &str, blocks: Option<Value>) -> bool {
        self.with(|i| {
            match i
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts)
            {
                Some(m) => {
                    m.text = text.to_string();
                    m.edits.push(text.to_string());
                    if blocks.is_some() {
                        m.blocks = blocks;
                    }
                    true
                }
                None => false,
            }
        })
    }

    pub fn post_ephemeral(&self, ephemeral: Ephemeral) {
        self.with(|i| i.ephemerals.push(ephemeral));
    }

    pub fn ephemerals(&self) -> Vec<Ephemeral> {
        self.with(|i| i.ephemerals.clone())
    }

    pub fn new_upload(&self, name: &str) -> String {
        self.with(|i| {
            i.next += 1;
            let id = format!("F{:06}", i.next);
            i.uploads.insert(id.clone(), (name.to_string(), None));
            id
        })
    }

    pub fn upload_bytes(&self, id: &str, bytes: Vec<u8>) -> bool {
        self.with(|i| match i.uploads.get_mut(id) {
            Some(u) => {
                u.1 = Some(bytes);
                true
            }
            None => false,
        })
    }

    /// Shares uploaded file `id`; `false` if it was never uploaded.
    pub fn share(
        &self,
        id: &str,
        title: Option<String>,
        channel: Option<String>,
        thread_ts: Option<String>,
    ) -> bool {
        self.with(|i| match i.uploads.get(id) {
            Some((name, Some(bytes))) => {
                let file = SharedFile {
                    id: id.to_string(),
                    name: name.clone(),
                    title,
                    bytes: bytes.clone(),
                    channel,
                    thread_ts,
                };
                i.files.push(file);
                true
            }
            _ => false,
        })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|i| i.calls.clone())
    }

    pub fn messages(&self) -> Vec<Message> {
        self.with(|i| i.messages.clone())
    }

    pub fn files(&self) -> Vec<SharedFile> {
        self.with(|i| i.files.clone())
    }

    pub fn envelope(&self, id: &str) -> Option<Envelope> {
        self.with(|i| i.envelopes.iter().find(|e| e.id == id).cloned())
    }

    pub fn envelopes(&self) -> Vec<Envelope> {
        self.with(|i| i.envelopes.clone())
    }

    pub fn enqueue(&self, kind: &str, payload: Value, retry_attempt: u32) -> String {
        self.with(|i| {
            i.next += 1;
            let id = format!("env-{:06}", i.next);
            i.envelopes.push(Envelope {
                id: id.clone(),
                kind: kind.to_string(),
                payload,
                retry_attempt,
                created_at: Instant::now(),
                sent_at: None,
                acked_at: None,
                sends: 0,
                socket: None,
            });
            dispatch(i);
            id
        })
    }

    pub fn ack(&self, envelope_id: &str) {
        self.with(|i| {
            if let Some(e) = i.envelopes.iter_mut().find(|e| e.id == envelope_id) {
                e.acked_at.get_or_insert_with(Instant::now);
            }
        });
    }

    pub fn open_socket(&self, tx: mpsc::UnboundedSender<Frame>) -> u64 {
        self.with(|i| {
            i.next += 1;
            let id = i.next;
            i.sockets.push((id, tx));
            dispatch(i);
            id
        })
    }

    /// Forgets connection `id`; its unacknowledged envelopes go to another.
    pub fn close_socket(&self, id: u64) {
        self.with(|i| {
            i.sockets.retain(|(s, _)| *s != id);
            for e in i.envelopes.iter_mut() {
                if e.socket == Some(id) && e.acked_at.is_none() {
                    e.socket = None;
                }
            }
            dispatch(i);
        });
    }

    pub fn open_sockets(&self) -> usize {
        self.with(|i| i.sockets.len())
    }

    pub fn drop_sockets(&self) {
        self.with(|i| {
            for (_, tx) in &i.sockets {
                let _ = tx.send(Frame::Drop);
            }
        });
    }

    /// Pings every connection once (a WebSocket ping, answered by the client's WebSocket
    /// layer with no application work).
    pub fn ping_sockets(&self) {
        self.with(|i| {
            let sockets: Vec<_> = i.sockets.iter().map(|(_, tx)| tx.clone()).collect();
            for tx in sockets {
                i.next += 1;
                let payload = i.next.to_be_bytes().to_vec();
                i.pings.insert(payload.clone(), Instant::now());
                let _ = tx.send(Frame::Ping(payload));
            }
        });
    }

    pub fn pong(&self, payload: &[u8]) {
        self.with(|i| {
            if let Some(sent) = i.pings.remove(payload) {
                i.pong_times.push(sent.elapsed());
            }
        });
    }

    pub fn pong_times(&self) -> Vec<std::time::Duration> {
        self.with(|i| i.pong_times.clone())
    }

    pub fn ask_to_reconnect(&self) {
        let frame = serde_json::json!({
            "type": "disconnect",
            "reason": "refresh_requested",
            "debug_info": {"host": "octobox-test-slack"}
        })
        .to_string();
        self.with(|i| {
            for (_, tx) in &i.sockets {
                let _ = tx.send(Frame::Text(frame.clone()));
            }
        });
    }
}

/// Sends every envelope waiting for a connection, spreading them over the open ones.
fn dispatch(i: &mut Inner) {
    if i.sockets.is_empty() {
        return;
    }
    let mut turn = i.next as usize;
    for e in i.envelopes.iter_mut() {
        if e.socket.is_some() || e.acked_at.is_some() {
            continue;
        }
        turn += 1;
        let (socket, tx) = &i.sockets[turn % i.sockets.len()];
        let frame = serde_json::json!({
            "envelope_id": e.id,
            "type": e.kind,
            "payload": e.payload,
            "accepts_response_payload": e.kind == "slash_commands",
            "retry_attempt": e.retry_attempt,
            "retry_reason": if e.retry_attempt > 0 { "timeout" } else { "" },
        })
        .to_string();
        if tx.send(Frame::Text(frame)).is_ok() {
            e.socket = Some(*socket);
            e.sent_at = Some(Instant::now());
            e.sends += 1;
        }
    }
}
