//! The keys of the SSH server: `AuthorizedKeys` (who may log in, and as whom) and the
//! server's own host key.
//!
//! The authorized_keys file is OpenSSH's format. Each key's identity is `ssh:<name>`, the
//! name coming from the `identity="<name>"` option the file's owner writes before it. The
//! key's comment never names anyone: whoever made the key chose it (`ssh-keygen -C admin`).
//! Options this server cannot honour are refused at load: a `from=` or `command=`
//! silently ignored would let in someone the file meant to keep out.

use std::io::Write;
use std::path::Path;

use config::{ConfigError, ConfigErrors};
use russh::keys::ssh_key::{self, LineEnding, PublicKey};
use russh::keys::{Algorithm, PrivateKey};

/// One key that may log in.
#[derive(Debug, Clone)]
pub struct AuthorizedKey {
    pub key: ssh_key::public::KeyData,
    /// The user part of the identity `ssh:<name>`.
    pub name: String,
    /// `no-pty` (or `restrict`): the key gets no terminal, only line-by-line sessions.
    pub no_pty: bool,
}

/// The keys read from an authorized_keys file.
#[derive(Debug, Clone, Default)]
pub struct AuthorizedKeys(Vec<AuthorizedKey>);

/// The options this server honours. The forwarding ones hold by construction: the server
/// offers no forwarding of any kind.
const SUPPORTED: &str = "identity=\"<name>\", no-pty, restrict, no-port-forwarding, \
                         no-agent-forwarding, no-X11-forwarding, no-user-rc";

impl AuthorizedKeys {
    /// Reads and checks the file; every problem is reported, each with its line.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: file.clone(),
                line: None,
                key: String::new(),
                message: format!("cannot read the SSH authorized keys: {e}"),
            }])
        })?;
        Self::parse(&file, &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigErrors> {
        let mut keys: Vec<(usize, AuthorizedKey)> = Vec::new();
        let mut errors = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok(key) => {
                    if let Some((first, _)) = keys.iter().find(|(_, k)| k.key == key.key) {
                        errors.push((
                            line_no,
                            String::new(),
                            format!("this key is already listed on line {first}: keep one"),
                        ));
                    } else {
                        keys.push((line_no, key));
                    }
                }
                Err((option, message)) => errors.push((line_no, option, message)),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(
                errors
                    .into_iter()
                    .map(|(line, key, message)| ConfigError {
                        file: file.to_string(),
                        line: Some(line),
                        key,
                        message,
                    })
                    .collect(),
            ));
        }
        Ok(AuthorizedKeys(keys.into_iter().map(|(_, k)| k).collect()))
    }

    /// The entry for a key that proved its possession, if it may log in.
    pub fn find(&self, key: &PublicKey) -> Option<&AuthorizedKey> {
        self.0.iter().find(|k| &k.key == key.key_data())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One line: `[options] type base64 [comment]`. An error is (option or "", message).
fn parse_line(line: &str) -> Result<AuthorizedKey, (String, String)> {
    let (options, rest) = if starts_with_key_type(line) {
        ("", line)
    } else {
        split_options(line)
    };
    let mut identity = None;
    let mut no_pty = false;
    for option in split_commas(options) {
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (option, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("identity", Some(v)) => {
                identity = Some(v.trim_matches('"').to_string());
            }
            ("no-pty" | "restrict", None) => no_pty = true,
            (
                "no-port-forwarding" | "no-agent-forwarding" | "no-x11-forwarding" | "no-user-rc",
                None,
            ) => {}
            _ => {
                return Err((
                    name.to_string(),
                    format!(
                        "option \"{name}\" is not supported by Octobox's SSH server, so this \
                         key is refused rather than let in without it (supported: {SUPPORTED})"
                    ),
                ))
            }
        }
    }
    let mut words = rest.split_whitespace();
    let (Some(kind), Some(data)) = (words.next(), words.next()) else {
        return Err((
            String::new(),
            "expected a key: [options] <type> <base64> [comment]".to_string(),
        ));
    };
    let key = PublicKey::from_openssh(&format!("{kind} {data}"))
        .map_err(|e| (String::new(), format!("not a valid {kind} public key: {e}")))?;
    let name = match identity {
        Some(n) if is_name(&n) => n,
        Some(n) => {
            return Err((
                "identity".to_string(),
                format!("\"{n}\" cannot name a user: use letters, digits and - _ . @"),
            ))
        }
        None => {
            return Err((
                String::new(),
                "the key has no identity: write identity=\"<name>\" before it (its comment \
                 was chosen by whoever made the key, so it names no one)"
                    .to_string(),
            ))
        }
    };
    Ok(AuthorizedKey {
        key: key.key_data().clone(),
        name,
        no_pty,
    })
}

fn starts_with_key_type(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    first.starts_with("ssh-")
        || first.starts_with("ecdsa-sha2-")
        || first.starts_with("sk-ssh-")
        || first.starts_with("sk-ecdsa-")
}

/// Splits the options from the key, at the first space outside double quotes.
fn split_options(line: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&line[..i], line[i..].trim_start()),
            _ => {}
        }
    }
    (line, "")
}

fn split_commas(options: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (i, c) in options.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&options[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < options.len() {
        out.push(&options[start..]);
    }
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// The server's host key: read from `path`, or created there (Ed25519, mode 0600) on first
/// start and kept, so clients see the same host on every start.
pub fn host_key(path: &Path) -> anyhow::Result<PrivateKey> {
    use anyhow::Context;
    if path.exists() {
        return russh::keys::load_secret_key(path, None)
            .with_context(|| format!("cannot read the SSH host key {}", path.display()));
    }
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .context("cannot generate an SSH host key")?;
    let text = key
        .to_openssh(LineEnding::LF)
        .context("cannot encode the SSH host key")?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {} for the SSH host key", dir.display()))?;
    }
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create the SSH host key {}", path.display()))?
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write the SSH host key {}", path.display()))?;
    tracing::info!(path = %path.display(), "SSH host key created");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIMM6G6wUHHr5YwGK2B7sghPE1M+6xuMp+BE52pxkYt72";

    #[test]
    fn names_come_from_the_identity_option_never_the_comment() {
        let keys = AuthorizedKeys::parse(
            "keys",
            &format!("# ops\n\nidentity=\"alice\" ssh-ed25519 {ED} admin\n"),
        )
        .unwrap();
        assert_eq!(keys.0[0].name, "alice");
        assert!(!keys.0[0].no_pty);
        let keys = AuthorizedKeys::parse(
            "keys",
            &format!("identity=\"bob\",no-pty ssh-ed25519 {ED} some laptop\n"),
        )
        .unwrap();
        assert_eq!(keys.0[0].name, "bob");
        assert!(keys.0[0].no_pty);
    }

    #[test]
    fn options_that_cannot_be_honoured_are_refused_with_their_line() {
        let e = AuthorizedKeys::parse(
            "/etc/keys",
            &format!(
                "identity=\"a\" ssh-ed25519 {ED}\nfrom=\"10.0.0.0/8\",no-pty ssh-ed25519 {ED} b\n"
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/etc/keys:2: from: option \"from\" is not supported"),
            "{e}"
        );
    }

    #[test]
    fn the_host_key_is_created_private_once_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("octobox-host-key-{}", std::process::id()));
        let path = dir.join("keys/host_key");
        let made = host_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let read = host_key(&path).unwrap();
        assert_eq!(made.public_key(), read.public_key());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_key_without_an_identity_or_garbage_is_an_error() {
        let e = AuthorizedKeys::parse(
            "k",
            &format!(
                "ssh-ed25519 {ED} admin\nidentity=\"x\" ssh-ed25519 AAAA x\n\
                 identity=\"a b\" ssh-ed25519 {ED}\n"
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("k:1: the key has no identity"), "{e}");
        assert!(e.contains("k:2: not a valid ssh-ed25519 public key"), "{e}");
        assert!(
            e.contains("k:3: identity: \"a b\" cannot name a user"),
            "{e}"
        );
    }
}
