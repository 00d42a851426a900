//! The Slack mode of `octobox-bench`: people sending commands to the bot through the
//! local Slack server (`crate::slack_server`), the real `octobox-bot` process connected
//! to it in Socket Mode.
//!
//! Commands (`ping`, answered by the bot itself) arrive at a steady rate from `users`
//! people, each in their own direct message. Measured by the server, per command:
//! - acknowledgement latency: envelope sent to its acknowledgement received;
//! - request-to-reply latency: envelope sent to the reply's `chat.postMessage` received.
//!
//! The baseline, in the same run: WebSocket ping round trips on the bot's own
//! connections, answered by its WebSocket layer with no application work — the
//! transport's floor, so the figures read as a multiple of it.

use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::stats::{rate, Percentiles};
use crate::slack_bot::SlackBot;
use crate::slack_server::{Said, SlackServer};

#[derive(Debug, Clone)]
pub struct SlackOptions {
    /// People sending commands (one direct message channel each).
    pub users: usize,
    /// Commands per second.
    pub rate: u32,
    /// Commands in all.
    pub commands: usize,
    /// Socket Mode connections the bot keeps.
    pub connections: u32,
    pub log_level: String,
    pub patience: Duration,
}

pub fn run(options: &SlackOptions) -> Result<Value> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(measure(options))
}

async fn measure(options: &SlackOptions) -> Result<Value> {
    let slack = SlackServer::start().await;
    let config = format!(
        "{}\n[bot]\nname = \"octobot\"\n",
        slack.socket_config(options.connections)
    );
    let bot = SlackBot::start_with_env(&config, &[("RUST_LOG", options.log_level.as_str())]);
    let deadline = tokio::time::Instant::now() + options.patience;
    while slack.open_sockets() < options.connections as usize {
        if tokio::time::Instant::now() > deadline {
            bail!("the bot did not connect; its log:\n{}", bot.log());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    eprintln!("octobox-bench: baseline: WebSocket pings on the bot's connections");
    for _ in 0..200 {
        slack.ping_sockets();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    eprintln!(
        "octobox-bench: {} commands at {}/s from {} people",
        options.commands, options.rate, options.users
    );
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(options.rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = tokio::time::Instant::now();
    let mut sent: Vec<(String, String, Said)> = Vec::with_capacity(options.commands);
    for n in 0..options.commands {
        tick.tick().await;
        let user = format!("U{:04}", n % options.users);
        let said = slack.people().dm(&user, "ping");
        let envelope = slack.send_event(said.payload.clone());
        sent.push((envelope, format!("D{user}"), said));
    }
    let sending = started.elapsed();

    // Every command answered (or the patience runs out).
    loop {
        let replies = slack.messages().len();
        if replies >= sent.len() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{replies} of {} commands answered within the patience",
                sent.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let messages = slack.messages();
    let mut acks = Vec::new();
    let mut replies = Vec::new();
    for (envelope, channel, said) in &sent {
        let Some(e) = slack.envelope(envelope) else {
            continue;
        };
        let (Some(out), Some(acked)) = (e.sent_at, e.acked_at) else {
            bail!("envelope {envelope} was not acknowledged");
        };
        acks.push(acked - out);
        if let Some(m) = messages
            .iter()
            .find(|m| &m.channel == channel && m.thread_ts.as_deref() == Some(said.ts.as_str()))
        {
            replies.push(m.posted_at - out);
        }
    }
    let pongs = slack.pong_times();
    let base = Percentiles::of(&pongs);
    let ack = Percentiles::of(&acks);
    let reply = Percentiles::of(&replies);
    let ratio = |p: Option<Percentiles>| {
        let (Some(p), Some(b)) = (p, base) else {
            return Value::Null;
        };
        json!({
            "p50": (p.p50_ms / b.p50_ms * 10.0).round() / 10.0,
            "p99": (p.p99_ms / b.p50_ms * 10.0).round() / 10.0,
        })
    };
    Ok(json!({
        "mode": "slack",
        "users": options.users,
        "connections": options.connections,
        "commands": sent.len(),
        "offered_per_s": options.rate,
        "sent_per_s": rate(sent.len(), sending),
        "websocket_ping_rtt_ms": base,
        "ack_latency_ms": ack,
        "ack_vs_ping_rtt_p50": ratio(ack),
        "reply_latency_ms": reply,
        "reply_vs_ping_rtt_p50": ratio(reply),
        "replies": replies.len(),
    }))
}
