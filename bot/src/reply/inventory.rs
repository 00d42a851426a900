//! Wording of the inventory built-ins: `servers in group`, `inventory`, `inventory show`,
//! `inventory add`, `inventory remove`.

use std::collections::BTreeMap;

use jobs::Host;

use super::table;

/// Host names shown in one answer at most; past it the answer says how many more.
const NAMES_SHOWN: usize = 200;

/// `servers in group <group>`.
pub fn group_members(group: &str, hosts: &[String]) -> String {
    if hosts.is_empty() {
        return format!(
            "group {group} has no hosts (\"inventory add <host> to {group}\" adds one; \
             \"inventory\" lists the groups)"
        );
    }
    let shown: Vec<&str> = hosts.iter().take(NAMES_SHOWN).map(String::as_str).collect();
    let mut text = format!(
        "group {group}: {} host{}\n{}",
        hosts.len(),
        if hosts.len() == 1 { "" } else { "s" },
        shown.join("\n")
    );
    if hosts.len() > NAMES_SHOWN {
        text.push_str(&format!(
            "\n… and {} more (GET /api/v1/inventory?group={group} lists them all)",
            hosts.len() - NAMES_SHOWN
        ));
    }
    text
}

/// `inventory`: the groups and their sizes.
pub fn inventory_groups(groups: &BTreeMap<String, usize>) -> String {
    if groups.is_empty() {
        return "the inventory has no groups yet (\"inventory add <host> to <group>\" adds a host)"
            .to_string();
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .take(NAMES_SHOWN)
        .map(|(g, n)| vec![g.clone(), n.to_string()])
        .collect();
    let mut text = table(&["GROUP", "HOSTS"], &rows);
    if groups.len() > NAMES_SHOWN {
        text.push_str(&format!(
            "\n… and {} more groups",
            groups.len() - NAMES_SHOWN
        ));
    }
    text
}

/// `inventory show <host>`.
pub fn host_details(host: &Host) -> String {
    let groups = match host.groups.is_empty() {
        true => "(none)".to_string(),
        false => host.groups.iter().cloned().collect::<Vec<_>>().join(", "),
    };
    let mut text = format!("host {}\ngroups: {groups}", host.name);
    for (key, value) in &host.attributes {
        text.push_str(&format!("\n{key}: {}", super::printable(value, false)));
    }
    text
}

pub fn no_such_host(name: &str) -> String {
    format!("host {name} is not in the inventory (\"inventory add {name} to <group>\" adds it)")
}

pub fn host_added(host: &Host, group: &str) -> String {
    format!(
        "host {} is in group {group} (its groups: {})",
        host.name,
        host.groups.iter().cloned().collect::<Vec<_>>().join(", ")
    )
}

pub fn host_left_group(host: &Host, group: &str) -> String {
    match host.groups.is_empty() {
        true => format!(
            "host {} is out of group {group}; it is in no group now (\"inventory remove {}\" \
             removes it from the inventory)",
            host.name, host.name
        ),
        false => format!(
            "host {} is out of group {group} (still in: {})",
            host.name,
            host.groups.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

pub fn host_removed(host: &Host) -> String {
    format!(
        "host {} is removed from the inventory{}",
        host.name,
        match host.groups.is_empty() {
            true => String::new(),
            false => format!(
                " and from its groups ({})",
                host.groups.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    )
}
