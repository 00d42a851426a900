//! The [`InventoryStore`] in Redis.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `octobox:inventory:hosts` | HASH | host name to the JSON `Host` |
//! | `octobox:inventory:groups` | HASH | group name to its number of hosts |
//! | `octobox:inventory:group:<name>` | SET | the names of the group's hosts |
//!
//! A swap is one script: it compares the stored JSON with the one the caller read and
//! only then writes the new one and moves the host between group sets, so the index
//! never disagrees with the hosts. A swap retried after a lost reply finds its own JSON
//! (or its own removal) and counts as done.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use ::redis::Script;
use async_trait::async_trait;

use super::RedisStore;
use crate::inventory::{group_changes, Host, InventoryStore, Swapped, MAX_HOSTS};
use crate::store::StoreError;

/// KEYS: hosts, group counts, then the sets of the groups joined, then of those left.
/// ARGV: name, JSON as read ("" = absent), new JSON ("" = remove), max hosts, number of
/// groups joined, then the group names in the order of their keys.
/// 1 done, 0 changed since read, -1 full.
static SWAP_HOST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == false then cur = '' end
if cur == ARGV[3] then return 1 end
if cur ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  if cur == '' and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return -1 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
local joined = tonumber(ARGV[5])
for i = 3, #KEYS do
  local group = ARGV[i + 3]
  if i - 2 <= joined then
    redis.call('SADD', KEYS[i], ARGV[1])
    redis.call('HINCRBY', KEYS[2], group, 1)
  else
    redis.call('SREM', KEYS[i], ARGV[1])
    if redis.call('HINCRBY', KEYS[2], group, -1) <= 0 then redis.call('HDEL', KEYS[2], group) end
  end
end
return 1
",
    )
});

fn json(host: Option<&Host>) -> Result<String, StoreError> {
    host.map_or(Ok(String::new()), |h| {
        serde_json::to_string(h).map_err(|e| corrupt(&h.name, e))
    })
}

fn corrupt(name: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: format!("inventory host {name}"),
        reason: e.to_string(),
    }
}

#[async_trait]
impl InventoryStore for RedisStore {
    async fn host(&self, name: &str) -> Result<Option<Host>, StoreError> {
        let key = self.keys.inventory_hosts();
        let stored = self
            .retrying("read an inventory host", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("HGET").arg(&key).arg(name).to_owned();
                async move { cmd.query_async::<Option<String>>(&mut con).await }
            })
            .await?;
        stored
            .map(|text| serde_json::from_str(&text).map_err(|e| corrupt(name, e)))
            .transpose()
    }

    async fn swap_host(
        &self,
        name: &str,
        was: Option<&Host>,
        now: Option<&Host>,
    ) -> Result<Swapped, StoreError> {
        let (old, new) = (json(was)?, json(now)?);
        let (joined, left) = group_changes(was, now);
        let (hosts, counts) = (self.keys.inventory_hosts(), self.keys.inventory_groups());
        let swapped = self
            .acknowledged("change an inventory host", |redis| {
                let mut call = SWAP_HOST.prepare_invoke();
                call.key(&hosts).key(&counts);
                for group in joined.iter().chain(&left) {
                    call.key(self.keys.inventory_group(group));
                }
                call.arg(name).arg(&old).arg(&new).arg(MAX_HOSTS);
                call.arg(joined.len());
                for group in joined.iter().chain(&left) {
                    call.arg(*group);
                }
                let acks = self.acks;
                async move { acks.invoke::<i64>(&redis, &SWAP_HOST, &call).await }
            })
            .await?;
        Ok(match swapped {
            1 => Swapped::Done,
            -1 => Swapped::Full,
            _ => Swapped::Changed,
        })
    }

    async fn group(&self, group: &str) -> Result<Vec<String>, StoreError> {
        let key = self.keys.inventory_group(group);
        let mut names = self
            .retrying("read an inventory group", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("SMEMBERS").arg(&key).to_owned();
                async move { cmd.query_async::<Vec<String>>(&mut con).await }
            })
            .await?;
        names.sort();
        Ok(names)
    }

    async fn groups(&self) -> Result<BTreeMap<String, usize>, StoreError> {
        let key = self.keys.inventory_groups();
        self.retrying("read the inventory's groups", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("HGETALL").arg(&key).to_owned();
            async move { cmd.query_async::<BTreeMap<String, usize>>(&mut con).await }
        })
        .await
    }

    async fn hosts(&self) -> Result<Vec<Host>, StoreError> {
        let key = self.keys.inventory_hosts();
        let stored = self
            .retrying("read the inventory", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("HGETALL").arg(&key).to_owned();
                async move { cmd.query_async::<BTreeMap<String, String>>(&mut con).await }
            })
            .await?;
        stored
            .iter()
            .map(|(name, text)| serde_json::from_str(text).map_err(|e| corrupt(name, e)))
            .collect()
    }
}
