//! The embedded bot at its console, as a new user meets it: the real `octobox-bot`
//! binary, commands on standard input, answers on standard output.

use octobox_tests::console::{me, Console};
use regex::Regex;

/// The DNS server the worker's day-one tests use (this test needs only part of it).
#[path = "../../worker/tests/support/dns_server.rs"]
#[allow(dead_code)]
mod dns_server;

/// The WHOIS server of the same tests: fan-outs run `whois` on each host of a group.
#[path = "../../worker/tests/support/whois_server.rs"]
mod whois_server;

const UUID: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

/// A configuration with an access group, a guarded command and a typed one.
const OPS: &str = r#"
[acl]
default = "allow"

[acl.groups]
oncall = ["console:alice"]

[[command]]
pattern = "deploy {text:name}"
help = "Deploy a service"
section = "Deploys"
examples = ["deploy web"]
native = "echo"
allow = ["group:oncall"]

[[command]]
pattern = "add ip {addr:ip} to list {list:name}"
help = "Add an address to a block list"
section = "Network"
examples = ["add ip 10.0.0.1 to list blocked"]
# Only its wording is under test here: any runner will do.
builtin = "ping"

[[command]]
pattern = "nap {for:duration}"
help = "Sleep with a short leash"
native = "sleep"
timeout = "300ms"
"#;

/// [`OPS`] with `member` the one member of `oncall`.
fn ops(member: &str) -> String {
    OPS.replace("console:alice", member)
}

#[test]
fn sync_commands_answer_at_once() {
    let out = Console::new().run(&["ping", "version", "whoami"]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<_> = out.stdout.lines().collect();
    assert_eq!(lines[0], "pong");
    assert_eq!(lines[1], format!("octobox {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(lines[2], format!("you are {}, in no group", me()));
}

#[test]
fn an_async_job_is_queued_then_its_result_arrives_before_exit() {
    let out = Console::new().run(&["echo   Hello,  World"]);
    assert!(out.status.success(), "{out:?}");
    let queued = Regex::new(&format!("^queued as job ({UUID})$")).unwrap();
    let first = out.stdout.lines().next().unwrap_or_default();
    let id = &queued
        .captures(first)
        .unwrap_or_else(|| panic!("first line is not a queued notice: {}", out.stdout))[1];
    let result = Regex::new(&format!(
        r"(?m)^job {id} \(echo\) succeeded in \d+(ms|\.\ds):\nHello,  World$"
    ))
    .unwrap();
    assert!(result.is_match(&out.stdout), "{}", out.stdout);
}

#[test]
fn every_outstanding_job_is_waited_for_at_end_of_input() {
    let out = Console::new().run(&["sleep 300ms", "echo one", "sleep 100ms", "echo two"]);
    assert!(out.status.success(), "{out:?}");
    let text = &out.stdout;
    assert_eq!(text.matches("queued as job").count(), 4, "{text}");
    assert_eq!(text.matches(") succeeded in").count(), 4, "{text}");
    assert!(
        text.contains("(sleep) succeeded in") && text.contains("slept 300ms"),
        "{text}"
    );
    // The quick echo does not wait behind the sleeps.
    let one = text.find("\none").expect("echo one's result");
    let slept = text.find("slept 300ms").expect("sleep's result");
    assert!(one < slept, "{text}");
}

#[test]
fn unknown_text_gets_the_nearest_commands() {
    let out = Console::new().run(&["pnig", "fly me to the moon"]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<_> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("unknown command \"pnig\""),
        "{}",
        out.stdout
    );
    assert!(lines[0].contains("ping"), "{}", out.stdout);
    assert!(
        lines[1].starts_with("unknown command \"fly me to the moon\""),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].ends_with("Type \"help\" for the list."),
        "{}",
        out.stdout
    );
}

#[test]
fn a_bad_value_is_named_with_the_usage() {
    let out = Console::new()
        .config(OPS)
        .run(&["add ip 999.1.1.1 to list blocked", "sleep forever"]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<_> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "\"999.1.1.1\" is not an IP address — usage: add ip {addr} to list {list}"
    );
    assert!(
        lines[1].starts_with("\"forever\" is not a duration"),
        "{}",
        out.stdout
    );
    assert!(lines[1].ends_with("usage: sleep {for}"), "{}", out.stdout);
}

#[test]
fn literals_ignore_case_and_values_keep_theirs() {
    let out = Console::new()
        .config(&ops(&me()))
        .run(&["DEPLOY  Web-Frontend?"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("(deploy) succeeded in") && out.stdout.contains("\nWeb-Frontend"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_refused_user_is_told_which_group_allows() {
    let out = Console::new().config(OPS).run(&["deploy web"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        format!(
            "{} may not run \"deploy\": members of group oncall may; ask to be added to it",
            me()
        )
    );
    let out = Console::new()
        .config(&ops(&me()))
        .run(&["deploy web", "whoami"]);
    assert!(out.stdout.contains("queued as job"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("you are {}, in groups: oncall", me())),
        "{}",
        out.stdout
    );
}

#[test]
fn the_console_is_the_account_it_runs_as_whatever_user_the_environment_names() {
    // Anyone can set $USER; only the account of the process's user id is trusted.
    assert_ne!(
        me(),
        "console:alice",
        "run the tests as someone other than alice"
    );
    let out = Console::new()
        .config(OPS)
        .env("LOGNAME", "alice")
        .run(&["whoami", "deploy web"]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<_> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("you are {}, in no group", me()),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].starts_with(&format!("{} may not run \"deploy\"", me())),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("queued as job"), "{}", out.stdout);
}

#[test]
fn a_job_past_its_timeout_says_so() {
    let out = Console::new().config(OPS).run(&["nap 10s"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        Regex::new(&format!(r"(?m)^job {UUID} \(nap\) timed out after 300ms$"))
            .unwrap()
            .is_match(&out.stdout),
        "{}",
        out.stdout
    );
}

#[test]
fn help_lists_sections_and_explains_one_command() {
    let out = Console::new().config(OPS).run(&[
        "help",
        "help add ip",
        "explain deploy web",
        "help frobnicate",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = &out.stdout;
    for section in ["Built-in", "Jobs", "Tasks", "Deploys", "Network"] {
        assert!(
            text.contains(section),
            "help lacks section {section}:\n{text}"
        );
    }
    assert!(text.contains("add ip {addr} to list {list}"), "{text}");
    assert!(
        text.contains("add ip 10.0.0.1 to list blocked"),
        "help add ip shows examples:\n{text}"
    );
    assert!(text.contains("Add an address to a block list"), "{text}");
    assert!(
        text.contains("text (a name) = web"),
        "explain shows the argument:\n{text}"
    );
    assert!(
        text.contains("no command starts with \"frobnicate\""),
        "{text}"
    );
    assert!(
        !text.contains("queued as job"),
        "explain must not run anything:\n{text}"
    );
}

#[test]
fn jobs_and_job_show_the_history() {
    let console = Console::new();
    let mut session = console.start();
    session.send("echo remember me");
    let queued = session.expect("queued", |l| l.starts_with("queued as job "));
    let id = queued.trim_start_matches("queued as job ").to_string();
    session.expect("with echo's result", |l| l == "remember me");

    session.send("jobs");
    let row = session.expect("listing the job", |l| l.starts_with(&id));
    assert!(
        row.contains("echo") && row.contains("succeeded") && row.contains(&me()),
        "{row}"
    );

    session.send(&format!("job {id}"));
    session.expect("with the status", |l| l == "status    succeeded");
    session.expect("with the output", |l| l == "remember me");

    session.send("job 0192f0c1-7a3e-7cc2-9d1e-2b8f0e6c1a55");
    session.expect("saying the job is unknown", |l| {
        l.starts_with("no job 0192f0c1")
    });
    let out = session.finish();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_console_says_jobs_are_not_durable_in_embedded_mode() {
    let out = Console::new().run(&[]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.contains("embedded mode"), "{}", out.stderr);
    assert!(out.stderr.contains("lost when it stops"), "{}", out.stderr);
}

#[test]
fn a_configuration_error_names_file_line_and_key() {
    let bad = "[acl.groups]\nops = [\"console:root\"]\n\n[[command]]\npattern = \"deploy {s:name}\"\nhelp = \"Deploy\"\nnative = \"echo\"\nallow = [\"group:oncall\"]\n\n[worker]\nconcurrency = 0\n";
    let console = Console::new().config(bad);
    let path = console.config_path();

    let checked = console.check_config();
    assert!(!checked.status.success(), "{checked:?}");
    assert!(
        checked.stderr.contains(&format!(
            "{path}:4: command[1].allow: group \"oncall\" is not declared in [acl.groups] (declared: ops)"
        )),
        "{}",
        checked.stderr
    );
    assert!(
        checked.stderr.contains(&format!(
            "{path}:11: worker.concurrency: 0 is not a whole number"
        )),
        "{}",
        checked.stderr
    );

    // Starting with it fails the same way, before reading any command.
    let out = console.run(&["ping"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains(&format!("{path}:4: command[1].allow")),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("pong"));
}

#[test]
fn a_missing_secret_is_named_but_never_printed() {
    let console = Console::new()
        .config("[broker]\nurl = \"amqp://ops:${OCTOBOX_TEST_PW}@mq:5672\"\n[store]\nurl = \"redis://r\"\n")
        .env("OCTOBOX_TEST_PW_OTHER", "hunter2");
    let checked = console.check_config();
    assert!(!checked.status.success());
    assert!(
        checked
            .stderr
            .contains("environment variable OCTOBOX_TEST_PW is not set"),
        "{}",
        checked.stderr
    );
}

#[test]
fn the_example_configuration_is_valid() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose/octobox.example.toml");
    let text = std::fs::read_to_string(&example).expect("compose/octobox.example.toml exists");
    let checked = Console::new().config(&text).check_config();
    assert!(checked.status.success(), "{checked:?}");
    assert!(checked.stdout.contains("valid"), "{}", checked.stdout);
}

#[test]
fn on_a_terminal_there_is_a_prompt_line_editing_and_history() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    // `script` gives the bot a pseudo-terminal, as a person's terminal would.
    let bot = octobox_tests::binary::path("octobox-bot");
    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!("{} --console", bot.display()),
            "/dev/null",
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script(1) runs the bot on a pseudo-terminal");
    let mut keyboard = child.stdin.take().unwrap();
    let typist = std::thread::spawn(move || {
        // Typed like a person: a command, Up-arrow and Enter to repeat it, a job, Ctrl-D.
        for keys in ["ping\r", "\x1b[A", "\r", "echo on a terminal\r", "\x04"] {
            std::thread::sleep(Duration::from_millis(700));
            keyboard.write_all(keys.as_bytes()).unwrap();
            keyboard.flush().unwrap();
        }
        std::thread::sleep(Duration::from_millis(700));
    });
    let mut raw = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut raw)
        .unwrap();
    typist.join().unwrap();
    assert!(child.wait().unwrap().success());
    let screen = Regex::new(r"\x1b\[[0-9;?]*[a-zA-Z]")
        .unwrap()
        .replace_all(&raw, "")
        .replace('\r', "");
    assert!(screen.contains("Octobox "), "a greeting:\n{screen}");
    assert!(
        screen.contains("octobox> ping\npong"),
        "a prompt:\n{screen}"
    );
    assert_eq!(
        screen.matches("pong").count(),
        2,
        "Up-arrow recalled ping:\n{screen}"
    );
    assert!(
        screen.contains("(echo) succeeded") && screen.contains("on a terminal"),
        "the job's result is shown:\n{screen}"
    );
}

#[test]
fn a_configured_command_without_allow_or_default_is_refused_at_check() {
    let text =
        "[[command]]\npattern = \"deploy {text:name}\"\nhelp = \"Deploy\"\nnative = \"echo\"\n";
    let out = Console::new().config(text).check_config();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("command[1].allow: is missing, and [acl] states no default"),
        "{out:?}"
    );
    let stated = format!("[acl]\ndefault = \"deny\"\n\n{text}");
    let out = Console::new().config(&stated).check_config();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn more_piped_jobs_than_the_store_keeps_each_get_their_reply() {
    // More jobs than the embedded store keeps records of once replied, piped at once.
    // Every line is answered: queued (then its result, never lost) or, once one person
    // holds the most places the quota allows (10,000) because the worker is behind,
    // refused with when to try again.
    const JOBS: usize = 20_000;
    let console = Console::new().config("");
    let mut bot = console.start();
    for i in 0..JOBS {
        bot.send(&format!("echo n{i}"));
    }
    let out = bot.finish_within(std::time::Duration::from_secs(300));
    assert!(out.status.success(), "{}", out.stderr);
    let queued: std::collections::HashSet<&str> =
        Regex::new(&format!("(?m)^queued as job ({UUID})$"))
            .unwrap()
            .captures_iter(&out.stdout)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
    let refused = out
        .stdout
        .lines()
        .filter(|l| l.contains("jobs queued or running"))
        .count();
    assert_eq!(queued.len() + refused, JOBS, "a line went unanswered");
    assert!(
        queued.len() > 10_000,
        "only {} jobs were queued: not more than the store keeps",
        queued.len()
    );
    let replied: std::collections::HashSet<&str> = Regex::new(&format!(
        r"(?m)^job ({UUID}) \(echo\) succeeded in [^:]+:\nn\d+$"
    ))
    .unwrap()
    .captures_iter(&out.stdout)
    .map(|c| c.get(1).unwrap().as_str())
    .collect();
    let lost: Vec<&&str> = queued.difference(&replied).collect();
    assert!(
        lost.is_empty(),
        "{} of {} queued jobs never got their reply, e.g. {:?}; stderr:\n{}",
        lost.len(),
        queued.len(),
        &lost[..lost.len().min(3)],
        out.stderr
    );
}

#[test]
fn day_one_commands_are_there_by_default_and_can_be_switched_off() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(dns_server::DnsServer::start(
        dns_server::Behaviour::Records(vec![dns_server::a("www.example.test.", 300, "192.0.2.1")]),
    ));
    // No command declared, access denied by default: the day-one commands are there
    // all the same, each with its own allow list; whois is switched off.
    let config = format!(
        "[acl]\ndefault = \"deny\"\n\n[tasks.dns]\nresolvers = [\"local={}\"]\n\n[tasks.whois]\nenabled = false\n",
        server.addr
    );
    let out = Console::new().config(&config).run(&[
        "dns www.example.test",
        "whois example.com",
        "help dns",
    ]);
    assert!(out.status.success(), "{out:?}");
    let result = Regex::new(&format!(
        r"(?m)^job {UUID} \(dns\) succeeded in \d+(ms|\.\ds):\nA records of www\.example\.test\nresolver +answer +TTL +took\nlocal +192\.0\.2\.1 +300s +\S+ (µs|ms)$"
    ))
    .unwrap();
    assert!(result.is_match(&out.stdout), "{}", out.stdout);
    assert!(
        out.stdout.contains("unknown command \"whois example.com\""),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("dns {name} [{type}]"), "{}", out.stdout);

    // A command of the file's own that runs a switched-off task is refused, with its line.
    let own = format!(
        "{config}\n[[command]]\npattern = \"who is {{q:word}}\"\nhelp = \"WHOIS\"\nnative = \"whois\"\nallow = [\"everyone\"]\n"
    );
    let console = Console::new().config(&own);
    let checked = console.check_config();
    assert!(!checked.status.success(), "{checked:?}");
    assert!(
        checked.stderr.contains(&format!(
            "{}:10: command[1]: native task \"whois\" is switched off in this file ([tasks.whois] enabled = false)",
            console.config_path()
        )),
        "{}",
        checked.stderr
    );
}

#[test]
fn the_inventory_answers_servers_in_group_and_only_admins_change_it() {
    let admins = format!(
        "[acl]\ndefault = \"allow\"\n\n[acl.groups]\nadmins = [\"{}\"]\n",
        me()
    );
    let out = Console::new().config(&admins).run(&[
        "servers in group web",
        "inventory add web-1 to web",
        "inventory add web-2.example.com to web",
        "inventory add web-1 to eu",
        "servers in group web",
        "inventory",
        "inventory show web-1",
        "inventory remove web-1 from eu",
        "inventory remove web-2.example.com",
        "servers in group web",
        "inventory add web;reboot to web",
        "inventory show ghost",
        "inventory remove web-1 from db",
        "inventory show web;x",
    ]);
    assert!(out.status.success(), "{out:?}");
    let expected = [
        "group web has no hosts (\"inventory add <host> to web\" adds one; \"inventory\" lists the groups)",
        "host web-1 is in group web (its groups: web)",
        "host web-2.example.com is in group web (its groups: web)",
        "host web-1 is in group eu (its groups: eu, web)",
        "group web: 2 hosts\nweb-1\nweb-2.example.com",
        "GROUP  HOSTS\neu     1\nweb    2",
        "host web-1\ngroups: eu, web",
        "host web-1 is out of group eu (still in: web)",
        "host web-2.example.com is removed from the inventory and from its groups (web)",
        "group web: 1 host\nweb-1",
        "\"web;reboot\" is not a host name: letters, digits and . - _ : only, not starting with -",
        "host ghost is not in the inventory (\"inventory add ghost to <group>\" adds it)",
        "host web-1 is not in group db",
        "\"web;x\" is not a host name: letters, digits and . - _ : only, not starting with -",
    ];
    let mut rest = out.stdout.as_str();
    for answer in expected {
        let at = rest
            .find(answer)
            .unwrap_or_else(|| panic!("{answer:?} not found, in order, in:\n{}", out.stdout));
        rest = &rest[at + answer.len()..];
    }

    // Without the admins group, the inventory is read but not changed.
    let out = Console::new().run(&["inventory add web-1 to web", "servers in group web"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "{} may not run \"inventory add to\": it is for members of group admins; ask to be added to it",
            me()
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("group web has no hosts"),
        "{}",
        out.stdout
    );
}

/// A configuration whose `whois group <group>` runs `whois` once per host of the group,
/// against `server`, giving up after `timeout`; the console's user is an admin.
fn fan_out_config(server: std::net::SocketAddr, timeout: &str) -> String {
    format!(
        r#"[acl]
default = "allow"

[acl.groups]
admins = ["{me}"]

[tasks.whois]
server = "{server}"
timeout = "{timeout}"

[[command]]
pattern = "whois group {{group:name}}"
help = "Look up every host of a group in WHOIS"
native = "whois"
fan_out = {{ group = "group", host = "query" }}
"#,
        me = me()
    )
}

/// A WHOIS server that answers every query but those for `silent…` names.
fn whois_server(runtime: &tokio::runtime::Runtime) -> whois_server::WhoisServer {
    runtime.block_on(whois_server::WhoisServer::start(|q| {
        (!q.starts_with("silent"))
            .then(|| format!("Domain Name: {q}\nRegistrar: Example Registrar\n"))
    }))
}

#[test]
fn a_command_fans_out_over_a_group_and_answers_with_one_summary() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = whois_server(&runtime);
    let out = Console::new()
        .config(&fan_out_config(server.addr, "1s"))
        .run(&[
            "whois group sites",
            "inventory add a.example to sites",
            "inventory add b.example to sites",
            "inventory add silent.example to sites",
            "whois group sites",
        ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("group sites has no hosts"),
        "an empty group is told: {}",
        out.stdout
    );
    let queued = Regex::new(&format!(
        r"(?m)^queued as job ({UUID}): one job for each of the 3 hosts of group sites; one summary comes when they have all ended$"
    ))
    .unwrap();
    let id = queued
        .captures(&out.stdout)
        .unwrap_or_else(|| panic!("{}", out.stdout))[1]
        .to_string();
    let summary = [
        format!(
            r"(?m)^job {id} \(whois group\) failed after [^:]+: 3/3 done: 1 failed, 2 succeeded"
        ),
        r"HOST +STATUS +RESULT".to_string(),
        r"a\.example +succeeded +whois a\.example …".to_string(),
        r"b\.example +succeeded +whois b\.example …".to_string(),
        r"silent\.example +failed +\S+ did not finish answering within 1s$".to_string(),
    ];
    let summary = Regex::new(&summary.join("\n")).unwrap();
    assert!(summary.is_match(&out.stdout), "{}", out.stdout);
    // One reply for the fan-out, none for each host.
    assert_eq!(
        out.stdout.matches("(whois group) ").count(),
        1,
        "{}",
        out.stdout
    );
    // Each host was asked once.
    let mut asked = server.queries.lock().unwrap().clone();
    asked.sort();
    assert_eq!(
        asked,
        ["a.example\r\n", "b.example\r\n", "silent.example\r\n"]
    );
}

#[test]
fn cancelling_a_fan_out_cancels_its_jobs() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = whois_server(&runtime);
    let console = Console::new().config(&fan_out_config(server.addr, "60s"));
    let mut bot = console.start();
    for host in ["silent-1.example", "silent-2.example"] {
        bot.send(&format!("inventory add {host} to slow"));
        bot.expect("added", |l| {
            l.starts_with(&format!("host {host} is in group slow"))
        });
    }
    bot.send("whois group slow");
    let queued = bot.expect("queued", |l| l.starts_with("queued as job "));
    let id = queued["queued as job ".len()..][..36].to_string();
    // Both hosts are being asked (and wait for an answer that never comes).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.queries.lock().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the hosts were never asked"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    bot.send(&format!("cancel {id}"));
    bot.expect("cancel sent", |l| {
        l.starts_with(&format!("cancelling job {id}"))
    });
    let summary = bot.expect("the summary", |l| {
        l.starts_with(&format!("job {id} (whois group)"))
    });
    assert!(summary.contains("failed after"), "{summary}");
    assert!(summary.ends_with("2/2 done: 2 cancelled"), "{summary}");
    bot.expect("the table", |l| l.starts_with("HOST"));
    for _ in 0..2 {
        let row = bot.expect("a host's row", |l| l.starts_with("silent-"));
        assert!(row.contains("cancelled"), "{row}");
    }
    let out = bot.finish();
    assert!(out.status.success(), "{out:?}");
}
