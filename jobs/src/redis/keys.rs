//! Key names: the one place that knows how the Redis store names what it keeps.
//!
//! Every key starts with a prefix (`octobox:` by default), so Octobox can share a Redis
//! database with other programs, and tests or deployments can share one server under
//! different prefixes.

use crate::job::{JobId, JobStatus};

/// The prefix used unless the store is told otherwise.
pub const DEFAULT_PREFIX: &str = "octobox:";

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: impl Into<String>) -> Self {
        Keys {
            prefix: prefix.into(),
        }
    }

    /// HASH: one job's record (`job`, `status`, `worker`, `started_at`, `result`).
    pub(crate) fn job(&self, id: JobId) -> String {
        format!("{}job:{id}", self.prefix)
    }

    /// ZSET: job ids scored by creation time in milliseconds, for `recent_jobs`.
    pub(crate) fn history(&self) -> String {
        format!("{}jobs", self.prefix)
    }

    /// STREAM: every event, one field `event` holding the JSON `Event`.
    pub(crate) fn events(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// STRING: present once consumer group `group` has claimed a job's reply.
    pub(crate) fn delivered(&self, group: &str, id: JobId) -> String {
        format!("{}delivered:{group}:{id}", self.prefix)
    }

    /// STRING with a TTL: one worker's last heartbeat (JSON `WorkerInfo`).
    pub(crate) fn worker(&self, name: &str) -> String {
        format!("{}worker:{name}", self.prefix)
    }

    /// STRING with a TTL: a note an adapter keeps (`Store::note_once`).
    pub(crate) fn note(&self, key: &str) -> String {
        format!("{}note:{key}", self.prefix)
    }

    /// ZSET with a TTL: the jobs holding places under a quota `key`, scored by when their
    /// place is freed at the latest (milliseconds).
    pub(crate) fn places(&self, key: &str) -> String {
        format!("{}places:{key}", self.prefix)
    }

    /// The prefix of job record keys, for scripts that look records up by id.
    pub(crate) fn job_prefix(&self) -> String {
        format!("{}job:", self.prefix)
    }

    /// STRING with a TTL: the uses of a quota `key` in one window.
    pub(crate) fn uses(&self, key: &str, window: u64) -> String {
        format!("{}uses:{key}:{window}", self.prefix)
    }

    /// SET: the names of workers that sent a heartbeat, to list them without `SCAN`.
    pub(crate) fn workers(&self) -> String {
        format!("{}workers", self.prefix)
    }
}

/// The history's secondary indexes (see `query`): ZSETs of job ids scored by creation
/// time in milliseconds, like the history itself, written by the record scripts.
impl Keys {
    /// ZSET: the jobs of one command.
    pub(crate) fn by_command(&self, command: &str) -> String {
        format!("{}jobs:by-command:{command}", self.prefix)
    }

    /// ZSET: the jobs of one requester, by identity (`adapter:user`).
    pub(crate) fn by_requester(&self, identity: &str) -> String {
        format!("{}jobs:by-requester:{identity}", self.prefix)
    }

    /// ZSET: the jobs whose record holds `status` now (a job moves from `queued` to
    /// `running` to its final status).
    pub(crate) fn by_status(&self, status: JobStatus) -> String {
        let name = match status {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timed_out",
            JobStatus::Cancelled => "cancelled",
        };
        format!("{}jobs:by-status:{name}", self.prefix)
    }

    /// ZSET: the jobs the broker gave up on (`Store::note_dead_letter`).
    pub(crate) fn dead_lettered(&self) -> String {
        format!("{}jobs:dead-lettered", self.prefix)
    }
}

/// The audit trail's and the approvals' keys (see `trail`).
impl Keys {
    /// STREAM: the audit trail, one field `entry` (JSON `AuditEntry`).
    pub(crate) fn audit(&self) -> String {
        format!("{}audit", self.prefix)
    }

    /// STRING with a TTL: one approval (JSON `Approval`).
    pub(crate) fn approval(&self, id: JobId) -> String {
        format!("{}approval:{id}", self.prefix)
    }

    /// STRING with a TTL: an approval's decision (JSON `Decision`), set with `NX`.
    pub(crate) fn decision(&self, id: JobId) -> String {
        format!("{}approval:{id}:decision", self.prefix)
    }

    /// ZSET: pending approvals' job ids, scored by expiry (ms).
    pub(crate) fn approvals(&self) -> String {
        format!("{}approvals", self.prefix)
    }
}

/// The schedule store's keys (see `schedules`).
impl Keys {
    /// STRING with a TTL: the scheduler lease, holding its holder's name.
    pub(crate) fn scheduler_lease(&self) -> String {
        format!("{}scheduler:lease", self.prefix)
    }

    /// STRING: one fire of a schedule's slot (`manual` fires have keys of their own).
    pub(crate) fn fired(&self, schedule: &str, slot_ms: i64, manual: bool) -> String {
        let kind = if manual { "manual" } else { "slot" };
        format!("{}schedule:{schedule}:{kind}:{slot_ms}", self.prefix)
    }

    /// HASH: `last_slot` (ms) of a schedule.
    pub(crate) fn schedule(&self, schedule: &str) -> String {
        format!("{}schedule:{schedule}", self.prefix)
    }

    /// LIST: a schedule's latest fires (JSON `Fire`), newest first.
    pub(crate) fn fire_log(&self, schedule: &str) -> String {
        format!("{}schedule:{schedule}:fires", self.prefix)
    }

    /// HASH: fired jobs not sent on yet, job id to JSON `Job`.
    pub(crate) fn unsent_fires(&self) -> String {
        format!("{}schedules:unsent", self.prefix)
    }

    /// SET: the names of paused schedules.
    pub(crate) fn paused_schedules(&self) -> String {
        format!("{}schedules:paused", self.prefix)
    }

    /// LIST: schedules someone asked to run now, oldest first.
    pub(crate) fn run_requests(&self) -> String {
        format!("{}schedules:run-requests", self.prefix)
    }

    /// STRING: a shipper's checkpoint (JSON).
    pub(crate) fn checkpoint(&self, shipper: &str) -> String {
        format!("{}shipper:{shipper}:checkpoint", self.prefix)
    }
}

/// A fan-out's keys (see `fan_out`).
impl Keys {
    /// HASH: child job id to its final status.
    pub(crate) fn fan_out_ended(&self, parent: JobId) -> String {
        format!("{}fan-out:{parent}:ended", self.prefix)
    }

    /// HASH: final status to how many children ended with it.
    pub(crate) fn fan_out_counts(&self, parent: JobId) -> String {
        format!("{}fan-out:{parent}:counts", self.prefix)
    }
}

/// The inventory's keys (see `inventory`).
impl Keys {
    /// HASH: host name to the JSON host.
    pub(crate) fn inventory_hosts(&self) -> String {
        format!("{}inventory:hosts", self.prefix)
    }

    /// HASH: group name to its number of hosts.
    pub(crate) fn inventory_groups(&self) -> String {
        format!("{}inventory:groups", self.prefix)
    }

    /// SET: the names of group `group`'s hosts.
    pub(crate) fn inventory_group(&self, group: &str) -> String {
        format!("{}inventory:group:{group}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_prefix() {
        let keys = Keys::new(DEFAULT_PREFIX);
        let id: JobId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
        assert_eq!(
            keys.job(id),
            "octobox:job:01890a5d-ac96-774b-bcce-b302099a8057"
        );
        assert_eq!(keys.history(), "octobox:jobs");
        assert_eq!(keys.events(), "octobox:events");
        assert_eq!(
            keys.delivered("octobox-bot@vm", id),
            "octobox:delivered:octobox-bot@vm:01890a5d-ac96-774b-bcce-b302099a8057"
        );
        assert_eq!(keys.worker("w1"), "octobox:worker:w1");
        assert_eq!(keys.workers(), "octobox:workers");
        assert_eq!(Keys::new("t1:").events(), "t1:events");
        assert_eq!(keys.by_command("deploy"), "octobox:jobs:by-command:deploy");
        assert_eq!(
            keys.by_requester("slack:U123"),
            "octobox:jobs:by-requester:slack:U123"
        );
        assert_eq!(
            keys.by_status(JobStatus::TimedOut),
            "octobox:jobs:by-status:timed_out"
        );
        assert_eq!(keys.dead_lettered(), "octobox:jobs:dead-lettered");
    }
}
