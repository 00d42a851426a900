//! `Approval` and `Decision`: a job held until a second person says yes.
//!
//! A command declared with `approval` is not published when asked: its job is recorded
//! as usual and an `Approval` is kept beside it in the store, pending, until someone of
//! the approving group decides ([`crate::Store::decide_approval`]) or it expires. The
//! first decision stored is the decision: with several bots, one click counts once.
//! Whoever wins publishes the job (approved) or gives it its final result (denied,
//! expired), so the requester hears of it where they asked.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::job::{Job, JobId};

/// A job waiting for approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The job as it will be published. Commands with `secret` slots cannot require
    /// approval (the store keeps no secrets), so this is the whole job.
    pub job: Job,
    /// Who may approve: an allow entry, `group:leads` or `user:slack:U1`.
    pub by: String,
    /// The requester's reason, when the command asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub expires_at: DateTime<Utc>,
}

impl Approval {
    pub fn id(&self) -> JobId {
        self.job.id
    }

    /// Who asked: `adapter:user`.
    pub fn requester(&self) -> String {
        self.job.origin.identity()
    }
}

/// What became of an approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Approved {
        by: String,
        at: DateTime<Utc>,
    },
    Denied {
        by: String,
        at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Expired {
        at: DateTime<Utc>,
    },
}

impl Decision {
    /// The decision in a few words: "approved by slack:U1", "denied by ssh:bob: not now",
    /// "expired".
    pub fn describe(&self) -> String {
        match self {
            Decision::Approved { by, .. } => format!("approved by {by}"),
            Decision::Denied {
                by,
                reason: Some(reason),
                ..
            } => format!("denied by {by}: {reason}"),
            Decision::Denied { by, .. } => format!("denied by {by}"),
            Decision::Expired { .. } => "expired".to_string(),
        }
    }
}

/// What [`crate::Store::decide_approval`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Decided {
    /// This decision is the decision: the caller acts on it.
    Now(Box<Approval>),
    /// Another decision was stored first.
    Already(Decision),
    /// No such approval: never asked, or forgotten.
    Unknown,
}
