//! Control messages on RabbitMQ: a fanout exchange, `octobox.control`, and one exclusive,
//! server-named queue per subscriber, so each message reaches every worker listening.
//!
//! Control messages are not durable (see [`crate::control`]): they are published without
//! persistence, and a subscriber's queue vanishes with its connection. A subscription
//! that loses its channel opens another, so a worker keeps hearing `cancel` after a
//! broker restart.
//!
//! With a signing key, each control message is signed like a job ([`super::signing`]),
//! and a subscriber drops (and logs) one whose signature does not check: a forged
//! `cancel` must not stop someone's job.

use std::sync::Arc;
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Consumer, ExchangeKind};
use tokio::sync::mpsc;

use super::is_dead;
use super::link::{Shared, RECONNECT_MAX_DELAY, RECONNECT_MIN_DELAY};
use crate::backoff::Backoff;
use crate::broker::BrokerError;
use crate::control::{Control, ControlFeed};

/// The fanout exchange control messages are published to.
pub const CONTROL_EXCHANGE: &str = "octobox.control";

/// How often a quiet subscription checks that its channel is still open.
const HEALTH_CHECK: Duration = Duration::from_secs(5);

/// Declares the control exchange on `channel`.
pub(crate) async fn declare(channel: &Channel) -> lapin::Result<()> {
    channel
        .exchange_declare(
            CONTROL_EXCHANGE.into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Publishes `control` on `channel` (a confirm-mode channel): transient, and fine if no
/// one listens.
pub(crate) async fn publish(
    shared: &Shared,
    channel: &Channel,
    control: &Control,
) -> Result<(), BrokerError> {
    let body = serde_json::to_vec(control)
        .map_err(|e| BrokerError::unavailable_by(format!("a control message: {e}"), e))?;
    let properties = BasicProperties::default().with_content_type("application/json".into());
    let properties = match &shared.signing {
        Some(signing) => signing.signed(properties, &body),
        None => properties,
    };
    let confirm = channel
        .basic_publish(
            CONTROL_EXCHANGE.into(),
            "".into(),
            BasicPublishOptions::default(),
            &body,
            properties,
        )
        .await
        .map_err(|e| shared.unavailable("could not send a control message", e))?;
    tokio::time::timeout(Duration::from_secs(10), confirm)
        .await
        .map_err(|_| {
            BrokerError::unavailable(format!(
                "RabbitMQ at {} did not confirm a control message in time",
                shared.target
            ))
        })?
        .map_err(|e| shared.unavailable("could not send a control message", e))?;
    Ok(())
}

/// Subscribes to the control exchange; messages arrive on the returned feed until the
/// broker is closed or the feed dropped.
pub(crate) async fn subscribe(shared: Arc<Shared>) -> Result<ControlFeed, BrokerError> {
    let subscription = open(&shared).await?;
    let (tx, feed) = ControlFeed::channel();
    tokio::spawn(follow(shared, subscription, tx));
    Ok(feed)
}

/// The subscription's channel and consumer, with the generation of the connection they
/// are on.
type Subscription = (u64, Channel, Consumer);

async fn open(shared: &Shared) -> Result<Subscription, BrokerError> {
    let (generation, connection) = shared.connection();
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| shared.unavailable("could not open a channel", e))?;
    declare(&channel)
        .await
        .map_err(|e| shared.unavailable("could not declare the control exchange", e))?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| shared.unavailable("could not declare a control queue", e))?;
    let name = queue.name().as_str().to_string();
    channel
        .queue_bind(
            name.as_str().into(),
            CONTROL_EXCHANGE.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| shared.unavailable("could not bind the control queue", e))?;
    let consumer = channel
        .basic_consume(
            name.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| shared.unavailable("could not consume control messages", e))?;
    Ok((generation, channel, consumer))
}

/// The control message `delivery` carries; `None` (logged) when it is not signed with
/// this broker's key, or is not a control message.
fn read(shared: &Shared, delivery: &lapin::message::Delivery) -> Option<Control> {
    if let Some(signing) = &shared.signing {
        if let Err(refused) = signing.verify(delivery.properties.headers().as_ref(), &delivery.data)
        {
            tracing::warn!(
                bytes = delivery.data.len(), reason = %refused,
                "a control message was not signed with this broker's key; dropped, not obeyed"
            );
            return None;
        }
    }
    match serde_json::from_slice::<Control>(&delivery.data) {
        Ok(control) => Some(control),
        Err(error) => {
            tracing::warn!(%error, "a control message could not be read; ignored");
            None
        }
    }
}

/// Forwards control messages to `tx`, subscribing again whenever the channel is lost.
async fn follow(
    shared: Arc<Shared>,
    mut subscription: Subscription,
    tx: mpsc::UnboundedSender<Control>,
) {
    let mut check = tokio::time::interval(HEALTH_CHECK);
    loop {
        let lost = tokio::select! {
            _ = tx.closed() => return,
            _ = check.tick() => {
                subscription.0 != shared.generation() || is_dead(&subscription.1)
            }
            received = subscription.2.next() => match received {
                Some(Ok(delivery)) => {
                    if let Some(control) = read(&shared, &delivery) {
                        if tx.send(control).is_err() {
                            return;
                        }
                    }
                    false
                }
                Some(Err(_)) | None => true,
            },
        };
        if !lost {
            continue;
        }
        let mut backoff = Backoff::new(RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY);
        loop {
            if shared.is_closed() {
                return;
            }
            if shared.is_connected() {
                match open(&shared).await {
                    Ok(s) => {
                        tracing::info!(target_url = %shared.target, "listening for control messages again");
                        subscription = s;
                        break;
                    }
                    Err(error) => tracing::warn!(%error, "cannot listen for control messages yet"),
                }
            }
            tokio::time::sleep(backoff.next_pause()).await;
        }
    }
}
