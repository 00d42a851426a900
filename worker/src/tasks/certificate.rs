//! Reading a TLS server's certificate, for `http check` and `tls expiry`: one TLS client
//! (rustls, ring) that finishes the handshake whatever the certificate, so that an
//! expired or unknown one can still be described, while noting whether this worker
//! trusts it and why not; and the facts people ask of a certificate (subject, issuer,
//! names, validity, days to expiry), read with x509-parser.
//!
//! Trust is the system's roots plus `[tasks] ca_file`. The handshake's signatures are
//! always checked: only the chain's verdict is noted instead of ending the connection.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::clean;

/// A certificate with less than this many days left is said to expire soon.
pub const SOON_DAYS: i64 = 14;

/// The most certificates of a chain that are described.
const CHAIN_SHOWN: usize = 5;

/// The most names of a certificate that are listed.
const NAMES_SHOWN: usize = 10;

/// The TLS client of the day-one tasks and what it trusts.
#[derive(Clone)]
pub struct TlsClient {
    provider: Arc<CryptoProvider>,
    extra_roots: Arc<Vec<CertificateDer<'static>>>,
    /// Built on first use: reading the system's roots takes a moment.
    verifier: Arc<OnceLock<Result<Arc<WebPkiServerVerifier>, String>>>,
}

/// Why `[tasks] ca_file` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error(transparent)]
    Unreadable(#[from] jobs::tls::TlsFileError),
    #[error("{path}: {reason}")]
    NoCertificate { path: String, reason: String },
}

impl TlsClient {
    /// Trusting the system's roots and the certificates of `ca_file`, if any.
    pub fn new(ca_file: Option<&Path>) -> Result<Self, CaFileError> {
        let mut extra = Vec::new();
        if let Some(path) = ca_file {
            let pem = jobs::tls::read_tls_file(path, "[tasks] ca_file")?;
            let no_certificate = |reason: String| CaFileError::NoCertificate {
                path: path.display().to_string(),
                reason,
            };
            for cert in CertificateDer::pem_slice_iter(&pem) {
                extra.push(cert.map_err(|e| no_certificate(format!("not PEM certificates: {e}")))?);
            }
            if extra.is_empty() {
                return Err(no_certificate("holds no PEM certificate".into()));
            }
        }
        let client = Self::with_roots(extra);
        // The system's roots are read now, at start, not during a job's first handshake.
        let _ = client.verifier();
        Ok(client)
    }

    /// Reads the roots, on a blocking thread, if they were not read yet: so that a
    /// handshake timed after it times the handshake alone.
    pub async fn prepare(&self) {
        if self.verifier.get().is_none() {
            let client = self.clone();
            let _ = tokio::task::spawn_blocking(move || client.verifier().is_ok()).await;
        }
    }

    /// Trusting the system's roots and `extra`.
    pub fn with_roots(extra: Vec<CertificateDer<'static>>) -> Self {
        TlsClient {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            extra_roots: Arc::new(extra),
            verifier: Arc::new(OnceLock::new()),
        }
    }

    fn verifier(&self) -> Result<Arc<WebPkiServerVerifier>, String> {
        self.verifier
            .get_or_init(|| {
                let mut roots = RootCertStore::empty();
                let system = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(system.certs);
                roots.add_parsable_certificates(self.extra_roots.iter().cloned());
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .build()
                    .map_err(|e| format!("this worker trusts no certificate authority ({e})"))
            })
            .clone()
    }

    /// A TLS handshake over `io` with `name`, offering `alpn`; the certificate is
    /// judged, never a reason to stop.
    pub async fn handshake<IO>(
        &self,
        io: IO,
        name: ServerName<'static>,
        alpn: &[&[u8]],
    ) -> Result<(TlsStream<IO>, Presented), String>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let noting = Arc::new(Noting {
            inner: self.verifier(),
            provider: self.provider.clone(),
            verdict: Mutex::new(None),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS cannot be set up: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(noting.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let shown = match &name {
            ServerName::DnsName(n) => n.as_ref().to_string(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            _ => "the server".to_string(),
        };
        let stream = TlsConnector::from(Arc::new(config))
            .connect(name, io)
            .await
            .map_err(|e| format!("the TLS handshake with {shown} failed: {}", tls_words(&e)))?;
        let chain = stream
            .get_ref()
            .1
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|der| Certificate::read(der))
            .collect();
        let verdict = noting
            .verdict
            .lock()
            .map(|v| v.clone())
            .unwrap_or(None)
            .unwrap_or_else(|| Err("the server presented no certificate".into()));
        Ok((stream, Presented { chain, verdict }))
    }
}

/// What a server presented: its chain, leaf first, and whether this worker trusts it.
#[derive(Debug, Clone)]
pub struct Presented {
    pub chain: Vec<Result<Certificate, String>>,
    /// `Err` says why the certificate is not trusted.
    pub verdict: Result<(), String>,
}

impl Presented {
    /// The chain described, one certificate a line, and the verdict; `now` for the
    /// days left.
    pub fn lines(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, cert) in self.chain.iter().take(CHAIN_SHOWN).enumerate() {
            let role = if i == 0 { "certificate" } else { "issued by" };
            match cert {
                Ok(c) if i == 0 => {
                    lines.push(format!("{role}: {}", c.subject));
                    if !c.names.is_empty() {
                        lines.push(format!("  names: {}", c.names_shown()));
                    }
                    lines.push(format!("  issuer: {}", c.issuer));
                    lines.push(format!(
                        "  valid {} to {}: {}",
                        day(c.not_before),
                        day(c.not_after),
                        c.expiry_words(now)
                    ));
                }
                Ok(c) => lines.push(format!(
                    "{role}: {}, valid to {}: {}",
                    c.subject,
                    day(c.not_after),
                    c.expiry_words(now)
                )),
                Err(why) => lines.push(format!("{role}: unreadable ({why})")),
            }
        }
        if self.chain.len() > CHAIN_SHOWN {
            lines.push(format!(
                "and {} more certificates",
                self.chain.len() - CHAIN_SHOWN
            ));
        }
        lines.push(match &self.verdict {
            Ok(()) => "trusted by this worker".to_string(),
            Err(why) => format!("NOT trusted by this worker: {why}"),
        });
        lines
    }

    /// The leaf certificate, when it could be read.
    pub fn leaf(&self) -> Option<&Certificate> {
        self.chain.first().and_then(|c| c.as_ref().ok())
    }
}

/// The facts of one certificate people ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub subject: String,
    pub issuer: String,
    /// Its subject alternative names: DNS names and addresses.
    pub names: Vec<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Certificate {
    /// Reads a DER certificate; `Err` says why it cannot be read.
    pub fn read(der: &[u8]) -> Result<Certificate, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let time = |t: x509_parser::time::ASN1Time| {
            DateTime::<Utc>::from_timestamp(t.timestamp(), 0).unwrap_or_default()
        };
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(n) => names.push(clean(n, 255)),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from(bytes) {
                            names.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Certificate {
            subject: shown_name(&cert.subject().to_string()),
            issuer: shown_name(&cert.issuer().to_string()),
            names,
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
        })
    }

    /// Whole days left, rounded to the nearest: a certificate made to last five days
    /// has five days left, not four and a fraction.
    pub fn days_left(&self, now: DateTime<Utc>) -> i64 {
        let secs = (self.not_after - now).num_seconds();
        (secs + 43_200).div_euclid(86_400)
    }

    /// "expires in 5 days (soon: under 14 days)", "expired 2 days ago", …
    pub fn expiry_words(&self, now: DateTime<Utc>) -> String {
        let secs = (self.not_after - now).num_seconds();
        if now < self.not_before {
            return format!("not valid yet (from {})", day(self.not_before));
        }
        if secs <= 0 {
            let ago = -secs;
            return match ago {
                0..=5_399 => "EXPIRED just now".to_string(),
                5_400..=172_799 => format!("EXPIRED {} hours ago", (ago + 1_800) / 3_600),
                _ => format!("EXPIRED {} days ago", (ago + 43_200) / 86_400),
            };
        }
        let left = match secs {
            0..=5_399 => "expires within the hour".to_string(),
            5_400..=172_799 => format!("expires in {} hours", (secs + 1_800) / 3_600),
            _ => format!("expires in {} days", self.days_left(now)),
        };
        match self.days_left(now) < SOON_DAYS {
            true => format!("{left} (soon: under {SOON_DAYS} days)"),
            false => left,
        }
    }

    fn names_shown(&self) -> String {
        let mut shown = self.names[..self.names.len().min(NAMES_SHOWN)].join(", ");
        if self.names.len() > NAMES_SHOWN {
            shown.push_str(&format!(" and {} more", self.names.len() - NAMES_SHOWN));
        }
        shown
    }
}

/// A date as the tasks show it: `2025-01-06 12:00 UTC`.
pub fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A distinguished name as shown: printable, bounded.
fn shown_name(dn: &str) -> String {
    match dn.trim() {
        "" => "(empty)".to_string(),
        dn => clean(dn, 200),
    }
}

fn ip_from(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => Some(<[u8; 4]>::try_from(bytes).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(bytes).ok()?.into()),
        _ => None,
    }
}

/// Why a TLS handshake failed, in words.
fn tls_words(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::AlertReceived(alert)) => format!("the server sent the alert {alert:?}"),
        Some(rustls::Error::NoApplicationProtocol) => {
            "the server offers none of the protocols asked for".into()
        }
        Some(other) => other.to_string(),
        None => super::net::io_words(e),
    }
}

/// Why a certificate is not trusted, in words.
fn untrusted_words(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "it has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "it is not valid yet".into()
            }
            CertificateError::UnknownIssuer => {
                "its issuer is not a certificate authority this worker trusts".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "it is not issued for this name".into()
            }
            CertificateError::BadSignature => "its signature does not verify".into(),
            CertificateError::Revoked => "it has been revoked".into(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "it is not for TLS servers".into()
            }
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

/// The certificate check of rustls' WebPKI verifier, its verdict noted rather than
/// enforced; the handshake's signatures are checked by the same verifier.
#[derive(Debug)]
struct Noting {
    inner: Result<Arc<WebPkiServerVerifier>, String>,
    provider: Arc<CryptoProvider>,
    verdict: Mutex<Option<Result<(), String>>>,
}

impl ServerCertVerifier for Noting {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match &self.inner {
            Ok(inner) => inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(|e| untrusted_words(&e)),
            Err(why) => Err(why.clone()),
        };
        if let Ok(mut noted) = self.verdict.lock() {
            *noted = Some(verdict);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lasting(from: i64, to: i64) -> Certificate {
        let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        Certificate {
            subject: "CN=a".into(),
            issuer: "CN=b".into(),
            names: vec![],
            not_before: now + chrono::Duration::seconds(from),
            not_after: now + chrono::Duration::seconds(to),
        }
    }

    #[test]
    fn days_to_expiry_read_as_a_person_counts_them() {
        let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let five = lasting(-60, 5 * 86_400 - 3);
        assert_eq!(five.days_left(now), 5);
        assert_eq!(
            five.expiry_words(now),
            "expires in 5 days (soon: under 14 days)"
        );
        assert_eq!(
            lasting(-60, 90 * 86_400).expiry_words(now),
            "expires in 90 days"
        );
        assert_eq!(
            lasting(-60, 7 * 3_600).expiry_words(now),
            "expires in 7 hours (soon: under 14 days)"
        );
        assert_eq!(
            lasting(-900_000, -3 * 86_400).expiry_words(now),
            "EXPIRED 3 days ago"
        );
        assert!(lasting(60, 900)
            .expiry_words(now)
            .starts_with("not valid yet"));
    }
}
