//! `Builtin`: the typed id of each command the bot answers itself, and their
//! declarations (`builtins.toml`).
//!
//! The declarations are written exactly like `[[command]]` entries of `octobox.toml`, so
//! they compile into the same catalog and a configured command that clashes with a
//! built-in is reported like any other clash. A configuration may declare a built-in
//! under another pattern (`builtin = "pause_schedule"`): the name is read into this enum
//! at load, so a typo is a configuration error, not a command that does nothing.

use std::fmt;
use std::str::FromStr;

/// The declarations of the built-in commands.
pub const DECLARATIONS: &str = include_str!("builtins.toml");

/// Where [`DECLARATIONS`] come from, in error messages.
pub const DECLARATIONS_SOURCE: &str = "built-in commands";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    Help,
    Explain,
    Version,
    Ping,
    Whoami,
    Jobs,
    Job,
    Workers,
    Schedules,
    PauseSchedule,
    ResumeSchedule,
    RunSchedule,
    Cancel,
    Reload,
    Audit,
    Pending,
    Approve,
    Deny,
    ServersInGroup,
    Inventory,
    InventoryShow,
    InventoryAdd,
    InventoryRemove,
}

impl Builtin {
    pub const ALL: [Builtin; 23] = [
        Builtin::Help,
        Builtin::Explain,
        Builtin::Version,
        Builtin::Ping,
        Builtin::Whoami,
        Builtin::Jobs,
        Builtin::Job,
        Builtin::Workers,
        Builtin::Schedules,
        Builtin::PauseSchedule,
        Builtin::ResumeSchedule,
        Builtin::RunSchedule,
        Builtin::Cancel,
        Builtin::Reload,
        Builtin::Audit,
        Builtin::Pending,
        Builtin::Approve,
        Builtin::Deny,
        Builtin::ServersInGroup,
        Builtin::Inventory,
        Builtin::InventoryShow,
        Builtin::InventoryAdd,
        Builtin::InventoryRemove,
    ];

    /// The group a person must be in to run it, whatever its declaration's `allow` list
    /// says; `None`: anyone its declaration admits.
    pub fn required_group(self) -> Option<&'static str> {
        match self {
            Builtin::Reload
            | Builtin::PauseSchedule
            | Builtin::ResumeSchedule
            | Builtin::RunSchedule
            | Builtin::InventoryAdd
            | Builtin::InventoryRemove => Some(crate::ADMIN_GROUP),
            Builtin::Audit => Some(crate::AUDITOR_GROUP),
            _ => None,
        }
    }

    /// The name a declaration gives it (`builtin = "pause_schedule"`).
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Help => "help",
            Builtin::Explain => "explain",
            Builtin::Version => "version",
            Builtin::Ping => "ping",
            Builtin::Whoami => "whoami",
            Builtin::Jobs => "jobs",
            Builtin::Job => "job",
            Builtin::Workers => "workers",
            Builtin::Schedules => "schedules",
            Builtin::PauseSchedule => "pause_schedule",
            Builtin::ResumeSchedule => "resume_schedule",
            Builtin::RunSchedule => "run_schedule",
            Builtin::Cancel => "cancel",
            Builtin::Reload => "reload",
            Builtin::Audit => "audit",
            Builtin::Pending => "pending",
            Builtin::Approve => "approve",
            Builtin::Deny => "deny",
            Builtin::ServersInGroup => "servers_in_group",
            Builtin::Inventory => "inventory",
            Builtin::InventoryShow => "inventory_show",
            Builtin::InventoryAdd => "inventory_add",
            Builtin::InventoryRemove => "inventory_remove",
        }
    }
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A declaration named a built-in this build does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no built-in command \"{name}\" (there are: {})", Builtin::ALL.map(Builtin::name).join(", "))]
pub struct UnknownBuiltin {
    pub name: String,
}

impl FromStr for Builtin {
    type Err = UnknownBuiltin;
    fn from_str(s: &str) -> Result<Self, UnknownBuiltin> {
        Builtin::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBuiltin {
                name: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_reads_back_from_its_name() {
        for b in Builtin::ALL {
            assert_eq!(b.name().parse::<Builtin>(), Ok(b));
        }
        let e = "greet".parse::<Builtin>().unwrap_err().to_string();
        assert!(
            e.starts_with("no built-in command \"greet\" (there are: help, "),
            "{e}"
        );
        assert!(
            e.ends_with(
                "approve, deny, servers_in_group, inventory, inventory_show, inventory_add, \
                 inventory_remove)"
            ),
            "{e}"
        );
    }
}
