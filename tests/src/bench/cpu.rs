//! CPU time by process, from `/proc`: where a phase's time went on a machine whose cores
//! the bot, the worker, Redis and RabbitMQ all share.
//!
//! A service is counted with its descendants (RabbitMQ's Erlang VM runs under the
//! process started for it); the bench process itself is counted alone, since the
//! services are its children.

use std::collections::HashMap;
use std::process::Command;

/// CPU seconds (user + system) of `pid`, and of its descendants when `tree` is set.
pub fn seconds(pid: u32, tree: bool) -> f64 {
    let ticks: u64 = if tree {
        let children = children_by_parent();
        let mut total = 0;
        let mut todo = vec![pid];
        while let Some(p) = todo.pop() {
            total += ticks_of(p).unwrap_or(0);
            todo.extend(children.get(&p).into_iter().flatten());
        }
        total
    } else {
        ticks_of(pid).unwrap_or(0)
    };
    ticks as f64 / ticks_per_second()
}

/// `utime + stime` of one process (all its threads), in clock ticks.
fn ticks_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = after_name(&stat);
    // Fields after the name start at 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The fields after `(comm)`, which may itself hold spaces and parentheses.
fn after_name(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

fn children_by_parent() -> HashMap<u32, Vec<u32>> {
    let mut map: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return map;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(ppid) = after_name(&stat).get(1).and_then(|p| p.parse().ok()) {
            map.entry(ppid).or_default().push(pid);
        }
    }
    map
}

/// `USER_HZ`: 100 on Linux unless `getconf` says otherwise.
fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_spent_some_cpu_and_its_tree_at_least_as_much() {
        let start = std::time::Instant::now();
        while seconds(std::process::id(), false) == 0.0 {
            assert!(start.elapsed().as_secs() < 5, "no CPU time counted");
            std::hint::black_box((0..100_000u64).sum::<u64>());
        }
        let alone = seconds(std::process::id(), false);
        assert!(seconds(std::process::id(), true) >= alone);
    }

    #[test]
    fn a_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let stat = "42 (a (b) c) S 7 42 42 0 -1 0 0 0 0 0 5 6 0 0";
        assert_eq!(after_name(stat)[1], "7");
        assert_eq!(after_name(stat)[11], "5");
        assert_eq!(after_name(stat)[12], "6");
    }
}
