//! The one TLS crypto provider of an Octobox process.
//!
//! Several TLS users can share a process (the AMQP connection with `amqps://`, Slack's
//! client and WebSockets, the shippers' HTTP client). The workspace builds rustls with
//! more than one provider, so rustls cannot pick one by itself and would panic at the
//! first TLS connection: every binary calls [`install_provider`] first thing in `main`.

/// Installs rustls' ring provider as the process default. Harmless when already done.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
