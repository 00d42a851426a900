//! Notes: small values adapters keep for a while and share across bot processes (an event
//! already handled, the Slack message that shows a job's status).

use std::time::Duration;

use super::{millis, RedisStore};
use crate::store::StoreError;

impl RedisStore {
    /// `SET NX GET`: if the reply to a successful first attempt is lost, the retry reads
    /// back its own value and still answers `true`.
    pub(super) async fn note_once(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.keys.note(key);
        let ttl = millis(ttl).max(1);
        let previous = self
            .retrying("keep a note", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("NX")
                    .arg("GET")
                    .arg("PX")
                    .arg(ttl)
                    .to_owned();
                async move { cmd.query_async::<Option<String>>(&mut con).await }
            })
            .await?;
        Ok(previous.is_none_or(|held| held == value))
    }

    pub(super) async fn read_note(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = self.keys.note(key);
        self.retrying("read a note", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("GET").arg(&key).to_owned();
            async move { cmd.query_async::<Option<String>>(&mut con).await }
        })
        .await
    }
}
