//! `octobox-bench --ssh`: the SSH adapter's speed, with the real OpenSSH client against
//! an `octobox-bot` process serving SSH (embedded mode), each figure beside a baseline
//! measured in the same run:
//!
//! - first answer: `ssh bot ping`, from starting the client to the first byte of `pong`,
//!   one connection at a time. Baseline: `ssh bot` opening a session and closing it at
//!   once, with no command — the SSH protocol's own cost (client start, TCP, key
//!   exchange, public-key authentication, a channel) on the same client and server.
//! - throughput: N sessions at once, each piping C commands (half `ping`, half `echo`
//!   jobs) and waiting for every answer; commands per second and every answer checked.
//!   Baselines: the same sessions with no commands (what connecting costs), and the same
//!   commands through one `octobox-bot --console` pipe, which runs the same router,
//!   worker and async manager with no SSH at all.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::stats::{rate, Percentiles};
use crate::console::Console;
use crate::ssh::{SshBot, SshBotSetup};

/// What to measure.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Connections, one after another, for the first-answer phase (and its baseline).
    pub connections: usize,
    /// Sessions at once in the throughput phase.
    pub sessions: usize,
    /// Commands per session.
    pub commands: usize,
}

pub fn run(options: &SshOptions) -> Result<Value> {
    let bot = SshBotSetup::new(&["bench"])
        .ssh_option(&format!(
            "max_sessions = {n}\nmax_sessions_per_identity = {n}\nmax_startups = {n}\n\
             max_startups_per_address = {n}",
            n = options.sessions + 8,
        ))
        .start();
    // One connection first, so neither phase pays for a cold start.
    first_answer(&bot)?;

    let (mut answer, mut ended, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..options.connections {
        let (first, end) = first_answer(&bot)?;
        answer.push(first);
        ended.push(end);
        floor.push(empty_session(&bot)?);
    }
    let answer_p = Percentiles::of(&answer).context("no first answers")?;
    let ended_p = Percentiles::of(&ended).context("no first answers")?;
    let floor_p = Percentiles::of(&floor).context("no empty sessions")?;

    let total = options.sessions * options.commands;
    let ssh_took = sessions(&bot, options)?;
    let empty = SshOptions {
        commands: 0,
        ..options.clone()
    };
    let empty_took = sessions(&bot, &empty)?;
    let console_took = console(options)?;
    Ok(json!({
        "first_answer": {
            "connections": options.connections,
            "ssh_ping_first_byte_ms": answer_p,
            "ssh_ping_to_exit_ms": ended_p,
            "baseline_ssh_empty_session_to_exit_ms": floor_p,
            "to_exit_p50_ratio_to_baseline": ratio(ended_p.p50_ms, floor_p.p50_ms),
        },
        "throughput": {
            "sessions": options.sessions,
            "commands_per_session": options.commands,
            "every_answer_correct": true,
            "ssh_seconds": seconds(ssh_took),
            "baseline_same_sessions_without_commands_seconds": seconds(empty_took),
            "ssh_commands_per_s": rate(total, ssh_took),
            "baseline_console_pipe_commands_per_s": rate(total, console_took),
            "ratio_to_baseline": ratio(rate(total, ssh_took), rate(total, console_took)),
        },
    }))
}

/// Seconds, rounded to the millisecond.
fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn ratio(a: f64, b: f64) -> f64 {
    if b <= 0.0 {
        return 0.0;
    }
    (a / b * 100.0).round() / 100.0
}

/// `ssh bot ping`: from starting the client to the first byte of its answer, and to the
/// client's exit.
fn first_answer(bot: &SshBot) -> Result<(Duration, Duration)> {
    let mut cmd = bot.ssh("bench");
    cmd.arg("ping")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().context("cannot run ssh")?;
    let mut stdout = child.stdout.take().context("stdout is piped")?;
    let mut first = [0u8; 1];
    let n = stdout
        .read(&mut first)
        .context("cannot read ssh's output")?;
    let took = start.elapsed();
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest);
    let status = child.wait()?;
    let ended = start.elapsed();
    if n != 1 || first[0] != b'p' || !status.success() {
        bail!("ssh bot ping did not answer pong ({status})");
    }
    Ok((took, ended))
}

/// `ssh bot` with no command and no input: a session opened and closed.
fn empty_session(bot: &SshBot) -> Result<Duration> {
    let mut cmd = bot.ssh("bench");
    cmd.arg("-T")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let status = cmd.status().context("cannot run ssh")?;
    let took = start.elapsed();
    if !status.success() {
        bail!("an empty ssh session failed ({status})");
    }
    Ok(took)
}

/// The commands of session `i`: `ping` and `echo` jobs, alternately.
fn script(i: usize, commands: usize) -> Vec<String> {
    (0..commands)
        .map(|j| {
            if j % 2 == 0 {
                "ping".to_string()
            } else {
                format!("echo s{i} c{j}")
            }
        })
        .collect()
}

/// Every answer `script(i, commands)` should get is in `stdout`.
fn all_answered(i: usize, commands: usize, stdout: &str) -> bool {
    let pongs = stdout.lines().filter(|l| *l == "pong").count();
    pongs == commands.div_ceil(2)
        && (1..commands)
            .step_by(2)
            .all(|j| stdout.lines().any(|l| l == format!("s{i} c{j}")))
}

/// All sessions at once; the time from the first start to the last end.
fn sessions(bot: &SshBot, options: &SshOptions) -> Result<Duration> {
    let start = Instant::now();
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..options.sessions)
            .map(|i| s.spawn(move || bot.piped("bench", &script(i, options.commands))))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let took = start.elapsed();
    for (i, run) in runs.into_iter().enumerate() {
        let run = run.map_err(|_| anyhow::anyhow!("session {i} panicked"))?;
        if run.code != Some(0) || !all_answered(i, options.commands, &run.stdout) {
            bail!("session {i} did not get every answer: {run:?}");
        }
    }
    Ok(took)
}

/// The same commands through one console pipe, timed after a first answer.
fn console(options: &SshOptions) -> Result<Duration> {
    let console = Console::new().config(crate::NO_QUOTA);
    let mut session = console.start();
    session.send("ping");
    session.expect("a first pong", |l| l == "pong");
    let lines: Vec<String> = (0..options.sessions)
        .flat_map(|i| script(i, options.commands))
        .collect();
    let start = Instant::now();
    for line in &lines {
        session.send(line);
    }
    let answers = lines.len();
    session.expect_count("an answer", answers, |l| {
        l == "pong" || (l.starts_with('s') && l.contains(" c"))
    });
    let took = start.elapsed();
    drop(session.finish());
    Ok(took)
}
