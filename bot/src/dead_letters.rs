//! `DeadLetterReporter`: tells requesters about the jobs the broker gave up on.
//!
//! A job that crashes every worker that takes it, or that a worker rejects, ends in the
//! dead letters instead of looping forever. Its requester is still owed an answer, so
//! each dead letter becomes a failed result with the broker's reason, written like any
//! other result: the async manager then delivers it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use jobs::{Broker, DeadLetter, JobFailure, JobResult, JobStatus, Output, Store};
use tokio_util::sync::CancellationToken;

pub struct DeadLetterReporter {
    broker: Arc<dyn Broker>,
    store: Arc<dyn Store>,
}

impl DeadLetterReporter {
    pub fn new(broker: Arc<dyn Broker>, store: Arc<dyn Store>) -> Self {
        DeadLetterReporter { broker, store }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut dead = loop {
            match self.broker.consume_dead_letters().await {
                Ok(stream) => break stream,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow dead letters; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                n = dead.next() => n,
            };
            let delivery = match next {
                None => return,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read a dead letter");
                    continue;
                }
                Some(Ok(d)) => d,
            };
            let job = delivery.job.clone();
            let reason = delivery.dead.clone().unwrap_or(DeadLetter::GaveUp);
            // A forged message's command is the forger's word: counted apart.
            let command = match &reason {
                DeadLetter::Unauthenticated(_) => "unauthenticated",
                _ => job.command.as_str(),
            };
            let m = octobox_http::metrics();
            m.jobs_dead_lettered
                .with_label_values(&[m.label(command)])
                .inc();
            if let DeadLetter::Unauthenticated(why) = &reason {
                // Not published by an Octobox process: its job id and requester are the
                // forger's words. Writing a result would let a forger fail anyone's
                // pending job; it stays in the log only.
                tracing::warn!(job = %job.id, reason = %why, "an unauthenticated message was set aside; no result is written for it");
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(job = %job.id, error = %e, "dead letter not acknowledged");
                }
                continue;
            }

            // Its last start, where there was one, so "failed after" tells how long ago.
            let record = self.store.job(job.id).await.ok().flatten();
            if record.as_ref().is_some_and(|r| r.status.is_final()) {
                // A worker already recorded its outcome (it set the job aside itself, or
                // the job finished and only its acknowledgement was lost).
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(job = %job.id, error = %e, "dead letter not acknowledged");
                }
                continue;
            }
            tracing::warn!(job = %job.id, command = %job.command, %reason, "job dead-lettered");
            let now = Utc::now();
            let result = JobResult {
                id: job.id,
                status: JobStatus::Failed,
                output: Output::Empty,
                worker: record
                    .as_ref()
                    .and_then(|r| r.worker.clone())
                    .unwrap_or_else(|| "no worker".to_string()),
                started_at: record.and_then(|r| r.started_at).unwrap_or(now),
                finished_at: now,
                error: Some(JobFailure::DeadLettered(reason).to_string()),
            };
            let id = job.id;
            // For history pages that ask for dead-lettered jobs; the result matters more.
            if let Err(e) = self.store.note_dead_letter(&job).await {
                tracing::warn!(job = %id, error = %e, "dead-lettered job not noted as such");
            }
            match self.store.finish_job(&result).await {
                Ok(()) => {
                    if let Err(e) = delivery.ack().await {
                        tracing::warn!(job = %id, error = %e, "dead letter reported but not acknowledged");
                    }
                }
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "dead letter not reported; it stays queued");
                    let _ = delivery.reject(true).await;
                }
            }
        }
    }
}
