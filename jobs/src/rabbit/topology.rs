//! The RabbitMQ topology Octobox uses: the names, and the one function that declares them.
//!
//! ```text
//! publish ──> octobox.jobs (direct) ──[class]──> octobox.jobs.<class>   (quorum)
//!                   ^                                  │ rejected, or past the delivery limit
//!                   │ expired (TTL = the delay)        v
//! publish_delayed ──> octobox.delay.<class> (quorum)   octobox.dead (fanout) ──> octobox.dead (quorum)
//!
//! broadcast ──> octobox.control (fanout) ──> one exclusive queue per subscribed worker
//! ```
//!
//! Every process declares all of it at start, whichever comes first: declaring is
//! idempotent as long as the arguments agree, and a disagreement (another
//! `delivery_limit`, say) is refused by RabbitMQ and reported as such, never silently
//! ignored. Queue names derive from [`TaskClass::ALL`], so a new task class gets its
//! queues without touching this file.
//!
//! Why these choices:
//! - Quorum queues: replicated and durable, and they count deliveries
//!   (`x-delivery-count`), which is what the delivery limit stands on.
//! - `x-delivery-limit`: RabbitMQ dead-letters a message once it has been *returned*
//!   more than the limit, i.e. after limit + 1 deliveries. `BrokerConfig::delivery_limit`
//!   counts deliveries ("how many times a job may be delivered"), so the queue gets
//!   `delivery_limit - 1`.
//! - At-least-once dead-lettering (`x-dead-letter-strategy=at-least-once`, RabbitMQ
//!   3.10+, which requires `x-overflow=reject-publish`): a dead-lettered job is removed
//!   from its queue only once the dead-letter queue has confirmed it, so a crash in between
//!   cannot lose it. No length limit is set, so `reject-publish` never refuses a publish.
//! - Delay queues are quorum queues too: since 3.10 they honour a per-message
//!   `expiration`, and they dead-letter at-least-once back to `octobox.jobs` with the class
//!   as routing key. As with every RabbitMQ TTL, a message expires only when it reaches the
//!   head of its queue: a job delayed by a minute holds back one delayed by a second that
//!   was published after it. Delays are retry backoffs, so jobs arrive late, never early.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::job::TaskClass;

/// The direct exchange jobs are published to; the routing key is the task class.
pub const JOBS_EXCHANGE: &str = "octobox.jobs";
/// The fanout exchange the job queues dead-letter to.
pub const DEAD_EXCHANGE: &str = "octobox.dead";
/// The queue that keeps dead letters until someone looks at them.
pub const DEAD_QUEUE: &str = "octobox.dead";

/// The queue that holds the jobs of one class: `octobox.jobs.native`.
pub fn job_queue(class: TaskClass) -> String {
    format!("{JOBS_EXCHANGE}.{}", class.as_str())
}

/// The queue where delayed jobs of one class wait: `octobox.delay.native`.
pub fn delay_queue(class: TaskClass) -> String {
    format!("octobox.delay.{}", class.as_str())
}

/// Which declaration failed, for the error message.
#[derive(Debug)]
pub(crate) struct DeclareError {
    pub what: String,
    pub error: lapin::Error,
}

/// Declares the whole topology on `channel`. Declaring on the publishing channel means
/// lapin's auto-recovery declares it again after a reconnect, so a broker that lost its
/// data gets it back before the first job is published.
pub(crate) async fn declare(channel: &Channel, delivery_limit: u32) -> Result<(), DeclareError> {
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let at = |what: String| move |error| DeclareError { what, error };

    channel
        .exchange_declare(
            JOBS_EXCHANGE.into(),
            ExchangeKind::Direct,
            durable_exchange,
            FieldTable::default(),
        )
        .await
        .map_err(at(format!("exchange {JOBS_EXCHANGE}")))?;
    channel
        .exchange_declare(
            DEAD_EXCHANGE.into(),
            ExchangeKind::Fanout,
            durable_exchange,
            FieldTable::default(),
        )
        .await
        .map_err(at(format!("exchange {DEAD_EXCHANGE}")))?;
    super::control::declare(channel)
        .await
        .map_err(at(format!("exchange {}", super::control::CONTROL_EXCHANGE)))?;
    channel
        .queue_declare(DEAD_QUEUE.into(), durable_queue, dead_queue_arguments())
        .await
        .map_err(at(format!("queue {DEAD_QUEUE}")))?;
    channel
        .queue_bind(
            DEAD_QUEUE.into(),
            DEAD_EXCHANGE.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(at(format!("binding of {DEAD_QUEUE} to {DEAD_EXCHANGE}")))?;

    for class in TaskClass::ALL {
        let queue = job_queue(class);
        channel
            .queue_declare(
                queue.as_str().into(),
                durable_queue,
                job_queue_arguments(delivery_limit),
            )
            .await
            .map_err(at(format!("queue {queue}")))?;
        channel
            .queue_bind(
                queue.as_str().into(),
                JOBS_EXCHANGE.into(),
                class.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(at(format!("binding of {queue} to {JOBS_EXCHANGE}")))?;

        let delay = delay_queue(class);
        channel
            .queue_declare(
                delay.as_str().into(),
                durable_queue,
                delay_queue_arguments(class),
            )
            .await
            .map_err(at(format!("queue {delay}")))?;
    }
    Ok(())
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

/// Arguments every queue shares: quorum, and dead letters kept until confirmed.
fn quorum_arguments() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args
}

fn at_least_once_dead_lettering(args: &mut FieldTable) {
    args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    args.insert("x-overflow".into(), text("reject-publish"));
}

pub(crate) fn job_queue_arguments(delivery_limit: u32) -> FieldTable {
    let mut args = quorum_arguments();
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(delivery_limit.saturating_sub(1))),
    );
    args.insert("x-dead-letter-exchange".into(), text(DEAD_EXCHANGE));
    at_least_once_dead_lettering(&mut args);
    args
}

pub(crate) fn delay_queue_arguments(class: TaskClass) -> FieldTable {
    let mut args = quorum_arguments();
    args.insert("x-dead-letter-exchange".into(), text(JOBS_EXCHANGE));
    args.insert("x-dead-letter-routing-key".into(), text(class.as_str()));
    at_least_once_dead_lettering(&mut args);
    args
}

fn dead_queue_arguments() -> FieldTable {
    quorum_arguments()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_task_class() {
        assert_eq!(job_queue(TaskClass::Native), "octobox.jobs.native");
        assert_eq!(delay_queue(TaskClass::Native), "octobox.delay.native");
    }

    #[test]
    fn job_queues_dead_letter_at_least_once_after_the_delivery_limit() {
        let args = job_queue_arguments(5);
        let get = |key: &str| args.inner().get(key).cloned();
        assert_eq!(get("x-queue-type"), Some(text("quorum")));
        // RabbitMQ counts returns, the configuration counts deliveries.
        assert_eq!(get("x-delivery-limit"), Some(AMQPValue::LongLongInt(4)));
        assert_eq!(get("x-dead-letter-exchange"), Some(text(DEAD_EXCHANGE)));
        assert_eq!(get("x-dead-letter-strategy"), Some(text("at-least-once")));
        assert_eq!(get("x-overflow"), Some(text("reject-publish")));
    }

    #[test]
    fn delay_queues_return_jobs_to_their_class() {
        let args = delay_queue_arguments(TaskClass::Native);
        let get = |key: &str| args.inner().get(key).cloned();
        assert_eq!(get("x-dead-letter-exchange"), Some(text(JOBS_EXCHANGE)));
        assert_eq!(get("x-dead-letter-routing-key"), Some(text("native")));
    }
}
