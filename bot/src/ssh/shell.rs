//! Shell mode: `ssh host` opens a session that takes one command a line.
//!
//! On a terminal (the client asked for a pty) the session has a prompt and a
//! [`LineEditor`]; job results print above the line being typed; Ctrl-C cancels the job
//! being waited for (the newest still running) by sending `cancel <id>` through the
//! router, like a typed command; Ctrl-D or `exit` leaves. Without a terminal (commands
//! piped in: `ssh host < script`) there is no prompt and no echo, and at the end of input
//! the session waits for its jobs' results before it closes, so a script sees them all.
//! A line past the length limit is refused whole, never cut and run; input that arrives
//! faster than the session takes it is bounded (`session::input_budget`).

use tokio::time::Instant;

use crate::reply;
use crate::ssh::line_editor::{Action, LineEditor};
use crate::ssh::session::{input_budget, status, Input, Notice, Session};

const PROMPT: &str = "octobox> ";

/// Runs the session until the person leaves, and returns the exit status.
pub async fn run(session: &mut Session) -> u32 {
    if session.term.pty {
        on_terminal(session).await
    } else {
        piped(session).await
    }
}

fn is_exit(line: &str) -> bool {
    matches!(line.trim(), "exit" | "quit" | "logout")
}

/// When the session is idle: now plus the idle timeout.
fn idle_deadline(session: &Session) -> Instant {
    Instant::now() + session.limits.idle_timeout
}

async fn on_terminal(session: &mut Session) -> u32 {
    let mut editor = LineEditor::new(PROMPT, session.limits.max_line_length);
    editor.set_width(session.term.cols);
    let greeting = reply::ssh_greeting(&session.origin.identity());
    session.term.line(&greeting).await;
    session.term.raw(editor.redraw()).await;
    let mut idle = idle_deadline(session);
    loop {
        tokio::select! {
            input = session.input.recv() => {
                idle = idle_deadline(session);
                let bytes = match input {
                    None => return status::SUCCESS,
                    Some(Input::Eof) => break,
                    Some(Input::Interrupt) => vec![0x03],
                    Some(Input::Resize(cols)) => {
                        editor.set_width(cols);
                        continue;
                    }
                    Some(Input::Overflow) => {
                        editor.refuse_line();
                        let text = reply::input_overflow(input_budget(&session.limits), false);
                        tracing::warn!(user = %session.origin.identity(), "ssh input dropped: the session's input queue is full");
                        session.term.raw(editor.print_above(&text)).await;
                        continue;
                    }
                    Some(Input::Data(bytes)) => bytes,
                };
                let catalog = session.router.catalog();
                let complete = |partial: &str| catalog.commands.catalog.complete(partial);
                let (screen, actions) = editor.feed(&bytes, &complete);
                session.term.raw(screen).await;
                for action in actions {
                    match action {
                        Action::Submit(line) if is_exit(&line) => return leave(session).await,
                        Action::Submit(line) => {
                            let answer = session.ask(&line).await;
                            session.term.line(&answer.text).await;
                        }
                        Action::Interrupt { discarded: true } => {}
                        Action::Interrupt { discarded: false } => match session.waited_for() {
                            Some(job) => {
                                let answer = session.cancel(job).await;
                                session.term.line(&answer.text).await;
                            }
                            None => session.term.line(&reply::nothing_to_cancel()).await,
                        },
                        Action::Leave => {
                            session.term.raw("\n".to_string()).await;
                            return leave(session).await;
                        }
                        Action::TooLong => {
                            tracing::info!(
                                user = %session.origin.identity(),
                                max = session.limits.max_line_length,
                                "ssh line refused: too long"
                            );
                            let text = reply::line_too_long(session.limits.max_line_length);
                            session.term.line(&text).await;
                        }
                    }
                    session.term.raw(editor.redraw()).await;
                }
            }
            notice = session.notices.recv() => {
                let text = match notice {
                    Some(Notice::Reply(r)) => {
                        session.settle(&r);
                        r.text
                    }
                    Some(Notice::Progress(u)) => reply::update(&u),
                    None => break,
                };
                session.term.raw(editor.print_above(&text)).await;
            }
            _ = tokio::time::sleep_until(idle) => {
                if session.outstanding.is_empty() {
                    let text = reply::idle_closed(session.limits.idle_timeout);
                    session.term.raw(editor.print_above(&text)).await;
                    return status::SUCCESS;
                }
                idle = idle_deadline(session);
            }
        }
    }
    leave(session).await
}

/// Leaving a terminal session: jobs still running go on, and the person is told where
/// their results will be.
async fn leave(session: &mut Session) -> u32 {
    if !session.outstanding.is_empty() {
        session
            .term
            .line(&reply::still_running(session.outstanding.len()))
            .await;
    }
    status::SUCCESS
}

async fn piped(session: &mut Session) -> u32 {
    let max = session.limits.max_line_length;
    let mut pending: Vec<u8> = Vec::new();
    // Past the limit, the rest of the line is dropped (and said once), never buffered.
    let mut overlong = false;
    let mut idle = idle_deadline(session);
    let mut input_open = true;
    loop {
        if !input_open && session.outstanding.is_empty() {
            return status::SUCCESS;
        }
        tokio::select! {
            input = session.input.recv() => {
                idle = idle_deadline(session);
                match input {
                    None => return status::SUCCESS,
                    Some(Input::Eof) => {
                        input_open = false;
                        if !pending.is_empty() && !overlong {
                            let line = String::from_utf8_lossy(&pending).into_owned();
                            pending.clear();
                            if !is_exit(&line) {
                                let answer = session.ask(&line).await;
                                session.term.line(&answer.text).await;
                            }
                        }
                    }
                    Some(Input::Interrupt) => return status::INTERRUPTED,
                    Some(Input::Overflow) => {
                        tracing::warn!(user = %session.origin.identity(), "ssh input dropped: the session's input queue is full; closing it");
                        let text = reply::input_overflow(input_budget(&session.limits), true);
                        session.term.error_line(&text).await;
                        return status::FAILED;
                    }
                    Some(Input::Resize(_)) => {}
                    Some(Input::Data(_)) if !input_open => {}
                    Some(Input::Data(bytes)) => {
                        for b in bytes {
                            if b != b'\n' {
                                if pending.len() < max.saturating_mul(4) && !overlong {
                                    pending.push(b);
                                } else if !overlong {
                                    overlong = true;
                                    pending.clear();
                                }
                                continue;
                            }
                            let line = String::from_utf8_lossy(&pending).trim_end_matches('\r').to_string();
                            pending.clear();
                            if std::mem::take(&mut overlong) || line.chars().count() > max {
                                session.term.line(&reply::line_too_long(max)).await;
                                continue;
                            }
                            if is_exit(&line) {
                                input_open = false;
                                break;
                            }
                            let answer = session.ask(&line).await;
                            session.term.line(&answer.text).await;
                        }
                    }
                }
            }
            notice = session.notices.recv() => match notice {
                Some(Notice::Reply(r)) => {
                    session.settle(&r);
                    session.term.line(&r.text).await;
                }
                Some(Notice::Progress(_)) => {}
                None => return status::FAILED,
            },
            _ = tokio::time::sleep_until(idle), if input_open => {
                if session.outstanding.is_empty() {
                    session.term.line(&reply::idle_closed(session.limits.idle_timeout)).await;
                    return status::SUCCESS;
                }
                idle = idle_deadline(session);
            }
        }
    }
}
