//! Containerized tasks against the real Docker engine: commands declared in configuration
//! alone, run by the embedded bot's worker in containers built from a local test image.
//! Every scenario also checks that no container of its jobs is left behind.

use octobox_tests::console::{me, Console};
use octobox_tests::containers::{
    containers_of, missing_image, probe_image, probe_image_as, wait_for_container_of,
};
use regex::Regex;

/// Commands over the probe image, one per behaviour under test.
fn commands() -> String {
    let image = probe_image();
    let missing = missing_image();
    let me = octobox_tests::console::me();
    format!(
        r#"
[acl]
default = "allow"

[acl.groups]
admins = ["{me}"]

[[command]]
pattern = "say {{words:text}}"
help = "Print each argument on its own line"
container = {{ image = "{image}", argv = ["args", "{{words}}"] }}

[[command]]
pattern = "login {{user:word}} with {{token:secret}}"
help = "Use a secret"
container = {{ image = "{image}", argv = ["reveal", "{{token}}"], env = {{ TOKEN = "{{token}}" }} }}

[[command]]
pattern = "tag {{label:text}}"
help = "Print an environment variable made from the argument"
container = {{ image = "{image}", argv = ["env", "LABEL"], env = {{ LABEL = "<{{label}}>" }} }}

[[command]]
pattern = "picture"
help = "Draw a picture"
container = {{ image = "{image}", argv = ["png"], output = "base64" }}

[[command]]
pattern = "fail with {{code:int}}"
help = "Fail with an exit status"
container = {{ image = "{image}", argv = ["fail", "{{code}}"] }}

[[command]]
pattern = "nap {{secs:int}}"
help = "Sleep, with a one-second leash"
container = {{ image = "{image}", argv = ["sleep", "{{secs}}"], timeout = "1s" }}

[[command]]
pattern = "vanish for {{secs:int}}"
help = "Close the output, then sleep, with a one-second leash"
container = {{ image = "{image}", argv = ["vanish", "{{secs}}"], timeout = "1s" }}

[[command]]
pattern = "doze {{secs:int}}"
help = "Sleep"
container = {{ image = "{image}", argv = ["sleep", "{{secs}}"] }}

[[command]]
pattern = "reach port {{port:int}}"
help = "Connect to the Docker host"
container = {{ image = "{image}", argv = ["connect", "{{port}}"] }}

[[command]]
pattern = "reach port {{port:int}} over the bridge"
help = "Connect to the Docker host, with a network"
container = {{ image = "{image}", argv = ["connect", "{{port}}"], network = "bridge" }}

[[command]]
pattern = "hog {{mib:int}}"
help = "Allocate memory"
container = {{ image = "{image}", argv = ["alloc", "{{mib}}"], memory = "16m" }}

[[command]]
pattern = "spew {{bytes:int}}"
help = "Write bytes to stdout"
container = {{ image = "{image}", argv = ["spew", "{{bytes}}"], output_limit = "1k" }}

[[command]]
pattern = "identity"
help = "Say who and where the container is"
container = {{ image = "{image}", argv = ["identity"] }}

[[command]]
pattern = "identity with net raw"
help = "Say who and where the container is, with one capability back"
container = {{ image = "{image}", argv = ["identity"], capabilities = ["NET_RAW"] }}

[[command]]
pattern = "ghost"
help = "Run an image nobody built"
container = {{ image = "{missing}" }}
"#
    )
}

/// The job ids of the "queued as job …" lines, in order.
fn job_ids(stdout: &str) -> Vec<String> {
    let queued = Regex::new(r"(?m)^queued as job ([0-9a-f-]{36})$").unwrap();
    queued
        .captures_iter(stdout)
        .map(|c| c[1].to_string())
        .collect()
}

/// Runs `lines` through an embedded bot with [`commands`] and checks that every job's
/// container is gone afterwards; returns what the bot printed.
fn run(lines: &[&str]) -> String {
    let out = Console::new().config(&commands()).run(lines);
    assert!(out.status.success(), "{out:?}");
    let ids = job_ids(&out.stdout);
    assert!(!ids.is_empty(), "no job was queued:\n{}", out.stdout);
    for id in ids {
        assert_eq!(
            containers_of(&id),
            Vec::<String>::new(),
            "job {id} left a container behind"
        );
    }
    out.stdout
}

#[test]
fn a_text_result_is_the_answer() {
    let out = run(&["say hello,  world"]);
    assert!(
        Regex::new(r"\(say\) succeeded in \d+(ms|\.\ds):\n\[hello,  world\]\n?$")
            .unwrap()
            .is_match(&out),
        "{out}"
    );
}

#[test]
fn a_secret_argument_reaches_its_container_and_shows_nowhere_else() {
    let secret = "hunter2-s3cret";
    let bot = Console::new().config(&commands());
    let mut console = bot.start();
    console.send(&format!("explain login alice with {secret}"));
    console.send(&format!("login alice with {secret}"));
    let queued = console.expect("the job id", |l| l.starts_with("queued as job "));
    let id = queued
        .trim()
        .trim_start_matches("queued as job ")
        .to_string();
    // The program got the text itself: reversed, it is not masked.
    console.expect("the reversed secret", |l| l == "reversed: terc3s-2retnuh");
    console.send(&format!("job {id}"));
    let details = console.expect("the job's arguments", |l| l.contains("token="));
    assert!(details.contains("token=***"), "{details}");
    let out = console.finish();
    // Wherever the program printed it, the answer shows the mask.
    assert!(out.stdout.contains("as given: ***"), "{}", out.stdout);
    for (what, text) in [("stdout", &out.stdout), ("stderr (the log)", &out.stderr)] {
        assert!(
            !text.contains(secret),
            "the secret shows in the {what}:\n{text}"
        );
    }
}

#[test]
fn an_argument_reaches_the_container_as_one_literal_argument() {
    let out = run(&["say ; rm -rf / && echo $(id) `whoami` 'q' \"dq\""]);
    assert!(
        out.contains("\n[; rm -rf / && echo $(id) `whoami` 'q' \"dq\"]"),
        "{out}"
    );
}

#[test]
fn an_argument_reaches_an_environment_variable_as_one_literal_value() {
    let out = run(&["tag $(reboot); echo \"$HOME\""]);
    assert!(out.contains("\n<$(reboot); echo \"$HOME\">"), "{out}");
}

#[test]
fn a_base64_png_is_delivered_as_a_file() {
    let out = run(&["picture"]);
    assert!(
        Regex::new(r"\(picture\) succeeded in \d+(ms|\.\ds): file output\.png \(image/png, 70 B\)")
            .unwrap()
            .is_match(&out),
        "{out}"
    );
}

#[test]
fn a_non_zero_exit_is_reported_with_the_last_stderr_lines() {
    let out = run(&["fail with 3"]);
    assert!(
        out.contains("(fail with) failed after",)
            && out.contains(
                "its container exited with status 3; its last lines on stderr:\n\
             step 1 of 2: reading the input\nstep 2 of 2: the input is not a report"
            ),
        "{out}"
    );
}

#[test]
fn a_container_past_its_timeout_is_killed_and_removed() {
    let out = run(&["nap 30", "vanish for 30"]);
    for command in ["nap", "vanish for"] {
        assert!(
            out.contains(&format!(
                "({command}) timed out after 1s; its container was stopped and removed"
            )),
            "{out}"
        );
    }
}

#[test]
fn the_network_is_off_unless_the_command_asks_for_one() {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("a free port");
    let port = listener.local_addr().unwrap().port();
    let out = run(&[
        &format!("reach port {port}"),
        &format!("reach port {port} over the bridge"),
    ]);
    assert!(
        out.contains("(reach port) succeeded in")
            && out.contains("no network: no route out of the container"),
        "{out}"
    );
    assert!(
        Regex::new(r"\(reach port over the bridge\) succeeded in .*:\nconnected to ")
            .unwrap()
            .is_match(&out),
        "{out}"
    );
}

#[test]
fn a_container_runs_as_nobody_without_capabilities_on_a_read_only_root() {
    let out = run(&["identity", "identity with net raw"]);
    // NET_RAW is bit 13: given back, it is in the bounding set (not effective for nobody).
    assert!(
        Regex::new(r"\(identity with net raw\) succeeded in .*:\nUid: 65534\nCapEff: 0000000000000000\nCapBnd: 0000000000002000\n")
            .unwrap()
            .is_match(&out),
        "{out}"
    );
    assert!(
        out.contains("Uid: 65534\nCapEff: 0000000000000000\nCapBnd: 0000000000000000\nroot not writable: Read-only file system (os error 30)\ntmp writable"),
        "{out}"
    );
}

/// An image may ask for root in its `USER`; whatever the spelling of uid 0, its container
/// runs as nobody.
#[test]
fn an_image_that_asks_for_root_in_any_spelling_runs_as_nobody() {
    let spellings = [
        ("a", "root:root"),
        ("b", "0:1"),
        ("c", "00"),
        ("d", "root:0"),
    ];
    let mut config = String::new();
    for (name, user) in spellings {
        config.push_str(&format!(
            "[[command]]\npattern = \"identity {name}\"\nhelp = \"Who the image runs as\"\n\
             container = {{ image = \"{}\", argv = [\"identity\"] }}\nallow = [\"everyone\"]\n\n",
            probe_image_as(user)
        ));
    }
    let lines: Vec<String> = spellings
        .iter()
        .map(|(name, _)| format!("identity {name}"))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = Console::new().config(&config).run(&lines);
    assert!(out.status.success(), "{out:?}");
    for (name, user) in spellings {
        assert!(
            Regex::new(&format!(
                r"\(identity {name}\) succeeded in .*:\nUid: 65534\n"
            ))
            .unwrap()
            .is_match(&out.stdout),
            "USER {user} ran as root:\n{}",
            out.stdout
        );
    }
}

/// `say --help` must not reach the program as an option: a value that starts with `-` is
/// refused for a slot that reaches argv, and no job is queued.
#[test]
fn a_value_that_looks_like_an_option_never_reaches_argv() {
    let out = Console::new().config(&commands()).run(&["say --help"]);
    assert!(
        out.stdout.contains(
            "\"--help\" starts with \"-\" and would reach the program as an option; this \
             command does not take such values"
        ),
        "{out:?}"
    );
    assert!(job_ids(&out.stdout).is_empty(), "{}", out.stdout);
}

/// Whoever can publish to RabbitMQ cannot choose what a worker runs: a job for a
/// configured command whose task asks for the host's network, root, capabilities and a
/// writable root is refused unrun, and so is a job naming a command the worker's
/// configuration does not have.
#[test]
fn a_forged_container_job_is_refused_and_never_runs() {
    use config::{ContainerLimits, Secret, StoreConfig};
    use jobs::rabbit::RabbitBroker;
    use jobs::redis::RedisStore;
    use jobs::{Broker, Job, JobRecord, Origin, Store, Task};
    use octobox_tests::pipeline::{Options, Pipeline};
    use std::collections::BTreeMap;
    use std::time::Duration;

    let p = Pipeline::start(Options {
        extra: commands(),
        ..Options::default()
    });
    let _worker = p.worker("worker-a");
    let task = Task::Container {
        image: probe_image().to_string(),
        argv: vec!["identity".into()],
        env: BTreeMap::new(),
        limits: ContainerLimits {
            network: Some("host".into()),
            user: Some("0:0".into()),
            capabilities: vec!["SYS_ADMIN".into(), "NET_ADMIN".into()],
            read_only: false,
            ..ContainerLimits::default()
        },
    };
    let mut args = BTreeMap::new();
    args.insert("words".to_string(), lexicon::Value::Text("hello".into()));
    let mallory = Origin::new("console", "mallory");
    let forged = Job::new(
        "say",
        args,
        task.clone(),
        mallory.clone(),
        Duration::from_secs(60),
    );
    let unknown = Job::new(
        "pwn",
        BTreeMap::new(),
        task,
        mallory,
        Duration::from_secs(60),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let [forged, unknown]: [JobRecord; 2] = runtime.block_on(async {
        // A process that holds the signing key (a compromised bot, say): the worker still
        // runs only what its own configuration declares.
        let broker = RabbitBroker::connect(&p.broker_config()).await.unwrap();
        let store = RedisStore::connect(&StoreConfig::new(Secret::new(p.redis.url())))
            .await
            .unwrap();
        broker.publish(&forged).await.unwrap();
        broker.publish(&unknown).await.unwrap();
        let finished = |id| {
            let store = &store;
            async move {
                loop {
                    match store.job(id).await.unwrap() {
                        Some(r) if r.status.is_final() => return r,
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        };
        tokio::time::timeout(octobox_tests::console::PATIENCE, async {
            [finished(forged.id).await, finished(unknown.id).await]
        })
        .await
        .expect("the worker answers both jobs")
    });
    for (record, said) in [
        (&forged, "was not run: what it asks for is not what this worker's configuration declares for \"say\""),
        (&unknown, "this worker's configuration has no command \"pwn\", so it did not run it"),
    ] {
        let result = record.result.as_ref().expect("a result");
        assert_eq!(record.status, jobs::JobStatus::Failed, "{result:?}");
        assert!(
            result.error.as_deref().unwrap_or("").starts_with(said),
            "{result:?}"
        );
        assert_eq!(result.output, jobs::Output::Empty, "it ran: {result:?}");
    }
}

#[test]
fn the_memory_limit_is_enforced() {
    let out = run(&["hog 64"]);
    assert!(
        out.contains("(hog) failed after")
            && out
                .contains("its container ran out of memory (the limit is 16 MiB) and was stopped"),
        "{out}"
    );
}

#[test]
fn output_past_the_limit_is_cut_with_a_note() {
    let out = run(&["spew 5000"]);
    let kept = format!(
        "{}\n[output cut: it passed the 1 KiB limit for this command]",
        "x".repeat(1024)
    );
    assert!(out.contains(&kept), "{out}");
    assert!(!out.contains(&"x".repeat(1025)), "{out}");
}

#[test]
fn a_missing_image_is_named_and_the_worker_keeps_serving() {
    let out = run(&["ghost", "say still here"]);
    let missing = missing_image();
    assert!(
        out.contains("(ghost) failed after") && out.contains(&format!(
            "image \"{missing}\" is not on this worker's Docker engine, and this command does not pull images"
        )),
        "{out}"
    );
    assert!(out.contains("\n[still here]"), "{out}");
}

#[test]
fn an_engine_that_does_not_answer_is_named_and_native_jobs_still_run() {
    let out = Console::new()
        .config(&commands())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run(&["say hello", "echo native"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("(say) failed after")
            && out
                .stdout
                .contains("the Docker engine at unix:///nonexistent/docker.sock does not answer: "),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(echo) succeeded in"), "{}", out.stdout);
}

#[test]
fn cancel_stops_a_running_container_and_says_who() {
    let console = Console::new().config(&commands());
    let mut bot = console.start();
    bot.send("doze 60");
    let queued = bot.expect("queued", |l| l.starts_with("queued as job "));
    let id = queued.trim_start_matches("queued as job ").to_string();
    wait_for_container_of(&id);
    bot.send(&format!("cancel {id}"));
    bot.expect("the cancel acknowledged", |l| {
        l == format!("cancelling job {id}; its result will say who cancelled it")
    });
    bot.expect("the cancelled result", |l| {
        l == format!("job {id} (doze) was cancelled by {}", me())
    });
    assert_eq!(containers_of(&id), Vec::<String>::new());
    bot.send(&format!("cancel {id}"));
    bot.expect("a second cancel", |l| {
        l == format!("job {id} has already been cancelled; there is nothing to cancel")
    });
    let out = bot.finish();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn cancel_stops_a_native_job_too() {
    let mut bot = Console::new().start();
    bot.send("sleep 1m");
    let queued = bot.expect("queued", |l| l.starts_with("queued as job "));
    let id = queued.trim_start_matches("queued as job ").to_string();
    bot.send(&format!("cancel {id}"));
    bot.expect("the cancelled result", |l| {
        l == format!("job {id} (sleep) was cancelled by {}", me())
    });
    let out = bot.finish();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn reload_adds_a_command_that_then_runs_and_a_bad_file_changes_nothing() {
    let image = probe_image();
    let base = commands();
    let console = Console::new().config(&base);
    let mut bot = console.start();
    bot.send("greet the team");
    bot.expect("greet is unknown", |l| {
        l.starts_with("unknown command \"greet the team\"")
    });

    let greet = format!(
        "{base}\n[[command]]\npattern = \"greet {{who:text}}\"\nhelp = \"Greet\"\n\
         container = {{ image = \"{image}\", argv = [\"args\", \"hello\", \"{{who}}\"] }}\n"
    );
    console.replace_config(&greet);
    bot.send("reload");
    bot.expect("reloaded", |l| {
        l.starts_with("reloaded ") && l.ends_with("(16 configured) answer from now on")
    });
    bot.send("greet the team");
    bot.expect("the new command's result", |l| {
        l.contains("(greet) succeeded in")
    });
    bot.expect("its first argument", |l| l == "[hello]");
    bot.expect("its second argument", |l| l == "[the team]");

    let broken = format!(
        "{greet}\n[[command]]\npattern = \"wave\"\nhelp = \"Wave\"\n\
         container = {{ image = \"{image}\", argv = [\"{{hand}}\"], memory = \"huge\" }}\n"
    );
    console.replace_config(&broken);
    bot.send("reload");
    bot.expect("refused", |l| {
        l == "reload refused, the running commands stay as they were; 1 configuration error:"
    });
    bot.expect("the bad size", |l| {
        l.contains("command[17].container.memory: \"huge\" is not a size")
    });
    bot.send("greet again");
    bot.expect("the old catalog still answers", |l| l == "[again]");
    let out = bot.finish();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn sighup_reloads_and_only_admins_may_reload() {
    let image = probe_image();
    // The person at this console is not an admin; the signal is the operator's way.
    let commands = || commands().replace(&me(), "console:someone-else");
    let console = Console::new().config(&commands());
    let mut bot = console.start();
    bot.send("reload");
    bot.expect("refused", |l| {
        l == format!(
            "{} may not run \"reload\": it is for members of group admins; ask to be added to it",
            me()
        )
    });
    console.replace_config(&format!(
        "{}\n[[command]]\npattern = \"wave\"\nhelp = \"Wave\"\n\
         container = {{ image = \"{image}\", argv = [\"args\", \"o/\"] }}\n",
        commands()
    ));
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &bot.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(hup.success());
    // The signal is handled in the background: ask until the new command is known.
    let deadline = std::time::Instant::now() + octobox_tests::console::PATIENCE;
    loop {
        bot.send("wave");
        let answer = bot.expect("an answer to wave", |_| true);
        if answer.starts_with("queued as job ") {
            break;
        }
        assert!(
            answer.starts_with("unknown command \"wave\"") && std::time::Instant::now() < deadline,
            "SIGHUP did not reload: {answer}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    bot.expect("the new command's result", |l| l == "[o/]");
    let out = bot.finish();
    assert!(out.status.success(), "{out:?}");
}

/// The durable path: a worker process takes container jobs from RabbitMQ, says so in its
/// heartbeat, records stderr lines as rate-limited progress events in Redis, and hears a
/// `cancel` broadcast by the bot.
#[test]
fn a_worker_process_runs_containers_reports_progress_and_hears_cancel() {
    use octobox_tests::pipeline::{wait_until, Options, Pipeline};
    let p = Pipeline::start(Options {
        extra: format!(
            "{}\n[[command]]\npattern = \"chatter\"\nhelp = \"Write 50 lines to stderr\"\n\
             container = {{ image = \"{image}\", argv = [\"progress\", \"50\", \"0\"] }}\n\
             \n[[command]]\npattern = \"flood\"\nhelp = \"Write 200 MiB to stderr without a newline\"\n\
             container = {{ image = \"{image}\", argv = [\"flood\", \"200\"] }}\n",
            commands(),
            image = probe_image()
        ),
        ..Options::default()
    });
    let worker = p.worker("worker-a");
    let mut bot = p.console.start();
    wait_until(
        "worker-a to report container jobs",
        octobox_tests::console::PATIENCE,
        || {
            bot.send("workers");
            let row = bot.expect("the workers table", |l| {
                l.starts_with("worker-a") || l.starts_with("no live workers")
            });
            row.contains("native,container")
        },
    );

    bot.send("chatter");
    let id = bot
        .expect("queued", |l| l.starts_with("queued as job "))
        .trim_start_matches("queued as job ")
        .to_string();
    bot.expect("chatter's result", |l| l == "done");
    let progress = progress_lines(&p.redis.url(), &id);
    assert!(
        progress.len() < 50 && progress.first().map(String::as_str) == Some("step 1"),
        "{progress:?}"
    );
    let last = progress.last().expect("progress lines");
    assert!(
        last.starts_with("step 50 (") && last.ends_with(" lines before it not shown)"),
        "{progress:?}"
    );

    // A task whose stderr never ends its line costs the worker one line's worth of
    // memory, not the 200 MiB it writes, and every progress line stays short.
    bot.send("flood");
    let id = bot
        .expect("queued", |l| l.starts_with("queued as job "))
        .trim_start_matches("queued as job ")
        .to_string();
    bot.expect("flood's result", |l| l == "flooded");
    let progress = progress_lines(&p.redis.url(), &id);
    assert!(
        progress.iter().all(|l| l.chars().count() < 400),
        "a progress line was not shortened: {:?}",
        progress.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert!(
        progress.iter().any(|l| l.starts_with("last words")),
        "{progress:?}"
    );
    let peak = peak_memory_kib(worker.pid().expect("the worker runs"));
    assert!(
        peak < 100 * 1024,
        "the worker's memory peaked at {peak} KiB while a task wrote 200 MiB to stderr"
    );

    bot.send("doze 60");
    let id = bot
        .expect("queued", |l| l.starts_with("queued as job "))
        .trim_start_matches("queued as job ")
        .to_string();
    wait_for_container_of(&id);
    bot.send(&format!("cancel {id}"));
    bot.expect("the cancelled result", |l| {
        l == format!("job {id} (doze) was cancelled by {}", me())
    });
    assert_eq!(containers_of(&id), Vec::<String>::new());
    let out = bot.finish();
    assert!(out.status.success(), "{out:?}");
}

/// A worker killed mid-job leaves its container running; the job, delivered again to
/// another worker, gets a container of its own and is answered, and the dead worker's
/// container is removed by the live one once the dead one's heartbeat has expired.
#[test]
fn a_job_whose_worker_was_killed_runs_again_and_its_old_container_is_removed() {
    use octobox_tests::pipeline::{wait_until, Options, Pipeline};
    let p = Pipeline::start(Options {
        extra: commands(),
        ..Options::default()
    });
    let mut first = p.worker("worker-a");
    let mut bot = p.console.start();
    wait_until(
        "worker-a to take container jobs",
        octobox_tests::console::PATIENCE,
        || {
            bot.send("workers");
            bot.expect("the workers table", |l| {
                l.starts_with("worker-a") || l.starts_with("no live workers")
            })
            .contains("native,container")
        },
    );
    bot.send("doze 20");
    let id = bot
        .expect("queued", |l| l.starts_with("queued as job "))
        .trim_start_matches("queued as job ")
        .to_string();
    wait_for_container_of(&id);
    let orphan = containers_of(&id).remove(0);
    first.kill();
    let _second = p.worker("worker-b");
    wait_until(
        "the dead worker's container to be removed",
        std::time::Duration::from_secs(60),
        || !containers_of(&id).contains(&orphan),
    );
    let answer = bot.expect("the job's result", |l| {
        l.starts_with(&format!("job {id} (doze)"))
    });
    assert!(answer.contains("succeeded"), "{answer}");
    bot.expect("its output", |l| l == "woke up");
    let out = bot.finish();
    assert!(out.status.success(), "{out:?}");
    for container in containers_of(&id) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &container])
            .output();
    }
}

/// The most memory process `pid` has held at once (`VmHWM`), in KiB.
fn peak_memory_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// The `progress` lines of job `id` in the event stream, oldest first.
fn progress_lines(redis_url: &str, id: &str) -> Vec<String> {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-u",
            redis_url,
            "--raw",
            "XRANGE",
            "octobox:events",
            "-",
            "+",
        ])
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["job"] == id && e["event"] == "progress")
        .filter_map(|e| e["line"].as_str().map(str::to_string))
        .collect()
}

/// A worker that stops while a container job runs past its grace period abandons the job
/// (it stays with the broker) and removes its container before it returns.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_stopping_past_its_grace_period_leaves_no_container() {
    use std::sync::Arc;
    use std::time::Duration;

    use jobs::memory::{MemoryBroker, MemoryStore};
    use jobs::{Broker, ContainerLimits, Job, Origin, Store, Task};
    use tokio_util::sync::CancellationToken;
    use worker::{ContainerRunner, TaskRegistry, Worker};

    let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = ContainerRunner::connect()
        .await
        .expect("the Docker engine answers");
    let worker = Worker::new(
        "stopping",
        broker.clone(),
        store.clone(),
        TaskRegistry::standard(),
        1,
    )
    .with_containers(runner, 1)
    .with_grace(Duration::from_millis(200));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));

    let task = Task::Container {
        image: probe_image().to_string(),
        argv: vec!["sleep".into(), "60".into()],
        env: Default::default(),
        limits: ContainerLimits::default(),
    };
    let job = Job::new(
        "doze",
        Default::default(),
        task,
        Origin::new("test", "t"),
        Duration::from_secs(120),
    );
    store.record_job(&job).await.unwrap();
    broker.publish(&job).await.unwrap();
    let id = job.id.to_string();
    tokio::task::spawn_blocking({
        let id = id.clone();
        move || wait_for_container_of(&id)
    })
    .await
    .unwrap();

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap();
    assert_eq!(containers_of(&id), Vec::<String>::new());
}

/// Whether the engine saw any event of a container of job `id` since `since` (Unix
/// seconds): a container created and removed at once still leaves its `create`.
fn engine_events_of(id: &str, since: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = std::process::Command::new("docker")
        .args(["events", "--since", &since.to_string(), "--until"])
        .arg(now.to_string())
        .args(["--filter", &format!("label=octobox.job={id}")])
        .args(["--format", "{{.Action}}"])
        .output()
        .expect("docker runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `DOCKER_HOST=tcp://…` with `DOCKER_TLS_VERIFY=1`: the bot's worker reaches the real
/// engine through a front that speaks TLS only and takes only clients with a certificate
/// its CA signed, so the job's answer proves both ends were checked.
#[test]
fn a_container_job_runs_on_an_engine_reached_over_tls() {
    let front = octobox_tests::services::DockerTlsFront::start();
    let out = Console::new()
        .config(&commands())
        .env("DOCKER_HOST", &front.url())
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &front.cert_dir().display().to_string())
        .run(&["say over TLS"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        Regex::new(r"\(say\) succeeded in \d+(ms|\.\ds):\n\[over TLS\]\n?$")
            .unwrap()
            .is_match(&out.stdout),
        "{}\n{}",
        out.stdout,
        front.log()
    );
    for id in job_ids(&out.stdout) {
        assert_eq!(containers_of(&id), Vec::<String>::new());
    }
}

/// A man in the middle: the front before the real engine presents a certificate another
/// CA signed. The worker refuses it before a single call, says why, and no container of
/// the job ever exists.
#[test]
fn an_engine_whose_certificate_another_ca_signed_is_refused_and_runs_nothing() {
    let mitm = octobox_tests::services::DockerTlsFront::impostor();
    let since = unix_now();
    let out = Console::new()
        .config(&commands())
        .env("DOCKER_HOST", &mitm.url())
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &mitm.cert_dir().display().to_string())
        .run(&["say hello"]);
    assert!(out.status.success(), "{out:?}");
    let ca = mitm.cert_dir().join("ca.pem");
    assert!(
        out.stdout.contains("(say) failed after")
            && out.stdout.contains(&format!(
            "the Docker engine at {} was refused: its certificate was not trusted (UnknownIssuer); \
             this worker trusts only an engine whose certificate the CA in {} signed",
            mitm.url(),
            ca.display()
        )),
        "{}",
        out.stdout
    );
    let ids = job_ids(&out.stdout);
    assert_eq!(ids.len(), 1, "{}", out.stdout);
    assert_eq!(
        engine_events_of(&ids[0], since),
        "",
        "a container was created"
    );
}

/// Plain HTTP to an engine that speaks TLS only fails at once with a hint, not a hang.
#[test]
fn a_plain_connection_to_a_tls_engine_fails_quickly_and_says_what_to_set() {
    let front = octobox_tests::services::DockerTlsFront::start();
    let started = std::time::Instant::now();
    let out = Console::new()
        .config(&commands())
        .env("DOCKER_HOST", &front.url())
        .run(&["say hello"]);
    let took = started.elapsed();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("(say) failed after")
            && out.stdout.contains(&format!(
                "the Docker engine at {} does not answer: ",
                front.url()
            ))
            && out.stdout.contains(
                "if the engine expects TLS, set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to \
                 the directory with its ca.pem, cert.pem and key.pem"
            ),
        "{}",
        out.stdout
    );
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
}

/// A certificate file the worker cannot use is named, with what to do, in the job's
/// failure; so is one past the size limit, which is not loaded.
#[test]
fn a_missing_or_oversized_client_key_is_named_in_the_failure() {
    let front = octobox_tests::services::DockerTlsFront::start();
    let dir = front.dir().join("broken");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(front.cert_dir().join("ca.pem"), dir.join("ca.pem")).unwrap();
    std::fs::copy(front.cert_dir().join("cert.pem"), dir.join("cert.pem")).unwrap();
    let key = dir.join("key.pem");
    let attempt = || {
        let out = Console::new()
            .config(&commands())
            .env("DOCKER_HOST", &front.url())
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &dir.display().to_string())
            .run(&["say hello"]);
        assert!(out.status.success(), "{out:?}");
        out.stdout
    };
    let missing = attempt();
    assert!(
        missing.contains(&format!(
            "the Docker engine at {} cannot be reached over TLS: the engine's client key {} \
             cannot be read: No such file or directory (os error 2); put it there, or point \
             DOCKER_CERT_PATH at the directory that holds ca.pem, cert.pem and key.pem",
            front.url(),
            key.display()
        )),
        "{missing}"
    );
    std::fs::write(&key, vec![b'A'; 1024 * 1024 + 1]).unwrap();
    let huge = attempt();
    assert!(
        huge.contains(&format!(
            "the engine's client key {} is larger than 1024 KiB: not a PEM certificate or key",
            key.display()
        )),
        "{huge}"
    );
}

/// An engine over TCP in clear on another machine is used, with a warning in the log.
#[test]
fn an_engine_in_clear_on_another_machine_is_warned_about() {
    // TEST-NET-1: nothing answers there, and the warning comes before the first call.
    let out = Console::new()
        .config(&commands())
        .env("DOCKER_HOST", "tcp://192.0.2.1:2375")
        .run(&["echo still serving"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains(
            "the Docker engine is reached in clear over the network: anyone on the path can \
             read and change what this worker runs"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("(echo) succeeded in"), "{}", out.stdout);
}

/// The real engine behind a socket of the test's, except that the first request `hang`
/// picks is held unanswered for ever: an engine that accepts a call and never answers,
/// which the real engine cannot be made to do. Every other request, the following ones
/// included, goes through to the real engine.
mod hanging_engine {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{UnixListener, UnixStream};

    pub struct HangingEngine {
        _dir: tempfile::TempDir,
        socket: PathBuf,
        pub hung: Arc<AtomicBool>,
        serving: tokio::task::JoinHandle<()>,
    }

    impl HangingEngine {
        /// `hang` sees each request line (`POST /v1.41/containers/create?name=… HTTP/1.1`).
        pub fn start(hang: fn(&str) -> bool) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let socket = dir.path().join("docker.sock");
            let listener = UnixListener::bind(&socket).unwrap();
            let hung = Arc::new(AtomicBool::new(false));
            let serving = tokio::spawn({
                let hung = hung.clone();
                async move {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            return;
                        };
                        tokio::spawn(serve(client, hang, hung.clone()));
                    }
                }
            });
            HangingEngine {
                _dir: dir,
                socket,
                hung,
                serving,
            }
        }

        pub fn url(&self) -> String {
            format!("unix://{}", self.socket.display())
        }
    }

    impl Drop for HangingEngine {
        fn drop(&mut self) {
            self.serving.abort();
        }
    }

    async fn serve(mut client: UnixStream, hang: fn(&str) -> bool, hung: Arc<AtomicBool>) {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let line = String::from_utf8_lossy(&head);
        let line = line.lines().next().unwrap_or("");
        if hang(line) && !hung.swap(true, Ordering::SeqCst) {
            // Read whatever comes, answer nothing, until the client gives up.
            while let Ok(n) = client.read(&mut buf).await {
                if n == 0 {
                    return;
                }
            }
            return;
        }
        let Ok(mut engine) = UnixStream::connect(Path::new("/var/run/docker.sock")).await else {
            return;
        };
        if engine.write_all(&head).await.is_ok() {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
        }
    }
}

/// Runs `jobs`, one after another, on an in-process worker that takes one container job
/// at a time through `runner`; each job's final record, and how long it took.
async fn run_in_turn(
    runner: worker::ContainerRunner,
    queue: Vec<jobs::Job>,
) -> Vec<(jobs::JobRecord, std::time::Duration)> {
    use jobs::memory::{MemoryBroker, MemoryStore};
    use jobs::{Broker, Store};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let worker = worker::Worker::new(
        "hung-engine",
        broker.clone(),
        store.clone(),
        worker::TaskRegistry::standard(),
        1,
    )
    .with_containers(runner, 1);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let mut records = Vec::new();
    for job in queue {
        let started = Instant::now();
        store.record_job(&job).await.unwrap();
        broker.publish(&job).await.unwrap();
        let record = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match store.job(job.id).await.unwrap() {
                    Some(r) if r.status.is_final() => return r,
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("job {} ({}) never finished", job.id, job.command));
        records.push((record, started.elapsed()));
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
    records
}

fn probe_job(command: &str, argv: &[&str], timeout: std::time::Duration) -> jobs::Job {
    let task = jobs::Task::Container {
        image: probe_image().to_string(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        env: Default::default(),
        limits: jobs::ContainerLimits::default(),
    };
    jobs::Job::new(
        command,
        Default::default(),
        task,
        jobs::Origin::new("test", "t"),
        timeout,
    )
}

/// The engine takes the job's `POST /containers/create` and never answers: the job's
/// timeout (2 s) still ends it, and the same worker's only container slot runs the next
/// job through the engine.
#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_never_answers_create_times_the_job_out_and_the_worker_goes_on() {
    hung_step_times_out(|line| line.starts_with("POST ") && line.contains("/containers/create"))
        .await;
}

/// The same with the image look-up (`GET /images/<name>/json`) held unanswered.
#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_never_answers_the_image_look_up_times_the_job_out() {
    hung_step_times_out(|line| line.starts_with("GET ") && line.contains("/images/")).await;
}

async fn hung_step_times_out(hang: fn(&str) -> bool) {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    let engine = hanging_engine::HangingEngine::start(hang);
    let runner = worker::ContainerRunner::connect_to(worker::DockerHost::new(engine.url()))
        .await
        .expect("the engine answers through the test's socket");
    let stuck = probe_job("say", &["args", "never"], Duration::from_secs(2));
    let next = probe_job("say", &["args", "next"], Duration::from_secs(60));
    let stuck_id = stuck.id.to_string();
    let done = run_in_turn(runner, vec![stuck, next]).await;
    assert!(engine.hung.load(Ordering::SeqCst), "no request was held");

    let (record, took) = &done[0];
    let result = record.result.as_ref().expect("a result");
    assert_eq!(record.status, jobs::JobStatus::TimedOut, "{result:?}");
    assert_eq!(
        result.error.as_deref(),
        Some("timed out after 2s; its container was stopped and removed")
    );
    assert!(
        *took < Duration::from_secs(20),
        "the hung job took {took:?}"
    );
    assert_eq!(containers_of(&stuck_id), Vec::<String>::new());

    let (record, _) = &done[1];
    let result = record.result.as_ref().expect("a result");
    assert_eq!(record.status, jobs::JobStatus::Succeeded, "{result:?}");
    assert!(
        matches!(&result.output, jobs::Output::Text { text } if text.trim_end() == "[next]"),
        "{result:?}"
    );
}

/// A fan-out's jobs carry their host in an argument that is no slot of the pattern: a
/// worker takes only a name the inventory could hold there. A job published straight to
/// RabbitMQ with an option or a shell word as its host, or listing children as only a
/// fan-out's parent (never queued) does, is refused unrun, while one with a host name,
/// built as the bot builds it, runs.
#[test]
fn a_forged_fan_out_host_is_refused_and_never_runs() {
    use config::{Secret, StoreConfig};
    use jobs::rabbit::RabbitBroker;
    use jobs::redis::RedisStore;
    use jobs::{Broker, Job, JobRecord, Origin, Store};
    use octobox_tests::pipeline::{Options, Pipeline};
    use std::collections::BTreeMap;
    use std::time::Duration;

    let p = Pipeline::start(Options {
        extra: format!(
            "{}\n[[command]]\npattern = \"name each of group {{group:name}}\"\nhelp = \"Print each host's name\"\n\
             container = {{ image = \"{image}\", argv = [\"args\", \"{{host}}\"] }}\nfan_out = {{ group = \"group\" }}\n",
            commands(),
            image = probe_image()
        ),
        ..Options::default()
    });
    let _worker = p.worker("worker-a");
    let config = config::Config::load(&p.config_path()).unwrap();
    let catalog = commands::Catalog::build(&config, None).unwrap();
    let action = catalog.commands.action("name each of group").unwrap();
    // The task as the bot builds it for a host, then with the forger's host put in
    // (the bot itself refuses such values before any job is made).
    let job_for = |host: &str| {
        let mut args = BTreeMap::new();
        args.insert("group".to_string(), lexicon::Value::Name("web".into()));
        args.insert(
            "host".to_string(),
            lexicon::Value::Word("web-1.example.com".into()),
        );
        let m = lexicon::Match {
            command: "name each of group".into(),
            args: args.clone(),
        };
        let mut task = action.runs.task_checked(&m).unwrap().unwrap();
        if let jobs::Task::Container { argv, .. } = &mut task {
            argv[1] = host.to_string();
        }
        args.insert("host".to_string(), lexicon::Value::Word(host.into()));
        Job::new(
            m.command,
            args,
            task,
            Origin::new("console", "mallory"),
            action.timeout,
        )
    };
    // A job that claims to be a fan-out's parent (which is never queued).
    let mut parent = job_for("web-1.example.com");
    parent.children = vec![jobs::JobId::new()];
    let jobs = [
        job_for("web-1.example.com"),
        job_for("--privileged"),
        job_for("web-1;reboot"),
        job_for("$(id)"),
        parent,
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let records: Vec<JobRecord> = runtime.block_on(async {
        let broker = RabbitBroker::connect(&p.broker_config()).await.unwrap();
        let store = RedisStore::connect(&StoreConfig::new(Secret::new(p.redis.url())))
            .await
            .unwrap();
        for job in &jobs {
            broker.publish(job).await.unwrap();
        }
        let mut records = Vec::new();
        for job in &jobs {
            let record = tokio::time::timeout(octobox_tests::console::PATIENCE, async {
                loop {
                    match store.job(job.id).await.unwrap() {
                        Some(r) if r.status.is_final() => return r,
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            })
            .await
            .expect("the worker answers every job");
            records.push(record);
        }
        records
    });
    let ran = records[0].result.as_ref().unwrap();
    assert_eq!(records[0].status, jobs::JobStatus::Succeeded, "{ran:?}");
    assert!(
        matches!(&ran.output, jobs::Output::Text { text } if text.contains("web-1.example.com")),
        "{ran:?}"
    );
    for record in &records[1..] {
        let result = record.result.as_ref().expect("a result");
        assert_eq!(record.status, jobs::JobStatus::Failed, "{result:?}");
        assert!(
            result.error.as_deref().unwrap_or("").starts_with(
                "was not run: what it asks for is not what this worker's configuration declares"
            ),
            "{result:?}"
        );
        assert_eq!(result.output, jobs::Output::Empty, "it ran: {result:?}");
    }
}
