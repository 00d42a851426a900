//! The `Broker`: how jobs travel from whoever submits them to the workers.
//!
//! The contract is at-least-once: `publish` returns only once the broker holds the job,
//! and a consumed job stays owned by the broker until the consumer acknowledges it. A
//! worker therefore acknowledges only after the job's result is in the store.

use std::time::Duration;

use async_trait::async_trait;

use crate::control::{Control, ControlFeed};
use crate::failure::DeadLetter;
use crate::job::{Job, TaskClass};

/// What went wrong with a broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("the job queue refused job {job}: {reason}")]
    Refused { job: String, reason: String },
    /// The broker did not answer, or failed: `reason` is the whole sentence (naming the
    /// server and what was being done, quoting the client's error), `source` that error.
    #[error("the job queue is unavailable: {reason}")]
    Unavailable {
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("the job queue has shut down")]
    Closed,
}

impl BrokerError {
    /// [`BrokerError::Unavailable`] for a failure with no underlying error (a timeout, a
    /// connection already known to be lost).
    pub fn unavailable(reason: impl Into<String>) -> Self {
        BrokerError::Unavailable {
            reason: reason.into(),
            source: None,
        }
    }

    /// [`BrokerError::Unavailable`] caused by `source`, which `reason` quotes.
    pub fn unavailable_by(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        BrokerError::Unavailable {
            reason: reason.into(),
            source: Some(Box::new(source)),
        }
    }
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Hands `job` to the broker; returns once the broker has confirmed it holds it.
    async fn publish(&self, job: &Job) -> Result<(), BrokerError>;

    /// Publishes `job` again after `delay` (a retry with backoff). Returns once the
    /// broker holds it; the caller may then acknowledge the original delivery.
    async fn publish_delayed(&self, job: &Job, delay: Duration) -> Result<(), BrokerError>;

    /// Starts consuming one task class, with at most `prefetch` unacknowledged jobs.
    async fn consume(
        &self,
        class: TaskClass,
        prefetch: u16,
    ) -> Result<Box<dyn JobStream>, BrokerError>;

    /// Consumes the jobs the broker gave up on: rejected without requeue, or delivered
    /// more times than the delivery limit (a job that crashes its workers). Each
    /// `Delivery` carries the reason in `dead`.
    async fn consume_dead_letters(&self) -> Result<Box<dyn JobStream>, BrokerError>;

    /// Sends `control` to every worker subscribed now (not durable: see [`Control`]).
    async fn broadcast(&self, control: &Control) -> Result<(), BrokerError>;

    /// Receives every control message broadcast from now on.
    async fn subscribe_control(&self) -> Result<ControlFeed, BrokerError>;

    /// A short description for logs: "in-memory queue", "RabbitMQ at host:port".
    fn describe(&self) -> String;

    /// Whether the broker is reachable now (for `/readyz`): the connection is up. The
    /// in-memory queue always is.
    fn connected(&self) -> Result<(), BrokerError> {
        Ok(())
    }

    /// How many messages wait in each queue (`native`, `container`, `dead_letters`),
    /// for `/metrics`; empty where the broker cannot tell.
    async fn queue_depths(&self) -> Result<Vec<(&'static str, u64)>, BrokerError> {
        Ok(Vec::new())
    }
}

/// Jobs as a consumer receives them.
#[async_trait]
pub trait JobStream: Send {
    /// The next job, or `None` once the stream has ended.
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>>;
}

/// One received job and the means to settle it with the broker.
pub struct Delivery {
    pub job: Job,
    /// The broker handed this job out before and it was never acknowledged: the worker
    /// that held it died, or its acknowledgement was lost.
    pub redelivered: bool,
    /// For a dead letter: why the broker gave up on it.
    pub dead: Option<DeadLetter>,
    acker: Box<dyn Acknowledge>,
}

impl Delivery {
    pub fn new(job: Job, acker: Box<dyn Acknowledge>) -> Self {
        Delivery {
            job,
            redelivered: false,
            dead: None,
            acker,
        }
    }

    pub fn dead_letter(job: Job, reason: DeadLetter, acker: Box<dyn Acknowledge>) -> Self {
        Delivery {
            job,
            redelivered: false,
            dead: Some(reason),
            acker,
        }
    }

    /// The job is done with (its result is stored): the broker forgets it.
    pub async fn ack(self) -> Result<(), BrokerError> {
        self.acker.ack().await
    }

    /// The job goes back to the broker (`requeue`) or to the dead letters.
    pub async fn reject(self, requeue: bool) -> Result<(), BrokerError> {
        self.acker.reject(requeue).await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("job", &self.job.id)
            .finish()
    }
}

/// How a delivery is settled; each broker implements it.
#[async_trait]
pub trait Acknowledge: Send {
    async fn ack(self: Box<Self>) -> Result<(), BrokerError>;
    async fn reject(self: Box<Self>, requeue: bool) -> Result<(), BrokerError>;
}
