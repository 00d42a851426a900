//! Events: the one stream every interested party (the bot's async manager, a dashboard)
//! follows to learn what happened to jobs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::job::{JobId, JobRecord, JobStatus};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub job: JobId,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
    /// The job's record as its `finished` event carries it (the store writes a small
    /// result into the event itself, beside its JSON). A reader is given it only when it
    /// is the first of its group to be handed the event, and each job appends one
    /// `finished` event: so this reader alone delivers the reply, and can do so without
    /// first reading the record back. An event taken over from a consumer presumed dead,
    /// or whose result was too large to carry, comes without it.
    #[serde(skip)]
    pub record: Option<Box<JobRecord>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    Queued,
    Started {
        worker: String,
    },
    Progress {
        line: String,
    },
    /// Appended only after the job's result is in the store.
    Finished {
        status: JobStatus,
    },
}

impl Event {
    pub fn now(job: JobId, kind: EventKind) -> Self {
        Event {
            job,
            at: Utc::now(),
            kind,
            record: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_flat_in_json() {
        let e = Event::now(
            JobId::new(),
            EventKind::Finished {
                status: JobStatus::TimedOut,
            },
        );
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""event":"finished""#), "{json}");
        assert!(json.contains(r#""status":"timed_out""#), "{json}");
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
    }
}
