//! `tls expiry <host[:port]>`: connects to a TLS server (port 443 unless given), and
//! describes the certificate it presents — subject, names, issuer, validity and days to
//! expiry, each certificate of the chain — and whether this worker trusts it, even when
//! it does not (an expired certificate is what people ask this about). Connecting and
//! the handshake are bounded by `[tasks.tls_expiry] timeout`.

use async_trait::async_trait;
use chrono::Utc;
use config::TlsExpirySettings;
use jobs::Output;
use rustls::pki_types::ServerName;

use super::certificate::TlsClient;
use super::net::{self, millis, Deadline};
use super::{clean, fit_chat};
use crate::registry::{NativeTask, TaskContext, TaskError};

/// The longest target accepted.
const MAX_TARGET: usize = 300;

pub struct TlsExpiry {
    settings: TlsExpirySettings,
    tls: TlsClient,
}

impl TlsExpiry {
    pub fn new(settings: TlsExpirySettings, tls: TlsClient) -> Self {
        TlsExpiry { settings, tls }
    }
}

#[async_trait]
impl NativeTask for TlsExpiry {
    fn params(&self) -> &'static [&'static str] {
        &["target"]
    }

    async fn run(&self, ctx: &TaskContext) -> Result<Output, TaskError> {
        let (host, port) = target(&ctx.text_arg("target")?).map_err(TaskError::Failed)?;
        let report = self.check(&host, port).await.map_err(TaskError::Failed)?;
        Ok(fit_chat(report, "tls-expiry.txt"))
    }
}

impl TlsExpiry {
    /// Connects to `host:port` and describes its certificate.
    pub async fn check(&self, host: &str, port: u16) -> Result<String, String> {
        let deadline = Deadline::after(self.settings.timeout);
        let shown = net::host_port(host, port);
        let name = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_string())
                .map_err(|_| format!("\"{}\" is not a host name", clean(host, 80)))?,
        };
        let (tcp, addr, reached) = net::reach(host, port, &deadline).await?;
        self.tls.prepare().await;
        let started = tokio::time::Instant::now();
        let (_stream, presented) = deadline
            .run(self.tls.handshake(tcp, name, &[]), |budget| {
                format!("{shown} did not finish the TLS handshake within {budget}")
            })
            .await??;
        let tls = started.elapsed();
        let now = Utc::now();
        let mut out = shown.clone();
        if addr.ip().to_string() != host {
            out.push_str(&format!(" ({addr})"));
        }
        match presented.leaf() {
            Some(leaf) => out.push_str(&format!(": {}\n", leaf.expiry_words(now))),
            None => out.push_str(": its certificate cannot be read\n"),
        }
        for line in presented.lines(now) {
            out.push_str(&line);
            out.push('\n');
        }
        let mut steps = Vec::new();
        if !reached.dns.is_zero() {
            steps.push(format!("DNS {}", millis(reached.dns)));
        }
        steps.push(format!("connect {}", millis(reached.connect)));
        steps.push(format!("TLS {}", millis(tls)));
        out.push_str(&steps.join(" · "));
        Ok(out)
    }
}

/// The host and port of `host`, `host:port`, `[v6]:port`, an IPv6 address, or an
/// https URL; port 443 when none is given.
pub fn target(given: &str) -> Result<(String, u16), String> {
    if given.len() > MAX_TARGET {
        return Err(format!(
            "that target is {} characters long; at most {MAX_TARGET} are read",
            given.chars().count()
        ));
    }
    let bad = || {
        format!(
            "\"{}\" is not a TLS server: give a host name or address, with a port if not \
             443 (example.com, mail.example.com:465, [2001:db8::1]:8443)",
            clean(given, 80)
        )
    };
    let text = given.trim_end_matches('/');
    if text.contains("://") {
        let url = url::Url::parse(text).map_err(|_| bad())?;
        let host = url.host_str().ok_or_else(bad)?;
        let port = url.port_or_known_default().unwrap_or(443);
        return Ok((
            host.trim_matches(|c| c == '[' || c == ']').to_string(),
            port,
        ));
    }
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok((ip.to_string(), 443));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad)?,
        ),
        None => (text, 443),
    };
    match url::Host::parse(host) {
        Ok(url::Host::Domain(d)) if d.split('.').all(|l| !l.is_empty() && l.len() <= 63) => {
            Ok((d, port))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_hosts_with_an_optional_port() {
        let t = |s: &str| target(s).map(|(h, p)| format!("{h} {p}"));
        assert_eq!(t("Example.com").unwrap(), "example.com 443");
        assert_eq!(t("mail.example.com:465").unwrap(), "mail.example.com 465");
        assert_eq!(t("[2001:db8::1]:8443").unwrap(), "2001:db8::1 8443");
        assert_eq!(t("2001:db8::1").unwrap(), "2001:db8::1 443");
        assert_eq!(t("https://example.com:8443/x").unwrap(), "example.com 8443");
        assert!(t("example.com:0").is_err());
        assert!(t("exa mple.com").is_err());
        assert!(t(&"a".repeat(400)).unwrap_err().contains("at most 300"));
    }
}
