//! `MemoryInventory`: the embedded twin of the inventory; gone when the process stops.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::inventory::{group_changes, Host, InventoryStore, Swapped, MAX_HOSTS};
use crate::store::StoreError;

#[derive(Default)]
struct State {
    hosts: BTreeMap<String, Host>,
    /// Group name to its hosts' names, kept in step with `hosts`.
    groups: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Default)]
pub struct MemoryInventory {
    state: Mutex<State>,
}

impl MemoryInventory {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl InventoryStore for MemoryInventory {
    async fn host(&self, name: &str) -> Result<Option<Host>, StoreError> {
        Ok(self.state().hosts.get(name).cloned())
    }

    async fn swap_host(
        &self,
        name: &str,
        was: Option<&Host>,
        now: Option<&Host>,
    ) -> Result<Swapped, StoreError> {
        let mut s = self.state();
        // As in Redis: a swap repeated after it landed finds its own result.
        if s.hosts.get(name) == now {
            return Ok(Swapped::Done);
        }
        if s.hosts.get(name) != was {
            return Ok(Swapped::Changed);
        }
        if was.is_none() && now.is_some() && s.hosts.len() >= MAX_HOSTS {
            return Ok(Swapped::Full);
        }
        let (added, removed) = group_changes(was, now);
        for group in added {
            s.groups
                .entry(group.to_string())
                .or_default()
                .insert(name.to_string());
        }
        for group in removed {
            if let Some(members) = s.groups.get_mut(group) {
                members.remove(name);
                if members.is_empty() {
                    s.groups.remove(group);
                }
            }
        }
        match now {
            Some(host) => s.hosts.insert(name.to_string(), host.clone()),
            None => s.hosts.remove(name),
        };
        Ok(Swapped::Done)
    }

    async fn group(&self, group: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .state()
            .groups
            .get(group)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn groups(&self) -> Result<BTreeMap<String, usize>, StoreError> {
        Ok(self
            .state()
            .groups
            .iter()
            .map(|(g, m)| (g.clone(), m.len()))
            .collect())
    }

    async fn hosts(&self) -> Result<Vec<Host>, StoreError> {
        Ok(self.state().hosts.values().cloned().collect())
    }
}
