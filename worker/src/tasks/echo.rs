//! `echo`: returns its text. The smallest round trip through the whole pipeline.

use async_trait::async_trait;
use jobs::Output;

use crate::registry::{NativeTask, TaskContext, TaskError};

pub struct Echo;

#[async_trait]
impl NativeTask for Echo {
    fn params(&self) -> &'static [&'static str] {
        &["text"]
    }

    async fn run(&self, ctx: &TaskContext) -> Result<Output, TaskError> {
        Ok(Output::text(ctx.text_arg("text")?))
    }
}
