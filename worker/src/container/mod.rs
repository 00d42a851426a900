//! `ContainerRunner`: runs a `Task::Container` job in a Docker container, through the
//! engine's API (bollard): the local socket by default, `DOCKER_HOST` when set.
//!
//! One container per job: created, attached, started, read until it closes its output,
//! inspected and removed. Argument values reach it as argv elements and environment
//! values only. The isolation in `ContainerLimits` is applied as it says: no network
//! unless one is named, read-only root with a tmpfs at `/tmp`, every capability dropped,
//! no new privileges, a pids limit, memory (without extra swap) and CPU limits, and the
//! image's own non-root user or else nobody, unless the command names a user. A timeout or a `cancel` kills and removes
//! the container. Each container carries the label `octobox.job=<id>`, so one left
//! behind (a worker killed mid-job) can be found.
//!
//! - `engine`: pulling, the exit state, removal (also of abandoned jobs), engine errors as
//!   sentences.
//! - [`streams`]: reading stdout (the result) and stderr (progress lines).
//! - [`output`]: stdout to `Output`: text, decoded base64, files of known types.

mod engine;
pub mod output;
pub mod streams;

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{AttachContainerOptionsBuilder, CreateContainerOptionsBuilder};
use bollard::Docker;
use config::limits::format_size;
use jobs::{ContainerLimits, Job, JobStatus, Output, Task};
use tokio::sync::OnceCell;

use crate::cancel::{cancelled_by, CancelSignal};
use crate::registry::TaskContext;
use engine::{EngineError, Removal};

/// How a container job ended: status, output, and the sentence for a failure.
pub type Finished = (JobStatus, Output, Option<String>);

/// The label every job container carries, with the job id as its value.
pub const JOB_LABEL: &str = "octobox.job";
/// The user a container runs as when neither the command nor the image names one.
const NOBODY: &str = "65534:65534";

/// Runs container jobs on one Docker engine.
pub struct ContainerRunner {
    /// The client, once the engine has answered and an API version is agreed.
    docker: OnceCell<Docker>,
    /// Where the engine is, for messages: `unix:///var/run/docker.sock`.
    host: String,
    /// The containers of jobs under way, for [`ContainerRunner::remove_leftovers`].
    live: engine::Live,
}

impl ContainerRunner {
    /// Connects to the engine `DOCKER_HOST` names (the local socket by default), agrees
    /// on an API version and checks that it answers. An error is a sentence saying why
    /// this worker cannot run containers.
    pub async fn connect() -> Result<Self, String> {
        let runner = Self::unchecked();
        runner.docker().await?;
        Ok(runner)
    }

    /// A runner that reaches the engine at its first job, and at each later one until the
    /// engine answers; meanwhile jobs fail with the reason. For a process that is the only
    /// worker (embedded mode), where container jobs would otherwise wait for ever.
    pub fn unchecked() -> Self {
        let host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        ContainerRunner {
            docker: OnceCell::new(),
            host,
            live: Default::default(),
        }
    }

    /// The client, connecting first if no engine has answered yet.
    async fn docker(&self) -> Result<&Docker, String> {
        let host = &self.host;
        self.docker
            .get_or_try_init(|| async {
                let answer = async {
                    let docker = Docker::connect_with_defaults()?;
                    let docker = docker.negotiate_version().await?;
                    docker.ping().await?;
                    Ok::<_, bollard::errors::Error>(docker)
                };
                match tokio::time::timeout(Duration::from_secs(5), answer).await {
                    Ok(Ok(docker)) => Ok(docker),
                    Ok(Err(e)) => Err(format!("the Docker engine at {host} does not answer: {e}")),
                    Err(_) => Err(format!(
                        "the Docker engine at {host} did not answer within 5 seconds"
                    )),
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

    pub fn describe(&self) -> String {
        format!("Docker engine at {}", self.host)
    }

    /// Runs `ctx.job`'s container until it exits, times out or is cancelled; the
    /// container is gone when this returns.
    pub async fn run(&self, ctx: &TaskContext, cancel: &CancelSignal) -> Finished {
        let job = &ctx.job;
        let Task::Container { image, limits, .. } = &job.task else {
            return failed(format!("job {} is not a container job", job.id));
        };
        let docker = match self.docker().await {
            Ok(docker) => docker,
            Err(why) => return failed(why),
        };
        let image_user = match image_user(docker, image, limits.pull).await {
            Ok(user) => user,
            Err(e) => return failed(e.sentence(&self.host)),
        };
        let body = container_body(job, image_user, limits);
        let name = format!("octobox-{}", job.id);
        let created = docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            )
            .await;
        let id = match created {
            Ok(c) => c.id,
            Err(e) => {
                return failed(EngineError::new("create its container", e).sentence(&self.host))
            }
        };
        let removal = Removal::new(docker.clone(), id.clone(), self.live.clone());
        let attach = AttachContainerOptionsBuilder::new()
            .stream(true)
            .logs(true)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = match docker.attach_container(&id, Some(attach)).await {
            Ok(a) => a,
            Err(e) => {
                removal.remove().await;
                return failed(EngineError::new("attach to its container", e).sentence(&self.host));
            }
        };
        if let Err(e) = docker.start_container(&id, None).await {
            removal.remove().await;
            return failed(EngineError::new("start its container", e).sentence(&self.host));
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
            _ = tokio::time::sleep(job.timeout) => {
                removal.remove().await;
                let why = format!(
                    "timed out after {}; its container was stopped and removed",
                    lexicon::format_duration(job.timeout)
                );
                return (JobStatus::TimedOut, Output::Empty, Some(why));
            }
            _ = cancel.cancelled() => {
                removal.remove().await;
                let by = cancel.by().unwrap_or("someone");
                return (JobStatus::Cancelled, Output::Empty, Some(cancelled_by(by)));
            }
        };
        removal.remove().await;
        let exit = match exit {
            Ok(exit) => exit,
            Err(e) => return failed(e.sentence(&self.host)),
        };
        if let Some(broken) = &collected.broken {
            return failed(format!(
                "the Docker engine at {} stopped sending the container's output: {broken}",
                self.host
            ));
        }
        if exit.oom_killed {
            return failed(format!(
                "its container ran out of memory (the limit is {}) and was stopped",
                format_size(limits.memory)
            ));
        }
        if exit.code != 0 {
            let tail: Vec<_> = collected.stderr_tail.iter().map(String::as_str).collect();
            let why = if tail.is_empty() {
                format!(
                    "its container exited with status {} (it wrote nothing to stderr)",
                    exit.code
                )
            } else {
                format!(
                    "its container exited with status {}; its last lines on stderr:\n{}",
                    exit.code,
                    tail.join("\n")
                )
            };
            return failed(why);
        }
        match output::job_output(
            collected.stdout,
            collected.cut,
            limits.output_limit,
            limits.output,
        ) {
            Ok(out) => (JobStatus::Succeeded, out, None),
            Err(why) => failed(why),
        }
    }
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

fn failed(why: String) -> Finished {
    (JobStatus::Failed, Output::Empty, Some(why))
}

/// The container for `job`, isolated as `limits` say.
fn container_body(
    job: &Job,
    image_user: Option<String>,
    limits: &ContainerLimits,
) -> ContainerCreateBody {
    let Task::Container {
        image, argv, env, ..
    } = &job.task
    else {
        return ContainerCreateBody::default();
    };
    let image_user =
        image_user.filter(|u| !u.is_empty() && !matches!(u.as_str(), "root" | "0" | "0:0"));
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
