//! The inventory built-ins: `servers in group <group>`, `inventory`, `inventory show
//! <host>`, `inventory add <host> to <group>`, `inventory remove <host> [from <group>]`.
//! The last two are for the group `admins` (`Builtin::required_group`, checked before
//! they run); the changes themselves are `jobs::inventory`'s, the wording `reply`'s.

use commands::Builtin;
use jobs::inventory::{self, InventoryError};
use jobs::InventoryStore;

use crate::reply;
use crate::request::{Answer, Outcome};

/// Runs inventory built-in `builtin` for `who`, with its `host` and `group` arguments.
pub(crate) async fn run(
    builtin: Builtin,
    store: &dyn InventoryStore,
    host: Option<&str>,
    group: Option<&str>,
    who: &str,
) -> Answer {
    let (host, group) = (host.unwrap_or_default(), group.unwrap_or_default());
    let answer = match builtin {
        Builtin::ServersInGroup => store
            .group(group)
            .await
            .map(|hosts| reply::group_members(group, &hosts))
            .map_err(InventoryError::from),
        Builtin::Inventory => store
            .groups()
            .await
            .map(|groups| reply::inventory_groups(&groups))
            .map_err(InventoryError::from),
        Builtin::InventoryShow => match inventory::check_host_name(host) {
            Err(e) => Err(e),
            Ok(()) => match store.host(host).await {
                Ok(Some(found)) => Ok(reply::host_details(&found)),
                Ok(None) => Err(InventoryError::UnknownHost(host.to_string())),
                Err(e) => Err(e.into()),
            },
        },
        Builtin::InventoryAdd => inventory::add_to_group(store, host, group)
            .await
            .map(|h| reply::host_added(&h, group)),
        _ if group.is_empty() => inventory::remove_host(store, host)
            .await
            .map(|h| reply::host_removed(&h)),
        _ => inventory::remove_from_group(store, host, group)
            .await
            .map(|h| reply::host_left_group(&h, group)),
    };
    match answer {
        Ok(text) => {
            if matches!(builtin, Builtin::InventoryAdd | Builtin::InventoryRemove) {
                tracing::info!(user = %who, host, group, %builtin, "inventory changed");
            }
            Answer::done(text)
        }
        Err(InventoryError::UnknownHost(name)) => {
            Answer::new(Outcome::Unknown, reply::no_such_host(&name))
        }
        Err(InventoryError::Store(e)) => Answer::new(
            Outcome::Failed,
            reply::store_unavailable("read or change the inventory", &e),
        ),
        Err(e @ InventoryError::Invalid(_)) => Answer::new(Outcome::BadArgument, e.to_string()),
        Err(e) => Answer::new(Outcome::Failed, e.to_string()),
    }
}
