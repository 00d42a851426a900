//! Reading a running container: standard output is kept (up to the limit) for the result;
//! standard error is split into lines that become `progress` events, at most a few per
//! second, and its last lines are kept to explain a failure.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use futures::{Stream, StreamExt};

use crate::registry::TaskContext;

/// The least time between two progress events of one job.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How many of the last stderr lines a failure quotes.
const TAIL_LINES: usize = 5;
/// Longer stderr lines are shortened in progress events and failure messages.
const LINE_CHARS: usize = 300;

/// What was read from a container that has closed its output.
#[derive(Debug, Default)]
pub struct Collected {
    pub stdout: Vec<u8>,
    /// More standard output came than `limit`; the rest was dropped.
    pub cut: bool,
    /// Its last standard-error lines.
    pub stderr_tail: VecDeque<String>,
    /// The stream broke before the container closed it (the engine went away).
    pub broken: Option<String>,
}

/// Reads `output` until the container closes it.
pub async fn collect(
    mut output: impl Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
    limit: u64,
    ctx: &TaskContext,
) -> Collected {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut collected = Collected::default();
    let mut progress = Progress::default();
    let mut partial = Vec::new();
    while let Some(item) = output.next().await {
        match item {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                let room = limit.saturating_sub(collected.stdout.len());
                if message.len() > room {
                    collected.cut = true;
                }
                collected
                    .stdout
                    .extend_from_slice(&message[..message.len().min(room)]);
            }
            Ok(LogOutput::StdErr { message }) => {
                partial.extend_from_slice(&message);
                while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=end).collect();
                    progress.line(&line, &mut collected, ctx).await;
                }
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => {
                collected.broken = Some(e.to_string());
                break;
            }
        }
    }
    if !partial.is_empty() {
        progress.line(&partial, &mut collected, ctx).await;
    }
    progress.flush(ctx).await;
    collected
}

/// Rate-limits progress events: a line that comes too soon after the last event is not
/// sent, and the next event says how many were left out. The last line is always sent.
#[derive(Default)]
struct Progress {
    last: Option<Instant>,
    skipped: usize,
    /// The latest line not sent, sent by `flush` if no later event carries the count.
    pending: Option<String>,
}

impl Progress {
    async fn line(&mut self, raw: &[u8], collected: &mut Collected, ctx: &TaskContext) {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end();
        if text.trim().is_empty() {
            return;
        }
        let line = shorten(text);
        if collected.stderr_tail.len() == TAIL_LINES {
            collected.stderr_tail.pop_front();
        }
        collected.stderr_tail.push_back(line.clone());
        let now = Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < PROGRESS_EVERY)
        {
            if self.pending.replace(line).is_some() {
                self.skipped += 1;
            }
            return;
        }
        self.last = Some(now);
        if self.pending.take().is_some() {
            self.skipped += 1;
        }
        self.send(line, ctx).await;
    }

    /// Sends the line held back last, once the container has closed its output.
    async fn flush(&mut self, ctx: &TaskContext) {
        if let Some(line) = self.pending.take() {
            self.send(line, ctx).await;
        }
    }

    async fn send(&mut self, line: String, ctx: &TaskContext) {
        let line = match std::mem::take(&mut self.skipped) {
            0 => line,
            1 => format!("{line} (1 line before it not shown)"),
            n => format!("{line} ({n} lines before it not shown)"),
        };
        ctx.progress(line).await;
    }
}

fn shorten(line: &str) -> String {
    if line.chars().count() <= LINE_CHARS {
        return line.to_string();
    }
    let mut s: String = line.chars().take(LINE_CHARS).collect();
    s.push('…');
    s
}
