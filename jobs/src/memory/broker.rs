//! `MemoryBroker`: one in-process queue per task class.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, Mutex};

use crate::broker::{Acknowledge, Broker, BrokerError, Delivery, JobStream};
use crate::job::{Job, TaskClass};

type SharedReceiver = Arc<Mutex<mpsc::UnboundedReceiver<Job>>>;

/// Consumers of one class share its receiver, so each job goes to exactly one of them.
pub struct MemoryBroker {
    queues: HashMap<TaskClass, (mpsc::UnboundedSender<Job>, SharedReceiver)>,
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
        MemoryBroker { queues }
    }

    fn queue(&self, class: TaskClass) -> &(mpsc::UnboundedSender<Job>, SharedReceiver) {
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
            .send(job.clone())
            .map_err(|_| BrokerError::Closed)
    }

    async fn consume(
        &self,
        class: TaskClass,
        _prefetch: u16,
    ) -> Result<Box<dyn JobStream>, BrokerError> {
        let (tx, rx) = self.queue(class);
        Ok(Box::new(MemoryStream {
            requeue: tx.clone(),
            rx: rx.clone(),
        }))
    }

    fn describe(&self) -> String {
        "in-memory queue".to_string()
    }
}

struct MemoryStream {
    requeue: mpsc::UnboundedSender<Job>,
    rx: SharedReceiver,
}

#[async_trait]
impl JobStream for MemoryStream {
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        let job = self.rx.lock().await.recv().await?;
        let acker = MemoryAcker {
            job: job.clone(),
            requeue: self.requeue.clone(),
        };
        Some(Ok(Delivery::new(job, Box::new(acker))))
    }
}

struct MemoryAcker {
    job: Job,
    requeue: mpsc::UnboundedSender<Job>,
}

#[async_trait]
impl Acknowledge for MemoryAcker {
    async fn ack(self: Box<Self>) -> Result<(), BrokerError> {
        Ok(())
    }

    async fn reject(self: Box<Self>, requeue: bool) -> Result<(), BrokerError> {
        if requeue {
            let mut job = self.job;
            job.attempt += 1;
            self.requeue.send(job).map_err(|_| BrokerError::Closed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobId, Origin, Task};
    use std::time::Duration;

    fn job() -> Job {
        Job {
            id: JobId::new(),
            command: "echo".into(),
            args: Default::default(),
            task: Task::Native {
                name: "echo".into(),
            },
            origin: Origin {
                adapter: "console".into(),
                user: "u".into(),
                channel: None,
                thread: None,
            },
            created_at: chrono::Utc::now(),
            timeout: Duration::from_secs(1),
            attempt: 1,
        }
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
        again.ack().await.unwrap();
        let nothing = tokio::time::timeout(Duration::from_millis(50), a.next()).await;
        assert!(nothing.is_err(), "an acked job must not come back");
    }
}
