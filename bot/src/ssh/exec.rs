//! Exec mode: `ssh host "<command>"` runs one command, for people and for scripts.
//!
//! A sync answer prints at once. An async job says "queued as job <id>" and its progress
//! on standard error, then its result on standard output (a file result as its bytes, so
//! `ssh host "<command>" > file` keeps it). `--detach` (first or last word) or a final `&`
//! prints just the job id and returns. The exit status tells the outcome; see
//! [`super::session::status`].

use crate::reply;
use crate::request::Outcome;
use crate::ssh::session::{job_status, status, Input, Notice, Session};

/// Runs `command` and returns the exit status.
pub async fn run(session: &mut Session, command: &str) -> u32 {
    if command.chars().count() > session.limits.max_line_length {
        session
            .term
            .error_line(&reply::line_too_long(session.limits.max_line_length))
            .await;
        return status::UNKNOWN;
    }
    let (command, detach) = detached(command);
    let answer = session.ask(&command).await;
    let term = &session.term;
    match answer.outcome {
        Outcome::Done => {
            term.line(&answer.text).await;
            status::SUCCESS
        }
        Outcome::Nothing => status::SUCCESS,
        Outcome::Unknown | Outcome::BadArgument => {
            term.error_line(&answer.text).await;
            status::UNKNOWN
        }
        Outcome::Refused => {
            term.error_line(&answer.text).await;
            status::REFUSED
        }
        Outcome::Failed => {
            term.error_line(&answer.text).await;
            status::FAILED
        }
        Outcome::Queued => match answer.job {
            Some(job) if detach => {
                term.line(&job.to_string()).await;
                status::SUCCESS
            }
            Some(job) => {
                term.error_line(&answer.text).await;
                wait(session, job).await
            }
            None => status::FAILED,
        },
    }
}

/// Splits `--detach` or a trailing `&` off the command.
fn detached(command: &str) -> (String, bool) {
    let trimmed = command.trim();
    if let Some(rest) = trimmed.strip_suffix('&') {
        return (rest.trim().to_string(), true);
    }
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    match (words.first(), words.last()) {
        (Some(&"--detach"), _) => (words[1..].join(" "), true),
        (_, Some(&"--detach")) => (words[..words.len() - 1].join(" "), true),
        _ => (trimmed.to_string(), false),
    }
}

/// Waits for `job`'s result, showing its progress. Ctrl-C asks to cancel the job; a
/// second Ctrl-C stops waiting (the job goes on; `job <id>` shows it later).
async fn wait(session: &mut Session, job: jobs::JobId) -> u32 {
    let mut interrupted = false;
    loop {
        tokio::select! {
            notice = session.notices.recv() => match notice {
                Some(Notice::Reply(r)) if r.job == job => {
                    session.settle(&r);
                    match r.file {
                        Some((_, _, bytes)) => {
                            session.term.error_line(&r.text).await;
                            session.term.bytes(bytes).await;
                        }
                        None => session.term.line(&r.text).await,
                    }
                    return job_status(r.status);
                }
                Some(Notice::Progress(u)) if u.job() == job => {
                    session.term.error_line(&reply::update(&u)).await;
                    continue;
                }
                Some(_) => continue,
                None => return status::FAILED,
            },
            input = session.input.recv() => match input {
                // The client went away; the job goes on and its result stays in the history.
                None => {
                    tracing::info!(user = %session.origin.identity(), %job, "ssh client left while its job runs");
                    return status::FAILED;
                }
                // SIGINT from the client, or Ctrl-C typed on a terminal (`ssh -t`).
                Some(Input::Interrupt) => {}
                Some(Input::Data(bytes)) if bytes.contains(&0x03) => {}
                Some(_) => continue,
            },
        }
        if interrupted {
            return status::INTERRUPTED;
        }
        interrupted = true;
        let answer = session.cancel(job).await;
        session.term.error_line(&answer.text).await;
    }
}

#[cfg(test)]
mod tests {
    use super::detached;

    #[test]
    fn detach_is_a_flag_first_or_last_or_a_final_ampersand() {
        assert_eq!(detached("sleep 5s &"), ("sleep 5s".into(), true));
        assert_eq!(detached("sleep 5s&"), ("sleep 5s".into(), true));
        assert_eq!(detached("--detach sleep 5s"), ("sleep 5s".into(), true));
        assert_eq!(detached("sleep 5s --detach"), ("sleep 5s".into(), true));
        assert_eq!(detached("echo a & b"), ("echo a & b".into(), false));
    }
}
