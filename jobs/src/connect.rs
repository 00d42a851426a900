//! Opening the durable broker and store a configuration names: the one way every role
//! (bot, worker) connects to RabbitMQ and Redis.

use std::sync::Arc;

use crate::rabbit::RabbitBroker;
use crate::redis::RedisStore;
use crate::{Broker, BrokerError, InventoryStore, ScheduleStore, Store, StoreError};
use config::{BrokerConfig, StoreConfig};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach the job queue: {0}")]
    Broker(#[from] BrokerError),
    #[error("cannot reach the job store: {0}")]
    Store(#[from] StoreError),
}

/// Connects to RabbitMQ and Redis, declaring the job topology on the way.
pub async fn connect(
    broker: &BrokerConfig,
    store: &StoreConfig,
) -> Result<(Arc<dyn Broker>, Arc<dyn Store>), ConnectError> {
    let broker = RabbitBroker::connect(broker).await?;
    let store = RedisStore::connect(store).await?;
    tracing::info!(broker = %broker.describe(), store = %store.describe(), "durable jobs");
    Ok((Arc::new(broker), Arc::new(store)))
}

/// Opens the schedule store in the Redis the configuration names (a connection of its
/// own, so a busy scheduler never waits behind job traffic).
pub async fn schedule_store(store: &StoreConfig) -> Result<Arc<dyn ScheduleStore>, ConnectError> {
    Ok(Arc::new(RedisStore::connect(store).await?))
}

/// Opens the inventory in the Redis the configuration names.
pub async fn inventory(store: &StoreConfig) -> Result<Arc<dyn InventoryStore>, ConnectError> {
    Ok(Arc::new(RedisStore::connect(store).await?))
}
