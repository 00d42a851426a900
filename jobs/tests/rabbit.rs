//! `RabbitBroker` against a real RabbitMQ node: each test starts a private node of its own
//! (`test_services::RabbitMq`), so tests run in parallel and leave nothing behind.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use config::{BrokerConfig, Secret};
use jobs::rabbit::RabbitBroker;
use jobs::{Broker, BrokerError, Job, JobStream, Origin, Task, TaskClass};
use test_services::RabbitMq;
use tokio::time::{timeout, Instant};

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "jobs=info,lapin=error".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A private RabbitMQ node; the harness blocks, so it runs off the async threads.
async fn node() -> RabbitMq {
    logs();
    tokio::task::spawn_blocking(RabbitMq::start)
        .await
        .expect("RabbitMQ starts")
}

async fn stop(node: RabbitMq) {
    tokio::task::spawn_blocking(move || drop(node))
        .await
        .expect("RabbitMQ stops");
}

fn config(node: &RabbitMq) -> BrokerConfig {
    let mut config = BrokerConfig::new(Secret::new(node.url()));
    config.publish_timeout = Duration::from_secs(60);
    config
}

async fn broker(config: &BrokerConfig) -> RabbitBroker {
    RabbitBroker::connect(config)
        .await
        .expect("connects to RabbitMQ")
}

fn job() -> Job {
    Job::new(
        "echo",
        Default::default(),
        Task::native("echo"),
        Origin::new("console", "alice"),
        Duration::from_secs(5),
    )
}

async fn next(stream: &mut Box<dyn JobStream>) -> jobs::Delivery {
    timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("a delivery within 20 seconds")
        .expect("the stream goes on")
        .expect("a delivery, not an error")
}

async fn nothing_within(stream: &mut Box<dyn JobStream>, wait: Duration) -> bool {
    timeout(wait, stream.next()).await.is_err()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_job_is_consumed_once_and_gone_after_ack() {
    let node = node().await;
    let broker = broker(&config(&node)).await;
    assert_eq!(
        broker.describe(),
        format!("RabbitMQ at amqp://127.0.0.1:{}", node.port)
    );
    let mut first = broker.consume(TaskClass::Native, 4).await.unwrap();

    let sent = job();
    broker.publish(&sent).await.unwrap();
    let got = next(&mut first).await;
    assert_eq!(got.job, sent, "the job arrives as it was published");
    assert_eq!(got.dead, None);
    got.ack().await.unwrap();

    let mut second = broker.consume(TaskClass::Native, 4).await.unwrap();
    assert!(nothing_within(&mut second, Duration::from_secs(1)).await);
    assert!(nothing_within(&mut first, Duration::from_millis(200)).await);
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_tasks_publishing_at_once_are_all_confirmed() {
    const JOBS: usize = 500;
    let node = node().await;
    let broker = Arc::new(broker(&config(&node)).await);
    let start = Instant::now();
    let tasks: Vec<_> = (0..JOBS)
        .map(|_| {
            let broker = broker.clone();
            tokio::spawn(async move {
                let job = job();
                broker.publish(&job).await.map(|()| job.id)
            })
        })
        .collect();
    let mut sent = HashSet::new();
    for task in tasks {
        sent.insert(task.await.unwrap().expect("confirmed"));
    }
    eprintln!(
        "{JOBS} concurrent publishes confirmed in {:?}",
        start.elapsed()
    );

    let mut stream = broker.consume(TaskClass::Native, 50).await.unwrap();
    let mut seen = HashSet::new();
    while seen.len() < JOBS {
        let delivery = next(&mut stream).await;
        seen.insert(delivery.job.id);
        delivery.ack().await.unwrap();
    }
    assert_eq!(seen, sent);
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_left_unacknowledged_when_its_consumer_goes_is_delivered_again_as_attempt_2() {
    let node = node().await;
    let config = config(&node);
    let leaving = broker(&config).await;
    let staying = broker(&config).await;
    let mut taken = leaving.consume(TaskClass::Native, 1).await.unwrap();

    let sent = job();
    staying.publish(&sent).await.unwrap();
    let first = next(&mut taken).await;
    assert_eq!((first.job.id, first.job.attempt), (sent.id, 1));

    // The worker's process goes away without acknowledging.
    leaving.close().await;
    assert!(
        timeout(Duration::from_secs(5), taken.next())
            .await
            .expect("a closed broker's stream ends at once")
            .is_none(),
        "a stream ends when its broker was closed on purpose"
    );
    assert!(
        first.ack().await.is_err(),
        "a delivery of a closed connection cannot be acknowledged"
    );

    let mut other = staying.consume(TaskClass::Native, 1).await.unwrap();
    let again = next(&mut other).await;
    assert_eq!(again.job.id, sent.id);
    assert_eq!(again.job.attempt, 2, "the redelivery counts as attempt 2");
    again.ack().await.unwrap();
    staying.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prefetch_bounds_the_unacknowledged_deliveries() {
    let node = node().await;
    let broker = broker(&config(&node)).await;
    let mut stream = broker.consume(TaskClass::Native, 2).await.unwrap();
    for _ in 0..5 {
        broker.publish(&job()).await.unwrap();
    }
    let one = next(&mut stream).await;
    let _two = next(&mut stream).await;
    assert!(
        nothing_within(&mut stream, Duration::from_secs(1)).await,
        "a third delivery waits while two are unacknowledged"
    );
    one.ack().await.unwrap();
    let _three = next(&mut stream).await;
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_rejected_without_requeue_arrives_in_the_dead_letters_with_a_reason() {
    let node = node().await;
    let broker = broker(&config(&node)).await;
    let mut work = broker.consume(TaskClass::Native, 1).await.unwrap();
    let mut dead = broker.consume_dead_letters().await.unwrap();

    let sent = job();
    broker.publish(&sent).await.unwrap();
    next(&mut work).await.reject(false).await.unwrap();

    let letter = next(&mut dead).await;
    assert_eq!(letter.job.id, sent.id);
    assert_eq!(
        letter.dead.as_ref().map(ToString::to_string).as_deref(),
        Some("it was rejected by a worker")
    );
    letter.ack().await.unwrap();
    assert!(nothing_within(&mut dead, Duration::from_millis(500)).await);
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_requeued_past_the_delivery_limit_is_dead_lettered_with_that_reason() {
    let node = node().await;
    let mut config = config(&node);
    config.delivery_limit = 2;
    let broker = broker(&config).await;
    let mut work = broker.consume(TaskClass::Native, 1).await.unwrap();
    let mut dead = broker.consume_dead_letters().await.unwrap();

    let sent = job();
    broker.publish(&sent).await.unwrap();
    let mut attempts = Vec::new();
    let letter = loop {
        tokio::select! {
            delivery = work.next() => {
                let delivery = delivery.unwrap().unwrap();
                attempts.push(delivery.job.attempt);
                assert!(attempts.len() <= 2, "delivered more often than the limit: {attempts:?}");
                delivery.reject(true).await.unwrap();
            }
            letter = dead.next() => break letter.unwrap().unwrap(),
            _ = tokio::time::sleep(Duration::from_secs(20)) => panic!("no dead letter; attempts {attempts:?}"),
        }
    };
    assert_eq!(attempts, [1, 2], "each delivery counts as an attempt");
    assert_eq!(letter.job.id, sent.id);
    assert_eq!(
        letter.dead.as_ref().map(ToString::to_string).as_deref(),
        Some(
            "it was delivered 2 times without being acknowledged (the delivery limit): \
             it may crash the workers that take it"
        )
    );
    letter.ack().await.unwrap();
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_job_arrives_no_earlier_than_its_delay() {
    let node = node().await;
    let broker = broker(&config(&node)).await;
    let mut work = broker.consume(TaskClass::Native, 1).await.unwrap();

    let mut retry = job();
    retry.attempt = 2;
    let delay = Duration::from_millis(1500);
    let start = Instant::now();
    broker.publish_delayed(&retry, delay).await.unwrap();
    let got = next(&mut work).await;
    let waited = start.elapsed();
    assert_eq!(got.job.id, retry.id);
    assert_eq!(got.job.attempt, 2, "the attempt travels with the job");
    assert!(
        waited >= delay,
        "arrived after {waited:?}, before {delay:?}"
    );
    assert!(
        waited < delay + Duration::from_secs(5),
        "arrived after {waited:?}"
    );
    got.ack().await.unwrap();
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_job_gets_through_a_broker_restart_while_publishing_and_consuming() {
    const JOBS: usize = 300;
    const PUBLISHERS: usize = 3;
    let node = node().await;
    let broker = Arc::new(broker(&config(&node)).await);
    let mut stream = broker.consume(TaskClass::Native, 10).await.unwrap();

    let published = Arc::new(AtomicUsize::new(0));
    let mut publishers = Vec::new();
    for _ in 0..PUBLISHERS {
        let broker = broker.clone();
        let published = published.clone();
        publishers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut slowest = Duration::ZERO;
            for _ in 0..JOBS / PUBLISHERS {
                let job = job();
                let start = Instant::now();
                let result = broker.publish(&job).await;
                slowest = slowest.max(start.elapsed());
                assert!(result.is_ok(), "publish failed: {result:?}");
                ids.push(job.id);
                published.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            (ids, slowest)
        }));
    }

    let consumer = tokio::spawn(async move {
        let mut seen = HashSet::new();
        let (mut deliveries, mut failed_acks) = (0, 0);
        while seen.len() < JOBS {
            let delivery = match timeout(Duration::from_secs(120), stream.next()).await {
                Ok(Some(Ok(delivery))) => delivery,
                other => panic!("the stream stopped after {} jobs: {other:?}", seen.len()),
            };
            deliveries += 1;
            seen.insert(delivery.job.id);
            if delivery.ack().await.is_err() {
                failed_acks += 1;
            }
        }
        (seen, deliveries, failed_acks)
    });

    while published.load(Ordering::SeqCst) < JOBS / 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let restart = Instant::now();
    let node = tokio::task::spawn_blocking(move || {
        let mut node = node;
        node.restart(Duration::from_secs(2));
        node
    })
    .await
    .unwrap();
    let restarted_in = restart.elapsed();
    eprintln!("the node was stopped and back up in {restarted_in:?}");

    let mut sent = Vec::new();
    let mut slowest = Duration::ZERO;
    for publisher in publishers {
        let (ids, slow) = publisher.await.expect("every publish returned Ok");
        sent.extend(ids);
        slowest = slowest.max(slow);
    }
    let (seen, deliveries, failed_acks) = consumer.await.expect("every job was received");
    let missing: Vec<_> = sent.iter().filter(|id| !seen.contains(id)).collect();
    assert!(missing.is_empty(), "never received: {missing:?}");
    eprintln!(
        "restart took {restarted_in:?}; slowest publish {slowest:?}; {deliveries} deliveries \
         for {JOBS} jobs; {failed_acks} acknowledgements failed"
    );
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_and_consuming_go_on_after_the_broker_drops_every_connection() {
    let node = node().await;
    let broker = broker(&config(&node)).await;
    let mut stream = broker.consume(TaskClass::Native, 1).await.unwrap();
    let first = job();
    broker.publish(&first).await.unwrap();
    next(&mut stream).await.ack().await.unwrap();

    let node = tokio::task::spawn_blocking(move || {
        node.close_all_connections();
        node
    })
    .await
    .unwrap();

    let second = job();
    broker
        .publish(&second)
        .await
        .expect("the publish waits for a new connection");
    let got = timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("the stream consumes again on the new connection")
        .expect("the stream goes on")
        .expect("a delivery, not an error");
    assert_eq!(got.job.id, second.id);
    got.ack().await.unwrap();
    assert!(nothing_within(&mut stream, Duration::from_secs(1)).await);
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_from_before_a_restart_cannot_be_acked_and_is_delivered_again() {
    let node = node().await;
    let broker = broker(&config(&node)).await;
    let mut stream = broker.consume(TaskClass::Native, 1).await.unwrap();
    let sent = job();
    broker.publish(&sent).await.unwrap();
    let before = next(&mut stream).await;

    let node = tokio::task::spawn_blocking(move || {
        let mut node = node;
        node.restart(Duration::from_secs(1));
        node
    })
    .await
    .unwrap();

    let again = timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("the stream delivers again after the restart")
        .expect("the stream goes on after a restart")
        .expect("a delivery, not an error");
    assert_eq!(again.job.id, sent.id);
    assert_eq!(again.job.attempt, 2);
    let error = before.ack().await.expect_err("its delivery tag is gone");
    assert!(
        matches!(error, BrokerError::Unavailable { .. }),
        "{error:?}"
    );
    eprintln!("{error}");
    again.ack().await.unwrap();
    assert!(nothing_within(&mut stream, Duration::from_secs(1)).await);
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_while_the_broker_is_down_fails_in_time_and_names_no_password() {
    let node = node().await;
    let port = node.port;
    let mut config = config(&node);
    config.publish_timeout = Duration::from_secs(2);
    let broker = broker(&config).await;
    broker.publish(&job()).await.unwrap();

    let outage = tokio::task::spawn_blocking(move || {
        let mut node = node;
        node.restart(Duration::from_secs(12));
        node
    });
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let start = Instant::now();
    let error = broker.publish(&job()).await.unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(error, BrokerError::Unavailable { .. }),
        "unexpected {error:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let message = error.to_string();
    eprintln!("after {took:?}: {message}");
    assert!(!message.contains("guest"), "{message}");
    assert!(
        message.contains(&format!("amqp://127.0.0.1:{port}")),
        "{message}"
    );

    let node = outage.await.unwrap();
    let back = Instant::now();
    while let Err(error) = broker.publish(&job()).await {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "publishing does not work again: {error}"
        );
    }
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_broker_accepts_the_topology_the_first_declared() {
    let node = node().await;
    let config = config(&node);
    let first = broker(&config).await;
    let second = broker(&config).await;

    let mut stream = first.consume(TaskClass::Native, 1).await.unwrap();
    let sent = job();
    second.publish(&sent).await.unwrap();
    assert_eq!(next(&mut stream).await.job.id, sent.id);

    // A process with another delivery limit is refused, with a sentence that says why.
    let mut other = config.clone();
    other.delivery_limit = config.delivery_limit + 1;
    let error = RabbitBroker::connect(&other)
        .await
        .err()
        .expect("a different delivery limit is refused");
    let message = error.to_string();
    assert!(message.contains("queue octobox.jobs.native"), "{message}");
    assert!(message.contains("other arguments"), "{message}");
    assert!(!message.contains("guest"), "{message}");

    first.close().await;
    second.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_is_not_a_job_goes_to_the_dead_letters_and_consuming_goes_on() {
    use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
    let node = node().await;
    let broker = broker(&config(&node)).await;
    let mut work = broker.consume(TaskClass::Native, 1).await.unwrap();

    let raw = lapin::Connection::connect(&node.url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = raw.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    channel
        .basic_publish(
            "octobox.jobs".into(),
            "native".into(),
            BasicPublishOptions::default(),
            b"not a job",
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let sent = job();
    broker.publish(&sent).await.unwrap();
    assert_eq!(next(&mut work).await.job.id, sent.id);

    let mut dead = None;
    for _ in 0..50 {
        dead = channel
            .basic_get("octobox.dead".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap();
        if dead.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.expect("a dead letter").delivery.data, b"not a job");
    raw.close(200, "done".into()).await.unwrap();
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connecting_to_a_broker_that_is_not_there_fails_at_once_without_the_password() {
    logs();
    let port = test_services::free_port();
    let config = BrokerConfig::new(Secret::new(format!(
        "amqp://octo:hunter2@127.0.0.1:{port}/%2f"
    )));
    let start = Instant::now();
    let error = RabbitBroker::connect(&config)
        .await
        .err()
        .expect("no broker");
    assert!(start.elapsed() < Duration::from_secs(3));
    let message = error.to_string();
    assert!(
        !message.contains("hunter2") && !message.contains("octo:"),
        "{message}"
    );
    assert!(
        message.contains(&format!("amqp://127.0.0.1:{port}")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publish_gets_through_after_someone_deleted_the_exchange() {
    use lapin::options::ExchangeDeleteOptions;
    let node = node().await;
    let broker = broker(&config(&node)).await;
    let mut work = broker.consume(TaskClass::Native, 1).await.unwrap();

    let admin = lapin::Connection::connect(&node.url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    admin
        .create_channel()
        .await
        .unwrap()
        .exchange_delete("octobox.jobs".into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();

    // RabbitMQ closes the publishing channel (no such exchange); the broker opens another,
    // declares the topology again, and publishes.
    let sent = job();
    broker.publish(&sent).await.unwrap();
    assert_eq!(next(&mut work).await.job.id, sent.id);
    admin.close(200, "done".into()).await.unwrap();
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_ask_for_small_frames_unless_the_url_sets_its_own() {
    let node = node().await;
    let small = broker(&config(&node)).await;
    let sizes = node.connection_frame_sizes();
    assert_eq!(sizes, vec![jobs::rabbit::FRAME_MAX], "{sizes:?}");
    small.close().await;

    let mut own = config(&node);
    own.url = Secret::new(format!("{}?frame_max=131072", node.url()));
    let _large = broker(&own).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sizes = node.connection_frame_sizes();
        if sizes == vec![131072] {
            break;
        }
        assert!(Instant::now() < deadline, "frame sizes: {sizes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(node).await;
}

// Signing: with `[broker] signing_key`, only messages an Octobox process signed are obeyed.

const KEY: &str = "a-signing-key-of-at-least-32-bytes-0001";
const NEW_KEY: &str = "a-signing-key-of-at-least-32-bytes-0002";

fn signed_config(node: &RabbitMq, current: &str, previous: Option<&str>) -> BrokerConfig {
    let mut config = config(node);
    config.signing_key = Some(Secret::new(current));
    config.previous_signing_key = previous.map(Secret::new);
    config
}

/// A plain lapin connection, as someone holding only RabbitMQ's credentials has, and a
/// channel in confirm mode on it.
async fn intruder(node: &RabbitMq) -> (lapin::Connection, lapin::Channel) {
    let raw = lapin::Connection::connect(&node.url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = raw.create_channel().await.unwrap();
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .unwrap();
    (raw, channel)
}

/// Publishes `body` straight to `exchange`, with `signature` in the signature header if
/// given, and waits for RabbitMQ's confirmation.
async fn publish_raw(
    channel: &lapin::Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    signature: Option<&str>,
) {
    let mut properties = lapin::BasicProperties::default();
    if let Some(signature) = signature {
        let mut headers = lapin::types::FieldTable::default();
        headers.insert(
            jobs::rabbit::signing::SIGNATURE_HEADER.into(),
            lapin::types::AMQPValue::LongString(signature.into()),
        );
        properties = properties.with_headers(headers);
    }
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            lapin::options::BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_signing_key_published_and_delayed_jobs_are_consumed_as_usual() {
    let node = node().await;
    let broker = broker(&signed_config(&node, KEY, None)).await;
    let mut work = broker.consume(TaskClass::Native, 4).await.unwrap();

    let sent = job();
    broker.publish(&sent).await.unwrap();
    let got = next(&mut work).await;
    assert_eq!(got.job, sent);
    got.ack().await.unwrap();

    // A delayed job comes back through the delay queue's dead-lettering, headers and all.
    let later = job();
    broker
        .publish_delayed(&later, Duration::from_millis(200))
        .await
        .unwrap();
    let got = next(&mut work).await;
    assert_eq!(got.job.id, later.id);
    got.ack().await.unwrap();
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_published_with_only_the_rabbitmq_password_is_set_aside_unrun_with_its_reason() {
    let node = node().await;
    let broker = broker(&signed_config(&node, KEY, None)).await;
    let mut work = broker.consume(TaskClass::Native, 4).await.unwrap();
    let mut dead = broker.consume_dead_letters().await.unwrap();
    let (raw, channel) = intruder(&node).await;

    let unsigned = job();
    let body = serde_json::to_vec(&unsigned).unwrap();
    publish_raw(&channel, "octobox.jobs", "native", &body, None).await;
    let forged = job();
    let body = serde_json::to_vec(&forged).unwrap();
    let wrong = "00".repeat(32);
    publish_raw(&channel, "octobox.jobs", "native", &body, Some(&wrong)).await;
    let genuine = job();
    broker.publish(&genuine).await.unwrap();

    let got = next(&mut work).await;
    assert_eq!(
        got.job.id, genuine.id,
        "only the signed job reaches the worker"
    );
    got.ack().await.unwrap();
    assert!(nothing_within(&mut work, Duration::from_millis(500)).await);

    let mut reasons = Vec::new();
    for _ in 0..2 {
        let letter = next(&mut dead).await;
        reasons.push((letter.job.id, letter.dead.as_ref().map(ToString::to_string)));
        letter.ack().await.unwrap();
    }
    reasons.sort_by_key(|(id, _)| *id);
    assert_eq!(
        reasons,
        vec![
            (
                unsigned.id,
                Some(
                    "it carries no signature: it was not published by an Octobox process \
                     with this key"
                        .to_string()
                )
            ),
            (
                forged.id,
                Some(
                    "its signature does not match: it was not published by an Octobox \
                     process with this key"
                        .to_string()
                )
            ),
        ]
    );
    raw.close(200, "done".into()).await.unwrap();
    broker.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn during_a_rotation_a_job_signed_with_the_previous_key_still_runs() {
    let node = node().await;
    let old = broker(&signed_config(&node, KEY, None)).await;
    let new = broker(&signed_config(&node, NEW_KEY, Some(KEY))).await;
    let mut work = new.consume(TaskClass::Native, 4).await.unwrap();

    let queued_before = job();
    old.publish(&queued_before).await.unwrap();
    let got = next(&mut work).await;
    assert_eq!(got.job.id, queued_before.id);
    got.ack().await.unwrap();

    let queued_after = job();
    new.publish(&queued_after).await.unwrap();
    let got = next(&mut work).await;
    assert_eq!(got.job.id, queued_after.id);
    got.ack().await.unwrap();
    old.close().await;
    new.close().await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_cancel_never_reaches_a_worker() {
    use jobs::control::Control;
    let node = node().await;
    let broker = broker(&signed_config(&node, KEY, None)).await;
    let mut feed = broker.subscribe_control().await.unwrap();
    let (raw, channel) = intruder(&node).await;

    let target = job().id;
    let forged = Control::Cancel {
        job: target,
        by: "intruder".into(),
    };
    let body = serde_json::to_vec(&forged).unwrap();
    publish_raw(&channel, "octobox.control", "", &body, None).await;
    publish_raw(
        &channel,
        "octobox.control",
        "",
        &body,
        Some(&"ab".repeat(32)),
    )
    .await;
    let genuine = Control::Cancel {
        job: target,
        by: "console:alice".into(),
    };
    broker.broadcast(&genuine).await.unwrap();

    let got = timeout(Duration::from_secs(20), feed.next())
        .await
        .expect("a control message within 20 seconds");
    assert_eq!(got, Some(genuine), "only the signed cancel arrives");
    assert!(timeout(Duration::from_millis(500), feed.next())
        .await
        .is_err());
    raw.close(200, "done".into()).await.unwrap();
    broker.close().await;
    stop(node).await;
}

/// A forger who can publish straight into the dead letters, with a real job's id and a
/// header claiming RabbitMQ gave up on it, is read as unauthenticated: the bot's reporter
/// writes no result for it, so it cannot fail someone's pending job.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_put_straight_into_the_dead_letters_reads_as_unauthenticated() {
    let node = node().await;
    let broker = broker(&signed_config(&node, KEY, None)).await;
    let mut dead = broker.consume_dead_letters().await.unwrap();
    let (raw, channel) = intruder(&node).await;

    let pending = job();
    let body = serde_json::to_vec(&pending).unwrap();
    publish_raw(
        &channel,
        jobs::rabbit::topology::DEAD_EXCHANGE,
        "native",
        &body,
        None,
    )
    .await;
    let got = next(&mut dead).await;
    assert_eq!(got.job.id, pending.id);
    assert!(
        matches!(got.dead, Some(jobs::DeadLetter::Unauthenticated(_))),
        "{:?}",
        got.dead
    );
    got.ack().await.unwrap();
    raw.close(200, "done".into()).await.unwrap();
    broker.close().await;
    stop(node).await;
}

/// A node that speaks AMQPS and asks for a client certificate from its private CA.
async fn tls_node() -> RabbitMq {
    logs();
    jobs::tls::install_provider();
    tokio::task::spawn_blocking(RabbitMq::start_tls)
        .await
        .expect("RabbitMQ starts with TLS")
}

fn tls_config(node: &RabbitMq, ca: &str, client: Option<&str>) -> BrokerConfig {
    let mut config = BrokerConfig::new(Secret::new(node.tls_url()));
    config.publish_timeout = Duration::from_secs(10);
    config.tls.ca_file = Some(node.pki().cert(ca));
    if let Some(client) = client {
        config.tls.client_cert_file = Some(node.pki().cert(client));
        config.tls.client_key_file = Some(node.pki().key(client));
    }
    config
}

/// Why a connection that had to fail did, or a panic if it succeeded.
async fn refused(config: &BrokerConfig) -> String {
    let start = Instant::now();
    let outcome = RabbitBroker::connect(config).await;
    let took = start.elapsed();
    match outcome {
        Ok(_) => panic!("connected with {:?}", config.tls),
        Err(error) => {
            assert!(took < Duration::from_secs(15), "refusing took {took:?}");
            let message = error.to_string();
            assert!(!message.contains("guest:guest"), "{message}");
            message
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn amqps_with_a_private_ca_and_a_client_certificate_carries_jobs_and_refuses_impostors() {
    let node = tls_node().await;

    let broker = broker(&tls_config(&node, "ca", Some("client"))).await;
    let mut stream = broker.consume(TaskClass::Native, 4).await.unwrap();
    let sent = job();
    broker.publish(&sent).await.unwrap();
    let got = next(&mut stream).await;
    assert_eq!(got.job, sent, "the job crosses the TLS connection");
    got.ack().await.unwrap();
    broker.close().await;

    // A server whose certificate our CA did not sign: a man in the middle.
    let message = refused(&tls_config(&node, "other-ca", Some("client"))).await;
    eprintln!("impostor server: {message}");
    assert!(message.contains("amqps://127.0.0.1"), "{message}");
    assert!(message.contains("invalid peer certificate"), "{message}");
    // No client certificate, or one from another CA: the broker refuses us, and the
    // error says where to look.
    for client in [None, Some("rogue-client")] {
        let message = refused(&tls_config(&node, "ca", client)).await;
        eprintln!("client certificate {client:?}: {message}");
        assert!(message.contains("client_cert_file"), "{message}");
    }

    // A CA file that is not there is named before any connection is tried.
    let mut missing = tls_config(&node, "ca", Some("client"));
    missing.tls.ca_file = Some(node.pki().dir().join("absent.pem"));
    let message = refused(&missing).await;
    assert!(
        message.contains("cannot read the broker's CA file") && message.contains("absent.pem"),
        "{message}"
    );
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_several_nodes_the_broker_starts_on_a_live_one_and_moves_when_its_node_dies() {
    let (first, second) = tokio::join!(node(), node());
    // The first listed node is down at start: the broker connects to the second.
    let down = format!(
        "amqp://guest:guest@127.0.0.1:{}/%2f",
        test_services::free_port()
    );
    let mut config = config(&first);
    config.url = Secret::new(down);
    config.other_urls = vec![Secret::new(second.url()), Secret::new(first.url())];
    let broker = broker(&config).await;
    let second_port = second.port;
    let mut stream = broker.consume(TaskClass::Native, 10).await.unwrap();
    broker.publish(&job()).await.unwrap();
    next(&mut stream).await.ack().await.unwrap();

    // Its node dies: the broker moves to the next live one (the first node), declares the
    // queues there, and publishing and consuming go on without a new broker.
    stop(second).await;
    let sent = job();
    broker
        .publish(&sent)
        .await
        .expect("published on another node");
    let delivered = next(&mut stream).await;
    assert_eq!(delivered.job.id, sent.id);
    delivered.ack().await.unwrap();
    let described = broker.describe();
    assert!(
        described.contains(&format!(":{second_port}"))
            && described.contains(&format!(":{}", first.port)),
        "the broker names its nodes: {described}"
    );
    stop(first).await;
}
