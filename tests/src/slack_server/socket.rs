//! Socket Mode: the WebSocket `apps.connections.open` points to. Each connection gets a
//! `hello`, then envelopes; what the client sends back are acknowledgements.

use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State as AxumState;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::state::{Frame, State};

pub(super) fn routes() -> Router<Arc<State>> {
    Router::new().route("/socket", get(upgrade))
}

async fn upgrade(AxumState(state): AxumState<Arc<State>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| connection(state, socket))
}

async fn connection(state: Arc<State>, socket: WebSocket) {
    let (mut writer, mut reader) = socket.split();
    let hello = serde_json::json!({
        "type": "hello",
        "num_connections": state.open_sockets() + 1,
        "debug_info": {"host": "octobox-test-slack", "approximate_connection_time": 3600},
        "connection_info": {"app_id": "A0OCTOBOX"}
    });
    if writer
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = state.open_socket(tx);
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(Frame::Text(text)) => {
                    if writer.send(WsMessage::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Frame::Ping(payload)) => {
                    if writer.send(WsMessage::Ping(payload.into())).await.is_err() {
                        break;
                    }
                }
                // Dropping both halves closes the TCP connection with no closing handshake.
                Some(Frame::Drop) | None => break,
            },
            message = reader.next() => match message {
                Some(Ok(WsMessage::Text(text))) => {
                    if let Ok(ack) = serde_json::from_str::<serde_json::Value>(&text) {
                        if let Some(envelope) = ack.get("envelope_id").and_then(|v| v.as_str()) {
                            state.ack(envelope);
                        }
                    }
                }
                Some(Ok(WsMessage::Pong(body))) => state.pong(&body),
                Some(Ok(WsMessage::Ping(body))) => {
                    let _ = writer.send(WsMessage::Pong(body)).await;
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    state.close_socket(id);
}
