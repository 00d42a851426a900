//! `sleep`: waits, then says how long. Useful to see queueing, timeouts and cancellation.

use async_trait::async_trait;
use jobs::Output;

use crate::registry::{NativeTask, TaskContext, TaskError};

pub struct Sleep;

#[async_trait]
impl NativeTask for Sleep {
    fn params(&self) -> &'static [&'static str] {
        &["for"]
    }

    async fn run(&self, ctx: &TaskContext) -> Result<Output, TaskError> {
        let value = ctx
            .arg("for")
            .ok_or_else(|| TaskError::BadArgument("for".into()))?;
        let duration = value
            .as_duration()
            .ok_or_else(|| TaskError::BadArgument("for".into()))?;
        tokio::time::sleep(duration).await;
        Ok(Output::text(format!("slept {value}")))
    }
}
