//! `RabbitBroker`: the [`Broker`] on RabbitMQ, through lapin.
//!
//! One AMQP connection per process, kept up by [`link`]: when it fails, a new one is
//! opened (never giving up) and everything built on it is rebuilt. This module adds:
//! - publishing waits for that reconnect and publishes again, up to
//!   `BrokerConfig::publish_timeout`, then tells the requester the job could not be queued
//!   (`BrokerError::Unavailable`). A job whose confirmation was lost with the connection is
//!   published again, so it may be queued twice (at-least-once; its `message_id` is the job
//!   id);
//! - a negative confirmation (a quorum queue electing a new leader after its node died,
//!   or short of its quorum) is published again after a pause, up to the same timeout;
//! - the publishing channel, in confirm mode, is opened again on each new connection, and
//!   when RabbitMQ closed it (a channel error); the topology is declared again on it.
//!
//! A lost connection is noticed when the socket fails or RabbitMQ says it is shutting
//! down; a silent network cut only by the heartbeat (RabbitMQ proposes 60 s; the URL's
//! `?heartbeat=10` shortens it).
//!
//! [`RabbitBroker::close`] closes the connection on purpose, which ends the streams.
//! Dropping the broker and all its streams and deliveries closes it as well: lapin closes
//! a connection when its last handle goes.
//!
//! - [`link`]: the connection, its generations, the supervisor that reconnects.
//! - [`topology`]: the exchanges and queues, their names and arguments.
//! - [`consume`]: job streams, acknowledgements, dead letters and their reasons.
//! - [`control`]: control messages (`cancel`) on a fanout exchange, to every worker.
//! - [`signing`]: the HMAC every published message carries, and its check on receipt.
//!
//! The URL holds the password: only [`Secret::redacted_url`] reaches logs and errors.

pub mod consume;
pub mod control;
pub mod link;
pub mod signing;
pub mod topology;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation};
use tokio::sync::Mutex;
use tokio::time::{timeout, timeout_at, Instant};

/// How long one publish try waits for RabbitMQ's confirmation before publishing again.
/// A duplicate is harmless (workers skip jobs whose result is stored; replies are claimed
/// once); a confirmation lost with a connection is not.
const CONFIRM_WAIT: Duration = Duration::from_secs(10);

use crate::backoff::Backoff;
use crate::broker::{Broker, BrokerError, JobStream};
use crate::control::{Control, ControlFeed};
use crate::job::{Job, TaskClass};
use config::BrokerConfig;

use consume::{RabbitStream, StreamKind};
use topology::{delay_queue, DeclareError, JOBS_EXCHANGE};

use link::{Shared, RECONNECT_MIN_DELAY};
pub use link::{FRAME_MAX, RECONNECT_MAX_DELAY};

/// The job queue on RabbitMQ. See the module documentation for how it recovers.
pub struct RabbitBroker {
    shared: Arc<Shared>,
    /// The one channel publishes go through, in confirm mode, with the generation of the
    /// connection it is on. Replaced on a new connection, and when RabbitMQ closes it.
    publisher: Mutex<Option<(u64, Channel)>>,
    publish_timeout: Duration,
}

impl RabbitBroker {
    /// Connects to `config.url` and declares the topology (see [`topology`]). Fails with
    /// `BrokerError::Unavailable` within `publish_timeout` (at least five seconds) when
    /// RabbitMQ cannot be reached, refuses the login, or refuses the topology (a queue
    /// declared with other arguments).
    pub async fn connect(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let deadline = Instant::now() + config.publish_timeout.max(Duration::from_secs(5));
        let signing = signing::Signing::from_config(config);
        let signed = signing.is_some();
        let shared = Shared::connect(config, signing, deadline).await?;
        let (generation, connection) = shared.connection();
        let publisher = open_publisher(&shared, &connection).await?;
        tracing::info!(
            target_url = %shared.target,
            delivery_limit = config.delivery_limit,
            signed,
            "connected to RabbitMQ and declared the job queues"
        );
        if !signed {
            // Kept working for setups that predate signing; said once per process.
            tracing::warn!(
                target_url = %shared.target,
                "jobs are not authenticated: set [broker] signing_key, or anyone with the \
                 RabbitMQ credentials can make the workers run a job"
            );
        }
        Ok(RabbitBroker {
            shared,
            publisher: Mutex::new(Some((generation, publisher))),
            publish_timeout: config.publish_timeout,
        })
    }

    /// Closes the connection: unacknowledged deliveries go back to their queues, and every
    /// stream of this broker ends (`next()` gives `None`).
    pub async fn close(&self) {
        self.shared.close().await;
    }

    /// Closes `refused`, if it is still the publishing channel, so the next publish opens
    /// another; publishes waiting for its confirmations fail and are published again.
    async fn replace_publishing_channel(&self, refused: &Channel) {
        let mut publisher = self.publisher.lock().await;
        if publisher
            .as_ref()
            .is_some_and(|(_, channel)| channel.id() == refused.id())
        {
            *publisher = None;
            let channel = refused.clone();
            tokio::spawn(async move {
                let _ = channel
                    .close(
                        200,
                        "octobox replaces a channel RabbitMQ refused publishes on".into(),
                    )
                    .await;
            });
        }
    }

    /// The publishing channel on the current connection: opened again after a reconnect
    /// or when RabbitMQ closed it.
    async fn publishing_channel(&self) -> Result<Channel, BrokerError> {
        let mut publisher = self.publisher.lock().await;
        let (generation, connection) = self.shared.connection();
        match &*publisher {
            Some((g, channel)) if *g == generation && !is_dead(channel) => {
                return Ok(channel.clone())
            }
            Some((g, _)) if *g == generation => {
                tracing::warn!(target_url = %self.shared.target, "the publishing channel was closed by RabbitMQ; opening another");
            }
            _ => {}
        }
        *publisher = None;
        if !connection.status().connected() {
            return Err(BrokerError::unavailable(format!(
                "RabbitMQ at {} is not reachable; reconnecting",
                self.shared.target
            )));
        }
        let channel = open_publisher(&self.shared, &connection).await?;
        *publisher = Some((generation, channel.clone()));
        Ok(channel)
    }

    /// Publishes `job` and waits for RabbitMQ's confirmation, through reconnects, until
    /// the publish timeout.
    async fn publish_confirmed(
        &self,
        job: &Job,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
    ) -> Result<(), BrokerError> {
        let body = serde_json::to_vec(job).map_err(|e| BrokerError::Refused {
            job: job.id.to_string(),
            reason: format!("it could not be written as JSON: {e}"),
        })?;
        let properties = match &self.shared.signing {
            Some(signing) => signing.signed(properties, &body),
            None => properties,
        };
        let started = Instant::now();
        let deadline = started + self.publish_timeout;
        let mut backoff = Backoff::new(RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY);
        let mut tries = 0u32;
        loop {
            if self.shared.is_closed() {
                return Err(BrokerError::Closed);
            }
            tries += 1;
            let generation = self.shared.generation();
            let channel = match timeout_at(deadline, self.publishing_channel()).await {
                Err(_) => return Err(self.gave_up(job, started)),
                Ok(Ok(channel)) => Some(channel),
                Ok(Err(error)) => {
                    tracing::warn!(target_url = %self.shared.target, job = %job.id, %error, "no publishing channel; trying again");
                    None
                }
            };
            if let Some(channel) = channel {
                let sent = async {
                    channel
                        .basic_publish(
                            exchange.into(),
                            routing_key.into(),
                            // Mandatory: a job no queue takes comes back instead of vanishing.
                            BasicPublishOptions {
                                mandatory: true,
                                ..BasicPublishOptions::default()
                            },
                            &body,
                            properties.clone(),
                        )
                        .await?
                        .await
                };
                // One try waits for its confirmation at most CONFIRM_WAIT: a confirmation
                // pending when the connection dropped may never be answered, and the job
                // must then be published again rather than wait out the whole timeout.
                let attempt_deadline = deadline.min(Instant::now() + CONFIRM_WAIT);
                let error = match timeout_at(attempt_deadline, sent).await {
                    Err(_) if Instant::now() >= deadline => return Err(self.gave_up(job, started)),
                    Err(_) => {
                        tracing::warn!(
                            target_url = %self.shared.target, job = %job.id,
                            "no confirmation within {CONFIRM_WAIT:?}; publishing again"
                        );
                        continue;
                    }
                    Ok(Ok(Confirmation::Nack(_))) => {
                        // A quorum queue electing a leader (its node died) or short of its
                        // quorum refuses for a while; a duplicate of a job that was stored
                        // after all is harmless, a job given up too soon is not. A channel
                        // that knew the dead leader went on refusing every publish while
                        // other connections published (seen in the cluster test): the
                        // next try goes through a new channel.
                        tracing::warn!(
                            target_url = %self.shared.target, job = %job.id, tries,
                            "RabbitMQ refused the job for now (a negative confirmation); publishing again on a new channel"
                        );
                        self.replace_publishing_channel(&channel).await;
                        if timeout_at(deadline, tokio::time::sleep(backoff.next_pause()))
                            .await
                            .is_err()
                        {
                            return confirmed(job, Confirmation::Nack(None));
                        }
                        continue;
                    }
                    Ok(Ok(confirmation)) => {
                        if tries > 1 {
                            tracing::info!(
                                target_url = %self.shared.target, job = %job.id, tries,
                                waited_ms = started.elapsed().as_millis() as u64,
                                "published on a later try"
                            );
                        }
                        return confirmed(job, confirmation);
                    }
                    Ok(Err(error)) => error,
                };
                tracing::warn!(
                    target_url = %self.shared.target, job = %job.id, %error,
                    "publishing failed; publishing again once the connection or the channel is back"
                );
            }
            // Returns at once while the connection is up (a channel error): the pause
            // below keeps those retries from spinning.
            match self.shared.wait_connected(deadline).await {
                Err(BrokerError::Closed) => return Err(BrokerError::Closed),
                Err(_) => return Err(self.gave_up(job, started)),
                Ok(()) if self.shared.generation() != generation => {
                    // A new connection: publish on it at once.
                    backoff.reset();
                    continue;
                }
                Ok(()) => {}
            }
            if timeout_at(deadline, tokio::time::sleep(backoff.next_pause()))
                .await
                .is_err()
            {
                return Err(self.gave_up(job, started));
            }
        }
    }

    fn gave_up(&self, job: &Job, started: Instant) -> BrokerError {
        tracing::error!(
            target_url = %self.shared.target, job = %job.id,
            waited_ms = started.elapsed().as_millis() as u64,
            "gave up publishing: RabbitMQ did not confirm the job in time"
        );
        BrokerError::unavailable(format!(
            "job {} could not be queued: RabbitMQ at {} did not confirm it within {} seconds",
            job.id,
            self.shared.target,
            self.publish_timeout.as_secs_f32()
        ))
    }

    async fn consume_queue(
        &self,
        queue: String,
        prefetch: u16,
        kind: StreamKind,
    ) -> Result<Box<dyn JobStream>, BrokerError> {
        if self.shared.is_closed() {
            return Err(BrokerError::Closed);
        }
        let stream = RabbitStream::start(self.shared.clone(), queue, prefetch, kind).await?;
        Ok(Box::new(stream))
    }
}

#[async_trait]
impl Broker for RabbitBroker {
    async fn publish(&self, job: &Job) -> Result<(), BrokerError> {
        let class = job.task.class();
        self.publish_confirmed(job, JOBS_EXCHANGE, class.as_str(), properties(job))
            .await
    }

    async fn publish_delayed(&self, job: &Job, delay: Duration) -> Result<(), BrokerError> {
        // Through the default exchange straight into the delay queue; when the message
        // expires, the queue dead-letters it to `octobox.jobs` with the class as key.
        let queue = delay_queue(job.task.class());
        let expiration = delay.as_millis().max(1).to_string();
        let properties = properties(job).with_expiration(expiration.into());
        self.publish_confirmed(job, "", &queue, properties).await
    }

    async fn consume(
        &self,
        class: TaskClass,
        prefetch: u16,
    ) -> Result<Box<dyn JobStream>, BrokerError> {
        self.consume_queue(topology::job_queue(class), prefetch, StreamKind::Jobs)
            .await
    }

    async fn consume_dead_letters(&self) -> Result<Box<dyn JobStream>, BrokerError> {
        // Dead letters are read one at a time, by a person or a reporting task.
        self.consume_queue(topology::DEAD_QUEUE.to_string(), 1, StreamKind::DeadLetters)
            .await
    }

    async fn broadcast(&self, control: &Control) -> Result<(), BrokerError> {
        if self.shared.is_closed() {
            return Err(BrokerError::Closed);
        }
        let channel = self.publishing_channel().await?;
        control::publish(&self.shared, &channel, control).await
    }

    async fn subscribe_control(&self) -> Result<ControlFeed, BrokerError> {
        if self.shared.is_closed() {
            return Err(BrokerError::Closed);
        }
        control::subscribe(self.shared.clone()).await
    }

    fn describe(&self) -> String {
        format!("RabbitMQ at {}", self.shared.target)
    }

    fn connected(&self) -> Result<(), BrokerError> {
        let (_, connection) = self.shared.connection();
        if connection.status().connected() {
            Ok(())
        } else {
            Err(BrokerError::unavailable(format!(
                "RabbitMQ at {} is not reachable; reconnecting",
                self.shared.target
            )))
        }
    }

    /// Passive declarations on the publishing channel: they read a queue's count without
    /// changing it (the queues exist: the topology was declared on this channel).
    async fn queue_depths(&self) -> Result<Vec<(&'static str, u64)>, BrokerError> {
        let channel = self.publishing_channel().await?;
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let queues = [
            (
                TaskClass::Native.as_str(),
                topology::job_queue(TaskClass::Native),
            ),
            (
                TaskClass::Container.as_str(),
                topology::job_queue(TaskClass::Container),
            ),
            ("dead_letters", topology::DEAD_QUEUE.to_string()),
        ];
        let mut depths = Vec::with_capacity(queues.len());
        for (label, queue) in queues {
            let declared = channel
                .queue_declare(queue.as_str().into(), passive, Default::default())
                .await
                .map_err(|e| {
                    BrokerError::unavailable(format!(
                        "RabbitMQ at {} did not say how deep {queue} is: {e}",
                        self.shared.target
                    ))
                })?;
            depths.push((label, u64::from(declared.message_count())));
        }
        Ok(depths)
    }
}

/// Persistent JSON, identified by the job id.
fn properties(job: &Job) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(job.id.to_string().into())
        .with_timestamp(u64::try_from(job.created_at.timestamp()).unwrap_or(0))
}

fn confirmed(job: &Job, confirmation: Confirmation) -> Result<(), BrokerError> {
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) => Err(BrokerError::Refused {
            job: job.id.to_string(),
            reason: format!(
                "no queue takes jobs of class {} (RabbitMQ returned it: {})",
                job.task.class().as_str(),
                returned.reply_text
            ),
        }),
        Confirmation::Nack(_) => Err(BrokerError::Refused {
            job: job.id.to_string(),
            reason: "RabbitMQ could not store it (it answered with a negative confirmation)"
                .to_string(),
        }),
        Confirmation::NotRequested => Err(BrokerError::unavailable(
            "the publishing channel is not in confirm mode, so the job may not be queued",
        )),
    }
}

/// A channel that no longer works: RabbitMQ closed it, or its connection is gone.
pub(crate) fn is_dead(channel: &Channel) -> bool {
    let status = channel.status();
    !(status.connected() || status.closing() || status.initializing())
}

/// A channel in confirm mode on `connection`, with the topology declared on it (so that a
/// broker that lost its queues gets them back with the first publish after a reconnect).
async fn open_publisher(
    shared: &Shared,
    connection: &lapin::Connection,
) -> Result<Channel, BrokerError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| shared.unavailable("could not open a channel", e))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| shared.unavailable("could not turn on publisher confirms", e))?;
    let declared = timeout(
        Duration::from_secs(60),
        topology::declare(&channel, shared.delivery_limit),
    )
    .await;
    match declared {
        Ok(Ok(())) => Ok(channel),
        Ok(Err(DeclareError { what, error })) => {
            let hint = if is_precondition_failed(&error) {
                ": it already exists with other arguments (another delivery_limit, or an \
                 older layout); align the configuration, or delete it if it holds nothing to keep"
            } else {
                ""
            };
            Err(BrokerError::unavailable_by(
                format!(
                    "RabbitMQ at {} refused to declare the {what}: {error}{hint}",
                    shared.target
                ),
                error,
            ))
        }
        Err(_) => Err(BrokerError::unavailable(format!(
            "RabbitMQ at {} did not declare the job queues within a minute",
            shared.target
        ))),
    }
}

fn is_precondition_failed(error: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e)
        if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
}
