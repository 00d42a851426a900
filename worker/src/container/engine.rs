//! The Docker engine calls around one container that need more than one line: pulling,
//! reading the exit state, removing (also when the job's future is dropped), and telling
//! engine errors as the job's `JobFailure`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use jobs::JobFailure;

/// How a container ended.
pub struct ExitState {
    pub code: i64,
    pub oom_killed: bool,
}

/// Why the engine could not do what the job needed.
#[derive(Debug)]
pub enum EngineError {
    MissingImage(String),
    Call {
        doing: &'static str,
        error: DockerError,
    },
}

impl EngineError {
    pub fn new(doing: &'static str, error: DockerError) -> Self {
        EngineError::Call { doing, error }
    }

    /// The job's failure, for the engine at `host`.
    pub fn failure(&self, host: &str) -> JobFailure {
        match self {
            EngineError::MissingImage(image) => JobFailure::MissingImage {
                image: image.clone(),
            },
            EngineError::Call {
                doing,
                error: DockerError::DockerResponseServerError { message, .. },
            } => JobFailure::EngineRefused {
                host: host.to_string(),
                doing: doing.to_string(),
                message: message.clone(),
            },
            EngineError::Call { doing, error } => JobFailure::EngineGone {
                host: host.to_string(),
                doing: doing.to_string(),
                reason: error.to_string(),
            },
        }
    }
}

pub fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Pulls `image` from its registry.
pub async fn pull(docker: &Docker, image: &str) -> Result<(), EngineError> {
    let options = CreateImageOptionsBuilder::new().from_image(image).build();
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(step) = progress.next().await {
        step.map_err(|e| EngineError::new("pull its image", e))?;
    }
    tracing::info!(%image, "image pulled");
    Ok(())
}

/// Waits for container `id` to stop and reads how it ended.
pub async fn exit_state(docker: &Docker, id: &str) -> Result<ExitState, EngineError> {
    // The wait reports a non-zero exit as an error; the inspection below reads it either way.
    let mut wait = docker.wait_container(id, None);
    let _ = wait.next().await;
    let inspected = docker
        .inspect_container(id, None)
        .await
        .map_err(|e| EngineError::new("inspect its container", e))?;
    let state = inspected.state.unwrap_or_default();
    Ok(ExitState {
        code: state.exit_code.unwrap_or(-1),
        oom_killed: state.oom_killed.unwrap_or(false),
    })
}

/// The containers this worker created and has not removed yet.
pub type Live = Arc<Mutex<HashSet<String>>>;

/// Removes a container (killing it if it runs) when asked, or when dropped unasked: a
/// job whose future is dropped (a worker shutting down) leaves no container behind.
/// While it lives, the container is in the worker's `Live` set.
pub struct Removal {
    docker: Docker,
    id: Option<String>,
    live: Live,
}

impl Removal {
    pub fn new(docker: Docker, id: String, live: Live) -> Self {
        lock(&live).insert(id.clone());
        Removal {
            docker,
            id: Some(id),
            live,
        }
    }

    pub async fn remove(mut self) {
        if let Some(id) = self.id.take() {
            remove(&self.docker, &id, &self.live).await;
        }
    }
}

impl Drop for Removal {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let (docker, live) = (self.docker.clone(), self.live.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { remove(&docker, &id, &live).await });
        }
    }
}

/// Whether container `id` is one of this worker's jobs under way.
pub fn is_live(live: &Live, id: &str) -> bool {
    lock(live).contains(id)
}

/// Every container, running or not, that carries `label`, with its labels.
pub async fn labelled(
    docker: &Docker,
    label: &str,
) -> Result<Vec<(String, HashMap<String, String>)>, DockerError> {
    let filters = HashMap::from([("label", vec![label])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let found = docker.list_containers(Some(options)).await?;
    Ok(found
        .into_iter()
        .filter_map(|c| Some((c.id?, c.labels.unwrap_or_default())))
        .collect())
}

/// Removes every container still in `live` (at shutdown, after the grace period).
pub async fn remove_all(docker: &Docker, live: &Live) {
    let left: Vec<String> = lock(live).iter().cloned().collect();
    for id in left {
        remove(docker, &id, live).await;
    }
}

pub async fn remove(docker: &Docker, id: &str, live: &Live) {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => tracing::debug!(container = %id, "container removed"),
        Err(e) if is_not_found(&e) => {}
        // Another removal of it is under way (a dropped job's, at shutdown): wait for it.
        Err(DockerError::DockerResponseServerError {
            status_code: 409, ..
        }) => {
            for _ in 0..100 {
                match docker.inspect_container(id, None).await {
                    Err(e) if is_not_found(&e) => break,
                    _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            }
        }
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "container not removed");
            return;
        }
    }
    lock(live).remove(id);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
