//! `AccessPolicy`: who may run which command.
//!
//! Access is declared, never assumed. A command's `allow` list names users, groups or
//! `everyone`; a command without one follows the `[acl] default` the file states (the
//! loader refuses a configured command with neither). Built-ins declare their own: most
//! are for everyone, and the admin ones ([`Builtin::required_group`]) need the `admins`
//! group whatever pattern or `allow` list they are declared with. A refusal always says
//! what would let the person in, so they know whom to ask.

use std::collections::{BTreeMap, BTreeSet};

use config::{AclConfig, AllowEntry, DefaultPolicy};
use jobs::Origin;

use crate::{Builtin, CommandAction, Executor};

/// The group whose members may run the admin built-ins (`reload`, the schedule controls,
/// cancelling any job).
pub const ADMIN_GROUP: &str = "admins";

/// The group whose members see other people's arguments and output in `job <id>`.
pub const AUDITOR_GROUP: &str = "auditors";

#[derive(Debug, Clone)]
pub struct AccessPolicy {
    default: Option<DefaultPolicy>,
    groups: BTreeMap<String, BTreeSet<String>>,
}

/// Why someone may not run a command, as a sentence for them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl AccessPolicy {
    pub fn new(acl: &AclConfig) -> Self {
        AccessPolicy {
            default: acl.default,
            groups: acl
                .groups
                .iter()
                .map(|(g, members)| (g.clone(), members.iter().cloned().collect()))
                .collect(),
        }
    }

    /// Whether `identity` is in the `admins` group ([`ADMIN_GROUP`]): who may `reload`
    /// and cancel other people's jobs.
    pub fn is_admin(&self, identity: &str) -> bool {
        self.in_group(identity, ADMIN_GROUP)
    }

    /// Whether `identity` is in the `auditors` group ([`AUDITOR_GROUP`]): who may see
    /// other people's arguments and output.
    pub fn is_auditor(&self, identity: &str) -> bool {
        self.in_group(identity, AUDITOR_GROUP)
    }

    fn in_group(&self, identity: &str, group: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|members| members.contains(identity))
    }

    /// The one access decision for a classified command: a built-in's own requirement
    /// first (checked here, in code, so that no declaration can lift it), then the
    /// command's `allow` list, or the stated default.
    pub fn check_action(
        &self,
        origin: &Origin,
        command: &str,
        action: &CommandAction,
    ) -> Result<(), Refusal> {
        if let Executor::Builtin(builtin) = &action.runs {
            self.check_builtin(&origin.identity(), command, *builtin)?;
            if action.allow.is_none() {
                return Ok(());
            }
        }
        self.check_origin(origin, command, action.allow.as_deref())
    }

    /// A built-in's own requirement: a person in its group, never a channel.
    fn check_builtin(
        &self,
        identity: &str,
        command: &str,
        builtin: Builtin,
    ) -> Result<(), Refusal> {
        match builtin.required_group() {
            Some(group) if !self.in_group(identity, group) => Err(Refusal(format!(
                "{identity} may not run \"{command}\": it is for members of group {group}; \
                 ask to be added to it"
            ))),
            _ => Ok(()),
        }
    }

    /// The rule that decides who may run `action`, as the audit trail records it:
    /// `built-in: group admins`, `allow = [group:oncall, user:ssh:bob]`,
    /// `[acl] default = deny`.
    pub fn rule(&self, action: &CommandAction) -> String {
        let builtin = match &action.runs {
            Executor::Builtin(b) => Some(
                b.required_group()
                    .map_or("built-in: everyone".to_string(), |g| {
                        format!("built-in: group {g}")
                    }),
            ),
            _ => None,
        };
        let listed = match (&action.allow, builtin.is_some()) {
            (Some(allow), _) => Some(format!(
                "allow = [{}]",
                allow
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            (None, true) => None,
            (None, false) => Some(match self.default {
                Some(DefaultPolicy::Allow) => "[acl] default = allow".to_string(),
                Some(DefaultPolicy::Deny) => "[acl] default = deny".to_string(),
                None => "no allow list and no [acl] default".to_string(),
            }),
        };
        match (builtin, listed) {
            (Some(b), Some(l)) => format!("{b}; {l}"),
            (Some(b), None) => b,
            (None, Some(l)) => l,
            (None, None) => String::new(),
        }
    }

    /// Whether `identity` is who `entry` names: that user, a member of that group, or
    /// anyone for `everyone`.
    pub fn admits(&self, identity: &str, entry: &AllowEntry) -> bool {
        match entry {
            AllowEntry::Everyone => true,
            AllowEntry::User(u) => u == identity,
            AllowEntry::Group(g) => self.in_group(identity, g),
        }
    }

    /// The groups `identity` belongs to, sorted.
    pub fn groups_of(&self, identity: &str) -> Vec<&str> {
        self.groups
            .iter()
            .filter(|(_, members)| members.contains(identity))
            .map(|(g, _)| g.as_str())
            .collect()
    }

    /// Checks the person who sent a request, and, where the request came from a channel,
    /// the channel as a whole (`slack:channel:C0123` in a group admits everyone writing
    /// there). A refusal names the person.
    pub fn check_origin(
        &self,
        origin: &Origin,
        command: &str,
        allow: Option<&[AllowEntry]>,
    ) -> Result<(), Refusal> {
        let refusal = match self.check(&origin.identity(), command, allow) {
            Ok(()) => return Ok(()),
            Err(r) => r,
        };
        match &origin.channel {
            Some(channel)
                if self
                    .check(&channel_identity(&origin.adapter, channel), command, allow)
                    .is_ok() =>
            {
                Ok(())
            }
            _ => Err(refusal),
        }
    }

    pub fn check(
        &self,
        identity: &str,
        command: &str,
        allow: Option<&[AllowEntry]>,
    ) -> Result<(), Refusal> {
        let Some(allow) = allow else {
            return match self.default {
                Some(DefaultPolicy::Allow) => Ok(()),
                Some(DefaultPolicy::Deny) => Err(Refusal(format!(
                    "{identity} may not run \"{command}\": it has no allow list and the \
                     default policy is deny; an admin can add an `allow` list to it"
                ))),
                None => Err(Refusal(format!(
                    "{identity} may not run \"{command}\": nobody is declared to; an admin \
                     can add an `allow` list to it"
                ))),
            };
        };
        let permitted = allow.iter().any(|entry| self.admits(identity, entry));
        if permitted {
            return Ok(());
        }
        let groups: Vec<_> = allow
            .iter()
            .filter_map(|e| match e {
                AllowEntry::Group(g) => Some(g.as_str()),
                AllowEntry::User(_) | AllowEntry::Everyone => None,
            })
            .collect();
        let users: Vec<_> = allow
            .iter()
            .filter_map(|e| match e {
                AllowEntry::User(u) => Some(u.as_str()),
                AllowEntry::Group(_) | AllowEntry::Everyone => None,
            })
            .collect();
        let who = match (groups.as_slice(), users.as_slice()) {
            ([], []) => "nobody may run it".to_string(),
            ([g], _) => format!("members of group {g} may; ask to be added to it"),
            (gs, _) if !gs.is_empty() => {
                format!(
                    "members of groups {} may; ask to be added to one",
                    gs.join(", ")
                )
            }
            (_, us) => format!("only {} may run it", us.join(", ")),
        };
        Err(Refusal(format!(
            "{identity} may not run \"{command}\": {who}"
        )))
    }
}

/// The identity standing for everyone writing in `channel` of `adapter`.
pub fn channel_identity(adapter: &str, channel: &str) -> String {
    format!("{adapter}:channel:{channel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_in_a_group_admits_everyone_writing_there() {
        let mut acl = AclConfig::default();
        acl.groups
            .insert("ops".into(), vec!["slack:channel:C0PS".into()]);
        let p = AccessPolicy::new(&acl);
        let allow = [AllowEntry::Group("ops".into())];
        let mut origin = Origin::new("slack", "U1");
        origin.channel = Some("C0PS".into());
        assert!(p.check_origin(&origin, "deploy", Some(&allow)).is_ok());
        origin.channel = Some("CRANDOM".into());
        let e = p.check_origin(&origin, "deploy", Some(&allow)).unwrap_err();
        assert!(e.0.starts_with("slack:U1 may not run"), "{e}");
    }

    fn policy(default: DefaultPolicy) -> AccessPolicy {
        let mut acl = AclConfig {
            default: Some(default),
            ..Default::default()
        };
        acl.groups
            .insert("oncall".into(), vec!["console:alice".into()]);
        acl.groups
            .insert("admins".into(), vec!["console:root".into()]);
        AccessPolicy::new(&acl)
    }

    #[test]
    fn members_of_an_allowed_group_may() {
        let p = policy(DefaultPolicy::Allow);
        let allow = [AllowEntry::Group("oncall".into())];
        assert!(p.check("console:alice", "deploy", Some(&allow)).is_ok());
    }

    #[test]
    fn a_refusal_names_the_group_that_would_allow() {
        let p = policy(DefaultPolicy::Allow);
        let allow = [AllowEntry::Group("oncall".into())];
        let e = p
            .check("console:mallory", "deploy", Some(&allow))
            .unwrap_err();
        assert_eq!(
            e.0,
            "console:mallory may not run \"deploy\": members of group oncall may; ask to be added to it"
        );
        let allow = [
            AllowEntry::Group("oncall".into()),
            AllowEntry::Group("admins".into()),
        ];
        let e = p
            .check("console:mallory", "deploy", Some(&allow))
            .unwrap_err();
        assert!(e.0.contains("groups oncall, admins"), "{e}");
    }

    #[test]
    fn named_users_may_and_others_are_told_who_can() {
        let p = policy(DefaultPolicy::Deny);
        let allow = [AllowEntry::User("console:bob".into())];
        assert!(p.check("console:bob", "x", Some(&allow)).is_ok());
        let e = p.check("console:eve", "x", Some(&allow)).unwrap_err();
        assert!(e.0.ends_with("only console:bob may run it"), "{e}");
    }

    #[test]
    fn the_default_policy_covers_commands_without_a_list() {
        assert!(policy(DefaultPolicy::Allow)
            .check("console:x", "ping", None)
            .is_ok());
        let e = policy(DefaultPolicy::Deny)
            .check("console:x", "ping", None)
            .unwrap_err();
        assert!(e.0.contains("default policy is deny"), "{e}");
    }

    #[test]
    fn without_a_stated_default_a_command_without_a_list_is_refused() {
        let p = AccessPolicy::new(&AclConfig::default());
        let e = p.check("console:x", "deploy", None).unwrap_err();
        assert!(e.0.contains("nobody is declared to"), "{e}");
        assert!(p
            .check("console:x", "deploy", Some(&[AllowEntry::Everyone]))
            .is_ok());
    }

    fn action(runs: Executor, allow: Option<Vec<AllowEntry>>) -> CommandAction {
        CommandAction {
            runs,
            allow,
            timeout: std::time::Duration::from_secs(5),
            max_running: None,
            max_per_minute: None,
            approval: None,
            fan_out: None,
        }
    }

    #[test]
    fn admin_built_ins_need_the_admins_group_whatever_their_declaration_allows() {
        let p = policy(DefaultPolicy::Allow);
        let alice = Origin::new("console", "alice");
        let root = Origin::new("console", "root");
        for builtin in [
            Builtin::Reload,
            Builtin::PauseSchedule,
            Builtin::ResumeSchedule,
            Builtin::RunSchedule,
        ] {
            for allow in [None, Some(vec![AllowEntry::Everyone])] {
                let a = action(Executor::Builtin(builtin), allow);
                let e = p.check_action(&alice, "stop it", &a).unwrap_err();
                assert!(e.0.contains("for members of group admins"), "{e}");
                assert!(p.check_action(&root, "stop it", &a).is_ok());
            }
        }
        let ping = action(Executor::Builtin(Builtin::Ping), None);
        assert!(AccessPolicy::new(&AclConfig::default())
            .check_action(&alice, "ping", &ping)
            .is_ok());
        let narrowed = action(
            Executor::Builtin(Builtin::Ping),
            Some(vec![AllowEntry::Group("oncall".into())]),
        );
        assert!(p.check_action(&alice, "ping", &narrowed).is_ok());
        assert!(p.check_action(&root, "ping", &narrowed).is_err());
    }

    #[test]
    fn groups_of_lists_memberships() {
        let p = policy(DefaultPolicy::Allow);
        assert_eq!(p.groups_of("console:alice"), vec!["oncall"]);
        assert!(p.groups_of("console:nobody").is_empty());
    }
}
