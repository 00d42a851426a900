//! Reading a running container: standard output is kept (up to the limit) for the result;
//! standard error is split into lines that become `progress` events, at most a few per
//! second, and its last lines are kept to explain a failure.
//!
//! A container is code we do not trust to be polite: stderr may never write a newline.
//! Each byte of it is looked at once, and a line keeps at most [`LINE_BYTES`] bytes
//! however long it runs, so memory stays bounded and CPU is linear in what it writes.

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
/// The bytes of one stderr line kept while it is read: room for [`LINE_CHARS`] characters
/// of four bytes each; the rest of the line is dropped as it comes.
const LINE_BYTES: usize = 4 * LINE_CHARS + 4;

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
    let mut partial = PartialLine::default();
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
                let mut rest = &message[..];
                while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                    partial.push(&rest[..end]);
                    progress.line(&partial.take(), &mut collected, ctx).await;
                    rest = &rest[end + 1..];
                }
                partial.push(rest);
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => {
                collected.broken = Some(e.to_string());
                break;
            }
        }
    }
    if !partial.is_empty() {
        progress.line(&partial.take(), &mut collected, ctx).await;
    }
    progress.flush(ctx).await;
    collected
}

/// The stderr line being read: its first [`LINE_BYTES`] bytes. A line cut there is
/// longer than [`LINE_CHARS`] characters, so `shorten` marks it as cut.
#[derive(Default)]
struct PartialLine {
    kept: Vec<u8>,
}

impl PartialLine {
    fn push(&mut self, bytes: &[u8]) {
        let room = LINE_BYTES.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// The line so far, and a fresh start for the next.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.kept)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_never_ends_keeps_one_lines_worth_of_bytes() {
        let mut line = PartialLine::default();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..160 {
            line.push(&chunk);
        }
        assert_eq!(line.kept.len(), LINE_BYTES);
        let shown = shorten(&String::from_utf8_lossy(&line.take()));
        assert_eq!(shown.chars().count(), LINE_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert!(line.is_empty());
    }
}
