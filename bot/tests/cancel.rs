//! Who may cancel a job: the person who asked for it, and members of group admins.

use std::sync::Arc;
use std::time::Duration;

use bot::builtins::BuiltinServices;
use bot::reload::Reloader;
use bot::router::{Outcome, Request, Router};
use commands::{Catalog, LiveCatalog};
use config::Config;
use jobs::memory::{MemoryBroker, MemoryScheduleStore, MemoryStore};
use jobs::{Broker, Control, Job, Origin, Store, Task};

const GROUPS: &str = "[acl.groups]\nadmins = [\"console:root\"]\n";

fn request(user: &str, text: &str) -> Request {
    Request {
        text: text.to_string(),
        origin: Origin::new("console", user),
    }
}

#[tokio::test]
async fn the_requester_and_admins_may_cancel_and_others_are_told_who_may() {
    let config = Config::parse("octobox.toml", GROUPS, |_| None).unwrap();
    let catalog = LiveCatalog::new(Catalog::build(&config, None).unwrap());
    let broker = Arc::new(MemoryBroker::new());
    let store = Arc::new(MemoryStore::new());
    let mut control = broker.subscribe_control().await.unwrap();
    let services = BuiltinServices {
        store: store.clone() as Arc<dyn Store>,
        broker: broker.clone() as Arc<dyn Broker>,
        schedules: Arc::new(MemoryScheduleStore::new()),
        reloader: Arc::new(Reloader::new(catalog.clone())),
        inventory: Arc::new(jobs::memory::MemoryInventory::new()),
    };
    let router = Router::new(catalog, services);
    let job = Job::new(
        "sleep",
        Default::default(),
        Task::native("sleep"),
        Origin::new("console", "alice"),
        Duration::from_secs(60),
    );
    store.record_job(&job).await.unwrap();

    let refused = router
        .handle(&request("bob", &format!("cancel {}", job.id)))
        .await;
    assert_eq!(refused.outcome, Outcome::Refused);
    assert_eq!(
        refused.text,
        format!(
            "only console:alice, who asked for job {}, or a member of group admins may cancel it",
            job.id
        )
    );

    for user in ["alice", "root"] {
        let sent = router
            .handle(&request(user, &format!("cancel {}", job.id)))
            .await;
        assert_eq!(sent.outcome, Outcome::Done, "{}", sent.text);
        assert_eq!(
            control.next().await,
            Some(Control::Cancel {
                job: job.id,
                by: format!("console:{user}")
            })
        );
    }
}
