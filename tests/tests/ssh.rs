//! The bot over SSH, reached with the real OpenSSH client and keys made by `ssh-keygen`:
//! one command per connection with its exit status, piped sessions, a session on a
//! pseudo-terminal, refusals, limits, and a client that leaves while its job runs; and its
//! front door attacked with raw TCP sockets: connections that never log in, a flood from
//! one address, running the bot out of file descriptors, an over-long pasted line, a
//! command that forges a log line, a key whose comment names someone else.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use octobox_tests::ssh::{finish, try_keyboard_interactive, try_password, SshBotSetup, SshKey};
use regex::Regex;

const UUID: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

/// An access group and a command only it may run.
const GUARDED: &str = r#"
[acl]
default = "allow"

[acl.groups]
oncall = ["ssh:alice"]

[[command]]
pattern = "deploy {text:name}"
help = "Deploy a service"
examples = ["deploy web"]
native = "echo"
allow = ["group:oncall"]
"#;

#[test]
fn a_sync_command_prints_its_answer_and_exits_zero() {
    let bot = SshBotSetup::new(&["alice"]).start();
    let run = bot.exec("alice", "ping");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "pong\n");
    let run = bot.exec("alice", "whoami");
    assert_eq!(run.stdout, "you are ssh:alice, in no group\n", "{run:?}");
}

#[test]
fn an_async_job_shows_progress_on_stderr_and_its_result_on_stdout() {
    let bot = SshBotSetup::new(&["alice"]).start();
    let run = bot.exec("alice", "sleep 1s");
    assert_eq!(run.code, Some(0), "{run:?}");
    let result = Regex::new(&format!(
        r"^job {UUID} \(sleep\) succeeded in 1\.\ds:\nslept 1s\n$"
    ))
    .unwrap();
    assert!(result.is_match(&run.stdout), "{run:?}");
    let queued = Regex::new(&format!("(?m)^queued as job {UUID}$")).unwrap();
    assert!(queued.is_match(&run.stderr), "{run:?}");
    assert!(run.stderr.contains("running on embedded"), "{run:?}");

    let run = bot.exec("alice", "echo Hello,  SSH");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.ends_with(":\nHello,  SSH\n"), "{run:?}");
}

#[test]
fn exit_statuses_tell_unknown_refused_and_timed_out_apart() {
    let config = format!(
        "{GUARDED}\n[[command]]\npattern = \"nap {{for:duration}}\"\nhelp = \"Sleep on a short leash\"\nnative = \"sleep\"\ntimeout = \"300ms\"\n"
    );
    let bot = SshBotSetup::new(&["alice", "bob"]).config(&config).start();

    let run = bot.exec("alice", "pnig");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.starts_with("unknown command \"pnig\""),
        "{run:?}"
    );
    let run = bot.exec("alice", "sleep forever");
    assert_eq!(run.code, Some(2), "bad argument: {run:?}");

    let run = bot.exec("bob", "deploy web");
    assert_eq!(run.code, Some(3), "{run:?}");
    assert_eq!(
        run.stderr,
        "ssh:bob may not run \"deploy\": members of group oncall may; ask to be added to it\n"
    );
    let run = bot.exec("alice", "deploy web");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.ends_with("\nweb\n"), "{run:?}");

    let run = bot.exec("alice", "nap 10s");
    assert_eq!(run.code, Some(124), "{run:?}");
    assert!(run.stdout.ends_with("timed out after 300ms\n"), "{run:?}");
}

#[test]
fn detach_returns_the_job_id_at_once_and_job_shows_it_later() {
    let bot = SshBotSetup::new(&["alice"]).start();
    for command in ["sleep 300ms --detach", "echo later &"] {
        let run = bot.exec("alice", command);
        assert_eq!(run.code, Some(0), "{run:?}");
        let id = run.stdout.trim().to_string();
        assert!(
            Regex::new(&format!("^{UUID}$")).unwrap().is_match(&id),
            "{run:?}"
        );
        let shown = eventually(|| {
            let run = bot.exec("alice", &format!("job {id}"));
            run.stdout
                .contains("status    succeeded")
                .then_some(run.stdout)
        });
        assert!(shown.contains("asked by  ssh:alice"), "{shown}");
    }
}

#[test]
fn a_key_not_in_authorized_keys_and_a_password_are_refused() {
    let bot = SshBotSetup::new(&["alice"]).start();
    let stranger = SshKey::generate(bot.dir(), "mallory");
    let mut cmd = bot.ssh_with_key(&stranger.path);
    cmd.args(["mallory@127.0.0.1", "ping"]);
    let run = finish(cmd);
    assert_eq!(run.code, Some(255), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.contains("Permission denied (publickey)"),
        "{run:?}"
    );

    // A client that will only use a password (or keyboard-interactive) is turned away:
    // the server offers public keys and nothing else.
    let mut cmd = bot.ssh("alice");
    cmd.args([
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        "ping",
    ]);
    let run = finish(cmd);
    assert_eq!(run.code, Some(255), "{run:?}");
    assert!(
        run.stderr.contains("Permission denied (publickey)"),
        "{run:?}"
    );
    assert!(bot.log().contains("ssh key refused"), "{}", bot.log());
    // A client that sends a password, or starts keyboard-interactive, regardless.
    assert!(!try_password(bot.port, "alice", "hunter2"));
    assert!(!try_keyboard_interactive(bot.port, "alice"));
    let log = bot.log();
    assert!(log.contains("ssh password login refused"), "{log}");
    assert!(
        log.contains("ssh keyboard-interactive login refused"),
        "{log}"
    );
    assert!(
        !log.contains("hunter2"),
        "a password reached the log:\n{log}"
    );
}

#[test]
fn an_unsupported_authorized_keys_option_stops_the_bot_with_its_line() {
    let bot = SshBotSetup::new(&["alice"]).start();
    let key = SshKey::generate(bot.dir(), "bob");
    let keys = bot.dir().join("authorized_keys");
    std::fs::write(
        &keys,
        format!("# team\nfrom=\"10.0.0.0/8\" {}\n", key.public),
    )
    .unwrap();
    let out = std::process::Command::new(octobox_tests::binary::path("octobox-bot"))
        .arg("--check-config")
        .arg(bot.dir().join("octobox.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2: from: option \"from\" is not supported",
            keys.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_key_listed_without_identity_cannot_name_itself_admin_with_its_comment() {
    // Mallory made her key with the comment "admin" and it was pasted into the file as is.
    let bot = SshBotSetup::new(&["alice"])
        .config(&GUARDED.replace("ssh:alice", "ssh:admin"))
        .start();
    let key = SshKey::generate_with_comment(bot.dir(), "mallory", "admin");
    let keys = bot.dir().join("authorized_keys");
    let listed = std::fs::read_to_string(&keys).unwrap();
    std::fs::write(&keys, format!("{listed}{}\n", key.public)).unwrap();
    // The bot refuses the file, at check and at start, naming the line; it never runs
    // with the key read as ssh:admin.
    let config = bot.dir().join("octobox.toml");
    for mode in ["--check-config", "--config"] {
        let mut child = std::process::Command::new(octobox_tests::binary::path("octobox-bot"))
            .arg(mode)
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + octobox_tests::console::PATIENCE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{mode}: the bot started with a key that has no identity");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(!status.success(), "{mode}: {stderr}");
        assert!(
            stderr.contains(&format!("{}:2: the key has no identity", keys.display())),
            "{mode}: {stderr}"
        );
    }
    // The running bot (started before the key was added) never learnt it either.
    let mut cmd = bot.ssh_with_key(&bot.key("mallory"));
    cmd.args(["admin@127.0.0.1", "deploy web"]);
    let run = finish(cmd);
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(!run.stdout.contains("web"), "nothing deployed: {run:?}");
}

#[test]
fn an_interactive_session_has_a_prompt_completion_history_and_async_results() {
    let bot = SshBotSetup::new(&["alice"]).start();
    let mut term = bot.terminal("alice");
    term.expect("a greeting and a prompt", |s| {
        s.contains("you are ssh:alice") && s.ends_with("octobox> ")
    });
    // Tab completes "pi" to "ping".
    term.type_keys("pi\t\r");
    term.expect("pong", |s| s.contains("octobox> ping \npong\n"));
    // A job: its result arrives while the next line is being typed, which survives.
    term.queue("sleep 500ms");
    term.type_keys("ech");
    let screen = term.expect("the result", |s| s.contains("slept 500ms\n"));
    assert!(
        screen.ends_with("octobox> ech"),
        "the line is kept:\n{screen}"
    );
    term.type_keys("o typed around\r");
    term.expect("the echo", |s| s.contains("\ntyped around\n"));
    // Up-arrow recalls the last command.
    term.type_keys("\x1b[A\r");
    term.expect("the echo again", |s| {
        s.matches("\ntyped around\n").count() == 2
    });
    // Ctrl-C on an empty line with no job: nothing to cancel.
    term.type_keys("\x03");
    term.expect("no job to cancel", |s| s.contains("no job to cancel"));
    term.type_keys("exit\r");
    assert_eq!(term.wait(), Some(0));
}

#[test]
fn ctrl_c_sends_cancel_for_the_job_being_waited_for() {
    let bot = SshBotSetup::new(&["alice"]).start();
    let mut term = bot.terminal("alice");
    term.expect("a prompt", |s| s.ends_with("octobox> "));
    let id = term.queue("sleep 20s");
    term.type_keys("\x03");
    // The text "cancel <id>" goes through the router from this session's origin, and the
    // job's result says who stopped it.
    term.expect("the job cancelled", |s| {
        s.contains(&format!("job {id}")) && s.contains("cancelled by ssh:alice")
    });
    term.type_keys("\x04");
    assert_eq!(term.wait(), Some(0));
    // Logged as the command it was read as, and its length ("cancel <id>").
    assert!(
        bot.log().contains("command=cancel length=43"),
        "{}",
        bot.log()
    );
}

#[test]
fn ctrl_c_while_a_command_waits_cancels_its_job_and_exits_1() {
    let bot = SshBotSetup::new(&["alice"]).start();
    let mut term = bot.terminal_running("alice", Some("sleep 20s"));
    let id = term.queued_after(0);
    term.type_keys("\x03");
    term.expect("the job cancelled", |s| {
        s.contains("cancelled by ssh:alice")
    });
    assert_eq!(term.wait(), Some(1));
    assert!(
        bot.log().contains("command=cancel length=43"),
        "{id}: {}",
        bot.log()
    );
}

#[test]
fn an_idle_session_is_closed_with_a_message() {
    let bot = SshBotSetup::new(&["alice"])
        .ssh_option("idle_timeout = \"1s\"")
        .start();
    let term = bot.terminal("alice");
    term.expect("the idle notice", |s| {
        s.contains("no input for 1s: closing the session")
    });
    assert_eq!(term.wait(), Some(0));
}

#[test]
fn a_client_that_leaves_while_its_job_runs_finds_the_result_later() {
    let bot = SshBotSetup::new(&["alice"]).start();
    let mut term = bot.terminal("alice");
    term.expect("a prompt", |s| s.ends_with("octobox> "));
    let id = term.queue("sleep 1s");
    drop(term); // The client is killed mid-job.
    let shown = eventually(|| {
        let run = bot.exec("alice", &format!("job {id}"));
        run.stdout
            .contains("status    succeeded")
            .then_some(run.stdout)
    });
    assert!(shown.contains("slept 1s"), "{shown}");
}

#[test]
fn sessions_past_the_limit_are_told_why() {
    let bot = SshBotSetup::new(&["alice"])
        .ssh_option("max_sessions_per_identity = 1")
        .ssh_option("max_line_length = 20")
        .start();
    let mut term = bot.terminal("alice");
    term.expect("a prompt", |s| s.ends_with("octobox> "));
    let run = bot.exec("alice", "ping");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("ssh:alice already has 1 sessions open"),
        "{run:?}"
    );
    term.type_keys("echo this line is far too long\r");
    term.expect("the length limit", |s| {
        s.contains("line too long: the line is longer than 20 characters")
    });
    term.type_keys("\x04");
    assert_eq!(term.wait(), Some(0));
    // The place is given back when the session ends.
    let run = bot.exec("alice", "ping");
    assert_eq!(run.code, Some(0), "{run:?}");
    // Piped, an overlong line is refused and the next one still runs.
    let run = bot.piped(
        "alice",
        &["echo this line is far too long".into(), "ping".into()],
    );
    assert_eq!(
        run.stdout,
        "line too long: the line is longer than 20 characters (the most a command may have) \
         and was not run\npong\n",
        "{run:?}"
    );
    let run = bot.exec("alice", "echo this line is far too long");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.starts_with("line too long"), "{run:?}");
}

#[test]
fn a_hundred_sessions_of_twenty_commands_each_get_every_answer_right() {
    let bot = SshBotSetup::new(&["alice", "bob"])
        .ssh_option("max_sessions_per_identity = 100")
        .ssh_option("max_startups = 100")
        .ssh_option("max_startups_per_address = 100")
        .start();
    let started = Instant::now();
    let results: Vec<(usize, octobox_tests::ssh::SshRun)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let bot = &bot;
                s.spawn(move || {
                    let lines: Vec<String> = (0..20)
                        .map(|j| {
                            if j % 2 == 0 {
                                "ping".to_string()
                            } else {
                                format!("echo session {i} command {j}")
                            }
                        })
                        .collect();
                    let user = if i % 2 == 0 { "alice" } else { "bob" };
                    (i, bot.piped(user, &lines))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, run) in &results {
        assert_eq!(run.code, Some(0), "session {i}: {run:?}");
        assert_eq!(
            run.stdout.matches("pong\n").count(),
            10,
            "session {i}: {run:?}"
        );
        for j in (1..20).step_by(2) {
            assert_eq!(
                run.stdout
                    .matches(&format!(":\nsession {i} command {j}\n"))
                    .count(),
                1,
                "session {i} command {j}: {run:?}"
            );
        }
        assert_eq!(run.stdout.matches("queued as job").count(), 10, "{run:?}");
    }
    eprintln!("100 sessions x 20 commands in {:?}", started.elapsed());
}

#[test]
fn connections_that_never_log_in_are_closed_after_the_grace_time() {
    let bot = SshBotSetup::new(&["alice"])
        .ssh_option("login_grace_time = \"1s\"")
        .start();
    // Sockets that say nothing, and sockets that send a client's version and stop there.
    // (Four of each: below the cap of ten per address.)
    let mut silent: Vec<TcpStream> = (0..4).map(|_| connect(bot.port)).collect();
    let mut banner: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect(bot.port);
            s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").unwrap();
            s
        })
        .collect();
    for socket in silent.iter_mut().chain(banner.iter_mut()) {
        // Served (the server's version line comes), then closed by the server.
        let received = read_until_closed(socket, Duration::from_secs(20));
        assert!(received.starts_with(b"SSH-2.0-"), "{received:?}");
    }
    assert!(
        bot.log()
            .contains("ssh connection closed: not logged in within ssh.login_grace_time"),
        "{}",
        bot.log()
    );
    // A real login within the grace time is not cut short.
    let run = bot.exec("alice", "sleep 2s");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("slept 2s"), "{run:?}");
}

#[test]
fn a_flood_of_connections_from_one_address_is_capped_and_locks_nobody_else_out() {
    let bot = SshBotSetup::new(&["alice"])
        .ssh_option("max_startups_per_address = 3")
        .start();
    // Two connections from 127.0.0.1 that will never log in: alice still gets in from
    // there, below the cap.
    let mut flood: Vec<TcpStream> = (0..2).map(|_| connect(bot.port)).collect();
    for s in &mut flood {
        assert!(read_some(s).starts_with(b"SSH-2.0-"));
    }
    let run = bot.exec("alice", "ping");
    assert_eq!(run.stdout, "pong\n", "below the cap: {run:?}");

    // A third reaches the cap: the next connection from 127.0.0.1 is closed at once,
    // before the server says anything, and so is alice's from there.
    flood.push(connect(bot.port));
    assert!(read_some(flood.last_mut().unwrap()).starts_with(b"SSH-2.0-"));
    let mut refused = connect(bot.port);
    let received = read_until_closed(&mut refused, Duration::from_secs(20));
    assert!(
        received.is_empty(),
        "refused before the banner: {received:?}"
    );
    let run = bot.exec("alice", "ping");
    assert_eq!(run.code, Some(255), "at the cap: {run:?}");
    assert!(
        bot.log().contains("ssh connection refused before login")
            && bot.log().contains("max_startups_per_address"),
        "{}",
        bot.log()
    );

    // Another address is not held to 127.0.0.1's count.
    let mut cmd = bot.ssh("alice");
    cmd.args(["-b", "127.0.0.2", "ping"]);
    let run = finish(cmd);
    assert_eq!(run.stdout, "pong\n", "from 127.0.0.2: {run:?}");

    // Once the flood ends, 127.0.0.1 gets in again.
    drop(flood);
    let shown = eventually(|| {
        let run = bot.exec("alice", "ping");
        (run.code == Some(0)).then_some(run.stdout)
    });
    assert_eq!(shown, "pong\n");
}

#[test]
fn running_out_of_file_descriptors_does_not_stop_the_listener() {
    let bot = SshBotSetup::new(&["alice"])
        .fd_limit(64)
        .ssh_option("max_startups = 1000")
        .ssh_option("max_startups_per_address = 1000")
        .start();
    let run = bot.exec("alice", "ping");
    assert_eq!(run.stdout, "pong\n", "{run:?}");
    // More connections than the bot has descriptors: it accepts until it has none left.
    let flood: Vec<TcpStream> = (0..100).map(|_| connect(bot.port)).collect();
    let log = eventually(|| {
        let log = bot.log();
        log.contains("ssh accept failed").then_some(log)
    });
    assert!(log.contains("open files"), "{log}");
    drop(flood);
    // The descriptors come back as the connections end, and the listener is still there.
    let out = eventually(|| {
        let run = bot.exec("alice", "ping");
        (run.code == Some(0)).then_some(run.stdout)
    });
    assert_eq!(out, "pong\n");
    assert!(
        bot.log().contains("ssh accept works again"),
        "{}",
        bot.log()
    );
}

#[test]
fn a_pasted_line_past_the_limit_is_refused_not_cut_and_run() {
    let bot = SshBotSetup::new(&["alice"]).start();
    let mut term = bot.terminal("alice");
    term.expect("a prompt", |s| s.ends_with("octobox> "));
    // A megabyte pasted on one line: cut at 4096 characters it would still be a valid
    // `echo`, queued as a job.
    term.type_keys(&format!("echo {}\r", "x".repeat(1_000_000)));
    term.type_keys("ping\r");
    let screen = term.expect("the refusal, then pong", |s| s.contains("pong\n"));
    assert!(
        screen.contains(
            "line too long: the line is longer than 4096 characters (the most a command may \
             have) and was not run"
        ),
        "{}",
        &screen[screen.len().saturating_sub(500)..]
    );
    assert!(
        !screen.contains("queued as job"),
        "nothing ran: {}",
        &screen[screen.len().saturating_sub(500)..]
    );
    term.type_keys("jobs\r");
    term.expect("no jobs", |s| s.contains("no jobs"));
    term.type_keys("exit\r");
    assert_eq!(term.wait(), Some(0));
}

#[test]
fn the_log_has_the_command_name_not_its_text_and_no_forged_lines() {
    let bot = SshBotSetup::new(&["alice"]).start();
    let forged = "2030-01-01T00:00:00.000000Z  INFO bot::ssh::connection: ssh login user=ssh:admin";
    let run = bot.exec("alice", &format!("ping\n{forged}"));
    assert_eq!(run.code, Some(2), "{run:?}");
    let run = bot.exec("alice", "echo token=hunter2-s3cret");
    assert_eq!(run.code, Some(0), "{run:?}");
    let log = eventually(|| {
        let log = bot.log();
        (log.matches("ssh command").count() >= 2).then_some(log)
    });
    assert!(
        !log.lines().any(|l| l.starts_with("2030-01-01")),
        "a forged line:\n{log}"
    );
    assert!(
        !log.contains("hunter2-s3cret"),
        "a secret was logged:\n{log}"
    );
    assert!(log.contains("command=echo length=25"), "{log}");
    assert!(log.contains("command=(unknown) length=85"), "{log}");
}

#[test]
fn a_key_whose_comment_names_another_user_is_still_its_configured_owner() {
    // Bob made his key with the comment "admin"; the file lists it as bob's. Only admin
    // may deploy.
    let config = GUARDED.replace("ssh:alice", "ssh:admin");
    let bot = SshBotSetup::new(&["alice"])
        .config(&config)
        .key("bob", "admin", "identity=\"bob\"")
        .start();
    // He logs in as "admin" too.
    let as_admin = |command: &str| {
        let mut cmd = bot.ssh_with_key(&bot.key("bob"));
        cmd.args(["admin@127.0.0.1", command]);
        finish(cmd)
    };
    let run = as_admin("whoami");
    assert_eq!(run.stdout, "you are ssh:bob, in no group\n", "{run:?}");
    let run = as_admin("deploy web");
    assert_eq!(run.code, Some(3), "refused: {run:?}");
    assert!(
        run.stderr.starts_with("ssh:bob may not run \"deploy\""),
        "{run:?}"
    );
    assert!(!run.stdout.contains("web"), "nothing deployed: {run:?}");
}

/// A TCP connection to the bot's SSH port, with reads bounded in time.
fn connect(port: u16) -> TcpStream {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The first bytes the server sends.
fn read_some(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).expect("the server says something");
    buf[..n].to_vec()
}

/// Everything the server sends until it closes the connection; fails the test if it is
/// still open after `bound`.
fn read_until_closed(s: &mut TcpStream, bound: Duration) -> Vec<u8> {
    let deadline = Instant::now() + bound;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return received,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "the server kept the connection open past {bound:?}; it sent {} bytes",
            received.len()
        );
    }
}

/// Retries `check` until it gives a value (or fails the test after a while).
fn eventually<T>(check: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The front doors' access rules as people meet them over SSH: no default access, other
/// people's jobs, built-ins declared under other patterns, quotas.
const DECLARED: &str = r#"
[acl.groups]
admins = ["ssh:root"]
auditors = ["ssh:carol"]

[quota]
running_per_person = 2
requests_per_minute = 1000

[[command]]
pattern = "say {text:text}"
help = "Repeat"
native = "echo"
allow = ["everyone"]

[[command]]
pattern = "nap {for:duration}"
help = "Sleep"
native = "sleep"
allow = ["everyone"]

[[command]]
pattern = "stop schedule {name:name}"
help = "Pause a schedule under another name"
builtin = "pause_schedule"
"#;

fn job_id(run: &octobox_tests::ssh::SshRun) -> String {
    let queued = Regex::new(&format!("queued as job ({UUID})")).unwrap();
    queued
        .captures(&run.stderr)
        .unwrap_or_else(|| panic!("no job id in {run:?}"))[1]
        .to_string()
}

#[test]
fn another_persons_job_shows_its_arguments_and_output_only_to_auditors() {
    let bot = SshBotSetup::new(&["alice", "bob", "carol"])
        .config(DECLARED)
        .start();
    let run = bot.exec("alice", "say deploy-token=ghp_abc123");
    assert_eq!(run.code, Some(0), "{run:?}");
    let id = job_id(&run);
    let own = bot.exec("alice", &format!("job {id}"));
    assert!(own.stdout.contains("ghp_abc123"), "{own:?}");
    let bob = bot.exec("bob", &format!("job {id}"));
    assert_eq!(bob.code, Some(0), "{bob:?}");
    assert!(
        !bob.stdout.contains("ghp_abc123"),
        "bob read alice's job: {bob:?}"
    );
    assert!(bob.stdout.contains("hidden"), "{bob:?}");
    assert!(bob.stdout.contains("asked by  ssh:alice"), "{bob:?}");
    let carol = bot.exec("carol", &format!("job {id}"));
    assert!(
        carol.stdout.contains("ghp_abc123"),
        "an auditor sees it: {carol:?}"
    );
}

#[test]
fn an_admin_built_in_under_another_pattern_still_needs_the_admins_group() {
    let bot = SshBotSetup::new(&["alice", "root"])
        .config(DECLARED)
        .start();
    let run = bot.exec("alice", "stop schedule nightly");
    assert_eq!(run.code, Some(3), "a non-admin paused a schedule: {run:?}");
    assert!(
        run.stderr.contains("for members of group admins"),
        "{run:?}"
    );
    let run = bot.exec("root", "stop schedule nightly");
    assert_ne!(run.code, Some(3), "an admin is let through: {run:?}");
}

#[test]
fn a_person_past_their_running_jobs_is_told_when_to_try_again_and_others_are_not() {
    let bot = SshBotSetup::new(&["alice", "bob"]).config(DECLARED).start();
    let lines: Vec<String> = ["nap 20s", "nap 20s", "nap 20s"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // Piped: the session waits for its jobs, so all three are asked while two run.
    let alice = std::thread::scope(|s| {
        let alice = s.spawn(|| bot.piped("alice", &lines));
        std::thread::sleep(Duration::from_secs(3));
        let bob = bot.exec("bob", "say still here");
        assert_eq!(
            bob.code,
            Some(0),
            "another person is not held back: {bob:?}"
        );
        alice.join().unwrap()
    });
    let all = format!("{}{}", alice.stdout, alice.stderr);
    assert_eq!(all.matches("queued as job").count(), 2, "{alice:?}");
    assert!(
        all.contains("you have 2 jobs queued or running, the most allowed at once; try again when one finishes"),
        "{alice:?}"
    );
}
