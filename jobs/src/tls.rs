//! TLS shared by every connection of an Octobox process: the one crypto provider, and
//! the reading of the PEM files (`ca_file`, client certificate and key) that `[broker]`
//! and `[store]` name.
//!
//! Several TLS users can share a process (the AMQP connection with `amqps://`, Redis with
//! `rediss://`, Slack's client and WebSockets, the shippers' HTTP client). The workspace
//! builds rustls with more than one provider, so rustls cannot pick one by itself and
//! would panic at the first TLS connection: every binary calls [`install_provider`] first
//! thing in `main`.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Installs rustls' ring provider as the process default. Harmless when already done.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The most a TLS file (a CA bundle, a client certificate or key) may hold: a PEM bundle
/// of many certificates is far smaller; anything larger is not what the key names.
pub const TLS_FILE_MAX: u64 = 1024 * 1024;

/// A TLS file that could not be used. `what` names it for the reader, e.g. "the store's
/// CA file".
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("cannot read {what} {}: {source}", path.display())]
    Unreadable {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{what} {} is larger than {} KiB: not a PEM certificate or key",
        path.display(),
        TLS_FILE_MAX / 1024
    )]
    TooLarge { what: String, path: PathBuf },
}

/// Reads a PEM file of at most [`TLS_FILE_MAX`] bytes; reading stops there, so a file
/// named by mistake (a disk image, `/dev/zero`) costs no more than that.
pub fn read_tls_file(path: &Path, what: &str) -> Result<Vec<u8>, TlsFileError> {
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(TLS_FILE_MAX + 1).read_to_end(&mut pem))
        .map_err(|source| TlsFileError::Unreadable {
            what: what.to_string(),
            path: path.to_path_buf(),
            source,
        })?;
    if pem.len() as u64 > TLS_FILE_MAX {
        return Err(TlsFileError::TooLarge {
            what: what.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_file_past_its_limit_is_refused_with_the_limit_and_a_missing_one_is_named() {
        let dir = std::env::temp_dir().join(format!("octobox-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let huge = dir.join("ca.pem");
        std::fs::write(&huge, vec![b'A'; (TLS_FILE_MAX + 1) as usize]).unwrap();
        let e = read_tls_file(&huge, "the store's CA file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is larger than 1024 KiB"), "{e}");
        let just_fits = dir.join("bundle.pem");
        std::fs::write(&just_fits, vec![b'A'; TLS_FILE_MAX as usize]).unwrap();
        assert_eq!(
            read_tls_file(&just_fits, "x").unwrap().len() as u64,
            TLS_FILE_MAX
        );
        let missing = dir.join("missing.pem");
        let e = read_tls_file(&missing, "the broker's client key")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read the broker's client key "), "{e}");
        assert!(e.contains("missing.pem"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
