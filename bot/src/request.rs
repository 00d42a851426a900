//! `Request`, `Answer`, `Outcome`: what an adapter hands the router, and what it gets
//! back. Their own module so that the router, the built-ins and every adapter share
//! them without importing each other.

use jobs::{Approval, JobId, Origin};

/// One message, as an adapter received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub text: String,
    pub origin: Origin,
}

/// How a request ended, for adapters that report it (an SSH exit status, a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered; nothing more will come.
    Done,
    /// A job was queued; its result is delivered later by the async manager.
    Queued,
    /// Nothing was asked (an empty line).
    Nothing,
    Unknown,
    BadArgument,
    Refused,
    /// The bot could not do what was asked (the queue or store is down).
    Failed,
}

/// The immediate answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub outcome: Outcome,
    pub text: String,
    pub job: Option<JobId>,
    /// The job waits for approval (its outcome is `Queued`: a result will come, once it
    /// is decided); adapters that can show a prompt to approvers do.
    pub awaiting: Option<Box<Approval>>,
}

impl Answer {
    pub fn new(outcome: Outcome, text: impl Into<String>) -> Self {
        Answer {
            outcome,
            text: text.into(),
            job: None,
            awaiting: None,
        }
    }

    /// An answer that is the whole of it (`Outcome::Done`).
    pub fn done(text: impl Into<String>) -> Self {
        Answer::new(Outcome::Done, text)
    }
}
