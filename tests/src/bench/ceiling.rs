//! The broker ceiling: how many job-sized messages per second RabbitMQ itself carries end
//! to end on this machine, with the guarantees the pipeline asks of it, and nothing else.
//!
//! One lapin connection publishes (as the bot does) and another consumes (as a worker
//! does), on a queue declared like the pipeline's job queues — quorum, the same
//! arguments as `jobs::rabbit::topology` gives `octobox.jobs.native` — under a name of
//! its own, deleted at the end. Messages are persistent, mandatory, with the properties
//! `RabbitBroker` sets, and each waits for its publisher confirm, with up to `window`
//! confirms in flight; the consumer has the worker's prefetch and acknowledges each
//! message on its own. The rate is the message count over the time from the first
//! publish to the last acknowledgement.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    PublisherConfirm,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The queue the ceiling is measured on.
pub const QUEUE: &str = "octobox.bench.ceiling";

/// What to send, and how.
pub struct Ceiling<'a> {
    pub url: &'a str,
    /// One serialized `Job`, sent `messages` times.
    pub body: &'a [u8],
    pub messages: usize,
    /// Publisher confirms in flight at most.
    pub window: usize,
    /// The consumer's prefetch: the worker's (its concurrency).
    pub prefetch: u16,
    /// `[broker] delivery_limit`, which the job queues' arguments carry.
    pub delivery_limit: u32,
    pub patience: Duration,
}

/// Messages per second, end to end.
pub async fn measure(c: Ceiling<'_>) -> Result<f64> {
    let (link, mut deliveries) = Link::open(&c).await?;
    let messages = c.messages;
    let consuming = tokio::spawn(async move {
        let mut acked = 0usize;
        while acked < messages {
            let delivery = deliveries
                .next()
                .await
                .ok_or_else(|| anyhow!("the consumer ended after {acked} messages"))??;
            delivery.ack(BasicAckOptions::default()).await?;
            acked += 1;
        }
        // The consumer is handed back, so that it is cancelled in order below, not by a
        // drop racing the queue's deletion.
        anyhow::Ok((Instant::now(), deliveries))
    });

    let first = Instant::now();
    let in_flight = Arc::new(Semaphore::new(c.window.max(1)));
    let mut confirms = tokio::task::JoinSet::new();
    let publishing = async {
        for i in 0..c.messages {
            let slot = in_flight.clone().acquire_owned().await?;
            let confirm = link.publish(c.body, i).await?;
            confirms.spawn(async move {
                let confirmation = confirm.await;
                drop(slot);
                match confirmation? {
                    Confirmation::Ack(None) => anyhow::Ok(()),
                    other => bail!("RabbitMQ did not take a message: {other:?}"),
                }
            });
            // Settle finished confirms as we go, so errors surface early.
            while let Some(done) = confirms.try_join_next() {
                done??;
            }
        }
        while let Some(done) = confirms.join_next().await {
            done??;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(c.patience, publishing)
        .await
        .map_err(|_| {
            anyhow!(
                "publishing {} messages took over {:?}",
                c.messages,
                c.patience
            )
        })??;
    let (last, deliveries) = tokio::time::timeout_at(first + c.patience, consuming)
        .await
        .map_err(|_| {
            anyhow!(
                "consuming {} messages took over {:?}",
                c.messages,
                c.patience
            )
        })???;

    link.close(deliveries).await?;
    Ok(super::stats::rate(
        c.messages,
        last.saturating_duration_since(first),
    ))
}

/// RabbitMQ's part of a job's round trip at low load: one message at a time, on the same
/// kind of queue and with the same guarantees, timed from the publish to its confirm
/// and to its delivery to the consumer. No job can come back sooner than its delivery.
pub struct Floor {
    pub confirmed: Vec<Duration>,
    pub delivered: Vec<Duration>,
}

/// Sends `c.messages` messages one at a time (`c.window` is not used).
pub async fn floor(c: Ceiling<'_>) -> Result<Floor> {
    let (link, mut deliveries) = Link::open(&c).await?;
    let mut floor = Floor {
        confirmed: Vec::with_capacity(c.messages),
        delivered: Vec::with_capacity(c.messages),
    };
    let sending = async {
        for i in 0..c.messages {
            let start = Instant::now();
            let confirm = link.publish(c.body, i).await?;
            // The delivery may come before the confirm; both are awaited together.
            let delivered = async {
                let delivery = deliveries
                    .next()
                    .await
                    .ok_or_else(|| anyhow!("the consumer ended after {i} messages"))??;
                let at = Instant::now();
                delivery.ack(BasicAckOptions::default()).await?;
                anyhow::Ok(at)
            };
            let confirmed = async {
                match confirm.await? {
                    Confirmation::Ack(None) => anyhow::Ok(Instant::now()),
                    other => bail!("RabbitMQ did not take a message: {other:?}"),
                }
            };
            let (delivered, confirmed) = tokio::try_join!(delivered, confirmed)?;
            floor.delivered.push(delivered - start);
            floor.confirmed.push(confirmed - start);
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(c.patience, sending)
        .await
        .map_err(|_| {
            anyhow!(
                "{} messages one at a time took over {:?}",
                c.messages,
                c.patience
            )
        })??;
    link.close(deliveries).await?;
    Ok(floor)
}

/// A publisher with confirms and a consumer, each on a connection of its own, around a
/// queue declared like the job queues; the queue is deleted by [`Link::close`].
struct Link {
    publisher: Connection,
    consumer: Connection,
    channel: Channel,
    receiving: Channel,
    properties: BasicProperties,
}

/// The consumer's tag.
const CONSUMER: &str = "bench";

impl Link {
    async fn open(c: &Ceiling<'_>) -> Result<(Link, Consumer)> {
        let publisher = connect(c.url, "publisher").await?;
        let consumer = connect(c.url, "consumer").await?;
        let channel = publisher.create_channel().await?;
        channel
            .queue_declare(
                QUEUE.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                job_queue_arguments(c.delivery_limit),
            )
            .await
            .with_context(|| format!("declaring {QUEUE}"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let receiving = consumer.create_channel().await?;
        receiving
            .basic_qos(c.prefetch, BasicQosOptions::default())
            .await?;
        let deliveries = receiving
            .basic_consume(
                QUEUE.into(),
                CONSUMER.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_timestamp(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0));
        let link = Link {
            publisher,
            consumer,
            channel,
            receiving,
            properties,
        };
        Ok((link, deliveries))
    }

    /// Publishes message `i` as the bot publishes a job: persistent and mandatory.
    async fn publish(&self, body: &[u8], i: usize) -> Result<PublisherConfirm> {
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                QUEUE.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                self.properties
                    .clone()
                    .with_message_id(format!("bench-{i}").into()),
            )
            .await?;
        Ok(confirm)
    }

    /// Cancels the consumer in order (handed back, so that its drop does not race the
    /// queue's deletion), deletes the queue and closes both connections.
    async fn close(self, deliveries: Consumer) -> Result<()> {
        self.receiving
            .basic_cancel(CONSUMER.into(), BasicCancelOptions::default())
            .await?;
        let _ = self.consumer.close(200, "done".into()).await;
        drop(deliveries);
        self.channel
            .queue_delete(QUEUE.into(), QueueDeleteOptions::default())
            .await?;
        let _ = self.publisher.close(200, "done".into()).await;
        Ok(())
    }
}

/// Connects with the frame size the pipeline's connections ask for.
async fn connect(url: &str, role: &str) -> Result<Connection> {
    let url = format!("{url}?frame_max={}", jobs::rabbit::FRAME_MAX);
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("octobox-bench {role}").into());
    tokio::time::timeout(
        Duration::from_secs(30),
        Connection::connect(&url, properties),
    )
    .await
    .map_err(|_| anyhow!("RabbitMQ did not accept the {role} connection within 30 s"))?
    .with_context(|| format!("connecting the {role} to RabbitMQ"))
}

/// The arguments `jobs::rabbit::topology` gives a job queue (kept in step by hand: the
/// function there is private to `jobs`).
fn job_queue_arguments(delivery_limit: u32) -> FieldTable {
    let text = |v: &str| AMQPValue::LongString(v.into());
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(delivery_limit.saturating_sub(1))),
    );
    args.insert("x-dead-letter-exchange".into(), text("octobox.dead"));
    args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    args.insert("x-overflow".into(), text("reject-publish"));
    args
}
