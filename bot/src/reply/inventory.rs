//! Wording of the inventory built-ins (`servers in group`, `inventory`, `inventory show`,
//! `inventory add`, `inventory remove`) and of fan-outs over a group.

use std::collections::BTreeMap;

use jobs::{ChildCounts, Host, JobId, JobRecord, Output};

use super::{printable, table};

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

/// The answer to a fan-out's request.
pub fn fan_out_queued(id: JobId, group: &str, hosts: usize) -> String {
    format!(
        "queued as job {id}: one job for each of the {hosts} host{} of group {group}; \
         one summary comes when they have all ended",
        if hosts == 1 { "" } else { "s" }
    )
}

pub fn fan_out_too_wide(group: &str, hosts: usize, max: usize) -> String {
    format!(
        "group {group} has {hosts} hosts; a command runs on at most {max} at once: \
         split the group"
    )
}

/// A re-run of one host's job of a fan-out, whose host has left the group since.
pub fn rerun_host_left_group(id: JobId, host: &str, group: &str) -> String {
    format!(
        "job {id} ran on {host}, which is no longer in group {group}: \
         \"inventory add {host} to {group}\" puts it back, or run the command on the group"
    )
}

/// How far a fan-out has got: `3/10 done: 2 succeeded, 1 failed`.
pub fn fan_out_progress(counts: &ChildCounts, total: usize) -> String {
    let parts: Vec<String> = counts
        .by_status
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    format!("{}/{total} done: {}", counts.ended(), parts.join(", "))
}

/// One line per host of fan-out `parent`: its status and the first line of its output
/// or error. A child's host is the one argument its parent does not have.
pub fn fan_out_table(parent: &JobRecord, children: &[Option<JobRecord>]) -> String {
    const SHOWN: usize = 100;
    let rows: Vec<Vec<String>> = children
        .iter()
        .flatten()
        .map(|child| {
            let host = child
                .job
                .args
                .iter()
                .find(|(name, _)| !parent.job.args.contains_key(*name))
                .map_or_else(|| "?".to_string(), |(_, v)| v.to_string());
            let said = match &child.result {
                Some(r) if r.error.is_some() => r.error.clone().unwrap_or_default(),
                Some(r) => match &r.output {
                    Output::Text { text } => text.clone(),
                    Output::File { name, .. } => format!("file {name}"),
                    Output::Empty => String::new(),
                },
                None => "(no result)".to_string(),
            };
            let first = said.lines().next().unwrap_or("").trim();
            let mut first: String = printable(first, false).chars().take(SHOWN).collect();
            if said.trim().lines().count() > 1 || said.chars().count() > SHOWN {
                first.push_str(" …");
            }
            vec![host.to_string(), child.status.as_str().to_string(), first]
        })
        .collect();
    table(&["HOST", "STATUS", "RESULT"], &rows)
}
