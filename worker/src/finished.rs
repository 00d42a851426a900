//! `Finished`: how a job's run ended, before it is written down. A native task's run and
//! a container's run both come to one; the runtime turns it into the job's `JobResult`.

use chrono::{DateTime, Utc};
use jobs::{JobFailure, JobId, JobResult, JobStatus, Output};

/// How a run ended: with its output, or with the reason there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    Succeeded(Output),
    /// Failed, timed out or cancelled: [`JobFailure::status`] says which.
    Failed(JobFailure),
}

impl Finished {
    /// Job `id`'s result, run by `worker` from `started_at` until now.
    pub fn into_result(self, id: JobId, worker: &str, started_at: DateTime<Utc>) -> JobResult {
        let (status, output, error) = match self {
            Finished::Succeeded(output) => (JobStatus::Succeeded, output, None),
            Finished::Failed(failure) => {
                (failure.status(), Output::Empty, Some(failure.to_string()))
            }
        };
        JobResult {
            id,
            status,
            output,
            worker: worker.to_string(),
            started_at,
            finished_at: Utc::now(),
            error,
        }
    }
}

impl From<JobFailure> for Finished {
    fn from(failure: JobFailure) -> Self {
        Finished::Failed(failure)
    }
}
