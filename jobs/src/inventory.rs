//! The inventory: hosts, the groups they are in and their attributes — what `servers in
//! group web` reads, kept where the jobs are (`RedisStore`; `MemoryInventory` in embedded
//! mode) so every bot process sees the same one.
//!
//! A store offers reads and one write, [`InventoryStore::swap_host`]: replace a host as
//! it was read by what it is now, or be told someone changed it in between. Every change
//! ([`update_host`]) is a read, a pure edit and a swap, tried again on a conflict, so two
//! people adding the same host to two groups at once both get their group.
//!
//! Everything is bounded: [`MAX_HOSTS`] hosts, [`MAX_GROUPS_PER_HOST`] groups and
//! [`MAX_ATTRIBUTES`] attributes a host, names and values checked by [`check_host_name`],
//! [`check_group_name`] and [`check_attribute`] before anything is stored.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// Hosts the inventory holds at most.
pub const MAX_HOSTS: usize = 10_000;
/// Groups one host is in at most.
pub const MAX_GROUPS_PER_HOST: usize = 64;
/// Attributes one host has at most.
pub const MAX_ATTRIBUTES: usize = 64;
/// Characters in a host name at most (DNS's limit).
pub const MAX_HOST_NAME: usize = 253;
/// Characters in a group name or an attribute's name at most.
pub const MAX_NAME: usize = 64;
/// Characters in an attribute's value at most.
pub const MAX_VALUE: usize = 1024;
/// Swaps tried before a change gives up (someone else kept changing the host).
const SWAP_ATTEMPTS: usize = 16;

/// One host: its name, the groups it is in, its attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    #[serde(default)]
    pub groups: BTreeSet<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Host {
    pub fn new(name: impl Into<String>) -> Self {
        Host {
            name: name.into(),
            ..Host::default()
        }
    }

    /// Checks every name and value and every bound; the first problem in words.
    pub fn check(&self) -> Result<(), InventoryError> {
        check_host_name(&self.name)?;
        if self.groups.len() > MAX_GROUPS_PER_HOST {
            return Err(InventoryError::Invalid(format!(
                "host {} would be in {} groups; a host is in at most {MAX_GROUPS_PER_HOST}",
                self.name,
                self.groups.len()
            )));
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(InventoryError::Invalid(format!(
                "host {} would have {} attributes; a host has at most {MAX_ATTRIBUTES}",
                self.name,
                self.attributes.len()
            )));
        }
        for group in &self.groups {
            check_group_name(group)?;
        }
        for (key, value) in &self.attributes {
            check_attribute(key, value)?;
        }
        Ok(())
    }
}

/// Why the inventory refused a change, or could not make it.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A name, a value or a bound: the sentence says which and what is allowed.
    #[error("{0}")]
    Invalid(String),
    #[error("the inventory holds {MAX_HOSTS} hosts, as many as it may; remove some first")]
    Full,
    #[error("host {0} is not in the inventory")]
    UnknownHost(String),
    #[error("host {0} kept changing while this change was made; try again")]
    Contended(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A host name: 1–253 characters of letters, digits and `.-_:` (a name or an address),
/// not starting with `-`.
pub fn check_host_name(name: &str) -> Result<(), InventoryError> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if name.is_empty() || name.len() > MAX_HOST_NAME {
        return Err(InventoryError::Invalid(format!(
            "a host name has 1 to {MAX_HOST_NAME} characters; this one has {}",
            name.chars().count()
        )));
    }
    if name.starts_with('-') || !name.chars().all(fine) {
        return Err(InventoryError::Invalid(format!(
            "\"{}\" is not a host name: letters, digits and . - _ : only, not starting with -",
            shown(name)
        )));
    }
    Ok(())
}

/// A group name: 1–64 letters, digits, `-_.`, starting with a letter or digit.
pub fn check_group_name(name: &str) -> Result<(), InventoryError> {
    check_name("group", name)
}

/// An attribute: a name as a group's, a value of at most 1,024 characters with no
/// control characters.
pub fn check_attribute(key: &str, value: &str) -> Result<(), InventoryError> {
    check_name("attribute", key)?;
    if value.chars().count() > MAX_VALUE {
        return Err(InventoryError::Invalid(format!(
            "attribute {key}'s value has more than {MAX_VALUE} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(InventoryError::Invalid(format!(
            "attribute {key}'s value holds a control character"
        )));
    }
    Ok(())
}

fn check_name(what: &str, name: &str) -> Result<(), InventoryError> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let first_fine = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > MAX_NAME || !first_fine || !name.chars().all(fine) {
        return Err(InventoryError::Invalid(format!(
            "\"{}\" is not a {what} name: 1 to {MAX_NAME} letters, digits and - _ ., \
             starting with a letter or digit",
            shown(name)
        )));
    }
    Ok(())
}

/// At most 80 characters of what someone typed, control characters replaced.
fn shown(text: &str) -> String {
    text.chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// What a swap did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Swapped {
    Done,
    /// The host was no longer as read: read it again.
    Changed,
    /// A new host would pass [`MAX_HOSTS`].
    Full,
}

/// Where the inventory is kept.
#[async_trait]
pub trait InventoryStore: Send + Sync {
    async fn host(&self, name: &str) -> Result<Option<Host>, StoreError>;

    /// Replaces host `name` as `was` (`None`: absent) by `now` (`None`: removed), keeping
    /// the group index in step, in one step.
    async fn swap_host(
        &self,
        name: &str,
        was: Option<&Host>,
        now: Option<&Host>,
    ) -> Result<Swapped, StoreError>;

    /// The names of group `group`'s hosts, sorted.
    async fn group(&self, group: &str) -> Result<Vec<String>, StoreError>;

    /// Every group with its number of hosts, by name.
    async fn groups(&self) -> Result<BTreeMap<String, usize>, StoreError>;

    /// Every host (at most [`MAX_HOSTS`]), by name.
    async fn hosts(&self) -> Result<Vec<Host>, StoreError>;
}

/// Changes host `name` by `edit` (given the host as it is, `None` when absent; answering
/// the host as it should be, `None` to remove it), retrying when someone else changed it
/// in between. Answers the host as it was before the change that was made, and as it is.
pub async fn update_host<F>(
    store: &dyn InventoryStore,
    name: &str,
    edit: F,
) -> Result<(Option<Host>, Option<Host>), InventoryError>
where
    F: Fn(Option<Host>) -> Result<Option<Host>, InventoryError>,
{
    check_host_name(name)?;
    for _ in 0..SWAP_ATTEMPTS {
        let was = store.host(name).await?;
        let now = edit(was.clone())?;
        if let Some(host) = &now {
            host.check()?;
        }
        match store.swap_host(name, was.as_ref(), now.as_ref()).await? {
            Swapped::Done => return Ok((was, now)),
            Swapped::Full => return Err(InventoryError::Full),
            Swapped::Changed => continue,
        }
    }
    Err(InventoryError::Contended(name.to_string()))
}

/// Adds host `name` to `group` (making the host if it is new).
pub async fn add_to_group(
    store: &dyn InventoryStore,
    name: &str,
    group: &str,
) -> Result<Host, InventoryError> {
    check_group_name(group)?;
    let (_, host) = update_host(store, name, |was| {
        let mut host = was.unwrap_or_else(|| Host::new(name));
        host.groups.insert(group.to_string());
        Ok(Some(host))
    })
    .await?;
    Ok(host.expect("an added host is there"))
}

/// Takes host `name` out of `group` (it stays in the inventory).
pub async fn remove_from_group(
    store: &dyn InventoryStore,
    name: &str,
    group: &str,
) -> Result<Host, InventoryError> {
    check_group_name(group)?;
    let (_, host) = update_host(store, name, |was| {
        let mut host = was.ok_or_else(|| InventoryError::UnknownHost(name.to_string()))?;
        if !host.groups.remove(group) {
            return Err(InventoryError::Invalid(format!(
                "host {name} is not in group {group}"
            )));
        }
        Ok(Some(host))
    })
    .await?;
    Ok(host.expect("a host taken out of a group is still there"))
}

/// Removes host `name` from the inventory and from every group; the host as it was.
pub async fn remove_host(store: &dyn InventoryStore, name: &str) -> Result<Host, InventoryError> {
    let (was, _) = update_host(store, name, |was| match was {
        Some(_) => Ok(None),
        None => Err(InventoryError::UnknownHost(name.to_string())),
    })
    .await?;
    Ok(was.expect("a removed host was there"))
}

/// Merges `host` into the inventory: its groups added to the host's, its attributes set
/// over the host's (an import). Answers the host as it was, and as it is now.
pub async fn merge_host(
    store: &dyn InventoryStore,
    host: &Host,
) -> Result<(Option<Host>, Host), InventoryError> {
    let (was, merged) = update_host(store, &host.name, |was| {
        let mut now = was.unwrap_or_else(|| Host::new(host.name.clone()));
        now.groups.extend(host.groups.iter().cloned());
        now.attributes
            .extend(host.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(Some(now))
    })
    .await?;
    Ok((was, merged.expect("a merged host is there")))
}

/// Makes host `host.name` exactly `host` (a `PUT`).
pub async fn put_host(store: &dyn InventoryStore, host: &Host) -> Result<Host, InventoryError> {
    let (_, put) = update_host(store, &host.name, |_| Ok(Some(host.clone()))).await?;
    Ok(put.expect("a host put is there"))
}

/// The groups `was` is in and `now` is not, and the other way round.
pub fn group_changes<'a>(
    was: Option<&'a Host>,
    now: Option<&'a Host>,
) -> (Vec<&'a str>, Vec<&'a str>) {
    static NONE: BTreeSet<String> = BTreeSet::new();
    let before = was.map_or(&NONE, |h| &h.groups);
    let after = now.map_or(&NONE, |h| &h.groups);
    let added = after.difference(before).map(String::as_str).collect();
    let removed = before.difference(after).map(String::as_str).collect();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_checked_with_reasons() {
        assert!(check_host_name("web-1.example.com").is_ok());
        assert!(check_host_name("10.0.0.2").is_ok());
        assert!(check_host_name("2001:db8::1").is_ok());
        for bad in ["", "-rf", "a b", "a/b", "web;reboot"] {
            assert!(check_host_name(bad).is_err(), "{bad}");
        }
        assert!(check_host_name(&"a".repeat(254))
            .unwrap_err()
            .to_string()
            .contains("1 to 253 characters"));
        assert!(check_group_name("web_servers").is_ok());
        assert!(check_group_name("_x").is_err());
        assert!(check_attribute("port", "22").is_ok());
        assert!(check_attribute("port", "2\n2").is_err());
        assert!(check_attribute("port", &"x".repeat(MAX_VALUE + 1)).is_err());
        let mut host = Host::new("h");
        host.groups = (0..=MAX_GROUPS_PER_HOST).map(|i| format!("g{i}")).collect();
        assert!(host.check().unwrap_err().to_string().contains("at most 64"));
    }

    #[test]
    fn group_changes_are_both_ways() {
        let mut a = Host::new("h");
        a.groups = ["x", "y"].iter().map(|s| s.to_string()).collect();
        let mut b = Host::new("h");
        b.groups = ["y", "z"].iter().map(|s| s.to_string()).collect();
        assert_eq!(group_changes(Some(&a), Some(&b)), (vec!["z"], vec!["x"]));
        assert_eq!(group_changes(None, Some(&a)), (vec!["x", "y"], vec![]));
        assert_eq!(group_changes(Some(&a), None), (vec![], vec!["x", "y"]));
    }
}
