//! `Stack`: `compose/docker-compose.yml` brought up on the Docker engine from images built
//! here (`scripts/images --profile debug --services`: the binaries the tests run, and
//! RabbitMQ and Redis from Debian's packages), under a project name of its own, with a
//! configuration and secrets made for the test. Dropped, it is taken down with its
//! volumes.
//!
//! docker-compose 1.29 has no `up --wait`: [`Stack::wait_healthy`] waits on every
//! container's healthcheck instead, which is what `--wait` does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::services::free_port;
use crate::ssh::SshKey;

/// The repository's root (the compose files and `scripts/images` are there).
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

/// Builds the images once per test binary; `scripts/images` skips those whose inputs
/// did not change, so a second run costs seconds.
pub fn build_images() {
    static BUILT: Once = Once::new();
    BUILT.call_once(|| {
        let target = crate::binary::path("octobox-bot")
            .parent()
            .and_then(Path::parent)
            .expect("the binary is in <target>/debug")
            .to_path_buf();
        let out = Command::new(repository().join("scripts/images"))
            .args(["--profile", "debug", "--services"])
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("scripts/images runs");
        assert!(
            out.status.success(),
            "scripts/images failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

pub struct Stack {
    dir: TempDir,
    project: String,
    pub ssh_port: u16,
    /// The key of `ssh:admin`, the configuration's admin and auditor.
    pub admin_key: SshKey,
}

impl Stack {
    /// Brings the stack up with `workers` workers, the committed configuration with
    /// `[quota]` raised out of the way (this is not a test of quotas), and waits until
    /// every container is healthy.
    pub fn up(workers: usize) -> Stack {
        build_images();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let compose = repository().join("compose");
        std::fs::copy(
            compose.join("docker-compose.yml"),
            dir.path().join("docker-compose.yml"),
        )
        .expect("the compose file is copied");
        let config = std::fs::read_to_string(compose.join("octobox.toml"))
            .expect("compose/octobox.toml")
            .replace("running_per_person = 4", "running_per_person = 10000")
            .replace("requests_per_minute = 60", "requests_per_minute = 100000");
        std::fs::write(dir.path().join("octobox.toml"), config).expect("config written");
        let admin_key = SshKey::generate(dir.path(), "admin");
        std::fs::write(
            dir.path().join("authorized_keys"),
            format!("identity=\"admin\" {}\n", admin_key.public),
        )
        .expect("authorized_keys written");
        let ssh_port = free_port();
        let project = format!("octoboxtest{}", std::process::id());
        let socket_group = std::fs::metadata("/var/run/docker.sock")
            .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
            .unwrap_or(0);
        std::fs::write(
            dir.path().join(".env"),
            format!(
                "COMPOSE_PROJECT_NAME={project}\n\
                 OCTOBOX_AMQP_PASSWORD=amqptestpassword\n\
                 OCTOBOX_REDIS_PASSWORD=redistestpassword\n\
                 OCTOBOX_SIGNING_KEY=octobox-stack-test-signing-key-0123456789abcdef\n\
                 OCTOBOX_DOCKER_GID={socket_group}\n\
                 OCTOBOX_SSH_PORT={ssh_port}\n\
                 OCTOBOX_RABBITMQ_IMAGE=octobox/rabbitmq:latest\n\
                 OCTOBOX_REDIS_IMAGE=octobox/redis:latest\n"
            ),
        )
        .expect(".env written");
        let stack = Stack {
            dir,
            project,
            ssh_port,
            admin_key,
        };
        stack.compose_ok(&["up", "-d", "--scale", &format!("worker={workers}")]);
        stack.wait_healthy(Duration::from_secs(240));
        stack
    }

    /// `docker-compose <args>` on this stack.
    pub fn compose(&self, args: &[&str]) -> Output {
        let file = self.dir.path().join("docker-compose.yml");
        let env = self.dir.path().join(".env");
        Command::new("docker-compose")
            .arg("-f")
            .arg(&file)
            .arg("--env-file")
            .arg(&env)
            .args(["-p", &self.project])
            .args(args)
            .output()
            .expect("docker-compose runs (Debian package docker-compose)")
    }

    /// `docker-compose <args>`, which must succeed.
    pub fn compose_ok(&self, args: &[&str]) -> String {
        let out = self.compose(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The ids of `service`'s containers (all services' for `None`).
    pub fn containers(&self, service: Option<&str>) -> Vec<String> {
        let mut args = vec!["ps", "-q"];
        args.extend(service);
        self.compose_ok(&args)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Waits until every container runs and its healthcheck passes.
    pub fn wait_healthy(&self, patience: Duration) {
        let deadline = Instant::now() + patience;
        loop {
            let states: Vec<(String, String)> = self
                .containers(None)
                .iter()
                .map(|id| (id.clone(), inspect(id, "{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}")))
                .collect();
            if !states.is_empty() && states.iter().all(|(_, s)| s.ends_with(" running healthy")) {
                return;
            }
            if Instant::now() > deadline {
                let logs = self.compose(&["logs", "--tail", "30"]);
                panic!(
                    "the stack is not healthy after {patience:?}: {states:?}\n{}",
                    String::from_utf8_lossy(&logs.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `<container's address>:9100`, where it serves `/readyz` and `/metrics`.
    pub fn http_address(&self, container: &str) -> String {
        let ip = inspect(
            container,
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        );
        format!("{ip}:9100")
    }

    /// What `service`'s containers logged.
    pub fn logs(&self, service: &str) -> String {
        String::from_utf8_lossy(&self.compose(&["logs", "--no-color", service]).stdout).into_owned()
    }

    /// `ssh -p <published port> admin@127.0.0.1` with the admin's key; add the command.
    pub fn ssh(&self) -> Command {
        let mut cmd = crate::ssh::ssh_command(self.ssh_port, &self.admin_key.path);
        cmd.arg("admin@127.0.0.1");
        cmd
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans", "-t", "5"]);
    }
}

/// `docker inspect -f <format> <container>`.
pub fn inspect(container: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, container])
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Kills a container's main process from the host with SIGKILL — a crash, as the engine
/// sees it: the restart policy brings it back (`docker kill` counts as a deliberate stop
/// on Engine 20.10, and a killed container stays down).
pub fn crash(container: &str) {
    let pid = inspect(container, "{{.State.Pid}}");
    let out = Command::new("kill")
        .args(["-KILL", &pid])
        .output()
        .expect("kill runs");
    assert!(out.status.success(), "kill -KILL {pid}: {out:?}");
}
