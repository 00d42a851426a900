//! Fan-out progress in Redis: which of a fan-out's jobs have ended, and how.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `octobox:fan-out:<parent>:ended` | HASH | child job id to its final status; expires with the history |
//! | `octobox:fan-out:<parent>:counts` | HASH | status to how many children ended with it; likewise |
//!
//! One script notes a child (`HSETNX`, so a `finished` event read twice counts once)
//! and answers the counts, so each caller sees counts that include its own child.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use ::redis::Script;

use super::{millis, RedisStore};
use crate::job::{JobId, JobStatus};
use crate::store::{ChildCounts, StoreError};

/// KEYS: ended, counts. ARGV: child id, status, ttl (ms). The counts, as HGETALL gives them.
static NOTE_CHILD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return redis.call('HGETALL', KEYS[2])
",
    )
});

impl RedisStore {
    pub(super) async fn note_child(
        &self,
        parent: JobId,
        child: JobId,
        status: JobStatus,
    ) -> Result<ChildCounts, StoreError> {
        let (ended, counts) = (
            self.keys.fan_out_ended(parent),
            self.keys.fan_out_counts(parent),
        );
        let child = child.to_string();
        let ttl = millis(self.retention).max(1);
        let by_status = self
            .retrying("note a fan-out's job ended", |redis| {
                let mut con = redis.shared.clone();
                let mut call = NOTE_CHILD.prepare_invoke();
                call.key(&ended).key(&counts);
                call.arg(&child).arg(status.as_str()).arg(ttl);
                async move { call.invoke_async::<BTreeMap<String, usize>>(&mut con).await }
            })
            .await?;
        Ok(ChildCounts { by_status })
    }
}
