//! `ConsoleAdapter`: the bot on standard input and output.
//!
//! One command a line. Sync answers print at once; an async job prints "queued as job
//! <id>", then its result when the async manager delivers it. On a terminal there is a
//! prompt with line editing and history, and results print without breaking the line
//! being typed. On a pipe there is no prompt, and at end of input the console waits for
//! its outstanding jobs before it returns, so `echo "sleep 1s" | octobox-bot --console`
//! shows the result.
//!
//! The console is a user interface: it writes to stdout on purpose. Logs go to stderr.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use jobs::{JobId, Origin};
use rustyline::error::ReadlineError;
use rustyline::ExternalPrinter;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::async_manager::{DeliveryError, ReplySink};
use crate::bot::Bot;
use crate::reply::Reply;
use crate::request::{Answer, Outcome, Request};

const ADAPTER: &str = "console";

/// Hands replies for this console session to its loop.
struct ConsoleSink {
    session: String,
    tx: mpsc::UnboundedSender<Reply>,
}

#[async_trait]
impl ReplySink for ConsoleSink {
    async fn deliver(&self, origin: &Origin, reply: Reply) -> Result<(), DeliveryError> {
        if origin.channel.as_deref() != Some(self.session.as_str()) {
            return Err(DeliveryError::Gone(format!(
                "the console session that asked ({}) is gone",
                origin.channel.as_deref().unwrap_or("unknown")
            )));
        }
        self.tx
            .send(reply)
            .map_err(|_| DeliveryError::Gone("the console has closed".to_string()))
    }
}

/// The login name of the person at the console: the account of the process's user id.
///
/// Never `$USER` or `$LOGNAME`: anyone can set those (`USER=alice octobox-bot --console`),
/// and the identity `console:<name>` is what `[acl]` trusts. A user id with no account
/// (a container started with `--user 1234`) is `uid1234`.
pub fn login() -> String {
    let uid = nix::unistd::Uid::current();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) if !user.name.is_empty() => user.name,
        _ => format!("uid{uid}"),
    }
}

/// Runs the console until end of input (and, on a pipe, until outstanding jobs finish).
///
/// The session is named after the bot instance and the user, not the process, so a
/// console restarted by the same person receives the replies of jobs it queued before.
pub async fn run(bot: &Bot) -> Result<()> {
    let user = login();
    let session = format!("{}/{user}", bot.instance);
    let (tx, replies) = mpsc::unbounded_channel();
    bot.sinks.register(
        ADAPTER,
        Arc::new(ConsoleSink {
            session: session.clone(),
            tx,
        }),
    );
    let origin = Origin {
        adapter: ADAPTER.to_string(),
        user,
        channel: Some(session),
        thread: None,
    };
    tracing::info!(user = %origin.identity(), "console session started");
    if std::io::stdin().is_terminal() {
        interactive(bot, origin, replies).await
    } else {
        piped(bot, origin, replies).await
    }
}

/// The jobs this session is waiting for.
#[derive(Default)]
struct Outstanding(HashSet<JobId>);

impl Outstanding {
    fn note(&mut self, answer: &Answer) {
        if let (Outcome::Queued, Some(id)) = (answer.outcome, answer.job) {
            self.0.insert(id);
        }
    }

    fn settle(&mut self, reply: &Reply) {
        self.0.remove(&reply.job);
    }
}

async fn piped(
    bot: &Bot,
    origin: Origin,
    mut replies: mpsc::UnboundedReceiver<Reply>,
) -> Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut outstanding = Outstanding::default();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.context("cannot read standard input")? else { break };
                if is_exit(&line) {
                    break;
                }
                let answer = ask(bot, &origin, line).await;
                outstanding.note(&answer);
                print(&answer.text)?;
            }
            Some(reply) = replies.recv() => {
                outstanding.settle(&reply);
                print(&reply.text)?;
            }
        }
    }
    while !outstanding.0.is_empty() {
        let Some(reply) = replies.recv().await else {
            break;
        };
        outstanding.settle(&reply);
        print(&reply.text)?;
    }
    Ok(())
}

async fn interactive(
    bot: &Bot,
    origin: Origin,
    mut replies: mpsc::UnboundedReceiver<Reply>,
) -> Result<()> {
    let mut editor = rustyline::DefaultEditor::new().context("cannot open the terminal")?;
    let mut printer = editor
        .create_external_printer()
        .context("cannot print to the terminal")?;
    let (lines_tx, mut lines) = mpsc::channel::<String>(1);
    // The editor blocks, so it lives on its own thread; it waits for each answer before
    // showing the next prompt, so answers and prompts never interleave.
    let (answered_tx, answered) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || loop {
        match editor.readline("octobox> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if lines_tx.blocking_send(line).is_err() || answered.recv().is_err() {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    });

    println!(
        "Octobox {} — type \"help\" for commands, Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION")
    );
    let mut outstanding = Outstanding::default();
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                if is_exit(&line) {
                    break;
                }
                let answer = ask(bot, &origin, line).await;
                outstanding.note(&answer);
                print(&answer.text)?;
                let _ = answered_tx.send(());
            }
            Some(reply) = replies.recv() => {
                outstanding.settle(&reply);
                let _ = printer.print(format!("{}\n", reply.text));
            }
        }
    }
    if !outstanding.0.is_empty() {
        println!(
            "waiting for {} job(s) to finish (Ctrl-C to leave now)",
            outstanding.0.len()
        );
        while !outstanding.0.is_empty() {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                reply = replies.recv() => {
                    let Some(reply) = reply else { break };
                    outstanding.settle(&reply);
                    print(&reply.text)?;
                }
            }
        }
    }
    Ok(())
}

fn is_exit(line: &str) -> bool {
    matches!(line.trim(), "exit" | "quit")
}

async fn ask(bot: &Bot, origin: &Origin, text: String) -> Answer {
    let request = Request {
        text,
        origin: origin.clone(),
    };
    let answer = bot.router.handle(&request).await;
    tracing::debug!(user = %origin.identity(), outcome = ?answer.outcome, "console command");
    answer
}

fn print(text: &str) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|_| out.flush())
        .context("cannot write to standard output")
}
