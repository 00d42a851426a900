//! Logins the OpenSSH client will not even try against a server that offers only public
//! keys: a password and keyboard-interactive, sent anyway by a client (russh's) that
//! does as it is told, to show the server refuses them itself.

use std::sync::Arc;

use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::PublicKeyOrCertificate;

struct TrustingClient;

impl client::Handler for TrustingClient {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

async fn connect(port: u16) -> client::Handle<TrustingClient> {
    client::connect(
        Arc::new(client::Config::default()),
        ("127.0.0.1", port),
        TrustingClient,
    )
    .await
    .expect("the SSH server accepts the connection")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Tries `user`/`password`; whether the server let it in.
pub fn try_password(port: u16, user: &str, password: &str) -> bool {
    runtime().block_on(async {
        let mut session = connect(port).await;
        let result = session
            .authenticate_password(user, password)
            .await
            .expect("the server answers");
        matches!(result, AuthResult::Success)
    })
}

/// Starts keyboard-interactive for `user`; whether the server let it in or asked
/// anything (either would be a way in that is not a key).
pub fn try_keyboard_interactive(port: u16, user: &str) -> bool {
    runtime().block_on(async {
        let mut session = connect(port).await;
        let result = session
            .authenticate_keyboard_interactive_start(user, None)
            .await
            .expect("the server answers");
        !matches!(result, KeyboardInteractiveAuthResponse::Failure { .. })
    })
}
