//! The one TLS crypto provider of an Octobox process, and the one way a TLS file is read.
//!
//! Several TLS users can share a process (the AMQP connection with `amqps://`, Slack's
//! client and WebSockets, the shippers' HTTP client, the Docker engine over TCP). The
//! workspace builds rustls with more than one provider, so rustls cannot pick one by itself
//! and would panic at the first TLS connection: every binary calls [`install_provider`]
//! first thing in `main`.
//!
//! A CA bundle, a client certificate or a key named in configuration or the environment is
//! read with [`read_tls_file`]: at most [`TLS_FILE_MAX`] bytes, so a path that names
//! something else (a device, a huge file) is refused rather than loaded.

use std::io::Read;
use std::path::Path;

/// Installs rustls' ring provider as the process default. Harmless when already done.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The most a TLS file (a CA file, a client certificate or key) may hold: a PEM bundle of
/// many certificates is far smaller; anything larger is not what the setting names.
pub const TLS_FILE_MAX: u64 = 1024 * 1024;

/// Why a TLS file was not read. Its `Display` completes "<what> <path> …".
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("cannot be read: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error(
        "is larger than {} KiB: not a PEM certificate or key",
        TLS_FILE_MAX / 1024
    )]
    TooLarge,
}

/// The bytes of the TLS file at `path`, if it can be read and holds at most
/// [`TLS_FILE_MAX`] bytes.
pub fn read_tls_file(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(TLS_FILE_MAX + 1).read_to_end(&mut pem))
        .map_err(TlsFileError::Unreadable)?;
    if pem.len() as u64 > TLS_FILE_MAX {
        return Err(TlsFileError::TooLarge);
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_file_past_its_limit_is_refused_and_one_at_it_is_read() {
        let dir = std::env::temp_dir().join(format!("octobox-tls-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let huge = dir.join("huge.pem");
        std::fs::write(&huge, vec![b'A'; (TLS_FILE_MAX + 1) as usize]).unwrap();
        let at_limit = dir.join("at-limit.pem");
        std::fs::write(&at_limit, vec![b'A'; TLS_FILE_MAX as usize]).unwrap();
        let refused = read_tls_file(&huge).unwrap_err().to_string();
        let read = read_tls_file(&at_limit).map(|b| b.len());
        let missing = read_tls_file(&dir.join("missing.pem"))
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            refused,
            "is larger than 1024 KiB: not a PEM certificate or key"
        );
        assert_eq!(read.unwrap(), TLS_FILE_MAX as usize);
        assert!(missing.starts_with("cannot be read: "), "{missing}");
    }
}
