//! One SSH session (a session channel running a command or a shell): what reaches it
//! (`Input` from the client, through a queue bounded in bytes, and `Notice`s from the
//! async manager), how it writes back (`Terminal`), and `Session::ask`, its one way to
//! the router.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use jobs::{JobId, JobStatus, Origin};
use russh::server::Handle;
use russh::ChannelId;
use tokio::sync::mpsc;

use crate::reply::{JobUpdate, Reply};
use crate::request::{Answer, Request};
use crate::router::Router;
use crate::ssh::line_editor::crlf;
use crate::ssh::logged;
use config::SshLimits;

/// What the client sent on the session's channel.
#[derive(Debug)]
pub enum Input {
    Data(Vec<u8>),
    /// The client will send no more (its standard input ended).
    Eof,
    /// An interrupt signal (`SIGINT`) from the client.
    Interrupt,
    /// The client's terminal is now this many columns wide.
    Resize(u32),
    /// Input arrived faster than the session took it, past [`input_budget`]: some was
    /// dropped, from the point this stands in the queue until the session read it.
    Overflow,
}

impl Input {
    /// What the input costs in the queue: its bytes, and a little for every message, so
    /// that a flood of small ones (window changes) is bounded too.
    fn cost(&self) -> usize {
        const MESSAGE: usize = 64;
        match self {
            Input::Data(bytes) => bytes.len() + MESSAGE,
            Input::Overflow => 0,
            _ => MESSAGE,
        }
    }
}

/// The most input one session holds unread, in bytes: room for a line of the longest
/// length (four bytes a character) and then some, and at least 1 MiB so that a script
/// piped in (`ssh host < script`) or a paste does not have to wait on each command.
/// SSH's own flow control cannot hold a client back here (the window is refilled as data
/// arrives), so past it input is dropped and the session told ([`Input::Overflow`]).
pub fn input_budget(limits: &SshLimits) -> usize {
    limits
        .max_line_length
        .saturating_mul(4)
        .saturating_add(64 * 1024)
        .max(1024 * 1024)
}

/// The connection's end of a session's input queue.
pub struct InputSender {
    tx: mpsc::UnboundedSender<Input>,
    queued: Arc<AtomicUsize>,
    overflowed: Arc<AtomicBool>,
    budget: usize,
}

/// The session's end of its input queue.
pub struct InputReceiver {
    rx: mpsc::UnboundedReceiver<Input>,
    queued: Arc<AtomicUsize>,
    overflowed: Arc<AtomicBool>,
}

/// A session's input queue, holding at most `budget` bytes (see [`Input::cost`]).
pub fn input_queue(budget: usize) -> (InputSender, InputReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let overflowed = Arc::new(AtomicBool::new(false));
    (
        InputSender {
            tx,
            queued: queued.clone(),
            overflowed: overflowed.clone(),
            budget,
        },
        InputReceiver {
            rx,
            queued,
            overflowed,
        },
    )
}

impl InputSender {
    /// Queues `input`. Past the budget it is dropped, and so is everything after it until
    /// the session has read the one [`Input::Overflow`] that says so: a session never
    /// sees the text after a gap as if it followed what came before.
    pub fn send(&self, input: Input) {
        if self.overflowed.load(Ordering::Acquire) {
            return;
        }
        let cost = input.cost();
        let queued = self.queued.fetch_add(cost, Ordering::AcqRel) + cost;
        if queued > self.budget {
            self.queued.fetch_sub(cost, Ordering::AcqRel);
            self.overflowed.store(true, Ordering::Release);
            let _ = self.tx.send(Input::Overflow);
            return;
        }
        let _ = self.tx.send(input);
    }
}

impl InputReceiver {
    /// The next input; `None` once the client has closed the channel. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Input> {
        let input = self.rx.recv().await?;
        match &input {
            Input::Overflow => self.overflowed.store(false, Ordering::Release),
            other => {
                self.queued.fetch_sub(other.cost(), Ordering::AcqRel);
            }
        }
        Some(input)
    }
}

/// What the async manager hands a session.
#[derive(Debug)]
pub enum Notice {
    Reply(Reply),
    Progress(JobUpdate),
}

/// The session's side of its channel: standard output, standard error, the end.
pub struct Terminal {
    handle: Handle,
    channel: ChannelId,
    /// A pseudo-terminal in raw mode: line breaks are written as CR LF.
    pub pty: bool,
    /// The terminal's width when the session started (0: unknown).
    pub cols: u32,
}

impl Terminal {
    /// `pty`: the width of the client's pseudo-terminal, if it asked for one.
    pub fn new(handle: Handle, channel: ChannelId, pty: Option<u32>) -> Self {
        Terminal {
            handle,
            channel,
            pty: pty.is_some(),
            cols: pty.unwrap_or(0),
        }
    }

    /// `text` and a line break on standard output. Errors mean the client is gone; the
    /// session notices it on its input, so they are not reported here.
    pub async fn line(&self, text: &str) {
        if !text.is_empty() {
            self.raw(format!("{text}\n")).await;
        }
    }

    /// `text` and a line break on standard error. A terminal has one stream, as a
    /// program's standard error on a pty is the pty: there it goes with the output.
    pub async fn error_line(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.pty {
            return self.line(text).await;
        }
        let text = self.for_screen(&format!("{text}\n"));
        let _ = self
            .handle
            .extended_data(self.channel, 1, text.into_bytes())
            .await;
    }

    /// `text` on standard output, as it is (but for CR LF on a terminal).
    pub async fn raw(&self, text: String) {
        let _ = self
            .handle
            .data(self.channel, self.for_screen(&text).into_bytes())
            .await;
    }

    /// Bytes on standard output, untouched (a file a job produced).
    pub async fn bytes(&self, bytes: Vec<u8>) {
        let _ = self.handle.data(self.channel, bytes).await;
    }

    fn for_screen(&self, text: &str) -> String {
        if self.pty {
            crlf(text)
        } else {
            text.to_string()
        }
    }

    /// Ends the session with `status`, as a program's exit status.
    pub async fn finish(&self, status: u32) {
        let _ = self.handle.exit_status_request(self.channel, status).await;
        let _ = self.handle.eof(self.channel).await;
        let _ = self.handle.close(self.channel).await;
    }
}

/// Exit statuses: what scripts read from `ssh host "<command>"`.
pub mod status {
    pub const SUCCESS: u32 = 0;
    pub const FAILED: u32 = 1;
    pub const UNKNOWN: u32 = 2;
    pub const REFUSED: u32 = 3;
    pub const TIMED_OUT: u32 = 124;
    /// The client interrupted the wait (Ctrl-C twice); the job goes on.
    pub const INTERRUPTED: u32 = 130;
}

/// The exit status for a job that ended with `status`.
pub fn job_status(status: JobStatus) -> u32 {
    match status {
        JobStatus::Succeeded => status::SUCCESS,
        JobStatus::TimedOut => status::TIMED_OUT,
        _ => status::FAILED,
    }
}

pub struct Session {
    pub router: Arc<Router>,
    pub origin: Origin,
    pub term: Terminal,
    pub input: InputReceiver,
    pub notices: mpsc::UnboundedReceiver<Notice>,
    pub limits: SshLimits,
    /// Jobs queued by this session whose results have not arrived, in queueing order.
    pub outstanding: BTreeSet<JobId>,
}

impl Session {
    /// Sends `text` through the router as this session's user, and logs it: the command
    /// it was read as and its length, never the text itself (it may hold a secret).
    pub async fn ask(&mut self, text: &str) -> Answer {
        let request = Request {
            text: text.to_string(),
            origin: self.origin.clone(),
        };
        let answer = self.router.handle(&request).await;
        let command = logged::command_name(&self.router.catalog().commands.catalog.classify(text));
        tracing::info!(
            user = %self.origin.identity(),
            session = self.origin.channel.as_deref().unwrap_or(""),
            command = %logged::Untrusted(&command),
            length = text.chars().count(),
            outcome = ?answer.outcome,
            job = ?answer.job,
            "ssh command"
        );
        if let Some(job) = answer.job {
            self.outstanding.insert(job);
        }
        answer
    }

    /// The job most recently queued and still running, the one Ctrl-C cancels. Job ids
    /// are UUID v7, so the greatest is the newest.
    pub fn waited_for(&self) -> Option<JobId> {
        self.outstanding.last().copied()
    }

    /// Asks the router to cancel `job`, as if the person had typed it.
    pub async fn cancel(&mut self, job: JobId) -> Answer {
        self.ask(&format!("cancel {job}")).await
    }

    /// Notes a delivered result; whether it was one of this session's outstanding jobs.
    pub fn settle(&mut self, reply: &Reply) -> bool {
        tracing::info!(
            user = %self.origin.identity(),
            job = %reply.job,
            status = %reply.status,
            "ssh job result delivered"
        );
        self.outstanding.remove(&reply.job)
    }
}
