//! Consuming from RabbitMQ: job streams, their acknowledgements, and dead letters.
//!
//! Each stream has a channel of its own, so its prefetch (`basic.qos`) bounds only its own
//! unacknowledged deliveries, and acknowledges manually.
//!
//! A stream outlives connection losses: when its channel stops working — the connection
//! was lost (and [`super::link`] opens a new one), RabbitMQ closed the channel, or
//! cancelled the consumer — it subscribes again on a new channel of the current
//! connection. Deliveries received before a loss can no longer be acknowledged (their
//! delivery tags belonged to the old connection), so their `ack` returns an error and
//! RabbitMQ delivers them again (at-least-once). `next()` returns `None` only once the
//! broker was closed on purpose ([`super::RabbitBroker::close`]).
//!
//! What a delivery carries besides the job:
//! - `attempt`: the job's own attempt plus the quorum queue's `x-delivery-count` (how many
//!   times this message was delivered before and not acknowledged);
//! - for a dead letter, why RabbitMQ gave up on it, from the most recent `x-death` entry.
//!
//! With a signing key ([`super::signing`]), a job stream first checks each message's
//! signature; a message without a valid one is never handed to a worker but set aside in
//! the dead letters with its reason (`x-octobox-dead-reason`), which a dead-letter stream
//! reads back as [`DeadLetter::Unauthenticated`].
//!
//! A message that is not a job is logged and rejected without requeue: from a job queue it
//! goes to the dead letters; from the dead-letter queue it is dropped, since nothing could
//! show it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_lite::StreamExt;
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Acker, Channel, Consumer};

use super::is_dead;
use super::link::{Shared, RECONNECT_MAX_DELAY, RECONNECT_MIN_DELAY};
use super::topology::DEAD_EXCHANGE;

/// The header a dead letter set aside by a worker (not by RabbitMQ) carries its reason
/// in; it wins over `x-death`.
pub const DEAD_REASON_HEADER: &str = "x-octobox-dead-reason";

/// How long acknowledging or rejecting a delivery may take before it counts as failed.
const SETTLE_WAIT: Duration = Duration::from_secs(10);
use crate::backoff::Backoff;
use crate::broker::{Acknowledge, BrokerError, Delivery, JobStream};
use crate::failure::{BadSignature, DeadLetter};
use crate::job::{Job, JobId};

/// How often a waiting stream checks that its channel is still alive.
const HEALTH_CHECK: Duration = Duration::from_secs(5);

/// What a stream reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Jobs,
    DeadLetters,
}

/// One consumer of one queue, on its own channel.
pub(crate) struct RabbitStream {
    shared: Arc<Shared>,
    queue: String,
    prefetch: u16,
    kind: StreamKind,
    /// The channel and consumer, with the generation of the connection they are on.
    subscription: Option<(u64, Channel, Consumer)>,
    ended: bool,
}

impl RabbitStream {
    pub(crate) async fn start(
        shared: Arc<Shared>,
        queue: String,
        prefetch: u16,
        kind: StreamKind,
    ) -> Result<Self, BrokerError> {
        let prefetch = prefetch.max(1); // 0 would mean "no limit" to RabbitMQ.
        let subscription = subscribe(&shared, &queue, prefetch).await?;
        tracing::info!(target_url = %shared.target, %queue, prefetch, "consuming");
        Ok(RabbitStream {
            shared,
            queue,
            prefetch,
            kind,
            subscription: Some(subscription),
            ended: false,
        })
    }

    /// Subscribes again on a new channel, retrying until it works or the broker is closed.
    async fn resubscribe(&mut self) -> Result<(), BrokerError> {
        let mut backoff = Backoff::new(RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY);
        loop {
            if self.shared.is_closed() {
                return Err(BrokerError::Closed);
            }
            if self.shared.is_connected() {
                match subscribe(&self.shared, &self.queue, self.prefetch).await {
                    Ok(subscription) => {
                        tracing::info!(target_url = %self.shared.target, queue = %self.queue, "consuming again on a new channel");
                        self.subscription = Some(subscription);
                        return Ok(());
                    }
                    Err(error) => {
                        tracing::warn!(queue = %self.queue, %error, "could not consume again yet")
                    }
                }
            }
            tokio::time::sleep(backoff.next_pause()).await;
        }
    }

    /// Turns an AMQP delivery into a job delivery; `None` for a message that is not a job
    /// (logged and rejected here).
    async fn receive(&self, channel: &Channel, delivery: AmqpDelivery) -> Option<Delivery> {
        let headers = delivery.properties.headers().as_ref();
        // A dead letter's body is the job as it was published: with a key, one whose
        // signature does not verify was not published by us, whatever its headers claim
        // (a forger could put any job id and reason into `octobox.dead`).
        let mut unsigned = None;
        if let Some(signing) = &self.shared.signing {
            if let Err(refused) = signing.verify(headers, &delivery.data) {
                match self.kind {
                    StreamKind::Jobs => {
                        self.set_aside(channel, delivery, refused).await;
                        return None;
                    }
                    StreamKind::DeadLetters => unsigned = Some(refused),
                }
            }
        }
        let mut job: Job = match serde_json::from_slice(&delivery.data) {
            Ok(job) => job,
            Err(error) => {
                let message_id = delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string())
                    .unwrap_or_default();
                tracing::warn!(
                    queue = %self.queue, %message_id, bytes = delivery.data.len(), %error,
                    "a message is not a job; rejecting it without requeue"
                );
                let rejected = delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await;
                if let Err(error) = rejected {
                    tracing::warn!(queue = %self.queue, %error, "could not reject the message");
                }
                return None;
            }
        };
        let redelivered = delivery.redelivered;
        let acker = Box::new(RabbitAcker {
            acker: delivery.acker,
            _channel: channel.clone(),
            shared: self.shared.clone(),
            job: job.id,
        });
        Some(match self.kind {
            StreamKind::Jobs => {
                let count = delivery_count(headers);
                job.attempt = job.attempt.saturating_add(count);
                let mut d = Delivery::new(job, acker);
                d.redelivered = redelivered || count > 0;
                d
            }
            StreamKind::DeadLetters => {
                let reason = match unsigned {
                    Some(refused) => DeadLetter::Unauthenticated(refused),
                    None => dead_letter_reason(headers, self.shared.delivery_limit),
                };
                Delivery::dead_letter(job, reason, acker)
            }
        })
    }
}

impl RabbitStream {
    /// Moves a job whose signature did not check to the dead letters, unrun: a copy with
    /// the reason in [`DEAD_REASON_HEADER`] goes to `octobox.dead`, then the delivery is
    /// acknowledged. Rejecting it instead would dead-letter it too, but as "rejected by a
    /// worker", hiding why; that remains the fallback when the copy cannot be published.
    /// The log names the job (from its `message_id` or body) and the reason, never the
    /// arguments.
    ///
    /// The copy goes out on the consuming channel, which is not in confirm mode: if it is
    /// lost (a crash in between, a full dead-letter queue) what is lost is a job that was
    /// never going to run, and its log line remains.
    async fn set_aside(&self, channel: &Channel, delivery: AmqpDelivery, refused: BadSignature) {
        let job = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .or_else(|| {
                serde_json::from_slice::<Job>(&delivery.data)
                    .ok()
                    .map(|j| j.id.to_string())
            })
            .unwrap_or_default();
        tracing::error!(
            queue = %self.queue, %job, reason = %refused,
            "a job was not signed with this broker's key; setting it aside in the dead letters, unrun"
        );
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(
            DEAD_REASON_HEADER.into(),
            AMQPValue::LongString(refused.as_str().into()),
        );
        let properties = delivery.properties.clone().with_headers(headers);
        let copied = async {
            channel
                .basic_publish(
                    DEAD_EXCHANGE.into(),
                    self.queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &delivery.data,
                    properties,
                )
                .await?
                .await
        };
        let settled = match tokio::time::timeout(SETTLE_WAIT, copied).await {
            Ok(Ok(_)) => delivery.acker.ack(BasicAckOptions::default()).await,
            Ok(Err(error)) => {
                tracing::warn!(queue = %self.queue, %job, %error, "could not copy it to the dead letters; rejecting it instead");
                delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await
            }
            Err(_) => {
                tracing::warn!(queue = %self.queue, %job, "copying it to the dead letters took too long; rejecting it instead");
                delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await
            }
        };
        if let Err(error) = settled {
            // Delivered again on the next connection, and checked again.
            tracing::warn!(queue = %self.queue, %job, %error, "could not settle the unsigned job");
        }
    }
}

enum Event {
    Received(Option<lapin::Result<Box<AmqpDelivery>>>),
    Check,
}

impl RabbitStream {
    /// How many messages wait in the queue while this stream, idle for a whole health
    /// check, receives none of them; `None` when that is not the case (or the queue
    /// cannot be asked).
    async fn stalled(&self, channel: &Channel) -> Option<u32> {
        if !channel.status().connected() {
            return None;
        }
        let asked = channel.queue_declare(
            self.queue.as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        );
        match tokio::time::timeout(SETTLE_WAIT, asked).await {
            Ok(Ok(queue)) if queue.message_count() > 0 => Some(queue.message_count()),
            _ => None,
        }
    }
}

#[async_trait]
impl JobStream for RabbitStream {
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        loop {
            if self.ended || self.shared.is_closed() {
                return None;
            }
            let Some((generation, channel, consumer)) = self.subscription.as_mut() else {
                match self.resubscribe().await {
                    Ok(()) => continue,
                    Err(BrokerError::Closed) => return None,
                    Err(error) => {
                        self.ended = true;
                        return Some(Err(error));
                    }
                }
            };
            let (generation, channel) = (*generation, channel.clone());
            let event = tokio::select! {
                received = consumer.next() => Event::Received(received.map(|r| r.map(Box::new))),
                _ = tokio::time::sleep(HEALTH_CHECK) => Event::Check,
            };
            match event {
                Event::Received(Some(Ok(delivery))) => {
                    if let Some(delivery) = self.receive(&channel, *delivery).await {
                        return Some(Ok(delivery));
                    }
                }
                Event::Check => {
                    if generation != self.shared.generation() {
                        tracing::info!(queue = %self.queue, "a new connection to RabbitMQ; consuming on it");
                        self.subscription = None;
                    } else if is_dead(&channel) {
                        tracing::warn!(queue = %self.queue, "the consuming channel no longer delivers; consuming again");
                        self.subscription = None;
                    } else if let Some(ready) = self.stalled(&channel).await {
                        // Jobs wait while this stream, with room for them, gets nothing
                        // (a consumer RabbitMQ lost track of): subscribing again is cheap.
                        tracing::warn!(queue = %self.queue, ready, "jobs are waiting but none arrive; consuming again");
                        let _ = tokio::time::timeout(
                            SETTLE_WAIT,
                            channel.close(200, "consuming again".into()),
                        )
                        .await;
                        self.subscription = None;
                    }
                }
                Event::Received(Some(Err(error))) => {
                    if self.shared.is_closed() {
                        return None;
                    }
                    tracing::warn!(queue = %self.queue, %error, "consuming was interrupted; consuming again once the connection is back");
                    self.subscription = None;
                }
                Event::Received(None) => {
                    if self.shared.is_closed() {
                        return None;
                    }
                    tracing::warn!(queue = %self.queue, "RabbitMQ cancelled the consumer; consuming again");
                    self.subscription = None;
                }
            }
        }
    }
}

/// A channel with its prefetch, consuming `queue` with manual acknowledgement.
async fn subscribe(
    shared: &Shared,
    queue: &str,
    prefetch: u16,
) -> Result<(u64, Channel, Consumer), BrokerError> {
    let (generation, connection) = shared.connection();
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| shared.unavailable("could not open a channel", e))?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| shared.unavailable("could not set the prefetch", e))?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| shared.unavailable(&format!("could not consume from {queue}"), e))?;
    Ok((generation, channel, consumer))
}

/// Settles one delivery. Holds its channel, so a delivery can still be settled after its
/// stream is dropped.
struct RabbitAcker {
    acker: Acker,
    _channel: Channel,
    shared: Arc<Shared>,
    job: JobId,
}

impl RabbitAcker {
    fn settled(
        &self,
        what: &str,
        result: Result<lapin::Result<bool>, tokio::time::error::Elapsed>,
    ) -> Result<(), BrokerError> {
        let error = match result {
            Ok(Ok(true)) => return Ok(()),
            // A settlement sent on a channel that died unnoticed may never be answered; the
            // worker must not wait for it (it would hold a slot for ever).
            Err(_) => BrokerError::unavailable(format!(
                "job {} could not be {what}: RabbitMQ at {} did not answer within {:?}, so it \
                 will deliver it again",
                self.job, self.shared.target, SETTLE_WAIT
            )),
            // The acker was poisoned: its channel closed or reconnected since the delivery.
            Ok(Ok(false)) => BrokerError::unavailable(format!(
                "job {} could not be {what}: the connection to RabbitMQ at {} was lost after \
                 it was delivered, so RabbitMQ will deliver it again",
                self.job, self.shared.target
            )),
            Ok(Err(error)) => BrokerError::unavailable_by(
                format!(
                    "job {} could not be {what}: RabbitMQ at {}: {error}; it will be \
                     delivered again",
                    self.job, self.shared.target
                ),
                error,
            ),
        };
        tracing::warn!(job = %self.job, %error, "settling a delivery failed");
        Err(error)
    }
}

#[async_trait]
impl Acknowledge for RabbitAcker {
    async fn ack(self: Box<Self>) -> Result<(), BrokerError> {
        let result =
            tokio::time::timeout(SETTLE_WAIT, self.acker.ack(BasicAckOptions::default())).await;
        self.settled("acknowledged", result)
    }

    async fn reject(self: Box<Self>, requeue: bool) -> Result<(), BrokerError> {
        let result = tokio::time::timeout(
            SETTLE_WAIT,
            self.acker.reject(BasicRejectOptions { requeue }),
        )
        .await;
        self.settled("rejected", result)
    }
}

/// How many times a quorum queue delivered this message before without an acknowledgement.
fn delivery_count(headers: Option<&FieldTable>) -> u32 {
    headers
        .and_then(|h| h.inner().get("x-delivery-count"))
        .and_then(as_integer)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

/// Why RabbitMQ dead-lettered a message. The most recent `x-death` entry comes first; a
/// delayed job carries an older `expired` entry from its delay queue.
pub(crate) fn dead_letter_reason(headers: Option<&FieldTable>, delivery_limit: u32) -> DeadLetter {
    if let Some(refused) = headers
        .and_then(|h| h.inner().get(DEAD_REASON_HEADER))
        .and_then(as_text)
        .and_then(|text| BadSignature::parse(&text))
    {
        return DeadLetter::Unauthenticated(refused);
    }
    let latest = headers
        .and_then(|h| h.inner().get("x-death"))
        .and_then(|deaths| match deaths {
            AMQPValue::FieldArray(deaths) => deaths.as_slice().first().cloned(),
            _ => None,
        })
        .and_then(|death| match death {
            AMQPValue::FieldTable(death) => death.inner().get("reason").and_then(as_text),
            _ => None,
        });
    let reason = latest.or_else(|| {
        headers
            .and_then(|h| h.inner().get("x-first-death-reason"))
            .and_then(as_text)
    });
    match reason.as_deref() {
        Some("delivery_limit") => DeadLetter::DeliveryLimit {
            limit: delivery_limit,
        },
        Some("rejected") => DeadLetter::Rejected,
        Some("expired") => DeadLetter::Expired,
        Some("maxlen") => DeadLetter::QueueFull,
        Some(other) => DeadLetter::Other(other.to_string()),
        None => DeadLetter::Unexplained,
    }
}

fn as_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn as_integer(value: &AMQPValue) -> Option<i64> {
    Some(match *value {
        AMQPValue::ShortShortInt(n) => n.into(),
        AMQPValue::ShortShortUInt(n) => n.into(),
        AMQPValue::ShortInt(n) => n.into(),
        AMQPValue::ShortUInt(n) => n.into(),
        AMQPValue::LongInt(n) => n.into(),
        AMQPValue::LongUInt(n) => n.into(),
        AMQPValue::LongLongInt(n) => n,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::FieldArray;

    fn death(reason: &str, queue: &str) -> AMQPValue {
        let mut entry = FieldTable::default();
        entry.insert("reason".into(), AMQPValue::LongString(reason.into()));
        entry.insert("queue".into(), AMQPValue::LongString(queue.into()));
        entry.insert("count".into(), AMQPValue::LongLongInt(1));
        AMQPValue::FieldTable(entry)
    }

    fn headers(deaths: Vec<AMQPValue>, first: &str) -> FieldTable {
        let mut h = FieldTable::default();
        h.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(deaths)),
        );
        h.insert(
            "x-first-death-reason".into(),
            AMQPValue::LongString(first.into()),
        );
        h
    }

    #[test]
    fn dead_letter_reasons_read_as_sentences() {
        let h = headers(
            vec![death("delivery_limit", "octobox.jobs.native")],
            "delivery_limit",
        );
        assert_eq!(
            dead_letter_reason(Some(&h), 5).to_string(),
            "it was delivered 5 times without being acknowledged (the delivery limit): \
             it may crash the workers that take it"
        );
        assert!(dead_letter_reason(Some(&h), 1)
            .to_string()
            .starts_with("it was delivered once without"));
        let h = headers(vec![death("rejected", "octobox.jobs.native")], "rejected");
        assert_eq!(
            dead_letter_reason(Some(&h), 5).to_string(),
            "it was rejected by a worker"
        );
        assert_eq!(
            dead_letter_reason(None, 5).to_string(),
            "RabbitMQ dead-lettered it without saying why"
        );
    }

    #[test]
    fn the_latest_death_wins_over_the_delay_that_expired_first() {
        let h = headers(
            vec![
                death("rejected", "octobox.jobs.native"),
                death("expired", "octobox.delay.native"),
            ],
            "expired",
        );
        assert_eq!(
            dead_letter_reason(Some(&h), 5).to_string(),
            "it was rejected by a worker"
        );
    }

    #[test]
    fn delivery_count_reads_any_integer_and_defaults_to_zero() {
        let mut h = FieldTable::default();
        assert_eq!(delivery_count(Some(&h)), 0);
        h.insert("x-delivery-count".into(), AMQPValue::LongLongInt(2));
        assert_eq!(delivery_count(Some(&h)), 2);
        h.insert("x-delivery-count".into(), AMQPValue::LongInt(3));
        assert_eq!(delivery_count(Some(&h)), 3);
        assert_eq!(delivery_count(None), 0);
    }
}
