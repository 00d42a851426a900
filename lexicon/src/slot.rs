//! Typed slots: [`SlotKind`] (what a `{name:type}` accepts), [`Value`] (what it produced),
//! [`DurationValue`], [`SlotDef`], the per-type validation of one token, the problem sentences
//! used in errors, and the overlap relation between kinds that the ambiguity check relies on.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::input::eq_ignore_case;

/// The longest accepted `name` value, in characters.
pub const MAX_NAME_LEN: usize = 64;
/// The longest accepted host name, in characters.
pub const MAX_HOSTNAME_LEN: usize = 253;

/// What a slot accepts. Written in patterns as `word`, `name`, `hostname`, `ip`, `cidr`,
/// `int` / `int(1..100)`, `duration`, `a|b|c` (a choice), `jobid`, `secret` and `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// One token, no further check.
    Word,
    /// Letters, digits, `-_.`; starts with a letter or digit; at most 64 characters.
    Name,
    /// An RFC 1123 host name (a single label is fine).
    Hostname,
    /// An IPv4 or IPv6 address.
    Ip,
    /// An address and a prefix length, e.g. `10.0.0.0/8`.
    Cidr,
    /// A whole number (i64), optionally bounded on either side (inclusive).
    Int { min: Option<i64>, max: Option<i64> },
    /// A duration with units: `500ms`, `30s`, `5m`, `2h`, `1d`, or combinations like `1h30m`.
    Duration,
    /// One of the declared alternatives, matched case-insensitively.
    Choice(Vec<String>),
    /// A job id: a hyphenated UUID in any case.
    JobId,
    /// The rest of the line, inner spacing kept. Only allowed as the last slot.
    Text,
    /// One token that is never shown: its [`Value::Secret`] displays as `***` in replies,
    /// history, logs and errors; only the task it is for gets the text.
    Secret,
}

/// How a secret value shows everywhere but in the task it is for.
pub const MASK: &str = "***";

/// One slot of a compiled command.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotDef {
    pub name: String,
    pub kind: SlotKind,
    /// Declared inside an optional `[ ... ]` part.
    pub optional: bool,
    /// Value used when the slot is not given (`{name:type=default}`).
    pub default: Option<Value>,
}

/// A duration in whole milliseconds. Serialized as the bare number of milliseconds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct DurationValue(pub u64);

impl DurationValue {
    pub fn from_millis(ms: u64) -> Self {
        DurationValue(ms)
    }
    pub fn millis(self) -> u64 {
        self.0
    }
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

impl From<DurationValue> for std::time::Duration {
    fn from(d: DurationValue) -> Self {
        d.as_std()
    }
}

impl From<std::time::Duration> for DurationValue {
    fn from(d: std::time::Duration) -> Self {
        DurationValue(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl fmt::Display for DurationValue {
    /// Canonical form: largest units first, zero parts left out: `1h30m`, `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for &(unit, size) in UNITS {
            if ms >= size {
                write!(f, "{}{}", ms / size, unit)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

/// Duration units, largest first, with their size in milliseconds.
const UNITS: &[(&str, u64)] = &[
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A typed slot value. JSON form: `{"type":"ip","value":"10.0.0.1"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Value {
    Word(String),
    Name(String),
    Hostname(String),
    Ip(IpAddr),
    /// Canonical `address/prefix`, e.g. "10.0.0.0/8", "2001:db8::/32" (host bits kept as given).
    Cidr(String),
    Int(i64),
    /// Serialized as milliseconds.
    Duration(DurationValue),
    /// The alternative as declared (canonical case).
    Choice(String),
    /// Lower-case hyphenated UUID.
    JobId(String),
    Text(String),
    /// Shown as [`MASK`]; [`Value::reveal`] gives the text, for the task only.
    Secret(String),
}

impl Value {
    /// The text a task is given: what [`fmt::Display`] shows, except that a secret is
    /// revealed. Use it only where a value becomes a task's argv, environment or input.
    pub fn reveal(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Value::Secret(s) => s.as_str().into(),
            other => other.to_string().into(),
        }
    }

    /// The same value with a secret replaced by [`MASK`], for what is kept or shown.
    pub fn masked(&self) -> Value {
        match self {
            Value::Secret(_) => Value::Secret(MASK.to_string()),
            other => other.clone(),
        }
    }

    /// The secret's text, if this is one.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Value::Secret(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_duration(&self) -> Option<std::time::Duration> {
        match self {
            Value::Duration(d) => Some(d.as_std()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The string inside every string-like value; `None` for ip, int and duration.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Word(s)
            | Value::Name(s)
            | Value::Hostname(s)
            | Value::Cidr(s)
            | Value::Choice(s)
            | Value::JobId(s)
            | Value::Text(s) => Some(s),
            Value::Ip(_) | Value::Int(_) | Value::Duration(_) | Value::Secret(_) => None,
        }
    }

    /// The kind this value belongs to (an unbounded int; a choice of just this value).
    pub fn kind(&self) -> SlotKind {
        match self {
            Value::Word(_) => SlotKind::Word,
            Value::Name(_) => SlotKind::Name,
            Value::Hostname(_) => SlotKind::Hostname,
            Value::Ip(_) => SlotKind::Ip,
            Value::Cidr(_) => SlotKind::Cidr,
            Value::Int(_) => SlotKind::Int {
                min: None,
                max: None,
            },
            Value::Duration(_) => SlotKind::Duration,
            Value::Choice(c) => SlotKind::Choice(vec![c.clone()]),
            Value::JobId(_) => SlotKind::JobId,
            Value::Text(_) => SlotKind::Text,
            Value::Secret(_) => SlotKind::Secret,
        }
    }
}

impl fmt::Display for Value {
    /// The canonical text form, as substituted into argv: "10.0.0.1", "5m", "1h30m", "42".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Duration(d) => write!(f, "{d}"),
            Value::Secret(_) => f.write_str(MASK),
            other => f.write_str(other.as_str().unwrap_or_default()),
        }
    }
}

impl fmt::Display for SlotKind {
    /// The phrase used in errors and help: "an IP address", "a whole number from 1 to 100".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotKind::Word => f.write_str("a word"),
            SlotKind::Name => f.write_str("a name"),
            SlotKind::Hostname => f.write_str("a host name"),
            SlotKind::Ip => f.write_str("an IP address"),
            SlotKind::Cidr => f.write_str("a CIDR block"),
            SlotKind::Int { min, max } => match (min, max) {
                (None, None) => f.write_str("a whole number"),
                (Some(lo), Some(hi)) => write!(f, "a whole number from {lo} to {hi}"),
                (Some(lo), None) => write!(f, "a whole number of at least {lo}"),
                (None, Some(hi)) => write!(f, "a whole number of at most {hi}"),
            },
            SlotKind::Duration => f.write_str("a duration"),
            SlotKind::Choice(alts) => write!(f, "one of {}", alts.join(", ")),
            SlotKind::JobId => f.write_str("a job id"),
            SlotKind::Text => f.write_str("some text"),
            SlotKind::Secret => f.write_str("a secret"),
        }
    }
}

/// Why a token was refused; turned into a sentence by [`SlotKind::problem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Not of this kind at all.
    Invalid,
    /// A whole number, but outside the bounds (or outside i64), or a duration too long.
    OutOfRange,
    /// A duration given as a bare number.
    NoUnit,
    /// A name longer than 64 characters / host name longer than 253.
    TooLong,
    /// Nothing given (a required text slot with no words, a missing trailing slot).
    Missing,
}

/// A validated token, before it is turned into an owned [`Value`] (no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Str,
    Ip(IpAddr),
    Cidr(IpAddr, u8),
    Int(i64),
    Duration(u64),
    Choice(usize),
}

impl SlotKind {
    /// The type as written in a pattern: "word", "int(1..100)", "prod|staging".
    pub fn type_name(&self) -> String {
        match self {
            SlotKind::Word => "word".into(),
            SlotKind::Name => "name".into(),
            SlotKind::Hostname => "hostname".into(),
            SlotKind::Ip => "ip".into(),
            SlotKind::Cidr => "cidr".into(),
            SlotKind::Int {
                min: None,
                max: None,
            } => "int".into(),
            SlotKind::Int { min, max } => format!(
                "int({}..{})",
                min.map(|n| n.to_string()).unwrap_or_default(),
                max.map(|n| n.to_string()).unwrap_or_default()
            ),
            SlotKind::Duration => "duration".into(),
            SlotKind::Choice(alts) => alts.join("|"),
            SlotKind::JobId => "jobid".into(),
            SlotKind::Text => "text".into(),
            SlotKind::Secret => "secret".into(),
        }
    }

    /// Parses one value of this kind. The error reads as a sentence such as
    /// `"999.1.1.1" is not an IP address`.
    pub fn parse(&self, text: &str) -> Result<Value, BadValue> {
        match self.check(text) {
            Ok(parsed) => Ok(self.value_of(text, parsed)),
            Err(reject) => Err(BadValue(self.problem(text, reject))),
        }
    }

    /// Whether `text` is a valid value of this kind.
    pub fn accepts(&self, text: &str) -> bool {
        self.check(text).is_ok()
    }

    /// Validates without allocating.
    pub(crate) fn check(&self, s: &str) -> Result<Parsed, Reject> {
        if s.is_empty() || (!matches!(self, SlotKind::Text) && s.contains(char::is_whitespace)) {
            return Err(if s.trim().is_empty() {
                Reject::Missing
            } else {
                Reject::Invalid
            });
        }
        match self {
            SlotKind::Word | SlotKind::Secret => Ok(Parsed::Str),
            SlotKind::Text => {
                if s.trim().is_empty() {
                    Err(Reject::Missing)
                } else {
                    Ok(Parsed::Str)
                }
            }
            SlotKind::Name => check_name(s).map(|()| Parsed::Str),
            SlotKind::Hostname => check_hostname(s).map(|()| Parsed::Str),
            SlotKind::Ip => s
                .parse::<IpAddr>()
                .map(Parsed::Ip)
                .map_err(|_| Reject::Invalid),
            SlotKind::Cidr => check_cidr(s).map(|(ip, p)| Parsed::Cidr(ip, p)),
            SlotKind::Int { min, max } => check_int(s, *min, *max).map(Parsed::Int),
            SlotKind::Duration => parse_millis(s).map(Parsed::Duration),
            SlotKind::Choice(alts) => alts
                .iter()
                .position(|a| eq_ignore_case(s, a))
                .map(Parsed::Choice)
                .ok_or(Reject::Invalid),
            SlotKind::JobId => check_uuid(s).map(|()| Parsed::Str),
        }
    }

    /// Builds the owned value for a token that [`SlotKind::check`] accepted.
    pub(crate) fn value_of(&self, s: &str, parsed: Parsed) -> Value {
        match (self, parsed) {
            (_, Parsed::Ip(ip)) => Value::Ip(ip),
            (_, Parsed::Cidr(ip, prefix)) => Value::Cidr(format!("{ip}/{prefix}")),
            (_, Parsed::Int(n)) => Value::Int(n),
            (_, Parsed::Duration(ms)) => Value::Duration(DurationValue(ms)),
            (SlotKind::Choice(alts), Parsed::Choice(i)) => {
                Value::Choice(alts.get(i).cloned().unwrap_or_else(|| s.to_string()))
            }
            (SlotKind::Word, _) => Value::Word(s.to_string()),
            (SlotKind::Name, _) => Value::Name(s.to_string()),
            (SlotKind::Hostname, _) => Value::Hostname(s.to_string()),
            (SlotKind::JobId, _) => Value::JobId(s.to_ascii_lowercase()),
            (SlotKind::Text, _) => Value::Text(s.trim().to_string()),
            (SlotKind::Secret, _) => Value::Secret(s.to_string()),
            // Unreachable combinations fall back to the raw text as a word.
            _ => Value::Word(s.to_string()),
        }
    }

    /// The sentence explaining why `s` was refused.
    pub(crate) fn problem(&self, s: &str, reject: Reject) -> String {
        if *self == SlotKind::Secret {
            // Never quoted, not even in part.
            return match reject {
                Reject::Missing => format!("missing {self}"),
                _ => format!("that is not {self}: one word, without spaces"),
            };
        }
        match reject {
            Reject::Missing => format!("missing {self}"),
            Reject::OutOfRange if matches!(self, SlotKind::Duration) => {
                format!("\"{s}\" is too long a duration")
            }
            Reject::OutOfRange => format!("\"{s}\" is out of range: expected {self}"),
            Reject::NoUnit => format!("\"{s}\" is not a duration: use a unit, e.g. {s}s"),
            Reject::TooLong => {
                let limit = match self {
                    SlotKind::Hostname => MAX_HOSTNAME_LEN,
                    _ => MAX_NAME_LEN,
                };
                format!("\"{s}\" is not {self}: at most {limit} characters")
            }
            Reject::Invalid => match self {
                SlotKind::Duration => {
                    format!("\"{s}\" is not a duration (e.g. 30s, 5m, 2h, 1d, 500ms, 1h30m)")
                }
                SlotKind::Name => format!(
                    "\"{s}\" is not a name (letters, digits, '-', '_' and '.', \
                     starting with a letter or digit)"
                ),
                SlotKind::Hostname => format!(
                    "\"{s}\" is not a host name (labels of letters, digits and '-', \
                     separated by dots)"
                ),
                SlotKind::JobId => {
                    format!("\"{s}\" is not a job id (e.g. 0190b4a2-7c1e-7d3a-9f00-1b2c3d4e5f60)")
                }
                _ => format!("\"{s}\" is not {self}"),
            },
        }
    }
}

fn check_name(s: &str) -> Result<(), Reject> {
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !(first_ok && rest_ok) {
        Err(Reject::Invalid)
    } else if s.len() > MAX_NAME_LEN {
        Err(Reject::TooLong)
    } else {
        Ok(())
    }
}

fn check_hostname(s: &str) -> Result<(), Reject> {
    let labels_ok = s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    });
    if !labels_ok {
        Err(Reject::Invalid)
    } else if s.len() > MAX_HOSTNAME_LEN {
        Err(Reject::TooLong)
    } else {
        Ok(())
    }
}

fn check_cidr(s: &str) -> Result<(IpAddr, u8), Reject> {
    let (addr, prefix) = s.split_once('/').ok_or(Reject::Invalid)?;
    let ip: IpAddr = addr.parse().map_err(|_| Reject::Invalid)?;
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reject::Invalid);
    }
    let bits: u8 = prefix.parse().map_err(|_| Reject::Invalid)?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if bits > max {
        return Err(Reject::Invalid);
    }
    Ok((ip, bits))
}

fn check_int(s: &str, min: Option<i64>, max: Option<i64>) -> Result<i64, Reject> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reject::Invalid);
    }
    let n: i64 = s.parse().map_err(|_| Reject::OutOfRange)?;
    if min.is_some_and(|lo| n < lo) || max.is_some_and(|hi| n > hi) {
        return Err(Reject::OutOfRange);
    }
    Ok(n)
}

fn check_uuid(s: &str) -> Result<(), Reject> {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err(Reject::Invalid)
    }
}

/// Parses `30s`, `5m`, `1h30m`, `500ms`... into milliseconds. Units must appear largest first,
/// each at most once; a bare number is refused with [`Reject::NoUnit`].
fn parse_millis(s: &str) -> Result<u64, Reject> {
    let b = s.as_bytes();
    if !b.is_empty() && b.iter().all(|c| c.is_ascii_digit()) {
        return Err(Reject::NoUnit);
    }
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_unit = usize::MAX; // index into UNITS of the previous component
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(Reject::Invalid);
        }
        let number: u64 = s[start..i].parse().map_err(|_| Reject::OutOfRange)?;
        let unit_start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[unit_start..i];
        let idx = UNITS
            .iter()
            .position(|(u, _)| u.eq_ignore_ascii_case(unit))
            .ok_or(Reject::Invalid)?;
        if last_unit != usize::MAX && idx <= last_unit {
            return Err(Reject::Invalid);
        }
        last_unit = idx;
        let part = number.checked_mul(UNITS[idx].1).ok_or(Reject::OutOfRange)?;
        total = total.checked_add(part).ok_or(Reject::OutOfRange)?;
    }
    Ok(total)
}

/// A text that is not a value of its kind. Its `Display` is the sentence shown to users,
/// e.g. `"30" is not a duration: use a unit, e.g. 30s`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(pub String);

/// Parses a duration such as `30s`, `5m`, `1h30m` or `500ms`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, BadValue> {
    let text = text.trim();
    parse_millis(text)
        .map(std::time::Duration::from_millis)
        .map_err(|r| BadValue(SlotKind::Duration.problem(text, r)))
}

/// The canonical text of a duration, as the `duration` slot type writes it: largest units
/// first, whole milliseconds (`1h30m`, `500ms`, `0s`).
pub fn format_duration(d: std::time::Duration) -> String {
    DurationValue::from(d).to_string()
}

/// Whether some single token could be a value of both kinds. Must never answer `false` when
/// a common value exists (the ambiguity check relies on it); `true` may be conservative.
pub(crate) fn kinds_overlap(a: &SlotKind, b: &SlotKind) -> bool {
    use SlotKind::*;
    match (a, b) {
        (Word | Text | Secret, _) | (_, Word | Text | Secret) => true,
        (Choice(alts), other) | (other, Choice(alts)) => alts.iter().any(|v| other.accepts(v)),
        (Int { min: a0, max: a1 }, Int { min: b0, max: b1 }) => {
            let lo = a0.unwrap_or(i64::MIN).max(b0.unwrap_or(i64::MIN));
            let hi = a1.unwrap_or(i64::MAX).min(b1.unwrap_or(i64::MAX));
            lo <= hi
        }
        // Non-negative whole numbers are valid names and host names ("0", "42").
        (Int { max, .. }, Name | Hostname) | (Name | Hostname, Int { max, .. }) => {
            max.is_none_or(|hi| hi >= 0)
        }
        (x, y) if x == y => true,
        // Dotted IPv4 addresses, durations like "5m" and job ids are names and host names.
        (Name | Hostname, Name | Hostname | Ip | Duration | JobId)
        | (Ip | Duration | JobId, Name | Hostname) => true,
        _ => false,
    }
}

/// A token accepted by both kinds, for error messages; `None` when no sample fits.
pub(crate) fn witness(a: &SlotKind, b: &SlotKind) -> Option<String> {
    let mut pool: Vec<String> = Vec::new();
    for kind in [a, b] {
        match kind {
            SlotKind::Choice(alts) => pool.extend(alts.iter().cloned()),
            SlotKind::Int { min, max } => {
                pool.extend(min.iter().chain(max.iter()).map(|n| n.to_string()))
            }
            _ => {}
        }
    }
    const SAMPLES: [&str; 9] = [
        "x",
        "web1",
        "10.0.0.1",
        "::1",
        "10.0.0.0/8",
        "5m",
        "0",
        "1",
        "0190b4a2-7c1e-7d3a-9f00-1b2c3d4e5f60",
    ];
    pool.extend(SAMPLES.iter().map(|s| s.to_string()));
    pool.into_iter().find(|s| a.accepts(s) && b.accepts(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: &SlotKind, s: &str) -> Value {
        match kind.parse(s) {
            Ok(v) => v,
            Err(e) => panic!("{s:?} should be accepted as {kind}: {e}"),
        }
    }

    fn bad(kind: &SlotKind, s: &str) -> String {
        match kind.parse(s) {
            Ok(v) => panic!("{s:?} should be refused as {kind}, got {v:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn word_accepts_any_single_token() {
        assert_eq!(ok(&SlotKind::Word, "Héllo!"), Value::Word("Héllo!".into()));
        let secret = ok(&SlotKind::Secret, "ghp_s3cr3t");
        assert_eq!(secret.to_string(), MASK, "a secret never displays");
        assert_eq!(secret.reveal(), "ghp_s3cr3t");
        assert_eq!(secret.masked().reveal(), MASK);
        let json = serde_json::to_string(&secret.masked()).unwrap();
        assert!(!json.contains("s3cr3t"), "{json}");
        let refused = SlotKind::Secret.parse("two words").unwrap_err().to_string();
        assert!(
            !refused.contains("two"),
            "a refused secret is not quoted: {refused}"
        );
        bad(&SlotKind::Word, "two words");
        bad(&SlotKind::Word, "");
    }

    #[test]
    fn name_rules() {
        assert_eq!(
            ok(&SlotKind::Name, "Web-1_a.b"),
            Value::Name("Web-1_a.b".into())
        );
        ok(&SlotKind::Name, "9lives");
        bad(&SlotKind::Name, "-web");
        bad(&SlotKind::Name, "_web");
        bad(&SlotKind::Name, "we/b");
        ok(&SlotKind::Name, &"a".repeat(64));
        let e = bad(&SlotKind::Name, &"a".repeat(65));
        assert!(e.contains("at most 64"), "{e}");
    }

    #[test]
    fn hostname_rules() {
        ok(&SlotKind::Hostname, "localhost");
        assert_eq!(
            ok(&SlotKind::Hostname, "Web-1.Example.com"),
            Value::Hostname("Web-1.Example.com".into())
        );
        let e = bad(&SlotKind::Hostname, "my_host");
        assert!(e.starts_with("\"my_host\" is not a host name"), "{e}");
        bad(&SlotKind::Hostname, "-web.example.com");
        bad(&SlotKind::Hostname, "web-.example.com");
        bad(&SlotKind::Hostname, "web..example");
        bad(&SlotKind::Hostname, "example.com.");
        bad(&SlotKind::Hostname, &"a".repeat(64));
        let long = vec!["a".repeat(63); 4].join("."); // 255 characters
        let e = bad(&SlotKind::Hostname, &long);
        assert!(e.contains("at most 253"), "{e}");
    }

    #[test]
    fn ip_v4_and_v6() {
        assert_eq!(
            ok(&SlotKind::Ip, "10.0.0.1"),
            Value::Ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(ok(&SlotKind::Ip, "2001:DB8::1").to_string(), "2001:db8::1");
        ok(&SlotKind::Ip, "::1");
        assert_eq!(
            bad(&SlotKind::Ip, "999.1.1.1"),
            "\"999.1.1.1\" is not an IP address"
        );
        bad(&SlotKind::Ip, "10.0.0");
        bad(&SlotKind::Ip, "10.0.0.1/8");
    }

    #[test]
    fn cidr_rules() {
        assert_eq!(
            ok(&SlotKind::Cidr, "10.0.0.0/8"),
            Value::Cidr("10.0.0.0/8".into())
        );
        assert_eq!(
            ok(&SlotKind::Cidr, "2001:DB8::/32"),
            Value::Cidr("2001:db8::/32".into())
        );
        ok(&SlotKind::Cidr, "10.1.2.3/32");
        ok(&SlotKind::Cidr, "::/0");
        ok(&SlotKind::Cidr, "::/128");
        let e = bad(&SlotKind::Cidr, "10.0.0.0/33");
        assert_eq!(e, "\"10.0.0.0/33\" is not a CIDR block");
        bad(&SlotKind::Cidr, "::/129");
        bad(&SlotKind::Cidr, "10.0.0.0");
        bad(&SlotKind::Cidr, "10.0.0.0/");
        bad(&SlotKind::Cidr, "10.0.0.0/+8");
        bad(&SlotKind::Cidr, "999.0.0.0/8");
    }

    #[test]
    fn int_and_bounds() {
        let any = SlotKind::Int {
            min: None,
            max: None,
        };
        assert_eq!(ok(&any, "-42"), Value::Int(-42));
        assert_eq!(ok(&any, "+7"), Value::Int(7));
        bad(&any, "1.5");
        bad(&any, "1_000");
        bad(&any, "-");
        let e = bad(&any, "99999999999999999999");
        assert!(e.contains("out of range"), "{e}");
        let bounded = SlotKind::Int {
            min: Some(1),
            max: Some(100),
        };
        ok(&bounded, "1");
        ok(&bounded, "100");
        assert_eq!(
            bad(&bounded, "500"),
            "\"500\" is out of range: expected a whole number from 1 to 100"
        );
        assert_eq!(
            bad(&bounded, "ten"),
            "\"ten\" is not a whole number from 1 to 100"
        );
        let lower = SlotKind::Int {
            min: Some(1),
            max: None,
        };
        assert_eq!(lower.to_string(), "a whole number of at least 1");
        assert_eq!(lower.type_name(), "int(1..)");
        let upper = SlotKind::Int {
            min: None,
            max: Some(10),
        };
        assert_eq!(upper.to_string(), "a whole number of at most 10");
        bad(&upper, "11");
    }

    #[test]
    fn durations() {
        let d = SlotKind::Duration;
        let ms = |s: &str| ok(&d, s).as_duration().unwrap().as_millis();
        assert_eq!(ms("30s"), 30_000);
        assert_eq!(ms("5m"), 300_000);
        assert_eq!(ms("2h"), 7_200_000);
        assert_eq!(ms("1d"), 86_400_000);
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("1M30S"), 90_000);
        assert_eq!(ok(&d, "90m").to_string(), "1h30m");
        assert_eq!(ok(&d, "1h30m").to_string(), "1h30m");
        assert_eq!(ok(&d, "1500ms").to_string(), "1s500ms");
        assert_eq!(ok(&d, "0s").to_string(), "0s");
        assert_eq!(
            bad(&d, "30"),
            "\"30\" is not a duration: use a unit, e.g. 30s"
        );
        bad(&d, "30m1h");
        bad(&d, "5m5m");
        bad(&d, "5x");
        bad(&d, "m");
        bad(&d, "1.5h");
        let e = bad(&d, "99999999999999999999d");
        assert!(e.contains("too long"), "{e}");
        assert_eq!(
            parse_duration(" 1h30m "),
            Ok(std::time::Duration::from_secs(5400))
        );
        assert!(parse_duration("30")
            .unwrap_err()
            .0
            .contains("use a unit, e.g. 30s"));
        assert_eq!(
            format_duration(std::time::Duration::from_secs(5400)),
            "1h30m"
        );
        assert_eq!(
            format_duration(std::time::Duration::from_micros(1500)),
            "1ms"
        );
        assert_eq!(format_duration(std::time::Duration::ZERO), "0s");
        assert_eq!(
            format_duration(std::time::Duration::from_secs(90_061)),
            "1d1h1m1s"
        );
    }

    #[test]
    fn choice_is_case_insensitive_and_canonical() {
        let c = SlotKind::Choice(vec!["prod".into(), "Staging".into()]);
        assert_eq!(ok(&c, "PROD"), Value::Choice("prod".into()));
        assert_eq!(ok(&c, "staging"), Value::Choice("Staging".into()));
        assert_eq!(bad(&c, "dev"), "\"dev\" is not one of prod, Staging");
        assert_eq!(c.type_name(), "prod|Staging");
    }

    #[test]
    fn jobid_normalized() {
        let v = ok(&SlotKind::JobId, "0190B4A2-7C1E-7D3A-9F00-1B2C3D4E5F60");
        assert_eq!(
            v,
            Value::JobId("0190b4a2-7c1e-7d3a-9f00-1b2c3d4e5f60".into())
        );
        bad(&SlotKind::JobId, "0190b4a27c1e7d3a9f001b2c3d4e5f60");
        bad(&SlotKind::JobId, "0190b4a2-7c1e-7d3a-9f00-1b2c3d4e5f6g");
    }

    #[test]
    fn text_keeps_inner_spacing() {
        assert_eq!(
            ok(&SlotKind::Text, " hello   world "),
            Value::Text("hello   world".into())
        );
        assert_eq!(bad(&SlotKind::Text, "   "), "missing some text");
    }

    #[test]
    fn value_accessors_and_display() {
        assert_eq!(Value::Int(42).to_string(), "42");
        assert_eq!(Value::Int(42).as_int(), Some(42));
        assert_eq!(Value::Word("x".into()).as_str(), Some("x"));
        assert_eq!(Value::Int(1).as_str(), None);
        assert_eq!(Value::Duration(DurationValue(300_000)).to_string(), "5m");
        assert_eq!(Value::Cidr("10.0.0.0/8".into()).kind(), SlotKind::Cidr);
        assert!(matches!(Value::Int(1).kind(), SlotKind::Int { .. }));
    }

    #[test]
    fn serde_format() {
        let v = Value::Ip("10.0.0.1".parse().unwrap());
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"type":"ip","value":"10.0.0.1"}"#
        );
        let d = Value::Duration(DurationValue(90_000));
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"type":"duration","value":90000}"#
        );
        let j = Value::JobId("x".into());
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            r#"{"type":"job_id","value":"x"}"#
        );
        let back: Value = serde_json::from_str(r#"{"type":"duration","value":90000}"#).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn overlap_relation() {
        use SlotKind::*;
        let int = |min, max| Int { min, max };
        assert!(kinds_overlap(&Word, &Hostname));
        assert!(kinds_overlap(&Name, &Hostname));
        assert!(kinds_overlap(&Hostname, &Ip));
        assert!(!kinds_overlap(
            &Ip,
            &Int {
                min: None,
                max: None
            }
        ));
        assert!(!kinds_overlap(&Ip, &Cidr));
        assert!(!kinds_overlap(&Duration, &int(None, None)));
        assert!(kinds_overlap(&int(Some(1), Some(5)), &int(Some(5), None)));
        assert!(!kinds_overlap(&int(Some(1), Some(5)), &int(Some(6), None)));
        assert!(!kinds_overlap(&Name, &int(None, Some(-1))));
        let env = Choice(vec!["prod".into(), "staging".into()]);
        assert!(kinds_overlap(&env, &Name));
        assert!(!kinds_overlap(&env, &Ip));
        assert!(!kinds_overlap(&env, &Choice(vec!["dev".into()])));
        assert_eq!(witness(&Word, &Hostname).as_deref(), Some("x"));
        assert_eq!(witness(&env, &Name).as_deref(), Some("prod"));
        assert_eq!(witness(&Ip, &Cidr), None);
    }

    /// Every pair that `kinds_overlap` calls disjoint really has no common sample value.
    #[test]
    fn overlap_is_never_wrongly_disjoint() {
        use SlotKind::*;
        let kinds = [
            Word,
            Name,
            Hostname,
            Ip,
            Cidr,
            Int {
                min: None,
                max: None,
            },
            Int {
                min: Some(1),
                max: Some(9),
            },
            Duration,
            Choice(vec!["a".into(), "10.0.0.1".into()]),
            JobId,
            Text,
        ];
        let samples = [
            "x",
            "web1",
            "10.0.0.1",
            "::1",
            "10.0.0.0/8",
            "5m",
            "0",
            "1",
            "-1",
            "1d",
            "a",
            "0190b4a2-7c1e-7d3a-9f00-1b2c3d4e5f60",
            "abc-def",
            "1.2",
            "500ms",
            "ff",
        ];
        for a in &kinds {
            for b in &kinds {
                if !kinds_overlap(a, b) {
                    for s in samples {
                        assert!(
                            !(a.accepts(s) && b.accepts(s)),
                            "{a:?} and {b:?} both accept {s:?}"
                        );
                    }
                }
            }
        }
    }
}
