//! Pages of the job history: [`JobQuery`] (the filters of one page and where it starts),
//! [`JobCursor`] (a position in the history, given to callers as an opaque string),
//! [`JobPage`] (what a store answers), and the one reading of a query's filters that
//! every store applies, so the in-memory store and Redis agree on what matches.
//!
//! The history is ordered newest first by creation time in milliseconds, and within one
//! millisecond by job id, descending. A cursor names one such position; the next page is
//! what lies strictly after it, so following cursors from page to page skips and repeats
//! nothing, however many jobs share a millisecond, and whenever the jobs were created
//! (a job's creation time and the time in its id need not agree).
//!
//! Times compare to the millisecond: a job matches `since` when its creation time,
//! truncated to the millisecond, is at or after `since` truncated likewise, and `until`
//! when it is before it.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::job::{JobId, JobRecord, JobStatus, Output};

/// The most jobs one page holds; a query's `limit` is clamped to `1..=MAX_PAGE`.
pub const MAX_PAGE: usize = 200;

/// The longest `text`, `command`, `requester` or `adapter` filter, in characters.
pub const MAX_FILTER_CHARS: usize = 200;

/// What a history page asks for. Every filter is optional; together they must all hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobQuery {
    /// Any of these; empty = any status.
    pub statuses: Vec<JobStatus>,
    pub command: Option<String>,
    /// An identity, "adapter:user" (`Origin::identity()`).
    pub requester: Option<String>,
    pub adapter: Option<String>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the arguments' values, the result's text output, or
    /// its error.
    pub text: Option<String>,
    /// Only jobs the broker gave up on (`Store::note_dead_letter`).
    pub dead_lettered: bool,
    /// Continue after this position (older jobs).
    pub after: Option<JobCursor>,
    /// Clamped to `1..=MAX_PAGE`.
    pub limit: usize,
}

/// A position in the history, newest first: creation time (ms) and job id. Opaque to
/// callers: `Display` gives a short URL-safe string, `FromStr` reads it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobCursor {
    // Field order is the position order: later (newer) compares greater.
    created_ms: i64,
    id: JobId,
}

/// One page of the history.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPage {
    /// Newest first.
    pub jobs: Vec<JobRecord>,
    /// Some when older matching jobs may remain (also when the store's scan budget ran
    /// out before the page filled): pass it as the next query's `after`.
    pub next: Option<JobCursor>,
    /// Records examined.
    pub scanned: usize,
}

/// A cursor string that is not one a page gave.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a job history cursor ({reason}); pass back the `next` of a page unchanged \
     (32 characters of A-Z, a-z, 0-9, `-` and `_`)"
)]
pub struct BadCursor {
    reason: &'static str,
}

/// A query a store refuses to run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadQuery {
    #[error("the `{field}` filter is {chars} characters long; at most {max} are allowed")]
    TooLong {
        field: &'static str,
        chars: usize,
        max: usize,
    },
}

impl JobCursor {
    /// The cursor's string: 8 bytes of creation time and the id's 16, base64url.
    const BYTES: usize = 24;
    const CHARS: usize = 32;

    pub fn new(created_ms: i64, id: JobId) -> Self {
        JobCursor { created_ms, id }
    }

    /// The position of `record` in the history.
    pub fn of(record: &JobRecord) -> Self {
        JobCursor::new(record.job.created_at.timestamp_millis(), record.job.id)
    }

    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }

    pub fn id(&self) -> JobId {
        self.id
    }
}

impl fmt::Display for JobCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = [0u8; Self::BYTES];
        bytes[..8].copy_from_slice(&self.created_ms.to_be_bytes());
        bytes[8..].copy_from_slice(&self.id.to_bytes());
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }
}

impl FromStr for JobCursor {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Checked before decoding, so a long string costs nothing.
        if s.len() != Self::CHARS {
            return Err(BadCursor {
                reason: "wrong length",
            });
        }
        let mut bytes = [0u8; Self::BYTES];
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode_slice(s, &mut bytes)
            .map_err(|_| BadCursor {
                reason: "not base64url",
            })?;
        if decoded != Self::BYTES {
            return Err(BadCursor {
                reason: "wrong length",
            });
        }
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&bytes[..8]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[8..]);
        Ok(JobCursor::new(
            i64::from_be_bytes(ms),
            JobId::from_bytes(id),
        ))
    }
}

impl JobQuery {
    /// The page size this query gets: `limit` clamped to `1..=MAX_PAGE`.
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }

    /// Refuses filters past [`MAX_FILTER_CHARS`]. Stores check it before any work.
    pub fn validate(&self) -> Result<(), BadQuery> {
        let fields = [
            ("text", &self.text),
            ("command", &self.command),
            ("requester", &self.requester),
            ("adapter", &self.adapter),
        ];
        for (field, value) in fields {
            let Some(value) = value else { continue };
            let chars = value.chars().count();
            if chars > MAX_FILTER_CHARS {
                return Err(BadQuery::TooLong {
                    field,
                    chars,
                    max: MAX_FILTER_CHARS,
                });
            }
        }
        Ok(())
    }

    /// The query's filters, ready to test records against (the text lowercased once).
    pub(crate) fn filters(&self) -> Result<Filters<'_>, BadQuery> {
        self.validate()?;
        Ok(Filters {
            query: self,
            text: self.text.as_deref().map(str::to_lowercase),
            since_ms: self.since.map(|t| t.timestamp_millis()),
            until_ms: self.until.map(|t| t.timestamp_millis()),
        })
    }
}

/// A validated query's filters, as both stores apply them.
pub(crate) struct Filters<'q> {
    query: &'q JobQuery,
    text: Option<String>,
    pub(crate) since_ms: Option<i64>,
    pub(crate) until_ms: Option<i64>,
}

impl Filters<'_> {
    /// Whether a job created at `created_ms` is inside `since..until`.
    pub(crate) fn in_range(&self, created_ms: i64) -> bool {
        self.since_ms.is_none_or(|since| created_ms >= since)
            && self.until_ms.is_none_or(|until| created_ms < until)
    }

    /// Whether a record of `status` may match: a check before the record is decoded.
    pub(crate) fn admits_status(&self, status: JobStatus) -> bool {
        self.query.statuses.is_empty() || self.query.statuses.contains(&status)
    }

    /// Whether a record may hold the text filter, judged on its stored JSON (`raw`: the
    /// job's and the result's) before it is decoded: `false` only when it certainly
    /// does not, so a store need not decode it. That is sound when the JSON is ASCII, the
    /// text is ASCII with nothing JSON escapes (`"`, `\`, control characters), and no
    /// argument is a duration (shown as `1h30m`, stored in milliseconds): every value
    /// searched then stands in the JSON verbatim. Otherwise, and with no text filter,
    /// `true`. Linear in the JSON's size; `scratch` is reused between calls.
    pub(crate) fn may_hold_text(&self, raw: &[&[u8]], scratch: &mut Vec<u8>) -> bool {
        let Some(needle) = &self.text else {
            return true;
        };
        let plain = |b: &u8| b.is_ascii() && *b >= 0x20 && *b != b'"' && *b != b'\\';
        if !needle.as_bytes().iter().all(plain) {
            return true;
        }
        for json in raw {
            scratch.clear();
            for &b in *json {
                if !b.is_ascii() {
                    return true;
                }
                scratch.push(b.to_ascii_lowercase());
            }
            let Ok(text) = std::str::from_utf8(scratch) else {
                return true;
            };
            if text.contains(needle.as_str()) || text.contains("\"type\":\"duration\"") {
                return true;
            }
        }
        false
    }

    /// Whether `record` matches every filter; `dead_lettered` says whether the store
    /// noted it as dead-lettered. Time linear in the record's text for a text filter.
    pub(crate) fn matches(&self, record: &JobRecord, dead_lettered: bool) -> bool {
        let q = self.query;
        let job = &record.job;
        self.admits_status(record.status)
            && q.command.as_ref().is_none_or(|c| *c == job.command)
            && q.adapter.as_ref().is_none_or(|a| *a == job.origin.adapter)
            && q.requester.as_ref().is_none_or(|r| is_identity(r, record))
            && (!q.dead_lettered || dead_lettered)
            && self.in_range(job.created_at.timestamp_millis())
            && self.text.as_ref().is_none_or(|t| has_text(t, record))
    }
}

/// `adapter:user` without building the string.
fn is_identity(identity: &str, record: &JobRecord) -> bool {
    let origin = &record.job.origin;
    identity
        .strip_prefix(origin.adapter.as_str())
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|user| user == origin.user)
}

/// Whether lowercase `needle` is in an argument's value, the text output or the error.
fn has_text(needle: &str, record: &JobRecord) -> bool {
    let found = |hay: &str| hay.to_lowercase().contains(needle);
    if record
        .job
        .args
        .values()
        .any(|value| found(&value.to_string()))
    {
        return true;
    }
    let Some(result) = &record.result else {
        return false;
    };
    matches!(&result.output, Output::Text { text } if found(text))
        || result.error.as_deref().is_some_and(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_from_its_short_url_safe_string() {
        for ms in [0, 1_700_000_000_123, -5, i64::MAX, i64::MIN] {
            let cursor = JobCursor::new(ms, JobId::new());
            let text = cursor.to_string();
            assert_eq!(text.len(), 32, "{text}");
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text}"
            );
            assert_eq!(text.parse::<JobCursor>(), Ok(cursor));
        }
    }

    #[test]
    fn a_string_that_is_no_cursor_is_refused_in_plain_words() {
        for bad in [
            "",
            "abc",
            "not a cursor at all, just words!",
            &"A".repeat(10_000),
        ] {
            let err = bad.parse::<JobCursor>().unwrap_err();
            assert!(
                err.to_string().contains("not a job history cursor"),
                "{err}"
            );
        }
        let err = "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            .parse::<JobCursor>()
            .unwrap_err();
        assert!(err.to_string().contains("base64url"), "{err}");
    }

    #[test]
    fn cursors_order_by_time_then_id() {
        let (a, b) = (JobId::new(), JobId::new());
        assert!(JobCursor::new(5, a) < JobCursor::new(5, b));
        assert!(JobCursor::new(4, b) < JobCursor::new(5, a));
    }

    #[test]
    fn the_page_size_is_clamped() {
        let q = |limit| JobQuery {
            limit,
            ..Default::default()
        };
        assert_eq!(q(0).page_size(), 1);
        assert_eq!(q(50).page_size(), 50);
        assert_eq!(q(10_000).page_size(), MAX_PAGE);
    }

    #[test]
    fn the_text_is_looked_for_in_stored_json_only_where_that_is_sound() {
        use crate::job::{Job, JobResult, Origin, Task};
        use lexicon::Value;
        let with_text = |text: &str| JobQuery {
            text: Some(text.into()),
            ..Default::default()
        };
        let record = |args: Vec<(&str, Value)>, output: &str| {
            let job = Job::new(
                "deploy",
                args.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                Task::native("deploy"),
                Origin::new("ssh", "bob"),
                std::time::Duration::from_secs(1),
            );
            let result = JobResult {
                id: job.id,
                status: JobStatus::Succeeded,
                output: Output::text(output),
                worker: "w1".into(),
                started_at: Utc::now(),
                finished_at: Utc::now(),
                error: None,
            };
            let raw = [
                serde_json::to_vec(&job).unwrap(),
                serde_json::to_vec(&result).unwrap(),
            ];
            (
                JobRecord {
                    result: Some(result),
                    ..JobRecord::queued(job)
                },
                raw,
            )
        };
        let mut scratch = Vec::new();
        let cases = [
            (
                vec![("host", Value::Hostname("Web-17".into()))],
                "line one\nline \"two\"",
            ),
            (
                vec![(
                    "wait",
                    Value::Duration(lexicon::DurationValue::from_millis(5_400_000)),
                )],
                "ok",
            ),
            (vec![("who", Value::Text("Zoë".into()))], "tab\there"),
        ];
        let needles = [
            "web-17", "1h30m", "zoë", "line two", "\"two\"", "two", "tab\th", "ok", "absent",
        ];
        for (args, output) in cases {
            let (record, raw) = record(args, output);
            let raw: Vec<&[u8]> = raw.iter().map(Vec::as_slice).collect();
            for needle in needles {
                let query = with_text(needle);
                let filters = query.filters().unwrap();
                if filters.matches(&record, false) {
                    assert!(
                        filters.may_hold_text(&raw, &mut scratch),
                        "{needle:?} is in {record:?} but was ruled out"
                    );
                }
            }
            let query = with_text("absent");
            let filters = query.filters().unwrap();
            assert!(!filters.matches(&record, false));
        }
        let (_, raw) = record(vec![], "nothing here");
        let raw: Vec<&[u8]> = raw.iter().map(Vec::as_slice).collect();
        let query = with_text("absent");
        assert!(!query.filters().unwrap().may_hold_text(&raw, &mut scratch));
    }

    #[test]
    fn long_filters_are_refused_naming_the_filter() {
        let ok = JobQuery {
            text: Some("é".repeat(MAX_FILTER_CHARS)),
            ..Default::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let long = JobQuery {
            requester: Some("x".repeat(MAX_FILTER_CHARS + 1)),
            ..Default::default()
        };
        let err = long.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the `requester` filter is 201 characters long; at most 200 are allowed"
        );
    }
}
