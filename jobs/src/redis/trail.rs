//! The audit trail and approvals in Redis.
//!
//! The trail is a stream (`audit`) whose ids are the server's clock in milliseconds, so a
//! time range is an id range; each append trims what is older than its age limit
//! (`XADD … MINID`, exact, so a short age limit holds), so the trail survives restarts,
//! is shared by every bot, and stays bounded by age. An entry's stream id is its
//! `AuditPosition`: an export pages on from the last id it read with an exclusive start
//! (`XRANGE … (<id>`, Redis 6.2 and later).
//!
//! An approval is a JSON string that expires [`APPROVAL_KEEP`] after the approval does,
//! listed while pending in a sorted set scored by expiry. Its decision is a key of its
//! own set with `NX GET`: the first decision stored is the decision, and a retry whose
//! first attempt landed reads back its own.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::records::to_json;
use super::{millis, RedisStore};
use crate::approval::{Approval, Decided, Decision};
use crate::audit::{AuditEntry, AuditPosition, BadAuditPosition};
use crate::job::JobId;
use crate::store::{StoreError, APPROVAL_KEEP};

impl RedisStore {
    pub(super) async fn append_audit_entry(
        &self,
        entry: &AuditEntry,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let key = self.keys.audit();
        let json = to_json(entry)?;
        let oldest = (Utc::now().timestamp_millis() - millis(keep) as i64).max(0);
        self.retrying("append to the audit trail", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("XADD")
                .arg(&key)
                .arg("MINID")
                .arg(oldest)
                .arg("*")
                .arg("entry")
                .arg(&json)
                .to_owned();
            async move { cmd.query_async::<String>(&mut con).await }
        })
        .await
        .map(drop)
    }

    pub(super) async fn read_audit(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let page = self.read_audit_page(from, until, None, limit).await?;
        Ok(page.into_iter().map(|(_, entry)| entry).collect())
    }

    /// `XRANGE` over the ids of `[from, until)`, from the exclusive id `(<after>` when
    /// paging on: ids are unique and only grow, so a page starts right after the last
    /// entry of the one before, even inside a millisecond.
    pub(super) async fn read_audit_page(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<AuditPosition>,
        limit: usize,
    ) -> Result<Vec<(AuditPosition, AuditEntry)>, StoreError> {
        let key = self.keys.audit();
        let start = from.timestamp_millis().max(0);
        // Stream ids are `<ms>-<seq>`: `until` is exclusive, so stop at the ms before.
        let end = until.timestamp_millis() - 1;
        if end < start || limit == 0 {
            return Ok(Vec::new());
        }
        let first = match after {
            Some(after) if after.millis > end as u64 => return Ok(Vec::new()),
            Some(after) if after.millis >= start as u64 => format!("({after}"),
            _ => start.to_string(),
        };
        type Entries = Vec<(String, Vec<(String, String)>)>;
        let entries: Entries = self
            .retrying("read the audit trail", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("XRANGE")
                    .arg(&key)
                    .arg(&first)
                    .arg(end)
                    .arg("COUNT")
                    .arg(limit)
                    .to_owned();
                async move { cmd.query_async::<Entries>(&mut con).await }
            })
            .await?;
        let corrupt = |id: &str, reason: String| StoreError::Corrupt {
            what: format!("audit entry {id} in {key}"),
            reason,
        };
        entries
            .into_iter()
            .flat_map(|(id, fields)| fields.into_iter().map(move |f| (id.clone(), f)))
            .filter(|(_, (name, _))| name == "entry")
            .map(|(id, (_, json))| {
                let position = id
                    .parse()
                    .map_err(|e: BadAuditPosition| corrupt(&id, e.to_string()))?;
                let entry = serde_json::from_str(&json).map_err(|e| corrupt(&id, e.to_string()))?;
                Ok((position, entry))
            })
            .collect()
    }

    pub(super) async fn hold_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        let key = self.keys.approval(approval.id());
        let pending = self.keys.approvals();
        let json = to_json(approval)?;
        let expires = approval.expires_at.timestamp_millis();
        let ttl = keep_ms(approval.expires_at);
        let id = approval.id().to_string();
        self.retrying("hold a job for approval", |redis| {
            let mut con = redis.shared.clone();
            let mut pipe = ::redis::pipe();
            pipe.atomic()
                .cmd("SET")
                .arg(&key)
                .arg(&json)
                .arg("PX")
                .arg(ttl)
                .ignore()
                .cmd("ZADD")
                .arg(&pending)
                .arg(expires)
                .arg(&id)
                .ignore();
            async move { pipe.query_async::<()>(&mut con).await }
        })
        .await
    }

    pub(super) async fn pending(&self, limit: usize) -> Result<Vec<Approval>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let pending = self.keys.approvals();
        let ids: Vec<String> = self
            .retrying("list pending approvals", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("ZRANGE")
                    .arg(&pending)
                    .arg(0)
                    .arg(limit - 1)
                    .to_owned();
                async move { cmd.query_async::<Vec<String>>(&mut con).await }
            })
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(id) = id.parse::<JobId>() else {
                continue;
            };
            match self.read_approval(id).await? {
                Some(approval) => out.push(approval),
                // Its record expired: nothing can be done with it any more.
                None => self.drop_pending(id).await?,
            }
        }
        Ok(out)
    }

    pub(super) async fn approval_and_decision(
        &self,
        id: JobId,
    ) -> Result<Option<(Approval, Option<Decision>)>, StoreError> {
        let Some(approval) = self.read_approval(id).await? else {
            return Ok(None);
        };
        let decision = self.read_decision(id).await?;
        Ok(Some((approval, decision)))
    }

    pub(super) async fn decide(
        &self,
        id: JobId,
        decision: &Decision,
    ) -> Result<Decided, StoreError> {
        let Some(approval) = self.read_approval(id).await? else {
            return Ok(Decided::Unknown);
        };
        let key = self.keys.decision(id);
        let json = to_json(decision)?;
        let ttl = keep_ms(approval.expires_at);
        let previous: Option<String> = self
            .retrying("store an approval's decision", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("SET")
                    .arg(&key)
                    .arg(&json)
                    .arg("NX")
                    .arg("GET")
                    .arg("PX")
                    .arg(ttl)
                    .to_owned();
                async move { cmd.query_async::<Option<String>>(&mut con).await }
            })
            .await?;
        match previous {
            Some(first) if first != json => Ok(Decided::Already(self.parse_decision(id, &first)?)),
            _ => {
                self.drop_pending(id).await?;
                Ok(Decided::Now(Box::new(approval)))
            }
        }
    }

    async fn read_approval(&self, id: JobId) -> Result<Option<Approval>, StoreError> {
        let key = self.keys.approval(id);
        let json: Option<String> = self
            .retrying("read an approval", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("GET").arg(&key).to_owned();
                async move { cmd.query_async::<Option<String>>(&mut con).await }
            })
            .await?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                what: format!("approval {key}"),
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    async fn read_decision(&self, id: JobId) -> Result<Option<Decision>, StoreError> {
        let key = self.keys.decision(id);
        let json: Option<String> = self
            .retrying("read an approval's decision", |redis| {
                let mut con = redis.shared.clone();
                let cmd = ::redis::cmd("GET").arg(&key).to_owned();
                async move { cmd.query_async::<Option<String>>(&mut con).await }
            })
            .await?;
        json.map(|json| self.parse_decision(id, &json)).transpose()
    }

    fn parse_decision(&self, id: JobId, json: &str) -> Result<Decision, StoreError> {
        serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
            what: format!("the decision of approval {id}"),
            reason: e.to_string(),
        })
    }

    async fn drop_pending(&self, id: JobId) -> Result<(), StoreError> {
        let pending = self.keys.approvals();
        let id = id.to_string();
        self.retrying("take an approval off the pending list", |redis| {
            let mut con = redis.shared.clone();
            let cmd = ::redis::cmd("ZREM").arg(&pending).arg(&id).to_owned();
            async move { cmd.query_async::<i64>(&mut con).await }
        })
        .await
        .map(drop)
    }
}

/// How long an approval's keys live: until [`APPROVAL_KEEP`] past its expiry.
fn keep_ms(expires_at: DateTime<Utc>) -> u64 {
    let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
    millis(left + APPROVAL_KEEP).max(1)
}
