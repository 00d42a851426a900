//! What the Redis tests share: a private `redis-server` for each test
//! (`test_services::Redis`, started and stopped off the runtime, append-only on, on a
//! free port), and `RedisStore`s on it.

use std::time::Duration;

use config::{Secret, StoreConfig};
use jobs::redis::RedisStore;
use test_services::Redis;

pub const WEEK: Duration = Duration::from_secs(7 * 86_400);

/// The harness starts and stops servers with blocking calls; keep them off the runtime.
pub async fn start_redis() -> Redis {
    tokio::task::spawn_blocking(Redis::start).await.unwrap()
}

pub async fn stop_redis(redis: Redis) {
    tokio::task::spawn_blocking(move || drop(redis))
        .await
        .unwrap();
}

/// The configuration of a store on the Redis at `url`, keeping jobs for `retention`.
pub fn config(url: &str, retention: Duration) -> StoreConfig {
    StoreConfig {
        retention,
        ..StoreConfig::new(Secret::new(url))
    }
}

/// A store as tests use it: a one-second claim idle time, a week of retention.
pub async fn store_on(redis: &Redis) -> RedisStore {
    store_with(redis, WEEK).await
}

pub async fn store_with(redis: &Redis, retention: Duration) -> RedisStore {
    RedisStore::connect(&config(&redis.url(), retention))
        .await
        .expect("the store connects to a running Redis")
        .with_claim_idle(Duration::from_secs(1))
}
