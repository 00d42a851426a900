//! The embedded twins of the broker and the store: the same contracts, in one process's
//! memory. They make embedded mode (and fast unit tests) behave like the real thing, but
//! everything they hold is gone when the process stops.

mod broker;
mod fan_out;
mod inventory;
mod places;
mod schedules;
mod store;
mod trail;

pub use broker::MemoryBroker;
pub use inventory::MemoryInventory;
pub use schedules::MemoryScheduleStore;
pub use store::MemoryStore;
