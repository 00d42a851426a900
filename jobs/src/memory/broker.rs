//! `MemoryBroker`: one in-process queue per task class.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, Mutex};

use crate::broker::{Acknowledge, Broker, BrokerError, Delivery, JobStream};
use crate::control::{Control, ControlFeed};
use crate::failure::DeadLetter;
use crate::job::{Job, TaskClass};

/// A queued job, and whether it was handed out before (requeued after a reject).
type Queued = (Job, bool);
type SharedReceiver = Arc<Mutex<mpsc::UnboundedReceiver<Queued>>>;

/// Consumers of one class share its receiver, so each job goes to exactly one of them.
/// Rejected jobs go to the dead-letter queue, with the reason. Control messages go to
/// every subscriber still listening.
pub struct MemoryBroker {
    queues: HashMap<TaskClass, (mpsc::UnboundedSender<Queued>, SharedReceiver)>,
    dead: (mpsc::UnboundedSender<Queued>, SharedReceiver),
    control: std::sync::Mutex<Vec<mpsc::UnboundedSender<Control>>>,
}

impl MemoryBroker {
    pub fn new() -> Self {
        let queues = TaskClass::ALL
            .into_iter()
            .map(|class| {
                let (tx, rx) = mpsc::unbounded_channel();
                (class, (tx, Arc::new(Mutex::new(rx))))
            })
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        MemoryBroker {
            queues,
            dead: (tx, Arc::new(Mutex::new(rx))),
            control: Default::default(),
        }
    }

    fn queue(&self, class: TaskClass) -> &(mpsc::UnboundedSender<Queued>, SharedReceiver) {
        // Every class gets a queue in `new`.
        &self.queues[&class]
    }
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, job: &Job) -> Result<(), BrokerError> {
        self.queue(job.task.class())
            .0
            .send((job.clone(), false))
            .map_err(|_| BrokerError::Closed)
    }

    async fn publish_delayed(&self, job: &Job, delay: Duration) -> Result<(), BrokerError> {
        let tx = self.queue(job.task.class()).0.clone();
        let job = job.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send((job, false));
        });
        Ok(())
    }

    async fn consume(
        &self,
        class: TaskClass,
        _prefetch: u16,
    ) -> Result<Box<dyn JobStream>, BrokerError> {
        let (tx, rx) = self.queue(class);
        Ok(Box::new(MemoryStream {
            requeue: tx.clone(),
            dead: self.dead.0.clone(),
            rx: rx.clone(),
            dead_letters: false,
        }))
    }

    async fn consume_dead_letters(&self) -> Result<Box<dyn JobStream>, BrokerError> {
        Ok(Box::new(MemoryStream {
            requeue: self.dead.0.clone(),
            dead: self.dead.0.clone(),
            rx: self.dead.1.clone(),
            dead_letters: true,
        }))
    }

    async fn broadcast(&self, control: &Control) -> Result<(), BrokerError> {
        let mut subscribers = self.control.lock().unwrap_or_else(|p| p.into_inner());
        subscribers.retain(|tx| tx.send(control.clone()).is_ok());
        Ok(())
    }

    async fn subscribe_control(&self) -> Result<ControlFeed, BrokerError> {
        let (tx, feed) = ControlFeed::channel();
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        Ok(feed)
    }

    fn describe(&self) -> String {
        "in-memory queue".to_string()
    }
}

struct MemoryStream {
    requeue: mpsc::UnboundedSender<Queued>,
    dead: mpsc::UnboundedSender<Queued>,
    rx: SharedReceiver,
    dead_letters: bool,
}

#[async_trait]
impl JobStream for MemoryStream {
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        let (job, redelivered) = self.rx.lock().await.recv().await?;
        let acker = Box::new(MemoryAcker {
            job: job.clone(),
            requeue: self.requeue.clone(),
            dead: self.dead.clone(),
        });
        Some(Ok(if self.dead_letters {
            Delivery::dead_letter(job, DeadLetter::Rejected, acker)
        } else {
            let mut d = Delivery::new(job, acker);
            d.redelivered = redelivered;
            d
        }))
    }
}

struct MemoryAcker {
    job: Job,
    requeue: mpsc::UnboundedSender<Queued>,
    dead: mpsc::UnboundedSender<Queued>,
}

#[async_trait]
impl Acknowledge for MemoryAcker {
    async fn ack(self: Box<Self>) -> Result<(), BrokerError> {
        Ok(())
    }

    async fn reject(self: Box<Self>, requeue: bool) -> Result<(), BrokerError> {
        let mut job = self.job;
        if requeue {
            job.attempt += 1;
            self.requeue
                .send((job, true))
                .map_err(|_| BrokerError::Closed)
        } else {
            self.dead
                .send((job, false))
                .map_err(|_| BrokerError::Closed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Origin, Task};

    fn job() -> Job {
        Job::new(
            "echo",
            Default::default(),
            Task::native("echo"),
            Origin::new("console", "u"),
            Duration::from_secs(1),
        )
    }

    #[tokio::test]
    async fn each_job_reaches_one_consumer_and_requeue_redelivers() {
        let broker = MemoryBroker::new();
        let mut a = broker.consume(TaskClass::Native, 1).await.unwrap();
        let mut b = broker.consume(TaskClass::Native, 1).await.unwrap();
        let j = job();
        broker.publish(&j).await.unwrap();
        let got = a.next().await.unwrap().unwrap();
        assert_eq!(got.job.id, j.id);
        got.reject(true).await.unwrap();
        let again = b.next().await.unwrap().unwrap();
        assert_eq!(again.job.id, j.id);
        assert_eq!(again.job.attempt, 2);
        assert!(again.redelivered);
        again.ack().await.unwrap();
        let nothing = tokio::time::timeout(Duration::from_millis(50), a.next()).await;
        assert!(nothing.is_err(), "an acked job must not come back");
    }

    #[tokio::test]
    async fn control_messages_reach_every_subscriber() {
        let broker = MemoryBroker::new();
        let mut a = broker.subscribe_control().await.unwrap();
        let mut b = broker.subscribe_control().await.unwrap();
        let cancel = Control::Cancel {
            job: crate::JobId::new(),
            by: "console:alice".into(),
        };
        broker.broadcast(&cancel).await.unwrap();
        assert_eq!(a.next().await, Some(cancel.clone()));
        assert_eq!(b.next().await, Some(cancel));
    }

    #[tokio::test]
    async fn rejected_jobs_become_dead_letters_and_delayed_ones_arrive_later() {
        let broker = MemoryBroker::new();
        let mut work = broker.consume(TaskClass::Native, 1).await.unwrap();
        let mut dead = broker.consume_dead_letters().await.unwrap();
        let j = job();
        broker.publish(&j).await.unwrap();
        work.next()
            .await
            .unwrap()
            .unwrap()
            .reject(false)
            .await
            .unwrap();
        let d = dead.next().await.unwrap().unwrap();
        assert_eq!(d.job.id, j.id);
        assert!(d.dead.is_some());

        let start = tokio::time::Instant::now();
        broker
            .publish_delayed(&j, Duration::from_millis(80))
            .await
            .unwrap();
        let again = work.next().await.unwrap().unwrap();
        assert_eq!(again.job.id, j.id);
        assert!(start.elapsed() >= Duration::from_millis(80));
    }
}
