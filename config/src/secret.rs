//! `Secret`: a configuration value that must never reach a log.

use std::fmt;

/// Holds a password, token or URL with credentials. `Debug` and `Display` print only
/// `***`; the value is reached through [`Secret::expose`], so every use is visible in
/// the code.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// For URLs: scheme, host and port only, which are safe to log
    /// (`amqp://guest:pw@mq:5672/%2f` gives `amqp://mq:5672`).
    ///
    /// People write passwords unencoded, with `/`, `?`, `#` or `@` in them, so the host is
    /// read after the *last* `@` of the whole URL, and only then cut at the path: whatever
    /// the password holds is before that `@`. A URL without `@` has no credentials.
    pub fn redacted_url(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return "***".to_string();
        };
        let after_credentials = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host = after_credentials
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("");
        format!("{scheme}://{host}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Expands `${NAME}` references from the environment. `$$` is a literal `$`.
/// Returns the name of the first variable that is not set.
pub(crate) fn expand_env(
    raw: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(ExpandError::Unclosed)?;
            let name = &body[..end];
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ExpandError::BadName(name.to_string()));
            }
            out.push_str(&lookup(name).ok_or_else(|| ExpandError::Missing(name.to_string()))?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExpandError {
    Missing(String),
    BadName(String),
    Unclosed,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Missing(name) => write!(
                f,
                "environment variable {name} is not set (referenced as ${{{name}}})"
            ),
            ExpandError::BadName(name) => write!(
                f,
                "\"${{{name}}}\" is not a variable reference: names are letters, digits and _"
            ),
            ExpandError::Unclosed => write!(f, "a \"${{\" has no closing \"}}\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PW").then(|| "s3cr3t".to_string())
    }

    #[test]
    fn references_expand_and_missing_ones_are_named() {
        assert_eq!(
            expand_env("amqp://u:${PW}@h", env).unwrap(),
            "amqp://u:s3cr3t@h"
        );
        assert_eq!(expand_env("cost $$5 $x", env).unwrap(), "cost $5 $x");
        assert_eq!(
            expand_env("${NOPE}", env),
            Err(ExpandError::Missing("NOPE".into()))
        );
        assert_eq!(
            expand_env("${a b}", env),
            Err(ExpandError::BadName("a b".into()))
        );
        assert_eq!(expand_env("${PW", env), Err(ExpandError::Unclosed));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("amqp://guest:hunter2@mq.internal:5672/%2f");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.redacted_url(), "amqp://mq.internal:5672");
        assert_eq!(Secret::new("no url").redacted_url(), "***");
    }

    #[test]
    fn a_password_with_url_delimiters_is_never_part_of_the_redacted_url() {
        for password in ["pa/ss", "pa?ss", "pa#ss", "pa@ss", "12/34", "p@/?#@q"] {
            let url = Secret::new(format!("amqp://guest:{password}@mq.internal:5672/%2f"));
            let shown = url.redacted_url();
            assert_eq!(shown, "amqp://mq.internal:5672", "for {password:?}");
        }
        assert_eq!(
            Secret::new("rediss://redis.internal:6380/0").redacted_url(),
            "rediss://redis.internal:6380"
        );
    }
}
