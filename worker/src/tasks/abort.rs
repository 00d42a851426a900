//! `abort`: ends the worker process on the spot, to rehearse what a crashing task does to
//! the system (the job is redelivered, then dead-lettered past the delivery limit).
//!
//! Never in the standard registry: `octobox-worker` registers it only when started with
//! `OCTOBOX_CHAOS_TASKS=1`.

use async_trait::async_trait;
use jobs::Output;

use crate::registry::{NativeTask, TaskContext, TaskError};

pub struct Abort;

#[async_trait]
impl NativeTask for Abort {
    async fn run(&self, ctx: &TaskContext) -> Result<Output, TaskError> {
        tracing::error!(job = %ctx.job.id, "abort task: ending the worker process now");
        std::process::abort()
    }
}
