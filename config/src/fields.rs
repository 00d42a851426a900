//! Readers for the kinds of value several sections share: whole numbers within bounds,
//! durations with a floor, identities.
//!
//! Each reader is a plain function from the value as written to the value or the
//! sentence a person sees; the caller adds the file, line and key. Keeping them here,
//! apart from any one section, is what lets every section word the same mistake the same
//! way, and lets `container` use them without reaching into `load`.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::time::Duration;

/// A whole number within `range`: counts and limits, which are never negative and have
/// a ceiling past which the value is surely a typo.
pub(crate) fn bounded<T>(n: i64, range: RangeInclusive<T>) -> Result<T, String>
where
    T: TryFrom<i64> + PartialOrd + Display,
{
    T::try_from(n)
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| {
            format!(
                "{n} is not a whole number from {} to {}",
                range.start(),
                range.end()
            )
        })
}

/// A duration longer than zero: a zero timeout or wait would mean "never" or "spin",
/// and neither is what anyone writing it meant.
pub(crate) fn positive_duration(text: &str) -> Result<Duration, String> {
    match lexicon::parse_duration(text).map_err(|e| e.to_string())? {
        d if d > Duration::ZERO => Ok(d),
        _ => Err("must be longer than 0s".into()),
    }
}

/// A duration of at least `min`, for the periods below which the work would be pointless
/// or harmful (a lease renewed faster than the store answers).
pub(crate) fn duration_at_least(text: &str, min: Duration) -> Result<Duration, String> {
    match lexicon::parse_duration(text).map_err(|e| e.to_string())? {
        d if d >= min => Ok(d),
        _ => Err(format!(
            "must be at least {}",
            lexicon::format_duration(min)
        )),
    }
}

/// A duration longer than zero and at most `max`, for waits that hold someone up while
/// they last.
pub(crate) fn duration_at_most(text: &str, max: Duration) -> Result<Duration, String> {
    match positive_duration(text)? {
        d if d <= max => Ok(d),
        _ => Err(format!("must be at most {}", lexicon::format_duration(max))),
    }
}

/// Whether `s` is a name of something the file declares (a schedule, a shipper):
/// letters, digits, `-` and `_`, so it can be typed in a command and a log line.
/// An address and port to listen on (`0.0.0.0:9100`, `[::1]:9100`); the error gives
/// `example`.
pub(crate) fn socket_addr(text: &str, example: &str) -> Result<std::net::SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("\"{text}\" is not an address and port: write e.g. \"{example}\""))
}

pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether `s` is an identity, `adapter:user` (`console:alice`, `slack:U024BE7LH`).
pub(crate) fn is_identity(s: &str) -> bool {
    matches!(s.split_once(':'), Some((a, u)) if !a.is_empty() && !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_the_message_names_them() {
        assert_eq!(bounded::<u32>(0, 0..=100), Ok(0));
        assert_eq!(bounded::<usize>(1024, 1..=1024), Ok(1024));
        assert_eq!(
            bounded::<u32>(-1, 0..=100),
            Err("-1 is not a whole number from 0 to 100".to_string())
        );
        assert_eq!(
            bounded::<u32>(100_001, 1..=100_000),
            Err("100001 is not a whole number from 1 to 100000".to_string())
        );
    }

    #[test]
    fn durations_below_their_floor_are_refused() {
        assert_eq!(positive_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            positive_duration("0s"),
            Err("must be longer than 0s".into())
        );
        assert!(positive_duration("soon")
            .unwrap_err()
            .contains("is not a duration"));
        let half = Duration::from_millis(500);
        assert_eq!(duration_at_least("500ms", half), Ok(half));
        assert_eq!(
            duration_at_least("100ms", half),
            Err("must be at least 500ms".into())
        );
        assert_eq!(
            duration_at_least("0s", Duration::from_secs(1)),
            Err("must be at least 1s".into())
        );
    }
}
