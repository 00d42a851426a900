//! The audit trail and approvals in a real `redis-server`: shared by two stores (two bot
//! processes), surviving a new connection, trimmed by age, paged through for export
//! without a gap or a repeat, one decision per approval.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use chrono::Utc;
use config::{Secret, StoreConfig};
use jobs::redis::RedisStore;
use jobs::{
    Approval, AuditEntry, AuditKind, AuditPosition, Decided, Decision, Job, Origin, Store, Task,
};
use test_services::Redis;

async fn store_on(redis: &Redis) -> RedisStore {
    RedisStore::connect(&StoreConfig::new(Secret::new(redis.url())))
        .await
        .expect("the store connects to a running Redis")
}

fn entry(who: &str, text: &str) -> AuditEntry {
    AuditEntry::new(AuditKind::Request, &Origin::new("ssh", who), text, "queued")
}

fn approval(ttl: chrono::Duration) -> Approval {
    let job = Job::new(
        "deploy",
        BTreeMap::new(),
        Task::native("echo"),
        Origin::new("ssh", "alice"),
        Duration::from_secs(60),
    );
    Approval {
        job,
        by: "group:leads".into(),
        reason: Some("hotfix".into()),
        expires_at: Utc::now() + ttl,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trail_is_shared_read_by_time_and_forgets_what_is_past_its_age() {
    let redis = tokio::task::spawn_blocking(Redis::start).await.unwrap();
    let (a, b) = (store_on(&redis).await, store_on(&redis).await);
    let keep = Duration::from_secs(3600);
    let start = Utc::now();
    a.append_audit(&entry("alice", "deploy web"), keep)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let middle = Utc::now();
    b.append_audit(&entry("bob", "restart db"), keep)
        .await
        .unwrap();
    let end = Utc::now() + chrono::Duration::seconds(1);

    // Both bots' entries, oldest first, from either store and from a new connection.
    let fresh = store_on(&redis).await;
    let all = fresh.audit(start, end, 100).await.unwrap();
    let said: Vec<_> = all.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(said, ["deploy web", "restart db"]);
    assert_eq!(all[0].identity, "ssh:alice");
    let later = a.audit(middle, end, 100).await.unwrap();
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!(later[0].identity, "ssh:bob");
    assert_eq!(a.audit(start, end, 1).await.unwrap().len(), 1);

    // An append with a short age limit drops what is older than it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.append_audit(&entry("carol", "ping"), Duration::from_secs(1))
        .await
        .unwrap();
    let kept = a
        .audit(start, Utc::now() + chrono::Duration::seconds(1), 100)
        .await
        .unwrap();
    let said: Vec<_> = kept.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(said, ["ping"]);
}

/// Every entry of `[from, until)`, read `limit` at a time, each page after the last
/// position of the one before.
async fn page_through(
    store: &dyn Store,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
) -> Vec<(AuditPosition, AuditEntry)> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store.audit_page(from, until, after, limit).await.unwrap();
        assert!(page.len() <= limit, "a page holds at most its limit");
        after = page.last().map(|(p, _)| *p);
        let done = page.len() < limit;
        all.extend(page);
        if done {
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_through_the_trail_neither_skips_nor_repeats_entries_of_one_millisecond() {
    let redis = tokio::task::spawn_blocking(Redis::start).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store_on(&redis).await);
    let keep = Duration::from_secs(3600);
    let start = Utc::now();
    // Appended all at once, by many tasks: the server gives many of them one millisecond.
    let mut appends = tokio::task::JoinSet::new();
    for i in 0..400 {
        let store = store.clone();
        appends.spawn(async move {
            let entry = entry(&format!("u{i}"), &format!("request {i}"));
            store.append_audit(&entry, keep).await.unwrap();
        });
    }
    while let Some(done) = appends.join_next().await {
        done.unwrap();
    }
    let until = Utc::now() + chrono::Duration::seconds(1);

    let whole = store.audit_page(start, until, None, 1000).await.unwrap();
    assert_eq!(whole.len(), 400);
    let mut per_ms = BTreeMap::<u64, usize>::new();
    for (p, _) in &whole {
        *per_ms.entry(p.millis).or_default() += 1;
    }
    let busiest = per_ms.values().max().copied().unwrap_or(0);
    assert!(
        busiest > 3,
        "pages of 3 end inside a millisecond: {per_ms:?}"
    );

    // Pages of 3 read every entry once, in order, wherever they end.
    let paged = page_through(store.as_ref(), start, until, 3).await;
    assert_eq!(paged, whole);

    // Two windows meeting inside the busiest second split it by millisecond: each entry
    // is in exactly one of them, and in the one its position says.
    let (&boundary_ms, _) = per_ms.iter().max_by_key(|(_, n)| **n).unwrap();
    let boundary = DateTime::from_timestamp_millis(boundary_ms as i64).unwrap();
    let before = page_through(store.as_ref(), start, boundary, 4).await;
    let after = page_through(store.as_ref(), boundary, until, 4).await;
    assert!(before.iter().all(|(p, _)| p.millis < boundary_ms));
    assert!(after.iter().all(|(p, _)| p.millis >= boundary_ms));
    assert_eq!([before, after].concat(), whole);
    // `audit` reads the same entries.
    let read: Vec<_> = store.audit(start, until, 1000).await.unwrap();
    assert_eq!(read, whole.into_iter().map(|(_, e)| e).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_is_decided_once_whichever_bot_decides_and_survives_reconnecting() {
    let redis = tokio::task::spawn_blocking(Redis::start).await.unwrap();
    let a: Arc<dyn Store> = Arc::new(store_on(&redis).await);
    let b: Arc<dyn Store> = Arc::new(store_on(&redis).await);
    let soon = approval(chrono::Duration::minutes(5));
    let later = approval(chrono::Duration::minutes(10));
    a.hold_for_approval(&later).await.unwrap();
    a.hold_for_approval(&soon).await.unwrap();

    // Listed soonest to expire first, by any bot, with what the requester gave.
    let pending = b.pending_approvals(10).await.unwrap();
    assert_eq!(
        pending.iter().map(Approval::id).collect::<Vec<_>>(),
        [soon.id(), later.id()]
    );
    assert_eq!(pending[0], soon);

    // Two bots decide at once: one decision stands, the other bot is told it.
    let approve = Decision::Approved {
        by: "slack:UCAROL".into(),
        at: Utc::now(),
    };
    let deny = Decision::Denied {
        by: "ssh:dave".into(),
        at: Utc::now(),
        reason: Some("freeze".into()),
    };
    let id = soon.id();
    let (x, y) = tokio::join!(
        a.decide_approval(id, &approve),
        b.decide_approval(id, &deny)
    );
    let (won, lost) = match (x.unwrap(), y.unwrap()) {
        (Decided::Now(_), Decided::Already(first)) => (approve.clone(), first),
        (Decided::Already(first), Decided::Now(_)) => (deny.clone(), first),
        other => panic!("not exactly one decision: {other:?}"),
    };
    assert_eq!(lost, won);
    // Deciding again, from a new connection, finds the first decision.
    let fresh = store_on(&redis).await;
    assert_eq!(
        fresh.decide_approval(id, &approve).await.unwrap() == Decided::Already(won.clone()),
        won != approve,
        "a retry of the winning decision finds its own; any other finds the winner"
    );
    let (kept, decision) = fresh.approval(id).await.unwrap().unwrap();
    assert_eq!(kept, soon);
    assert_eq!(decision, Some(won));
    // Decided ones leave the pending list.
    let pending = fresh.pending_approvals(10).await.unwrap();
    assert_eq!(
        pending.iter().map(Approval::id).collect::<Vec<_>>(),
        [later.id()]
    );
    // An approval never held is unknown.
    let never = approval(chrono::Duration::minutes(1));
    assert_eq!(
        fresh.decide_approval(never.id(), &approve).await.unwrap(),
        Decided::Unknown
    );
}
