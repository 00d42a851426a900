//! `ContainerRunner`: runs a `Task::Container` job in a Docker container, through the
//! engine's API (bollard): the local socket by default, `DOCKER_HOST` when set (over TLS
//! with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`: `host`), or the `DockerHost` given.
//!
//! One container per job: created, attached, started, read until it closes its output,
//! inspected and removed. Argument values reach it as argv elements and environment
//! values only. The isolation in `ContainerLimits` is applied as it says: no network
//! unless one is named, read-only root with a tmpfs at `/tmp`, every capability dropped,
//! no new privileges, a pids limit, memory (without extra swap) and CPU limits, and the
//! image's own user unless it is root (uid 0, however the image spells it), else nobody,
//! unless the command names a user. The job's timeout covers the container's whole life,
//! from the image look-up (and pull) to its exit; a timeout or a `cancel` kills and
//! removes the container. Each container carries the label `octobox.job=<id>`, so one
//! left behind (a worker killed mid-job) can be found, and a name of its own, so a job
//! delivered again never collides with the container of an earlier delivery.
//!
//! - [`host`]: `DockerHost` — where the engine is and how it is reached (TLS, trusting
//!   only the CA it was given).
//! - `engine`: pulling, the exit state, removal (also of abandoned jobs), engine errors as
//!   the job's `JobFailure`.
//! - [`streams`]: reading stdout (the result) and stderr (progress lines).
//! - [`output`]: stdout to `Output`: text, decoded base64, files of known types.

mod engine;
pub mod host;
pub mod output;
pub mod streams;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{AttachContainerOptionsBuilder, CreateContainerOptionsBuilder};
use bollard::Docker;
use jobs::{ContainerLimits, Job, JobFailure, Task};
use tokio::sync::OnceCell;
use tokio::time::timeout_at;

use crate::cancel::CancelSignal;
use crate::finished::Finished;
use crate::registry::TaskContext;
use engine::{EngineError, Removal};
pub use host::DockerHost;

/// The label every job container carries, with the job id as its value.
pub const JOB_LABEL: &str = "octobox.job";
/// The label naming the worker that runs the container.
pub const WORKER_LABEL: &str = "octobox.worker";
/// The label naming the Octobox the container belongs to (`Store::scope`): a worker
/// sweeps only its own Octobox's containers.
pub const SCOPE_LABEL: &str = "octobox.scope";
/// The label with the job's attempt (retries count; a redelivery keeps it).
pub const ATTEMPT_LABEL: &str = "octobox.attempt";
/// The user a container runs as when neither the command nor the image names one.
const NOBODY: &str = "65534:65534";
/// How long the engine has to answer a worker that connects to it.
const ENGINE_ANSWER: Duration = Duration::from_secs(5);

/// Why this worker cannot reach its Docker engine. It reads as the sentence container jobs
/// fail with meanwhile (`failure`); `source` is the client's error.
#[derive(Debug, thiserror::Error)]
#[error("{failure}")]
pub struct EngineUnavailable {
    pub failure: JobFailure,
    #[source]
    source: Option<host::ConnectError>,
}

/// Runs container jobs on one Docker engine.
pub struct ContainerRunner {
    /// The client, once the engine has answered and an API version is agreed.
    docker: OnceCell<Docker>,
    /// Where the engine is and how it is reached; its address names it in messages.
    engine: DockerHost,
    /// The address, for messages: `unix:///var/run/docker.sock`.
    host: String,
    /// The containers of jobs under way, for [`ContainerRunner::remove_leftovers`].
    live: engine::Live,
    /// The worker whose jobs these are, in each container's [`WORKER_LABEL`].
    worker: String,
    /// The Octobox it belongs to (`Store::scope`), in each container's [`SCOPE_LABEL`].
    scope: String,
}

impl ContainerRunner {
    /// Connects to the engine the environment names (`DockerHost::from_env`: the local
    /// socket by default), agrees on an API version and checks that it answers. An error
    /// says why this worker cannot run containers.
    pub async fn connect() -> Result<Self, EngineUnavailable> {
        Self::connect_to(DockerHost::from_env()).await
    }

    /// [`ContainerRunner::connect`], to the engine `engine` names.
    pub async fn connect_to(engine: DockerHost) -> Result<Self, EngineUnavailable> {
        let runner = Self::unchecked_at(engine);
        runner.docker().await?;
        Ok(runner)
    }

    /// A runner that reaches the engine at its first job, and at each later one until the
    /// engine answers; meanwhile jobs fail with the reason. For a process that is the only
    /// worker (embedded mode), where container jobs would otherwise wait for ever.
    pub fn unchecked() -> Self {
        Self::unchecked_at(DockerHost::from_env())
    }

    /// [`ContainerRunner::unchecked`], for the engine `engine` names.
    pub fn unchecked_at(engine: DockerHost) -> Self {
        ContainerRunner {
            docker: OnceCell::new(),
            host: engine.url().to_string(),
            engine,
            live: Default::default(),
            worker: String::new(),
            scope: String::new(),
        }
    }

    /// The client, connecting first if no engine has answered yet.
    async fn docker(&self) -> Result<&Docker, EngineUnavailable> {
        let host = &self.host;
        self.docker
            .get_or_try_init(|| async {
                let answer = async {
                    let docker = self.engine.client()?;
                    let docker = docker.negotiate_version().await?;
                    docker.ping().await?;
                    Ok::<_, host::ConnectError>(docker)
                };
                match tokio::time::timeout(ENGINE_ANSWER, answer).await {
                    Ok(Ok(docker)) => Ok(docker),
                    Ok(Err(e)) => Err(EngineUnavailable {
                        failure: self.engine.failure(&e),
                        source: Some(e),
                    }),
                    Err(_) => Err(EngineUnavailable {
                        failure: JobFailure::EngineSlow {
                            host: host.clone(),
                            within: ENGINE_ANSWER,
                        },
                        source: None,
                    }),
                }
            })
            .await
    }

    /// Removes the containers of jobs that were abandoned (a shutdown whose grace period
    /// ran out), so that none outlives the worker.
    pub async fn remove_leftovers(&self) {
        if let Some(docker) = self.docker.get() {
            engine::remove_all(docker, &self.live).await;
        }
    }

    /// Names the worker this runner's containers belong to (their [`WORKER_LABEL`]), and
    /// the Octobox that worker is part of (their [`SCOPE_LABEL`]).
    pub fn set_worker(&mut self, name: &str, scope: &str) {
        self.worker = name.to_string();
        self.scope = scope.to_string();
    }

    /// Removes the job containers of this Octobox (its scope) no live worker holds: those
    /// of workers not in
    /// `live_workers` (they died: a SIGKILL leaves its containers running past their
    /// timeout), and those of this worker's name that it is not running (a previous life
    /// of it). Containers without a worker label are left alone. Returns how many went.
    pub async fn remove_orphans(&self, live_workers: &HashSet<String>) -> usize {
        let Some(docker) = self.docker.get() else {
            return 0;
        };
        let scoped = format!("{SCOPE_LABEL}={}", self.scope);
        let Ok(found) = engine::labelled(docker, &scoped).await else {
            return 0;
        };
        let mut removed = 0;
        for (id, labels) in found {
            let Some(owner) = labels.get(WORKER_LABEL) else {
                continue;
            };
            let orphan = if *owner == self.worker {
                !engine::is_live(&self.live, &id)
            } else {
                !live_workers.contains(owner)
            };
            if orphan {
                tracing::warn!(container = %id, worker = %owner, job = labels.get(JOB_LABEL).map(String::as_str).unwrap_or("?"), "removing a container no live worker holds");
                engine::remove(docker, &id, &self.live).await;
                removed += 1;
            }
        }
        removed
    }

    pub fn describe(&self) -> String {
        format!("Docker engine at {}", self.host)
    }

    /// Runs `ctx.job`'s container until it exits, times out or is cancelled; the
    /// container is gone when this returns.
    pub async fn run(&self, ctx: &TaskContext, cancel: &CancelSignal) -> Finished {
        let job = &ctx.job;
        let Task::Container { image, limits, .. } = &job.task else {
            return Finished::Failed(JobFailure::NotAContainerJob { job: job.id });
        };
        // From here on, every step is bounded by the job's timeout: a pull, a create or
        // an attach the engine never answers must not hold a worker slot for ever.
        let deadline = tokio::time::Instant::now() + job.timeout;
        let timed_out = || Finished::Failed(JobFailure::ContainerTimedOut { after: job.timeout });
        let docker = match self.docker().await {
            Ok(docker) => docker,
            Err(unavailable) => return Finished::Failed(unavailable.failure),
        };
        let image_user = match timeout_at(deadline, image_user(docker, image, limits.pull)).await {
            Err(_) => return timed_out(),
            Ok(Ok(user)) => user,
            Ok(Err(e)) => return Finished::Failed(e.failure(&self.host)),
        };
        let body = container_body(job, (&self.worker, &self.scope), image_user, limits);
        let name = container_name(job.id);
        let created = docker.create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        );
        let id = match timeout_at(deadline, created).await {
            Err(_) => {
                // The engine may still create it: it carries the job's label, and the
                // removal of leftovers finds it.
                return timed_out();
            }
            Ok(Ok(c)) => c.id,
            Ok(Err(e)) => {
                return Finished::Failed(
                    EngineError::new("create its container", e).failure(&self.host),
                )
            }
        };
        let removal = Removal::new(docker.clone(), id.clone(), self.live.clone());
        let attach = AttachContainerOptionsBuilder::new()
            .stream(true)
            .logs(true)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = match timeout_at(deadline, docker.attach_container(&id, Some(attach))).await
        {
            Err(_) => {
                removal.remove().await;
                return timed_out();
            }
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                removal.remove().await;
                return Finished::Failed(
                    EngineError::new("attach to its container", e).failure(&self.host),
                );
            }
        };
        match timeout_at(deadline, docker.start_container(&id, None)).await {
            Err(_) => {
                removal.remove().await;
                return timed_out();
            }
            Ok(Err(e)) => {
                removal.remove().await;
                return Finished::Failed(
                    EngineError::new("start its container", e).failure(&self.host),
                );
            }
            Ok(Ok(())) => {}
        }
        tracing::info!(job = %job.id, container = %id, %image, "container started");

        // The timeout covers the wait for the exit too: a container may close its output
        // and go on running.
        let ran = async {
            let collected = streams::collect(attached.output, limits.output_limit, ctx).await;
            (collected, engine::exit_state(docker, &id).await)
        };
        let (collected, exit) = tokio::select! {
            ran = ran => ran,
            _ = tokio::time::sleep_until(deadline) => {
                removal.remove().await;
                return timed_out();
            }
            _ = cancel.cancelled() => {
                removal.remove().await;
                let by = cancel.by().unwrap_or("someone").to_string();
                return Finished::Failed(JobFailure::Cancelled { by });
            }
        };
        removal.remove().await;
        let exit = match exit {
            Ok(exit) => exit,
            Err(e) => return Finished::Failed(e.failure(&self.host)),
        };
        if let Some(broken) = collected.broken {
            return Finished::Failed(JobFailure::OutputBroken {
                host: self.host.clone(),
                reason: broken,
            });
        }
        if exit.oom_killed {
            return Finished::Failed(JobFailure::OutOfMemory {
                limit: limits.memory,
            });
        }
        if exit.code != 0 {
            return Finished::Failed(JobFailure::Exited {
                code: exit.code,
                stderr_tail: collected.stderr_tail.into(),
            });
        }
        match output::job_output(
            collected.stdout,
            collected.cut,
            limits.output_limit,
            limits.output,
        ) {
            Ok(out) => Finished::Succeeded(out),
            Err(failure) => Finished::Failed(failure),
        }
    }
}

/// A container name of its own for a run of job `id`: the job's id, for people reading
/// `docker ps`, and a random part, so that a job delivered again (its worker was killed,
/// its container may still run) never meets `Conflict. The container name is in use`.
fn container_name(id: jobs::JobId) -> String {
    format!("octobox-{id}-{:08x}", rand::random::<u32>())
}

/// Whether `user` (an image's or a command's `USER`: `name`, `uid`, `name:group`,
/// `uid:gid`) is uid 0, however it is spelled: `root`, `0`, `00`, `root:root`, `0:1`.
pub fn is_root(user: &str) -> bool {
    let uid = user.split(':').next().unwrap_or("").trim();
    uid == "root" || (!uid.is_empty() && uid.bytes().all(|b| b == b'0'))
}

/// The user the image names, after making sure the image is there (pulling it only
/// when the command allows).
async fn image_user(
    docker: &Docker,
    image: &str,
    pull: bool,
) -> Result<Option<String>, EngineError> {
    match docker.inspect_image(image).await {
        Ok(found) => Ok(found.config.and_then(|c| c.user)),
        Err(e) if engine::is_not_found(&e) && pull => {
            engine::pull(docker, image).await?;
            let found = docker
                .inspect_image(image)
                .await
                .map_err(|e| EngineError::new("inspect the image it pulled", e))?;
            Ok(found.config.and_then(|c| c.user))
        }
        Err(e) if engine::is_not_found(&e) => Err(EngineError::MissingImage(image.to_string())),
        Err(e) => Err(EngineError::new("look up its image", e)),
    }
}

/// The container for `job`, isolated as `limits` say.
fn container_body(
    job: &Job,
    (worker, scope): (&str, &str),
    image_user: Option<String>,
    limits: &ContainerLimits,
) -> ContainerCreateBody {
    let Task::Container {
        image, argv, env, ..
    } = &job.task
    else {
        return ContainerCreateBody::default();
    };
    let image_user = image_user.filter(|u| !u.trim().is_empty() && !is_root(u));
    let user = limits
        .user
        .clone()
        .or(image_user)
        .unwrap_or_else(|| NOBODY.to_string());
    let network = limits.network.clone().unwrap_or_else(|| "none".to_string());
    let memory = i64::try_from(limits.memory).unwrap_or(i64::MAX);
    let tmpfs = HashMap::from([(
        "/tmp".to_string(),
        format!("rw,noexec,nosuid,nodev,size={}", limits.tmpfs),
    )]);
    let labels = HashMap::from([
        (JOB_LABEL.to_string(), job.id.to_string()),
        ("octobox.command".to_string(), job.command.clone()),
        (WORKER_LABEL.to_string(), worker.to_string()),
        (SCOPE_LABEL.to_string(), scope.to_string()),
        (ATTEMPT_LABEL.to_string(), job.attempt.to_string()),
    ]);
    ContainerCreateBody {
        image: Some(image.clone()),
        cmd: (!argv.is_empty()).then(|| argv.clone()),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        user: Some(user),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        open_stdin: Some(false),
        network_disabled: Some(limits.network.is_none()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some(network),
            readonly_rootfs: Some(limits.read_only),
            tmpfs: Some(tmpfs),
            cap_drop: Some(vec!["ALL".to_string()]),
            cap_add: (!limits.capabilities.is_empty()).then(|| limits.capabilities.clone()),
            security_opt: Some(vec!["no-new-privileges".to_string()]),
            pids_limit: Some(i64::from(limits.pids)),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some(i64::try_from(limits.nano_cpus).unwrap_or(i64::MAX)),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_0_is_root_however_it_is_spelled() {
        for root in ["root", "0", "00", "root:root", "0:1", "root:0", " 0 "] {
            assert!(is_root(root), "{root}");
        }
        for other in ["nobody", "65534:65534", "1000:0", "10", "rooted", ""] {
            assert!(!is_root(other), "{other}");
        }
    }

    #[test]
    fn each_run_of_a_job_has_a_container_name_of_its_own() {
        let id = jobs::JobId::new();
        let (a, b) = (container_name(id), container_name(id));
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("octobox-{id}-")), "{a}");
    }
}
