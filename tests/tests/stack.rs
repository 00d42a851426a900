//! The compose stack on the real Docker engine: `compose/docker-compose.yml` from images
//! built here, healing itself. One test binary for every stack scenario, so the images
//! are built (or found up to date) once.

use std::process::Stdio;
use std::time::Duration;

use octobox_tests::health;
use octobox_tests::pipeline::{queued_ids, results_per_job, wait_until};
use octobox_tests::services::free_port;
use octobox_tests::ssh::{finish, finish_within};
use octobox_tests::stack::{crash, inspect, repository, Stack};

const LONG: Duration = Duration::from_secs(180);

/// How many times each `job-<n>` appears in a session's output.
fn said(output: &str) -> std::collections::HashMap<u32, usize> {
    let mut counts = std::collections::HashMap::new();
    for found in regex::Regex::new(r"\bjob-(\d+)\b")
        .unwrap()
        .captures_iter(output)
    {
        *counts.entry(found[1].parse().unwrap()).or_default() += 1;
    }
    counts
}

/// How many jobs the stack's workers have logged as finished.
fn finished(stack: &Stack) -> usize {
    stack.logs("worker").matches("job finished").count()
}

#[test]
fn the_compose_stack_answers_heals_itself_and_is_scraped_by_prometheus() {
    let stack = Stack::up(2);

    // A command over SSH to the published port, answered by a worker container.
    let mut ssh = stack.ssh();
    ssh.arg("say hello from the stack").stdin(Stdio::null());
    let run = finish(ssh);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("hello from the stack"), "{run:?}");
    assert!(stack.logs("worker").contains("job finished"));

    // A worker crashes mid-job: the job is still answered, and the container is back
    // and healthy without anyone restarting it.
    let mut ssh = stack.ssh();
    ssh.arg("wait 8s").stdin(Stdio::null());
    let waiting = std::thread::spawn(move || finish_within(ssh, LONG));
    let workers = stack.containers(Some("worker"));
    let mut running_it = None;
    wait_until("a worker to start the wait", LONG, || {
        running_it = workers
            .iter()
            .find(|w| {
                let logs = std::process::Command::new("docker")
                    .args(["logs", w])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                logs.lines()
                    .any(|l| l.contains("job started") && l.contains("command=wait"))
            })
            .cloned();
        running_it.is_some()
    });
    let victim = running_it.unwrap();
    crash(&victim);
    let run = waiting.join().unwrap();
    assert_eq!(
        run.code,
        Some(0),
        "the crashed worker's job is answered: {run:?}"
    );
    wait_until("the crashed worker to be restarted", LONG, || {
        inspect(&victim, "{{.RestartCount}}") != "0"
    });
    stack.wait_healthy(LONG);

    // RabbitMQ restarts in the middle of 1,000 jobs: none is lost, none answered twice.
    let before = finished(&stack);
    let lines: String = (0..1000).map(|n| format!("say job-{n}\n")).collect();
    let mut ssh = stack.ssh();
    ssh.arg("-T").stdin(Stdio::piped());
    let session = std::thread::spawn(move || {
        let mut cmd = ssh;
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("ssh runs");
        use std::io::Write;
        // Paced over about ten seconds, so RabbitMQ restarts while jobs are still being
        // queued, not only while they run.
        let mut stdin = child.stdin.take().unwrap();
        for line in lines.lines() {
            stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    });
    wait_until("some of the 1,000 jobs to finish", LONG, || {
        finished(&stack) > before + 50
    });
    let rabbitmq = stack.containers(Some("rabbitmq")).remove(0);
    let restarted = std::process::Command::new("docker")
        .args(["restart", "-t", "5", &rabbitmq])
        .output()
        .unwrap();
    assert!(restarted.status.success(), "{restarted:?}");
    let by_then = finished(&stack) - before;
    assert!(
        by_then < 1000,
        "RabbitMQ restarted mid-run: {by_then} jobs had finished"
    );
    let out = session.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    let ids = queued_ids(&lines);
    assert_eq!(ids.len(), 1000, "every line queued; output:\n{stdout}");
    let results = results_per_job(&stdout);
    assert!(
        ids.iter().all(|id| results.get(id) == Some(&1)),
        "every job answered once; output:\n{stdout}"
    );
    let replies = said(&stdout);
    for n in 0..1000 {
        assert_eq!(replies.get(&n), Some(&1), "job-{n}; output:\n{stdout}");
    }
    stack.wait_healthy(LONG);

    // Redis stops: the bot's /readyz says so, then recovers when Redis is back.
    let bot = stack.http_address(&stack.containers(Some("bot")).remove(0));
    assert_eq!(health::get(&bot, "/readyz").0, 200);
    stack.compose_ok(&["stop", "redis"]);
    wait_until("the bot to say the store fails", LONG, || {
        let (status, body) = health::get(&bot, "/readyz");
        status == 503 && body.contains("store: failing")
    });
    stack.compose_ok(&["start", "redis"]);
    wait_until("the bot to be ready again", LONG, || {
        health::get(&bot, "/readyz").0 == 200
    });
    stack.wait_healthy(LONG);

    // A real Prometheus scrapes every process; PromQL counts the jobs the workers ran.
    let targets: Vec<String> = stack
        .containers(None)
        .iter()
        .filter(|c| {
            let image = inspect(c, "{{.Config.Image}}");
            ["octobox/bot", "octobox/worker", "octobox/scheduler"]
                .iter()
                .any(|ours| image.starts_with(ours))
        })
        .map(|c| stack.http_address(c))
        .collect();
    assert_eq!(targets.len(), 5, "bot, two workers, two schedulers");
    let prometheus = Prometheus::start(&targets);
    wait_until("Prometheus to scrape all five", LONG, || {
        prometheus.query("count(up == 1)") == Some(5.0)
    });
    let workers_say: f64 = stack
        .containers(Some("worker"))
        .iter()
        .map(|w| {
            let text = health::get(&stack.http_address(w), "/metrics").1;
            health::sample(
                &text,
                r#"octobox_jobs_finished_total{command="say",status="succeeded"}"#,
            )
        })
        .sum();
    assert!(
        workers_say >= 1000.0,
        "the workers count {workers_say} say jobs"
    );
    wait_until("PromQL to count the say jobs the workers ran", LONG, || {
        prometheus.query(r#"sum(octobox_jobs_finished_total{command="say"})"#) == Some(workers_say)
    });
}

/// The alert rules' own unit tests and the scrape configuration pass promtool.
#[test]
fn the_prometheus_configuration_and_alert_rules_pass_promtool() {
    let compose = repository().join("compose");
    for args in [
        vec!["check", "config", "prometheus.yml"],
        vec!["test", "rules", "alerts.test.yml"],
    ] {
        let out = std::process::Command::new("promtool")
            .args(&args)
            .current_dir(&compose)
            .output()
            .expect("promtool runs (Debian package prometheus)");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dashboard = std::fs::read_to_string(compose.join("grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    assert!(dashboard["panels"]
        .as_array()
        .is_some_and(|p| !p.is_empty()));
}

/// Debian's `prometheus`, scraping `targets` every second, with its API on a free port.
struct Prometheus {
    _dir: tempfile::TempDir,
    address: String,
    child: std::process::Child,
}

impl Prometheus {
    fn start(targets: &[String]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let list = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: octobox\n    static_configs:\n      - targets: [{list}]\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = std::process::Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus runs (Debian package prometheus)");
        Prometheus {
            _dir: dir,
            address,
            child,
        }
    }

    /// The value of an instant PromQL query that yields one number.
    fn query(&self, promql: &str) -> Option<f64> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) = health::get(&self.address, &format!("/api/v1/query?query={encoded}"));
        if status != 200 {
            return None;
        }
        let body: serde_json::Value = serde_json::from_str(&body).ok()?;
        body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many jobs the cluster scenario sends: 1,000 in CI, 5,000 from `scripts/cluster`.
fn cluster_jobs() -> usize {
    std::env::var("OCTOBOX_CLUSTER_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
}

#[test]
fn a_cluster_answers_every_job_once_through_node_loss_a_network_cut_and_failovers() {
    use octobox_tests::cluster::Cluster;
    use octobox_tests::scheduler::ScheduleProbe;

    let jobs = cluster_jobs();
    let mut c = Cluster::new("octobox-cluster");
    c.start_rabbitmq();
    c.start_redis();

    let key = octobox_tests::ssh::SshKey::generate(c.dir(), "admin");
    c.file(
        "authorized_keys",
        &format!("identity=\"admin\" {}\n", key.public),
    );
    let node = |n: u32| format!("\"amqp://octobox:password@rabbit-{n}:5672/%2f?heartbeat=5\"");
    c.file(
        "octobox.toml",
        &format!(
            r#"
[acl.groups]
admins = ["ssh:admin"]

[quota]
running_per_person = 10000
requests_per_minute = 100000

[worker]
concurrency = 16

[jobs]
retry_backoff = "200ms"

[broker]
urls = [{n1}, {n2}, {n3}]
publish_timeout = "120s"
signing_key = "octobox-cluster-test-signing-key-0123456789abcdef"

[store]
sentinels = ["sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379"]
master_name = "octobox"
reclaim_after = "5s"

[http]
listen = "0.0.0.0:9100"

[ssh]
listen = "0.0.0.0:2222"
host_key = "/tmp/ssh_host_key"
authorized_keys = "authorized_keys"

[scheduler]
lease = "4s"

[[command]]
pattern = "say {{text:text}}"
help = "Repeat a sentence through the job queue"
native = "echo"
allow = ["everyone"]

[[command]]
pattern = "wait {{for:duration}}"
help = "Wait a while, then answer"
native = "sleep"
timeout = "1m"
allow = ["everyone"]

[[schedule]]
name = "tick"
cron = "* * * * * *"
run = "say tick"
missed = "catch_up"
"#,
            n1 = node(1),
            n2 = node(2),
            n3 = node(3),
        ),
    );
    let folder = format!("{}:/etc/octobox:ro", c.dir().display());
    let octobox = |role: &str, name: &str| {
        (
            vec!["-v".to_string(), folder.clone()],
            format!("octobox/{role}:latest"),
            vec![
                "--config".to_string(),
                "/etc/octobox/octobox.toml".to_string(),
                "--name".to_string(),
                name.to_string(),
            ],
        )
    };
    let start = |c: &mut Cluster, role: &str, name: &str| {
        let (options, image, mut args) = octobox(role, name);
        if role == "bot" {
            args.truncate(2);
        }
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c.run(name, &options, &image, &args);
    };
    for name in ["worker-1", "worker-2", "worker-3"] {
        start(&mut c, "worker", name);
    }
    start(&mut c, "bot", "bot");
    start(&mut c, "scheduler", "scheduler-a");
    start(&mut c, "scheduler", "scheduler-b");
    for host in [
        "worker-1",
        "worker-2",
        "worker-3",
        "bot",
        "scheduler-a",
        "scheduler-b",
    ] {
        c.wait_healthy(host, LONG);
    }

    // The run: `jobs` lines over SSH, one in five a one-second wait, the rest quick.
    let bot_ip = c.ip("bot");
    let lines: Vec<String> = (0..jobs)
        .map(|n| {
            if n % 5 == 4 {
                "wait 1s".to_string()
            } else {
                format!("say job-{n}")
            }
        })
        .collect();
    let mut ssh = octobox_tests::ssh::ssh_command(2222, &key.path);
    ssh.arg(format!("admin@{bot_ip}")).arg("-T");
    // Paced so that every fault strikes while lines are still coming in.
    let feeding = Duration::from_secs(40);
    let pause = feeding / jobs as u32;
    let session = std::thread::spawn(move || {
        ssh.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ssh.spawn().expect("ssh runs");
        // Read while writing: a pipe left unread fills, and ssh would wait on it forever.
        let read = |mut from: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                let _ = from.read_to_end(&mut text);
                text
            })
        };
        let out = read(Box::new(child.stdout.take().unwrap()));
        let err = read(Box::new(child.stderr.take().unwrap()));
        let mut stdin = child.stdin.take().unwrap();
        use std::io::Write;
        for line in &lines {
            if stdin.write_all(format!("{line}\n").as_bytes()).is_err() {
                break; // the session ended; its output says why
            }
            std::thread::sleep(pause);
        }
        drop(stdin);
        // Bounded: a session that never ends fails the test instead of hanging it.
        let ends = std::time::Instant::now() + Duration::from_secs(300);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > ends {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        std::process::Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    });

    // The faults, one after another while jobs are queued and run.
    let began = std::time::Instant::now();
    let at = |what: &str| eprintln!("{:>6.1} s  {what}", began.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(4));
    let leader = c
        .queue_leader("octobox.jobs.native")
        .expect("the job queue has a leader");
    c.kill(&leader);
    at(&format!(
        "killed {leader}, the leader of the native job queue"
    ));
    std::thread::sleep(Duration::from_secs(6));
    c.disconnect("worker-2");
    at("cut worker-2 off");
    std::thread::sleep(Duration::from_secs(10));
    c.reconnect("worker-2");
    at("worker-2 back");

    let primary = c.redis_primary().expect("Sentinel names the primary");
    c.kill(&primary);
    at(&format!("killed {primary}, the Redis primary"));
    let promoted_by = std::time::Instant::now() + Duration::from_secs(60);
    while c.redis_primary().is_none_or(|p| p == primary) {
        assert!(
            std::time::Instant::now() < promoted_by,
            "Sentinel did not promote the replica within 60 s; sentinel-1:\n{}\nredis-2:\n{}",
            c.logs("sentinel-1"),
            c.logs("redis-2")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    at("Sentinel promoted the replica");
    std::thread::sleep(Duration::from_secs(4));
    let promoted = c.redis_primary().unwrap();
    let probe = ScheduleProbe::connect(&format!("redis://{}:6379/0", c.ip(&promoted)));
    let holder = probe.lease_holder().expect("a scheduler holds the lease");
    c.kill(&holder);
    at(&format!("killed {holder}, the lease holder"));

    let out = session.join().unwrap();
    at("the session ended");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    let ids = queued_ids(&lines);
    let tail = |text: &str| text.lines().rev().take(40).collect::<Vec<_>>().join("\n");
    assert_eq!(
        ids.len(),
        jobs,
        "every line queued; stderr: {}\nlast lines, newest first:\n{}\nthe bot's log, newest first:\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&stdout),
        tail(&c.logs("bot"))
            + &(1..=3)
                .map(|n| {
                    let out = c.exec(
                        &format!("rabbit-{n}"),
                        &["rabbitmqctl", "-q", "list_queues", "name", "leader", "members", "online", "messages"],
                    );
                    format!("rabbit-{n}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
                })
                .collect::<String>()
            + &tail(&c.logs("rabbit-2"))
    );
    let results = results_per_job(&stdout);
    let unanswered: Vec<_> = ids
        .iter()
        .filter(|id| results.get(*id) != Some(&1))
        .collect();
    assert!(
        unanswered.is_empty(),
        "not answered exactly once: {unanswered:?}"
    );
    let replies = said(&stdout);
    let not_succeeded: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("job ") && l.contains(") ") && !l.contains("succeeded"))
        .collect();
    assert!(
        not_succeeded.is_empty(),
        "jobs that did not succeed: {not_succeeded:#?}"
    );
    for n in (0..jobs as u32).filter(|n| n % 5 != 4) {
        assert_eq!(replies.get(&n), Some(&1), "job-{n}");
    }

    // Every slot of the one-second schedule fired once, none missing between the first
    // and the last kept, through the lease holder's death and the Redis failover.
    std::thread::sleep(Duration::from_secs(3));
    let fires = probe.fires("tick");
    assert!(fires.len() >= 30, "{} fires", fires.len());
    let mut slots: Vec<_> = fires.iter().map(|f| f.slot).collect();
    slots.sort();
    for pair in slots.windows(2) {
        assert_eq!(
            (pair[1] - pair[0]).num_milliseconds(),
            1000,
            "slots {} and {}: each slot once, none missing",
            pair[0],
            pair[1]
        );
    }
    let survivors = ["scheduler-a", "scheduler-b"]
        .into_iter()
        .filter(|s| *s != holder)
        .collect::<Vec<_>>();
    assert!(fires.iter().any(|f| survivors.contains(&f.by.as_str())));
}
