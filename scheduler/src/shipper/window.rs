//! `Window`: the span of time one shipped object covers.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn starting(start: DateTime<Utc>, length: Duration) -> Self {
        let length = chrono::Duration::from_std(length).unwrap_or(chrono::Duration::days(1));
        Window {
            start,
            end: start + length,
        }
    }

    /// The epoch-aligned window of `length` that contains `t`.
    pub fn containing(t: DateTime<Utc>, length: Duration) -> Self {
        let len_ms = i64::try_from(length.as_millis()).unwrap_or(i64::MAX).max(1);
        let ms = t.timestamp_millis();
        let start_ms = ms - ms.rem_euclid(len_ms);
        let start = DateTime::from_timestamp_millis(start_ms).unwrap_or(t);
        Window::starting(start, length)
    }

    /// A name for the window in object names and keys: `20261101T000000Z-20261102T000000Z`.
    pub fn key(&self) -> String {
        let f = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        format!("{}-{}", f(self.start), f(self.end))
    }

    /// RFC 3339, as sources take it.
    pub fn rfc3339(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}, {})",
            Self::rfc3339(self.start),
            Self::rfc3339(self.end)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_the_epoch_and_name_themselves() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T13:45:10Z")
            .unwrap()
            .to_utc();
        let w = Window::containing(t, Duration::from_secs(86_400));
        assert_eq!(w.key(), "20261122T000000Z-20261123T000000Z");
        assert_eq!(
            w.to_string(),
            "[2026-11-22T00:00:00Z, 2026-11-23T00:00:00Z)"
        );
    }
}
