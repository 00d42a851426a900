//! `Connection`: the russh handler of one client connection.
//!
//! It authenticates (public keys from the authorized_keys file, nothing else; the
//! identity is the one the file gives the key, whatever login name the client sends),
//! keeps each session channel's state (a pty asked for, the input of its running
//! session) and starts a [`Session`] task per `exec` or `shell` request. The session task
//! owns the conversation; this handler only forwards what the client sends, into a queue
//! bounded in bytes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::keys::AuthorizedKey;
use super::limits::StartupPermit;
use super::logged::Untrusted;
use super::session::{input_budget, input_queue, status, Input, InputReceiver, Session, Terminal};
use super::{exec, shell, Shared, ADAPTER};
use jobs::Origin;
use russh::keys::PublicKey;
use russh::server::{
    Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session as Wire, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet, Pty, Sig};
use tokio_util::sync::CancellationToken;

/// Session channels one connection may have open at once (OpenSSH's `MaxSessions`).
const MAX_CHANNELS: usize = 10;

#[derive(Default)]
struct ChannelState {
    /// The width of the pseudo-terminal the client asked for, if it did.
    pty: Option<u32>,
    /// The running session's input; `None` until exec or shell is requested.
    input: Option<super::session::InputSender>,
}

pub struct Connection {
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    /// The key that logged in.
    key: Option<AuthorizedKey>,
    /// Told when the key has logged in (it stops the login grace timer).
    login: Arc<Login>,
    channels: HashMap<ChannelId, ChannelState>,
}

impl Connection {
    pub(super) fn new(shared: Arc<Shared>, peer: Option<SocketAddr>, login: Arc<Login>) -> Self {
        Connection {
            shared,
            peer,
            key: None,
            login,
            channels: HashMap::new(),
        }
    }

    fn peer(&self) -> String {
        self.peer.map(|p| p.to_string()).unwrap_or_default()
    }

    fn only_public_keys() -> Auth {
        Auth::Reject {
            proceed_with_methods: Some(MethodSet::from(&[MethodKind::PublicKey][..])),
            partial_success: false,
        }
    }

    fn known(&self, key: &PublicKey) -> Option<&AuthorizedKey> {
        self.shared.keys.find(key)
    }

    fn refuse_key(&self, login: &str, key: &PublicKey) -> Auth {
        tracing::warn!(
            peer = %self.peer(),
            login = %Untrusted(login),
            fingerprint = %key.fingerprint(Default::default()),
            "ssh key refused: not in authorized_keys"
        );
        Self::only_public_keys()
    }

    /// Starts the session asked for on `channel`: one command, or a shell.
    fn start(
        &mut self,
        channel: ChannelId,
        command: Option<String>,
        wire: &mut Wire,
    ) -> Result<(), russh::Error> {
        let (Some(key), Some(state)) = (&self.key, self.channels.get_mut(&channel)) else {
            return wire.channel_failure(channel);
        };
        if state.input.is_some() {
            // One program per channel, as in OpenSSH.
            return wire.channel_failure(channel);
        }
        wire.channel_success(channel)?;
        let (tx, input) = input_queue(input_budget(self.shared.counter.limits()));
        state.input = Some(tx);
        let term = Terminal::new(wire.handle(), channel, state.pty);
        let shared = self.shared.clone();
        let user = key.name.clone();
        tokio::spawn(async move { run(shared, user, term, input, command).await });
        Ok(())
    }

    fn forward(&self, channel: ChannelId, input: Input) {
        if let Some(tx) = self.channels.get(&channel).and_then(|s| s.input.as_ref()) {
            tx.send(input);
        }
    }
}

/// One session from start to exit status.
async fn run(
    shared: Arc<Shared>,
    user: String,
    term: Terminal,
    input: InputReceiver,
    command: Option<String>,
) {
    let identity = format!("{ADAPTER}:{user}");
    let _permit = match shared.counter.open(&identity) {
        Ok(permit) => permit,
        Err(refusal) => {
            tracing::warn!(user = %identity, reason = %refusal, "ssh session refused");
            term.error_line(&refusal.to_string()).await;
            term.finish(status::FAILED).await;
            return;
        }
    };
    let name = shared.session_name();
    let notices = shared.sessions.open(&name);
    let mode = if command.is_some() { "exec" } else { "shell" };
    tracing::info!(user = %identity, session = %name, mode, pty = term.pty, "ssh session opened");
    let mut session = Session {
        router: shared.router.clone(),
        origin: Origin {
            adapter: ADAPTER.to_string(),
            user,
            channel: Some(name.clone()),
            thread: None,
        },
        term,
        input,
        notices,
        limits: *shared.counter.limits(),
        outstanding: Default::default(),
    };
    let code = match &command {
        Some(command) => exec::run(&mut session, command).await,
        None => shell::run(&mut session).await,
    };
    shared.sessions.close(&name);
    session.term.finish(code).await;
    tracing::info!(user = %identity, session = %name, status = code, "ssh session closed");
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Self::only_public_keys())
    }

    async fn auth_password(&mut self, user: &str, _password: &str) -> Result<Auth, Self::Error> {
        tracing::warn!(peer = %self.peer(), login = %Untrusted(user), "ssh password login refused: public keys only");
        Ok(Self::only_public_keys())
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        tracing::warn!(peer = %self.peer(), login = %Untrusted(user), "ssh keyboard-interactive login refused: public keys only");
        Ok(Self::only_public_keys())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.known(offer.public_key) {
            Some(_) => Auth::Accept,
            None => self.refuse_key(user, offer.public_key),
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Some(entry) = self.known(key.public_key).cloned() else {
            return Ok(self.refuse_key(user, key.public_key));
        };
        // The identity is the name authorized_keys gives this key; the login name the
        // client sent (`admin@host`) is its own choice and names nobody.
        tracing::info!(
            peer = %self.peer(),
            user = %format!("{ADAPTER}:{}", entry.name),
            login = %Untrusted(user),
            "ssh login"
        );
        self.key = Some(entry);
        self.login.logged_in();
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_CHANNELS {
            tracing::info!(peer = %self.peer(), max = MAX_CHANNELS, "ssh channel refused: too many open on this connection");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), ChannelState::default());
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        let allowed = self.key.as_ref().is_some_and(|k| !k.no_pty);
        match self.channels.get_mut(&channel) {
            Some(state) if allowed => {
                state.pty = Some(cols);
                wire.channel_success(channel)
            }
            _ => wire.channel_failure(channel),
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        self.start(channel, None, wire)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(channel, Some(command), wire)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.peer(), subsystem = %Untrusted(name), "ssh subsystem refused");
        wire.channel_failure(channel)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        self.forward(channel, Input::Data(data.to_vec()));
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        self.forward(channel, Input::Eof);
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        _wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        if matches!(signal, Sig::INT) {
            self.forward(channel, Input::Interrupt);
        }
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        self.forward(channel, Input::Resize(cols));
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        // Dropping the input tells the session its client is gone.
        self.channels.remove(&channel);
        Ok(())
    }
}

/// Whether a connection has logged in; until it does, it holds its startup place.
pub(super) struct Login {
    permit: Mutex<Option<StartupPermit>>,
    pub(super) done: CancellationToken,
}

impl Login {
    pub(super) fn new(permit: StartupPermit) -> Arc<Self> {
        Arc::new(Login {
            permit: Mutex::new(Some(permit)),
            done: CancellationToken::new(),
        })
    }

    /// The connection logged in: its startup place is given back, its grace timer stops.
    pub(super) fn logged_in(&self) {
        self.permit.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.done.cancel();
    }
}
