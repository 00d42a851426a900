//! `Cluster`: hosts of their own on a private Docker network, made for one test — a
//! three-node RabbitMQ cluster, a Redis primary with a replica and three Sentinels, and
//! Octobox's processes as containers of the images `scripts/images` builds. Each host
//! can be killed or cut off its network (`docker network disconnect`) and reconnected.
//! Everything is removed when the `Cluster` drops.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::pipeline::wait_until;

/// The Erlang cookie the RabbitMQ nodes share (the secret of their distribution port).
const COOKIE: &str = "octoboxclustertestcookie";

pub struct Cluster {
    pub network: String,
    dir: TempDir,
    containers: Vec<String>,
}

/// `docker <args>`, which must succeed; its standard output.
pub fn docker(args: &[&str]) -> String {
    let out = docker_output(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

impl Cluster {
    /// A fresh network named after this process.
    pub fn new(name: &str) -> Cluster {
        crate::stack::build_images();
        let network = format!("{name}-{}", std::process::id());
        let _ = docker_output(&["network", "rm", &network]);
        docker(&["network", "create", &network]);
        Cluster {
            network,
            dir: tempfile::tempdir().expect("a temporary directory"),
            containers: Vec::new(),
        }
    }

    /// Writes `name` in this cluster's folder (configurations), readable and writable by
    /// every container that mounts it.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("file written");
        // Readable by the containers' users; writable too (a Sentinel rewrites its file).
        use std::os::unix::fs::PermissionsExt;
        let open =
            |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
        open(self.dir.path(), 0o777).expect("folder opened");
        open(&path, 0o666).expect("file opened");
        path
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `image` as host `name` on the network (its name is also its host name),
    /// with `options` before the image and `args` after it.
    pub fn run(&mut self, name: &str, options: &[&str], image: &str, args: &[&str]) {
        let container = self.container(name);
        let _ = docker_output(&["rm", "-f", &container]);
        let mut all = vec![
            "run",
            "-d",
            "--name",
            &container,
            "--hostname",
            name,
            "--network",
            &self.network,
            "--network-alias",
            name,
        ];
        all.extend(options);
        all.push(image);
        all.extend(args);
        docker(&all);
        self.containers.push(container);
    }

    /// The container that plays host `name`.
    pub fn container(&self, name: &str) -> String {
        format!("{}-{name}", self.network)
    }

    /// The address of host `name` on the network.
    pub fn ip(&self, name: &str) -> String {
        crate::stack::inspect(
            &self.container(name),
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        )
    }

    /// `docker exec <host> <args>`.
    pub fn exec(&self, name: &str, args: &[&str]) -> Output {
        let container = self.container(name);
        let mut all = vec!["exec", container.as_str()];
        all.extend(args);
        docker_output(&all)
    }

    pub fn kill(&self, name: &str) {
        docker(&["kill", &self.container(name)]);
    }

    pub fn disconnect(&self, name: &str) {
        docker(&[
            "network",
            "disconnect",
            &self.network,
            &self.container(name),
        ]);
    }

    pub fn reconnect(&self, name: &str) {
        docker(&[
            "network",
            "connect",
            "--alias",
            name,
            &self.network,
            &self.container(name),
        ]);
    }

    pub fn logs(&self, name: &str) -> String {
        let out = docker_output(&["logs", &self.container(name)]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Starts three RabbitMQ nodes (`rabbit-1` to `rabbit-3`, user `octobox`, password
    /// `password`) that form one cluster, and waits until each lists all three.
    pub fn start_rabbitmq(&mut self) {
        let conf = self.file(
            "rabbitmq.conf",
            "loopback_users.guest = false\nlisteners.tcp.default = 5672\n\
             cluster_formation.peer_discovery_backend = classic_config\n\
             cluster_formation.classic_config.nodes.1 = rabbit@rabbit-1\n\
             cluster_formation.classic_config.nodes.2 = rabbit@rabbit-2\n\
             cluster_formation.classic_config.nodes.3 = rabbit@rabbit-3\n",
        );
        let mount = format!("{}:/etc/rabbitmq/rabbitmq.conf:ro", conf.display());
        for n in 1..=3 {
            self.run(
                &format!("rabbit-{n}"),
                &[
                    "-v",
                    &mount,
                    "-e",
                    &format!("RABBITMQ_ERLANG_COOKIE={COOKIE}"),
                    "-e",
                    "RABBITMQ_DEFAULT_USER=octobox",
                    "-e",
                    "RABBITMQ_DEFAULT_PASS=password",
                ],
                "octobox/rabbitmq:latest",
                &[],
            );
        }
        wait_until(
            "the three RabbitMQ nodes to form a cluster",
            Duration::from_secs(240),
            || {
                (1..=3).all(|n| {
                    let out = self.exec(
                        &format!("rabbit-{n}"),
                        &["rabbitmqctl", "-q", "cluster_status", "--formatter", "json"],
                    );
                    let text = String::from_utf8_lossy(&out.stdout);
                    out.status.success()
                        && serde_json::from_str::<serde_json::Value>(&text)
                            .ok()
                            .and_then(|v| v["running_nodes"].as_array().map(Vec::len))
                            == Some(3)
                })
            },
        );
    }

    /// The node that leads quorum queue `queue` (`rabbit-2`), as RabbitMQ reports it.
    pub fn queue_leader(&self, queue: &str) -> Option<String> {
        for n in 1..=3 {
            let out = self.exec(
                &format!("rabbit-{n}"),
                &[
                    "rabbitmqctl",
                    "-q",
                    "list_queues",
                    "name",
                    "leader",
                    "--formatter",
                    "json",
                ],
            );
            if !out.status.success() {
                continue;
            }
            let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            for q in list.as_array().into_iter().flatten() {
                if q["name"] == queue {
                    let leader = q["leader"].as_str()?;
                    return leader.strip_prefix("rabbit@").map(str::to_string);
                }
            }
        }
        None
    }

    /// Starts a Redis primary (`redis-1`), a replica (`redis-2`) and three Sentinels
    /// (`sentinel-1` to `sentinel-3`) watching them as `octobox`, and waits until the
    /// replica is in sync and every Sentinel knows the primary.
    pub fn start_redis(&mut self) {
        let server = ["--protected-mode", "no", "--appendonly", "yes"];
        self.run(
            "redis-1",
            &[],
            "octobox/redis:latest",
            &with("redis-server", &server, &[]),
        );
        // Addresses, not names, between Redis and the Sentinels: a Sentinel resolves names
        // on its one thread, and a lookup of a dead host's name that the network's
        // resolver is slow to refuse stalls it into TILT mode, so no failover happens.
        let primary = self.ip("redis-1");
        self.run(
            "redis-2",
            &[],
            "octobox/redis:latest",
            &with("redis-server", &server, &["--replicaof", &primary, "6379"]),
        );
        wait_until("the replica to be in sync", Duration::from_secs(60), || {
            let out = self.exec("redis-2", &["redis-cli", "info", "replication"]);
            String::from_utf8_lossy(&out.stdout).contains("master_link_status:up")
        });
        for n in 1..=3 {
            let name = format!("sentinel-{n}");
            self.file(
                &format!("{name}.conf"),
                &format!(
                    "port 26379\nprotected-mode no\n\
                     sentinel monitor octobox {primary} 6379 2\n\
                     sentinel down-after-milliseconds octobox 1000\n\
                     sentinel failover-timeout octobox 5000\n\
                     sentinel parallel-syncs octobox 1\n"
                ),
            );
            let folder = format!("{}:/sentinel", self.dir().display());
            self.run(
                &name,
                &["-v", &folder],
                "octobox/redis:latest",
                &[
                    "redis-server",
                    &format!("/sentinel/{name}.conf"),
                    "--sentinel",
                ],
            );
        }
        wait_until(
            "the Sentinels to know the primary",
            Duration::from_secs(60),
            || {
                (1..=3).all(|n| {
                    let out = self.exec(
                        &format!("sentinel-{n}"),
                        &[
                            "redis-cli",
                            "-p",
                            "26379",
                            "sentinel",
                            "get-master-addr-by-name",
                            "octobox",
                        ],
                    );
                    String::from_utf8_lossy(&out.stdout).contains(&primary)
                })
            },
        );
    }

    /// The host Sentinel names the primary now (`redis-1` or `redis-2`).
    pub fn redis_primary(&self) -> Option<String> {
        let hosts: Vec<(String, &str)> = ["redis-1", "redis-2"]
            .into_iter()
            .map(|h| (self.ip(h), h))
            .collect();
        for n in 1..=3 {
            let out = self.exec(
                &format!("sentinel-{n}"),
                &[
                    "redis-cli",
                    "-p",
                    "26379",
                    "sentinel",
                    "get-master-addr-by-name",
                    "octobox",
                ],
            );
            if let Some(address) = String::from_utf8_lossy(&out.stdout).lines().next() {
                let address = address.trim();
                if let Some((_, host)) = hosts.iter().find(|(ip, _)| ip == address) {
                    return Some(host.to_string());
                }
            }
        }
        None
    }

    /// Waits until `host`'s healthcheck passes.
    pub fn wait_healthy(&self, host: &str, patience: Duration) {
        let container = self.container(host);
        let deadline = Instant::now() + patience;
        loop {
            let state = crate::stack::inspect(
                &container,
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
            );
            if state == "running healthy" {
                return;
            }
            assert!(
                Instant::now() < deadline && !state.starts_with("exited"),
                "{host} is not healthy after {patience:?} ({state}):\n{}",
                self.logs(host)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn with<'a>(program: &'a str, common: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![program];
    all.extend(common);
    all.extend(more);
    all
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = docker_output(&["rm", "-f", "-v", container]);
        }
        let _ = docker_output(&["network", "rm", &self.network]);
    }
}
