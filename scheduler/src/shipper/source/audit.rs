//! `AuditSource`: the audit trail of the job store (`Store::audit_page`), as records.
//!
//! A window's records are the `AuditEntry` objects appended in `[start, end)` (the
//! store's clock), oldest first. A page's link is the position of its last entry, and
//! the next page starts right after it, so a page that ends inside a millisecond loses
//! or repeats nothing. Entries are stored masked (`secret` values never reach the
//! trail), so they are shipped as they are; their text is never logged.

use std::sync::Arc;

use async_trait::async_trait;
use jobs::{AuditPosition, Store};

use super::{Page, Source};
use crate::shipper::window::Window;
use crate::shipper::ShipError;

pub struct AuditSource {
    store: Arc<dyn Store>,
    page_size: usize,
}

impl AuditSource {
    pub fn new(store: Arc<dyn Store>, page_size: usize) -> Self {
        AuditSource {
            store,
            page_size: page_size.max(1),
        }
    }
}

#[async_trait]
impl Source for AuditSource {
    async fn fetch(
        &self,
        window: &Window,
        link: Option<&str>,
        _retries: &mut u64,
    ) -> Result<Page, ShipError> {
        let after = link
            .map(str::parse::<AuditPosition>)
            .transpose()
            .map_err(|e| ShipError::Source(format!("cannot go on with the audit trail: {e}")))?;
        let entries = self
            .store
            .audit_page(window.start, window.end, after, self.page_size)
            .await
            .map_err(|e| ShipError::Source(e.to_string()))?;
        // A full page may have more after it; a short one is the window's last.
        let next = (entries.len() == self.page_size)
            .then(|| entries.last().map(|(p, _)| p.to_string()))
            .flatten();
        let records = entries
            .into_iter()
            .map(|(_, entry)| serde_json::to_value(entry))
            .collect::<Result<_, _>>()
            .map_err(|e| ShipError::Source(format!("cannot encode an audit entry: {e}")))?;
        Ok(Page { records, next })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use jobs::memory::MemoryStore;
    use jobs::{AuditEntry, AuditKind, Origin};

    use super::*;

    #[tokio::test]
    async fn a_window_is_read_page_by_page_each_entry_once_oldest_first() {
        let store = Arc::new(MemoryStore::new());
        let window = Window::starting(Utc::now(), Duration::from_secs(60));
        for i in 0..10 {
            let origin = Origin::new("console", format!("u{i}"));
            let entry = AuditEntry::new(AuditKind::Request, &origin, "ping", "answered");
            store
                .append_audit(&entry, Duration::from_secs(3600))
                .await
                .unwrap();
        }
        let source = AuditSource::new(store, 3);
        let (mut who, mut link, mut pages) = (Vec::new(), None, 0);
        loop {
            let page = source
                .fetch(&window, link.as_deref(), &mut 0)
                .await
                .unwrap();
            pages += 1;
            who.extend(page.records.iter().map(|r| r["identity"].to_string()));
            match page.next {
                Some(next) => link = Some(next),
                None => break,
            }
        }
        let want: Vec<_> = (0..10).map(|i| format!("\"console:u{i}\"")).collect();
        assert_eq!((who, pages), (want, 4));

        let before = Window::starting(
            window.start - chrono::Duration::seconds(60),
            Duration::from_secs(60),
        );
        let page = source.fetch(&before, None, &mut 0).await.unwrap();
        assert!(page.records.is_empty() && page.next.is_none());
        let Err(e) = source.fetch(&window, Some("tomorrow"), &mut 0).await else {
            panic!("a link that is no position is refused");
        };
        assert!(
            e.to_string().contains("is not an audit trail position"),
            "{e}"
        );
    }
}
