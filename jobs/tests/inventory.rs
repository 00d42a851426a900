//! The inventory (`InventoryStore`): each check runs against a `RedisStore` on a private
//! `redis-server` and against the `MemoryInventory`, which must agree.

use std::sync::Arc;

use jobs::inventory::{
    add_to_group, merge_host, put_host, remove_from_group, remove_host, update_host, Swapped,
};
use jobs::memory::MemoryInventory;
use jobs::{Host, InventoryError, InventoryStore};

mod support;
use support::{start_redis, stop_redis, store_on};

async fn both(check: impl AsyncFn(&str, Arc<dyn InventoryStore>)) {
    let redis = start_redis().await;
    let in_redis: Arc<dyn InventoryStore> = Arc::new(store_on(&redis).await);
    check("redis", in_redis).await;
    check("memory", Arc::new(MemoryInventory::new())).await;
    stop_redis(redis).await;
}

fn host(name: &str, groups: &[&str], attributes: &[(&str, &str)]) -> Host {
    Host {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[tokio::test]
async fn hosts_join_and_leave_groups_and_the_index_follows() {
    both(async |store_name, store| {
        let s = store.as_ref();
        add_to_group(s, "web-1", "web").await.unwrap();
        add_to_group(s, "web-2", "web").await.unwrap();
        let db = add_to_group(s, "db-1", "db").await.unwrap();
        assert_eq!(db, host("db-1", &["db"], &[]), "{store_name}");
        add_to_group(s, "web-1", "eu").await.unwrap();
        // Adding again changes nothing.
        add_to_group(s, "web-1", "web").await.unwrap();
        assert_eq!(s.group("web").await.unwrap(), vec!["web-1", "web-2"]);
        assert_eq!(s.group("eu").await.unwrap(), vec!["web-1"]);
        assert!(s.group("nobody").await.unwrap().is_empty());
        let counts = s.groups().await.unwrap();
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            vec![("db".into(), 1), ("eu".into(), 1), ("web".into(), 2)],
            "{store_name}"
        );

        let left = remove_from_group(s, "web-1", "eu").await.unwrap();
        assert_eq!(left, host("web-1", &["web"], &[]));
        assert!(
            !s.groups().await.unwrap().contains_key("eu"),
            "{store_name}: an empty group is gone"
        );
        let err = remove_from_group(s, "web-1", "eu").await.unwrap_err();
        assert_eq!(err.to_string(), "host web-1 is not in group eu");
        let err = remove_from_group(s, "ghost", "web").await.unwrap_err();
        assert!(matches!(err, InventoryError::UnknownHost(_)), "{err}");

        let gone = remove_host(s, "web-2").await.unwrap();
        assert_eq!(gone.name, "web-2");
        assert_eq!(s.group("web").await.unwrap(), vec!["web-1"]);
        assert!(s.host("web-2").await.unwrap().is_none());
        let err = remove_host(s, "web-2").await.unwrap_err();
        assert_eq!(err.to_string(), "host web-2 is not in the inventory");
        assert_eq!(s.hosts().await.unwrap().len(), 2, "{store_name}");
    })
    .await;
}

#[tokio::test]
async fn merges_add_and_puts_replace() {
    both(async |_, store| {
        let s = store.as_ref();
        merge_host(s, &host("h", &["a"], &[("port", "22"), ("os", "debian")]))
            .await
            .unwrap();
        let (was, merged) = merge_host(s, &host("h", &["b"], &[("port", "2222")]))
            .await
            .unwrap();
        assert_eq!(
            was,
            Some(host("h", &["a"], &[("port", "22"), ("os", "debian")]))
        );
        assert_eq!(
            merged,
            host("h", &["a", "b"], &[("os", "debian"), ("port", "2222")])
        );
        let put = put_host(s, &host("h", &["c"], &[])).await.unwrap();
        assert_eq!(put, host("h", &["c"], &[]));
        assert_eq!(s.group("a").await.unwrap(), Vec::<String>::new());
        assert_eq!(s.group("c").await.unwrap(), vec!["h"]);
        assert_eq!(s.host("h").await.unwrap(), Some(put));
    })
    .await;
}

#[tokio::test]
async fn bad_names_and_values_are_refused_before_anything_is_stored() {
    both(async |_, store| {
        let s = store.as_ref();
        for (name, group) in [
            ("web 1", "web"),
            ("-rf", "web"),
            ("web-1", "we b"),
            ("web-1", ""),
        ] {
            let err = add_to_group(s, name, group).await.unwrap_err();
            assert!(
                matches!(err, InventoryError::Invalid(_)),
                "{name} {group}: {err}"
            );
        }
        let err = merge_host(s, &host("h", &[], &[("ok", "line\nbreak")]))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "attribute ok's value holds a control character"
        );
        assert!(s.hosts().await.unwrap().is_empty());
    })
    .await;
}

/// Two people changing one host at once: each change is made on the other's.
#[tokio::test]
async fn concurrent_changes_to_one_host_are_both_kept() {
    both(async |store_name, store| {
        let mut changes = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            changes.push(tokio::spawn(async move {
                add_to_group(store.as_ref(), "shared", &format!("g{i}")).await
            }));
        }
        for change in changes {
            change.await.unwrap().unwrap();
        }
        let shared = store.host("shared").await.unwrap().unwrap();
        assert_eq!(shared.groups.len(), 8, "{store_name}: {shared:?}");
        assert_eq!(store.groups().await.unwrap().len(), 8);
    })
    .await;
}

/// A swap of a host someone changed since it was read is refused; one retried after its
/// first try landed counts as done.
#[tokio::test]
async fn a_stale_swap_is_refused_and_a_repeated_one_is_done() {
    both(async |_, store| {
        let s = store.as_ref();
        let first = host("h", &["a"], &[]);
        assert_eq!(
            s.swap_host("h", None, Some(&first)).await.unwrap(),
            Swapped::Done
        );
        assert_eq!(
            s.swap_host("h", None, Some(&first)).await.unwrap(),
            Swapped::Done
        );
        let other = host("h", &["b"], &[]);
        assert_eq!(
            s.swap_host("h", None, Some(&other)).await.unwrap(),
            Swapped::Changed
        );
        assert_eq!(s.host("h").await.unwrap(), Some(first.clone()));
        let (was, now) = update_host(s, "h", |_| Ok(None)).await.unwrap();
        assert_eq!((was, now), (Some(first), None));
        assert!(s.groups().await.unwrap().is_empty());
    })
    .await;
}
